"""`deliberate lab select`: score every snapshot of a training run on the validation split.

Model selection must never look at the test split, so this reads only `lab-*-valid`. For
each `checkpoint-N` snapshot it runs greedy and self-consistency (n samples) and reports greedy
accuracy, the majority vote's accuracy, pass@n and the two gaps search cares about: does the
right answer appear among the samples (pass@n - greedy), and does voting find it (SC - greedy).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from deliberate.errors import BadInput


def snapshots(run_dir: str | Path) -> list[Path]:
    """The loadable checkpoints of a run: TRL's `checkpoint-N` folders (or older `step-N` ones)."""
    found = [p for pat in ("checkpoint-*", "step-*") for p in Path(run_dir).glob(pat)
             if p.name.split("-")[1].isdigit() and (p / "config.json").is_file()]
    if not found:
        raise BadInput(f"no checkpoint-N folders with a model in {run_dir}.")
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def select(run_dir: str | Path, *, tasks: tuple[str, ...] = ("lab-en-valid", "lab-zh-valid"), limit: int = 200,
           n: int = 16, temperature: float = 0.7, threads: int | None = None, min_step: int = 0,
           on_row: Callable[[dict], None] | None = None) -> list[dict]:
    from deliberate.backends import load_backend
    from deliberate.eval.runner import evaluate
    from deliberate.search import get_strategy
    from deliberate.tasks import load_task

    rows = []
    for snap in snapshots(run_dir):
        step = int(snap.name.split("-")[1])
        if step < min_step:
            continue
        backend = load_backend(str(snap), threads=threads)
        for name in tasks:
            task = load_task(name)
            g = evaluate(task, backend, get_strategy("greedy"), limit=limit, out_dir=snap / "select" / name / "greedy")
            sc = evaluate(task, backend, get_strategy("self-consistency", n=n, temperature=temperature), limit=limit,
                          out_dir=snap / "select" / name / f"sc{n}-t{temperature}")
            row = {"step": step, "task": name, "greedy": g["accuracy"], "sc": sc["accuracy"],
                   f"pass@{n}": sc[f"pass@{n}"], "sc_gain": sc["accuracy"] - g["accuracy"],
                   "pass_gap": sc[f"pass@{n}"] - g["accuracy"]}
            rows.append(row)
            if on_row:
                on_row(row)
    return rows
