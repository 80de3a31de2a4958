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
from deliberate.solving import solve  # noqa: E402
from deliberate.tasks import Problem, Task, load_task  # noqa: E402
from deliberate.version import __version__  # noqa: E402,F401

__all__ = ["Backend", "BackendError", "BadInput", "DeliberateError", "Problem", "Result", "SamplingParams", "Strategy",
           "Task", "UnknownName", "evaluate", "get_strategy", "load_backend", "load_task", "solve"]
