"""Commands over finished runs: `compare`, `reproduce`, `report`. Registered on the main app."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from deliberate.cli.common import Threads, app, err, fail_cleanly, out
from deliberate.cli.tables import compare_table
from deliberate.errors import BadInput

RunDir = Annotated[Path, typer.Argument(help="A run folder (holding results.jsonl).")]


@app.command()
@fail_cleanly
def compare(run_a: RunDir, run_b: RunDir,
            as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False) -> None:
    """Pair two runs on the problems both finished: the gap, its interval, and whether it is noise."""
    from deliberate.eval.compare import compare_runs

    c = compare_runs(run_a, run_b)
    if as_json:
        print(json.dumps(c, ensure_ascii=False))
        return
    out.print(compare_table(c))
    lo, hi = c["difference_ci95"]
    out.print(f"B - A: {c['difference']:+.1%} (paired bootstrap 95% CI {lo:+.1%} to {hi:+.1%}); "
              f"McNemar exact p = {c['mcnemar_p']:.3g}")
    out.print(("[yellow]warning:[/yellow] " if c["within_noise"] else "") + c["verdict"])


def _same_row(a: dict, b: dict) -> bool:
    keys = ("answer", "correct", "verdict", "error")
    texts = lambda r: [s.get("text") for s in r.get("samples", [])]  # noqa: E731
    return all(a.get(k) == b.get(k) for k in keys) and texts(a) == texts(b)


@app.command()
@fail_cleanly
def reproduce(run_dir: RunDir, threads: Threads = None,
              out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write the rerun "
                                                            "(default: RUN_DIR/reproduce-TIME).")] = None) -> None:
    """Rerun a run from its manifest and report every difference, in settings and in rows."""
    from deliberate.backends import load_backend
    from deliberate.eval.manifest import diff_manifests
    from deliberate.eval.runner import evaluate, read_rows
    from deliberate.search import get_strategy
    from deliberate.tasks import load_task

    manifest_file = run_dir / "manifest.json"
    if not manifest_file.is_file():
        raise BadInput(f"{run_dir} has no manifest.json (runs from before manifests cannot be reproduced).")
    m = json.loads(manifest_file.read_text())
    task = load_task(m["task"]["name"])
    strategy = get_strategy(m["strategy"]["name"], **m["strategy"]["options"])
    backend = load_backend(m["model"]["spec"], threads=threads or m["machine"].get("torch_threads"))
    dest = out_dir or run_dir / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    original = {r["id"]: r for r in read_rows(run_dir / "results.jsonl")}
    with err.status(f"rerunning {len(original)} problems..."):
        evaluate(task, backend, strategy, limit=m["task"]["limit"], seed=m["seed"], out_dir=dest,
                 max_tokens_per_problem=m.get("max_tokens_per_problem"))
    again = {r["id"]: r for r in read_rows(dest / "results.jsonl")}
    changed = diff_manifests({k: v for k, v in m.items() if k != "resumes"},
                             json.loads((dest / "manifest.json").read_text()))
    shared = [i for i in original if i in again]
    differ = [i for i in shared if not _same_row(original[i], again[i])]
    out.print(f"rerun: {dest}")
    out.print("settings that differ: " + ("none" if not changed else ""))
    for line in changed:
        out.print(f"  {line}", markup=False)
    out.print(f"rows: {len(shared) - len(differ)} of {len(shared)} identical"
              + (f"; different: {', '.join(differ[:10])}{' ...' if len(differ) > 10 else ''}" if differ else ""))
    if differ:
        raise typer.Exit(1)


@app.command()
@fail_cleanly
def report(run_dirs: Annotated[list[Path], typer.Argument(help="Run folders; the first is the baseline.")],
           out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
           ) -> None:
    """One HTML page comparing runs: intervals, accuracy vs tokens, disagreements, manifests."""
    from deliberate.eval.report import write_report

    out.print(f"report: {write_report(run_dirs, out_file)}")


@app.command("export-traces")
@fail_cleanly
def export_traces(run_dir: RunDir,
                  out_file: Annotated[Path, typer.Option("--out", help="JSONL file for the SFT rows.")],
                  correct_only: Annotated[bool, typer.Option(
                      "--correct-only", help="Keep only paths the grader marked right (uses the gold answer).")]
                  = False,
                  overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False) -> None:
    """The best path of each problem of a search run (by the run's own reward), as SFT data."""
    from deliberate.train.export import export_traces as export

    counts = export(run_dir, out_file, correct_only=correct_only, overwrite=overwrite)
    skipped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if k not in ("written", "out") and v)
    out.print(f"{counts['written']} rows -> {counts['out']}" + (f" (skipped: {skipped})" if skipped else ""),
              markup=False)
