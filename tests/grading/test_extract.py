"""The five ways the grader used to misread answers, each with several cases (issue 10), and the
property that a number inside a larger expression is never the answer."""

from __future__ import annotations

import random

import pytest

from deliberate.grading import compare, extract_answer, find_answer, grade, is_equivalent


# 1. After an answer phrase the answer is the whole expression, not its first number.
@pytest.mark.parametrize("text, gold_number, whole", [
    ("So the answer is $2\\sqrt{3}$.", "2", "12"),  # 2*sqrt(3) is not 2; (2 sqrt 3)^2 = 12 is checked below
    ("The final answer is $3^2$.", "3", "9"),
    ("Answer: $\\frac{10}{9}$", "10", "10/9"),
    ("the answer is $(7, 6)$.", "7", "(7,6)"),
    ("the final answer is $14{,}916$", "14", "14916"),
    ("The answer is 3^2.", "3", "9"),
    ("The answer is \\frac{4}{3}.", "4", "4/3"),
    ("La réponse est $\\frac{5}{2}$.", "5", "2.5"),
    ("Die Antwort ist $2^{10}$.", "2", "1024"),
    ("答案是 $\\frac{1}{3}$。", "1", "1/3"),
    ("Final Answer: The final answer is $7!$. I hope it is correct.", "7", "5040"),
])
def test_phrase_takes_the_whole_expression(text, gold_number, whole):
    assert not is_equivalent(gold_number, extract_answer(text))
    if whole != "12":
        assert is_equivalent(whole, extract_answer(text))


def test_a_number_after_a_phrase_still_reads_plainly():
    assert extract_answer("The answer is 18 apples.") == "18"
    assert extract_answer("The answer is: **18** apples.") == "18"
    assert extract_answer("Thus, the answer is 7 + (-2) + 0 = 5. Check: 5 - 1 = 4.") == "5"
    assert extract_answer("Final Answer: The largest $n$ is 34.") == "34"  # a bare symbol gives way to its value
    assert find_answer("So the answer is $2\\sqrt{3}$.").rule == "phrase-math"


KINDS = [
    lambda n, k: f"{n}\\sqrt{{{k}}}", lambda n, k: f"{n}^{k}", lambda n, k: f"\\frac{{{n}}}{{{k}}}",
    lambda n, k: f"{n}!", lambda n, k: f"({n}, {k})", lambda n, k: f"{n} x + {k}", lambda n, k: f"{n}\\pi",
    lambda n, k: f"{n}.{k}5", lambda n, k: f"[{n}, {n + k}]",
]
WRAPS = [
    "The answer is {e}.", "So the final answer is ${e}$.", "Answer: {e}", "#### {e}", "\\boxed{{{e}}}",
    "Die Antwort ist ${e}$.", "答案是 {e}。", "La respuesta es ${e}$.", "Ответ: {e}.", "{e}", "${e}$",
]


@pytest.mark.parametrize("seed", range(3))
def test_no_number_inside_a_larger_expression_grades_as_that_number(seed):
    rng = random.Random(seed)
    for _ in range(60):
        n, k = rng.randint(2, 99), rng.randint(2, 9)
        expr = rng.choice(KINDS)(n, k)
        text = rng.choice(WRAPS).format(e=expr)
        assert compare(str(n), extract_answer(text)) != "correct", (text, extract_answer(text))


# 2. Numbers as the language writes them.
@pytest.mark.parametrize("text, gold", [
    ("Die Antwort lautet 2,5.", "2.5"), ("Die Antwort ist 50.000 Euro.", "50000"),
    ("Die Antwort ist 1.234,50 €.", "1234.5"), ("Die Antwort ist 1.5.", "1.5"),
    ("La réponse est 1 200 €.", "1200"), ("La réponse est 2,75 kg.", "2.75"), ("La réponse est 12\u202f500.", "12500"),
    ("La respuesta es 3,5.", "3.5"), ("La respuesta es 50 000.", "50000"), ("La respuesta es 1.500 pesos.", "1500"),
    ("Ответ: 2,5.", "2.5"), ("Ответ — 1 200 000.", "1200000"), ("Ответ: 0,75 литра.", "0.75"),
    ("উত্তর হল ১,০০,০০০।", "100000"), ("The answer is 1,250.", "1250"), ("The answer is 1,250.75.", "1250.75"),
    ("答案是 1,000。", "1000"), ("答えは2,500です。", "2500"),
])
def test_numbers_read_in_the_phrase_language(text, gold):
    assert is_equivalent(gold, extract_answer(text)), extract_answer(text)


@pytest.mark.parametrize("text, lang, gold", [
    ("Sie hat 2,5 Liter.", "de", "2.5"), ("Es sind 50.000 Menschen.", "de", "50000"),
    ("Il reste 1 200 pommes.", "fr", "1200"), ("Quedan 3,25 metros.", "es", "3.25"),
    ("Осталось 10 500 рублей.", "ru", "10500"), ("She has 1,250 apples.", "en", "1250"),
    ("She has 1.500 kg.", "en", "1.5"),
])
def test_the_tasks_language_reads_numbers_without_a_phrase(text, lang, gold):
    assert grade(text, gold, lang=lang).correct, grade(text, gold, lang=lang)


@pytest.mark.parametrize("text, gold", [
    ("\\boxed{\\$16,\\!386.20}", "16386.20"), ("\\boxed{14{,}916}", "14916"), ("\\boxed{1\\,000}", "1000"),
    ("\\boxed{1\\ 000\\ 000}", "1000000"), ("The answer is $\\$1{,}200$.", "1200"), ("\\boxed{10\\%}", "10"),
])
def test_latex_number_markup(text, gold):
    assert is_equivalent(gold, extract_answer(text)), extract_answer(text)


def test_decimal_commas_do_not_break_english_or_lists():
    assert extract_answer("The answer is 1,250.") == "1250"
    assert extract_answer("We count 1,2,3 and get 3") == "3"
    assert not is_equivalent("1.2", extract_answer("\\boxed{1,2}"))  # in LaTeX a bare comma separates items


# 3. Several boxes: a set when the gold is one, else the last box.
@pytest.mark.parametrize("text, gold, ok", [
    ("The roots are \\boxed{2} and \\boxed{3}.", "\\{2, 3\\}", True),
    ("The roots are \\boxed{2} and \\boxed{3}.", "2, 3", True),
    ("The roots are \\boxed{3} and \\boxed{2}.", "\\{2, 3\\}", True),
    ("\\boxed{(1, 2)}, \\boxed{(2, 1)}", "(1, 2), (2, 1)", True),
    ("The roots are \\boxed{2} and \\boxed{4}.", "\\{2, 3\\}", False),
    ("First \\boxed{12}, corrected: \\boxed{15}", "15", True),  # not a set: the last box stands
    ("First \\boxed{12}, corrected: \\boxed{15}", "12", False),
])
def test_several_boxes(text, gold, ok):
    assert is_equivalent(gold, extract_answer(text)) is ok
    assert grade(text, gold).correct is ok


# 4. The last-number fallback only where the gold is a number.
@pytest.mark.parametrize("text, gold", [
    ("x must be larger than 5 so", "x > 5"), ("the interval from 0 to 1", "[0, 1]"),
    ("Then we get 3 and 4 as the pair", "(3, 4)"), ("so it is 2 times pi", "2\\pi"),
])
def test_no_guess_for_a_non_numeric_gold(text, gold):
    g = grade(text, gold)
    assert g.rule == "last-number" and g.verdict == "no-answer" and "not a number" in g.why
    assert compare(gold, extract_answer(text)) == "no-answer"


def test_the_last_math_span_is_an_answer_for_any_gold():
    assert grade("Therefore $x \\geq 5$ is the solution.", "x \\ge 5").correct
    assert grade("So the interval is $[0, 1)$ here", "[0,1)").rule == "last-math"
    assert grade("She has 7 apples.", "7").rule == "last-number"


# 5. An echoed header is not an answer phrase.
@pytest.mark.parametrize("text, expected", [
    ("Step-by-Step Answer: 2 + 3 = 5. Then 5 * 4 = 20.", "20"),
    ("Step-by-step answer: Tom has 4 pens. He buys 3 more: 4 + 3 = 7", "7"),
    ("Step by step answer: 6 * 2 = 12, then 12 - 1 = 11", "11"),
])
def test_an_echoed_header_is_not_the_answer(text, expected):
    ex = find_answer(text)
    assert ex.answer == expected and ex.rule == "last-number"


def test_rules_say_which_path_fired():
    assert {r: find_answer(t).rule for r, t in [
        ("boxed", "\\boxed{7}"), ("phrase", "The answer is 7."), ("phrase-math", "The answer is $7$."),
        ("####", "#### 7"), ("whole", "\\frac{1}{2}"), ("last-math", "so we get $x=2$ in the end"),
        ("last-number", "7 apples in all"), ("none", "no digits"), ("unclosed-think", "<think>7"),
    ]} == {r: r for r in ("boxed", "phrase", "phrase-math", "####", "whole", "last-math", "last-number", "none",
                         "unclosed-think")}


def test_final_answer_after_a_box_wins_but_a_check_does_not():
    assert extract_answer("so $\\boxed{200}$ then ... Final Answer: The final answer is $10,455$. I hope") == "10455"
    assert extract_answer("Therefore x = \\boxed{44}.\nWe may check our answer: 17*44 = 748.") == "44"
