"""`SamplingParams`: what to generate, validated once, in the shape of vLLM's."""

from __future__ import annotations

from dataclasses import dataclass

from deliberate.errors import BadInput


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings for one request; temperature 0 means greedy decoding.

    `seed` makes sampling reproducible per request: the j-th sample of a prompt draws from its
    own generator seeded by (seed, j), so the result does not depend on what else is batched.
    `logprobs=k` returns, for every generated token, its logprob and the top-k alternatives.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None

    def __post_init__(self) -> None:
        checks = [
            ("n", self.n >= 1, "must be >= 1"),
            ("temperature", self.temperature >= 0, "must be >= 0"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("top_k", self.top_k >= 0, "must be >= 0 (0 disables it)"),
            ("max_tokens", self.max_tokens >= 1, "must be >= 1"),
            ("logprobs", self.logprobs is None or 0 <= self.logprobs <= 20, "must be in [0, 20]"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise BadInput(f"{name} {rule}, got {getattr(self, name)!r}.")
        if isinstance(self.stop, str):  # a lone string is a common slip; accept it as one stop
            object.__setattr__(self, "stop", (self.stop,))
        if any(not s for s in self.stop):
            raise BadInput("stop strings must be non-empty.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0
