"""`solve`: one question, one strategy, no task file: the library's shortest path to an answer."""

from __future__ import annotations

from functools import cache

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
    return strat(Problem("question", question.strip(), ""), backend, adhoc_task(question), seed=seed)


def question_lang(question: str) -> str:
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "en"


def adhoc_task(question: str) -> Task:
    """The task of questions asked one at a time: graded as math, numbers read in the
    question's language."""
    return _task_in(question_lang(question))


@cache  # one object per language, so a strategy's reward is built once for all its questions
def _task_in(lang: str) -> Task:
    return Task("question", "an ad hoc question", lambda: [], lang)
