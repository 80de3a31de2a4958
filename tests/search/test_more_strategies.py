"""best-of-n, beam/DVTS, reflection and budget forcing on scripted backends, pinned exactly."""

import pytest

from deliberate import BackendError, BadInput
from deliberate.backends.base import Capabilities
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.eval.runner import evaluate
from deliberate.lab.formats import REFLECTION
from deliberate.search import get_strategy
from deliberate.tasks import Problem, Task

TASK = Task("t", "test", lambda: [])
Q = Problem("q", "Q", "1")


def test_best_of_n_picks_the_most_confident_and_weighted_vote_sums():
    table = {"Q\n": [("The answer is 1.", 0.6), ("The answer is 2.", 0.9), ("The answer is 1.", 0.7)]}
    best = get_strategy("best-of-n", n=3)(Q, ScriptedBackend(from_table(table)), TASK)
    assert best.answer == "2" and [t.score for t in best.traces] == pytest.approx([0.6, 0.9, 0.7])
    weighted = get_strategy("best-of-n", n=3, vote="weighted")(Q, ScriptedBackend(from_table(table)), TASK)
    assert weighted.answer == "1"  # 0.6 + 0.7 > 0.9
    oracle = get_strategy("best-of-n", n=3, reward="oracle")(Q, ScriptedBackend(from_table(table)), TASK)
    assert oracle.answer == "1"


BEAM_TABLE = {
    "Q\n": [("a\n", 0.9), ("b\n", 0.4), ("c\n", 0.8), ("d\n", 0.3)],
    "Q\na\n": [("The answer is 1.", 0.9)], "Q\nb\n": [("The answer is 2.", 0.9)],
    "Q\nc\n": [("The answer is 3.", 0.2)], "Q\nd\n": [("The answer is 4.", 0.9)],
    "R\n": [("r\n", 0.7)], "R\nr\n": [("The answer is 5.", 0.7)],
}


def test_beam_keeps_the_best_and_never_mixes_problems():
    b = ScriptedBackend(from_table(BEAM_TABLE))
    res = get_strategy("beam", width=2, expand=2).run([Q, Problem("r", "R", "5")], b, TASK)
    assert [t.text for t in res[0].traces] == ["a\nThe answer is 1.", "c\nThe answer is 3."]  # a, c kept; b, d cut
    assert res[0].answer == "1" and res[1].answer == "5"
    assert all(t.text.startswith("r\n") for t in res[1].traces)
    assert b.calls == 2  # each round is one call for every beam of both problems


def test_beam_keeps_searching_after_width_paths_finish_early():
    # two root children end at once with low scores; the search must not stop there (it once did,
    # which cut the longer chains and cost 19 points on lab-en), but finish the live beams too
    table = {"Q\n": [("The answer is 7.", 0.6), ("The answer is 8.", 0.5), ("a\n", 0.9), ("b\n", 0.8)],
             "Q\na\n": [("The answer is 1.", 0.9)], "Q\nb\n": [("The answer is 2.", 0.8)]}
    res = get_strategy("beam", width=2, expand=2)(Q, ScriptedBackend(from_table(table)), TASK)
    assert res.answer == "1"
    assert sorted(t.answer for t in res.traces) == ["1", "2", "7", "8"]  # every finished path is kept


def test_dvts_subtrees_stay_independent():
    res = get_strategy("beam", width=2, expand=2, subtrees=2)(Q, ScriptedBackend(from_table(BEAM_TABLE)), TASK)
    # the root's children are dealt out a, c -> group 0 and b, d -> group 1; each group keeps its own best
    assert sorted(t.text.split("\n")[0] for t in res.traces) == ["a", "b"]


def test_beam_budget_is_never_overrun():
    long = {"Q\n": [("xxxx\n", 0.9)], "xxxx\n": [("yyyy\n", 0.9)]}
    res = get_strategy("beam", width=2, expand=2, max_tokens=12)(Q, ScriptedBackend(from_table(long)), TASK)
    assert res.traces and all(t.tokens <= 12 for t in res.traces)
    tree_tokens = [n["tokens"] for n in res.info["tree"]["nodes"]]
    assert sum(tree_tokens) <= res.compute.tokens_generated


def test_beam_settings_are_checked():
    with pytest.raises(BadInput, match="width must be >= 1, got 0"):
        get_strategy("beam", width=0)
    with pytest.raises(BadInput, match="multiple of subtrees"):
        get_strategy("beam", width=3, subtrees=2)


def test_reflection_reports_repaired_and_broken(tmp_path):
    table = {"Q\n": [("The answer is 4.", 0.9)], f"4.\n{REFLECTION}\n": [("The answer is 1.", 0.9)],
             "S\n": [("The answer is 7.", 0.9)], f"7.\n{REFLECTION}\n": [("The answer is 8.", 0.9)]}
    task = Task("t", "test", lambda: [Q, Problem("s", "S", "7")])
    res = get_strategy("reflection")(Q, ScriptedBackend(from_table(table)), task)
    assert res.answer == "1" and res.info["first_answer"] == "4" and len(res.traces) == 2
    s = evaluate(task, ScriptedBackend(from_table(table)), get_strategy("reflection"),
                 out_dir=tmp_path)
    got = (s["first_accuracy"], s["accuracy"], s["repaired"], s["repaired_share"], s["broken"])
    assert got == (0.5, 0.5, 1, 1.0, 1)


THINKS = Capabilities(max_logprobs=5, think_format=True)
THINK_TABLE = {"<think>\n": [("1 + 2 = 3\n</think>", 1.0)], "Wait\n": [("3 = 3\n</think>", 1.0)],
               "</think>\n": [("The answer is 3.", 1.0)]}


def test_budget_forcing_appends_wait_until_the_minimum():
    res = get_strategy("budget-forcing", min_think=20)(Q, ScriptedBackend(from_table(THINK_TABLE), THINKS), TASK)
    assert res.info == {"think_tokens": 18 + 14, "waits": 1}
    assert res.traces[0].text == "<think>\n1 + 2 = 3\nWait\n3 = 3\n</think>\nThe answer is 3."
    assert res.answer == "3"


def test_budget_forcing_does_not_open_a_think_the_prompt_already_opened():
    # an R1-style model's prompt ends in <think> (the lab-r1 format): budget forcing opens none
    seen = []

    def script(prompt, j, params):
        seen.append(prompt)
        return from_table(THINK_TABLE)(prompt, j, params)

    res = get_strategy("budget-forcing", min_think=20)(Q, ScriptedBackend(script, THINKS, prompt_style="lab-r1"), TASK)
    assert seen[0] == "Q\n<think>\n" and all(s.count("<think>") == 1 for s in seen)
    assert res.answer == "3" and res.info["waits"] == 1


def test_budget_forcing_forces_the_end_at_the_maximum():
    res = get_strategy("budget-forcing", max_think=6)(Q, ScriptedBackend(from_table(THINK_TABLE), THINKS), TASK)
    assert res.info == {"think_tokens": 6, "waits": 0}
    assert res.traces[0].text == "<think>\n1 + 2 \n</think>\nThe answer is 3."


def test_budget_forcing_drops_a_line_the_budget_cut_short():
    """A number cut in half (`3 + 4 = 1` of `3 + 4 = 12`) is not left for the answer to copy; the
    cut tokens still count as thinking."""
    table = {"<think>\n": [("1 + 2 = 3\n3 + 4 = 12\n</think>", 1.0)], "</think>\n": [("The answer is 3.", 1.0)]}
    backend = ScriptedBackend(from_table(table), THINKS)
    full = get_strategy("budget-forcing", max_think=100)(Q, backend, TASK)
    assert full.traces[0].text == "<think>\n1 + 2 = 3\n3 + 4 = 12\n</think>\nThe answer is 3."
    cut = get_strategy("budget-forcing", max_think=19)(Q, backend, TASK)  # a token a character: "...3 + 4 = 1"
    assert cut.traces[0].text == "<think>\n1 + 2 = 3\n</think>\nThe answer is 3."
    assert cut.info["think_tokens"] == 19
    # cut right after a forced Wait: the bare Wait goes with the unfinished line
    table = {"<think>\n": [("1 + 2 = 3\n</think>", 1.0)], "Wait\n": [("3 + 4 = 12\n</think>", 1.0)],
             "</think>\n": [("The answer is 3.", 1.0)]}
    waited = get_strategy("budget-forcing", min_think=19, max_think=22)(Q, ScriptedBackend(from_table(table), THINKS),
                                                                         TASK)
    assert waited.info["waits"] == 1 and waited.traces[0].text == "<think>\n1 + 2 = 3\n</think>\nThe answer is 3."


def test_budget_forcing_needs_a_think_format():
    with pytest.raises(BackendError, match="no think format"):
        get_strategy("budget-forcing")(Q, ScriptedBackend(from_table(THINK_TABLE), Capabilities(),
                                                          prompt_style="completion"), TASK)
    with pytest.raises(BadInput, match="min_think must be <= max_think"):
        get_strategy("budget-forcing", min_think=10, max_think=5)


def test_self_refine_stops_at_a_fixpoint_or_when_feedback_says_correct():
    from deliberate.search.self_refine import ASK_REWRITE

    table = {"Q\n": [("The answer is 4.", 0.9)], "Feedback:": [(" Step 1 is wrong.", 0.9)],
             ASK_REWRITE: [("The answer is 1.", 0.9)]}
    b = ScriptedBackend(from_table(table))
    res = get_strategy("self-refine", rounds=3)(Q, b, TASK)
    assert res.info["answers"] == ["4", "1", "1"] and res.answer == "1"  # round 2 repeats round 1: stop
    assert res.info["feedback"] == ["Step 1 is wrong.", "Step 1 is wrong."] and b.calls == 5
    happy = {**table, "Feedback:": [(" The solution is correct.", 0.9)]}
    res = get_strategy("self-refine", rounds=3)(Q, ScriptedBackend(from_table(happy)), TASK)
    assert res.info["answers"] == ["4"] and res.answer == "4"


def test_mcts_can_reflect_after_each_rollout():
    table = {"Q\n": [("a\n", 0.8)], "a\n": [("The answer is 4.", 0.9)], f"{REFLECTION}\n": [("The answer is 1.", 0.6)]}
    res = get_strategy("mcts", iterations=1, reflect=True)(Q, ScriptedBackend(from_table(table)), TASK)
    assert res.traces[0].text == f"a\nThe answer is 4.\n{REFLECTION}\nThe answer is 1."
    assert res.answer == "1"
    assert res.traces[0].score == pytest.approx((2 * 0.8 + 16 * 0.9 + 16 * 0.6) / 34)


def test_multi_round_strategies_stop_where_the_context_ends():
    small = Capabilities(max_logprobs=5, think_format=True, context_length=200)
    table = {"Q\n": [("The answer is 4.", 0.9)], f"{REFLECTION}\n": [("The answer is 1.", 0.9)]}
    res = get_strategy("reflection", rounds=10)(Q, ScriptedBackend(from_table(table), small), TASK)
    assert res.info["rounds"] == 1  # a second reflection would not fit in 200 tokens (characters here)
    res = get_strategy("budget-forcing", min_think=500, max_think=600)(
        Q, ScriptedBackend(from_table(THINK_TABLE), small), TASK)
    assert res.answer == "3" and res.info["waits"] >= 5  # thought on, then stopped before the context ran out
