"""`evaluate`: run a strategy over a task, grade, write rows as they finish, resume, summarize.

The output folder holds `run.json` (the settings that define the run) and `results.jsonl`
(one graded row per problem, appended and flushed batch by batch). Running again with the
same settings skips the problems already there; different settings refuse to mix into the
same folder. Rows are only ever appended, so an interrupted run loses nothing it finished.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from deliberate import __version__
from deliberate.backends.base import Backend
from deliberate.errors import BadInput
from deliberate.eval.metrics import summarize
from deliberate.search.base import Result, Strategy
from deliberate.tasks.base import Problem, Task


def run_settings(task: Task, backend: Backend, strategy: Strategy, seed: int) -> dict:
    return {"task": task.name, "model": backend.spec, "strategy": strategy.name,
            "options": strategy.options(), "seed": seed}


def default_out_dir(settings: dict, root: str = "runs/eval") -> Path:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{settings['task']}__{settings['model']}__{settings['strategy']}")
    return Path(root) / f"{slug}__{digest}"


def read_rows(path: Path) -> list[dict]:
    """Rows of a results file; a torn last line (a kill mid-write) is dropped, not fatal."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def grade_row(task: Task, problem: Problem, result: Result, independent: bool) -> dict:
    samples = []
    for t in result.traces:
        g = task.grade(problem, t.text)
        samples.append({"answer": g.answer, "rule": g.rule, "correct": g.correct, "reward": t.score,
                        "tokens": t.tokens, "finish": t.finish_reason, "text": t.text})
    correct = task.check(problem, result.answer)
    extra = {}
    if not task.has_answer_key:  # open-ended: the metric is a score against the reference (chrF)
        extra["score"] = task.score(problem, result.answer)
    if "first_answer" in result.info:  # a self-correcting strategy: was its first attempt right?
        extra["first_correct"] = bool(task.check(problem, result.info["first_answer"]))
    return {**extra, "id": problem.id, "question": problem.question, "gold": problem.answer, "answer": result.answer,
            "correct": bool(correct), "independent_samples": independent, "samples": samples,
            "compute": result.compute.to_dict(), "info": result.info}


def evaluate(task: Task, backend: Backend, strategy: Strategy, *, limit: int | None = None, seed: int = 0,
             out_dir: str | Path | None = None, batch_problems: int = 8,
             on_progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Evaluate and return the summary; `on_progress(done, total, last_row)` drives a progress bar."""
    if limit is not None and limit < 1:
        raise BadInput(f"limit must be >= 1, got {limit}.")
    if batch_problems < 1:
        raise BadInput(f"batch_problems must be >= 1, got {batch_problems}.")
    settings = run_settings(task, backend, strategy, seed)
    out = Path(out_dir) if out_dir else default_out_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    if run_file.exists():
        before = json.loads(run_file.read_text())
        diff = [k for k in settings if before.get(k) != settings[k]]
        if diff:
            raise BadInput(f"{out} holds a run with different {', '.join(diff)}; "
                           f"use another --out or the same settings.")
    else:
        run_file.write_text(json.dumps({**settings, "deliberate": __version__}, indent=2))
    results = out / "results.jsonl"
    done = {r["id"]: r for r in read_rows(results)}
    if results.exists() and not results.read_bytes().endswith(b"\n") and results.stat().st_size:
        # a kill tore the last line: keep the whole rows, so the next append starts clean
        results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()),
                           encoding="utf-8")
    problems = task.problems[:limit] if limit else task.problems
    todo = [p for p in problems if p.id not in done]
    finished = len(problems) - len(todo)
    if on_progress:
        on_progress(finished, len(problems), {})
    with results.open("a", encoding="utf-8") as f:
        for start in range(0, len(todo), batch_problems):
            batch = todo[start:start + batch_problems]
            for p, res in zip(batch, strategy.solve_batch(batch, backend, task, seed=seed), strict=True):
                row = grade_row(task, p, res, strategy.samples)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                done[p.id] = row
            f.flush()
            finished += len(batch)
            if on_progress:
                on_progress(finished, len(problems), row)
    rows = [done[p.id] for p in problems if p.id in done]
    summary = {**settings, **summarize(rows), "out": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
