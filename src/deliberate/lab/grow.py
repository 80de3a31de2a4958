"""A larger lab model that starts as the smaller one: block expansion (LLaMA Pro, Wu et al. 2024).

Distillation (DeepSeek-R1 section 4.1) wants a teacher larger than its student, and training a
deeper lab model from scratch costs hours on 2 cores. Block expansion inserts a copy of a block
after each of some existing blocks with its output projections (`o_proj`, `down_proj`) zeroed:
each new block adds nothing to the residual stream, so the grown model computes exactly what the
small one did, and further training (`deliberate train sft --model GROWN --data lab`) uses the
new depth. Llama-style models only (layers under `model.layers`, attention and MLP outputs named
as in transformers' Llama).
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.train.common import mark_lab


def grow_model(src: str | Path, dest: str | Path, layers: int) -> Path:
    """Write a `layers`-deep copy of the model at `src` (which must be shallower) to `dest`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, dest = Path(src), Path(dest)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    blocks = getattr(getattr(model, "model", None), "layers", None)
    if blocks is None or not hasattr(blocks[0], "mlp") or not hasattr(blocks[0], "self_attn"):
        raise BadInput(f"{src}: block expansion needs a Llama-style model (model.layers with self_attn and mlp).")
    old = len(blocks)
    if not old < layers <= 4 * old:
        raise BadInput(f"--layers must be above the model's {old} and at most {4 * old}, got {layers}.")
    extra = layers - old
    # spread the new blocks evenly, from the top block down: after[i] copies follow block i
    after = Counter(old - 1 - (j * old) // extra for j in range(extra))
    grown = []
    for i, block in enumerate(blocks):
        grown.append(block)
        for _ in range(after[i]):
            new = copy.deepcopy(block)
            with torch.no_grad():
                new.self_attn.o_proj.weight.zero_()
                new.mlp.down_proj.weight.zero_()
            grown.append(new)
    for i, block in enumerate(grown):
        block.self_attn.layer_idx = i  # the KV cache is indexed by it
    model.model.layers = torch.nn.ModuleList(grown)
    model.config.num_hidden_layers = len(grown)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[0]] * len(grown)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(src).save_pretrained(dest)
    mark_lab(dest, str(src))  # the prompt format, which save_pretrained may drop
    return dest
