"""The transformers backend: any causal LM directory, hub id or GGUF file, on CPU or CUDA.

The decode loop is ours rather than `model.generate` because search needs three things
`generate` does not give together: a seeded generator per sample (so a sample does not change
with what else is batched), the raw top-k logprobs of every token (Marco-o1's confidence), and
per-row stop strings and budgets with finished rows dropped from the batch.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from deliberate.backends.base import Capabilities, Completion, Generation, Scored, TokenLogprob
from deliberate.errors import BackendError, BadInput, ProblemTooLong
from deliberate.params import SamplingParams


@dataclass
class _Row:
    """One sample being decoded: which prompt, which sample, and what it produced so far."""

    prompt: int
    ids: list[int]
    params: SamplingParams
    gen: torch.Generator
    max_new: int
    out: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    text: str = ""
    finish: str | None = None
    stop: str | None = None


class TransformersBackend:
    """`generate` and `score` over a Hugging Face causal LM."""

    def __init__(self, path: str, *, spec: str | None = None, gguf_file: str | None = None,
                 device: str = "auto", threads: int | None = None, batch_size: int = 64,
                 prompt_style: str | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.spec = spec or path
        self._path, self._gguf_file = path, gguf_file
        self.device = torch.device(device)
        self.batch_size = batch_size
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra)
        except (OSError, ValueError, ImportError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendError(f"could not load model {self.spec!r}: {first}") from e
        self.model.to(self.device).eval()
        # transformers 5 renamed the KV-cache argument; older versions only know past_key_values
        self._cache_kw = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.prompt_style = (prompt_style or getattr(self.model.config, "deliberate_prompt_style", None)
                             or ("chat" if has_chat else "completion"))
        ctx = getattr(self.model.config, "max_position_embeddings", None) or 2048
        # the lab model is trained on the think format; another model has it if </think> is one of its tokens
        thinks = self.prompt_style == "lab" or "</think>" in self.tokenizer.get_vocab()
        self.capabilities = Capabilities(max_logprobs=20, scoring=True, n_per_call=True, seed=True,
                                         prefix_cache=False, chat_template=has_chat, context_length=ctx,
                                         think_format=thinks)

    def weights_files(self) -> list[str]:
        """The files holding the weights (what the run manifest hashes): the GGUF file, else the
        safetensors/bin files of the local folder or of the hub cache's snapshot."""
        folder = Path(self._path).expanduser()
        if self._gguf_file:
            return [str(folder / self._gguf_file)]
        if not folder.is_dir():
            try:
                from huggingface_hub import snapshot_download

                folder = Path(snapshot_download(self._path, local_files_only=True))
            except Exception:  # not in the local cache: the manifest says "unknown"
                return []
        return [str(f) for f in sorted(folder.glob("*")) if f.suffix in (".safetensors", ".bin", ".gguf")]

    # -- text <-> tokens -------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        bos = self.tokenizer.bos_token
        special = not (bos and text.startswith(bos))  # a rendered chat template already has it
        return self.tokenizer(text, add_special_tokens=special).input_ids

    def _check_fits(self, n: int) -> None:
        ctx = self.capabilities.context_length
        if n >= ctx:
            raise ProblemTooLong(f"prompt is {n} tokens; model {self.spec!r} has a context of {ctx} tokens.")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Prompt lengths in tokens, as `generate` would encode them (strategies fit contexts with it)."""
        return [len(self._encode(t)) for t in texts]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text for a conversation, ending where the assistant's answer begins."""
        if self.capabilities.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"

    # -- generation ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        """Sample `params.n` completions for each prompt; one params for all or one per prompt."""
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(plist) != len(prompts):
            raise BadInput(f"got {len(prompts)} prompts but {len(plist)} sampling params.")
        encoded = [self._encode(p) for p in prompts]
        rows: list[_Row] = []
        for i, (ids, p) in enumerate(zip(encoded, plist, strict=True)):
            self._check_fits(len(ids))
            max_new = min(p.max_tokens, self.capabilities.context_length - len(ids))
            base = p.seed if p.seed is not None else random.SystemRandom().randrange(2**62)
            for j in range(p.n):
                g = torch.Generator(device=self.device).manual_seed((base * 1_000_003 + j) % 2**63)
                rows.append(_Row(i, ids, p, g, max_new))
        order = sorted(range(len(rows)), key=lambda r: len(rows[r].ids))  # less padding per batch
        for start in range(0, len(order), self.batch_size):
            self._decode([rows[r] for r in order[start:start + self.batch_size]])
        out = [Generation(prompts[i], len(encoded[i]), []) for i in range(len(prompts))]
        for r in rows:
            out[r.prompt].completions.append(Completion(
                text=r.text, n_tokens=len(r.out), finish_reason=r.finish or "length",
                logprobs=r.logprobs if r.params.logprobs is not None else None, stop=r.stop))
        return out

    @torch.inference_mode()
    def _decode(self, rows: list[_Row]) -> None:
        pad = self.tokenizer.pad_token_id
        # The n samples of a prompt share one prefill: read each distinct prompt once, then copy its
        # cache rows (for few-shot prompts the prefill is most of the work).
        distinct: dict[tuple[int, ...], int] = {}
        source = torch.tensor([distinct.setdefault(tuple(r.ids), len(distinct)) for r in rows], device=self.device)
        width = max(len(r.ids) for r in rows)
        ids = torch.tensor([[pad] * (width - len(k)) + list(k) for k in distinct], device=self.device)
        mask = torch.tensor([[0] * (width - len(k)) + [1] * len(k) for k in distinct], device=self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                            use_cache=True, **{self._cache_kw: cache}).logits[:, -1, :]
        if len(distinct) < len(rows):
            cache.batch_select_indices(source)
            logits, mask, pos = logits[source], mask[source], pos[source]
        live = list(range(len(rows)))  # indices into rows of the batch's current members
        while True:
            logp = torch.log_softmax(logits.float(), dim=-1)  # (B, vocab), raw model distribution
            nxt = []
            for b, r in enumerate(rows[i] for i in live):
                tok = self._pick(logp[b], r.params, r.gen)
                nxt.append(tok)
                self._append(r, tok, logp[b])
            keep = [b for b, i in enumerate(live) if rows[i].finish is None]
            if not keep:
                return
            if len(keep) < len(live):
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                mask, pos = mask[idx], pos[idx]
                nxt = [nxt[b] for b in keep]
                live = [live[b] for b in keep]
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
            pos = pos[:, -1:] + 1
            step = torch.tensor(nxt, device=self.device)[:, None]
            logits = self.model(input_ids=step, attention_mask=mask, position_ids=pos,
                                use_cache=True, **{self._cache_kw: cache}).logits[:, -1, :]

    @staticmethod
    def _pick(logp: torch.Tensor, p: SamplingParams, gen: torch.Generator) -> int:
        """Greedy, or a sample after temperature, top-k and top-p, drawn from this row's generator."""
        if p.greedy:
            return int(logp.argmax())
        x = logp / p.temperature
        if p.top_k:
            kth = torch.topk(x, min(p.top_k, x.numel())).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if p.top_p < 1:
            sorted_x, order = torch.sort(x, descending=True)
            cum = torch.softmax(sorted_x, -1).cumsum(-1)
            drop = cum - torch.softmax(sorted_x, -1) >= p.top_p  # keep the token that crosses top_p
            x = x.index_fill(0, order[drop], float("-inf"))
        return int(torch.multinomial(torch.softmax(x, -1), 1, generator=gen))

    def _append(self, r: _Row, tok: int, logp: torch.Tensor) -> None:
        """Record one token; decide whether the row is finished (EOS, stop string, budget)."""
        if r.params.logprobs is not None:
            k = r.params.logprobs
            top = torch.topk(logp, k) if k else None
            alts = ([(self.tokenizer.decode([int(t)]), float(v)) for v, t in zip(*top, strict=True)]
                    if top is not None else [])
            r.logprobs.append(TokenLogprob(self.tokenizer.decode([tok]), float(logp[tok]), alts))
        r.out.append(tok)
        if tok in self.eos_ids:
            r.finish = "stop"
            return
        prev = len(r.text)
        r.text = self.tokenizer.decode(r.out, skip_special_tokens=True)
        for s in r.params.stop:
            at = r.text.find(s, max(0, prev - len(s)))
            if at >= 0:
                r.text, r.finish, r.stop = r.text[:at], "stop", s
                return
        if len(r.out) >= r.max_new:
            r.finish = "length"

    # -- scoring ---------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]:
        """Logprob of each continuation token given its prompt (tokenized apart, then joined)."""
        if len(prompts) != len(continuations):
            raise BadInput(f"got {len(prompts)} prompts but {len(continuations)} continuations.")
        out: list[Scored] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = list(zip(prompts[start:start + self.batch_size],
                             continuations[start:start + self.batch_size], strict=True))
            pairs = [(self._encode(p), self.tokenizer(c, add_special_tokens=False).input_ids) for p, c in chunk]
            for p_ids, c_ids in pairs:
                self._check_fits(len(p_ids) + len(c_ids))
            width = max(len(p) + len(c) for p, c in pairs)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(p) - len(c)) + p + c for p, c in pairs], device=self.device)
            mask = (torch.arange(width, device=self.device)[None, :]
                    >= torch.tensor([width - len(p) - len(c) for p, c in pairs], device=self.device)[:, None]).long()
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask, position_ids=pos)
                                     .logits.float(), -1)  # (B, T, vocab)
            for b, (_, c_ids) in enumerate(pairs):
                first = width - len(c_ids)  # position of the first continuation token
                lps = [float(logp[b, first + t - 1, tok]) for t, tok in enumerate(c_ids)]
                out.append(Scored([self.tokenizer.decode([t]) for t in c_ids], lps, len(pairs[b][0])))
        return out
