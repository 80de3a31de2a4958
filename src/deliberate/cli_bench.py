"""`deliberate bench ...`: benchmarks of accuracy against compute. Registered on the main app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deliberate.cli import Model, Seed, Threads, bench_app, err, fail_cleanly, out
from deliberate.cli_tables import scaling_table
from deliberate.errors import BadInput
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
                  batch: Annotated[int, typer.Option(help="Problems per backend call.")] = 8,
                  plot: Annotated[Path | None, typer.Option(help="Write accuracy vs tokens here (PNG).")] = None,
                  markdown: Annotated[Path | None, typer.Option(help="Write the table here as Markdown.")] = None,
                  as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the result.")]
                  = False,
                  cap: Annotated[bool, typer.Option("--cap/--no-cap", help="Hold each problem to budget x greedy's "
                                                    "tokens (a hard cap; cells in their own folders).")] = False,
                  ) -> None:
    """Every strategy at every budget on the same problems: one table (and a plot)."""
    from deliberate import load_backend, load_task
    from deliberate.eval.scaling import check_variants, markdown_table, parse_list, plot_scaling, run_scaling

    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}.")
    budget_list = parse_list(budgets, "budgets", int)
    names = parse_list(strategies, "strategies") if strategies else DEFAULT
    check_variants(names)
    t = load_task(task)
    _ = t.problems
    backend = load_backend(model, threads=threads)
    metric = "chrf" if not t.has_answer_key else "accuracy"
    with err.status("greedy...") as status:
        def on_cell(c: dict) -> None:
            err.print(f"done: {c['strategy']} {c['budget'] or ''} -> {c[metric]:.3f}")
            status.update(f"{c['strategy']} done; next cell...")

        result = run_scaling(t, backend, budgets=budget_list, strategies=names, limit=limit, seed=seed,
                             out_dir=out_dir, batch_problems=batch, on_cell=on_cell, cap=cap)
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
