"""`deliberate label`: step labels without humans, for training a process reward model.

Math-Shepherd (Wang et al. 2024) labels a step by what happens after it: from the solution's
prefix ending at that step, K completions are rolled out; the step's *soft* label is the share
that reach the gold answer, its *hard* label whether any does. The last step's label is the
solution's own correctness (no rollout is needed to know it).

`first_error` is OmegaPRM's shortcut (Luo et al. 2024): if a step is wrong every later step is
too (the hard label is monotone along a solution), so the first wrong step is found by binary
search over the prefixes, log2(m) rollout sets instead of m - 1; a right solution needs none
(all its steps are labelled right). Only hard labels come out of it.

Rows are the stepwise format of the Math-Shepherd data set as TRL's PRM data has it:
`{"prompt", "completions": [step, ...], "labels": [bool, ...]}`, plus the soft labels, the
problem's id and gold answer, and the rollouts the row cost. Labelling is batched (every
prefix of a batch of problems in one backend call; prompts that share a prefix hit the
backend's prefix cache) and resumable (a problem whose rows are in the file is not redone).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.params import SamplingParams
from deliberate.prompting import build_prompt
from deliberate.rewards.base import split_steps
from deliberate.search.base import problem_seed
from deliberate.tasks.base import Problem, Task
from deliberate.train.common import opt

__all__ = ["LabelConfig", "label_problems", "label_task", "split_steps"]


@dataclass
class LabelConfig:
    task: str = opt("lab-en-train", "task whose problems are labelled (a training or validation split)")
    model: str = opt("lab", "model that writes the solutions and the rollouts")
    out: str = opt("runs/labels.jsonl", "JSONL file of labelled solutions (appended to; resumable)")
    samples: int = opt(4, "solutions sampled per problem")
    rollouts: int = opt(8, "completions rolled out from each step's prefix (0: outcome labels only, for an ORM)")
    temperature: float = opt(0.7, "sampling temperature of solutions and rollouts")
    limit: int | None = opt(None, "label only the first N problems")
    first_error: bool = opt(False, "find the first wrong step by binary search (OmegaPRM) instead of labelling all")
    batch: int = opt(16, "problems per backend call")
    shots: int = opt(8, "few-shot exemplars for real models (the lab model takes none)")
    seed: int = opt(0, "seed of solutions and rollouts")
    threads: int | None = opt(None, "torch CPU threads (default: torch's)")

    def validate(self) -> None:
        for name in ("samples", "batch"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.rollouts < 0 or (self.rollouts == 0 and self.first_error):
            raise BadInput(f"--rollouts must be >= 1 (or 0 without --first-error: outcome labels only), "
                           f"got {self.rollouts}.")
        if self.temperature <= 0:
            raise BadInput(f"--temperature must be > 0 (labels need samples), got {self.temperature}.")
        if self.limit is not None and self.limit < 1:
            raise BadInput(f"--limit must be >= 1, got {self.limit}.")
        if not self.task.endswith(("-train", "-valid")):
            raise BadInput(f"task {self.task} is not a training or validation split (its name ends in -train or "
                           "-valid): labels are training data, and the test split stays unseen.")


@dataclass
class _Solution:
    problem: Problem
    head: str  # the prompt the solution was written under
    steps: list[str]
    correct: bool
    soft: list[float | None]
    rollouts: int = 0
    tokens: int = 0


def _seed(seed: int, problem: Problem, j: int, i: int) -> int:
    return (problem_seed(seed, problem) + zlib.crc32(f"{j}/{i}".encode())) % 2**31


def _roll(sols: Sequence[tuple[int, _Solution, int]], backend: Meter, task: Task, cfg: LabelConfig,
          stop: tuple[str, ...]) -> None:
    """Roll out K completions from the prefix ending at step i of each (j, solution, i); store
    the share that reach the gold answer as the step's soft label."""
    if not sols:
        return
    prefixes = [s.head + "".join(s.steps[: i + 1]) for _, s, i in sols]
    gens = backend.generate(prefixes, [SamplingParams(n=cfg.rollouts, temperature=cfg.temperature,
                                                      max_tokens=task.max_tokens, stop=stop,
                                                      seed=_seed(cfg.seed, s.problem, j, i))
                                       for j, s, i in sols],
                            owners=[s.problem.id for _, s, _ in sols])
    for (_, s, i), g in zip(sols, gens, strict=True):
        done = "".join(s.steps[: i + 1])
        hits = sum(task.check(s.problem, task.extract(done + c.text)[0]) for c in g.completions)
        s.soft[i] = hits / len(g.completions)
        s.rollouts += len(g.completions)
        s.tokens += sum(c.n_tokens for c in g.completions)


def _first_error(sols: list[tuple[int, _Solution]], backend: Meter, task: Task, cfg: LabelConfig,
                 stop: tuple[str, ...]) -> dict[int, int]:
    """The first step whose prefix no rollout completes rightly, by binary search in rounds (one
    backend call per round over every wrong solution). Keys: positions in `sols`."""
    bounds = {k: (0, len(s.steps) - 1) for k, (_, s) in enumerate(sols) if not s.correct}
    while any(lo < hi for lo, hi in bounds.values()):
        probe = {k: (lo + hi) // 2 for k, (lo, hi) in bounds.items() if lo < hi}
        _roll([(sols[k][0], sols[k][1], i) for k, i in probe.items()], backend, task, cfg, stop)
        for k, mid in probe.items():
            lo, hi = bounds[k]
            bounds[k] = (lo, mid) if sols[k][1].soft[mid] == 0 else (mid + 1, hi)
    return {k: lo for k, (lo, _) in bounds.items()}


def label_problems(problems: Sequence[Problem], backend: Meter, task: Task, cfg: LabelConfig) -> list[dict]:
    """Sample `cfg.samples` solutions of each problem and label every step; rows in problem order."""
    prompts = [build_prompt(task, p, backend, cfg.shots) for p in problems]
    gens = backend.generate([pr.text for pr in prompts],
                            [SamplingParams(n=cfg.samples, temperature=cfg.temperature, max_tokens=task.max_tokens,
                                            stop=pr.stop, seed=problem_seed(cfg.seed, p))
                             for p, pr in zip(problems, prompts, strict=True)],
                            owners=[p.id for p in problems])
    sols: list[tuple[int, _Solution]] = []
    stop_of: dict[str, tuple[str, ...]] = {}
    for p, pr, g in zip(problems, prompts, gens, strict=True):
        stop_of[p.id] = pr.stop
        for j, c in enumerate(g.completions):
            steps = split_steps(c.text, task.step_delimiter)
            right = task.check(p, task.extract(c.text)[0])
            soft: list[float | None] = [None] * len(steps)
            soft[-1] = float(right)
            sols.append((j, _Solution(p, pr.text, steps, right, soft)))
    stops = set(stop_of.values())
    stop = next(iter(stops)) if len(stops) == 1 else ()  # one task: one prompt form, one stop set
    if cfg.rollouts == 0:  # no rollouts: every step carries the solution's outcome (an ORM's data)
        labels = [[s.correct] * len(s.steps) for _, s in sols]
    elif cfg.first_error:
        first = _first_error(sols, backend, task, cfg, stop)
        labels = [[i < first.get(k, len(s.steps)) for i in range(len(s.steps))] for k, (_, s) in enumerate(sols)]
    else:
        _roll([(j, s, i) for j, s in sols for i in range(len(s.steps) - 1)], backend, task, cfg, stop)
        labels = [[(v or 0) > 0 for v in s.soft] for _, s in sols]
    rows = []
    for (j, s), lab in zip(sols, labels, strict=True):
        rows.append({"id": s.problem.id, "sample": j, "prompt": s.head, "completions": s.steps, "labels": lab,
                     "soft_labels": None if cfg.first_error or not cfg.rollouts else s.soft, "correct": s.correct,
                     "gold": s.problem.answer, "rollouts": s.rollouts, "rollout_tokens": s.tokens})
    return rows


def _done_ids(path: Path) -> set[str]:
    """Problems already labelled; a last line cut short by a kill is dropped (its problem is redone)."""
    if not path.exists():
        return set()
    done, good = set(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done.add(row["id"])
        good.append(line)
    path.write_text("".join(line + "\n" for line in good), encoding="utf-8")
    return done


def label_task(cfg: LabelConfig, on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Label the task's problems into `cfg.out`, skipping those already there; returns totals."""
    from deliberate.backends import load_backend
    from deliberate.tasks import load_task

    cfg.validate()
    task = load_task(cfg.task)
    if not task.has_answer_key:
        raise BadInput(f"task {cfg.task} has no answer key: step labels count rollouts that reach the answer.")
    problems = task.problems[: cfg.limit]
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done_ids(out)
    todo = [p for p in problems if p.id not in done]
    backend = Meter(load_backend(cfg.model, threads=cfg.threads))
    for b in range(0, len(todo), cfg.batch):
        rows = label_problems(todo[b: b + cfg.batch], backend, task, cfg)
        with out.open("a", encoding="utf-8") as f:  # a whole batch at a time: a kill loses one batch at most
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            f.flush()
        if on_batch:
            on_batch(min(b + cfg.batch, len(todo)), len(todo))
    return summarize(out)


def summarize(path: str | Path) -> dict:
    """Counts of a label file: solutions, steps, the share labelled right, and the rollouts spent."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = sum(len(r["labels"]) for r in rows)
    return {"out": str(path), "problems": len({r["id"] for r in rows}), "solutions": len(rows), "steps": steps,
            "right_solutions": sum(r["correct"] for r in rows),
            "right_steps": sum(sum(r["labels"]) for r in rows) / max(steps, 1),
            "rollouts": sum(r["rollouts"] for r in rows), "rollout_tokens": sum(r["rollout_tokens"] for r in rows)}
