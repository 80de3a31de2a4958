"""What a reward (verifier) sees and returns.

A reward is a plain callable: `reward(problem, paths) -> list[list[float]]`, one score per step
of each path (an outcome reward gives every step the path's score). Scores of the paths of one
problem are computed together, because some rewards (consistency) compare them. Each reward
declares what it needs (`needs_answer_key`, `needs_logprobs`) so a strategy fails before it
generates when the task or the backend cannot provide it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deliberate.errors import BadInput
from deliberate.tasks.base import Problem


@dataclass
class Path:
    """A reasoning path: its steps, the token confidences of each step (from the expansion that
    wrote it; empty when unknown), and the answer read from it (None while unfinished)."""

    steps: list[str]
    confidences: list[list[float]] = field(default_factory=list)
    answer: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.steps)


class Reward(Protocol):
    name: str
    needs_answer_key: bool
    needs_logprobs: bool

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]: ...


AGGREGATES = ("last", "min", "mean", "prod")


def path_value(step_scores: Sequence[float], how: str = "last") -> float:
    """One number for a path from its step scores (search-and-learn's last | min | prod, and mean).

    >>> path_value([0.5, 0.8], "last"), path_value([0.5, 0.8], "min"), path_value([0.5, 0.8], "prod")
    (0.8, 0.5, 0.4)
    """
    if how not in AGGREGATES:
        raise BadInput(f"unknown aggregate {how!r}; choose one of: {', '.join(AGGREGATES)}.")
    if not step_scores:
        return 0.0
    if how == "last":
        return float(step_scores[-1])
    if how == "min":
        return float(min(step_scores))
    if how == "mean":
        return float(sum(step_scores) / len(step_scores))
    out = 1.0
    for s in step_scores:
        out *= s
    return out


def check_reward(reward: Reward, backend, needed_k: int = 5) -> None:
    """Fail before any generation when the backend cannot feed this reward."""
    from deliberate.errors import BackendError

    if reward.needs_logprobs and backend.capabilities.max_logprobs < needed_k:
        raise BackendError(f"the {reward.name} reward needs top-{needed_k} logprobs, but backend "
                           f"{backend.spec!r} returns at most {backend.capabilities.max_logprobs}.")
    if getattr(reward, "needs_scoring", False) and not backend.capabilities.scoring:
        raise BackendError(f"the {reward.name} reward needs continuation scoring, but backend "
                           f"{backend.spec!r} cannot score a given text.")
