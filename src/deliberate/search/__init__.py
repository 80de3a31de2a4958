"""Search strategies by name: `get_strategy("self-consistency", n=16)`."""

from __future__ import annotations

from deliberate.errors import BadInput, UnknownName
from deliberate.grading.vote import majority
from deliberate.search.base import Compute, Result, Strategy, Trace
from deliberate.search.beam import Beam
from deliberate.search.best_of_n import BestOfN
from deliberate.search.budget_forcing import BudgetForcing
from deliberate.search.greedy import Greedy
from deliberate.search.mcts import MCTS
from deliberate.search.reflection import Reflection
from deliberate.search.rstar import RStar
from deliberate.search.self_consistency import SelfConsistency
from deliberate.search.self_refine import SelfRefine

__all__ = ["Compute", "Result", "Strategy", "Trace", "STRATEGIES", "get_strategy", "majority"]

STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (Greedy, SelfConsistency, BestOfN, Beam, MCTS, Reflection, BudgetForcing, SelfRefine, RStar)}
DESCRIPTIONS = {
    "greedy": "one chain of thought at temperature 0",
    "self-consistency": "n samples, majority vote over answers (Wang et al. 2022)",
    "best-of-n": "n samples, the one a reward scores highest, or reward-weighted majority",
    "beam": "step-level beam search scored by a step reward; DVTS with --subtrees",
    "mcts": "Monte Carlo Tree Search over steps or mini-steps, confidence reward (Marco-o1)",
    "reflection": "answer, then 'Wait! Maybe I made some mistakes!...' and answer again (Marco-o1)",
    "budget-forcing": "think at least / at most N tokens, appending 'Wait' (s1)",
    "self-refine": "answer, ask the model for feedback, rewrite, for r rounds (Madaan et al. 2023)",
    "rstar": "MCTS over rStar's actions the model knows, answer by mutual consistency (Qi et al. 2024)",
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
