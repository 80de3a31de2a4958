"""The lab model's text formats: what it is trained on and how search strategies prompt it.

Four kinds of training example, each a list of (text, trained) segments so the trainer puts
the loss only where the model should learn to write (`deliberate.train.data.lab_mix` turns them
into token ids and a loss mask):

- `plain`: the question, a newline, the solution (each step in one of its equivalent forms).
- `think`: the question, `<think>`, zero to a dozen attempts each ending in its answer line (as
  a plain solution does) and followed by `Wait`, the final steps, `</think>`, and the answer in
  `<answer>…</answer>` (R1's template). The first attempt may be wrong (never trained); after a
  right one comes, mostly, its last step copied verbatim as a check (`Check:`), else the solution
  again in fresh forms, so the continuations have different lengths, as s1's budget forcing
  produces when it appends `Wait` several times. Long chains are mostly short checks: budget
  forcing at 4x greedy's tokens appends about seven `Wait`s. `Wait` itself carries no loss: the
  model never learns to say it, only what to do after it. Why each choice, measured on
  fine-tunes of the first lab model (docs/training.md, v9): a check in a fresh form, or of every
  step, made the model recompute and drift (budget forcing 12%); a verbatim copy holds the
  answer; a fresh solution broke right answers six times as often as it repaired wrong ones.
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

import math
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
# How many `Wait`s a think trace holds (a trace that would outgrow THINK_CHARS stops taking them,
# so about a dozen at most): budget forcing at 4x greedy's tokens appends about seven to a model
# that copies its last step (v6 held up to six re-checks and re-solves and lost 10.7 points
# there). Earlier variants, measured (docs/training.md): up to seven, mostly full re-solves,
# reached only 30% greedy at 1,600 steps; up to six verbatim copies of the whole solution
# reached 6% at step 1,400.
WAITS = {0: 0.2, 1: 0.1, 2: 0.1, 3: 0.08, 4: 0.08, 5: 0.06, 6: 0.06} | {k: 0.032 for k in range(7, 17)}
THINK_WRONG_FIRST = 0.15  # share of think traces with a `Wait` whose first attempt is wrong (only the first)
# After a right attempt, the kinds of continuation: the first one, then later ones. Mostly checks:
# under budget forcing a fresh solution is the model's second try at the problem, and it broke
# 19 right answers for 3 repaired (94 of them, fine-tune ft11; copied checks: 11 / 4 of 1,723)
FIRST_AFTER_RIGHT = {"check_last": 0.8, "resolve": 0.2}
LATER_AFTER_RIGHT = {"check_last": 0.95, "resolve": 0.05}
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


# Marks a check, so a model that wrote one knows the thinking may end there: unmarked (v5), a
# copied last step read as the first step of a solution, and the model went on applying the
# problem's operations to the answer (docs/training.md).
CHECK = "Check: "


def _continuation(p: LabProblem, rng: random.Random, kind: str, last: str) -> list[str]:
    """What follows `Wait` after a right attempt: the step written last, copied as a check, or
    the solution again in fresh forms. The copy is verbatim: a check in a fresh form (v8) made
    the model recompute a step, and it recomputed the wrong one (`Check: 12 - 3 = 9` after
    `1 + 9 = 10`), then copied that mistake to the end of the thinking."""
    return [CHECK + last] if kind == "check_last" else solution_lines(p, rng)


def think(p: LabProblem, lang: str, rng: random.Random) -> Segments:
    """Only the first attempt may be wrong, so `Wait` after a right attempt nearly always means
    "check it and keep it"; a long chain is mostly short re-checks and stays inside the context."""
    segs: Segments = [(think_prompt(p.question[lang]), False)]
    right = 0  # right attempts and continuations written so far
    last = ""  # the last step of the latest right block, without its check mark

    def next_lines(kind: str | None = None) -> list[str]:
        if not right:
            return solution_lines(p, rng)
        kinds = FIRST_AFTER_RIGHT if right == 1 else LATER_AFTER_RIGHT
        return _continuation(p, rng, kind or rng.choices(list(kinds), weights=list(kinds.values()))[0], last)

    done = answer_line(lang, p.answer)
    close = f"{THINK_CLOSE}\n{ANSWER_OPEN}{done}{ANSWER_CLOSE}"
    tail = len(close) + 1
    short = len(CHECK) + len(solution_lines(p)[-1]) + 8 + len(done) + 1  # room for a closing re-check
    size = 0
    for k in range(rng.choices(list(WAITS), weights=list(WAITS.values()))[0]):
        wrong = k == 0 and rng.random() < THINK_WRONG_FIRST  # a wrong attempt: never trained
        lines, said = wrong_attempt(p, rng) if wrong else (next_lines(), p.answer)
        text = "\n".join([*lines, answer_line(lang, said)]) + f"\n{WAIT}\n"
        if size + len(text) + short + tail > THINK_CHARS:
            break
        segs += [(text[:-len(WAIT) - 1], not wrong), (f"{WAIT}\n", False)]
        size += len(text)
        if not wrong:
            right, last = right + 1, lines[-1].removeprefix(CHECK)
    final = next_lines()
    if right and size + len("\n".join([*final, done])) + tail > THINK_CHARS:
        final = next_lines("check_last")
    segs.append(("\n".join([*final, done, close]), True))
    return segs


def own_think(p: LabProblem, lang: str, rng: random.Random, own: list[str]) -> Segments:
    """A think trace that opens with `own`, the model's own right plain answer (its answer line
    last), then re-checks of its last step: thinking is trained toward what the plain prompt already
    answers, where generator-written first attempts left it a few points worse (docs/training.md)."""
    said = own[-1]
    close = f"{THINK_CLOSE}\n{ANSWER_OPEN}{said}{ANSWER_CLOSE}"
    check = f"{CHECK}{own[-2]}\n{said}\n"
    body = "\n".join(own) + "\n"
    waits = rng.choices(list(WAITS), weights=list(WAITS.values()))[0]
    while waits and len(body) + waits * (len(WAIT) + 1 + len(check)) + len(close) > THINK_CHARS:
        waits -= 1
    segs: Segments = [(think_prompt(p.question[lang]), False)]
    if not waits:
        return [*segs, (body + close, True)]
    segs.append((body, True))
    for k in range(waits):
        segs += [(f"{WAIT}\n", False), (check + (close if k == waits - 1 else ""), True)]
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
# worse after `<think>` than after the plain prompt, which budget forcing inherits; v10 moved
# 0.05 more from plain to think for the same reason (v9: -0.7 / -1.3 points after `<think>`).
MIX = {"plain": 0.4, "think": 0.38, "reflection": 0.12, "translation": 0.1}
FORMATS = {"plain": plain, "think": think, "reflection": reflection, "translation": translation}


def parse_mix(text: str) -> dict[str, float]:
    """`plain=0.15,think=0.63,...` as format -> share (a format left out gets none); ValueError
    names the bad part. Shares are weights: they need not sum to 1."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or name.strip() not in FORMATS:
            raise ValueError(f"mix part {part!r} is not FORMAT=SHARE with FORMAT one of {', '.join(FORMATS)}")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"mix part {part!r}: the share is not a number") from None
        if not (math.isfinite(share) and share >= 0):
            raise ValueError(f"mix part {part!r}: the share must be a finite number >= 0")
        mix[name.strip()] = share
    if not sum(mix.values()) > 0:
        raise ValueError(f"mix {text!r} gives no format a share above 0")
    return mix


def encode(segs: Segments, tokenizer) -> dict[str, list[int]]:
    """Token ids and a loss mask (1 where trained), EOS last and trained: a row for `train sft`."""
    ids: list[int] = []
    mask: list[int] = []
    for text, trained in segs:
        t = tokenizer(text, add_special_tokens=False).input_ids
        ids += t
        mask += [int(trained)] * len(t)
    return {"input_ids": [*ids, tokenizer.eos_token_id], "completion_mask": [*mask, 1]}


def example(p: LabProblem, lang: str, rng: random.Random, mix: dict[str, float] = MIX) -> Segments:
    """One training example of a format drawn from the mix."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    return FORMATS[kind](p, lang, rng)
