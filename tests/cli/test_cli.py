"""The CLI: bad input is one line and exit 2; eval writes rows, resumes after SIGKILL, is seeded."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from deliberate.cli import app

runner = CliRunner()
hf_logging.disable_progress_bar()  # as `main()` does for the real command


def run(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("args, message", [
    (["eval", "--task", "nope", "--limit", "2"], "unknown task 'nope'"),
    (["eval", "--task", "lab-en", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["eval", "--task", "lab-en", "--model", "nope", "--limit", "1"], "unknown model 'nope'"),
    (["eval", "--task", "jsonl:/nonexistent/x.jsonl"], "data file not found: /nonexistent/x.jsonl"),
    (["eval", "--task", "lab-en", "--limit", "0"], "--limit must be >= 1, got 0."),
    (["eval", "--task", "lab-en", "--strategy", "self-consistency", "--n", "-2"], "n must be >= 1, got -2."),
    (["solve", "   "], "the question is empty."),
    (["solve", "apples " * 600, "--threads", "1"], "context of 512 tokens"),
    (["eval", "--task", "lab-en", "--strategy", "beam", "--width", "0"], "width must be >= 1, got 0."),
    (["eval", "--task", "lab-en", "--strategy", "mcts", "--action", "mini-step:64", "--max-tokens", "32",
      "--limit", "1", "--threads", "1"], "larger than max_tokens=32"),
    (["eval", "--task", "lab-en", "--strategy", "mcts", "--action", "chunk:3"], "unknown action 'chunk:3'"),
    (["eval", "--task", "lab-translate-en-zh", "--strategy", "best-of-n", "--reward", "oracle", "--limit", "1",
      "--threads", "1"], "needs an answer key"),
    (["eval", "--task", "lab-en", "--strategy", "greedy", "--width", "4"], "takes no option 'width'"),
    (["solve", "2 + 2?", "--strategy", "self-consistency", "--no-discriminate"], "takes no option 'discriminate'"),
    (["eval", "--task", "lab-en", "--strategy", "beam", "--aggregate", "max"], "aggregate must be one of"),
    (["eval", "--task", "lab-en", "--strategy", "mcts", "--reward", "nope", "--limit", "1", "--threads", "1"],
     "unknown reward 'nope'"),
    (["bench", "scaling", "--budgets", "1,x"], "--budgets must be a comma-separated list"),
    (["bench", "scaling", "--strategies", "alphazero"], "unknown strategy 'alphazero'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.output


def test_unreadable_data_file(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b"\xff\xfe\x00garbage")
    r = run("eval", "--task", f"jsonl:{f}")
    assert r.exit_code == 2 and "cannot read" in r.stderr


def test_solve_prints_reasoning_and_answer():
    r = run("solve", "Tom has 3 apples. Tom buys 4 more. How many apples does Tom have now?", "--threads", "1")
    assert r.exit_code == 0, r.output
    assert "answer: " in r.stdout and "tokens generated" in r.stdout


def test_eval_json_and_rows(tmp_path):
    r = run("eval", "--task", "lab-zh", "--limit", "6", "--threads", "1", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("task", "model", "strategy", "n_problems", "accuracy", "tokens_generated", "wall_s"):
        assert key in summary
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 == summary["n_problems"]
    assert sum(r["correct"] for r in rows) == summary["correct"]
    # different settings refuse to mix into the same folder
    r = run("eval", "--task", "lab-zh", "--limit", "6", "--threads", "1", "--out", str(tmp_path), "--seed", "9")
    assert r.exit_code == 2 and "different settings (seed: 0 in the folder, 9 now)" in r.stderr


def test_same_seed_same_rows(tmp_path):
    args = ["eval", "--task", "lab-en", "--strategy", "self-consistency", "--n", "4", "--limit", "4", "--threads", "1"]
    for d in ("a", "b"):
        assert run(*args, "--out", str(tmp_path / d)).exit_code == 0
    strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "compute"}  # noqa: E731
                       for x in p.read_text().splitlines()]
    assert strip(tmp_path / "a" / "results.jsonl") == strip(tmp_path / "b" / "results.jsonl")


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_eval_resumes_without_losing_or_repeating_rows(tmp_path, seed):
    """Slow (~30 s a seed): a real `deliberate eval` SIGKILLed at several random moments (during
    start-up, between rows, mid-write), resumed each time; it ends with one row per problem, rows
    written before a kill are kept byte for byte, and each restart plans only the unfinished ones."""
    import random

    rng = random.Random(seed)
    out, total = tmp_path / "run", 30
    cmd = [sys.executable, "-m", "deliberate", "eval", "--task", "lab-en", "--strategy", "self-consistency",
           "--n", "4", "--limit", str(total), "--batch", "2", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = out / "results.jsonl"
    complete = lambda: [x for x in results.read_text().splitlines(keepends=True) if x.endswith("\n")] \
        if results.exists() else []  # noqa: E731
    kills = 0
    for _ in range(5):
        before = complete()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if rng.random() < 0.3:  # a moment during start-up or the first rows
            time.sleep(rng.uniform(0.2, 6.0))
        else:  # a moment after a random number of new rows, plus a little (may land mid-write)
            goal, deadline = len(before) + rng.randint(1, 6), time.time() + 120
            while time.time() < deadline and proc.poll() is None and len(complete()) < goal:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        stderr = proc.communicate()[1]
        now = complete()
        assert now[:len(before)] == before  # finished rows were kept, not rewritten
        if before and "resuming" in stderr:  # the restart planned only what was unfinished
            assert f"{len(before)} of {total} already done" in stderr, stderr
    assert kills >= 3
    final = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    ids = [json.loads(x)["id"] for x in results.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == total


def test_search_strategies_run_from_the_cli(tmp_path):
    for args in (["--strategy", "mcts", "--iterations", "2", "--action", "mini-step:16"],
                 ["--strategy", "beam", "--width", "2", "--expand", "2"],
                 ["--strategy", "best-of-n", "--n", "3", "--vote", "weighted"],
                 ["--strategy", "reflection"], ["--strategy", "budget-forcing", "--min-think", "80"],
                 ["--strategy", "self-refine", "--rounds", "1"],
                 ["--strategy", "rstar", "--iterations", "2", "--actions", "step,rest"]):
        r = run("eval", "--task", "lab-en", "--limit", "2", "--threads", "1", "--out", str(tmp_path / args[1]),
                "--json", *args)
        assert r.exit_code == 0, r.output
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["strategy"] == args[1] and summary["n_problems"] == 2 and summary["tokens_generated"] > 0


def test_bench_scaling_prints_a_table_and_json(tmp_path):
    r = run("bench", "scaling", "--task", "lab-zh", "--limit", "2", "--budgets", "1,2", "--strategies",
            "self-consistency,mcts-step", "--threads", "1", "--out", str(tmp_path), "--json",
            "--plot", str(tmp_path / "p.png"))
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert [(c["strategy"], c["budget"]) for c in res["cells"]] == [
        ("self-consistency", 1), ("self-consistency", 2), ("mcts-step", 1), ("mcts-step", 2)]
    assert "the mean each" in r.stdout and (tmp_path / "p.png").exists()
    r = run("bench", "scaling", "--task", "lab-zh", "--limit", "2", "--budgets", "1,2", "--strategies",
            "self-consistency,mcts-step", "--threads", "1", "--out", str(tmp_path), "--json", "--cap")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["cap"] and "a hard cap" in r.stdout
    g = res["greedy"]["tokens_per_problem"]
    for c in res["cells"]:  # capped cells live in their own folders and hold every problem to B x greedy
        assert c["out"].endswith("__cap")
        rows = [json.loads(x) for x in (Path(c["out"]) / "results.jsonl").read_text().splitlines()]
        assert all(r["compute"]["tokens_generated"] <= math.ceil(c["budget"] * g) + 160 for r in rows)


def test_demo_compares_greedy_sampling_and_both_verifiers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo writes its rows under ./runs/eval
    r = run("demo", "--limit", "2", "--n", "2", "--threads", "1")
    assert r.exit_code == 0, r.output
    for name in ("greedy", "self-consistency (n=2)", "best-of-n (n=2)", "best-of-n prm:lab (n=2)"):  # whole at 80
        assert name in r.stdout
    for name in ("self-consistency (n=2) - greedy:", "best-of-n (n=2) - greedy:", "best-of-n prm:lab (n=2) - greedy:",
                 "best-of-n prm:lab (n=2) - self-consistency (n=2):"):  # the paired noise checks
        line = next(x for x in r.stdout.splitlines() if x.startswith(name))
        assert "paired 95% CI" in line
    assert r.stdout.count("within noise.") + r.stdout.count("more than noise.") == 4
    assert "best-of-n prm:lab (n=2): its verifier also read" in r.stdout
    folders = sorted(p.name for p in (tmp_path / "runs" / "eval").iterdir())
    assert [f.rsplit("__", 1)[0] for f in folders] == ["lab-en__lab__best-of-n", "lab-en__lab__best-of-n",
                                                        "lab-en__lab__greedy",
                                                        "lab-en__lab__self-consistency"]  # as the README names them
