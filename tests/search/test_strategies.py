"""Strategies on a scripted backend, so votes and compute are checked exactly."""

import pytest

from deliberate import BadInput, UnknownName, get_strategy
from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.grading.vote import majority
from deliberate.search.base import problem_seed
from deliberate.tasks import Problem, Task

TASK = Task("t", "test", lambda: [])


def backend():
    return ScriptedBackend(from_texts({
        "apples": ["1 + 2 = 3\nThe answer is 3.", "The answer is 4.", "The answer is 3.", "so 9"],
        "pears": ["The answer is 10."],
    }))


def test_greedy_takes_the_first_script_and_counts_tokens():
    b = backend()
    res = get_strategy("greedy")(Problem("a", "How many apples?", "3"), b, TASK, seed=0)
    assert res.answer == "3"
    assert res.compute.tokens_generated == len("1 + 2 = 3\nThe answer is 3.")
    assert res.compute.tokens_read == len("How many apples?\n")
    assert res.compute.calls == 1


def test_self_consistency_votes_and_batches_problems():
    b = backend()
    probs = [Problem("a", "How many apples?", "3"), Problem("b", "How many pears?", "10")]
    results = get_strategy("self-consistency", n=8).run(probs, b, TASK, seed=3)
    assert b.calls == 1  # both problems in one backend call
    assert [r.answer for r in results] == ["3", "10"]
    assert len(results[0].traces) == 8
    assert results[0].compute.tokens_generated == sum(t.tokens for t in results[0].traces)


def test_majority_ties_go_to_the_first_and_equal_numbers_vote_together():
    assert majority(["4", "3", "3", "4"]) == "4"
    assert majority([None, "1,000", "7", "1000.0"]) == "1,000"
    assert majority([None, None]) is None


def test_problem_seed_is_stable_and_distinct():
    a, b = Problem("x", "", ""), Problem("y", "", "")
    assert problem_seed(1, a) == problem_seed(1, a) != problem_seed(1, b) != problem_seed(2, b)


def test_bad_options():
    with pytest.raises(UnknownName, match="greedy"):
        get_strategy("tree-of-everything")
    with pytest.raises(BadInput, match="n must be >= 1, got -1"):
        get_strategy("self-consistency", n=-1)
    with pytest.raises(BadInput, match="takes no option 'n'"):
        get_strategy("greedy", n=4)


def test_same_seed_same_result_on_the_lab_model(lab):
    from deliberate import load_task

    task = load_task("lab-en")
    probs = task.problems[:4]
    sc = get_strategy("self-consistency", n=4, temperature=1.0)
    a = [[t.text for t in r.traces] for r in sc.run(probs, lab, task, seed=5)]
    b = [[t.text for t in r.traces] for r in sc.run(probs[::-1], lab, task, seed=5)][::-1]
    assert a == b
