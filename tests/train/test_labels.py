"""`deliberate label`: Math-Shepherd labels on a scripted backend whose true success shares are
known, OmegaPRM's first-error search against full labelling, resume, and the refusals."""

import json

import pytest

from deliberate import BadInput
from deliberate.backends.metered import Meter
from deliberate.backends.scripted import ScriptedBackend
from deliberate.tasks import Problem, Task
from deliberate.train import labels
from deliberate.train.labels import LabelConfig, label_problems, split_steps

Q = Problem("q", "Q", "10")
TASK = Task("t-train", "test", lambda: [Q])
RIGHT, WRONG = "The answer is 10.", "The answer is 7."
SOLUTIONS = ["a\nb\n" + RIGHT, "a\nx\ny\n" + WRONG]  # the second goes wrong at its second step


def script(prompt: str, j: int, params):
    """Solutions for the question; from a prefix, rollouts whose share of right answers is known:
    3 in 4 after `a`, all after `a b`, none once `x` was written."""
    if prompt == "Q\n":
        text = SOLUTIONS[j % 2]
    elif "x\n" in prompt:
        text = WRONG
    elif prompt.endswith("a\n"):
        text = WRONG if j % 4 == 0 else "b\n" + RIGHT
    else:
        text = RIGHT
    return [(ch, -0.1, [(ch, -0.1)]) for ch in text]


def run(**options):
    backend = Meter(ScriptedBackend(script))
    cfg = LabelConfig(task="t-train", samples=2, **{"rollouts": 4, **options})
    return label_problems([Q], backend, TASK, cfg), backend


def test_soft_and_hard_labels_are_the_rollouts_success_shares():
    rows, _ = run()
    right, wrong = rows
    assert right["completions"] == ["a\n", "b\n", RIGHT] and right["correct"]
    assert right["soft_labels"] == [0.75, 1.0, 1.0] and right["labels"] == [True, True, True]
    assert wrong["completions"] == ["a\n", "x\n", "y\n", WRONG] and not wrong["correct"]
    assert wrong["soft_labels"] == [0.75, 0.0, 0.0, 0.0] and wrong["labels"] == [True, False, False, False]
    assert (right["rollouts"], wrong["rollouts"]) == (8, 12)  # K per prefix but the last (the solution itself)
    assert "".join(wrong["completions"]) == SOLUTIONS[1] and wrong["prompt"] == "Q\n"


def test_first_error_search_agrees_with_full_labelling_for_fewer_rollouts():
    full, _ = run()
    fast, backend = run(first_error=True)
    assert [r["labels"] for r in fast] == [r["labels"] for r in full]
    assert fast[0]["rollouts"] == 0  # a right solution: every step right, no rollout
    assert fast[1]["rollouts"] == 8 < full[1]["rollouts"]  # two probes (steps 1 then 0) against three
    assert fast[1]["soft_labels"] is None
    assert backend.usage_of("q").tokens_generated > 0  # rollouts are billed to their problem


def test_no_rollouts_gives_outcome_labels_at_the_cost_of_the_samples_alone():
    rows, backend = run(rollouts=0)
    assert [r["labels"] for r in rows] == [[True] * 3, [False] * 4]
    assert [r["rollouts"] for r in rows] == [0, 0] and rows[0]["soft_labels"] is None
    assert backend.calls == 1  # the solutions, nothing else


def test_first_error_at_the_first_step():
    def bad_start(prompt, j, params):
        text = "x\ny\n" + WRONG if prompt == "Q\n" else WRONG
        return [(ch, -0.1, [(ch, -0.1)]) for ch in text]

    cfg = LabelConfig(task="t-train", samples=1, rollouts=2, first_error=True)
    (row,) = label_problems([Q], Meter(ScriptedBackend(bad_start)), TASK, cfg)
    assert row["labels"] == [False, False, False]


@pytest.mark.parametrize("text,steps", [
    ("a\nb\nc", ["a\n", "b\n", "c"]),
    ("a\n\nb\n", ["a\n\n", "b\n"]),
    ("only", ["only"]),
    ("\na\nb", ["\na\n", "b"]),
])
def test_split_steps_gives_the_text_back(text, steps):
    assert split_steps(text) == steps and "".join(steps) == text


def test_resume_skips_labelled_problems_and_redoes_a_cut_line(tmp_path, monkeypatch):
    p2 = Problem("r", "R", "10")
    task = Task("t-train", "test", lambda: [Q, p2])
    calls = []

    def fake_backend(spec, **kw):
        calls.append(spec)
        return ScriptedBackend(lambda prompt, j, params: [(c, -0.1, [(c, -0.1)]) for c in RIGHT])

    monkeypatch.setattr("deliberate.tasks.load_task", lambda name: task)
    monkeypatch.setattr("deliberate.backends.load_backend", fake_backend)
    out = tmp_path / "labels.jsonl"
    cfg = LabelConfig(task="t-train", out=str(out), samples=1, rollouts=2, batch=1)
    seen = []
    labels.label_task(cfg, on_batch=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 2), (2, 2)] and len(out.read_text().splitlines()) == 2
    first, second = out.read_text().splitlines()
    out.write_text(first + "\n" + second[:20])  # killed while writing the second problem's row
    seen.clear()
    totals = labels.label_task(cfg, on_batch=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 1)]  # only the cut problem again
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["q", "r"]
    assert totals["problems"] == 2 and totals["solutions"] == 2 and totals["right_steps"] == 1.0


@pytest.mark.parametrize("options,words", [
    (dict(task="lab-en"), "not a training or validation split"),
    (dict(task="gsm8k"), "not a training or validation split"),
    (dict(rollouts=-1), "--rollouts must be >= 1"),
    (dict(rollouts=0, first_error=True), "--rollouts must be >= 1"),
    (dict(temperature=0.0), "--temperature must be > 0"),
])
def test_bad_options_are_refused(options, words):
    with pytest.raises(BadInput, match=words):
        LabelConfig(**options).validate()


def test_the_label_command_on_the_lab_model(tmp_path):
    from typer.testing import CliRunner

    from deliberate.cli import app

    out = tmp_path / "labels.jsonl"
    args = ["label", "--task", "lab-en-train", "--limit", "2", "--samples", "2", "--rollouts", "2", "--threads", "1",
            "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and "4 solutions of 2 problems" in res.output
    for r in rows:
        assert len(r["labels"]) == len(r["completions"]) == len(r["soft_labels"]) >= 1
        assert r["labels"][-1] == r["correct"] and r["rollouts"] == 2 * (len(r["completions"]) - 1)
        assert all(0 <= v <= 1 for v in r["soft_labels"])
    assert any(r["rollouts"] > 0 for r in rows)  # some solution has steps before its last, so rollouts ran
    again = CliRunner().invoke(app, args)  # all done: nothing relabelled
    assert again.exit_code == 0 and len(out.read_text().splitlines()) == 4
    bad = CliRunner().invoke(app, ["label", "--task", "lab-en", "--out", str(tmp_path / "x.jsonl")])
    assert bad.exit_code != 0 and "not a training or validation split" in bad.output
