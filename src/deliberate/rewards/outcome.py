"""Outcome rewards read from a path's final answer: `oracle` (the answer key) and `consistency`.

`oracle` is for analysis and labelling only (how good could a verifier be?), never reported as
a method's accuracy. `consistency` scores a path by how many of the other paths of the same
problem reach the same answer: the agreement signal rStar's mutual consistency and
self-consistency both rest on, as a reward any strategy can use.
"""

from __future__ import annotations

from collections.abc import Sequence

from deliberate.grading.vote import vote_key
from deliberate.rewards.base import Path, Reward
from deliberate.tasks.base import Problem, Task


class Oracle(Reward):
    name = "oracle"
    needs_answer_key = True

    def __init__(self, task: Task) -> None:
        self.task = task

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        return [[float(self.task.check(problem, p.answer))] * max(1, len(p.steps)) for p in paths]


class Consistency(Reward):
    name = "consistency"
    compares_paths = True  # a path's score depends on the others: mcts passes its earlier rollouts too

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        keys = [vote_key(p.answer) if p.answer is not None else None for p in paths]
        others = max(1, len(paths) - 1)
        return [[(sum(k == other for other in keys) - 1) / others if k is not None else 0.0] * max(1, len(p.steps))
                for k, p in zip(keys, paths, strict=True)]
