"""`eval --ray`: a local Ray cluster (two workers on this machine) gives a local run's rows; a
killed worker is replaced and its batch rerun; a killed driver resumes; no row is lost or
written twice. Rows are compared without wall time and prompt-cache hits, which depend on
what each worker's cache saw before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from deliberate.eval.distributed import ray_executor, start_ray  # noqa: E402
from deliberate.eval.runner import evaluate  # noqa: E402
from deliberate.search import get_strategy  # noqa: E402
from deliberate.tasks import load_task  # noqa: E402

pytestmark = pytest.mark.slow  # reason: a local Ray cluster with two workers, each loading the lab model


def _rows(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    for r in rows:
        r["compute"].pop("wall_s"), r["compute"].pop("tokens_cached")
    return rows


@pytest.fixture(scope="module")
def cluster():
    start_ray(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_rows(lab, tmp_path_factory):
    task = load_task("lab-en")
    out = tmp_path_factory.mktemp("local")
    evaluate(task, lab, get_strategy("greedy"), limit=24, out_dir=out, batch_problems=4)
    return {r["id"]: r for r in _rows(out)}


def test_ray_gives_the_local_rows_and_survives_a_killed_worker(cluster, lab, local_rows, tmp_path):
    task, strategy = load_task("lab-en"), get_strategy("greedy")
    actors: list = []
    execute = ray_executor("lab", {"threads": 1}, task, strategy, 0, workers=2, actors=actors)
    done: list[dict] = []
    run = threading.Thread(target=lambda: done.append(evaluate(task, lab, strategy, limit=24, out_dir=tmp_path,
                                                               batch_problems=2, executor=execute)))
    run.start()
    results = tmp_path / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline, "no row came back from the Ray workers"
        time.sleep(0.05)
    ray.kill(actors[0])  # a worker dies with its batch in flight (or idle): replaced, the batch rerun
    run.join(timeout=300)
    assert not run.is_alive() and done
    rows = _rows(tmp_path)
    assert len(rows) == len({r["id"] for r in rows}) == 24  # nothing lost, nothing twice
    assert {r["id"]: r for r in rows} == local_rows
    assert done[0]["accuracy"] == sum(r["correct"] for r in local_rows.values()) / 24


def test_a_killed_driver_resumes_without_losing_or_repeating_a_row(local_rows, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deliberate", "eval", "--ray", "local", "--workers", "2", "--task", "lab-en",
           "--limit", "24", "--threads", "1", "--batch", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 180
    while not (results.exists() and results.read_text().count("\n") >= 3):
        assert driver.poll() is None and time.monotonic() < deadline, "the --ray run wrote no rows"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the cluster it started, at once
    driver.wait()
    before = results.read_text().count("\n")
    assert 3 <= before < 24
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-500:]
    assert f"resuming: {before} of 24 already done" in again.stderr.replace("\n", " ")
    rows = _rows(out)
    assert len(rows) == len({r["id"] for r in rows}) == 24
    assert {r["id"]: r for r in rows} == local_rows
