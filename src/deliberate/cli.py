"""The `deliberate` command: a thin layer over the library. Every library error is one line, exit 2."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from deliberate.cli_tables import demo_table, noise_line, select_table, strategies_table, summary_table
from deliberate.errors import BadInput, DeliberateError
from deliberate.rewards import REWARDS
from deliberate.search.mcts import MCTSConfig

app = typer.Typer(help="Deliberate reasoning for any language model, measured.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
lab_app = typer.Typer(help="The lab model: train it, export it.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
bench_app = typer.Typer(help="Benchmarks: accuracy against compute.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
out = Console()
err = Console(stderr=True)

Model = Annotated[str, typer.Option("--model", "-m",
                                    help="Model spec: lab, smollm2, gguf:PATH, hf:ID, or a directory.")]
Strat = Annotated[str, typer.Option("--strategy", "-s", help="Strategy name (see `deliberate strategies`).")]
# Options that set the strategy get a help panel of their own: grouped, and in a table apart from
# the run's options rich has room for the longest flag (--rollout-temperature) at 80 columns.
SP = "Strategy options (each names the strategies that take it)"
# MCTS's answer rules (MCTSConfig.final checks them); tests/test_cli.py pins this to what it accepts
FINALS = {"value": "the rollout the reward values most", "visits": "descend by most visits"}
N = Annotated[int | None, typer.Option("--n", help="Samples per problem (sampling strategies).", rich_help_panel=SP)]
Temp = Annotated[float | None, typer.Option("--temperature", help="Sampling temperature.", rich_help_panel=SP)]
MaxTok = Annotated[int | None, typer.Option("--max-tokens", help="Generated tokens per sample (default: the task's).",
                                            rich_help_panel=SP)]
Shots = Annotated[int | None, typer.Option("--shots", help="Few-shot exemplars for real models.", rich_help_panel=SP)]
Seed = Annotated[int, typer.Option("--seed", help="Seed; the same seed gives the same result.")]
Threads = Annotated[int | None, typer.Option("--threads", help="torch CPU threads (default: torch's).")]
# Search options: each applies to the strategies that take it (`deliberate strategies` lists them);
# passing one to a strategy that does not take it is an error, not silently ignored.
Width = Annotated[int | None, typer.Option("--width", help="beam: beams kept per round.", rich_help_panel=SP)]
Expand = Annotated[int | None, typer.Option("--expand", help="beam: children per beam per round.", rich_help_panel=SP)]
Subtrees = Annotated[int | None, typer.Option("--subtrees", help="beam: independent subtrees (DVTS when > 1).",
                                              rich_help_panel=SP)]
Iterations = Annotated[int | None, typer.Option("--iterations", help="mcts: search iterations.", rich_help_panel=SP)]
Children = Annotated[int | None, typer.Option("--children", help="mcts: children per expansion.", rich_help_panel=SP)]
Action = Annotated[str | None, typer.Option("--action", help="beam, mcts: step or mini-step:N (e.g. mini-step:32).",
                                            rich_help_panel=SP)]
Reward = Annotated[str | None, typer.Option("--reward", help=f"best-of-n, beam, mcts: {', '.join(REWARDS)}.",
                                            rich_help_panel=SP)]
Exploration = Annotated[float | None, typer.Option("--exploration", help="mcts: the exploration constant C.",
                                                   rich_help_panel=SP)]
Select = Annotated[str | None, typer.Option("--select", help="mcts: uct or puct (prior: the step's probability).",
                                            rich_help_panel=SP)]
RolloutTemp = Annotated[float | None, typer.Option("--rollout-temperature", help="mcts: rollout temperature.",
                                                   rich_help_panel=SP)]
Final = Annotated[str | None, typer.Option("--final", help="mcts: how the answer is chosen: " + "; ".join(
    f"{k}, {v}" for k, v in FINALS.items()) + f" (default: {MCTSConfig.final}).", rich_help_panel=SP)]
Vote = Annotated[str | None, typer.Option("--vote", help="best-of-n, beam: best or weighted (majority).",
                                          rich_help_panel=SP)]
Rounds = Annotated[int | None, typer.Option("--rounds", help="reflection, self-refine: rounds.", rich_help_panel=SP)]
Actions = Annotated[str | None, typer.Option("--actions", help="rstar: action types, e.g. step,rest.",
                                             rich_help_panel=SP)]
Reflect = Annotated[bool | None, typer.Option("--reflect/--no-reflect", help="mcts: reflect after each rollout.",
                                              rich_help_panel=SP)]
MinThink = Annotated[int | None, typer.Option("--min-think", help="budget-forcing: least thinking tokens.",
                                              rich_help_panel=SP)]
MaxThink = Annotated[int | None, typer.Option("--max-think", help="budget-forcing: most thinking tokens.",
                                              rich_help_panel=SP)]
SEARCH_OPTIONS = ("n", "temperature", "max_tokens", "shots", "width", "expand", "subtrees", "iterations", "children",
                  "action", "reward", "exploration", "select", "rollout_temperature", "final", "vote", "rounds",
                  "min_think", "max_think", "reflect", "actions")


def fail_cleanly(fn):
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DeliberateError as e:
            typer.echo(f"error: {e}", err=True)  # one unwrapped line, whatever the terminal width
            raise typer.Exit(2) from None

    return wrapper


def _options(given: dict) -> dict:
    """The strategy options the user set, from a command's arguments."""
    return {k: given[k] for k in SEARCH_OPTIONS if given.get(k) is not None}


@app.command()
@fail_cleanly
def solve(question: Annotated[str, typer.Argument(help="The question to answer.")],
          model: Model = "lab", strategy: Strat = "greedy", n: N = None, temperature: Temp = None,
          max_tokens: MaxTok = None, shots: Shots = None, seed: Seed = 0, threads: Threads = None,
          width: Width = None, expand: Expand = None, subtrees: Subtrees = None, iterations: Iterations = None,
          children: Children = None, action: Action = None, reward: Reward = None, exploration: Exploration = None,
          select: Select = None, rollout_temperature: RolloutTemp = None, final: Final = None, vote: Vote = None,
          rounds: Rounds = None, min_think: MinThink = None, max_think: MaxThink = None,
          reflect: Reflect = None, actions: Actions = None,
          tree: Annotated[Path | None, typer.Option("--tree", help="Save the search tree here as JSON.")] = None,
          ) -> None:
    """Answer one question and print the reasoning and the answer."""
    from deliberate import get_strategy, load_backend
    from deliberate import solve as solve_

    if not question.strip():  # checked before the model loads, as is the strategy
        raise BadInput("the question is empty.")
    strat = get_strategy(strategy, **_options(locals()))
    result = solve_(question, load_backend(model, threads=threads), strategy=strat, seed=seed)
    for i, t in enumerate(result.traces):
        if len(result.traces) > 1:
            out.rule(f"sample {i + 1}: {t.answer}")
        out.print(t.text, markup=False, highlight=False)
    out.rule()
    c = result.compute
    out.print(f"answer: {result.answer}", markup=False)
    out.print(f"[dim]{c.tokens_generated} tokens generated, {c.tokens_read} read, {c.calls} calls, "
              f"{c.wall_s:.2f}s[/dim]")
    if tree:
        if "tree" not in result.info:
            raise BadInput(f"strategy {strategy!r} builds no tree; --tree applies to beam, mcts and rstar.")
        tree.write_text(json.dumps(result.info["tree"], ensure_ascii=False, indent=1))
        out.print(f"tree: {tree} ({result.info['nodes']} nodes)")


@app.command("eval")
@fail_cleanly
def eval_(task: Annotated[str, typer.Option("--task", "-t", help="Task name or jsonl:PATH.")],
          model: Model = "lab", strategy: Strat = "greedy",
          limit: Annotated[int | None, typer.Option(help="Only the first N problems.")] = None,
          n: N = None, temperature: Temp = None, max_tokens: MaxTok = None, shots: Shots = None,
          seed: Seed = 0, threads: Threads = None,
          out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: runs/eval/...).")] = None,
          batch: Annotated[int, typer.Option(help="Problems per backend call.")] = 8,
          as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the summary.")] = False,
          width: Width = None, expand: Expand = None, subtrees: Subtrees = None, iterations: Iterations = None,
          children: Children = None, action: Action = None, reward: Reward = None, exploration: Exploration = None,
          select: Select = None, rollout_temperature: RolloutTemp = None, final: Final = None, vote: Vote = None,
          rounds: Rounds = None, min_think: MinThink = None, max_think: MaxThink = None,
          reflect: Reflect = None, actions: Actions = None,
          max_errors: Annotated[int | None, typer.Option(
              "--max-errors", help="Abort once more than N problems have failed (default: never).")] = None,
          max_tokens_per_problem: Annotated[int | None, typer.Option(
              "--max-tokens-per-problem", help="Hard cap on each problem's generated tokens, any strategy "
              "(problems then run one at a time).")] = None,
          problem_timeout: Annotated[float | None, typer.Option(
              "--problem-timeout", help="Seconds after which a problem becomes an error row (checked at "
              "each backend call; problems then run one at a time).")] = None) -> None:
    """Evaluate a strategy on a task; rows are written as they finish and a rerun resumes."""
    from deliberate import evaluate, load_backend, load_task
    from deliberate.search import get_strategy

    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}.")
    if batch < 1:
        raise BadInput(f"--batch must be >= 1, got {batch}.")
    t = load_task(task)
    _ = t.problems  # a missing or malformed data file fails here, before the model loads
    strat = get_strategy(strategy, **_options(locals()))
    backend = load_backend(model, threads=threads)
    cols = [TextColumn(f"{t.name} · {strategy}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    state = {"right": 0, "seen": 0}
    with Progress(*cols, console=err, transient=True, disable=as_json and not err.is_terminal) as bar:
        job = bar.add_task("eval", total=None, acc="")

        def progress(done: int, total: int, row: dict) -> None:
            if row:
                state["seen"] += 1
                state["right"] += row["correct"] if t.has_answer_key else row.get("score") or 0.0  # chrF
            elif done:
                err.print(f"resuming: {done} of {total} already done; {total - done} to do.")
            acc = ""
            if state["seen"]:
                acc = (f"last batch acc {state['right']}/{state['seen']}" if t.has_answer_key else
                       f"last batch chrF {state['right'] / state['seen']:.1f}")
            bar.update(job, completed=done, total=total, acc=acc)

        try:
            summary = evaluate(t, backend, strat, limit=limit, seed=seed, out_dir=out_dir, batch_problems=batch,
                               max_errors=max_errors, max_tokens_per_problem=max_tokens_per_problem,
                               problem_timeout_s=problem_timeout,
                               on_progress=progress)
        except KeyboardInterrupt:
            err.print("interrupted: every finished row is kept; run the same command to resume.")
            raise typer.Exit(130) from None
    print_summary(summary)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False), flush=True)


def print_summary(s: dict) -> None:
    out.print(summary_table(s))


@app.command()
@fail_cleanly
def demo(model: Model = "lab", task: Annotated[str, typer.Option("--task", "-t")] = "lab-en",
         limit: Annotated[int, typer.Option(help="Problems per strategy.")] = 30,
         n: Annotated[int, typer.Option("--n", help="Samples for self-consistency and best-of-n.")] = 8,
         threads: Threads = None) -> None:
    """Greedy against self-consistency and best-of-n (confidence reward) on a few problems, and
    whether each gap to greedy is noise (the paired check of `deliberate compare`)."""
    from deliberate import evaluate, get_strategy, load_backend, load_task

    if limit < 1 or n < 1:
        raise BadInput(f"--limit and --n must be >= 1, got {limit} and {n}.")
    t = load_task(task)
    backend = load_backend(model, threads=threads)
    runs = []
    for strat in (get_strategy("greedy"), get_strategy("self-consistency", n=n), get_strategy("best-of-n", n=n)):
        with err.status(f"{strat.name} on {limit} problems..."):
            runs.append((strat.name + (f" (n={n})" if strat.samples else ""),
                         evaluate(t, backend, strat, limit=limit, out_dir=None)))
    out.print(demo_table(f"{t.name} · {model} · {limit} problems", runs))
    if t.has_answer_key:  # 30 problems leave wide intervals: say, as `deliberate compare` does, what is noise
        from deliberate.eval.compare import compare_runs

        ids = {p.id for p in t.problems[:limit]}  # the folders may hold more rows, from a longer demo
        for label, s in runs[1:]:
            out.print(noise_line(label, compare_runs(runs[0][1]["out"], s["out"], only=ids)), markup=False)
    out.print("[dim]rows: runs/eval/ (rerun resumes); try `deliberate solve \"...\"` or `deliberate eval --help`[/dim]")


@app.command()
def tasks() -> None:
    """List the tasks."""
    from deliberate.tasks import TASKS

    table = Table("task", "description")
    table.columns[0].no_wrap = True  # names whole; descriptions wrap
    for name, t in TASKS.items():
        table.add_row(name, t.description)
    table.add_row("jsonl:PATH", "your own JSON Lines file with question and answer fields")
    out.print(table)


@app.command()
def strategies() -> None:
    """List the strategies."""
    from deliberate.search import DESCRIPTIONS, STRATEGIES

    out.print(strategies_table(DESCRIPTIONS, {name: STRATEGIES[name].Config for name in DESCRIPTIONS}))


@app.command()
def models() -> None:
    """List the model specs."""
    from deliberate.backends import MODELS

    table = Table("spec", "model")
    table.columns[0].no_wrap = True
    for name, d in MODELS.items():
        table.add_row(name, d)
    out.print(table)


@lab_app.command("train")
@fail_cleanly
def lab_train(out_dir: Annotated[str, typer.Option("--out", help="Working folder (checkpoints, log).")]
              = "runs/lab-model",
              steps: Annotated[int, typer.Option(help="Optimizer steps (the cosine schedule spans them).")] = 3000,
              threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
              seed: Annotated[int, typer.Option(help="Training data seed.")] = 1,
              snapshots: Annotated[bool, typer.Option(help="Keep a loadable copy per checkpoint (out/step-N).")]
              = False,
              export: Annotated[Path | None, typer.Option(help="Copy the finished model here.")] = None) -> None:
    """Train the lab model (resumes from the last checkpoint in --out)."""
    from deliberate.lab.train import LabTrainConfig, export_model, train

    try:
        cfg = LabTrainConfig(out=out_dir, steps=steps, threads=threads, seed=seed, snapshots=snapshots)
    except ValueError as e:
        raise BadInput(str(e)) from None
    path = train(cfg, out)
    if export:
        export_model(path, export)
        out.print(f"exported to {export}")


@lab_app.command("select")
@fail_cleanly
def lab_select(run_dir: Annotated[Path, typer.Argument(help="A training folder with step-N snapshots.")],
               limit: Annotated[int, typer.Option(help="Validation problems per language.")] = 200,
               n: Annotated[int, typer.Option("--n", help="Samples for self-consistency and pass@n.")] = 16,
               temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
               min_step: Annotated[int, typer.Option(help="Skip snapshots before this step.")] = 0,
               threads: Threads = None) -> None:
    """Score every snapshot on the validation split (never the test split): greedy, SC, pass@n."""
    from deliberate.lab.select import select

    if limit < 1 or n < 2:
        raise BadInput(f"--limit must be >= 1 and --n >= 2, got {limit} and {n}.")

    def show(r: dict) -> None:
        err.print(f"step {r['step']} {r['task']}: greedy {r['greedy']:.1%}, SC {r['sc']:.1%}")

    rows = select(run_dir, limit=limit, n=n, temperature=temperature, threads=threads, min_step=min_step, on_row=show)
    out.print(select_table(f"{run_dir} · validation split · {limit} problems · T={temperature}", n, rows))


@lab_app.command("export")
@fail_cleanly
def lab_export(src: Annotated[Path, typer.Argument(help="A training folder or one of its step-N snapshots.")],
               dest: Annotated[Path, typer.Argument(help="Where to put the model files.")]) -> None:
    """Copy a trained model's loadable files (no optimizer state), marked as a lab model."""
    from deliberate.lab.train import export_model

    if not (src / "config.json").is_file():
        raise BadInput(f"no model at {src} (config.json missing).")
    out.print(f"exported to {export_model(src, dest)}")


from deliberate import cli_bench, cli_grading, cli_runs  # noqa: E402,F401  (register bench, grading, runs)


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars would bury our own progress and errors
    app()


if __name__ == "__main__":
    sys.exit(main())
