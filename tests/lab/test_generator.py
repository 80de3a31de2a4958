import random
import re

import pytest

from deliberate.lab.generator import Difficulty, heldout_split, make_problem, train_stream
from deliberate.lab.train import CURRICULUM


def check_solution(p):
    """Every step line is true arithmetic, chained, and the last value is the answer."""
    for line in p.steps:
        a, op, b, _, c = line.split()
        assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b),
                "/": int(a) // int(b)}[op] == int(c), line
        if op == "/":
            assert int(a) % int(b) == 0
    assert int(p.steps[-1].split()[-1]) == p.answer


def test_problems_are_correct_in_both_languages():
    rng = random.Random(0)
    for _ in range(500):
        p = make_problem(rng, Difficulty(1, 5, max_number=30))
        check_solution(p)
        assert p.solution("en").endswith(f"The answer is {p.answer}.")
        assert p.solution("zh").endswith(f"答案是 {p.answer}。")
        # the same numbers appear in both languages
        assert sorted(re.findall(r"\d+", p.question["en"])) == sorted(re.findall(r"\d+", p.question["zh"]))


def test_difficulty_knob():
    rng = random.Random(1)
    easy = [make_problem(rng, Difficulty(1, 1, max_distractors=0)) for _ in range(200)]
    hard = [make_problem(rng, Difficulty(5, 5, max_distractors=2)) for _ in range(200)]
    assert all(p.n_ops == 1 for p in easy) and all(p.n_ops == 5 for p in hard)
    assert sum(len(p.question["en"]) for p in hard) > 2 * sum(len(p.question["en"]) for p in easy)
    with pytest.raises(ValueError):
        Difficulty(3, 2)


def test_test_split_is_fixed_and_disjoint_from_training():
    a, b = heldout_split(50), heldout_split(50)
    assert [p.question["en"] for p in a] == [p.question["en"] for p in b]
    keys = {p.key() for p in heldout_split()}
    stream = train_stream(5, CURRICULUM, keys)
    assert not any(next(stream).key() in keys for _ in range(3000))
    # the exclusion really filters: a stream drawn from the test seed would collide
    from deliberate.lab.generator import TEST_SEED, VALID_SEED
    with pytest.raises(ValueError):
        next(train_stream(TEST_SEED, CURRICULUM, keys))
    with pytest.raises(ValueError):
        next(train_stream(VALID_SEED, CURRICULUM, keys))


def test_every_equivalent_form_is_true_arithmetic_with_the_same_answer():
    from deliberate.lab.formats import solution_lines

    rng = random.Random(2)
    for _ in range(300):
        p = make_problem(rng, Difficulty(1, 6, max_number=30))
        lines = solution_lines(p, rng)
        for line in lines:
            lhs, rhs = line.split(" = ")
            assert eval(lhs) == int(rhs), line  # noqa: S307 - our own "a op b" lines
        assert int(lines[-1].split(" = ")[1]) == p.answer
        assert solution_lines(p) == p.steps  # no rng: the canonical forms


def test_the_hard_split_is_one_step_longer_with_larger_numbers():
    import re
    from statistics import mean

    from deliberate.tasks import load_task

    base, hard = load_task("lab-en").problems, load_task("lab-en-hard").problems
    assert len(hard) == 500 and len({p.id for p in hard}) == 500
    assert mean(p.meta["ops"] for p in hard) >= mean(p.meta["ops"] for p in base) + 0.9
    biggest = lambda ps: max(int(n) for p in ps for n in re.findall(r"\d+", p.question))  # noqa: E731
    assert biggest(hard) > biggest(base)
    zh = load_task("lab-zh-hard").problems
    assert [p.answer for p in zh] == [p.answer for p in hard]  # row i is the same problem in both languages
    assert not {p.question for p in hard} & {p.question for p in load_task("lab-en-train").problems}
