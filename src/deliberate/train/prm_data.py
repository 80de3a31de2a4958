"""Step-labelled solutions for a process reward model, in the formats they are published in.

Every reader yields the stepwise rows `deliberate label` writes, `{"prompt", "completions":
[step, ...], "labels": [bool, ...]}` (TRL's stepwise PRM format), whatever the source:

- stepwise rows as they are (`deliberate label`'s own, TRL's `trl-lib/math_shepherd`);
- Math-Shepherd as published (`{"input", "label"}`): the solution's steps each end in the tag
  `ки`, and the label text is the same text with each tag replaced by `+` or `-`;
- PRM800K as published (`{"question": {"problem"}, "label": {"steps": [...]}}`): each step holds
  rated candidates (1 good, 0 neutral, -1 bad) and the one the labeller chose; the chosen path
  is followed (a human-written step where there is one) and neutral counts as right, as Let's
  Verify Step by Step's PRM800K training did, until a step with no rating or no choice.

A row that fits none of these is refused with its file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

from deliberate.errors import BadInput

__all__ = ["SHEPHERD_TAG", "from_math_shepherd", "from_prm800k", "read_step_rows", "step_row"]

SHEPHERD_TAG = "ки"  # Math-Shepherd's step tag; `+` or `-` stands in its place in the label text


def from_math_shepherd(row: dict) -> dict:
    """One published Math-Shepherd row as a stepwise row."""
    text, label = row["input"], row["label"]
    parts = text.split(SHEPHERD_TAG)
    if len(parts) < 2:
        raise ValueError(f"no step tag {SHEPHERD_TAG!r} in the input")
    marks, pos = [], 0
    for part in parts[:-1]:  # the label text is the input with each 2-character tag replaced by 1 character
        pos += len(part)
        if pos >= len(label) or label[pos] not in "+-":
            raise ValueError("the label text does not have + or - where the input has a step tag")
        marks.append(label[pos] == "+")
        pos += 1
    first = parts[0]
    cut = first.find("Step 1:")
    prompt, steps = (first[:cut], [first[cut:], *parts[1:-1]]) if cut > 0 else ("", parts[:-1])
    return step_row(prompt.strip(), [s.strip() for s in steps], marks)


def from_prm800k(row: dict) -> dict:
    """One published PRM800K row as a stepwise row: the chosen path, neutral counted as right."""
    steps, labels = [], []
    for step in row["label"]["steps"]:
        human, chosen = step.get("human_completion"), step.get("chosen_completion")
        pick = human if human is not None else (step["completions"][chosen] if chosen is not None else None)
        if pick is None:  # no choice made: the rated candidates end the path (one of them, the first)
            pick = step["completions"][0] if step.get("completions") else None
        if pick is None or pick.get("rating") is None:
            break
        steps.append(pick["text"])
        labels.append(pick["rating"] >= 0)
        if chosen is None and human is None:
            break
    if not steps:
        raise ValueError("no rated step on the chosen path")
    return step_row(row["question"]["problem"], steps, labels)


def step_row(prompt: str, completions: list[str], labels: list) -> dict:
    """A checked stepwise row: as many labels as steps, each a bool (or a share in [0, 1], made hard)."""
    if not isinstance(prompt, str) or not isinstance(completions, list) or not completions:
        raise ValueError("needs a prompt and a non-empty list of steps")
    if len(labels) != len(completions):
        raise ValueError(f"{len(completions)} steps but {len(labels)} labels")
    hard = []
    for v in labels:
        if isinstance(v, bool):
            hard.append(v)
        elif isinstance(v, (int, float)) and 0 <= v <= 1:
            hard.append(v > 0)
        else:
            raise ValueError(f"a label must be a bool or a share in [0, 1], got {v!r}")
    return {"prompt": prompt, "completions": [str(s) for s in completions], "labels": hard}


def _convert(row: dict) -> dict:
    if {"prompt", "completions", "labels"} <= row.keys():
        return {**row, **step_row(row["prompt"], row["completions"], row["labels"])}
    if {"input", "label"} <= row.keys():
        return from_math_shepherd(row)
    if "label" in row and isinstance(row.get("question"), dict):
        return from_prm800k(row)
    raise ValueError(f"not a stepwise, Math-Shepherd or PRM800K row (fields: {', '.join(row) or 'none'})")


def read_step_rows(path: str | Path) -> list[dict]:
    """Every row of a JSONL file as a stepwise row; a bad row fails naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no label file at {path}.")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("a row must be a JSON object")
            rows.append(_convert(row))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise BadInput(f"{path}:{n}: {detail}.") from None
    if not rows:
        raise BadInput(f"{path} holds no rows.")
    return rows
