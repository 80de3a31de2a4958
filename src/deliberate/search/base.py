"""The strategy interface every search method shares, and the compute it reports.

A strategy takes problems, a backend and a task and returns, per problem, the answer, the
traces it produced and the compute it spent. It never grades against the gold answer: the
evaluation harness does that, so no strategy can peek.
"""

from __future__ import annotations

import time
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import ClassVar

from deliberate.backends.base import Backend, Generation
from deliberate.grading.numbers import read_number
from deliberate.tasks.base import Problem, Task


@dataclass
class Compute:
    """Tokens generated, prompt tokens read (per sample, as an API bills them, even where the
    backend prefills a prompt once for its n samples), backend requests (one prompt with its n
    samples; requests batched into one call count one each), and wall seconds."""

    tokens_generated: int = 0
    tokens_read: int = 0
    calls: int = 0
    wall_s: float = 0.0
    verifier_tokens: int = 0  # tokens a verifier read to score paths (self-eval's scoring passes)
    verifier_calls: int = 0

    def __iadd__(self, other: Compute) -> Compute:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)
        return self

    def to_dict(self) -> dict:
        return {**asdict(self), "wall_s": round(self.wall_s, 3)}


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
    answer: str | None
    traces: list[Trace]
    compute: Compute
    info: dict = field(default_factory=dict)


def problem_seed(seed: int, problem: Problem) -> int:
    """A per-problem seed, stable across batching, ordering and resumed runs."""
    return (seed * 1_000_003 + zlib.crc32(problem.id.encode())) % 2**31


def vote_key(answer: str) -> str:
    """Answers that are the same number vote together ("1,080", "1080.0")."""
    n = read_number(answer, getattr(answer, "lang", None))
    return str(Fraction(n)) if n is not None else " ".join(answer.split())


def majority(answers: Sequence[str | None]) -> str | None:
    """The most common answer (ties go to the one seen first); None votes are ignored."""
    keys = [(vote_key(a), a) for a in answers if a is not None]
    if not keys:
        return None
    counts = Counter(k for k, _ in keys)
    best = max(counts.values())
    return next(a for k, a in keys if counts[k] == best)


def traces_of(gen: Generation, task: Task) -> list[Trace]:
    """Turn a backend generation into traces with the task's answer extraction."""
    out = []
    for c in gen.completions:
        answer, rule = task.extract(c.text)
        out.append(Trace(c.text, answer, rule, c.n_tokens, c.finish_reason))
    return out


class Strategy(ABC):
    """A search method. Subclasses set `name` and implement `solve_batch`."""

    name: ClassVar[str]
    Config: ClassVar[type]  # the options dataclass, validated in its __post_init__
    samples: ClassVar[bool] = False  # True when traces are i.i.d. samples (pass@k applies)

    def __init__(self, config=None, **options) -> None:
        self.config = config or self.Config(**options)

    @abstractmethod
    def solve_batch(self, problems: Sequence[Problem], backend: Backend, task: Task, *,
                    seed: int = 0) -> list[Result]: ...

    def __call__(self, problem: Problem, backend: Backend, task: Task, *, seed: int = 0) -> Result:
        self.check(backend, task)
        return self.solve_batch([problem], backend, task, seed=seed)[0]

    # Capabilities fields this strategy needs truthy, with the words an error uses for each.
    needs: ClassVar[dict[str, str]] = {}

    def check(self, backend: Backend, task: Task) -> None:
        """Fail before any generation, naming this strategy and the backend, when the backend
        cannot serve it or the reward it was given (e.g. mcts with the confidence reward on a
        backend without logprobs). The eval runner and `Strategy.__call__` call this first."""
        from deliberate.errors import BackendError
        from deliberate.rewards import get_reward

        for field_name, words in self.needs.items():
            if not getattr(backend.capabilities, field_name):
                raise BackendError(f"{self.name} needs {words}; backend {backend.spec!r} has no "
                                   f"{field_name.replace('_', ' ')}.")
        reward = getattr(getattr(self, "config", None), "reward", None)
        if reward:
            try:
                get_reward(reward, task=task, backend=backend)
            except BackendError as e:
                raise BackendError(f"{self.name} with {e}") from None

    def options(self) -> dict:
        """The settings that define this run (they key resumable output)."""
        return asdict(self.config) if hasattr(self, "config") else {}


def generate_timed(backend: Backend, prompts: Sequence[str], params, computes: Sequence[Compute]) -> list[Generation]:
    """One batched backend call; each prompt's compute gets its tokens, one call and an even
    share of the wall time."""
    t0 = time.perf_counter()
    gens = backend.generate(prompts, params)
    share = (time.perf_counter() - t0) / max(1, len(prompts))
    for g, c in zip(gens, computes, strict=True):
        c += Compute(g.tokens_generated, g.prompt_tokens * len(g.completions), 1, share)
    return gens


def sample(problems: Sequence[Problem], backend: Backend, task: Task, *, n: int, temperature: float,
           top_p: float, max_tokens: int | None, seed: int, shots: int,
           logprobs: int | None = None) -> list[tuple[Generation, Compute]]:
    """One batched backend call: n samples for each problem, each problem with its own seed.

    Wall time of the shared call is split evenly across the problems in it.
    """
    from deliberate.params import SamplingParams
    from deliberate.tasks.prompts import build_prompt

    prompts = [build_prompt(task, p, backend, shots) for p in problems]
    params = [SamplingParams(n=n, temperature=temperature, top_p=top_p, logprobs=logprobs,
                             max_tokens=max_tokens or task.max_tokens, stop=pr.stop,
                             seed=problem_seed(seed, p)) for p, pr in zip(problems, prompts, strict=True)]
    computes = [Compute() for _ in problems]
    gens = generate_timed(backend, [pr.text for pr in prompts], params, computes)
    return list(zip(gens, computes, strict=True))
