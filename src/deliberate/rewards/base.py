"""What a reward (verifier) sees and returns.

A reward is a plain callable: `reward(problem, paths) -> list[list[float]]`, one score per step
of each path (an outcome reward gives every step the path's score). Scores of the paths of one
problem are computed together, because some rewards (consistency) compare them. Each reward
declares what it needs (`Reward`'s class attributes) so a strategy fails before it generates
when the task or the backend cannot provide it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

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


class Reward(ABC):
    """The typed contract of a verifier: what it needs is declared, and checked before any
    generation against the backend and the task (`check`), as a strategy's needs are.

    - `needs_logprobs`: top-k logprobs of every generated token (k; 0 for none)
    - `needs_scoring`: the backend scores a given continuation (`Backend.score`)
    - `needs_answer_key`: the task has gold answers (oracle rewards; analysis only)
    - `compares_paths`: a path's score depends on the other paths of its problem
    A reward is built once per run (a trained verifier is a model that loads once)."""

    name: ClassVar[str]
    needs_logprobs: ClassVar[int] = 0
    needs_scoring: ClassVar[bool] = False
    needs_answer_key: ClassVar[bool] = False
    compares_paths: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]: ...

    def check(self, backend=None, task=None) -> None:
        """One line naming the reward and what is missing, before anything is generated."""
        from deliberate.errors import BackendError

        if backend is not None:
            have = backend.capabilities
            if self.needs_logprobs and have.max_logprobs < self.needs_logprobs:
                raise BackendError(f"the {self.name} reward needs top-{self.needs_logprobs} logprobs, but backend "
                                   f"{backend.spec!r} returns at most {have.max_logprobs}.")
            if self.needs_scoring and not have.scoring:
                raise BackendError(f"the {self.name} reward needs continuation scoring, but backend "
                                   f"{backend.spec!r} cannot score a given text.")
        if task is not None and self.needs_answer_key and not task.has_answer_key:
            raise BadInput(f"the {self.name} reward needs an answer key; task {task.name!r} has none.")


def split_steps(text: str, delimiter: str = "\n") -> list[str]:
    """The steps of a solution: the text cut at the task's step delimiter, each step keeping
    its delimiter, so that the steps joined give the text back exactly (blank pieces join the
    step before them, or the first step). A prefix is then exactly what the model wrote."""
    pieces = text.split(delimiter)
    steps: list[str] = []
    lead = ""  # blank pieces before the first step belong to it
    for i, piece in enumerate(pieces):
        part = piece + (delimiter if i < len(pieces) - 1 else "")
        if not piece.strip() and not steps:
            lead += part
        elif piece.strip():
            steps.append(lead + part)
            lead = ""
        else:
            steps[-1] += part
    return steps or [text]


def steps_of(paths: Sequence[Path], delimiter: str = "\n") -> list[list[str]]:
    """Each path's steps; a path given as one piece (best-of-n's whole samples) is cut at the
    task's step delimiter, so a verifier scores the steps a tree search would have made."""
    return [p.steps if len(p.steps) > 1 else split_steps(p.text, delimiter) for p in paths]


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


def check_reward(reward: Reward, backend, task=None) -> None:
    """Fail before any generation when the backend (or the task) cannot feed this reward."""
    reward.check(backend, task)
