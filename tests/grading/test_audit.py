"""`deliberate grading audit`: a small scripted run, re-graded by deliberate and by math-verify alone."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.cli import app
from deliberate.eval.runner import evaluate
from deliberate.grading.audit import audit_run
from deliberate.search import get_strategy
from deliberate.tasks import load_task

ROWS = [  # (question, gold, completion)
    ("Tom has 3 pens and buys 4.", "7", "3 + 4 = 7\nThe answer is 7."),
    ("Ein Dorf hat 50.000 Menschen.", "50000", "Die Antwort ist 50.000."),  # math-verify reads 50.0
    ("Amy has 2 cats.", "5", "Step-by-Step Answer: 2 + 3 = 5. Then 5 * 4 = 20."),  # both read 20: agree
]


def _run(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a, _ in ROWS), encoding="utf-8")
    backend = ScriptedBackend(from_texts({q: [c] for q, _, c in ROWS}))
    evaluate(load_task(f"jsonl:{data}"), backend, get_strategy("greedy"), out_dir=tmp_path / "run")
    return tmp_path / "run"


def test_audit_reports_agreement_and_each_disagreement(tmp_path):
    run = _run(tmp_path)
    a = audit_run(run)
    assert (a.samples, a.agree, a.changed) == (3, 2, 0)
    [d] = a.disagreements
    assert d.id == "q-1" and d.gold == "50000" and d.ours == "50.000" and d.rule == "phrase"
    assert (d.our_verdict, d.their_verdict) == ("correct", "wrong") and d.theirs == "50.000"

    res = CliRunner().invoke(app, ["grading", "audit", str(run)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "agree on 2 of 3 samples (66.7%)" in res.output and "q-1#0" in res.output and "50000" in res.output
    res = CliRunner().invoke(app, ["grading", "audit", str(run), "--json"])
    assert json.loads(res.output)["agreement"] == 2 / 3


def test_audit_counts_verdicts_that_changed_since_the_run(tmp_path):
    run = _run(tmp_path)
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["samples"][0]["verdict"] = "wrong"  # as an older grader might have said
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert audit_run(run).changed == 1


def test_audit_of_a_folder_that_is_no_run_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["grading", "audit", str(tmp_path)])
    assert res.exit_code == 2 and "not a run folder" in res.output and "Traceback" not in res.output
