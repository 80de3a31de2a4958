"""The transformers backend: any causal LM directory, hub id or GGUF file, on CPU or CUDA.

The decode loop is ours rather than `model.generate` because search needs what `generate`
does not give together: a seeded generator per sample (so a sample does not change with what
else is batched), the raw top-k logprobs of every token (Marco-o1's confidence), per-row stop
strings and budgets with finished rows dropped from the batch, and a key/value cache kept
across calls (`PrefixCache`), so that tree search re-reads no prefix it has computed before.

Per token the loop does batched work only: one sampling pass for the batch (each sample still
draws from its own generator, so results match a sample drawn alone), one top-k for the rows
that want logprobs, one transfer to the host, and stop strings checked on the newly decoded
text, not on the whole output.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache
from transformers.cache_utils import DynamicLayer

from deliberate.backends.base import Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob
from deliberate.backends.hf_tokens import HFTokens
from deliberate.backends.prefix_cache import PrefixCache
from deliberate.backends.sampling import Detokenizer, sample_tokens
from deliberate.errors import BackendError, BadInput
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
    detok: Detokenizer | None = None
    text: str | None = None  # set when a stop string cut it
    finish: str | None = None
    stop: str | None = None
    computed: int = 0  # prompt positions this row's prefill computed (0 when another row's was shared)


@dataclass
class _Running:
    """A batch being decoded: its rows, their cache, mask, positions and next-token logits."""

    rows: list[_Row]
    cache: DynamicCache
    mask: torch.Tensor
    pos: torch.Tensor
    logits: torch.Tensor


class _GrowingLayer(DynamicLayer):
    """A cache layer that appends into spare room instead of concatenating (DynamicLayer copies
    the whole cache at every token: O(length) per token, the largest cost of long batches). The
    keys it returns are a view of a buffer with room for `SPARE` more positions; a batch change
    (rows dropped, padding cut) replaces them, and the next append makes a new buffer once."""

    SPARE = 64

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        cur = self.keys.shape[-2] if self.keys.numel() else 0
        n = key_states.shape[-2]
        buf = getattr(self, "_buf", None)
        if (buf is None or cur + n > buf[0].shape[-2] or buf[0].shape[0] != key_states.shape[0]
                or (cur and self.keys.data_ptr() != buf[0].data_ptr())):
            shape = (*key_states.shape[:2], cur + n + self.SPARE, key_states.shape[-1])
            buf = (key_states.new_empty(shape), value_states.new_empty(shape))
            if cur:
                buf[0][:, :, :cur], buf[1][:, :, :cur] = self.keys, self.values
            self._buf = buf
        buf[0][:, :, cur:cur + n], buf[1][:, :, cur:cur + n] = key_states, value_states
        self.keys, self.values = buf[0][:, :, :cur + n], buf[1][:, :, :cur + n]
        return self.keys, self.values


def _new_cache(config) -> DynamicCache:
    cache = DynamicCache(config=config)
    for layer in cache.layers:
        if type(layer) is DynamicLayer:
            layer.__class__ = _GrowingLayer
    return cache


class TransformersBackend(HFTokens):
    """`generate` and `score` over a Hugging Face causal LM."""

    def __init__(self, path: str, *, spec: str | None = None, gguf_file: str | None = None,
                 device: str = "auto", threads: int | None = None, batch_size: int = 64,
                 prompt_style: str | None = None, prefix_cache: bool = True,
                 prefix_cache_bytes: int = 1 << 30) -> None:
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
        forward = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in forward else "past_key_values"
        self._keep = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}  # prefill: last logits only
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        # the model's prompt format is declared in its config (the lab model's says "lab"); prompting reads it
        self.prompt_style = (prompt_style or getattr(self.model.config, "deliberate_prompt_style", None)
                             or ("chat" if has_chat else "completion"))
        ctx = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.cache = PrefixCache(prefix_cache_bytes) if prefix_cache else None
        self.capabilities = Capabilities(max_logprobs=20, scoring=True, prefix_cache=prefix_cache,
                                         chat_template=has_chat, context_length=ctx,
                                         think_format="</think>" in self.tokenizer.get_vocab())
        self.forward_positions = 0  # positions the model computed, padding included (the bench reads it)
        self.model.register_forward_pre_hook(self._count_positions, with_kwargs=True)

    def _count_positions(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else (args[0] if args else None)
        if ids is not None:
            self.forward_positions += ids.numel()

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

    # -- generation ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[PromptInput],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        """Sample `params.n` completions for each prompt (a text, or token ids read as given);
        one params for all or one per prompt."""
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(plist) != len(prompts):
            raise BadInput(f"got {len(prompts)} prompts but {len(plist)} sampling params.")
        encoded = [self.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        rows = [r for i, (ids, p) in enumerate(zip(encoded, plist, strict=True)) for r in self.rows_for(i, ids, p)]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r].ids))  # less padding per batch
        for start in range(0, len(order), self.batch_size):
            self._decode([rows[r] for r in order[start:start + self.batch_size]])
        return [self.generation(p, ids, [r for r in rows if r.prompt == i])
                for i, (p, ids) in enumerate(zip(prompts, encoded, strict=True))]

    def rows_for(self, i: int, ids: list[int], p: SamplingParams) -> list[_Row]:
        """The n samples of one prompt, each with its own generator seeded by (seed, j)."""
        self._check_fits(len(ids))
        max_new = min(p.max_tokens, self.capabilities.context_length - len(ids))
        base = p.seed if p.seed is not None else random.SystemRandom().randrange(2**62)
        return [_Row(i, ids, p, torch.Generator(device=self.device).manual_seed((base * 1_000_003 + j) % 2**63),
                     max_new, detok=Detokenizer(self.tokenizer) if p.stop else None) for j in range(p.n)]

    def generation(self, prompt: PromptInput, ids: list[int], rows: list[_Row]) -> Generation:
        """A prompt's finished rows as its Generation, with its usage."""
        g = Generation(prompt if isinstance(prompt, str) else self.decode(ids), len(ids), [], prompt_ids=ids)
        for r in rows:
            kept = r.out[:-1] if r.out and r.out[-1] in self.eos_ids else r.out
            if r.text is None:
                self._finish_text(r)
            g.completions.append(Completion(
                text=r.text, n_tokens=len(r.out),
                finish_reason=r.finish or "length", logprobs=r.logprobs if r.params.logprobs is not None else None,
                stop=r.stop, token_ids=list(kept)))
            g.cached_tokens += len(r.ids) - r.computed
        return g

    def prefill(self, rows: list[_Row]) -> _Running:
        """Read each distinct prompt of the batch once, from its longest cached prefix on; the
        running state holds the last logits, the cache, the attention mask and the positions."""
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(r.ids), len(distinct)) for r in rows]
        firsts = {d: next(r for r, s in zip(rows, source, strict=True) if s == d) for d in range(len(distinct))}
        keys = list(distinct)
        hits = [self.cache.match(k, limit=len(k) - 1) if self.cache else (0, None) for k in keys]  # >= 1 token to read
        C = max(n for n, _ in hits)
        S = max(len(k) - n for k, (n, _) in zip(keys, hits, strict=True))
        pad = self.tokenizer.pad_token_id
        cache = _new_cache(self.model.config)
        if C:
            for layer in range(len(next(kv for _, kv in hits if kv is not None))):
                k0, v0 = next(kv for _, kv in hits if kv is not None)[layer]
                K = k0.new_zeros(len(keys), k0.shape[0], C, k0.shape[2])
                V = v0.new_zeros(len(keys), v0.shape[0], C, v0.shape[2])
                for d, (n, kv) in enumerate(hits):
                    if n:
                        K[d, :, C - n:], V[d, :, C - n:] = kv[layer]
                cache.update(K, V, layer)
        ids, mask, pos = [], [], []
        for k, (n, _) in zip(keys, hits, strict=True):
            s = len(k) - n
            ids.append([pad] * (S - s) + list(k[n:]))
            mask.append([0] * (C - n) + [1] * n + [0] * (S - s) + [1] * s)
            pos.append([0] * (S - s) + list(range(n, n + s)))
        for d, r in firsts.items():
            r.computed = len(keys[d]) - hits[d][0]
        mask_t = torch.tensor(mask, device=self.device)
        pos_t = torch.tensor(pos, device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor(ids, device=self.device), attention_mask=mask_t,
                                position_ids=pos_t, use_cache=True, **self._keep,
                                **{self._cache_kw: cache}).logits[:, -1, :]
        if len(distinct) < len(rows):
            idx = torch.tensor(source, device=self.device)
            cache.batch_select_indices(idx)
            logits, mask_t, pos_t = logits[idx], mask_t[idx], pos_t[idx]
        return _Running(list(rows), cache, mask_t, pos_t[:, -1:], logits)

    def _decode(self, rows: list[_Row]) -> None:
        state = self.prefill(rows)
        while state.rows:
            self.advance(state)

    @torch.inference_mode()
    def advance(self, state: _Running) -> list[_Row]:
        """One token for every live row: sample, record, keep the finished rows' key/values in the
        prefix cache, and read the new tokens of the rest. Returns the rows that finished.

        Finished rows stay in the batch, idle (masked, fed a pad token), until they are a quarter
        of it: dropping a row copies the whole cache, which costs more than a few idle rows cost
        the forward (a small model's step is dominated by reading its weights)."""
        alive = [b for b, r in enumerate(state.rows) if r.finish is None]
        batch = [state.rows[b] for b in alive]
        logits = state.logits if len(alive) == len(state.rows) else state.logits[alive]
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, vocab), raw model distribution
        toks = sample_tokens(logp, [r.params for r in batch], [r.gen for r in batch])
        self._record_logprobs(logp, toks, batch)
        for r, tok in zip(batch, toks, strict=True):
            self._append(r, tok)
        done = [r for r in batch if r.finish is not None]
        if self.cache is not None:
            for b, r in zip(alive, batch, strict=True):
                if r.finish is not None:
                    self._store(r, state.cache, state.mask, b)
        still = [b for b in alive if state.rows[b].finish is None]
        if not still:
            state.rows = []
            return done
        feed = [self.tokenizer.pad_token_id] * len(state.rows)
        for b, tok in zip(alive, toks, strict=True):
            feed[b] = tok
        if 4 * (len(state.rows) - len(still)) >= len(state.rows):  # compact
            idx = torch.tensor(still, device=self.device)
            state.cache.batch_select_indices(idx)
            state.mask, state.pos, feed = state.mask[idx], state.pos[idx], [feed[b] for b in still]
            state.rows = [state.rows[b] for b in still]
        column = torch.tensor([[int(r.finish is None)] for r in state.rows], device=self.device)
        state.mask = torch.cat([state.mask, column.to(state.mask.dtype)], dim=1)
        state.pos = state.pos + 1
        state.logits = self.model(input_ids=torch.tensor(feed, device=self.device)[:, None], attention_mask=state.mask,
                                  position_ids=state.pos, use_cache=True,
                                  **{self._cache_kw: state.cache}).logits[:, -1, :]
        return done

    def _store(self, r: _Row, cache: DynamicCache, mask: torch.Tensor, b: int) -> None:
        """Keep a finished row's key/values (prompt and what it generated, but the last token,
        which was never read) for later requests that share a prefix with it."""
        seq = [*r.ids, *r.out[:-1]]
        have = self.cache.match_length(seq)
        if have >= len(seq):
            return
        where = mask[b].nonzero().squeeze(-1)[have:]
        kv = [(layer.keys[b][:, where], layer.values[b][:, where]) for layer in cache.layers]
        self.cache.insert(seq, have, kv)

    def _record_logprobs(self, logp: torch.Tensor, toks: list[int], batch: list[_Row]) -> None:
        """Each row's chosen-token logprob and top-k alternatives, with one top-k for the batch."""
        want = [b for b, r in enumerate(batch) if r.params.logprobs is not None]
        if not want:
            return
        k = max(batch[b].params.logprobs for b in want)
        sub = logp[want]
        chosen = sub.gather(1, torch.tensor([toks[b] for b in want], device=logp.device)[:, None]).squeeze(1).tolist()
        vals, ids = torch.topk(sub, k) if k else (None, None)
        vals, ids = (vals.tolist(), ids.tolist()) if k else ([[]] * len(want), [[]] * len(want))
        for j, b in enumerate(want):
            r, kk = batch[b], batch[b].params.logprobs
            alts = [(self._piece(t), v) for t, v in zip(ids[j][:kk], vals[j][:kk], strict=True)]
            r.logprobs.append(TokenLogprob(self._piece(toks[b]), chosen[j], alts))

    def _append(self, r: _Row, tok: int) -> None:
        """Record one token; decide whether the row is finished (EOS, stop string, budget)."""
        r.out.append(tok)
        if tok in self.eos_ids:
            r.finish = "stop"
            return
        if r.detok is not None and r.detok.push(r.out, r.params.stop):
            # a stop string showed up in the new text: cut exactly where the whole decoded text has it
            text, prev = self.decode(r.out), self.decode(r.out[:-1])
            for s in r.params.stop:
                at = text.find(s, max(0, len(prev) - len(s)))
                if at >= 0:
                    r.text, r.finish, r.stop = text[:at], "stop", s
                    return
        if len(r.out) >= r.max_new:
            r.finish = "length"

    def _finish_text(self, r: _Row) -> None:
        """The whole text, decoded once; cut at a stop string the incremental check missed."""
        r.text = self.decode(r.out)
        found = [(at, s) for s in r.params.stop if (at := r.text.find(s)) >= 0]
        if found:
            at, r.stop = min(found)
            r.text, r.finish = r.text[:at], "stop"

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
            pairs = [(self.encode(p), self.encode_continuation(c)) for p, c in chunk]
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
                out.append(Scored([self._piece(t) for t in c_ids], lps, len(pairs[b][0])))
        return out
