"""`deliberate solve`, `eval` and `demo`: run a strategy on one question, on a task, or the demo.

The strategy's flags are not declared here: `with_strategy_options` derives them from the
strategies' configs and hands them to each command as `strategy_options`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from deliberate.cli.common import Model, PrefixCache, Seed, Strat, Threads, app, err, fail_cleanly, out
from deliberate.cli.options import with_strategy_options
from deliberate.cli.tables import demo_table, noise_line, summary_table
from deliberate.errors import BadInput


@app.command()
@fail_cleanly
@with_strategy_options
def solve(question: Annotated[str, typer.Argument(help="The question to answer.")],
          model: Model = "lab", strategy: Strat = "greedy", seed: Seed = 0, threads: Threads = None,
          tree: Annotated[Path | None, typer.Option("--tree", help="Save the search tree here as JSON.")] = None,
          prefix_cache: PrefixCache = True,
          **strategy_options: Any) -> None:
    """Answer one question and print the reasoning and the answer."""
    from deliberate.backends import load_backend
    from deliberate.search import get_strategy
    from deliberate.solving import solve as solve_

    if not question.strip():  # checked before the model loads, as is the strategy
        raise BadInput("the question is empty.")
    strat = get_strategy(strategy, **strategy_options)
    result = solve_(question, load_backend(model, threads=threads, prefix_cache=prefix_cache), strategy=strat,
                    seed=seed)
    for i, t in enumerate(result.traces):
        if len(result.traces) > 1:
            out.rule(f"sample {i + 1}: {t.answer}")
        out.print(t.text, markup=False, highlight=False)
    out.rule()
    c = result.compute
    out.print(f"answer: {result.answer}", markup=False)
    out.print(f"[dim]{c.tokens_generated} tokens generated, {c.tokens_read} read ({c.tokens_cached} from cache), "
              f"{c.calls} calls, {c.wall_s:.2f}s[/dim]")
    if tree:
        if "tree" not in result.info:
            raise BadInput(f"strategy {strategy!r} builds no tree; --tree applies to beam, mcts and rstar.")
        tree.write_text(json.dumps(result.info["tree"], ensure_ascii=False, indent=1))
        out.print(f"tree: {tree} ({result.info['nodes']} nodes)")


@app.command("eval")
@fail_cleanly
@with_strategy_options
def eval_(task: Annotated[str, typer.Option("--task", "-t", help="Task name or jsonl:PATH.")],
          model: Model = "lab", strategy: Strat = "greedy",
          limit: Annotated[int | None, typer.Option(help="Only the first N problems.")] = None,
          seed: Seed = 0, threads: Threads = None,
          out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: runs/eval/...).")] = None,
          batch: Annotated[int, typer.Option(help="Problems solved together, each phase one batched "
                                                      "call (more: fewer, fuller forwards).")] = 32,
          as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the summary.")] = False,
          max_errors: Annotated[int | None, typer.Option(
              "--max-errors", help="Abort once more than N problems have failed (default: never).")] = None,
          max_tokens_per_problem: Annotated[int | None, typer.Option(
              "--max-tokens-per-problem", help="Hard cap on each problem's generated tokens, any strategy "
              "(exact per problem, batched or not).")] = None,
          problem_timeout: Annotated[float | None, typer.Option(
              "--problem-timeout", help="Seconds after which a problem becomes an error row (checked at "
              "each backend call; problems then run one at a time).")] = None,
          prefix_cache: PrefixCache = True,
          ray_address: Annotated[str | None, typer.Option(
              "--ray", help="Shard the problems over Ray actors: 'local' starts a cluster here, 'auto' joins "
              "the one `ray start` runs, or a cluster address (docs/evaluation.md).")] = None,
          workers: Annotated[int, typer.Option(help="Ray actors, each with its own backend (with --ray).")] = 2,
          gpus_per_worker: Annotated[float, typer.Option(
              "--gpus-per-worker", help="GPUs each Ray actor reserves (Ray hides GPUs from actors that ask "
              "for none).")] = 0,
          **strategy_options: Any) -> None:
    """Evaluate a strategy on a task; rows are written as they finish and a rerun resumes."""
    from deliberate.backends import load_backend
    from deliberate.eval.runner import evaluate
    from deliberate.search import get_strategy
    from deliberate.tasks import load_task

    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}.")
    if batch < 1:
        raise BadInput(f"--batch must be >= 1, got {batch}.")
    t = load_task(task)
    _ = t.problems  # a missing or malformed data file fails here, before the model loads
    strat = get_strategy(strategy, **strategy_options)
    backend = load_backend(model, threads=threads, prefix_cache=prefix_cache)
    executor = None
    if ray_address is not None:
        from deliberate.eval.distributed import ray_executor, start_ray

        if workers < 1:
            raise BadInput(f"--workers must be >= 1, got {workers}.")
        start_ray(None if ray_address == "local" else ray_address, num_cpus=workers if ray_address == "local" else None)
        # several batches per worker, so the load spreads (batching never changes a row: samples are seeded per request)
        total = min(limit or len(t.problems), len(t.problems))
        batch = max(1, min(batch, -(-total // (4 * workers))))
        executor = ray_executor(model, {"threads": threads or 1, "prefix_cache": prefix_cache}, t, strat, seed,
                                workers=workers, gpus_per_worker=gpus_per_worker,
                                max_tokens_per_problem=max_tokens_per_problem, problem_timeout_s=problem_timeout)
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
                               problem_timeout_s=problem_timeout, on_progress=progress, executor=executor)
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
    """Greedy against self-consistency and best-of-n, by Marco-o1's confidence and by the lab PRM
    (`prm:lab`), at the same samples, and whether each gap to greedy (and the PRM's to
    self-consistency, the same compute without a verifier) is noise, by `deliberate compare`'s check."""
    from deliberate.backends import load_backend
    from deliberate.eval.runner import evaluate
    from deliberate.search import get_strategy
    from deliberate.tasks import load_task

    if limit < 1 or n < 1:
        raise BadInput(f"--limit and --n must be >= 1, got {limit} and {n}.")
    t = load_task(task)
    backend = load_backend(model, threads=threads)
    runs = []
    for label, strat in (("greedy", get_strategy("greedy")),
                         (f"self-consistency (n={n})", get_strategy("self-consistency", n=n)),
                         (f"best-of-n (n={n})", get_strategy("best-of-n", n=n)),
                         (f"best-of-n prm:lab (n={n})", get_strategy("best-of-n", n=n, reward="prm:lab"))):
        with err.status(f"{label} on {limit} problems..."):
            runs.append((label, evaluate(t, backend, strat, limit=limit, out_dir=None)))
    out.print(demo_table(f"{t.name} · {model} · {limit} problems", runs))
    for label, s in runs:  # a verifier's reading is compute too: said beside the generated tokens
        if s.get("verifier_tokens"):
            out.print(f"{label}: its verifier also read {s['verifier_tokens']:,} tokens "
                      f"({s['verifier_tokens_per_problem']:.0f} per problem).", markup=False)
    if t.has_answer_key:  # 30 problems leave wide intervals: say, as `deliberate compare` does, what is noise
        from deliberate.eval.compare import compare_runs

        ids = {p.id for p in t.problems[:limit]}  # the folders may hold more rows, from a longer demo
        pairs = [(runs[0], r) for r in runs[1:]] + [(runs[1], runs[3])]
        for (base, b), (label, s) in pairs:
            out.print(noise_line(label, compare_runs(b["out"], s["out"], only=ids), base), markup=False)
    out.print("[dim]rows: runs/eval/ (rerun resumes); try `deliberate solve \"...\"` or `deliberate eval --help`[/dim]")
