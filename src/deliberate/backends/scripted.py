"""A backend that returns scripted text and logprobs: tests pin formulas to the digit with it.

Its tokens are characters: a token id is the character's code point, so prompts given as ids
and completions' `token_ids` round-trip exactly, as the real backend's do."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from deliberate.backends.base import Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob
from deliberate.errors import ProblemTooLong
from deliberate.params import SamplingParams

# A script maps (prompt, sample index, params) to the completion's tokens: (token, logprob, top).
Script = Callable[[str, int, SamplingParams], list[tuple[str, float, list[tuple[str, float]]]]]


def from_texts(texts: dict[str, list[str]]) -> Script:
    """A script that answers a prompt containing KEY with texts[KEY][j % len], one token per char."""

    def script(prompt: str, j: int, params: SamplingParams):
        for key, outs in texts.items():
            if key in prompt:
                text = outs[0] if params.greedy else outs[j % len(outs)]
                return [(ch, -0.1, [(ch, -0.1)]) for ch in text]
        return [(ch, -0.1, [(ch, -0.1)]) for ch in "no script"]

    return script


class ScriptedBackend:
    spec = "scripted"

    def __init__(self, script: Script, capabilities: Capabilities | None = None, prompt_style: str = "lab") -> None:
        self.script = script
        self.prompt_style = prompt_style  # "lab": prompts are the question and a newline, as tables expect
        self.capabilities = capabilities or Capabilities(max_logprobs=20, scoring=True)
        self.calls = 0
        self.weights_id = f"scripted:{getattr(script, '__qualname__', type(script).__name__)}"

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]  # one token per character, as generated

    def encode(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]

    encode_continuation = encode

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(map(chr, ids))

    def generate(self, prompts: Sequence[PromptInput],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        self.calls += 1
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        out = []
        for prompt, p in zip(prompts, plist, strict=True):
            prompt = prompt if isinstance(prompt, str) else self.decode(prompt)
            if len(prompt) >= self.capabilities.context_length:  # as the real backend: a clear error
                raise ProblemTooLong(f"prompt is {len(prompt)} tokens; model 'scripted' has a context of "
                               f"{self.capabilities.context_length} tokens.")
            comps = []
            for j in range(p.n):
                toks = self.script(prompt, j, p)  # the j-th sample takes the j-th script: fully predictable
                toks = toks[: p.max_tokens]
                text, finish, stop = "", "length" if len(toks) >= p.max_tokens else "stop", None
                for used, (t, _, _) in enumerate(toks, 1):
                    text += t
                    hit = next((s for s in p.stop if s in text), None)
                    if hit:
                        text, finish, stop, toks = text[: text.index(hit)], "stop", hit, toks[:used]
                        break
                lps = [TokenLogprob(t, lp, top[: p.logprobs or 0]) for t, lp, top in toks]
                comps.append(Completion(text, len(toks), finish, lps if p.logprobs is not None else None, stop,
                                        self.encode("".join(t for t, _, _ in toks))))
            out.append(Generation(prompt, len(prompt), comps, prompt_ids=self.encode(prompt),
                                  cached_tokens=len(prompt) * (p.n - 1)))  # n samples share one prefill
        return out

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]:
        return [Scored(list(c), [-0.1] * len(c), len(p)) for p, c in zip(prompts, continuations, strict=True)]


def confident_tokens(text: str, conf: float) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """One token per character, each with top-5 confidence exactly `conf` (Marco-o1's c_i)."""
    lp = math.log(conf)
    rest = math.log(1 - conf) if conf < 1 else -1e9
    return [(ch, lp, [(ch, lp), ("\x00", rest)]) for ch in text]


def from_table(table: dict[str, list[tuple[str, float]]]) -> Script:
    """A script keyed by the prompt's ending: sample j gets entry j % len as (text, confidence);
    greedy requests get entry 0. Tree search feeds back its own steps, so suffixes pick a node."""

    def script(prompt: str, j: int, params: SamplingParams):
        for suffix, outs in table.items():
            if prompt.endswith(suffix):
                text, conf = outs[0] if params.greedy else outs[j % len(outs)]
                return confident_tokens(text, conf)
        return confident_tokens("?", 0.5)

    return script
