"""Text <-> tokens for a backend holding a Hugging Face tokenizer (the transformers and vllm:
backends): one set of rules, so both engines read a prompt as the same ids."""

from __future__ import annotations

from collections.abc import Sequence

from deliberate.backends.base import Capabilities, transcript
from deliberate.errors import ProblemTooLong


def render_chat(tokenizer, messages: list[dict[str, str]]) -> str:
    """The prompt text for a conversation, ending where the assistant's answer begins (a plain
    "Role: text" transcript for a tokenizer without a chat template)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return transcript(messages)


class HFTokens:
    """Mixed into a backend with `tokenizer`, `capabilities` and `spec`."""

    tokenizer: object
    capabilities: Capabilities
    spec: str

    def encode(self, text: str) -> list[int]:
        """Token ids as `generate` reads a text prompt (with the model's BOS unless the text has it)."""
        bos = self.tokenizer.bos_token
        special = not (bos and text.startswith(bos))  # a rendered chat template already has it
        return self.tokenizer(text, add_special_tokens=special).input_ids

    def encode_continuation(self, text: str) -> list[int]:
        """Ids of a text appended to a sequence (no BOS): a method's own words, e.g. a reflection phrase."""
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Prompt lengths in tokens, as `generate` would encode them (strategies fit contexts with it)."""
        return [len(self.encode(t)) for t in texts]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)

    def _piece(self, tok: int) -> str:
        """One token's text, decoded once per id (logprob entries name tokens by it)."""
        pieces = self.__dict__.setdefault("_pieces", {})
        if (s := pieces.get(tok)) is None:
            s = pieces[tok] = self.tokenizer.decode([tok])
        return s

    def _check_fits(self, n: int) -> None:
        ctx = self.capabilities.context_length
        if n >= ctx:
            raise ProblemTooLong(f"prompt is {n} tokens; model {self.spec!r} has a context of {ctx} tokens.")
