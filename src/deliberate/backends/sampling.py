"""Batched token choice with a generator per sample, and incremental detokenization.

`sample_tokens` does for a whole batch what `torch.multinomial(probs, 1, generator=g)` does for
one row: multinomial with one sample draws an exponential per vocabulary entry from the
generator and takes argmax(p / q) (ATen's implementation; `tests/backends` pins the
equivalence), so here each row draws its q from its own generator and the division and argmax
run once for the batch. A sample is therefore the same whatever else is batched with it, and
the same as before the batching was written.

`Detokenizer` turns each new token into new text in constant time (the prefix-window method
of vLLM's incremental detokenizer): only a window of the last tokens is decoded, so checking
stop strings costs the same at token 500 as at token 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deliberate.params import SamplingParams


def _filtered(logp: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """Temperature, then top-k, then top-p (the token that crosses top_p is kept), row-wise."""
    x = logp / p.temperature
    if p.top_k:
        kth = torch.topk(x, min(p.top_k, x.shape[-1]), dim=-1).values[:, -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if p.top_p < 1:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)
        probs = torch.softmax(sorted_x, -1)
        drop = probs.cumsum(-1) - probs >= p.top_p
        x = x.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return x


def sample_tokens(logp: torch.Tensor, params: Sequence[SamplingParams],
                  gens: Sequence[torch.Generator]) -> list[int]:
    """One token per row of `logp` (B, vocab): greedy rows take the argmax, the others sample
    from their own generator. One transfer to the host for the batch."""
    picks = logp.argmax(-1)
    groups: dict[tuple[float, int, float], list[int]] = {}
    for b, p in enumerate(params):
        if not p.greedy:
            groups.setdefault((p.temperature, p.top_k, p.top_p), []).append(b)
    for rows in groups.values():
        idx = torch.tensor(rows, device=logp.device)
        probs = torch.softmax(_filtered(logp[idx], params[rows[0]]), -1)
        q = torch.stack([torch.empty(probs.shape[-1], device=logp.device).exponential_(1, generator=gens[b])
                         for b in rows])
        picks[idx] = (probs / q).argmax(-1)
    return picks.tolist()


class Detokenizer:
    """Text of a growing token list, a window at a time; holds back an unfinished character."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.text = ""
        self.prefix = 0  # tokens before this are settled in `text`
        self.read = 0  # tokens up to here are in `text`

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def push(self, out: Sequence[int], stops: Sequence[str]) -> bool:
        """Take the newest token of `out`; True when a stop string may have appeared in it."""
        window = self._decode(out[self.prefix:])
        before = self._decode(out[self.prefix:self.read])
        new = window[len(before):] if window.startswith(before) else window
        tail = self.text + new
        start = len(self.text)
        hit = any(tail.find(s, max(0, start - len(s) + 1)) >= 0 for s in stops)
        if new and not new.endswith("\ufffd"):
            self.text = tail
            self.prefix, self.read = self.read, len(out)
        return hit
