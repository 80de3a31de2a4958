"""The lab model's text formats: what it is trained on and how search strategies prompt it.

Four kinds of training example, each a list of (text, trained) segments so the trainer puts
the loss only where the model should learn to write (`deliberate.train.data.lab_mix` turns them
into token ids and a loss mask):

- `plain`: the question, a newline, the solution (each step in one of its equivalent forms).
- `think`: the question, `<think>`, zero to six attempts each followed by `Wait`, the final
  steps, `</think>`, and the answer in `<answer>…</answer>` (R1's template). The first attempt
  may be wrong (never trained); after a right one comes either the solution again in fresh
  forms or a short re-check of its last step, so the continuations have different lengths, as
  s1's budget forcing produces when it appends `Wait` several times; a re-check is marked
  `Check:`. `Wait` itself carries no loss: the model never learns to say it, only what to do
  after it.
- `reflection`: a finished attempt, Marco-o1's reflection phrase, then either the correct
  solution (the attempt was wrong) or the attempt's answer confirmed in one line (it was right).
  Attempts are wrong about as often as the model itself is (`REFLECTION_WRONG`): the first lab
  model saw a wrong attempt before 70% of its reflection phrases, learnt that the phrase means
  "change the answer", and broke 57 right answers for 11 repaired.
- `translation`: a lab question in one language, to be written in the other.

Wrong attempts make the mistakes the lab model itself makes: an arithmetic slip carried
through the later steps, or a skipped operation.
"""

from __future__ import annotations

import random

from deliberate.lab.generator import ANSWER_PHRASE, N_FORMS, LabProblem, apply_op, op_lines
from deliberate.prompting import LAB_TRANSLATE as TRANSLATE
from deliberate.prompting import THINK_CLOSE, THINK_OPEN, lab_question, lab_translation
from deliberate.search.budget_forcing import WAIT
from deliberate.search.reflection import REFLECTION

__all__ = ["ANSWER_CLOSE", "ANSWER_OPEN", "REFLECTION", "THINK_CLOSE", "THINK_OPEN", "TRANSLATE", "WAIT", "example",
           "think_prompt"]

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
REFLECTION_WRONG = 0.4  # share of reflection examples whose attempt is wrong: about the model's own error rate
# How many `Wait`s a think trace holds: up to six, as many as budget forcing appends at 4x
# greedy's tokens (v2 held up to three and drifted to another answer after the fourth forced
# `Wait`). Earlier variants, measured (docs/training.md): up to seven, mostly full re-solves,
# reached only 30% greedy at 1,600 steps; up to six verbatim copies reached 6% at step 1,400.
WAITS = {0: 0.3, 1: 0.15, 2: 0.15, 3: 0.1, 4: 0.1, 5: 0.1, 6: 0.1}
THINK_WRONG_FIRST = 0.25  # share of think traces with a `Wait` whose first attempt is wrong (only the first)
RECHECK = 0.6  # after a right attempt, the share of continuations that re-check its last step

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


CHECK = "Check: "  # marks a re-check, so a model that wrote one knows the thinking may end there


def _recheck(p: LabProblem, rng: random.Random) -> list[str]:
    """A short continuation after `Wait`: the last step written again (a check, not a re-solve).
    Marked: unmarked (v5), a copied last step read as the first step of a solution, and the
    model went on applying the problem's operations to the answer (docs/training.md)."""
    return [CHECK + solution_lines(p, rng)[-1]]


def think(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    """Only the first attempt may be wrong, so `Wait` after a right attempt nearly always means
    "check it and keep it": a re-check of the last step or the solution again in fresh forms."""
    segs: Segments = [(think_prompt(p.question[lang]), False)]
    right_before = False
    for k in range(rng.choices(list(WAITS), weights=list(WAITS.values()))[0]):
        if k == 0 and rng.random() < THINK_WRONG_FIRST:  # a wrong attempt: never trained
            segs.append(("\n".join(wrong_attempt(p, rng)[0]) + "\n", False))
        else:
            lines = _recheck(p, rng) if right_before and rng.random() < RECHECK else solution_lines(p, rng)
            segs.append(("\n".join(lines) + "\n", True))
            right_before = True
        segs.append((f"{WAIT}\n", False))
    final = _recheck(p, rng) if right_before and rng.random() < RECHECK else solution_lines(p, rng)
    segs.append(("\n".join([*final, THINK_CLOSE, f"{ANSWER_OPEN}{answer_line(lang, p.answer)}{ANSWER_CLOSE}"]),
                 True))
    return segs


def reflection_prompt(question: str, attempt: str) -> str:
    return f"{question}\n{attempt}\n{REFLECTION}\n"


def reflection(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    wrong = rng.random() < REFLECTION_WRONG
    lines, ans = wrong_attempt(p, rng) if wrong else (solution_lines(p, rng), p.answer)
    attempt = "\n".join([*lines, answer_line(lang, ans)])
    fix = [*solution_lines(p, rng), answer_line(lang, p.answer)] if wrong else [answer_line(lang, p.answer)]
    return [(reflection_prompt(p.question[lang], attempt), False), ("\n".join(fix), True)]


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
