"""Token ids between search and backend, the prefix cache, and the decode loop's per-token work."""

from __future__ import annotations

import pytest
import torch

from deliberate import SamplingParams, load_backend
from deliberate.backends.prefix_cache import PrefixCache
from deliberate.backends.sampling import sample_tokens
from deliberate.search import STRATEGIES, get_strategy
from deliberate.tasks import load_task

PROMPTS = ["Tom has 12 apples. Tom buys 7 more. How many apples does Tom have now?\n",
           "Mia has 30 pens. Mia gives away 4 pens. How many pens does Mia have now?\n"]


@pytest.fixture(scope="module")
def uncached():
    return load_backend("lab", threads=1, prefix_cache=False)


@pytest.fixture()
def fresh():
    return load_backend("lab", threads=1)  # an empty prefix cache


def test_prompts_as_text_or_ids_give_the_same_and_ids_round_trip(lab):
    params = SamplingParams(n=2, temperature=1.0, seed=3, max_tokens=40, logprobs=5)
    by_text = lab.generate(PROMPTS, params)
    by_ids = lab.generate([lab.encode(p) for p in PROMPTS], params)
    for a, b in zip(by_text, by_ids, strict=True):
        assert a.prompt_ids == b.prompt_ids == lab.encode(a.prompt) and b.prompt == a.prompt
        assert [c.text for c in a.completions] == [c.text for c in b.completions]
        for c in a.completions:
            assert lab.decode(c.token_ids) == c.text  # no stop string: the ids are the text
            assert c.n_tokens in (len(c.token_ids), len(c.token_ids) + 1)  # + the EOS, left out of the ids
    stopped = lab.generate([PROMPTS[0]], SamplingParams(temperature=0, max_tokens=40, stop=("\n",)))[0].completions[0]
    assert stopped.stop == "\n" and lab.decode(stopped.token_ids).startswith(stopped.text + "\n")


def test_a_path_extended_by_ids_continues_exactly_where_the_text_would(lab):
    """Appending generated ids to the prompt's ids reads what text re-encoding would, here."""
    step = lab.generate([PROMPTS[0]], SamplingParams(temperature=0, max_tokens=40, stop=("\n",)))[0]
    head = step.prompt_ids + step.completions[0].token_ids
    assert head == lab.encode(PROMPTS[0] + step.completions[0].text + "\n")
    greedy = SamplingParams(temperature=0, max_tokens=30)
    assert lab.generate([head], greedy)[0].completions[0].text == lab.generate(
        [PROMPTS[0] + step.completions[0].text + "\n"], greedy)[0].completions[0].text


def test_usage_counts_prompt_tokens_served_from_the_cache(fresh):
    params = SamplingParams(n=4, temperature=1.0, seed=1, max_tokens=20)
    first = fresh.generate([PROMPTS[0]], params)[0]
    assert first.cached_tokens == 3 * first.prompt_tokens  # one prefill shared by the 4 samples
    again = fresh.generate([PROMPTS[0]], params)[0]
    assert again.cached_tokens == 4 * first.prompt_tokens - 1  # all but the last prompt token, which is read
    assert [c.text for c in again.completions] == [c.text for c in first.completions]


def test_the_cache_saves_positions_and_changes_nothing(fresh, uncached):
    params = SamplingParams(n=3, temperature=1.0, seed=5, max_tokens=30, logprobs=5, stop=("\n",))
    steps = fresh.generate(PROMPTS, params)
    heads = [g.prompt_ids + c.token_ids for g in steps for c in g.completions]
    before = fresh.forward_positions, uncached.forward_positions
    on = fresh.generate(heads, SamplingParams(temperature=0.7, seed=2, max_tokens=30, logprobs=5))
    off = uncached.generate(heads, SamplingParams(temperature=0.7, seed=2, max_tokens=30, logprobs=5))
    for a, b in zip(on, off, strict=True):
        assert a.completions[0].text == b.completions[0].text
        assert [t.logprob for t in a.completions[0].logprobs] == pytest.approx(
            [t.logprob for t in b.completions[0].logprobs], abs=1e-4)
    read_on = fresh.forward_positions - before[0]
    read_off = uncached.forward_positions - before[1]
    assert read_on < read_off - sum(len(h) for h in heads) // 2  # the heads were not read again


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_gives_the_same_result_with_the_cache_on_and_off(lab, uncached, name):
    options = {"self-consistency": {"n": 4}, "best-of-n": {"n": 4}, "beam": {"width": 2, "expand": 2},
               "mcts": {"iterations": 3}, "rstar": {"iterations": 2}, "reflection": {},
               "budget-forcing": {"min_think": 40, "max_think": 60}, "self-refine": {"rounds": 1}}.get(name, {})
    task = load_task("lab-en")
    runs = []
    for backend in (lab, uncached):
        strategy = get_strategy(name, **options)
        runs.append(strategy.run(task.problems[:2], backend, task, seed=4))
    for a, b in zip(*runs, strict=True):
        assert a.answer == b.answer
        assert [(t.text, t.tokens, t.answer) for t in a.traces] == [(t.text, t.tokens, t.answer) for t in b.traces]
        assert a.compute.tokens_generated == b.compute.tokens_generated
        assert a.compute.tokens_read == b.compute.tokens_read  # billed alike; only the cached share differs


def test_the_decode_loop_decodes_a_window_per_token_not_the_whole_output(lab, monkeypatch):
    """Stop strings are checked on the new text: decoding work per token stays constant."""
    decoded = []
    real = lab.tokenizer.decode
    monkeypatch.setattr(lab.tokenizer, "decode", lambda ids, **kw: decoded.append(len(ids)) or real(ids, **kw))
    question = load_task("lab-en").problems[0].question + "\n"
    gen = lab.generate([question], SamplingParams(temperature=0, max_tokens=200, stop=("never appears",)))
    n = gen[0].completions[0].n_tokens
    assert n > 40
    per_token = [k for k in decoded if k < n - 1]  # the window decodes; the one final full decode aside
    assert max(per_token) <= 4 and sum(decoded) <= 6 * n


def test_sampling_a_batch_matches_multinomial_row_by_row():
    """The batched sampler draws what torch.multinomial with each row's generator draws."""
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(6, 50) * 3, -1)
    params = [SamplingParams(temperature=t, top_p=p, top_k=k) for t, p, k in
              [(1.0, 1.0, 0), (0.7, 0.9, 0), (1.3, 1.0, 5), (1.0, 1.0, 0), (0.5, 0.8, 10), (0, 1.0, 0)]]
    gens = [torch.Generator().manual_seed(s) for s in range(6)]
    got = sample_tokens(logp, params, gens)
    for b, p in enumerate(params):
        if p.greedy:
            assert got[b] == int(logp[b].argmax())
            continue
        x = logp[b] / p.temperature
        if p.top_k:
            x = x.masked_fill(x < torch.topk(x, p.top_k).values[-1], float("-inf"))
        if p.top_p < 1:
            sorted_x, order = torch.sort(x, descending=True)
            probs = torch.softmax(sorted_x, -1)
            x = x.index_fill(0, order[probs.cumsum(-1) - probs >= p.top_p], float("-inf"))
        assert got[b] == int(torch.multinomial(torch.softmax(x, -1), 1, generator=torch.Generator().manual_seed(b)))


def _kv(n: int, fill: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two layers of (heads=2, n, dim=4) key/values whose entries name their position."""
    pos = torch.arange(n, dtype=torch.float32)[None, :, None].expand(2, n, 4)
    return [(pos + fill, pos - fill) for _ in range(2)]


def test_radix_cache_matches_splits_and_returns_the_stored_values():
    cache = PrefixCache()
    cache.insert([1, 2, 3, 4], 0, _kv(4, 100.0))
    cache.insert([1, 2, 5], 2, [(k[:, 2:], v[:, 2:]) for k, v in _kv(3, 200.0)])  # only what is new
    n, kv = cache.match([1, 2, 5, 9])
    assert n == 3 and kv[0][0][0, :, 0].tolist() == [100.0, 101.0, 202.0]
    n, kv = cache.match([1, 2, 3, 4, 7])
    assert n == 4 and torch.equal(kv[1][1], _kv(4, 100.0)[1][1])
    assert cache.match([1, 2, 3, 4], limit=3)[0] == 3 and cache.match([9])[0] == 0
    assert len(cache) == 5  # 1,2 shared; 3,4 and 5 apart


def test_radix_cache_evicts_least_recently_used_leaves_within_its_budget():
    one = _kv(1, 0.0)
    per_token = sum(k.nelement() * k.element_size() * 2 for k, _ in one)
    cache = PrefixCache(max_bytes=10 * per_token)
    cache.insert([1, 2, 3, 4], 0, _kv(4, 0.0))
    cache.insert([5, 6, 7, 8], 0, _kv(4, 0.0))
    cache.match([1, 2, 3, 4])  # recently used: the other sequence goes first
    cache.insert([9, 10, 11, 12], 0, _kv(4, 0.0))
    assert cache.bytes <= cache.max_bytes and len(cache) == 8  # 12 tokens stored, down to 9 or less
    assert cache.match([1, 2, 3, 4])[0] == 4 and cache.match([9, 10, 11, 12])[0] == 4
    assert cache.match([5, 6, 7, 8])[0] == 0
