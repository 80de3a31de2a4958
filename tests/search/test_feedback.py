"""External feedback for self-refine and reflection: the calculator, Game of 24's checker, the
PRM's first low step, and the strategies acting only where a critic finds something."""

from __future__ import annotations

from fractions import Fraction

import pytest

from deliberate import BadInput
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.grading.calculator import feedback_line, first_wrong
from deliberate.grading.game24 import why_not_24
from deliberate.lab.formats import REFLECTION
from deliberate.search import get_strategy
from deliberate.search.feedback import Critic, first_low
from deliberate.search.self_refine import ASK_FEEDBACK, ASK_REWRITE
from deliberate.tasks import Problem, Task

TASK = Task("t", "test", lambda: [])
Q = Problem("q", "Q", "14")


@pytest.mark.parametrize("steps, found", [
    (["3 + 4 = 7\n", "7 * 2 = 14\n", "The answer is 14."], None),
    (["3 + 4 = 7\n", "7 * 2 = 15\n"], (1, "7 * 2", "15", Fraction(14))),
    (["1 + 4 * 2 = 9"], None),  # precedence, as written
    (["(3 + 4) * 2 = 15"], (0, "(3 + 4) * 2", "15", Fraction(14))),
    (["She pays 1,200 / 4 = $300 a month."], None),
    (["7 / 2 = 3.5"], None),
    (["7 / 2 = 3"], (0, "7 / 2", "3", Fraction(7, 2))),
    (["3 × 4 = 13"], (0, "3 × 4", "13", Fraction(12))),
    (["小明有 3 + 5 = 8 个苹果。"], None),
    (["x = 5, so y = 10"], None),  # a statement of a value is no calculation to re-check
    (["5 - 2 = 3\n", "10 / 0 = 4"], None),  # not a number: nothing the calculator can say
])
def test_the_calculator_finds_the_first_wrong_calculation(steps, found):
    assert first_wrong(steps) == found


def test_feedback_lines_name_the_step_and_the_true_value():
    assert feedback_line(["3 + 4 = 7\n", "7 * 2 = 15\n"]) == "Step 2 is wrong: 7 * 2 is 14, not 15."
    assert feedback_line(["7 / 2 = 3"]) == "Step 1 is wrong: 7 / 2 is 3.5, not 3."
    assert feedback_line(["3 + 4 = 7"]) is None


def test_game24_checker_says_why_an_expression_fails():
    assert why_not_24("4 5 6 10", "(10 - 6) * (5 + 4) / ... \n(5 * 4) + 10 - 6") is None
    assert why_not_24("4 5 6 10", "4 * 6 = 24") == "The expression uses 4 6; it must use 4 5 6 10 once each."
    assert why_not_24("4 5 6 10", "4 + 5 + 6 + 10") == "The expression is 25, not 24."
    assert why_not_24("4 5 6 10", "") == "There is no expression."


def test_tasks_own_their_tool():
    assert TASK.tool_check(Q, "3 + 4 = 7\n7 * 2 = 15\nThe answer is 15.") == "Step 2 is wrong: 7 * 2 is 14, not 15."
    game = Task("g", "24", lambda: [], kind="game24")
    assert game.tool_check(Problem("p", "4 5 6 10", "4 5 6 10"), "4 + 5 + 6 + 10") == "The expression is 25, not 24."
    assert Task("tr", "x", lambda: [], kind="translate").tool_check(Q, "Hallo") is None


def test_a_prm_critic_names_the_first_step_below_the_threshold():
    assert first_low(["a\n", "b\n", "c"], [0.9, 0.4, 0.1], 0.5) == 'Step 2 ("b") looks wrong.'
    assert first_low(["a\n", "b\n"], [0.9, 0.4], 0.3) is None
    critic = Critic("tool", TASK, None)
    critic.kind, critic.reward = "prm", lambda problem, paths: [[0.9, 0.2] if "15" in p.text else [0.9, 0.8]
                                                               for p in paths]
    assert critic(Q, ["3 + 4 = 7\n7 * 2 = 15\n", "3 + 4 = 7\n7 * 2 = 14\n"]) == [
        'Step 2 ("7 * 2 = 15") looks wrong.', None]


def test_bad_feedback_settings_are_refused():
    with pytest.raises(BadInput, match="unknown feedback"):
        get_strategy("self-refine", feedback="oracle")
    with pytest.raises(BadInput, match="needs a process reward model"):
        get_strategy("reflection", feedback="prm", verifier="confidence")
    with pytest.raises(BadInput, match="threshold"):
        get_strategy("self-refine", feedback="prm", threshold=1.5)


WRONG = "3 + 4 = 7\n7 * 2 = 15\nThe answer is 15."
RIGHT = "3 + 4 = 7\n7 * 2 = 14\nThe answer is 14."


def test_self_refine_with_a_tool_rewrites_only_what_the_calculator_rejects():
    table = {"Q\n": [(WRONG, 0.9)], ASK_REWRITE: [(RIGHT, 0.9)], ASK_FEEDBACK: [(" The solution is correct.", 0.9)]}
    b = ScriptedBackend(from_table(table))
    res = get_strategy("self-refine", rounds=3, feedback="tool")(Q, b, TASK)
    assert res.info["answers"] == ["15", "14"] and res.answer == "14"
    assert res.info["feedback"] == ["Step 2 is wrong: 7 * 2 is 14, not 15.", "The solution is correct."]
    assert b.calls == 2  # the first attempt and one rewrite: the model was never asked for feedback
    intrinsic = get_strategy("self-refine", rounds=3)(Q, ScriptedBackend(from_table(table)), TASK)
    assert intrinsic.answer == "15"  # the model's own review called the wrong solution correct
    right = get_strategy("self-refine", rounds=3, feedback="tool")(
        Q, ScriptedBackend(from_table({**table, "Q\n": [(RIGHT, 0.9)]})), TASK)
    assert right.info["answers"] == ["14"]  # nothing wrong found: kept as it was


def test_reflection_with_a_tool_reflects_only_where_it_finds_an_error_and_names_it():
    # the repair comes only where the calculator's line stands before the phrase
    table = {"Q\n": [(WRONG, 0.9)], f"7 * 2 is 14, not 15.\n{REFLECTION}\n": [(RIGHT, 0.9)],
             f"{REFLECTION}\n": [(WRONG, 0.9)]}
    b = ScriptedBackend(from_table(table))
    res = get_strategy("reflection", rounds=3, feedback="tool")(Q, b, TASK)
    assert res.info["answers"] == ["15", "14"] and res.info["feedback"] == [
        "Step 2 is wrong: 7 * 2 is 14, not 15.", None]
    assert b.calls == 2
    kept = get_strategy("reflection", rounds=3, feedback="tool")(
        Q, ScriptedBackend(from_table({"Q\n": [(RIGHT, 0.9)], f"{REFLECTION}\n": [(WRONG, 0.9)]})), TASK)
    assert kept.answer == "14" and kept.info["rounds"] == 0  # blind reflection would have broken it
    blind = get_strategy("reflection", rounds=1)(
        Q, ScriptedBackend(from_table({"Q\n": [(RIGHT, 0.9)], f"{REFLECTION}\n": [(WRONG, 0.9)]})), TASK)
    assert blind.answer == "15"


def test_self_refine_keeps_room_for_a_critics_line_not_for_feedback_it_need_not_generate():
    from deliberate.backends.base import Capabilities

    line = "Step 2 is wrong: 7 * 2 is 14, not 15."
    head = "Q\n" + WRONG + "\n\n"
    own = len(head + ASK_FEEDBACK) + 2 * 64 + 2 * len(WRONG) + 32  # the model's review: 2 x 64 tokens of room
    critic = len(head + f"Feedback: {line}\n" + ASK_REWRITE) + 2 * len(WRONG) + 32  # the line as written
    assert critic < own
    table = {"Q\n": [(WRONG, 0.9)], ASK_REWRITE: [(RIGHT, 0.9)], ASK_FEEDBACK: [(" It is wrong.", 0.9)]}
    caps = Capabilities(max_logprobs=20, scoring=True, context_length=critic)  # the critic's round fits, no more
    tool = get_strategy("self-refine", rounds=1, feedback="tool")(Q, ScriptedBackend(from_table(table), caps), TASK)
    assert tool.info["feedback"] == [line] and tool.answer == "14"
    own_review = get_strategy("self-refine", rounds=1)(Q, ScriptedBackend(from_table(table), caps), TASK)
    assert own_review.info["feedback"] == [] and own_review.answer == "15"  # no room for its round
