"""A backend wrapper that meters one problem's compute and enforces a hard token cap.

Search methods cost 3-20x the tokens of chain of thought, and a cap is only honest if no
strategy can step around it. So the cap lives here, below every strategy, not in each of
them: each call's `max_tokens` is clamped so that the tokens still allowed are shared among
the samples it asks for, and once the budget is spent every further sample comes back empty
(finish_reason "length"), which every strategy already treats as an unfinished path. The
eval runner gives each problem its own meter (problems then run one at a time). Scoring calls
(a verifier such as self-eval reading a continuation) are counted as verifier compute. With
`timeout_s`, a problem past its time fails at its next backend call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from deliberate.backends.base import Backend, Completion, Generation, Scored
from deliberate.params import SamplingParams


class ProblemTimeout(TimeoutError):
    """One problem ran past --problem-timeout: it becomes an error row, the run goes on."""


class MeteredBackend:
    """Delegates to `inner`; counts tokens generated and scored; stops at `cap` generated tokens."""

    def __init__(self, inner: Backend, cap: int | None = None, timeout_s: float | None = None) -> None:
        self.inner = inner
        self.cap = cap
        self.timeout_s = timeout_s
        self.spec = inner.spec
        self.capabilities = inner.capabilities
        self.prompt_style = inner.prompt_style
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()
        self.generated = 0
        self.verifier_tokens = 0
        self.verifier_calls = 0
        self.capped = False

    def __getattr__(self, name: str):  # tokenizer, weights_files, ... of the wrapped backend
        return getattr(self.inner, name)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.inner.render_chat(messages)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def _check_time(self) -> None:
        """A problem past its time limit fails at its next backend call (calls are the only
        place a strategy can be stopped safely; one call's length is the overshoot)."""
        if self.timeout_s is not None and time.monotonic() - self.started > self.timeout_s:
            raise ProblemTimeout(f"the problem took more than {self.timeout_s:g} s")

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]:
        self._check_time()
        scored = self.inner.score(prompts, continuations)
        self.verifier_calls += 1
        self.verifier_tokens += sum(s.prompt_tokens + len(s.tokens) for s in scored)
        return scored

    def generate(self, prompts: Sequence[str],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        self._check_time()
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if self.cap is None:
            gens = self.inner.generate(prompts, plist)
            self.generated += sum(g.tokens_generated for g in gens)
            return gens
        left = self.cap - self.generated
        samples = sum(p.n for p in plist)
        if left <= 0 or samples == 0:
            self.capped = self.capped or samples > 0
            return [Generation(pr, 0, [Completion("", 0, "length", [] if p.logprobs is not None else None)] * p.n)
                    for pr, p in zip(prompts, plist, strict=True)]
        each = max(1, left // samples)  # may exceed `left` by < samples tokens when left < samples
        clamped = [replace(p, max_tokens=min(p.max_tokens, each)) for p in plist]
        gens = self.inner.generate(prompts, clamped)
        self.generated += sum(g.tokens_generated for g in gens)
        for g, c, p in zip(gens, clamped, plist, strict=True):  # did the cap cut a sample short?
            self.capped = self.capped or (c.max_tokens < p.max_tokens and any(
                x.finish_reason == "length" and x.n_tokens >= c.max_tokens for x in g.completions))
        return gens
