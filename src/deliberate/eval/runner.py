"""`evaluate`: run a strategy over a task, grade, write rows as they finish, resume, summarize.

The output folder holds `run.json` (the settings that define the run: task, model, a hash of
its weights, strategy with options, seed), `manifest.json` (everything else the numbers depend
on; `deliberate.eval.manifest`) and `results.jsonl` (one graded row per problem, appended and
flushed as soon as it is graded). Running again with the same settings skips the problems
already there; different settings refuse to mix into the same folder. Rows are only ever
appended, so a killed run loses nothing it finished. An exception in a strategy, reward or
grader becomes that problem's `error` row and the run goes on, until `max_errors` say the run
is broken. A bug is not a bad sample: an exception that signals a programming error
(`PROGRAMMING_ERRORS`) raised the same way by every problem tried (three in a row, or all of
them when fewer are left) stops the run at once, writes its traceback to `error.log` beside
the rows and writes no row for those problems, so that the fixed code reruns them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import deliberate.grading as grading
from deliberate.backends.base import Backend
from deliberate.backends.metered import Compute, Meter
from deliberate.errors import BadInput, DeliberateError, ProblemTooLong
from deliberate.eval.manifest import build_manifest, diff_manifests, weights_hash
from deliberate.eval.metrics import summarize
from deliberate.search.base import Result, Strategy
from deliberate.tasks.base import Problem, Task
from deliberate.version import __version__


class TooManyErrors(DeliberateError):
    """More problems failed than --max-errors allows: the run is broken, not unlucky."""


class RunBug(DeliberateError):
    """The same programming error in every problem: the code is wrong, not a sample."""


# Exceptions that mean the code is wrong rather than that a sample went bad.
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, ImportError, SyntaxError, AssertionError,
                      NotImplementedError, RecursionError)
BUG_RUN = 3  # this many problems in a row failing with the same programming error stop the run


def bug_signature(e: BaseException) -> tuple[str, str] | None:
    """(type, innermost file:line) of a programming error; None for any other exception."""
    if not isinstance(e, PROGRAMMING_ERRORS):
        return None
    frames = traceback.extract_tb(e.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return type(e).__name__, where


def run_settings(task: Task, backend: Backend, strategy: Strategy, seed: int, weights: str | None = None) -> dict:
    return {"task": task.name, "model": backend.spec, "weights": (weights or weights_hash(backend))[:16],
            "strategy": strategy.name, "options": strategy.options(), "seed": seed}


def default_out_dir(settings: dict, root: str = "runs/eval") -> Path:
    """`<task>__<model>__<strategy>__<hash of the settings>`, each part made path-safe. Before,
    the `__` between parts was squeezed to `_` with the rest (`lab-en_lab_greedy__<hash>`); a
    folder of that name is still the one used, so an older run resumes."""
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    parts = [settings["task"], settings["model"], settings["strategy"]]
    path = Path(root) / "__".join([*map(_path_safe, parts), digest])
    legacy = Path(root) / f"{_path_safe('__'.join(parts))}__{digest}"
    return legacy if legacy.is_dir() and not path.exists() else path


def _path_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text)


def setting_changes(before: dict, now: dict, prefix: str = "") -> list[str]:
    """Each setting that differs, with both values: `seed: 0 in the folder, 9 now`; an options
    dict is compared key by key (`options.n: 4 in the folder, 8 now`)."""
    changes = []
    for key in now:
        old, new = before.get(key), now[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += setting_changes(old, new | {k: None for k in old if k not in new}, f"{prefix}{key}.")
        else:
            changes.append(f"{prefix}{key}: {_shown(old)} in the folder, {_shown(new)} now")
    return changes


def _shown(value: object) -> str:
    return "not set" if value is None else json.dumps(value, ensure_ascii=False)


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
    graded_row = grading.grade_row([t.text for t in result.traces], result.answer, problem.answer, task.kind, task.lang)
    samples = []
    for t, g in zip(result.traces, graded_row.samples, strict=True):
        samples.append({"answer": g.answer, "rule": g.rule, "span": g.span, "verdict": g.verdict,
                        "correct": g.correct, "reward": t.score, "tokens": t.tokens, "finish": t.finish_reason,
                        "text": t.text, **({"why": g.why} if g.why else {})})
    verdict = graded_row.verdict
    correct = verdict == "correct"
    # the final answer's provenance: the first trace that gave it (for a vote, one of its voters)
    source = next((x for x in samples if x["answer"] is not None and result.answer is not None
                   and x["answer"] == result.answer), None)
    graded = {"rule": source["rule"], "span": source["span"], "sample": samples.index(source)} if source else None
    extra = {"verdict": verdict, "graded": graded, **({"why": graded_row.why} if graded_row.why else {})}
    if not task.has_answer_key:  # open-ended: the metric is a score against the reference (chrF)
        extra["score"] = task.score(problem, result.answer)
    if "first_answer" in result.info:  # a self-correcting strategy: was its first attempt right?
        extra["first_correct"] = grading.verdict(result.info["first_answer"], problem.answer, task.kind,
                                                 task.lang) == "correct"
    return {**extra, "id": problem.id, "question": problem.question, "gold": problem.answer, "answer": result.answer,
            "correct": bool(correct), "independent_samples": independent, "samples": samples,
            "compute": result.compute.to_dict(), "info": result.info}


def error_row(problem: Problem, error: BaseException, compute: Compute | None = None) -> dict:
    """A problem that failed, with what it spent before it did (a timeout still spent tokens)."""
    reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}".strip()
    return {"id": problem.id, "question": problem.question, "gold": problem.answer, "answer": None,
            "correct": False, "error": reason.rstrip(": "), "independent_samples": False, "samples": [],
            "compute": (compute or Compute()).to_dict(), "info": {}}


def solve_and_grade(task: Task, meter: Meter, strategy: Strategy, batch: list[Problem], seed: int,
                    failures: dict[str, BaseException] | None = None) -> list[dict]:
    """Rows for a batch. If the batch fails, each problem is retried alone, so one bad problem
    costs only its own row (an `error` row with the reason), never its neighbours'. The
    exception behind each error row goes to `failures` (by problem id)."""
    failures = {} if failures is None else failures
    try:
        results = strategy.run(batch, meter, task, seed=seed)
    except Exception as e:
        if isinstance(e, DeliberateError) and not isinstance(e, ProblemTooLong):
            raise  # a bad setting fails every problem alike: stop and say so
        if len(batch) > 1:
            return [row for p in batch for row in solve_and_grade(task, meter, strategy, [p], seed, failures)]
        failures[batch[0].id] = e
        return [error_row(batch[0], e, meter.usage_of(batch[0].id))]
    rows = []
    for p, res in zip(batch, results, strict=True):
        try:
            rows.append(grade_row(task, p, res, strategy.samples))
        except Exception as e:
            failures[p.id] = e
            rows.append(error_row(p, e, res.compute))
    return rows


Executor = Callable[[list[list[Problem]]], Iterator[tuple[list[Problem], list[dict], dict[str, BaseException]]]]


def batch_rows(task: Task, meter: Meter, strategy: Strategy, batch: list[Problem], seed: int,
               capped: bool) -> tuple[list[dict], dict[str, BaseException]]:
    """A batch's rows and failures, each row marked `capped` when the run has a token cap (what
    every executor runs, here or on a Ray worker)."""
    failures: dict[str, BaseException] = {}
    rows = solve_and_grade(task, meter, strategy, batch, seed, failures)
    if capped:
        for row in rows:
            if "error" not in row:
                row["capped"] = row["id"] in meter.capped
    return rows, failures


def local_executor(task: Task, meter: Meter, strategy: Strategy, seed: int,
                   max_tokens_per_problem: int | None) -> Executor:
    """Batches solved here, one after the other: yields (batch, its rows, its failures)."""
    def run(batches: list[list[Problem]]):
        for batch in batches:
            yield batch, *batch_rows(task, meter, strategy, batch, seed, max_tokens_per_problem is not None)

    return run


def evaluate(task: Task, backend: Backend, strategy: Strategy, *, limit: int | None = None, seed: int = 0,
             out_dir: str | Path | None = None, batch_problems: int = 32, max_errors: int | None = None,
             max_tokens_per_problem: int | None = None, problem_timeout_s: float | None = None,
             on_progress: Callable[[int, int, dict], None] | None = None, executor: Executor | None = None) -> dict:
    """Evaluate and return the summary; `on_progress(done, total, last_row)` drives a progress bar.

    Rows go to `out_dir`, by default `./runs/eval/<task>__<model>__<strategy>__<hash>` under the
    current directory, hashed from the settings: a second call with the same settings resumes that
    folder, returning the rows already there without running them again (pass another `out_dir`,
    or delete the folder, for a fresh run). Different settings never share a folder.

    `max_tokens_per_problem` is a hard cap on each problem's generated tokens, whatever the
    strategy (`Meter`, which bills every request to its problem, so the cap is exact in a batch).
    `problem_timeout_s` turns a problem that runs longer into an error row (problems then run
    one at a time: a batch shares its calls, so it cannot stop one of its problems alone).

    `executor` solves the batches elsewhere (`eval.distributed.ray_executor`: Ray actors), yielding
    each batch's rows as it finishes, in any order; rows are still written here, by this process
    alone, so a resume works the same."""
    if limit is not None and limit < 1:
        raise BadInput(f"limit must be >= 1, got {limit}.")
    if batch_problems < 1:
        raise BadInput(f"batch_problems must be >= 1, got {batch_problems}.")
    if max_errors is not None and max_errors < 0:
        raise BadInput(f"max_errors must be >= 0, got {max_errors}.")
    if max_tokens_per_problem is not None and max_tokens_per_problem < 1:
        raise BadInput(f"max_tokens_per_problem must be >= 1, got {max_tokens_per_problem}.")
    meter = Meter(backend, max_tokens_per_problem, problem_timeout_s)
    strategy.check(meter, task)  # a backend that cannot serve the strategy fails before anything runs
    weights = weights_hash(backend)
    settings = run_settings(task, backend, strategy, seed, weights)
    if problem_timeout_s is not None and problem_timeout_s <= 0:
        raise BadInput(f"problem_timeout_s must be > 0, got {problem_timeout_s}.")
    if max_tokens_per_problem is not None:  # only then: runs without a cap keep their old keys
        settings["max_tokens_per_problem"] = max_tokens_per_problem
    if problem_timeout_s is not None:
        batch_problems = 1
    out = Path(out_dir) if out_dir else default_out_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    if run_file.exists():
        before = json.loads(run_file.read_text())
        if "weights" not in before:  # a run from before weights were recorded: record them now
            before["weights"] = settings["weights"]
            run_file.write_text(json.dumps(before, indent=2))
        if changes := setting_changes(before, settings):
            raise BadInput(f"{out} holds a run with different settings ({'; '.join(changes)}); "
                           f"use another --out or the same settings.")
    else:
        run_file.write_text(json.dumps({**settings, "deliberate": __version__}, indent=2))
    write_manifest(out, build_manifest(task, backend, strategy, seed=seed, limit=limit, weights=weights,
                                       max_tokens_per_problem=max_tokens_per_problem))
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
    errors = sum("error" in r for r in done.values())
    held: list[tuple[dict, BaseException]] = []  # rows of a programming error, until it is one or a bug

    def write(row: dict) -> None:
        nonlocal errors
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()  # each graded row reaches the OS at once: a kill loses no finished problem
        done[row["id"]] = row
        errors += "error" in row

    batches = [todo[start:start + batch_problems] for start in range(0, len(todo), batch_problems)]
    execute = executor or local_executor(task, meter, strategy, seed, max_tokens_per_problem)
    with results.open("a", encoding="utf-8") as f:
        for batch, batch_rows, failures in execute(batches):
            for row in batch_rows:
                sig = bug_signature(failures[row["id"]]) if row["id"] in failures else None
                if sig is not None and all(bug_signature(e) == sig for _, e in held):
                    held.append((row, failures[row["id"]]))
                    if len(held) >= min(BUG_RUN, len(todo)):
                        raise _bug(out, held, len(done))
                    continue
                for r, _ in held:  # not the same bug in every problem: those were bad samples
                    write(r)
                held = [(row, failures[row["id"]])] if sig is not None else []
                if sig is None:
                    write(row)
            finished += len(batch)
            if on_progress:
                on_progress(finished, len(problems), row)
            if max_errors is not None and errors > max_errors:
                raise TooManyErrors(f"{errors} problems failed (more than --max-errors {max_errors}); last: "
                                    f"{next(r['error'] for r in reversed(list(done.values())) if 'error' in r)}. "
                                    f"Rows so far are in {results}.")
        for r, _ in held:
            write(r)
    rows = [done[p.id] for p in problems if p.id in done]
    summary = {**settings, **summarize(rows), "out": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _bug(out: Path, held: list[tuple[dict, BaseException]], kept: int) -> RunBug:
    """Write the tracebacks beside the rows; one line for the user."""
    log = out / "error.log"
    with log.open("a", encoding="utf-8") as f:
        f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: the same error in {len(held)} problems in a row\n")
        for row, e in held:
            f.write(f"problem {row['id']}:\n" + "".join(traceback.format_exception(e)) + "\n")
    return RunBug(f"a bug stopped the run: {held[-1][0]['error']} (in every problem tried, {len(held)} in a row; "
                  f"traceback in {log}). {kept} finished rows are kept; no row was written for these problems, "
                  f"so the same command reruns them once the code is fixed.")


def write_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest of a new run; on a resume keep the first and log what changed since."""
    path = out / "manifest.json"
    if not path.exists():
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        return
    first = json.loads(path.read_text())
    changed = diff_manifests({k: v for k, v in first.items() if k != "resumes"}, manifest)
    first.setdefault("resumes", []).append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changed})
    path.write_text(json.dumps(first, indent=2, ensure_ascii=False))
