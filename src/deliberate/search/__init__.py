"""Search strategies by name: `get_strategy("self-consistency", n=16)`."""

from __future__ import annotations

from deliberate.errors import BadInput, UnknownName
from deliberate.search.base import Compute, Result, Strategy, Trace, majority
from deliberate.search.greedy import Greedy
from deliberate.search.self_consistency import SelfConsistency

__all__ = ["Compute", "Result", "Strategy", "Trace", "STRATEGIES", "get_strategy", "majority"]

STRATEGIES: dict[str, type[Strategy]] = {"greedy": Greedy, "self-consistency": SelfConsistency}
DESCRIPTIONS = {
    "greedy": "one chain of thought at temperature 0 (options: max_tokens, shots)",
    "self-consistency": "n samples, majority vote over answers (options: n, temperature, top_p, max_tokens, shots)",
}


def get_strategy(name: str, **options) -> Strategy:
    """A strategy by name; options not set (None) take the strategy's defaults."""
    if name not in STRATEGIES:
        raise UnknownName(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}.")
    cls = STRATEGIES[name]
    opts = {k: v for k, v in options.items() if v is not None}
    fields = cls.Config.__dataclass_fields__
    unknown = [k for k in opts if k not in fields]
    if unknown:
        raise BadInput(f"strategy {name!r} takes no option {unknown[0]!r}; it takes: {', '.join(fields)}.")
    return cls(**opts)
