"""The lab model's text formats: what it is trained on and how search strategies prompt it.

Four kinds of training example, each a list of (text, trained) segments so the trainer puts
the loss only where the model should learn to write (`deliberate.train.data.lab_mix` turns them
into token ids and a loss mask):

- `plain`: the question, a newline, the solution (each step in one of its equivalent forms).
- `think`: the question, `<think>`, zero to sixteen attempts each followed by `Wait`, the final
  steps, `</think>`, and the answer in `<answer>…</answer>` (R1's template). The first attempt
  may be wrong (never trained); after a right one comes a re-check of its last step, a re-check
  of every step, or the solution again in fresh forms, so the continuations have different
  lengths, as s1's budget forcing produces when it appends `Wait` several times; re-checks are
  marked `Check:`. Long chains are mostly short re-checks: budget forcing at 4x greedy's tokens
  appends about fifteen `Wait`s to a model that re-checks, and v6, trained on at most six,
  drifted past them. `Wait` itself carries no loss: the model never learns to say it, only what
  to do after it.
- `reflection`: a finished attempt, Marco-o1's reflection phrase, then either the correct
  solution (the attempt was wrong) or the attempt's answer confirmed in one line (it was right).
  Attempts are wrong less often than the model itself is (`REFLECTION_WRONG`), so the phrase
  reads as "keep it unless a step is visibly wrong": the first lab model saw a wrong attempt
  before 70% of its reflection phrases, learnt that the phrase means "change the answer", and
  broke 57 right answers for 11 repaired; v6 (40%) broke 4 for 2 repaired.
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
REFLECTION_WRONG = 0.3  # share of reflection examples whose attempt is wrong (v6: 0.4, the model's own error rate)
# How many `Wait`s a think trace holds: up to sixteen, about as many as budget forcing appends at
# 4x greedy's tokens to a model that re-checks its last step (v6 held up to six re-checks and
# re-solves and lost 10.7 points there). Earlier variants, measured (docs/training.md): up to
# seven, mostly full re-solves, reached only 30% greedy at 1,600 steps; up to six verbatim copies
# reached 6% at step 1,400.
WAITS = {0: 0.2, 1: 0.1, 2: 0.1, 3: 0.08, 4: 0.08, 5: 0.06, 6: 0.06} | {k: 0.032 for k in range(7, 17)}
THINK_WRONG_FIRST = 0.15  # share of think traces with a `Wait` whose first attempt is wrong (only the first)
# After a right attempt, the kinds of continuation: the first one, then later ones (mostly short)
FIRST_AFTER_RIGHT = {"check_last": 0.5, "check_all": 0.2, "resolve": 0.3}
LATER_AFTER_RIGHT = {"check_last": 0.75, "check_all": 0.1, "resolve": 0.15}
# A think trace's characters after `<think>` at most (0.74 tokens a character: about 390 tokens,
# so question and trace fit the 512-token context); a `Wait` that would outgrow it is dropped.
THINK_CHARS = 530

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


def checked(lines: list[str]) -> list[str]:
    """Lines written again as a check. Marked: unmarked (v5), a copied last step read as the
    first step of a solution, and the model went on applying the problem's operations to the
    answer (docs/training.md)."""
    return [CHECK + line for line in lines]


def _continuation(p: LabProblem, rng: random.Random, kind: str) -> list[str]:
    """What follows `Wait` after a right attempt: a re-check of the last step or of every step,
    or the solution again in fresh forms."""
    lines = solution_lines(p, rng)
    return {"check_last": lambda: checked(lines[-1:]), "check_all": lambda: checked(lines),
            "resolve": lambda: lines}[kind]()


def think(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    """Only the first attempt may be wrong, so `Wait` after a right attempt nearly always means
    "check it and keep it"; a long chain is mostly short re-checks and stays inside the context."""
    segs: Segments = [(think_prompt(p.question[lang]), False)]
    right = 0  # right attempts and continuations written so far

    def next_lines() -> list[str]:
        if not right:
            return solution_lines(p, rng)
        kinds = FIRST_AFTER_RIGHT if right == 1 else LATER_AFTER_RIGHT
        return _continuation(p, rng, rng.choices(list(kinds), weights=list(kinds.values()))[0])

    close = f"{THINK_CLOSE}\n{ANSWER_OPEN}{answer_line(lang, p.answer)}{ANSWER_CLOSE}"
    tail = len(close) + 1
    short = len(CHECK) + len(solution_lines(p)[-1]) + 8  # room kept for a closing re-check (any form)
    size = 0
    for k in range(rng.choices(list(WAITS), weights=list(WAITS.values()))[0]):
        wrong = k == 0 and rng.random() < THINK_WRONG_FIRST  # a wrong attempt: never trained
        text = "\n".join(wrong_attempt(p, rng)[0] if wrong else next_lines()) + f"\n{WAIT}\n"
        if size + len(text) + short + tail > THINK_CHARS:
            break
        segs += [(text[:-len(WAIT) - 1], not wrong), (f"{WAIT}\n", False)]
        size += len(text)
        right += not wrong
    final = next_lines()
    if right and size + len("\n".join(final)) + tail > THINK_CHARS:
        final = _continuation(p, rng, "check_last")
    segs.append(("\n".join([*final, close]), True))
    return segs


def reflection_prompt(question: str, attempt: str) -> str:
    return f"{question}\n{attempt}\n{REFLECTION}\n"


def reflection(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    """The attempt, the phrase, then the right solution (a wrong attempt) or the attempt's answer
    confirmed in one line (a right one). v7 checked every line of the attempt instead (`Check:`
    lines, confirming and fixing alike): the model re-solved inside the check and broke 13 right
    answers for 1 repaired (docs/training.md)."""
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
# v8 moved rows from reflection (0.2) and translation (0.15) to think (0.2): v7 solved 3 points
# worse after `<think>` than after the plain prompt, which budget forcing inherits.
MIX = {"plain": 0.45, "think": 0.33, "reflection": 0.12, "translation": 0.1}
FORMATS = {"plain": plain, "think": think, "reflection": reflection, "translation": translation}


def example(p: LabProblem, lang: str, rng: random.Random, mix: dict[str, float] = MIX) -> Segments:
    """One training example of a format drawn from the mix."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    return FORMATS[kind](p, lang, rng)
