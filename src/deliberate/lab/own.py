"""The lab mix with the model's own right answers: a second stage after `lab train`.

The model answers the questions of the mix's plain and think rows with the plain prompt, greedily;
where it is right, the plain row holds that answer verbatim and the think row opens with it and
then re-checks it (`formats.own_think`); every other row is as the mix makes it. Training on own
right answers is STaR's rejection sampling (Zelikman et al., 2022); the same answer after `<think>`
aims to make thinking start where the plain prompt ends. Measured in docs/training.md (variant D):
it raises greedy, and moves thinking's gap to greedy by a few points either way, run to run.

With a teacher, the think rows open instead with a thinking model's own right trace, written
after `<think>` where it was trained to think (lab-r1, the lab model after R1's GRPO): R1's
distillation (DeepSeek-AI 2025, section 4.1) aimed at the think format only, so the student thinks
with what RL taught while its plain answer stays its own.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from deliberate.lab import formats
from deliberate.lab.generator import CURRICULUM, LabProblem, held_out_keys, train_stream
from deliberate.prompting import THINK_CLOSE, lab_question

Plan = list[tuple[LabProblem, str, str]]  # (problem, language, format) per row
OWN_KINDS = ("plain", "think")


def plan(n: int, seed: int, mix: dict[str, float] | None = None) -> Plan:
    """`n` rows of the mix (`formats.MIX` unless given) drawn from the training stream (held-out
    problems excluded)."""
    stream, rng = train_stream(seed, CURRICULUM, held_out_keys()), random.Random(seed)
    mix = mix or formats.MIX
    rows = []
    for _ in range(n):
        p, lang = next(stream), rng.choice(("en", "zh"))
        rows.append((p, lang, rng.choices(list(mix), weights=list(mix.values()))[0]))
    return rows


def right_lines(text: str, p: LabProblem, lang: str) -> list[str] | None:
    """The answer's lines when it has at least one step and ends in the right answer line."""
    lines = [ln.strip() for ln in text.strip().split("\n")]
    return lines if len(lines) > 1 and lines[-1] == formats.answer_line(lang, p.answer) else None


def right_thought(text: str, p: LabProblem, lang: str) -> list[str] | None:
    """A thinking model's lines before `</think>`, when they are one right attempt: a trace holding
    `Wait` is not kept, since the mix never trains that word (`formats`)."""
    head, closed, _ = text.partition(THINK_CLOSE)
    lines = right_lines(head, p, lang) if closed else None
    return None if lines is None or formats.WAIT in lines else lines


def own_answers(generate: Callable[[list[str]], list[str]], rows: Plan, batch: int = 256,
                on_batch: Callable[[int, int], None] | None = None, kinds: tuple[str, ...] = OWN_KINDS,
                think: bool = False) -> dict[int, list[str]]:
    """Row index -> the model's own right answer, for the rows of `kinds`; `generate` maps prompts
    to greedy completions. `think` asks after `<think>` and keeps right traces (`right_thought`)."""
    idx = [i for i, (_, _, kind) in enumerate(rows) if kind in kinds]
    own: dict[int, list[str]] = {}
    keep, ask = (right_thought, formats.think_prompt) if think else (right_lines, lab_question)
    for s in range(0, len(idx), batch):
        chunk = idx[s:s + batch]
        texts = generate([ask(rows[i][0].question[rows[i][1]]) for i in chunk])
        for i, text in zip(chunk, texts, strict=True):
            if (lines := keep(text, rows[i][0], rows[i][1])) is not None:
                own[i] = lines
        if on_batch:
            on_batch(min(s + batch, len(idx)), len(own))
    return own


def own_mix_rows(rows: Plan, own: dict[int, list[str]], tokenizer, seed: int) -> list[dict]:
    """Token ids and loss mask per row, as `train.data.lab_mix` gives them."""
    rng = random.Random(seed)
    out = []
    for i, (p, lang, kind) in enumerate(rows):
        if i in own and kind == "plain":
            segs = [(lab_question(p.question[lang]), False), ("\n".join(own[i]), True)]
        elif i in own:
            segs = formats.own_think(p, lang, rng, own[i])
        else:
            segs = formats.FORMATS[kind](p, lang, rng)
        out.append(formats.encode(segs, tokenizer))
    return out
