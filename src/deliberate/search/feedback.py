"""Feedback from outside the model, for self-refine and reflection (`--feedback prm|tool`).

Self-correction without an external signal often breaks as many answers as it repairs (Huang
et al. 2024, Large Language Models Cannot Self-Correct Reasoning Yet); with a signal it can
help (Kamoi et al. 2024, When Can LLMs Actually Correct Their Own Mistakes?). Two signals:

- `prm`: a trained process reward model scores each step of the solution; the first step
  scored below the threshold is named in the feedback ("Step 3 ... looks wrong"), and a
  solution with no such step is left alone.
- `tool`: the task's tool (`Task.tool_check`): a calculator re-checks every written
  calculation of a math solution; Game of 24's rule checker judges its expression.

`intrinsic` is the model's own review (self-refine) or an unconditional reflection: no signal.
A critic returns one line of feedback, or None when it finds nothing wrong (the strategy then
stops revising that problem). A PRM's forward passes are billed as verifier compute.
"""

from __future__ import annotations

from collections.abc import Sequence

from deliberate.errors import BadInput
from deliberate.rewards.base import Path, split_steps
from deliberate.tasks.base import Problem, Task

FEEDBACK = {
    "intrinsic": "no external signal: the model's own review (self-refine) or an unconditional reflection",
    "prm": "a PRM (--verifier) scores each step; the first below --threshold is named",
    "tool": "a calculator re-checks each calculation; Game of 24's checker judges its expression",
}


def check_feedback(kind: str, verifier: str, threshold: float) -> None:
    if kind not in FEEDBACK:
        raise BadInput(f"unknown feedback {kind!r}; choose one of: {', '.join(FEEDBACK)}.")
    if kind == "prm" and not verifier.startswith("prm:"):
        raise BadInput(f"--feedback prm needs a process reward model as --verifier (prm:PATH), got {verifier!r}.")
    if not 0 < threshold < 1:
        raise BadInput(f"threshold must be in (0, 1), got {threshold}.")


def critic_for(owner, kind: str, task: Task, backend, verifier: str, threshold: float) -> Critic | None:
    """The strategy's critic for this task and backend, built once (a PRM loads once per run);
    None for intrinsic feedback."""
    if kind == "intrinsic":
        return None
    key = (id(task), id(backend), kind, verifier, threshold)
    cached = getattr(owner, "_critic", None)
    if cached is None or cached[0] != key:
        cached = (key, Critic(kind, task, backend, verifier, threshold))
        owner._critic = cached
    return cached[1]


class Critic:
    """External feedback on finished solutions, a batch of one problem's texts at a time."""

    def __init__(self, kind: str, task: Task, backend, verifier: str = "prm:lab", threshold: float = 0.5) -> None:
        check_feedback(kind, verifier, threshold)
        self.kind, self.task, self.threshold = kind, task, threshold
        self.reward = None
        if kind == "prm":
            from deliberate.rewards import get_reward

            self.reward = get_reward(verifier, task=task, backend=backend)

    @property
    def external(self) -> bool:
        return self.kind != "intrinsic"

    def __call__(self, problem: Problem, texts: Sequence[str]) -> list[str | None]:
        if self.kind == "tool":
            return [self.task.tool_check(problem, t) for t in texts]
        if self.reward is None:
            raise BadInput("intrinsic feedback comes from the model, not a critic.")
        stepss = [split_steps(t, self.task.step_delimiter) or [t] for t in texts]
        scores = self.reward(problem, [Path(steps=s) for s in stepss])
        return [first_low(steps, sc, self.threshold) for steps, sc in zip(stepss, scores, strict=True)]


def first_low(steps: Sequence[str], scores: Sequence[float], threshold: float) -> str | None:
    """The feedback naming the first step a PRM scores below the threshold.

    >>> first_low(["3 + 4 = 7\\n", "7 * 2 = 15\\n"], [0.9, 0.2], 0.5)
    'Step 2 ("7 * 2 = 15") looks wrong.'
    >>> first_low(["3 + 4 = 7\\n"], [0.9], 0.5) is None
    True
    """
    for k, (step, s) in enumerate(zip(steps, scores, strict=True)):
        if s < threshold:
            return f'Step {k + 1} ("{step.strip()}") looks wrong.'
    return None
