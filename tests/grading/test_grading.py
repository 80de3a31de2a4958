import threading

import pytest

from deliberate.grading import check_24, extract_answer, find_answer, is_equivalent


@pytest.mark.parametrize("text, expected", [
    ("3 + 4 = 7\nThe answer is 7.", "7"),
    ("First 12, then 5.\nThe answer is 17. Next question has 99", "17"),
    ("罗杰有 5 个球。5 + 6 = 11。答案是 11。", "11"),
    ("5 + 6 = 11. 答えは11です。", "11"),
    ("... Die Antwort ist 1,234.", "1234"),
    ("La réponse est 42.", "42"),
    ("La respuesta es $1,200.50.", "1200.50"),
    ("Ответ — 8.", "8"),
    ("คำตอบคือ 29", "29"),
    ("Jibu ni 33.", "33"),
    ("উত্তর হল ৩৯।", "39"),  # Bengali digits
    ("సమాధానం 5.", "5"),
    ("The answer is: **18** apples.", "18"),
    ("She earns $18 a day.\n#### 18", "18"),
    ("#### 1,080", "1080"),
    ("so x = \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}"),
    ("\\boxed{\\{1, 2\\}} and then \\boxed{(0, \\infty)}", "(0, \\infty)"),
    ("It costs 3 dollars, then 4.5 dollars, total 7.5 dollars", "7.5"),
    ("She has -3 apples", "-3"),
    ("no digits at all", None),
    ("<think>2+2=4, the answer is 4</think>The answer is 5.", "5"),
    ("<think>2+2=4 and I keep thinking", None),
    ("The answer is 12, because 3 * 4 = 12.", "12"),
    # found by the gold-against-itself audit (tests/test_grading_gold.py):
    ("so the answer is $3! \\times 5! = \\boxed{720}$.", "720"),  # a boxed answer after working in the phrase
    ("the final answer is 15 gallons * 8 pints = <<15*8=120>>120 pints\n#### 120", "120"),  # '=' chain, calculator
    ("Thus, the answer is 7 + (-2) + 0 = 5. Check: 5 - 1 = 4.", "5"),  # last '=' of the phrase's own sentence
    ("Therefore x = \\boxed{44}.\nWe may check our answer: 17*44 = 748 = 9*83+1.", "44"),  # boxed beats a later phrase
    ("The answer is 7.\n#### 8", "8"),  # the later of a phrase and ####
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extraction_says_which_rule_found_it():
    assert find_answer("The answer is 7.").rule == "phrase"
    assert find_answer("#### 7").rule == "####"
    assert find_answer("\\boxed{7}").rule == "boxed"
    assert find_answer("7 apples").rule == "last-number"
    ex = find_answer("xx The answer is 42.")
    assert "xx The answer is 42."[slice(*ex.span)] == "42"


@pytest.mark.parametrize("gold, pred", [
    ("18", "18.0"), ("1080", "1,080"), ("0.5", "1/2"), ("\\frac{1}{2}", "0.5"), ("25", "$25"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("\\{1,2\\}", "\\{2,1\\}"), ("(0,1]", "(0,1]"),
    ("x=3", "3"), ("2x+1", "1+2x"), ("\\dfrac{3}{4}", "\\frac{3}{4}"), ("10\\%", "10"), ("-5", "-5.00"),
])
def test_equivalent(gold, pred):
    assert is_equivalent(gold, pred)


@pytest.mark.parametrize("gold, pred", [
    ("18", "17"), ("1/3", "0.333"), ("[1,2)", "(1,2)"), ("\\{1,2\\}", "\\{1,3\\}"), ("5", None), ("5", ""),
    ("2x+1", "2x-1"), ("1080", "108"),
])
def test_not_equivalent(gold, pred):
    assert not is_equivalent(gold, pred)


def test_grading_is_safe_off_the_main_thread():
    results = []
    t = threading.Thread(target=lambda: results.append(is_equivalent("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}")))
    t.start()
    t.join(timeout=60)
    assert results == [True]


def test_grading_is_bounded_in_worker_processes():
    """Each worker process gets its own helper; a hanging comparison is a timeout there too."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from deliberate.grading import compare

    golds = ["\\frac{1}{2}", "\\frac{1}{2}", "x+1", "3"]
    preds = ["9^{9^{9^{9}}}", "0.5", "1+x", "4"]
    start = time.time()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        verdicts = list(pool.map(compare, golds, preds, [1.0] * 4))
    assert verdicts == ["timeout", "correct", "correct", "wrong"]
    assert time.time() - start < 60


@pytest.mark.parametrize("puzzle, output, ok", [
    ("4 5 6 10", "(10 - 6) * 5 + 4 = 24", True),
    ("4 5 6 10", "Answer: (10 - 6) * 5 + 4", True),
    ("1 1 4 6", "steps...\n6 * 4 * 1 * 1 = 24", True),
    ("3 3 8 8", "8 / (3 - 8 / 3) = 24", True),  # needs exact fractions
    ("4 5 6 10", "(10 - 4) * (6 - 5) * 4 = 24", False),  # 4 used twice, 5 and 6 once
    ("1 1 4 6", "(1 + 1 + 4) * 6 = 24", False),  # equals 36
    ("1 1 4 6", "6 * 4 = 24", False),  # numbers unused
    ("1 1 4 6", "6 * 4 * 1 * 1 ** 2", False),  # ** is not allowed
    ("1 1 4 6", "", False),
])
def test_check_24(puzzle, output, ok):
    assert check_24(puzzle, output) is ok
