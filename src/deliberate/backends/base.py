"""What every backend returns and declares. Strategies see only these types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from deliberate.params import SamplingParams


@dataclass
class TokenLogprob:
    """One generated token: its logprob and the top-k alternatives (token, logprob), best first."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Completion:
    """One sample. `finish_reason` is "stop" (EOS or a stop string) or "length"."""

    text: str
    n_tokens: int
    finish_reason: str
    logprobs: list[TokenLogprob] | None = None
    stop: str | None = None  # the stop string that ended it, if any (not included in text)


@dataclass
class Generation:
    """All samples for one prompt, with the prompt's length in tokens."""

    prompt: str
    prompt_tokens: int
    completions: list[Completion]

    @property
    def tokens_generated(self) -> int:
        return sum(c.n_tokens for c in self.completions)


@dataclass
class Scored:
    """Logprob of each token of a given continuation under the model."""

    tokens: list[str]
    logprobs: list[float]
    prompt_tokens: int

    @property
    def total(self) -> float:
        return sum(self.logprobs)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; strategies and rewards check these before generating."""

    max_logprobs: int = 0
    scoring: bool = False
    n_per_call: bool = True
    seed: bool = True
    prefix_cache: bool = False
    chat_template: bool = False
    context_length: int = 2048
    think_format: bool = False  # thinks inside <think>…</think> (budget forcing needs it)


@runtime_checkable
class Backend(Protocol):
    spec: str
    capabilities: Capabilities
    prompt_style: str  # "lab" (our lab model's raw format), "chat" or "completion"

    def generate(self, prompts: Sequence[str],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]: ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]: ...

    def render_chat(self, messages: list[dict[str, str]]) -> str: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...
