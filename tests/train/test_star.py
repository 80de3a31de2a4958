"""STaR on the lab model: one tiny iteration, its data, its log, and a resume that redoes nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from deliberate.errors import BadInput
from deliberate.grading import grade
from deliberate.tasks import load_task
from deliberate.train.star import StarConfig, train_star

pytest.importorskip("trl")

TINY = dict(iterations=1, problems=8, samples=2, valid_limit=4, max_steps=2, batch_size=4, save_steps=2, threads=1)


def test_one_iteration_keeps_right_rationales_under_the_plain_question(tmp_path):
    rows = train_star(StarConfig(out=str(tmp_path / "star"), **TINY), log=lambda _: None)
    assert [r["iteration"] for r in rows] == [0, 1]
    first = rows[1]
    data = [json.loads(line) for line in (tmp_path / "star" / "iter-1" / "data.jsonl").read_text().splitlines()]
    assert len(data) == first["train_rows"] == first["kept"] + first["rationalized"] > 0
    gold = {p.id: p for p in load_task("lab-en-train").problems[:8]}
    for d in data:  # every kept rationale reaches the answer, and is trained without the hint
        assert grade(d["solution"], gold[d["id"]].answer, "math", "en").correct
        assert d["question"] == gold[d["id"]].question and "Hint" not in d["question"]
    assert 0.0 <= first["valid_accuracy"] <= 1.0
    model = tmp_path / "star" / "iter-1" / "model" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    again = train_star(StarConfig(out=str(tmp_path / "star"), resume=True, **TINY), log=lambda _: None)
    assert again == rows and model.stat().st_mtime_ns == stamp  # read back, not retrained


def test_star_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(BadInput, match="no STaR run to resume"):
        train_star(StarConfig(out=str(tmp_path / "none"), resume=True, **TINY))
    with pytest.raises(BadInput, match="--samples must be >= 1"):
        train_star(StarConfig(out=str(tmp_path / "x"), **{**TINY, "samples": 0}))


def test_a_star_run_killed_inside_an_iteration_resumes_it(tmp_path):
    out = tmp_path / "star"
    rows = train_star(StarConfig(out=str(out), **TINY), log=lambda _: None)
    # as if killed during iteration 1's fine-tuning, before its first checkpoint
    (out / "star_log.jsonl").write_text((out / "star_log.jsonl").read_text().splitlines()[0] + "\n")
    for p in (out / "iter-1" / "model").iterdir():
        if p.name != "run_config.json":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    again = train_star(StarConfig(out=str(out), resume=True, **TINY), log=lambda _: None)
    assert [r["iteration"] for r in again] == [0, 1] and again[1]["train_rows"] == rows[1]["train_rows"]
    saved = json.loads((out / "iter-1" / "model" / "run_config.json").read_text())
    assert saved["model"] == "lab"  # each iteration fine-tunes the starting model, not the last one
    with pytest.raises(BadInput, match="differ from the run.*temperature"):
        train_star(StarConfig(out=str(out), resume=True, **{**TINY, "temperature": 0.9}))
    with pytest.raises(BadInput, match="validation must be held out"):
        train_star(StarConfig(out=str(tmp_path / "y"), **{**TINY, "valid_task": "lab-en-train"}))
