"""The strategy interface every search method shares, and the compute it reports.

A strategy takes problems, a backend and a task and returns, per problem, the answer, the
traces it produced and the compute it spent. It never grades against the gold answer: the
evaluation harness does that, so no strategy can peek.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from deliberate.backends.base import Backend, Generation
from deliberate.backends.metered import Compute, Meter
from deliberate.errors import BackendError
from deliberate.grading.vote import majority, vote_key
from deliberate.params import SamplingParams
from deliberate.prompting import build_prompt, format_of
from deliberate.rewards import Reward, get_reward
from deliberate.tasks.base import Problem, Task

__all__ = ["Compute", "Meter", "Result", "Strategy", "Trace", "majority", "problem_seed", "sample", "traces_of",
           "vote_key"]


@dataclass
class Trace:
    """One reasoning path: its text, the answer read from it, and what it cost."""

    text: str
    answer: str | None
    rule: str
    tokens: int
    finish_reason: str
    score: float | None = None


@dataclass
class Result:
    """A problem's answer and traces; `compute` is filled by the meter, not by the strategy."""

    answer: str | None
    traces: list[Trace]
    compute: Compute = field(default_factory=Compute)
    info: dict = field(default_factory=dict)


def problem_seed(seed: int, problem: Problem) -> int:
    """A per-problem seed, stable across batching, ordering and resumed runs."""
    return (seed * 1_000_003 + zlib.crc32(problem.id.encode())) % 2**31


def traces_of(gen: Generation, task: Task) -> list[Trace]:
    """Turn a backend generation into traces with the task's answer extraction."""
    out = []
    for c in gen.completions:
        answer, rule = task.extract(c.text)
        out.append(Trace(c.text, answer, rule, c.n_tokens, c.finish_reason))
    return out


class Strategy(ABC):
    """A search method. Subclasses set `name` and `Config` and implement `solve_batch`, which
    gets a `Meter` and bills every request to its problem (`owners=`): compute is counted
    there, once, never by the strategy."""

    name: ClassVar[str]
    Config: ClassVar[type]  # the options dataclass, validated in its __post_init__
    samples: ClassVar[bool] = False  # True when traces are i.i.d. samples (pass@k applies)
    # What the backend or the model's format must offer, with the words an error uses for each:
    # a Capabilities field, or an ability the model's prompt format declares (`prompting.Format`).
    needs: ClassVar[dict[str, str]] = {}

    def __init__(self, config=None, **options) -> None:
        self.config = config or self.Config(**options)
        self._bound: tuple[Backend, Task, Reward | None] | None = None

    @abstractmethod
    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]: ...

    def run(self, problems: Sequence[Problem], backend: Backend, task: Task, *, seed: int = 0) -> list[Result]:
        """Solve a batch of problems; each result's compute is what the meter billed to it."""
        meter = backend if isinstance(backend, Meter) else Meter(backend)
        meter.begin([p.id for p in problems])
        results = self.solve_batch(problems, meter, task, seed=seed)
        for p, r in zip(problems, results, strict=True):
            r.compute = meter.usage_of(p.id)
        return results

    def __call__(self, problem: Problem, backend: Backend, task: Task, *, seed: int = 0) -> Result:
        meter = backend if isinstance(backend, Meter) else Meter(backend)
        self.check(meter, task)
        return self.run([problem], meter, task, seed=seed)[0]

    def reward(self, backend: Backend, task: Task) -> Reward | None:
        """The strategy's reward, built once per backend and task (a trained verifier is a model:
        it must load once per run, not per batch), and checked against both."""
        name = getattr(self.config, "reward", None)
        if self._bound is not None and self._bound[0] is backend and self._bound[1] is task:
            return self._bound[2]
        reward = None
        if name:
            try:
                reward = get_reward(name, task=task, backend=backend)
            except BackendError as e:
                raise BackendError(f"{self.name} with {e}") from None
        self._bound = (backend, task, reward)
        return reward

    def check(self, backend: Backend, task: Task) -> None:
        """Fail before any generation, naming this strategy and the backend, when the backend or
        the model's format cannot serve it or its reward (e.g. mcts with the confidence reward on
        a backend without logprobs). The eval runner and `Strategy.__call__` call this first."""
        fmt = format_of(backend)
        for field_name, words in self.needs.items():
            if not (getattr(backend.capabilities, field_name, False) or getattr(fmt, field_name, False)):
                raise BackendError(f"{self.name} needs {words}; backend {backend.spec!r} has no "
                                   f"{field_name.replace('_', ' ')}.")
        self.reward(backend, task)

    def options(self) -> dict:
        """The settings that define this run (they key resumable output)."""
        return asdict(self.config) if hasattr(self, "config") else {}


def owners_of(problems: Sequence[Problem]) -> list[str]:
    return [p.id for p in problems]


def sample(problems: Sequence[Problem], backend: Meter, task: Task, *, n: int, temperature: float,
           top_p: float, max_tokens: int | None, seed: int, shots: int,
           logprobs: int | None = None) -> list[Generation]:
    """One batched backend call: n samples for each problem, each problem with its own seed."""
    prompts = [build_prompt(task, p, backend, shots) for p in problems]
    params = [SamplingParams(n=n, temperature=temperature, top_p=top_p, logprobs=logprobs,
                             max_tokens=max_tokens or task.max_tokens, stop=pr.stop,
                             seed=problem_seed(seed, p)) for p, pr in zip(problems, prompts, strict=True)]
    return backend.generate([pr.text for pr in prompts], params, owners=owners_of(problems))
