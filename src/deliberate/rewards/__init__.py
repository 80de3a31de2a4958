"""Rewards (verifiers) by name: `get_reward("confidence")`, `get_reward("oracle", task=task)`."""

from __future__ import annotations

from deliberate.errors import BadInput, UnknownName
from deliberate.rewards.base import AGGREGATES, Path, Reward, check_reward, path_value
from deliberate.rewards.confidence import Confidence
from deliberate.rewards.outcome import Consistency, Oracle
from deliberate.rewards.self_eval import SelfEval
from deliberate.rewards.tool import ToolChecked
from deliberate.tasks.base import Task

__all__ = ["AGGREGATES", "REWARDS", "Confidence", "Consistency", "Oracle", "Path", "Reward", "SelfEval", "ToolChecked",
           "check_reward", "get_reward", "path_value"]

REWARDS = {
    "confidence": "Marco-o1's mean top-5 token confidence (no answer key needed)",
    "consistency": "share of the other paths that reach the same answer (no answer key needed)",
    "self-eval": "the model asked whether each step is correct: P(Yes) / (P(Yes) + P(No))",
    "tool": "confidence, zeroed where the task's tool (a calculator, 24's checker) proves a solution wrong",
    "oracle": "the answer key; for analysis and labelling only, never a method's accuracy",
    "prm:PATH": "a trained process reward model scoring each step (?format=token|shepherd|qwen); prm:lab ships",
    "orm:PATH": "a trained outcome reward model scoring the whole solution",
    "lm:SPEC": "another model's likelihood of each path, exp(mean log p): a judge stronger than the generator",
}


def get_reward(name: str, *, task: Task | None = None, backend=None) -> Reward:
    """A reward by name; given the backend it will run on, it is also checked against the
    backend's capabilities, so a mismatch fails before anything is generated."""
    reward = _make(name, task, backend)
    reward.check(backend, task)
    return reward


def _make(name: str, task: Task | None, backend) -> Reward:
    if name == "confidence":
        return Confidence()
    if name == "consistency":
        return Consistency()
    if name == "self-eval":
        if backend is None or task is None:
            raise BadInput("the self-eval reward needs the backend and task it will run on.")
        return SelfEval(backend, task)  # get_reward then checks the backend can score
    if name.startswith(("prm:", "orm:")):
        from deliberate.rewards.model import ModelReward

        return ModelReward(name, task=task, backend=backend)
    if name.startswith("lm:"):
        from deliberate.rewards.likelihood import Likelihood

        return Likelihood(name, task=task, backend=backend)
    if name == "tool":
        return ToolChecked(task)
    if name == "oracle":
        if task is None or not task.has_answer_key:
            raise BadInput("the oracle reward needs an answer key; this task has none.")
        return Oracle(task)
    raise UnknownName(f"unknown reward {name!r}; choose one of: {', '.join(REWARDS)}.")
