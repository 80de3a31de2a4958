"""`deliberate train sft`: TRL's SFTTrainer on question/solution data, loss on the solution only.

Distillation (DeepSeek-R1 section 4.1, s1) and the lab model's own pretraining both go through
here. Rows come from `deliberate.train.data` in TRL's prompt-completion shape, so SFTTrainer
masks the prompt (`completion_only_loss`). With `packing`, rows are concatenated and cut into
windows of `max_length` tokens ("wrapped", as a pretraining loop packs text): every position of
the model's declared context is trained, which is what the lab model needs (the first one was
trained on 256-token windows while declaring 512 positions, and fell apart past 256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.train.common import TrainConfig, callbacks, check_out, claim_out, finish, model_path, opt


@dataclass
class SFTRunConfig(TrainConfig):
    data: str = opt("lab", "JSONL file (question/solution or prompt/completion rows), a task with solutions, "
                           "`lab` (the lab training mix) or `lab-own` (the mix with the model's own right "
                           "answers in its plain and think rows; a second stage)")
    examples: int = opt(20_000, "rows drawn from `lab` or `lab-own` (ignored for a file or task)")
    teacher: str | None = opt(None, "with `lab-own`: a thinking model (e.g. lab-r1) whose own right traces after "
                                    "<think> open the think rows instead of the model's plain answers")
    mix: str | None = opt(None, "with `lab` or `lab-own`: the formats' shares as FORMAT=SHARE, comma-separated, "
                                "e.g. plain=0.15,think=0.63 (formats: plain, think, reflection, translation; "
                                "one left out gets none; default: the shipped model's mix)")
    generator_plain: bool = opt(False, "with `lab-own`: the plain rows keep the generator's solutions (random "
                                       "equivalent forms) instead of the model's own answers")
    max_length: int | None = opt(None, "tokens per sequence or packed window (default: the model's context)")
    packing: bool = opt(False, "pack rows into full windows of max-length tokens")
    init_from_config: bool = opt(False, "train from random weights of the model's architecture (pretraining)")
    think: bool = opt(False, "open <think> after each question (R1's template), to distill a thinking model's "
                             "traces; export the result with `lab export --style lab-r1`")

    def validate(self) -> None:
        super().validate()
        if self.examples < 1:
            raise BadInput(f"--examples must be >= 1, got {self.examples}.")
        if self.max_length is not None and self.max_length < 8:
            raise BadInput(f"--max-length must be >= 8, got {self.max_length}.")
        from deliberate.lab.generator import TEST_SEED, VALID_SEED

        if self.teacher is not None and self.data != "lab-own":
            raise BadInput(f"--teacher applies to `--data lab-own` only, not to {self.data!r}.")
        if self.generator_plain and self.data != "lab-own":
            raise BadInput(f"--generator-plain applies to `--data lab-own` only, not to {self.data!r}.")
        if self.mix is not None:
            if self.data not in ("lab", "lab-own"):
                raise BadInput(f"--mix applies to `--data lab` or `lab-own` only, not to {self.data!r}.")
            self.mix_shares()
        if self.data in ("lab", "lab-own") and self.seed in (TEST_SEED, VALID_SEED):
            raise BadInput(f"--seed {self.seed} is a held-out split's seed; the lab mix must be drawn with another.")

    def mix_shares(self) -> dict[str, float] | None:
        """`--mix` parsed (None: the default mix)."""
        from deliberate.lab.formats import parse_mix

        try:
            return parse_mix(self.mix) if self.mix is not None else None
        except ValueError as e:
            raise BadInput(f"--mix: {e}.") from None


def load_model(cfg: SFTRunConfig):
    """The model to fine-tune, or a fresh one of its architecture when `init_from_config`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = model_path(cfg.model)
    try:
        if cfg.init_from_config:
            torch.manual_seed(cfg.seed)
            return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise BadInput(f"could not load model {cfg.model!r}: {str(e).strip().splitlines()[0]}") from None


def sft_config(cfg: SFTRunConfig, context: int):
    """TRL's config; the data repeats (shuffled each pass) until `max_steps`."""
    from trl import SFTConfig

    from deliberate.train.common import trl_config

    return trl_config(SFTConfig, **cfg.trainer_args(), max_length=cfg.max_length or context, packing=cfg.packing,
                      packing_strategy="wrapped", padding_free=False, completion_only_loss=True,
                      dataset_num_proc=None, shuffle_dataset=True)


def train_sft(cfg: SFTRunConfig, rows: list[dict] | None = None) -> Path:
    """Fine-tune `cfg.model` on `cfg.data` (or on `rows`, already prompt/completion) into `cfg.out`."""
    import torch
    from trl import SFTTrainer

    from deliberate.train.data import PromptView, sft_rows, to_dataset

    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    view = PromptView.load(cfg.model, model_path(cfg.model))
    resume_from = check_out(cfg)
    rows = rows if rows is not None else sft_rows(cfg.data, view, examples=cfg.examples, seed=cfg.seed,
                                                     think=cfg.think, threads=cfg.threads, teacher=cfg.teacher,
                                                     mix=cfg.mix_shares(), own_plain=not cfg.generator_plain)
    model = load_model(cfg)
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    if cfg.max_length and cfg.max_length > context:
        raise BadInput(f"--max-length {cfg.max_length} exceeds the model's context ({context}).")
    tok = view.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    args = sft_config(cfg, context)
    claim_out(cfg, resume_from)  # every check passed: only now is the folder replaced or trimmed
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_dataset(rows),
                         processing_class=tok,
                         callbacks=callbacks(cfg.out, cfg.max_steps, "sft", cfg.time_limit_minutes))
    out = finish(trainer, cfg, resume_from)
    (out / "data_summary.json").write_text(json.dumps({"rows": len(rows), "source": cfg.data}) + "\n")
    return out
