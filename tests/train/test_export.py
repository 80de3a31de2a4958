"""export-traces: the best path per problem by the run's reward, never by the gold unless asked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.cli import app
from deliberate.errors import BadInput
from deliberate.eval.runner import evaluate
from deliberate.search import get_strategy
from deliberate.tasks import Problem, Task
from deliberate.train.export import export_traces

# Q's samples: a wrong answer with the higher confidence, a right one with the lower
TABLE = {"Q\n": [("The answer is 5.", 0.9), ("The answer is 4.", 0.6)], "R\n": [("no answer here", 0.9)]}


def run(tmp_path, strategy="best-of-n", **options):
    task = Task("toy", "toy", lambda: [Problem("q", "Q", "4"), Problem("r", "R", "1")])
    evaluate(task, ScriptedBackend(from_table(TABLE)), get_strategy(strategy, **options), out_dir=tmp_path / "run")
    return tmp_path / "run"


def test_the_run_reward_chooses_unless_correct_only_is_asked(tmp_path):
    counts = export_traces(run(tmp_path, n=2), tmp_path / "sft.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["correct"]) for r in rows] == [("q", "5", False)]  # by reward, not by gold
    assert rows[0]["solution"] == "The answer is 5." and rows[0]["strategy"] == "best-of-n"
    assert counts["written"] == 1 and counts["no_answer"] == 1
    with pytest.raises(BadInput, match="exists; pass --overwrite"):
        export_traces(tmp_path / "run", tmp_path / "sft.jsonl")
    export_traces(tmp_path / "run", tmp_path / "sft.jsonl", correct_only=True, overwrite=True)
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["correct"]) for r in rows] == [("q", "4", True)]


def test_a_run_without_rewards_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["export-traces", str(run(tmp_path, "greedy")), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "has no rewards to choose paths by" in result.output
    assert not (tmp_path / "x").exists()


def test_the_command_writes_and_counts(tmp_path):
    result = CliRunner().invoke(app, ["export-traces", str(run(tmp_path, n=2)), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0 and "1 rows ->" in result.output and "1 no answer" in result.output


@pytest.mark.slow  # reason: a real mcts run on the lab model (about 10 s)
def test_an_mcts_run_on_the_lab_model_exports_its_best_paths(tmp_path, lab):
    from deliberate.tasks import load_task

    task = load_task("lab-en")
    summary = evaluate(task, lab, get_strategy("mcts", iterations=2), limit=3, out_dir=tmp_path / "mcts")
    counts = export_traces(summary["out"], tmp_path / "sft.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert counts["written"] == len(rows) >= 1 and all(r["strategy"] == "mcts" for r in rows)
    from deliberate.eval.runner import read_rows

    recorded = {r["id"]: r for r in read_rows(tmp_path / "mcts" / "results.jsonl")}
    for r in rows:  # the path with the highest reward the run recorded for its problem
        pool = [s for s in recorded[r["id"]]["samples"] if s["answer"] is not None and s["reward"] is not None]
        assert r["reward"] == max(s["reward"] for s in pool) and len(pool) >= 1
        assert r["question"] == recorded[r["id"]]["question"] and r["solution"] in {s["text"] for s in pool}
