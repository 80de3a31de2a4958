"""`deliberate train prm`: a process reward model on transformers' Trainer.

The PRM of Let's Verify Step by Step (Lightman et al. 2023) trained on the step labels of
Math-Shepherd (Wang et al. 2024) that `deliberate label` makes: the generator's own backbone
with a one-logit token-classification head, read at the last token of each step, trained with
binary cross-entropy on that step's label; every other position is masked out.

Why this convention and not Math-Shepherd's next-token `+`/`-` at a tag `ки`: the head reads
the text exactly as the generator wrote it (no tag token added to the vocabulary or inserted
between steps), so the PRM scores the very prefix a search holds; and one logit with
cross-entropy takes hard labels and Math-Shepherd's soft ones (the share of rollouts that reach
the answer) alike. `rewards/model.py` reads such a checkpoint as `prm:PATH` (format `token`),
through the same `step_text`/`token_positions` as here, so training and reading cannot drift.

TRL 1.16 has no PRM trainer (../shared/RECIPES.md), hence transformers' Trainer with the loss as
`compute_loss_func`; the run's folder, flags, log and progress bar are the other trainers'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deliberate.errors import BadInput
from deliberate.rewards.model import step_text, token_positions
from deliberate.train.common import (
    TrainConfig,
    callbacks,
    check_out,
    claim_out,
    finish,
    fresh_head_quietly,
    model_path,
    opt,
)
from deliberate.train.prm_data import read_step_rows

IGNORE = -100.0  # positions that are not a step's last token
EVAL_FILE = "eval.json"


@dataclass
class PRMRunConfig(TrainConfig):
    data: str = opt("runs/labels.jsonl", "step-labelled JSONL (deliberate label's rows, TRL stepwise, Math-Shepherd "
                                         "or PRM800K); several files comma-separated")
    valid_data: str | None = opt(None, "held-out step-labelled JSONL, scored after training (step AUROC, accuracy)")
    soft: bool = opt(False, "train on soft labels (share of rollouts reaching the answer) where rows have them")
    max_length: int = opt(512, "tokens per solution; steps past the cut are not trained")

    def validate(self) -> None:
        super().validate()
        if self.max_length < 8:
            raise BadInput(f"--max-length must be >= 8, got {self.max_length}.")


def targets(row: dict, soft: bool) -> list[float]:
    """A row's per-step targets: its soft labels when asked and complete, else the hard ones."""
    sl = row.get("soft_labels")
    if soft and isinstance(sl, list) and len(sl) == len(row["labels"]) and all(
            isinstance(v, (int, float)) for v in sl):
        return [float(v) for v in sl]
    return [float(v) for v in row["labels"]]


def encode(row: dict, tokenizer, max_length: int, soft: bool = False) -> dict[str, list] | None:
    """Token ids and per-token targets of one row (IGNORE off the steps' last tokens); None when
    the cut leaves no step."""
    text, ends = step_text(row["prompt"], row["completions"])
    enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_length)
    labels = [IGNORE] * len(enc["input_ids"])
    last = enc["offset_mapping"][-1][1] if enc["offset_mapping"] else 0
    kept = 0
    for pos, c, y in zip(token_positions(enc["offset_mapping"], ends), ends, targets(row, soft), strict=True):
        if c < last:  # a step cut off by the truncation is not trained
            labels[pos] = y
            kept += 1
    if not kept:
        return None
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def problem_key(row: dict) -> str:
    """What makes two rows solutions of one problem: its id and the prompt it was asked in (the
    lab splits share ids across languages: `lab-valid-3` in English and in Chinese)."""
    return f"{row.get('id', '')}\n{row['prompt']}"


def load_rows(spec: str) -> list[dict]:
    rows = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        rows += read_step_rows(part)
    if not rows:
        raise BadInput("--data names no file.")
    return rows


class Collator:
    """Right-pads ids, masks and float targets (transformers' token-classification collator casts
    labels to integers, which would drop the soft ones)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, feats: list[dict]) -> dict:
        import torch

        n = max(len(f["input_ids"]) for f in feats)
        pad = lambda key, v, dt: torch.tensor([f[key] + [v] * (n - len(f[key])) for f in feats], dtype=dt)  # noqa: E731
        return {"input_ids": pad("input_ids", self.pad_id, torch.long),
                "attention_mask": pad("attention_mask", 0, torch.long),
                "labels": pad("labels", IGNORE, torch.float32)}


def step_loss(outputs: Any, labels, num_items_in_batch=None):
    """Binary cross-entropy of the head's logit at each step's last token; summed and divided by
    the steps of the whole accumulated batch when the Trainer counts them (exact accumulation)."""
    import torch.nn.functional as F

    logits = outputs.logits[..., 0].float()
    mask = labels != IGNORE
    loss = F.binary_cross_entropy_with_logits(logits[mask], labels[mask], reduction="sum")
    return loss / (num_items_in_batch if num_items_in_batch is not None else mask.sum().clamp(min=1))


def start_run(cfg: TrainConfig) -> tuple[str | None, list[dict], list[dict] | None, str, Any]:
    """What both verifier trainers begin with: the config checked, threads set, the output
    folder checked (a checkpoint to resume from, or None), the training and held-out rows read,
    and the generator's checkpoint and tokenizer (with a pad token)."""
    import torch
    from transformers import AutoTokenizer

    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    resume_from = check_out(cfg)
    rows = load_rows(cfg.data)  # type: ignore[attr-defined]
    valid = load_rows(cfg.valid_data) if cfg.valid_data else None  # type: ignore[attr-defined]
    path = model_path(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return resume_from, rows, valid, path, tok


def with_fresh_head(cls, path: str, cfg: TrainConfig):
    """The generator's backbone in `cls` (token or sequence classification) with a fresh
    one-logit head: a causal LM checkpoint loads its body, the head starts at the model's
    initialization (seeded)."""
    import torch

    torch.manual_seed(cfg.seed)
    try:
        with fresh_head_quietly():
            return cls.from_pretrained(path, num_labels=1, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise BadInput(f"could not load model {cfg.model!r}: {str(e).strip().splitlines()[0]}") from None


def train_prm(cfg: PRMRunConfig) -> Path:
    """Train a PRM on `cfg.data` into `cfg.out`; with `valid_data`, score it there into eval.json."""
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, Trainer, TrainingArguments

    from deliberate.train.common import trl_config

    resume_from, rows, valid, path, tok = start_run(cfg)
    feats = [f for f in (encode(r, tok, cfg.max_length, cfg.soft) for r in rows) if f is not None]
    if not feats:
        raise BadInput(f"no row of {cfg.data} keeps a step within --max-length {cfg.max_length}.")
    model = with_fresh_head(AutoModelForTokenClassification, path, cfg)
    model.config.pad_token_id = tok.pad_token_id
    args = trl_config(TrainingArguments, **cfg.trainer_args(), remove_unused_columns=False)
    claim_out(cfg, resume_from)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(feats), data_collator=Collator(
        tok.pad_token_id), processing_class=tok, compute_loss_func=step_loss,
        callbacks=callbacks(cfg.out, cfg.max_steps, "prm", cfg.time_limit_minutes))
    out = finish(trainer, cfg, resume_from)
    ys = [y for f in feats for y in f["labels"] if y != IGNORE]
    summary = {"rows": len(feats), "steps": len(ys), "mean_target": sum(ys) / len(ys), "source": cfg.data,
               "soft": cfg.soft}
    (out / "data_summary.json").write_text(json.dumps(summary) + "\n")
    if valid is not None:
        (out / EVAL_FILE).write_text(json.dumps(evaluate_prm(str(out), valid, threads=cfg.threads), indent=2) + "\n")
    return out


def evaluate_prm(path: str, rows: list[dict], threads: int | None = None, batch: int = 32,
                 kind: str = "prm") -> dict:
    """A PRM (or, with kind `orm`, an ORM) on held-out labelled steps, read the way search reads
    it (`prm:PATH`, `orm:PATH`): pooled step
    AUROC and accuracy at 0.5; then each solution's score (its last step's, and its lowest)
    as an outcome verifier, pooled and within a problem (what best-of-n can use)."""
    from deliberate.eval.metrics import auroc, reward_auroc
    from deliberate.rewards.model import ModelReward

    reward = ModelReward(f"prm:{path}?format=token" if kind == "prm" else f"orm:{path}", threads=threads)
    scores: list[float] = []
    labels: list[bool] = []
    sols: list[tuple[str, bool, list[float]]] = []
    for b in range(0, len(rows), batch):
        chunk = rows[b: b + batch]
        built = [step_text(r["prompt"], r["completions"]) for r in chunk]
        got, _ = reward.score_texts([t for t, _ in built], [e for _, e in built])
        for r, s in zip(chunk, got, strict=True):
            scores += s
            labels += [bool(v) for v in r["labels"]]
            sols.append((problem_key(r), bool(r.get("correct", r["labels"][-1])), s))
    acc = sum((s >= 0.5) == y for s, y in zip(scores, labels, strict=True)) / len(scores)
    out: dict[str, Any] = {"rows": len(rows), "steps": len(scores), "step_auroc": auroc(scores, labels),
                           "step_accuracy": acc, "right_share": sum(labels) / len(labels)}
    for agg, f in (("last", lambda s: s[-1]), ("min", min)):
        out[f"outcome_auroc_{agg}"] = auroc([f(s) for _, _, s in sols], [y for _, y, _ in sols])
        by_id: dict[str, list[dict]] = {}
        for pid, y, s in sols:
            by_id.setdefault(pid, []).append({"reward": f(s), "correct": y})
        within = reward_auroc([{"samples": v} for v in by_id.values()])
        out[f"within_problem_auroc_{agg}"] = within[0] if within else None
    return out
