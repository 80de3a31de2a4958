"""`deliberate grading audit RUN_DIR`: where deliberate's grader and math-verify's own disagree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from deliberate.cli.common import app, err, fail_cleanly, out

grading_app = typer.Typer(help="The grader: audit a run's verdicts against math-verify's own.", no_args_is_help=True)
app.add_typer(grading_app, name="grading")


@grading_app.command("audit")
@fail_cleanly
def audit(run_dir: Annotated[Path, typer.Argument(help="A run folder (holding results.jsonl and run.json).")],
          as_json: Annotated[bool, typer.Option("--json", help="Print the audit as JSON.")] = False) -> None:
    """Re-grade every sample with deliberate and with math-verify's parse + verify; show each
    disagreement (gold, both extractions, both verdicts)."""
    from deliberate.grading.audit import audit_run

    with Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), console=err, transient=True,
                  disable=as_json) as bar:
        job = bar.add_task("rows", total=None)
        a = audit_run(run_dir, on_progress=lambda done, total: bar.update(job, completed=done, total=total))
    if as_json:
        print(json.dumps(a.to_dict(), ensure_ascii=False))
        return
    out.print(f"{a.task}: deliberate and math-verify agree on {a.agree} of {a.samples} samples "
              f"({a.agreement:.1%}); {len(a.disagreements)} disagree.")
    if a.changed:
        out.print(f"{a.changed} stored verdicts differ from deliberate's today: the grader changed since the run.")
    if not a.disagreements:
        return
    t = Table(title="Disagreements", show_lines=True)
    for name, kw in (("row", {"overflow": "fold"}), ("gold", {"overflow": "fold"}),
                     ("deliberate read (rule)", {"overflow": "fold", "ratio": 2}), ("verdict", {}),
                     ("math-verify read", {"overflow": "fold", "ratio": 2}), ("verdict", {})):
        t.add_column(name, **kw)
    for d in a.disagreements:
        t.add_row(f"{d.id}#{d.sample}", d.gold, f"{d.ours} ({d.rule})", d.our_verdict, str(d.theirs), d.their_verdict)
    out.print(t)
    out.print("Each completion's end is in --json (`tail`); the rules: docs/evaluation.md, \"Grading you can audit\".")
