"""`self-consistency` (Wang et al. 2022): sample n chains of thought, answer by majority vote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.grading.vote import majority
from deliberate.search.base import Result, Strategy, sample, traces_of
from deliberate.tasks.base import Problem, Task


@dataclass(frozen=True)
class SelfConsistencyConfig:
    n: int = field(default=16, metadata={"help": "samples per problem"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (> 0)"})
    top_p: float = field(default=1.0, metadata={
        "help": "nucleus sampling: the probability mass of the likeliest tokens kept (1: all)"})
    max_tokens: int | None = field(default=None, metadata={
        "help": "generated tokens per chain of thought: a sample, path or attempt (default: the task's)"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise BadInput(f"n must be >= 1, got {self.n}.")
        if self.temperature <= 0:
            raise BadInput(f"temperature must be > 0 for sampling, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise BadInput(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadInput(f"max_tokens must be >= 1, got {self.max_tokens}.")


class SelfConsistency(Strategy):
    name = "self-consistency"
    Config = SelfConsistencyConfig
    samples = True

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        gens = sample(problems, backend, task, n=c.n, temperature=c.temperature, top_p=c.top_p,
                      max_tokens=c.max_tokens, seed=seed, shots=c.shots)
        out = []
        for gen in gens:
            traces = traces_of(gen, task)
            out.append(Result(majority([t.answer for t in traces]), traces))
        return out
