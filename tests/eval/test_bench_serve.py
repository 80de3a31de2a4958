"""`deliberate bench serve` on a scripted backend: real HTTP, concurrent requests batched."""

import pytest

from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.tasks import Problem, Task

pytest.importorskip("fastapi")


def test_the_serve_bench_sends_concurrent_requests_and_reports_them():
    from deliberate.eval.bench_serve import run_serve_bench

    task = Task("t", "test", lambda: [Problem(str(i), f"Q{i}", "1") for i in range(9)])
    backend = ScriptedBackend(from_texts({"Q": ["The answer is 1."]}))
    r = run_serve_bench(backend, task, concurrency=8, repeats=2, window_ms=20)
    assert r["concurrency"] == 8 and r["one_request_s"] > 0 and r["concurrent_wall_s"] > 0
    assert r["latency_p50_s"] <= r["latency_p90_s"] <= r["latency_p99_s"]
    assert r["tokens_generated"] == 8 * 16 and r["tokens_per_s"] > 0  # each request 16 characters
    assert r["batches"] < 1 + 2 + 8 and r["target_met"] is None  # the 8 came in fewer batches than requests
    with pytest.raises(Exception, match="needs 10"):
        run_serve_bench(backend, Task("s", "small", lambda: task.problems[:3]), concurrency=9)
