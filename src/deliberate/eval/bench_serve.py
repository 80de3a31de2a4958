"""`deliberate bench serve`: does the server solve concurrent requests together?

The server runs in this process on loopback; clients are threads sending real HTTP requests
(chat completions, each a different problem of the task). One run measures one request alone
(the median of `repeats`), then `concurrency` requests sent at once: their wall time, its ratio
to one request's (target, issue 14: 32 concurrent greedy requests in at most 3x one's time),
latency percentiles, and throughput in requests and generated tokens per second.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from deliberate.backends.base import Backend
from deliberate.errors import BadInput
from deliberate.tasks.base import Task

TARGET_RATIO = 3.0  # concurrent wall time / one request's, at 32 greedy requests


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def run_serve_bench(backend: Backend, task: Task, *, concurrency: int = 32, strategy: str | None = None,
                    options: dict | None = None, repeats: int = 3, window_ms: float = 5.0) -> dict:
    import httpx

    from deliberate.serve import ServeConfig, background, create_app

    problems = task.problems
    if len(problems) < concurrency + 1:
        raise BadInput(f"task {task.name} has {len(problems)} problems; the bench needs {concurrency + 1}.")
    model = f"{strategy}@{backend.spec}" if strategy else backend.spec
    app = create_app(backend, ServeConfig(model=backend.spec, batch_window_ms=window_ms,
                                          queue_size=max(256, 2 * concurrency), max_batch=max(64, concurrency)))

    with background(app) as base, httpx.Client(base_url=base, timeout=600) as http:
        def ask(i: int) -> tuple[float, int]:
            body = {"model": model, "temperature": 0, "max_tokens": task.max_tokens,
                    "messages": [{"role": "user", "content": problems[i].question}],
                    **({"deliberate": options} if options else {})}
            t0 = time.perf_counter()
            r = http.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                raise BadInput(f"the server answered {r.status_code}: {r.text[:200]}")
            return time.perf_counter() - t0, r.json()["usage"]["completion_tokens"]

        ask(0)  # warm-up: the first forward allocates
        single = [ask(1 + k % concurrency)[0] for k in range(repeats)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(ask, range(1, concurrency + 1)))
        wall = time.perf_counter() - t0
    latencies = [d[0] for d in done]
    one = statistics.median(single)
    ratio = wall / one
    return {"model": model, "task": task.name, "concurrency": concurrency, "one_request_s": round(one, 3),
            "concurrent_wall_s": round(wall, 3), "ratio": round(ratio, 2),
            **{f"latency_p{q}_s": round(_percentile(latencies, q / 100), 3) for q in (50, 90, 99)},
            "tokens_generated": sum(d[1] for d in done),
            "requests_per_s": round(concurrency / wall, 2), "tokens_per_s": round(sum(d[1] for d in done) / wall, 1),
            "batches": app.state.engine.batches, "target_ratio": TARGET_RATIO,
            "target_met": ratio <= TARGET_RATIO if strategy in (None, "greedy") and concurrency == 32 else None}
