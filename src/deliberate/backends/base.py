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


# A prompt is a text (the backend tokenizes it) or token ids (read as given: tree search extends
# a path by appending the ids it generated, so nothing is re-tokenized).
PromptInput = str | Sequence[int]


@dataclass
class Completion:
    """One sample. `finish_reason` is "stop" (EOS or a stop string) or "length".

    `token_ids` are the ids generated, the one that completed a stop string included (as vLLM
    returns them) and a final EOS left out; `n_tokens` counts every token generated, EOS too."""

    text: str
    n_tokens: int
    finish_reason: str
    logprobs: list[TokenLogprob] | None = None
    stop: str | None = None  # the stop string that ended it, if any (not included in text)
    token_ids: list[int] = field(default_factory=list)


@dataclass
class Generation:
    """All samples for one prompt: the prompt's length in tokens, its ids, and how many of the
    `prompt_tokens x n` prompt reads were served from a cache (the prefix cache, or one prefill
    shared by the n samples) rather than computed."""

    prompt: str
    prompt_tokens: int
    completions: list[Completion]
    prompt_ids: list[int] = field(default_factory=list)
    cached_tokens: int = 0

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
    prefix_cache: bool = False  # reuses the key/values of shared prefixes across calls
    chat_template: bool = False
    context_length: int = 2048
    think_format: bool = False  # thinks inside <think>…</think> (budget forcing needs it)


@runtime_checkable
class Backend(Protocol):
    spec: str
    capabilities: Capabilities
    prompt_style: str  # the model's prompt format, declared by the model: "lab", "chat" or "completion"

    def generate(self, prompts: Sequence[PromptInput],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]: ...

    def encode(self, text: str) -> list[int]: ...  # as generate reads a text prompt

    def encode_continuation(self, text: str) -> list[int]: ...  # text appended to a sequence (no BOS)

    def decode(self, ids: Sequence[int]) -> str: ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]: ...

    def render_chat(self, messages: list[dict[str, str]]) -> str: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def transcript(messages: list[dict[str, str]]) -> str:
    """A conversation as plain "Role: text" lines, ending where the assistant's answer begins: the
    prompt of a model (or server) without a chat template."""
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"
