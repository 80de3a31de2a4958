"""`deliberate train orm`: an outcome reward model on TRL's RewardTrainer, from pairs within a problem.

Why pairs (a Bradley-Terry loss, -log sigmoid(r_right - r_wrong), as InstructGPT's reward model
and TRL's RewardTrainer train) and not a classifier on outcome labels (Cobbe et al. 2021's
verifier): a pointwise classifier of correctness learns which *problems* are hard as much as
which *solutions* are wrong. Here one reached a pooled AUROC of 0.84 but 0.66 within a problem,
below mean token confidence's 0.88, and its best-of-16 pick was right less often than a random
sample. Best-of-n only ever compares solutions of one problem, so the pairs are made there:
every right solution against every wrong one of the same problem (capped per problem), and
problem difficulty cancels out of the loss.

Inputs are tokenized here, as `orm:PATH` reads them (`rewards/model.py`): the prompt the
generator read then the solution, no end-of-sequence token, read at the last token.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.rewards.model import step_text
from deliberate.train.common import (
    TrainConfig,
    callbacks,
    claim_out,
    finish,
    opt,
    trl_config,
)
from deliberate.train.prm import EVAL_FILE, evaluate_prm, problem_key, start_run, with_fresh_head


@dataclass
class ORMRunConfig(TrainConfig):
    data: str = opt("runs/labels.jsonl", "labelled solutions, several per problem (deliberate label's rows: "
                                         "id, prompt, completions, correct); several files comma-separated")
    valid_data: str | None = opt(None, "held-out labelled solutions, scored after training (within-problem AUROC)")
    pairs_per_problem: int = opt(16, "at most this many (right, wrong) pairs from one problem")
    max_length: int = opt(512, "tokens per solution; a pair with a longer side is dropped")

    def validate(self) -> None:
        super().validate()
        if self.pairs_per_problem < 1:
            raise BadInput(f"--pairs-per-problem must be >= 1, got {self.pairs_per_problem}.")


def pairs(rows: list[dict], per_problem: int, seed: int) -> list[tuple[dict, dict]]:
    """(right, wrong) solutions of the same problem; a problem with only one kind gives none."""
    rng = random.Random(seed)
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        if "id" not in r:
            raise BadInput("an ORM is trained on pairs within a problem: every row needs the problem's id "
                           "(deliberate label writes it).")
        by_id.setdefault(problem_key(r), []).append(r)
    out = []
    for group in by_id.values():
        right = [r for r in group if r.get("correct", r["labels"][-1])]
        wrong = [r for r in group if not r.get("correct", r["labels"][-1])]
        both = list(itertools.product(right, wrong))
        rng.shuffle(both)
        out += both[:per_problem]
    return out


def train_orm(cfg: ORMRunConfig) -> Path:
    """Train an ORM on the pairs of `cfg.data` into `cfg.out`; with `valid_data`, score it into eval.json."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    resume_from, rows, valid, path, tok = start_run(cfg)
    ids = lambda r: tok(step_text(r["prompt"], r["completions"])[0])["input_ids"]  # noqa: E731
    data = [{"chosen_ids": ids(a), "rejected_ids": ids(b)} for a, b in pairs(rows, cfg.pairs_per_problem, cfg.seed)]
    data = [d for d in data if max(len(d["chosen_ids"]), len(d["rejected_ids"])) <= cfg.max_length]
    if not data:
        raise BadInput(f"{cfg.data} has no problem with both a right and a wrong solution (within --max-length): "
                       "no pair to learn from.")
    model = with_fresh_head(AutoModelForSequenceClassification, path, cfg)
    model.config.pad_token_id = tok.pad_token_id
    args = trl_config(RewardConfig, **cfg.trainer_args(), max_length=cfg.max_length, dataset_num_proc=None)
    claim_out(cfg, resume_from)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok,
                            callbacks=callbacks(cfg.out, cfg.max_steps, "orm", cfg.time_limit_minutes))
    out = finish(trainer, cfg, resume_from)
    (out / "data_summary.json").write_text(json.dumps({"pairs": len(data), "source": cfg.data}) + "\n")
    if valid is not None:
        result = evaluate_prm(str(out), valid, threads=cfg.threads, kind="orm")
        (out / EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return out
