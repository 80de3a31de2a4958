"""`best-of-n`: sample N chains of thought, keep the one a reward scores highest.

With `vote="weighted"` it is weighted majority voting instead: every answer collects the sum
of the scores of the paths that reach it (Li et al. 2023; search-and-learn's weighted
best-of-N). A reward that needs the answer key (`oracle`) is accepted for analysis only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.base import Generation
from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.grading.vote import vote_key
from deliberate.rewards import AGGREGATES, REWARDS, Path, path_value
from deliberate.search.base import Result, Strategy, Trace, sample, traces_of
from deliberate.search.self_consistency import SelfConsistencyConfig
from deliberate.search.tree import token_confidence
from deliberate.tasks.base import Problem, Task


@dataclass(frozen=True)
class BestOfNConfig(SelfConsistencyConfig):
    """Self-consistency's samples (n, temperature, top_p, max_tokens, shots), chosen by a reward."""

    reward: str = field(default="confidence", metadata={"help": f"the reward that scores paths: {', '.join(REWARDS)}"})
    aggregate: str = field(default="last", metadata={
        "help": f"how step scores make a path's score: {', '.join(AGGREGATES)}"})
    vote: str = field(default="best", metadata={
        "help": "best: the top-scored path; weighted: answers weighted by summed scores"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.aggregate not in AGGREGATES:
            raise BadInput(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}.")
        if self.vote not in ("best", "weighted"):
            raise BadInput(f"vote must be best or weighted, got {self.vote!r}.")


def paths_of(gen: Generation, traces: Sequence[Trace]) -> list[Path]:
    """Each completion as a one-step path, with the token confidences it was generated with."""
    return [Path([c.text], [[token_confidence(t) for t in c.logprobs or [] if t.top]], t.answer)
            for c, t in zip(gen.completions, traces, strict=True)]


def pick(traces: Sequence[Trace], vote: str) -> str | None:
    """The answer of the best-scored trace, or the answer with the largest summed score."""
    scored = [t for t in traces if t.answer is not None]
    if not scored:
        return None
    if vote == "best":
        return max(scored, key=lambda t: t.score).answer  # max keeps the first of equal scores
    totals: dict[str, float] = defaultdict(float)
    first: dict[str, str] = {}
    for t in scored:
        totals[vote_key(t.answer)] += t.score
        first.setdefault(vote_key(t.answer), t.answer)
    return first[max(totals, key=totals.get)]


class BestOfN(Strategy):
    name = "best-of-n"
    Config = BestOfNConfig
    samples = True

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        reward = self.reward(backend, task)
        gens = sample(problems, backend, task, n=c.n, temperature=c.temperature, top_p=c.top_p,
                      max_tokens=c.max_tokens, seed=seed, shots=c.shots, logprobs=reward.needs_logprobs or None)
        out = []
        for problem, gen in zip(problems, gens, strict=True):
            traces = traces_of(gen, task)
            for t, steps in zip(traces, reward(problem, paths_of(gen, traces)), strict=True):
                t.score = path_value(steps, c.aggregate)
            out.append(Result(pick(traces, c.vote), traces, info={"reward": reward.name}))
        return out
