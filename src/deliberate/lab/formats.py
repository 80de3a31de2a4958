"""The lab model's text formats: what it is trained on and how search strategies prompt it.

Four kinds of training example, each a list of (text, trained) segments so the trainer puts
the loss only where the model should learn to write:

- `plain`: the question, a newline, the solution (each step in one of its equivalent forms).
- `think`: the question, `<think>`, the steps, `</think>`, the answer line. Some traces hold a
  first attempt, then `Wait`, then the steps from scratch: the attempt and the `Wait` carry no
  loss, so the model never learns to make mistakes or to say `Wait` by itself, only what to do
  after it. That is what s1's budget forcing needs: appending `Wait` buys another attempt.
- `reflection`: a finished attempt (wrong, or sometimes right), Marco-o1's reflection phrase,
  then the correct solution. Only the solution is trained.
- `translation`: a lab question in one language, to be written in the other.

Wrong attempts make the mistakes the lab model itself makes: an arithmetic slip carried
through the later steps, or a skipped operation.
"""

from __future__ import annotations

import random

from deliberate.lab.generator import ANSWER_PHRASE, N_FORMS, LabProblem, apply_op, op_lines
from deliberate.prompting import LAB_TRANSLATE as TRANSLATE
from deliberate.prompting import lab_question, lab_translation
from deliberate.search.budget_forcing import THINK_CLOSE, THINK_OPEN, WAIT
from deliberate.search.reflection import REFLECTION

__all__ = ["REFLECTION", "THINK_CLOSE", "THINK_OPEN", "TRANSLATE", "WAIT", "example", "think_prompt"]

Segments = list[tuple[str, bool]]


def solution_lines(p: LabProblem, rng: random.Random | None = None) -> list[str]:
    """The steps, each in a random equivalent form (canonical forms when rng is None)."""
    lines, x = [], p.start
    for op in p.ops:
        lines += op_lines(op, x, rng.randrange(N_FORMS[op[0]]) if rng else 0)
        x = apply_op(op, x)
    return lines


def wrong_attempt(p: LabProblem, rng: random.Random) -> tuple[list[str], int]:
    """Steps with one mistake (a slip carried forward, or a skipped operation) and their answer,
    which differs from the right one."""
    for _ in range(20):
        bad = rng.randrange(len(p.ops))
        skip = rng.random() < 0.3 and len(p.ops) > 1
        lines, x = [], p.start
        for i, op in enumerate(p.ops):
            if i == bad and skip:
                continue
            y = apply_op(op, x)
            if i == bad:
                y = max(0, y + rng.choice([-1, 1]) * rng.randint(1, 10))
            lines += op_lines(op, x, rng.randrange(N_FORMS[op[0]]), y)
            x = y
        if x != p.answer:
            return lines, x
    return lines, x + 1


def answer_line(lang: str, answer: int) -> str:
    return ANSWER_PHRASE[lang].format(answer)


def plain(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    return [(lab_question(p.question[lang]), False),
            ("\n".join([*solution_lines(p, rng), answer_line(lang, p.answer)]), True)]


def think_prompt(question: str) -> str:
    return f"{question}\n{THINK_OPEN}\n"


def think(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    segs: Segments = [(think_prompt(p.question[lang]), False)]
    r = rng.random()
    if r < 0.35:  # a first attempt (wrong, or right and checked again), then Wait, then from scratch
        first = wrong_attempt(p, rng)[0] if r < 0.2 else solution_lines(p, rng)
        segs.append(("\n".join(first) + f"\n{WAIT}\n", False))
    segs.append(("\n".join([*solution_lines(p, rng), THINK_CLOSE, answer_line(lang, p.answer)]), True))
    return segs


def reflection_prompt(question: str, attempt: str) -> str:
    return f"{question}\n{attempt}\n{REFLECTION}\n"


def reflection(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    lines, ans = wrong_attempt(p, rng) if rng.random() < 0.7 else (solution_lines(p, rng), p.answer)
    attempt = "\n".join([*lines, answer_line(lang, ans)])
    return [(reflection_prompt(p.question[lang], attempt), False),
            ("\n".join([*solution_lines(p, rng), answer_line(lang, p.answer)]), True)]


def translation_prompt(text: str, src: str, tgt: str) -> str:
    return lab_translation(text, src, tgt)


def translation(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    other = "zh" if lang == "en" else "en"
    return [(translation_prompt(p.question[lang], lang, other), False), (p.question[other], True)]


# The training mix: mostly problems solved (plain and think), then reflection and translation.
MIX = {"plain": 0.45, "think": 0.2, "reflection": 0.2, "translation": 0.15}
FORMATS = {"plain": plain, "think": think, "reflection": reflection, "translation": translation}


def example(p: LabProblem, lang: str, rng: random.Random, mix: dict[str, float] = MIX) -> Segments:
    """One training example of a format drawn from the mix."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    return FORMATS[kind](p, lang, rng)
