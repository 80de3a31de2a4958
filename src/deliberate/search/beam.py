"""`beam`: step-level beam search scored by a step reward, and DVTS.

Every round, each live beam is expanded into `expand` children (one batched call for all the
beams of all the problems), each child's partial path is scored by the reward (the confidence
reward scores a partial path by the mean confidence of its tokens so far), and the best
`width` children are kept. A child that finishes its answer leaves the beam and joins the
finished paths; the search stops when no beam is live or the token budget is spent (as in
search-and-learn). The answer is the best-scored finished path (or, with `vote="weighted"`, the
answer with the largest summed score).

Why not stop once `width` paths have finished: it did, and on the lab model the first paths
to finish are the ones that skipped a step, so the longer right chains were cut before their
end (beam 2x2 at T=0.5 on 300 lab-en problems: 49.3% stopping early, 67.7% running on).

With `subtrees=S > 1` it is diverse verifier tree search (DVTS, Beeching et al. 2024): the
first round's children are split into S groups, each group is its own beam search with width
`width // S`, and the groups never compete, which keeps the paths diverse.

Deviation from search-and-learn: there each DVTS subtree keeps one beam and is scored by a
trained PRM; here a subtree keeps `width // S` beams (one when width == S, which is theirs) and
any reward scores it, the confidence reward by default, since a trained PRM is a later piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.prompting import build_prompt
from deliberate.rewards import AGGREGATES, REWARDS, Path, path_value
from deliberate.search.base import Result, Strategy, Trace, problem_seed
from deliberate.search.best_of_n import pick
from deliberate.search.tree import Action, Node, Tree, expand
from deliberate.tasks.base import Problem, Task


@dataclass(frozen=True)
class BeamConfig:
    width: int = field(default=4, metadata={"help": "beams kept per round"})
    expand: int = field(default=4, metadata={"help": "children per beam per round"})
    subtrees: int = field(default=1, metadata={
        "help": "independent subtrees; > 1: DVTS with this many (width must be a multiple)"})
    action: str = field(default="step", metadata={"help": "step, or mini-step:N (N tokens, e.g. mini-step:32)"})
    reward: str = field(default="confidence", metadata={"help": f"the reward that scores paths: {', '.join(REWARDS)}"})
    aggregate: str = field(default="last", metadata={
        "help": f"how step scores make a path's score: {', '.join(AGGREGATES)}"})
    vote: str = field(default="best", metadata={
        "help": "best: the top-scored path; weighted: answers weighted by summed scores"})
    temperature: float = field(default=1.0, metadata={"help": "temperature of expansions (> 0)"})
    max_tokens: int | None = field(default=None, metadata={
        "help": "generated tokens per chain of thought: a sample, path or attempt (default: the task's)"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})

    def __post_init__(self) -> None:
        for name in ("width", "expand", "subtrees"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.width % self.subtrees:
            raise BadInput(f"width must be a multiple of subtrees, got width={self.width}, subtrees={self.subtrees}.")
        Action.parse(self.action)
        if self.aggregate not in AGGREGATES:
            raise BadInput(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}.")
        if self.vote not in ("best", "weighted"):
            raise BadInput(f"vote must be best or weighted, got {self.vote!r}.")
        if self.temperature <= 0:
            raise BadInput(f"temperature must be > 0, got {self.temperature}.")


@dataclass
class _Beam:
    node: Node
    group: int
    score: float = 0.0


class Beam(Strategy):
    name = "beam"
    Config = BeamConfig

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        reward = self.reward(backend, task)
        action = Action.parse(c.action, task.step_delimiter)
        cap = c.max_tokens or task.max_tokens
        prompts = [build_prompt(task, p, backend, c.shots) for p in problems]
        trees = [Tree(pr.text, p.question, str(action), prompt_ids=backend.encode(pr.text))
                 for p, pr in zip(problems, prompts, strict=True)]
        live = [[_Beam(t.root, 0)] for t in trees]
        done: list[list[_Beam]] = [[] for _ in problems]
        per_group = c.width // c.subtrees
        for rnd in range(cap):  # a round generates at least one token per path: never more rounds than tokens
            requests, owners = [], []
            for i, beams in enumerate(live):
                base = problem_seed(seed, problems[i]) * 1009 + rnd * 31  # independent of the batch
                for j, b in enumerate(beams):
                    k = c.width * c.expand if b.node is trees[i].root else c.expand
                    requests.append((trees[i], b.node, k, base + j, cap - trees[i].tokens(b.node), problems[i].id))
                    owners.append((i, b.group))
            if not requests:
                break
            kids = expand(backend, requests, action, temperature=c.temperature,
                          answer_stops=prompts[0].stop, extract=task.extract, dedupe=True)
            cands: list[list[_Beam]] = [[] for _ in problems]
            for (i, group), new in zip(owners, kids, strict=True):
                for j, ch in enumerate(new):
                    if not ch.terminal and trees[i].tokens(ch) >= cap:
                        ch.terminal, ch.answer = True, task.extract(trees[i].text(ch))[0]
                    g = j % c.subtrees if ch.parent == 0 else group  # DVTS: the first round deals out groups
                    cands[i].append(_Beam(ch, g))
            for i, cs in enumerate(cands):
                self._score(reward, problems[i], trees[i], cs, c.aggregate)
                done[i] += [b for b in cs if b.node.terminal]
                live[i] = []
                for g in range(c.subtrees):
                    mine = sorted((b for b in cs if b.group == g and not b.node.terminal), key=lambda b: -b.score)
                    live[i] += mine[:per_group]
        return [self._result(trees[i], done[i] or live[i], reward.name, task) for i in range(len(problems))]

    @staticmethod
    def _score(reward, problem: Problem, tree: Tree, beams: list[_Beam], aggregate: str) -> None:
        paths = []
        for b in beams:
            nodes = tree.path(b.node)
            paths.append(Path([n.text for n in nodes], [n.confidences for n in nodes], b.node.answer))
        for b, scores in zip(beams, reward(problem, paths), strict=True):
            b.score = path_value(scores, aggregate)
            b.node.reward = scores[-1] if scores else None

    def _result(self, tree: Tree, beams: list[_Beam], reward: str, task: Task) -> Result:
        traces = []
        for b in beams:
            text = tree.text(b.node)
            answer, rule = task.extract(text)
            traces.append(Trace(text, answer, rule, tree.tokens(b.node), "stop" if b.node.terminal else "length",
                                b.score))
        answer = pick(traces, self.config.vote)
        data = tree.to_json()
        mine = [(t.score if t.score is not None else float("-inf"), b.node.id)
                for t, b in zip(traces, beams, strict=True) if t.answer == answer]
        if mine:  # the best-scored beam that reached the answer
            data["chosen"] = {"node": max(mine)[1], "answer": answer, "value": max(mine)[0], "rollout": ""}
        return Result(answer, traces, info={"reward": reward, "nodes": len(tree.nodes), "tree": data})
