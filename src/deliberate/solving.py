"""`solve`: one question, one strategy, no task file: the library's shortest path to an answer."""

from __future__ import annotations

from deliberate.backends import load_backend
from deliberate.backends.base import Backend
from deliberate.errors import BadInput
from deliberate.search import Result, Strategy, get_strategy
from deliberate.tasks.base import Problem, Task


def solve(question: str, backend: Backend | str = "lab", *, strategy: str | Strategy = "greedy", seed: int = 0,
          **options) -> Result:
    """Answer one question; `backend` is a loaded backend or a model spec, `strategy` a name
    (with its options as keywords) or a ready Strategy."""
    if not question or not question.strip():
        raise BadInput("the question is empty.")
    strat = strategy if isinstance(strategy, Strategy) else get_strategy(strategy, **options)
    if isinstance(backend, str):
        backend = load_backend(backend)
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "en"
    task = Task("question", "an ad hoc question", lambda: [], lang)
    return strat(Problem("question", question.strip(), ""), backend, task, seed=seed)
