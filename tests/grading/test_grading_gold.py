"""Gold against itself: the grader, given each benchmark's own gold solution (or the gold answer
in the benchmark's answer phrase), must find an answer equivalent to the gold, for every row of
GSM8K (test and train), MGSM (all 11 languages) and MATH-500 in the shared data. A rule that
misreads a gold solution would misread a model that writes like it."""

from __future__ import annotations

import csv
import json

import pytest

from deliberate.errors import BadInput
from deliberate.grading import compare, find_answer
from deliberate.tasks import data_dir
from deliberate.tasks.loaders import gsm8k_gold

LANGS = ("en", "zh", "ja", "de", "fr", "es", "ru", "th", "sw", "bn", "te")

try:
    DATA = data_dir()
except BadInput:
    DATA = None
needs_data = pytest.mark.skipif(DATA is None or not (DATA / "gsm8k").is_dir(), reason="shared benchmark data missing")


def misses(pairs) -> list:
    """(where, gold, completion) triples whose extracted answer is not judged equivalent to the gold."""
    return [(where, gold, find_answer(text)) for where, gold, text in pairs
            if compare(gold, find_answer(text).answer) != "correct"]


@needs_data
@pytest.mark.parametrize("split, rows", [("test", 1319), ("train", 7473)])
def test_gsm8k_gold_solutions(split, rows):
    lines = (DATA / "gsm8k" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    pairs = [(f"{split}:{i}", gsm8k_gold(r["answer"], f"{split}:{i}"), r["answer"])
             for i, r in enumerate(json.loads(x) for x in lines)]
    assert len(pairs) == rows
    assert misses(pairs) == []


@needs_data
@pytest.mark.parametrize("lang", LANGS)
def test_mgsm_gold_in_the_languages_answer_phrase(lang):
    """The bare gold, and the question followed by the exemplars' localized closing sentence with
    the gold in it (the question's own numbers are distractors)."""
    closing = json.loads((DATA / "mgsm" / "exemplars.json").read_text(encoding="utf-8"))["exemplars"][lang][0]["a"]
    closing = closing.strip().splitlines()[-1]
    assert "11" in closing  # the first exemplar's answer
    with (DATA / "mgsm" / f"mgsm_{lang}.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 250
    pairs = [(f"{lang}:{i}", gold, text) for i, (q, gold) in enumerate(rows)
             for text in (gold, q + "\n" + closing.replace("11", gold))]
    assert misses(pairs) == []


@needs_data
def test_math500_gold_solutions():
    rows = [json.loads(x) for x in (DATA / "math500" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 500
    assert misses([(r["unique_id"], r["answer"], r["solution"]) for r in rows]) == []
