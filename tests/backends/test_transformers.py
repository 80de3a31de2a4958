"""The transformers backend on the lab model (fast) and on SmolLM2 from GGUF (slow: 20 s load)."""

import math

import pytest

from deliberate import BackendError, BadInput, SamplingParams, UnknownName, load_backend
from deliberate.lab.generator import heldout_split

PROMPTS = [p.question["en"] + "\n" for p in heldout_split(6)]


def test_greedy_is_deterministic_and_batch_independent(lab):
    params = SamplingParams(temperature=0, max_tokens=40)
    batched = [g.completions[0].text for g in lab.generate(PROMPTS, params)]
    single = [lab.generate([p], params)[0].completions[0].text for p in PROMPTS[:3]]
    assert batched[:3] == single
    assert batched == [g.completions[0].text for g in lab.generate(PROMPTS, params)]


def test_seeded_samples_do_not_depend_on_the_batch(lab):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=40, seed=11)
    alone = [c.text for c in lab.generate([PROMPTS[2]], params)[0].completions]
    with_others = [c.text for c in lab.generate(PROMPTS, params)[2].completions]
    assert alone == with_others
    other_seed = [c.text for c in lab.generate([PROMPTS[2]], SamplingParams(n=4, temperature=1.0, max_tokens=40,
                                                                              seed=12))[0].completions]
    assert other_seed != alone


def test_samples_of_one_prompt_share_a_prefill_without_changing_the_result(lab):
    """The n samples of a prompt are prefilled once and the cache copied; the logprobs must be
    those of decoding each sample on its own (same prompt passed as separate requests)."""
    params = SamplingParams(n=3, temperature=0, max_tokens=30, logprobs=5)
    shared = lab.generate([PROMPTS[0]], params)[0].completions
    separate = [g.completions[0] for g in lab.generate([PROMPTS[0], PROMPTS[1]], SamplingParams(
        temperature=0, max_tokens=30, logprobs=5))[:1]]
    assert len({c.text for c in shared}) == 1 and shared[0].text == separate[0].text
    for a, b in zip(shared[2].logprobs, separate[0].logprobs, strict=True):
        assert a.token == b.token and math.isclose(a.logprob, b.logprob, abs_tol=1e-4)


def test_per_prompt_params_and_accounting(lab):
    gens = lab.generate(PROMPTS[:2], [SamplingParams(n=3, temperature=1.0, seed=1, max_tokens=8),
                                      SamplingParams(temperature=0, max_tokens=5)])
    assert [len(g.completions) for g in gens] == [3, 1]
    assert all(c.n_tokens <= 8 for c in gens[0].completions)
    assert gens[1].completions[0].n_tokens <= 5
    assert gens[0].prompt_tokens == len(lab.tokenizer(PROMPTS[0]).input_ids)
    assert gens[0].tokens_generated == sum(c.n_tokens for c in gens[0].completions)
    assert {c.finish_reason for g in gens for c in g.completions} <= {"stop", "length"}


def test_logprobs_top5_and_score_agree(lab):
    g = lab.generate([PROMPTS[0]], SamplingParams(temperature=0, max_tokens=30, logprobs=5))[0].completions[0]
    assert len(g.logprobs) == g.n_tokens
    for t in g.logprobs:
        lps = [lp for _, lp in t.top]
        assert len(t.top) == 5 and lps == sorted(lps, reverse=True)
        assert t.logprob == pytest.approx(lps[0])  # greedy picks the top token
        assert math.log(sum(math.exp(x) for x in lps)) <= 1e-6
    text = g.text
    scored = lab.score([PROMPTS[0]], [text])[0]
    n = len(scored.logprobs)
    assert scored.logprobs == pytest.approx([t.logprob for t in g.logprobs[:n]], abs=1e-4)


def test_stop_strings_cut_the_text(lab):
    c = lab.generate([PROMPTS[0]], SamplingParams(temperature=0, max_tokens=60, stop=("\n",)))[0].completions[0]
    assert "\n" not in c.text and c.stop == "\n" and c.finish_reason == "stop"


def test_prompt_longer_than_the_context_is_bad_input(lab):
    with pytest.raises(BadInput, match="context of 512 tokens"):
        lab.generate(["apples " * 600], SamplingParams(max_tokens=4))


def test_unknown_and_missing_models():
    with pytest.raises(UnknownName, match="choose one of"):
        load_backend("no-such-model")
    with pytest.raises(BackendError, match="GGUF file not found"):
        load_backend("gguf:/nonexistent/model.gguf")


@pytest.mark.slow
def test_smollm2_from_gguf_top5_logprobs(smollm2):
    """The real pretrained checkpoint nobody here trained, through the same code path."""
    assert smollm2.prompt_style == "chat" and smollm2.capabilities.chat_template
    prompt = smollm2.render_chat([{"role": "user", "content": "What is 2 + 3? Reply with the number only."}])
    g = smollm2.generate([prompt], SamplingParams(temperature=0, max_tokens=12, logprobs=5))[0]
    c = g.completions[0]
    assert "5" in c.text
    for t in c.logprobs:
        lps = [lp for _, lp in t.top]
        assert len(lps) == 5 and lps == sorted(lps, reverse=True) and t.logprob == pytest.approx(lps[0])
        assert math.log(sum(math.exp(x) for x in lps)) <= 1e-6
    scored = smollm2.score([prompt], [c.text])[0]
    assert scored.total < 0
