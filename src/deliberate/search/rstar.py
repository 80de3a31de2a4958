"""`rstar`: MCTS over rStar's action set, with mutual consistency choosing the answer (Qi et al. 2024).

Actions (each expansion samples `children` of every action allowed at the node):
- A1 `step`: propose one next step.
- A2 `rest`: propose all the remaining steps, to the answer (a finished child).
- A3 `subquestion`: pose the next sub-question and answer it, written after "Sub-question:".
- A4 `reanswer`: under a sub-question node, answer it again, after "Answer again:".
- A5 `rephrase`: at the root only, restate the problem's conditions, after "Rephrased:".
A rollout's value is rStar's self-consistency reward: the share of all answers reached so far
in this problem's search that equal this rollout's answer. Mutual consistency: each distinct
finished path is cut after a random share (20-80%) of its steps and completed greedily by a
discriminator (the same model unless another backend is given); a path whose completion reaches
the same answer is consistent. The answer is the consistent path with the highest value (the
highest-valued path when none is consistent).

By default the actions are those the model's prompt format says it can carry out
(`deliberate.prompting.FORMATS`): the lab model was never taught sub-questions or rephrasing,
so on it the default is A1 and A2; other models get all five. `actions=` overrides.
Deviation from the paper: A4 re-answers by free generation instead of few-shot CoT prompting,
and the discriminator is the same model by default rather than a second SLM.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from deliberate.backends.base import Backend, Generation
from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.grading.vote import vote_key
from deliberate.params import SamplingParams
from deliberate.prompting import RSTAR_ACTIONS, format_of
from deliberate.search.base import Result
from deliberate.search.driver import Request
from deliberate.search.mcts import MCTS, MCTSConfig, Rollout, _Search
from deliberate.search.tree import Action, Node, add_children, expansion
from deliberate.tasks.base import Problem, Task

# what each action writes before the model's text (step, rest, subquestion, reanswer, rephrase)
PREFIXES = dict(zip(RSTAR_ACTIONS, ("", "", "Sub-question:", "Answer again:", "Rephrased:"), strict=True))


@dataclass(frozen=True)
class RStarConfig(MCTSConfig):
    actions: str | None = field(default=None, metadata={
        "help": f"comma-separated, from {', '.join(PREFIXES)} (default: those the model's format knows)"})
    children: int = field(default=2, metadata=MCTSConfig.__dataclass_fields__["children"].metadata)
    reward: str = field(default="consistency", metadata=MCTSConfig.__dataclass_fields__["reward"].metadata)
    discriminate: bool = field(default=True, metadata={
        "help": "answer by mutual consistency (off: the highest-valued path)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.actions is not None:
            unknown = [a for a in self.action_list if a not in PREFIXES]
            if unknown or not self.action_list:
                raise BadInput(f"rstar actions must be among {', '.join(PREFIXES)}, got {self.actions!r}.")

    @property
    def action_list(self) -> list[str]:
        return [a.strip() for a in (self.actions or "").split(",") if a.strip()]


def allowed(kind: str, node: Node) -> bool:
    if kind == "rephrase":
        return node.parent is None
    if kind == "reanswer":
        return node.kind == "subquestion"
    return True


class RStar(MCTS):
    name = "rstar"
    Config = RStarConfig

    def __init__(self, config: RStarConfig | None = None, discriminator: Backend | None = None, **options) -> None:
        super().__init__(config, **options)
        self.discriminator = discriminator  # the model that checks mutual consistency (default: the same)

    def actions_for(self, backend: Backend) -> list[str]:
        """The configured actions, else those the model's prompt format declares it knows."""
        return self.config.action_list or list(format_of(backend).rstar_actions)

    def _expand(self, backend: Meter, task: Task, s: _Search, leaf: Node, it: int, action: Action,
                max_tokens: int) -> Generator[list[Request], list[Generation], Node]:
        """Sample `children` of every action allowed at the leaf, all in one go; simulate from the
        first child of the first action that gave any."""
        if leaf.terminal:
            return leaf
        kinds = [(a, kind) for a, kind in enumerate(self.actions_for(backend)) if allowed(kind, leaf)]
        heads = {kind: backend.encode_continuation(PREFIXES[kind]) if PREFIXES[kind] else [] for _, kind in kinds}
        acts = {kind: Action("rest") if kind == "rest" else action for _, kind in kinds}
        gens = yield [expansion(s.tree, leaf, self.config.children, s.seed * 7919 + it * 31 + a,
                                max_tokens - s.tree.tokens(leaf), acts[kind], temperature=self.config.temperature,
                                answer_stops=s.answer_stops, head=heads[kind]) for a, kind in kinds]
        first = None
        for (_, kind), gen in zip(kinds, gens, strict=True):
            kids = add_children(s.tree, leaf, gen, acts[kind], answer_stops=s.answer_stops, extract=task.extract,
                                prefix=PREFIXES[kind], head=heads[kind], kind=kind)
            self._close_spent(s, kids, max_tokens, task)
            first = first or (kids[0] if kids else None)
        return first or leaf

    def _value(self, s: _Search, answer: str | None, scores: list[float]) -> float:
        """rStar's reward: how often this answer was reached so far (this rollout included)."""
        if answer is None:
            return 0.0
        keys = [vote_key(r.answer) for r in s.rollouts if r.answer is not None] + [vote_key(answer)]
        return Counter(keys)[vote_key(answer)] / len(keys)

    def best(self, s: _Search) -> Rollout | None:
        done = [r for r in s.rollouts if r.answer is not None]
        if not done:
            return None
        ok = [r for r in done if r.node in s.info.get("consistent", ())] if self.config.discriminate else done
        return max(ok or done, key=lambda r: r.value)

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        searches = self._search(problems, backend, task, seed)
        if self.config.discriminate:  # one more batched call: the discriminator completes cut paths
            judge = backend if self.discriminator is None else Meter(self.discriminator)
            self._discriminate(searches, judge, task, backend)
        return [self._result(s, "consistency", backend) for s in searches]

    def _discriminate(self, searches: list[_Search], judge: Meter, task: Task, meter: Meter) -> None:
        """Mutual consistency: complete a cut-off prefix of each distinct finished path greedily.
        The discriminator may be another model, so it reads the cut path as text; what a second
        model spends is billed to the problem like the generator's own calls."""
        asks: list[str] = []
        owners: list[tuple[_Search, Rollout, str]] = []  # the search, the path, the prefix shown
        for s in searches:
            rng = random.Random(s.seed)
            seen = set()
            for r in s.rollouts:
                if r.answer is None or r.text in seen:
                    continue
                seen.add(r.text)
                steps = r.text.split(task.step_delimiter)
                cut = max(1, int(len(steps) * rng.uniform(0.2, 0.8)))
                shown = task.step_delimiter.join(steps[:cut]) + task.step_delimiter
                asks.append(s.tree.prompt + shown)
                owners.append((s, r, shown))
        if not asks:
            return
        gens = judge.generate(asks, SamplingParams(temperature=0.0, max_tokens=task.max_tokens),
                              owners=[s.owner for s, _, _ in owners])
        if judge is not meter:
            for owner in {s.owner for s, _, _ in owners}:
                spent = meter.usage_of(owner)
                spent += judge.usage_of(owner)
        for (s, r, shown), g in zip(owners, gens, strict=True):
            agrees = task.extract(shown + g.completions[0].text)[0]
            if agrees is not None and vote_key(agrees) == vote_key(r.answer):
                s.info.setdefault("consistent", set()).add(r.node)

    def _result(self, s: _Search, reward: str, backend: Backend | None = None) -> Result:
        res = super()._result(s, reward)
        res.info["consistent_paths"] = len(s.info.get("consistent", ()))
        if backend is not None:
            res.info["action_set"] = self.actions_for(backend)
        res.info["actions"] = dict(Counter(n.kind for n in s.tree.nodes[1:]))
        return res

