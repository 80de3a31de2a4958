"""--max-tokens-per-problem is a hard cap for every strategy: never exceeded by more than one
step's max_tokens, whatever the strategy does, and the strategy still ends with a result."""

from __future__ import annotations

import pytest

from deliberate.backends.metered import Meter
from deliberate.eval.runner import evaluate, read_rows
from deliberate.params import SamplingParams
from deliberate.search import STRATEGIES, get_strategy
from deliberate.tasks import load_task

CAP = 50  # below what greedy spends on most lab problems (about 60 tokens)
SETTINGS = {  # each strategy sized to want far more than the cap
    "greedy": {}, "self-consistency": {"n": 8}, "best-of-n": {"n": 8}, "beam": {"width": 2, "expand": 4},
    "mcts": {"iterations": 8}, "reflection": {"rounds": 4}, "budget-forcing": {"min_think": 200, "max_think": 300},
    "self-refine": {"rounds": 3}, "rstar": {"iterations": 4},
}


def test_every_strategy_is_listed_here():
    assert set(SETTINGS) == set(STRATEGIES)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_cap_holds_for_every_strategy(lab, tmp_path, name):
    task = load_task("lab-en")
    s = evaluate(task, lab, get_strategy(name, **SETTINGS[name]), limit=2, out_dir=tmp_path,
                 max_tokens_per_problem=CAP)
    rows = read_rows(tmp_path / "results.jsonl")
    assert len(rows) == 2 and s["errors"] == 0, [r.get("error") for r in rows]
    for r in rows:
        assert r["compute"]["tokens_generated"] <= CAP + task.max_tokens, r["compute"]
    if name != "greedy":
        assert s["capped"] >= 1  # each wanted more than the cap, so the cap must have cut something


def _in_order(completions, budget):
    """Samples drawn in order under a budget: each whole, or cut at exactly what was left, and
    nothing after a cut one."""
    left, cut = budget, False
    for c in completions:
        if cut:
            assert c.n_tokens == 0 and c.finish_reason == "length"
            continue
        assert c.n_tokens <= left
        if c.finish_reason == "length":
            assert c.n_tokens == left
            cut = True
        left -= c.n_tokens
    return budget - left


def test_the_meter_draws_samples_in_order_each_allowed_what_is_left(lab):
    meter = Meter(lab, cap=30)
    gens = meter.generate(["Mia has 3 apples. How many apples does Mia have now?\n"] * 2,
                          SamplingParams(n=3, temperature=1.0, seed=0, max_tokens=100), owners=["a", "a"])
    spent = _in_order([c for g in gens for c in g.completions], 30)
    assert spent == meter.usage_of("a").tokens_generated == 30  # a lab solution is longer than 10 tokens
    assert gens[0].completions[0].n_tokens > 5  # the first sample is not starved to share with the rest
    again = Meter(lab, cap=30).generate(["Mia has 3 apples. How many apples does Mia have now?\n"] * 2,
                                        SamplingParams(n=3, temperature=1.0, seed=0, max_tokens=100),
                                        owners=["a", "a"])
    assert [c.text for g in again for c in g.completions] == [c.text for g in gens for c in g.completions]
    assert "a" in meter.capped
    empty = meter.generate(["x\n"], SamplingParams(n=2, max_tokens=10, logprobs=5), owners=["a"])[0].completions
    assert [(c.text, c.n_tokens, c.finish_reason) for c in empty] == [("", 0, "length")] * 2


def test_a_cap_that_cannot_bind_changes_nothing(lab):
    prompt = ["Mia has 3 apples. How many apples does Mia have now?\n"]
    params = SamplingParams(n=3, temperature=1.0, seed=0, max_tokens=100)
    meter = Meter(lab, cap=300)  # 3 x 100 tokens fit: one call, the backend's own samples
    gens = meter.generate(prompt, params, owners=["a"])
    assert [c.text for c in gens[0].completions] == [c.text for c in lab.generate(prompt, params)[0].completions]
    assert meter.usage_of("a").calls == 1 and not meter.capped


def test_the_cap_is_per_problem_inside_a_batch(lab):
    """Problems batched into one call each get their own budget: one spent does not starve another."""
    meter = Meter(lab, cap=30)
    meter.usage_of("spent").tokens_generated = 30
    gens = meter.generate(["Mia has 3 apples. How many apples does Mia have now?\n"] * 2,
                          SamplingParams(n=2, temperature=1.0, seed=0, max_tokens=100), owners=["spent", "fresh"])
    assert [c.n_tokens for c in gens[0].completions] == [0, 0]
    assert gens[1].completions[0].n_tokens > 0 and _in_order(gens[1].completions, 30) <= 30
    assert "spent" in meter.capped
    assert meter.usage_of("fresh").tokens_generated == sum(c.n_tokens for c in gens[1].completions)
