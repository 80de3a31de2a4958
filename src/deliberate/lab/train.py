"""The lab model's recipe: `deliberate train sft` from random weights on the lab training mix.

`deliberate lab train` (and `make lab-model`) is TRL's SFTTrainer with these settings, nothing
of its own: the first lab model was trained by a hand-written loop, retired because SFTTrainer
with bf16 autocast runs as fast (12 steps of 16 x 512 tokens at 1 thread: 27.2 s against 26.2 s,
1.04x; in fp32 it was 1.67x slower). The architecture and tokenizer are the shipped model's
(`init_from_config`): a 4-layer Llama, d=256, 3.4M parameters, and a byte-level BPE with one
token per digit (`deliberate.lab.tokenizer` builds one from a corpus). Rows are packed into
windows of the full declared context (512), so every position the model may meet is trained.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deliberate.lab.generator import CURRICULUM

__all__ = ["CURRICULUM", "RECIPE", "export_model", "recipe"]

# `deliberate train sft` options of the shipped lab model (`make lab-model`)
RECIPE = dict(model="lab", init_from_config=True, data="lab", examples=240_000, packing=True, max_length=512,
              batch_size=16, max_steps=2800, learning_rate=3e-3, warmup_ratio=0.1, weight_decay=0.1,
              adam_beta2=0.95, min_lr_ratio=0.1, save_steps=200, logging_steps=25, seed=1)


def recipe(out: str, **overrides):
    """The SFT config of the lab model's training, with any field overridden (a short test run)."""
    from deliberate.train.sft import SFTRunConfig

    return SFTRunConfig(**{**RECIPE, "out": out, **overrides})


EXPORTED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def export_model(src: str | Path, dest: str | Path, fp16: bool = False, style: str = "lab") -> Path:
    """Copy the loadable model files (not the optimizer state) to `dest`, marked as a lab model
    of prompt `style` (`lab`, or `lab-r1`: a model whose prompt opens `<think>`, as GRPO with
    `--think` trains it). `fp16`: store the weights in half precision, all but the embeddings and
    norms (about half the size; loaders upcast to float32, and the shipped models are held to the
    30 MB the package allows)."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED:
        if (src / name).exists() and (src / name).resolve() != (dest / name).resolve():
            shutil.copy2(src / name, dest / name)
            (dest / name).chmod(0o644)  # the trainer writes weights owner-only; a shipped model is readable by all
    if fp16:
        _to_fp16(dest / "model.safetensors")
    cfg = json.loads((dest / "config.json").read_text())
    cfg["deliberate_prompt_style"] = style
    cfg["use_cache"] = True  # the trainer turns it off while training; a shipped model decodes with it
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok = dest / "tokenizer_config.json"
    if tok.exists():  # where the trainer loaded it from is no part of the model
        t = {k: v for k, v in json.loads(tok.read_text()).items() if k not in ("is_local", "local_files_only")}
        tok.write_text(json.dumps(t, indent=2) + "\n")
    return dest


# Tensors kept in float32 by `fp16`: measured on v10, all-fp16 storage changed the greedy text of 2 of
# 600 test problems; with the embeddings (which the head shares) and the norms kept, 0 of 600 test
# and 0 of 1,000 validation problems, and 2 of 4,800 samples at T=1, for 0.5 MB more.
KEPT_FP32 = ("embed", "norm")


def _to_fp16(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {k: v.half() if v.is_floating_point() and not any(n in k for n in KEPT_FP32) else v
               for k, v in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})
    path.chmod(0o644)  # save_file writes owner-only; the copy it replaces was readable by all
