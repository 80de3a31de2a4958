"""`tool`: Marco-o1's confidence, set to zero on a finished solution that the task's tool
proves wrong (`Task.tool_check`: a calculator re-checks every written calculation; Game of 24's
rule checker).

Why it exists: the bench asks how much search buys with a verifier far better than the model's
own confidence; an exact checker of calculations is such a verifier for the slips it can see,
and it needs no answer key (a wrong plan with right sums passes it, and confidence then decides).
It is an external signal, as code execution is for code, not a learned verifier: tables name it
apart from `prm:`/`orm:` rows. Only finished paths are checked, because a checker of a whole
answer (24's) cannot judge a partial one; unfinished paths keep their confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from deliberate.errors import BadInput
from deliberate.rewards.base import Path, Reward
from deliberate.rewards.confidence import Confidence
from deliberate.tasks.base import Problem, Task


class ToolChecked(Reward):
    name = "tool"
    needs_logprobs = Confidence.needs_logprobs

    def __init__(self, task: Task | None) -> None:
        if task is None:
            raise BadInput("the tool reward needs the task whose tool checks a solution.")
        self.task, self.confidence = task, Confidence()

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        out = []
        for path, scores in zip(paths, self.confidence(problem, paths), strict=True):
            flagged = path.answer is not None and self.task.tool_check(problem, path.text) is not None
            out.append([0.0] * len(scores) if flagged else scores)
        return out
