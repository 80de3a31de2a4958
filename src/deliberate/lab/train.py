"""`deliberate lab train`: train the lab model from scratch on the synthetic problems.

Written by hand rather than with transformers' Trainer because the data is an endless
generator packed into fixed windows with the loss masked to solution tokens, and the whole
loop fits on one screen: that is easier to read than a Trainer subclass with a custom
collator. Batches are a pure function of (seed, step), so a resumed run sees exactly the
batches an uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from deliberate.lab import formats
from deliberate.lab.generator import Difficulty, heldout_split, train_stream
from deliberate.lab.tokenizer import build_tokenizer

# The training mix: easier and harder than the test difficulty, so the model generalizes
# across the knob instead of fitting one setting.
CURRICULUM = [Difficulty(1, 2), Difficulty(2, 4), Difficulty(3, 5), Difficulty(2, 4, max_number=30)]


@dataclass
class LabTrainConfig:
    out: str = "runs/lab-model"
    steps: int = 3000
    batch_size: int = 32
    seq_len: int = 256
    lr: float = 3e-3
    warmup: int = 200
    weight_decay: float = 0.1
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 688
    vocab_size: int = 1024
    threads: int = 2
    seed: int = 1
    bf16: bool = True
    save_every: int = 250
    snapshots: bool = False  # also keep a loadable copy per checkpoint in out/step-N (model selection)
    languages: list[str] = field(default_factory=lambda: ["en", "zh"])

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "threads", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")


def _batch(cfg: LabTrainConfig, tok, step: int, exclude: set[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack examples into (B, T) windows; labels are -100 on the segments not trained (prompts)."""
    stream = train_stream(cfg.seed * 1_000_003 + step, CURRICULUM, exclude)
    rng = random.Random(step)
    ids: list[int] = []
    labels: list[int] = []
    need = cfg.batch_size * cfg.seq_len
    while len(ids) < need:
        for text, trained in formats.example(next(stream), rng.choice(cfg.languages), rng):
            t = tok(text, add_special_tokens=False).input_ids
            ids += t
            labels += t if trained else [-100] * len(t)
        ids.append(tok.eos_token_id)
        labels.append(tok.eos_token_id)
    x = torch.tensor(ids[:need]).view(cfg.batch_size, cfg.seq_len)
    y = torch.tensor(labels[:need]).view(cfg.batch_size, cfg.seq_len)
    return x, y


def _lr(cfg: LabTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train(cfg: LabTrainConfig, console: Console | None = None) -> Path:
    """Train (or resume) and return the directory of the saved Hugging Face model."""
    console = console or Console()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    exclude = {p.key() for p in heldout_split()}
    state_path = out / "trainer_state.pt"

    if (out / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(out)
    else:
        corpus_stream, rng = train_stream(cfg.seed, CURRICULUM, exclude), random.Random(cfg.seed)
        corpus = ["".join(text for text, _ in formats.example(next(corpus_stream), lang, rng))
                  for _ in range(10_000) for lang in ("en", "zh")]
        tok = build_tokenizer(corpus, cfg.vocab_size)
        tok.save_pretrained(out)
    model_cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
        max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model_cfg.deliberate_prompt_style = "lab"  # backends prompt it with the lab format
    model = LlamaForCausalLM(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    start = 0
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        console.print(f"resuming from step {start} of {cfg.steps}")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"lab model: {n_params / 1e6:.2f}M parameters, {cfg.batch_size}x{cfg.seq_len} tokens/step")

    def save(step: int) -> None:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, state_path)
        model.save_pretrained(out)  # loadable at every checkpoint, not just at the end
        if cfg.snapshots:
            model.save_pretrained(out / f"step-{step}")
            tok.save_pretrained(out / f"step-{step}")

    log = (out / "train_log.jsonl").open("a")
    model.train()
    t0, tokens = time.time(), 0
    cols = [TextColumn("lab train"), BarColumn(), TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
            TimeRemainingColumn()]
    with Progress(*cols, console=console) as bar:
        task = bar.add_task("train", total=cfg.steps, completed=start, info="")
        for step in range(start, cfg.steps):
            x, y = _batch(cfg, tok, step, exclude)
            for g in opt.param_groups:
                g["lr"] = _lr(cfg, step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model(input_ids=x, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            tokens += x.numel()
            tps = tokens / (time.time() - t0)
            info = f"loss {loss.item():.3f} {tps:,.0f} tok/s"
            bar.update(task, advance=1, info=info)
            if step % 50 == 0 or step == cfg.steps - 1:
                rec = {"step": step, "loss": round(loss.item(), 4), "lr": _lr(cfg, step),
                       "tok_s": round(tps), "elapsed_s": round(time.time() - t0, 1)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                if not console.is_terminal:
                    console.print(info, f"step {step}")
            if (step + 1) % cfg.save_every == 0 or step == cfg.steps - 1:
                save(step + 1)
    log.close()
    return out


EXPORTED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def export_model(src: str | Path, dest: str | Path) -> Path:
    """Copy the loadable model files (not the optimizer state) to `dest`, marked as a lab model."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED:
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
    cfg = json.loads((dest / "config.json").read_text())
    cfg["deliberate_prompt_style"] = "lab"
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return dest
