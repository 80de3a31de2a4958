"""The reasoning tree every search strategy shares, and the batched expansion that grows it.

A node is a reasoning state: the prompt plus the actions on the path to it. An action is one
model output: a whole **step** (text up to the task's step delimiter) or a **mini-step** of a
fixed number of tokens (Marco-o1 uses 32 and 64). A node holds its step as text and as the
token ids the model generated: a path is extended by appending ids, never by re-tokenizing
its text, so the backend's prefix cache finds every shared prefix. Nodes keep visit counts, the sum of the
values backed up through them, the reward of their own step, the model's probability of the
step (a prior for PUCT), the token confidences the expansion computed (so the confidence reward
never recomputes them) and what the expansion cost.

JSON schema of `Tree.to_json()` (version 1), read by the tree viewer:
    {"version": 1, "prompt": str, "question": str, "action": "step" | "mini-step:N",
     "nodes": [{"id": int, "parent": int | null, "text": str, "depth": int, "prior": float,
                "reward": float | null, "visits": int, "value_sum": float, "tokens": int,
                "terminal": bool, "answer": str | null, "confidences": [float], "children": [int],
                "kind": str}]}
A search adds `"chosen": {"node": int, "answer": str | null, "value": float, "rollout": str}`:
the node its answer came from (and, for mcts, the rollout text that finished it from there).
Node 0 is the root (empty text). A path's text is the concatenation of its nodes' texts. The
token ids (`Node.ids`, `Tree.prompt_ids`) are not written: they belong to one tokenizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from deliberate.backends.base import Backend, Completion, Generation, TokenLogprob
from deliberate.errors import BadInput
from deliberate.params import SamplingParams

TOP_K = 5  # Marco-o1's confidence normalizes over the top-5 candidate tokens


def token_confidence(t: TokenLogprob, k: int = TOP_K) -> float:
    """Marco-o1: c_i = exp(log p(t_i)) / sum_{j=1..k} exp(log p(t_j)) over the top-k candidates.

    >>> round(token_confidence(TokenLogprob("a", math.log(0.5), [("a", math.log(0.5)), ("b", math.log(0.3))])), 4)
    0.625
    """
    if not t.top:
        raise BadInput("the confidence reward needs top-k logprobs; this backend returned none.")
    denom = sum(math.exp(lp) for _, lp in t.top[:k])
    return math.exp(t.logprob) / denom if denom > 0 else 0.0


@dataclass(frozen=True)
class Action:
    """How big one action is: a step up to `delimiter`, or `tokens` tokens (a mini-step)."""

    kind: str = "step"
    tokens: int = 0
    delimiter: str = "\n"

    @classmethod
    def parse(cls, spec: str, delimiter: str = "\n") -> Action:
        """`step` or `mini-step:N`."""
        if spec == "step":
            return cls("step", 0, delimiter)
        if spec.startswith("mini-step:") and spec.removeprefix("mini-step:").isdigit():
            n = int(spec.removeprefix("mini-step:"))
            if n < 1:
                raise BadInput(f"a mini-step needs at least 1 token, got {spec!r}.")
            return cls("mini-step", n, delimiter)
        raise BadInput(f"unknown action {spec!r}; use step or mini-step:N (e.g. mini-step:32).")

    def __str__(self) -> str:
        return "step" if self.kind == "step" else f"mini-step:{self.tokens}"


@dataclass
class Node:
    id: int
    parent: int | None
    text: str
    depth: int
    prior: float = 1.0
    reward: float | None = None
    visits: int = 0
    value_sum: float = 0.0
    tokens: int = 0
    terminal: bool = False
    answer: str | None = None
    confidences: list[float] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    kind: str = ""  # the action type that wrote it (rstar has several; "" for plain steps)
    ids: list[int] = field(default_factory=list)  # the step's token ids, as generated

    @property
    def value(self) -> float:
        """Mean backed-up value (0 before the first visit)."""
        return self.value_sum / self.visits if self.visits else 0.0


@dataclass
class Tree:
    prompt: str
    question: str = ""
    action: str = "step"
    nodes: list[Node] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(Node(0, None, "", 0))

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add(self, parent: Node, text: str, **kw) -> Node:
        node = Node(len(self.nodes), parent.id, text, parent.depth + 1, **kw)
        self.nodes.append(node)
        parent.children.append(node.id)
        return node

    def children(self, node: Node) -> list[Node]:
        return [self.nodes[i] for i in node.children]

    def path(self, node: Node) -> list[Node]:
        """Root (excluded) to node (included)."""
        out = []
        while node.parent is not None:
            out.append(node)
            node = self.nodes[node.parent]
        return out[::-1]

    def text(self, node: Node) -> str:
        return "".join(n.text for n in self.path(node))

    def ids(self, node: Node) -> list[int]:
        """The prompt's ids and the path's, to node: what the model reads to extend it."""
        return [*self.prompt_ids, *(t for n in self.path(node) for t in n.ids)]

    def tokens(self, node: Node) -> int:
        """Tokens generated on the path to node (what the path has used of its budget)."""
        return sum(n.tokens for n in self.path(node))

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if not n.children and n.parent is not None]

    def to_json(self) -> dict:
        return {"version": 1, "prompt": self.prompt, "question": self.question, "action": self.action,
                "nodes": [{k: v for k, v in asdict(n).items() if k != "ids"} for n in self.nodes]}

    @classmethod
    def from_json(cls, data: dict | str) -> Tree:
        d = json.loads(data) if isinstance(data, str) else data
        if d.get("version") != 1:
            raise BadInput(f"unsupported tree version {d.get('version')!r}; this deliberate reads version 1.")
        return cls(d["prompt"], d.get("question", ""), d.get("action", "step"), [Node(**n) for n in d["nodes"]])


def step_text(c: Completion, action: Action) -> str:
    """A step's text as it joins the path: the delimiter that ended it is put back."""
    return c.text + (c.stop if action.kind == "step" and c.stop == action.delimiter else "")


def is_terminal(c: Completion, action: Action, answer_stops: Sequence[str]) -> bool:
    """The path is finished when the model ended it (EOS or an answer-ending stop string)."""
    if c.finish_reason != "stop":
        return False
    return c.stop is None or c.stop in answer_stops


def kept_ids(backend: Backend, c: Completion) -> list[int]:
    """A completion's ids as a sequence continues after it: the ids generated, or, when a stop
    string ended it (the text leaves the stop out, the ids hold it), the kept text's ids."""
    return list(c.token_ids) if c.stop is None else backend.encode_continuation(c.text)


def expansion(tree: Tree, node: Node, k: int, seed: int, cap: int, action: Action, *, temperature: float,
              answer_stops: Sequence[str] = (), head: Sequence[int] = ()) -> tuple[list[int], SamplingParams]:
    """The request that samples k children of node: the path's ids (plus `head`, the ids of an
    action's prefix) and the sampling; a step stops at the delimiter or the cap, a mini-step at
    `action.tokens` or the cap."""
    stops = (action.delimiter, *answer_stops) if action.kind == "step" else tuple(answer_stops)
    return tree.ids(node) + list(head), SamplingParams(
        n=k, temperature=temperature, stop=stops, seed=seed, logprobs=TOP_K,
        max_tokens=max(1, min(cap, action.tokens) if action.kind == "mini-step" else cap))


def add_children(tree: Tree, node: Node, gen: Generation, action: Action, *, answer_stops: Sequence[str] = (),
                 extract=None, dedupe: bool = True, prefix: str = "", head: Sequence[int] = (),
                 kind: str = "") -> list[Node]:
    """The children a generation gives node; children with the same text are merged unless
    `dedupe` is off. `prefix` (text) and `head` (its ids) are written before each child's
    generated text (rstar's action templates); `kind` labels the children."""
    kids: list[Node] = []
    seen: dict[str, Node] = {}
    for c in gen.completions:
        text = prefix + step_text(c, action)
        if dedupe and text in seen:
            continue
        lps = c.logprobs or []
        terminal = is_terminal(c, action, answer_stops) or not text
        answer = extract(tree.text(node) + text)[0] if extract and terminal else None
        # prior: the step's per-token probability (geometric mean), so long steps are not penalized
        child = tree.add(node, text, prior=math.exp(sum(t.logprob for t in lps) / len(lps)) if lps else 1.0,
                         tokens=c.n_tokens, terminal=terminal, answer=answer, kind=kind,
                         confidences=[token_confidence(t) for t in lps if t.top], ids=[*head, *c.token_ids])
        seen[text] = child
        kids.append(child)
    return kids


def expand(backend: Backend, requests: Sequence[tuple[Tree, Node, int, int, int, str]], action: Action, *,
           temperature: float, answer_stops: Sequence[str] = (), extract=None,
           dedupe: bool = True, prefix: str = "", kind: str = "") -> list[list[Node]]:
    """Expand many nodes (of one or many trees) in one batched backend call.

    `requests` holds (tree, node, k children, seed, token cap, owner): see `expansion` and
    `add_children`. Returns the new children of each request; the meter bills each request to
    its owner.
    """
    if not requests:
        return []
    head = backend.encode_continuation(prefix) if prefix else []
    asks = [expansion(tree, node, k, seed, cap, action, temperature=temperature, answer_stops=answer_stops, head=head)
            for tree, node, k, seed, cap, _ in requests]
    gens = backend.generate([a[0] for a in asks], [a[1] for a in asks], owners=[r[5] for r in requests])
    return [add_children(tree, node, gen, action, answer_stops=answer_stops, extract=extract, dedupe=dedupe,
                         prefix=prefix, head=head, kind=kind)
            for (tree, node, *_), gen in zip(requests, gens, strict=True)]
