"""Reading one number as its language writes it (deliberate.grading.numbers)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from deliberate.grading.numbers import find_numbers, read_number, read_numeral


@pytest.mark.parametrize("text, lang, value", [
    ("1,250", None, 1250), ("1,250", "en", 1250), ("1,250.5", "de", Fraction(2501, 2)),  # both marks: unambiguous
    ("2,5", "de", Fraction(5, 2)), ("50.000", "de", 50000), ("1.234,5", "de", Fraction(2469, 2)),
    ("1.5", "de", Fraction(3, 2)), ("1.500", "es", 1500), ("1.500", "en", Fraction(3, 2)),
    ("1 200", "fr", 1200), ("1 200 000", "ru", 1200000), ("0,75", "ru", Fraction(3, 4)),
    ("1,00,000", "bn", 100000), ("12,50,000", "te", 1250000),
    ("1,22", None, Fraction(61, 50)), ("0,111", None, Fraction(111, 1000)), ("1000,99", None, Fraction(100099, 100)),
    ("2,125", "de", 2125),  # the one ambiguous form: thousands everywhere (module docstring)
    ("1\u202f000", "en", 1000), ("1 000", None, 1000), ("14{,}916", None, 14916), ("16,\\!386.20", None,
                                                                                 Fraction(81931, 5)),
    ("$1,200.50", None, Fraction(2401, 2)), ("1 200 €", "fr", 1200), ("18 apples", None, 18), ("10\\%", None, 10),
    ("-3/4", None, Fraction(-3, 4)), (".4", None, Fraction(2, 5)),
])
def test_read_number(text, lang, value):
    assert read_number(text, lang) == value


@pytest.mark.parametrize("text", ["2 x", "3^2", "2\\sqrt{3}", "(7, 6)", "5!", "\\frac{1}{2}", "AZYUK2A", "x"])
def test_not_one_number(text):
    assert read_number(text) is None


def test_canonical_numerals_keep_what_was_written():
    assert read_numeral("$1,200.50") == "1200.50" and read_numeral("2,5", "de") == "2.5"


def test_latex_commas_separate_items():
    assert read_number("1,2", latex=True) is None and read_number("1,200", latex=True) == 1200


def test_running_text_does_not_join_english_numbers_by_spaces():
    assert [m.group() for m in find_numbers("3 100-gram bags", "en")] == ["3", "100"]
    assert [m.group() for m in find_numbers("3 100 pommes", "fr")] == ["3 100"]
