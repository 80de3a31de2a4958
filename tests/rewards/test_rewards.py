"""Rewards pinned to the number: Marco-o1's confidence, consistency, oracle, aggregates."""

import math

import pytest

from deliberate import BackendError, BadInput, UnknownName
from deliberate.backends.base import Capabilities, TokenLogprob
from deliberate.backends.scripted import ScriptedBackend
from deliberate.rewards import Path, check_reward, get_reward, path_value
from deliberate.search.tree import token_confidence
from deliberate.tasks import Problem, Task

TASK = Task("t", "test", lambda: [])
PROBLEM = Problem("p", "q", "3")


def test_token_confidence_normalizes_over_the_top_five_only():
    top = [("a", math.log(0.4)), ("b", math.log(0.2)), ("c", math.log(0.1)), ("d", math.log(0.05)),
           ("e", math.log(0.05)), ("f", math.log(0.2))]  # the sixth is ignored
    assert token_confidence(TokenLogprob("b", math.log(0.2), top)) == pytest.approx(0.2 / 0.8)
    assert token_confidence(TokenLogprob("a", math.log(0.4), top)) == pytest.approx(0.5)
    with pytest.raises(BadInput, match="top-k logprobs"):
        token_confidence(TokenLogprob("a", -1.0, []))


def test_confidence_is_the_running_token_mean():
    scores = get_reward("confidence")(PROBLEM, [Path(["ab", "c"], [[0.5, 1.0], [0.25]], "3")])
    assert scores[0] == pytest.approx([0.75, (0.5 + 1.0 + 0.25) / 3])
    with pytest.raises(BadInput, match="token confidences"):
        get_reward("confidence")(PROBLEM, [Path(["ab", "c"], [[0.5]], "3")])


def test_consistency_and_oracle():
    paths = [Path(["x"], [], "3"), Path(["y", "z"], [], "3.0"), Path(["w"], [], "4"), Path(["v"], [], None)]
    assert get_reward("consistency")(PROBLEM, paths) == [[1 / 3], [1 / 3, 1 / 3], [0.0], [0.0]]
    assert get_reward("oracle", task=TASK)(PROBLEM, paths) == [[1.0], [1.0, 1.0], [0.0], [0.0]]


def test_aggregates_and_names():
    assert path_value([0.9, 0.2, 0.5], "min") == 0.2
    assert path_value([0.9, 0.2, 0.5], "mean") == pytest.approx(1.6 / 3)
    assert path_value([], "last") == 0.0
    with pytest.raises(BadInput, match="aggregate"):
        path_value([1.0], "max")
    with pytest.raises(UnknownName, match="confidence"):
        get_reward("prm-of-dreams")
    with pytest.raises(BadInput, match="answer key"):
        get_reward("oracle", task=Task("open", "no key", lambda: [], kind="translate"))


def test_a_backend_without_logprobs_is_refused_before_generating():
    b = ScriptedBackend(lambda *a: [], Capabilities(max_logprobs=0))
    with pytest.raises(BackendError, match="needs top-5 logprobs"):
        check_reward(get_reward("confidence"), b)
    check_reward(get_reward("consistency"), b)  # needs nothing


def test_self_eval_reads_yes_and_no_from_the_model():
    from deliberate.backends.base import Scored
    from deliberate.backends.scripted import from_table

    class Judge(ScriptedBackend):
        """Says Yes (logprob -0.1 vs -2.3) to a step ending in '= 7', No otherwise."""

        def score(self, prompts, continuations):
            out = []
            for p, c in zip(prompts, continuations, strict=True):
                right = p.split("\nIs the last step")[0].endswith("= 7\n")
                lp = -0.1 if (c == " Yes") == right else -2.3
                out.append(Scored([c], [lp], len(p)))
            return out

    judge = Judge(from_table({}))
    reward = get_reward("self-eval", task=TASK, backend=judge)
    scores = reward(PROBLEM, [Path(["3 + 4 = 7\n", "7 * 2 = 15\n"], [], None)])
    p_yes = 1 / (1 + math.exp(-2.3 + 0.1))
    assert scores == [[pytest.approx(p_yes), pytest.approx(1 - p_yes)]]
    spent = reward.backend.usage_of(PROBLEM.id)  # billed once, to the problem it judged
    assert spent.verifier_calls == 1 and spent.verifier_tokens > 0 and spent.tokens_generated == 0
    with pytest.raises(BackendError, match="needs continuation scoring"):
        get_reward("self-eval", task=TASK, backend=ScriptedBackend(from_table({}), Capabilities(scoring=False)))


def test_a_strategy_fails_before_generating_when_the_backend_cannot_feed_its_reward():
    from deliberate.backends.scripted import from_table
    from deliberate.search import get_strategy

    for name in ("best-of-n", "beam", "mcts"):
        b = ScriptedBackend(from_table({}), Capabilities(max_logprobs=0))
        with pytest.raises(BackendError, match="needs top-5 logprobs"):
            get_strategy(name)(PROBLEM, b, TASK)
        assert b.calls == 0


def test_tool_reward_zeroes_a_finished_solution_the_calculator_proves_wrong():
    tool = get_reward("tool", task=TASK)
    right = Path(["3 + 4 = 7\n", "7 * 2 = 14\n", "The answer is 14."], [[0.5], [1.0], [0.75]], "14")
    slip = Path(["3 + 4 = 7\n", "7 * 2 = 15\n", "The answer is 15."], [[0.9], [0.9], [0.9]], "15")
    open_slip = Path(["3 + 4 = 8\n"], [[0.6]], None)  # unfinished: a checker of whole answers cannot judge it yet
    assert tool(PROBLEM, [right, slip, open_slip]) == [pytest.approx([0.5, 0.75, 0.75]), [0.0, 0.0, 0.0], [0.6]]
    assert tool.needs_logprobs == 5
    with pytest.raises(BadInput, match="needs the task"):
        get_reward("tool")
    game = Task("g", "24", lambda: [], kind="game24")
    ok, bad = Path(["(4 + 8) * (3 - 1)"], [[0.5]], "x"), Path(["4 + 8 + 3 + 1"], [[0.9]], "x")
    assert get_reward("tool", task=game)(Problem("q", "1 3 4 8", "24"), [ok, bad]) == [[0.5], [0.0]]
