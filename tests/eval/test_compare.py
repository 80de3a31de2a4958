"""`compare` (paired statistics) and `reproduce` (rerun from the manifest)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.errors import BadInput
from deliberate.eval.compare import compare_runs, mcnemar_p, paired_bootstrap

runner = CliRunner()


def fake_run(folder, right: list[bool], strategy="greedy", task="lab-en", tokens=10):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"task": task, "model": "lab", "strategy": strategy, "options": {},
                                                 "seed": 0}))
    rows = [{"id": f"p{i}", "answer": "1", "correct": ok, "samples": [],
             "compute": {"tokens_generated": tokens, "tokens_read": 0, "calls": 1, "wall_s": 0.0}}
            for i, ok in enumerate(right)]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_mcnemar_exact_values():
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_p(4, 4) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_paired_bootstrap_is_seeded_and_centred():
    a = [True, False] * 50
    assert paired_bootstrap(a, a) == (0.0, 0.0)
    b = [True] * 100
    lo, hi = paired_bootstrap(a, b, seed=1)
    assert (lo, hi) == paired_bootstrap(a, b, seed=1)
    assert 0.35 < lo < 0.5 < hi < 0.65


def test_a_real_gap_and_a_noisy_one(tmp_path):
    base = [i % 2 == 0 for i in range(200)]
    better = [True] * 200  # right on all 100 problems A missed
    c = compare_runs(fake_run(tmp_path / "a", base), fake_run(tmp_path / "b", better, "self-consistency", tokens=40))
    assert (c["n_shared"], c["a"]["only_this_right"], c["b"]["only_this_right"]) == (200, 0, 100)
    assert c["difference"] == pytest.approx(0.5) and not c["within_noise"] and c["mcnemar_p"] < 1e-6
    assert c["b"]["tokens_per_problem"] == 40
    noisy = base[:]
    noisy[1], noisy[0] = True, False  # one gained, one lost
    c = compare_runs(tmp_path / "a", fake_run(tmp_path / "c", noisy))
    assert c["difference"] == 0 and c["within_noise"] and "noise" in c["verdict"]


def test_only_shared_problems_are_paired_and_bad_pairs_are_refused(tmp_path):
    c = compare_runs(fake_run(tmp_path / "a", [True] * 10), fake_run(tmp_path / "b", [False] * 4))
    assert c["n_shared"] == 4
    c = compare_runs(tmp_path / "a", tmp_path / "b", only={"p0", "p1", "p7"})  # the demo's first N
    assert c["n_shared"] == 2 and c["a"]["only_this_right"] == 2
    with pytest.raises(BadInput, match="different tasks"):
        compare_runs(tmp_path / "a", fake_run(tmp_path / "z", [True], task="gsm8k"))
    with pytest.raises(BadInput, match="not a run folder"):
        compare_runs(tmp_path / "a", tmp_path / "missing")


def test_compare_cli_warns_within_noise(tmp_path):
    fake_run(tmp_path / "a", [True, False] * 10)
    fake_run(tmp_path / "b", [False, True] * 10)
    r = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert r.exit_code == 0 and "warning" in r.output and "10" in r.output


def test_reproduce_reruns_from_the_manifest_and_finds_a_tampered_row(tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(app, ["eval", "--task", "lab-en", "--limit", "3", "--threads", "1", "--out", str(run)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["reproduce", str(run), "--out", str(tmp_path / "again"), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "rows: 3 of 3 identical" in r.output and "settings that differ: none" in r.output
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    rows[1]["answer"] = "tampered"
    (run / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    r = runner.invoke(app, ["reproduce", str(run), "--out", str(tmp_path / "third"), "--threads", "1"])
    assert r.exit_code == 1 and f"different: {rows[1]['id']}" in r.output
    r = runner.invoke(app, ["reproduce", str(tmp_path)])
    assert r.exit_code == 2 and "no manifest.json" in r.output


def test_reproduce_keeps_the_token_cap_and_sampling_settings(tmp_path):
    run = tmp_path / "capped"
    r = runner.invoke(app, ["eval", "--task", "lab-en", "--limit", "3", "--threads", "1", "--out", str(run),
                            "--strategy", "self-consistency", "--n", "3", "--max-tokens-per-problem", "40"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "manifest.json").read_text())["max_tokens_per_problem"] == 40
    r = runner.invoke(app, ["reproduce", str(run), "--out", str(tmp_path / "again"), "--threads", "1"])
    assert r.exit_code == 0 and "rows: 3 of 3 identical" in r.output, r.output
