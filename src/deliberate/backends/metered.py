"""Compute is counted once, here, below every strategy: `Meter` bills each request to its problem.

Strategies batch the requests of many problems into one backend call and say which problem
each request is for (`owners`); the meter adds what each request cost to that problem's
`Compute`: tokens generated, prompt tokens read (per sample, as an API bills them), of those
the ones served from a cache, requests, and verifier tokens and calls (a reward scoring
paths). Counts are exact per problem whatever the batching; a call's wall time, which cannot
be split exactly, is shared in proportion to the positions each request made the model
compute (prompt reads not served from a cache, plus tokens generated).

The hard token cap lives here too, so no strategy can step around it. Where a problem's
samples in a call could pass what it has left, they are drawn in order, one call per sample
(batched with the other problems'), each allowed all that is left; once the budget is spent
its further samples come back empty (finish_reason "length"), which every strategy treats as
an unfinished path. Why in order rather than sharing what is left evenly (as this did before):
an even share gives each of best-of-16's samples 1/16 of 16x greedy's tokens, so every sample
longer than greedy's mean is cut, and long problems lose all their samples (best-of-16 by
confidence on lab-en fell from 76.0% to 52.7% under the cap that way). In order, a problem
gets as many whole samples as its budget pays for, as a user sampling until a budget runs out
would. With `timeout_s`, a problem past its time fails at its next backend call.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, replace

from deliberate.backends.base import Backend, Completion, Generation, PromptInput, Scored
from deliberate.params import SamplingParams


@dataclass
class Compute:
    """What one problem spent: tokens generated, prompt tokens read (per sample, as an API
    bills them, even where the backend prefills a prompt once for its n samples), how many of
    those reads a cache served, backend requests (one prompt with its n samples; requests
    batched into one call count one each), wall seconds, and what a verifier read to score."""

    tokens_generated: int = 0
    tokens_read: int = 0
    tokens_cached: int = 0
    calls: int = 0
    wall_s: float = 0.0
    verifier_tokens: int = 0
    verifier_calls: int = 0

    def __iadd__(self, other: Compute) -> Compute:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)
        return self

    def to_dict(self) -> dict:
        return {**asdict(self), "wall_s": round(self.wall_s, 3)}


class ProblemTimeout(TimeoutError):
    """One problem ran past --problem-timeout: it becomes an error row, the run goes on."""


def _empty(prompt: PromptInput, p: SamplingParams, n: int | None = None) -> Generation:
    return Generation(prompt if isinstance(prompt, str) else "", 0,
                      [Completion("", 0, "length", [] if p.logprobs is not None else None)
                       for _ in range(p.n if n is None else n)])


def _joined(prompt: PromptInput, p: SamplingParams, got: list[Generation]) -> Generation:
    """A request's samples as one Generation: served in one piece or one sample at a time, and
    padded with empty samples ("length") where the cap refused the rest."""
    if not got:
        return _empty(prompt, p)
    if len(got) == 1 and len(got[0].completions) == p.n:
        return got[0]
    head = got[0]
    completions = [c for g in got for c in g.completions]
    completions += _empty(prompt, p, p.n - len(completions)).completions
    return Generation(head.prompt, head.prompt_tokens, completions, prompt_ids=head.prompt_ids,
                      cached_tokens=sum(g.cached_tokens for g in got))


class Meter:
    """Delegates to `inner`; bills every request to its owner (a problem id); caps and times out.

    Two hooks serve a server's requests batched together: `stopped(owner)` true starves that
    owner (its requests come back empty, as the cap refuses them, so its search ends at once
    while the rest of the batch goes on: a client that left, a request past its time), and
    `watch(owner, generation)` sees every generation as it comes (a stream of the search)."""

    def __init__(self, inner: Backend, cap: int | None = None, timeout_s: float | None = None,
                 stopped: Callable[[Hashable], bool] | None = None,
                 watch: Callable[[Hashable, Generation], None] | None = None) -> None:
        self.inner = inner
        self.cap = cap
        self.timeout_s = timeout_s
        self.stopped = stopped
        self.watch = watch
        self.starved: set[Hashable] = set()  # owners `stopped` refused at least one request
        self.spec = inner.spec
        self.capabilities = inner.capabilities
        self.prompt_style = inner.prompt_style
        self.usage: dict[Hashable, Compute] = {}
        self.capped: set[Hashable] = set()
        self.started = time.monotonic()

    def begin(self, owners: Sequence[Hashable]) -> None:
        """Start counting these problems afresh (a retried problem bills only its own run)."""
        self.started = time.monotonic()
        for o in owners:
            self.usage[o] = Compute()
            self.capped.discard(o)

    def usage_of(self, owner: Hashable) -> Compute:
        return self.usage.setdefault(owner, Compute())

    def __getattr__(self, name: str):  # tokenizer, weights_files, forward_positions, ... of the wrapped backend
        if name == "inner":  # not set yet (a copy being unpickled): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def encode_continuation(self, text: str) -> list[int]:
        return self.inner.encode_continuation(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.inner.decode(ids)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.inner.render_chat(messages)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def _check_time(self) -> None:
        """A problem past its time limit fails at its next backend call (calls are the only
        place a strategy can be stopped safely; one call's length is the overshoot)."""
        if self.timeout_s is not None and time.monotonic() - self.started > self.timeout_s:
            raise ProblemTimeout(f"the problem took more than {self.timeout_s:g} s")

    def generate(self, prompts: Sequence[PromptInput], params: SamplingParams | Sequence[SamplingParams],
                 owners: Sequence[Hashable] | None = None) -> list[Generation]:
        self._check_time()
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        owners = list(owners) if owners is not None else [None] * len(prompts)
        halted: set[Hashable] = set()
        if self.stopped is not None:
            halted = {o for o in owners if self.stopped(o)}
            self.starved |= halted
        tight = self._tight(plist, owners, halted)
        whole = [(i, p) for i, (p, o) in enumerate(zip(plist, owners, strict=True)) if o not in halted | tight]
        units: dict[Hashable, deque[tuple[int, int]]] = {}
        for i, (p, o) in enumerate(zip(plist, owners, strict=True)):
            if o in tight:
                units.setdefault(o, deque()).extend((i, j) for j in range(p.n))
        parts: list[list[Generation]] = [[] for _ in prompts]
        while True:  # one call, or, while the cap binds some problem, one call per sample of it
            wave = whole + self._next_units(units, plist)
            whole = []
            if not wave:
                break
            self._call(prompts, plist, owners, wave, parts)
        gens = [_joined(pr, p, got) for pr, p, got in zip(prompts, plist, parts, strict=True)]
        for o, got in zip(owners, parts, strict=True):
            if not got:  # refused whole: billed as the request it was, with nothing generated
                self.usage_of(o).calls += 1
                self.capped.add(o)
        return gens

    def _tight(self, plist: list[SamplingParams], owners: list[Hashable], halted: set[Hashable]) -> set[Hashable]:
        """The problems whose samples in this call could together pass what the cap leaves them."""
        if self.cap is None:
            return set()
        want: Counter = Counter()
        for p, o in zip(plist, owners, strict=True):
            want[o] += p.n * p.max_tokens
        return {o for o in want if o not in halted and want[o] > self.cap - self.usage_of(o).tokens_generated}

    def _next_units(self, units: dict[Hashable, deque[tuple[int, int]]],
                    plist: list[SamplingParams]) -> list[tuple[int, SamplingParams]]:
        """The next sample of each problem the cap binds, allowed all its problem has left (so
        samples are drawn in order and the first ones are never starved to share with the last);
        once nothing is left, its remaining samples are refused."""
        out = []
        for o, queue in units.items():
            if not queue:
                continue
            left = self.cap - self.usage_of(o).tokens_generated
            if left <= 0:
                queue.clear()
                self.capped.add(o)
                continue
            i, j = queue.popleft()
            p = plist[i]
            seed = None if p.seed is None else (p.seed * 1_000_003 + j) % 2**62  # sample j's own draw
            out.append((i, replace(p, n=1, seed=seed, max_tokens=min(p.max_tokens, left))))
        return out

    def _call(self, prompts: Sequence[PromptInput], plist: list[SamplingParams], owners: list[Hashable],
              wave: list[tuple[int, SamplingParams]], parts: list[list[Generation]]) -> None:
        """One backend call for `wave`'s requests, each billed to its owner."""
        t0 = time.perf_counter()
        done = self.inner.generate([prompts[i] for i, _ in wave], [q for _, q in wave])
        wall = time.perf_counter() - t0
        work = [g.prompt_tokens * len(g.completions) - g.cached_tokens + g.tokens_generated for g in done]
        total = sum(work) or 1
        for (i, q), g, w in zip(wave, done, work, strict=True):
            o, p = owners[i], plist[i]
            c = self.usage_of(o)
            c.tokens_generated += g.tokens_generated
            c.tokens_read += g.prompt_tokens * len(g.completions)
            c.tokens_cached += g.cached_tokens
            c.calls += 1
            c.wall_s += wall * w / total
            if q.max_tokens < p.max_tokens and any(
                    x.finish_reason == "length" and x.n_tokens >= q.max_tokens for x in g.completions):
                self.capped.add(o)  # the cap cut one of this problem's samples
            parts[i].append(g)
            if self.watch is not None:
                self.watch(o, g)

    def score(self, prompts: Sequence[str], continuations: Sequence[str],
              owners: Sequence[Hashable] | None = None) -> list[Scored]:
        """A verifier reading continuations: billed as verifier tokens and one verifier call per problem."""
        self._check_time()
        owners = list(owners) if owners is not None else [None] * len(prompts)
        t0 = time.perf_counter()
        scored = self.inner.score(prompts, continuations)
        wall = time.perf_counter() - t0
        work = [s.prompt_tokens + len(s.tokens) for s in scored]
        total = sum(work) or 1
        for o in dict.fromkeys(owners):
            self.usage_of(o).verifier_calls += 1
        for o, w in zip(owners, work, strict=True):
            self.bill_verifier(o, w, wall * w / total, calls=0)
        return scored

    def bill_verifier(self, owner: Hashable, tokens: int, wall_s: float, calls: int = 1) -> None:
        """A verifier of its own (a PRM's forward pass) reports what it read for a problem."""
        c = self.usage_of(owner)
        c.verifier_tokens += tokens
        c.verifier_calls += calls
        c.wall_s += wall_s


