"""deliberate: o1-style deliberate reasoning for any language model, measured.

    import deliberate
    backend = deliberate.load_backend("lab")
    result = deliberate.solve("Tom has 3 apples. He buys 4 more. How many apples does Tom have now?",
                              backend, strategy="self-consistency", n=8)
    summary = deliberate.evaluate(deliberate.load_task("lab-en"), backend,
                                  deliberate.get_strategy("greedy"), limit=50)
"""

from __future__ import annotations

from deliberate.backends import load_backend  # noqa: E402
from deliberate.backends.base import Backend  # noqa: E402
from deliberate.errors import BackendError, BadInput, DeliberateError, UnknownName  # noqa: E402
from deliberate.eval.runner import evaluate  # noqa: E402
from deliberate.params import SamplingParams  # noqa: E402
from deliberate.search import Result, Strategy, get_strategy  # noqa: E402
from deliberate.tasks import Problem, Task, load_task  # noqa: E402
from deliberate.version import __version__  # noqa: E402,F401

__all__ = ["Backend", "BackendError", "BadInput", "DeliberateError", "Problem", "Result", "SamplingParams",
           "Task", "UnknownName", "evaluate", "get_strategy", "load_backend", "load_task", "solve"]


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
