"""Reward functions for GRPO: plain callables in TRL's convention, so a user can replace any.

TRL calls each as `f(prompts=..., completions=..., completion_ids=..., **dataset_columns)` and
wants one float (or None, "no opinion") per completion. The datasets built here carry `gold` (the
answer key) and `task` (the task's name, which says how to grade) columns.

- `accuracy`: 1 when the project's grader finds the gold answer in the completion, else 0
  (DeepSeek-R1's rule-based accuracy reward; the grader is the one `eval` uses, so training and
  evaluation agree on what is right).
- `format`: 1 when the text is `<think>…</think>` then `<answer>…</answer>` (R1's format reward;
  a prompt that already opened `<think>` counts as its start).
- `think`: 1 when the completion closes one `</think>` and then gives an answer the grader can read
  (the format of models, like the lab model, that answer in prose after thinking).
- `second_attempt`: SCoRe's shaped reward for the attempt after a reflection phrase (Kumar et al.
  2024, "Training Language Models to Self-Correct via RL"): the second attempt's correctness plus
  `alpha` times its improvement over the first attempt, which the prompt holds in `first_correct`,
  so that repairing is paid and breaking a right answer is punished.

`resolve("name" | "pkg.module:function")` finds one by name or dotted path.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from functools import cache

from deliberate.errors import BadInput
from deliberate.prompting import THINK_CLOSE, THINK_OPEN

# one think block, then one answer block, and nothing after it (no second tag inside either)
R1_FORMAT = re.compile(r"^<think>(?:(?!</?think>).)*</think>\s*<answer>(?:(?!</?answer>).)*</answer>\s*$", re.DOTALL)
SCORE_ALPHA = 1.0


def _text(c) -> str:
    """A completion as text: TRL passes strings, or message lists for conversational data."""
    if isinstance(c, str):
        return c
    if isinstance(c, list) and c and isinstance(c[-1], dict):
        return str(c[-1].get("content", ""))
    return str(c)


@cache
def _task(name: str):
    from deliberate.tasks import load_task

    return load_task(name)


def _correct(completion: str, gold: str, task: str) -> bool:
    from deliberate.grading import grade

    t = _task(task)
    if not t.has_answer_key:
        raise BadInput(f"task {task} has no answer key: the accuracy reward needs one.")
    return grade(completion, gold, t.kind, t.lang).correct


def accuracy(prompts: Sequence, completions: Sequence, gold: Sequence[str], task: Sequence[str],
             **_) -> list[float]:
    """1.0 for a completion the grader marks right, else 0.0 (thinking the prompt opened and the
    completion never closed has no answer, as in `eval`)."""
    return [float(_correct(opened(p, c), g, t)) for p, c, g, t in zip(prompts, completions, gold, task, strict=True)]


def opened(prompt, completion) -> str:
    """The completion with the `<think>` the prompt ended on, if it did."""
    p, c = _text(prompt), _text(completion)
    return (THINK_OPEN + "\n" + c) if p.rstrip().endswith(THINK_OPEN) and not c.lstrip().startswith(THINK_OPEN) else c


def format(prompts: Sequence, completions: Sequence, **_) -> list[float]:  # noqa: A001 - R1's name for it
    """1.0 for `<think>…</think><answer>…</answer>` and nothing else, else 0.0."""
    return [float(bool(R1_FORMAT.match(opened(p, c).strip()))) for p, c in zip(prompts, completions, strict=True)]


def think(prompts: Sequence, completions: Sequence, task: Sequence[str], **_) -> list[float]:
    """1.0 when the thinking is closed once and an answer follows it, else 0.0."""
    out = []
    for p, c, t in zip(prompts, completions, task, strict=True):
        text = opened(p, c)
        body = text.split(THINK_CLOSE)
        ok = text.count(THINK_OPEN) == 1 and len(body) == 2 and _task(t).extract(body[1])[0] is not None
        out.append(float(ok))
    return out


def second_attempt(prompts: Sequence, completions: Sequence, gold: Sequence[str], task: Sequence[str],
                   first_correct: Sequence[bool], alpha: float = SCORE_ALPHA, **_) -> list[float]:
    """r2 + alpha * (r2 - r1): the second attempt's correctness, plus its gain over the first."""
    out = []
    for p, c, g, t, r1 in zip(prompts, completions, gold, task, first_correct, strict=True):
        r2 = float(_correct(opened(p, c), g, t))
        out.append(r2 + alpha * (r2 - float(r1)))
    return out


REWARDS: dict[str, Callable[..., list[float]]] = {"accuracy": accuracy, "format": format, "think": think,
                                                   "second_attempt": second_attempt}


def resolve(name: str) -> Callable[..., list]:
    """A reward by its name here, or `module:function` / `module.function` for a user's own."""
    name = name.strip()
    if name in REWARDS:
        return REWARDS[name]
    module, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
    if not module:
        raise BadInput(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)} or give module:function.")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"reward {name!r} could not be loaded: {e}") from None
    if not callable(fn):
        raise BadInput(f"reward {name!r} is not callable.")
    return fn


def check_group(fn: Callable, name: str, batch: dict[str, list], n: int) -> tuple[list, bool]:
    """Step 0's check of one reward function on one group of `n` completions: one value per
    completion, each a number or None, no NaN. Returns the values and whether they all agree
    (zero spread: such a group teaches GRPO nothing)."""
    import math
    import numbers

    try:
        values = fn(**batch)
    except Exception as e:  # a user's function: its failure is named, not a traceback mid-training
        raise BadInput(f"reward {name} failed on a group of {n} completions: {type(e).__name__}: {e}") from None
    if hasattr(values, "tolist"):  # a numpy array or tensor, which TRL accepts too
        values = values.tolist()
    if not isinstance(values, (list, tuple)) or len(values) != n:
        got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
        raise BadInput(f"reward {name} must return one value per completion ({n}), got {got}.")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            raise BadInput(f"reward {name} returned {v!r}; rewards are numbers (or None).")
        if v is not None and not math.isfinite(float(v)):
            raise BadInput(f"reward {name} returned {'NaN' if math.isnan(float(v)) else float(v)}; "
                           "rewards must be finite.")
    real = [v for v in values if v is not None]
    return list(values), len({float(v) for v in real}) <= 1
