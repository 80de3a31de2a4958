"""`greedy`: one chain of thought at temperature 0, the baseline every method is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.search.base import Result, Strategy, sample, traces_of
from deliberate.tasks.base import Problem, Task


@dataclass(frozen=True)
class GreedyConfig:
    max_tokens: int | None = field(default=None, metadata={
        "help": "generated tokens per chain of thought: a sample, path or attempt (default: the task's)"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadInput(f"max_tokens must be >= 1, got {self.max_tokens}.")
        if self.shots < 0:
            raise BadInput(f"shots must be >= 0, got {self.shots}.")


class Greedy(Strategy):
    name = "greedy"
    Config = GreedyConfig

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        gens = sample(problems, backend, task, n=1, temperature=0.0, top_p=1.0, max_tokens=c.max_tokens,
                      seed=seed, shots=c.shots)
        return [Result((traces := traces_of(gen, task))[0].answer, traces) for gen in gens]
