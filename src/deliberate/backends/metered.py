"""Compute is counted once, here, below every strategy: `Meter` bills each request to its problem.

Strategies batch the requests of many problems into one backend call and say which problem
each request is for (`owners`); the meter adds what each request cost to that problem's
`Compute`: tokens generated, prompt tokens read (per sample, as an API bills them), of those
the ones served from a cache, requests, and verifier tokens and calls (a reward scoring
paths). Counts are exact per problem whatever the batching; a call's wall time, which cannot
be split exactly, is shared in proportion to the positions each request made the model
compute (prompt reads not served from a cache, plus tokens generated).

The hard token cap lives here too, so no strategy can step around it: each request's
`max_tokens` is clamped so that what its problem may still generate is shared among the
samples the problem asks for in the call; once a problem's budget is spent its further
samples come back empty (finish_reason "length"), which every strategy treats as an
unfinished path. With `timeout_s`, a problem past its time fails at its next backend call.
"""

from __future__ import annotations

import time
from collections import Counter
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


def _empty(prompt: PromptInput, p: SamplingParams) -> Generation:
    return Generation(prompt if isinstance(prompt, str) else "", 0,
                      [Completion("", 0, "length", [] if p.logprobs is not None else None) for _ in range(p.n)])


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
        clamped: list[SamplingParams | None] = list(plist) if self.cap is None else self._clamp(plist, owners)
        if self.stopped is not None:
            halted = {o for o in owners if self.stopped(o)}
            self.starved |= halted
            clamped = [None if o in halted else q for q, o in zip(clamped, owners, strict=True)]
        run = [i for i, p in enumerate(clamped) if p is not None]
        t0 = time.perf_counter()
        done = self.inner.generate([prompts[i] for i in run], [clamped[i] for i in run]) if run else []
        wall = time.perf_counter() - t0
        served = iter(done)  # the requests the cap refused come back empty
        gens = [next(served) if q is not None else _empty(pr, p)
                for pr, p, q in zip(prompts, plist, clamped, strict=True)]
        work = [g.prompt_tokens * len(g.completions) - g.cached_tokens + g.tokens_generated for g in gens]
        total = sum(work) or 1
        for i, (g, o) in enumerate(zip(gens, owners, strict=True)):
            c = self.usage_of(o)
            c.tokens_generated += g.tokens_generated
            c.tokens_read += g.prompt_tokens * len(g.completions)
            c.tokens_cached += g.cached_tokens
            c.calls += 1
            c.wall_s += wall * work[i] / total
            p, q = plist[i], clamped[i]
            if q is None or (q.max_tokens < p.max_tokens and any(
                    x.finish_reason == "length" and x.n_tokens >= q.max_tokens for x in g.completions)):
                self.capped.add(o)  # the cap cut (or refused) one of this problem's samples
        if self.watch is not None:
            for g, o, q in zip(gens, owners, clamped, strict=True):
                if q is not None:
                    self.watch(o, g)
        return gens

    def _clamp(self, plist: list[SamplingParams], owners: list[Hashable]) -> list[SamplingParams | None]:
        """Each request's max_tokens, so that its problem's samples share what the cap leaves."""
        want = Counter()
        for p, o in zip(plist, owners, strict=True):
            want[o] += p.n
        out: list[SamplingParams | None] = []
        for p, o in zip(plist, owners, strict=True):
            left = self.cap - self.usage_of(o).tokens_generated
            each = max(1, left // want[o])  # may exceed `left` by < samples tokens when left < samples
            out.append(None if left <= 0 else replace(p, max_tokens=min(p.max_tokens, each)))
        return out

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


