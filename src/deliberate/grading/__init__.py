"""Grading: find the final answer in a chain of thought, decide equivalence, explain the verdict.

One call grades one completion: `grade(completion, gold, kind=..., lang=...)` gives the answer,
the rule that found it (`extract`), its span, the verdict and, where the verdict needs one, why.
Extraction reads the answer whole (a `\\boxed{}`, the expression after an answer phrase in any of
the 11 MGSM languages, `#### N`; `deliberate.grading.extract`); numbers are read as the text's
language writes them (`deliberate.grading.numbers`). `compare` decides: two plain numbers are
compared exactly as rationals (so `18.0 == 18` but `0.333 != 1/3`), anything else with
math-verify (fractions, LaTeX, sets, intervals, equations, matrices) in a helper process with a
deadline (`deliberate.grading.symbolic`). Two rules keep guesses out: a number picked out of
running text (no box, no phrase) is an answer only when the gold is a number, and several boxed
answers are compared as a set only when the gold is a set (else the last box stands).
Think-format output is read after `</think>`; thinking that never closes has no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from deliberate.grading.extract import ANSWER_PHRASES, Extraction, _boxes, find_answer
from deliberate.grading.game24 import check_24
from deliberate.grading.numbers import read_number
from deliberate.grading.symbolic import SYMBOLIC_TIMEOUT_S, WORKER

__all__ = ["ANSWER_PHRASES", "Answer", "Extraction", "Grade", "RowGrade", "SYMBOLIC_TIMEOUT_S", "check_24",
           "compare", "extract", "extract_answer", "find_answer", "grade", "grade_row", "is_equivalent", "verdict"]

KINDS = ("math", "game24", "translate")


class Answer(str):
    """An extracted answer: a plain `str`, which also remembers how it was found (`rule`), the
    language its numbers were read in, and every boxed answer when there were several, so that
    `is_equivalent(gold, extract_answer(text))` applies the same rules as `grade`."""

    rule: str = ""
    lang: str | None = None
    boxes: tuple[str, ...] = ()
    latex: bool = False

    @classmethod
    def of(cls, ex: Extraction) -> Answer | None:
        if ex.answer is None:
            return None
        a = cls(ex.answer)
        a.rule, a.lang, a.boxes, a.latex = ex.rule, ex.lang, ex.boxes, ex.latex
        return a


@dataclass(frozen=True)
class Grade:
    """What was graded and why: the answer, the rule and span that found it, and the verdict."""

    answer: str | None  # what was extracted from the completion
    rule: str  # which extraction rule found it
    correct: bool
    span: tuple[int, int] | None = None  # where in the completion the answer was read
    verdict: str = ""  # correct | wrong | no-answer | timeout
    why: str = ""  # said when the verdict is not plain equivalence (a rule declined, a timeout)


def extract_answer(completion: str, lang: str | None = None) -> Answer | None:
    """The final answer of a chain-of-thought completion, or None if it has none. `lang` is the
    language numbers are read in (`2,5` is 2.5 in German); without it, the answer phrase's.

    >>> extract_answer("3 + 4 = 7\\nThe answer is 7.")
    '7'
    >>> extract_answer("Die Antwort lautet 2,5 Liter."), extract_answer("So the answer is $2\\\\sqrt{3}$.")
    ('2.5', '2\\\\sqrt{3}')
    """
    return Answer.of(find_answer(completion, lang))


def _unwrap(gold: str) -> tuple[str, bool]:
    """The gold answer itself, and whether it is LaTeX: the box of a worked solution (several
    boxes stay together, a set), without one `$…$` around it."""
    g = gold.strip()
    if "\\boxed" in g or "\\fbox" in g:
        boxes = _boxes(g)
        if len(boxes) == 1:
            return boxes[0][0].strip(), True
        return g, True
    for op, cl in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        inner = g[len(op):-len(cl)]
        if g.startswith(op) and g.endswith(cl) and inner.strip() and op not in inner and cl not in inner:
            return inner.strip(), True
    return g, False


def _judge(gold: str, predicted: str | None, timeout: float | None, lang: str | None) -> tuple[str, str]:
    if predicted is None or not str(predicted).strip():
        return "no-answer", ""
    if not str(gold).strip():
        return "wrong", "the gold answer is empty"
    rule, boxes = getattr(predicted, "rule", ""), getattr(predicted, "boxes", ())
    lang = lang or getattr(predicted, "lang", None)
    core, latex = _unwrap(str(gold))
    g = read_number(core, latex=latex)
    if rule == "last-number" and g is None:
        return "no-answer", "no box or answer phrase, and the gold is not a number: the last number is no answer"
    p = read_number(str(predicted), lang, getattr(predicted, "latex", False))
    if g is not None and p is not None:
        return ("correct" if g == p else "wrong"), ""
    same = WORKER.call("same", core, str(predicted), list(boxes), timeout=timeout or SYMBOLIC_TIMEOUT_S)
    if same is None:
        return "timeout", f"math-verify ran past {timeout or SYMBOLIC_TIMEOUT_S:g} s"
    return ("correct" if same else "wrong"), ""


def compare(gold: str, predicted: str | None, timeout: float | None = None, lang: str | None = None) -> str:
    """The verdict on an extracted answer: "correct", "wrong", "no-answer" or "timeout"."""
    return _judge(gold, predicted, timeout, lang)[0]


def is_equivalent(gold: str, predicted: str | None) -> bool:
    """True when `predicted` is mathematically the same answer as `gold` (a timeout is not).

    >>> is_equivalent("1080", "1,080.00"), is_equivalent("\\\\frac{1}{2}", "0.5")
    (True, True)
    """
    return compare(gold, predicted) == "correct"


def extract(completion: str, kind: str = "math", lang: str | None = None) -> tuple[str | None, str]:
    """(answer, rule that found it) for a task of this kind; needs no answer key, so strategies
    may call it (votes, terminal states)."""
    if kind == "translate":
        lines = [ln.strip() for ln in completion.strip().splitlines() if ln.strip()]
        return (lines[0] if lines else None), "first-line"
    if kind == "game24":
        lines = [ln for ln in completion.strip().splitlines() if ln.strip()]
        return (lines[-1].strip() if lines else None), "last-line"
    ex = find_answer(completion, lang)
    return Answer.of(ex), ex.rule


def _verdict(answer: str | None, gold: str, kind: str, lang: str | None) -> tuple[str, str]:
    if answer is None:
        return "no-answer", ""
    if kind == "game24":
        return ("correct" if check_24(gold, answer) else "wrong"), ""
    if kind == "translate":  # exact match only; the translation metric is chrF (Task.score)
        return ("correct" if " ".join(answer.split()) == " ".join(gold.split()) else "wrong"), ""
    return _judge(gold, answer, None, lang)


def verdict(answer: str | None, gold: str, kind: str = "math", lang: str | None = None) -> str:
    """correct | wrong | no-answer | timeout for an answer already extracted (a vote's winner)."""
    return _verdict(answer, gold, kind, lang)[0]


def grade(completion: str, gold: str, kind: str = "math", lang: str | None = None) -> Grade:
    """Extract the answer from a completion and judge it against the gold answer, in one call."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    span = None
    if kind == "math":
        ex = find_answer(completion, lang)
        answer, rule, span = Answer.of(ex), ex.rule, ex.span
    else:
        answer, rule = extract(completion, kind, lang)
    v, why = _verdict(answer, gold, kind, lang)
    return Grade(answer, rule, v == "correct", span, v, why)


@dataclass(frozen=True)
class RowGrade:
    """A problem's grades: every sample's, and the verdict on the strategy's final answer."""

    samples: list[Grade]
    verdict: str
    why: str = ""


def grade_row(completions: list[str], answer: str | None, gold: str, kind: str = "math",
              lang: str | None = None) -> RowGrade:
    """Grade one problem in one call: each completion, and the final answer the strategy chose
    from them (a vote's winner, a search's best leaf)."""
    samples = [grade(c, gold, kind, lang) for c in completions]
    v, why = _verdict(answer, gold, kind, lang)
    return RowGrade(samples, v, why)
