"""What every trainer shares: the run's options, its output folder, the hardware flags, the
metrics log and the progress bar.

The trainers are TRL's; this module only makes them behave alike from the command line: a run
never writes into a folder that holds other work unless `overwrite` says so, `resume` continues
from the last checkpoint exactly (transformers' Trainer restores the optimizer, the scheduler,
the data order and the RNG states), every logged step lands in `metrics.jsonl` beside the
checkpoints, and the same flags work on a laptop's CPU and on a GPU (bf16 where the GPU or an
AVX-512 CPU has it; TRL's CPU defaults would otherwise refuse to start, see ../shared/RECIPES.md).
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deliberate.errors import BadInput

METRICS = "metrics.jsonl"


def opt(default: Any, help: str) -> Any:
    """A config field with its command-line help (the CLI derives the flags from these)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Options every trainer takes. Each trainer's config extends it."""

    model: str = opt("lab", "model to train: lab, hf:ID or a directory saved with save_pretrained")
    out: str = opt("runs/train", "output folder: checkpoints, metrics.jsonl, the final model")
    overwrite: bool = opt(False, "replace an output folder that already holds a run")
    resume: bool = opt(False, "continue from the last checkpoint in the output folder")
    seed: int = opt(0, "seed of data order, sampling and initialization")
    threads: int | None = opt(None, "torch CPU threads (default: torch's)")
    max_steps: int = opt(100, "optimizer steps")
    learning_rate: float = opt(1e-4, "peak learning rate")
    warmup_ratio: float = opt(0.0, "share of steps spent warming the learning rate up")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    batch_size: int = opt(8, "sequences (SFT) or completions (GRPO) per device per step")
    grad_accum: int = opt(1, "gradient accumulation steps")
    adam_beta2: float = opt(0.999, "AdamW's second-moment decay (0.95 for pretraining from scratch)")
    min_lr_ratio: float = opt(0.0, "the cosine schedule ends at this share of the peak learning rate")
    save_steps: int = opt(50, "write a checkpoint every this many steps")
    logging_steps: int = opt(1, "log metrics every this many steps")
    bf16: bool | None = opt(None, "bf16 autocast (default: on a GPU that has it, or a CPU with AVX-512)")
    time_limit_minutes: float | None = opt(None, "stop (with a checkpoint) after this many minutes of training")

    def validate(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if self.learning_rate <= 0:
            raise BadInput(f"--learning-rate must be > 0, got {self.learning_rate}.")
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"--threads must be >= 1, got {self.threads}.")
        if self.time_limit_minutes is not None and self.time_limit_minutes <= 0:
            raise BadInput(f"--time-limit-minutes must be > 0, got {self.time_limit_minutes}.")
        if not 0 <= self.adam_beta2 < 1:
            raise BadInput(f"--adam-beta2 must be in [0, 1), got {self.adam_beta2}.")
        for name in ("warmup_ratio", "min_lr_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise BadInput(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}.")
        if self.resume and self.overwrite:
            raise BadInput("--resume and --overwrite contradict each other: choose one.")

    def trainer_args(self) -> dict[str, Any]:
        """The TrainingArguments every TRL config here shares, with the hardware flags."""
        import warnings

        import torch

        # TRL's configs still set the old name of activation checkpointing (off here): a warning per run
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)
        gpu = torch.cuda.is_available()
        return dict(output_dir=self.out, max_steps=self.max_steps, learning_rate=self.learning_rate,
                    warmup_steps=round(self.warmup_ratio * self.max_steps), weight_decay=self.weight_decay,
                    per_device_train_batch_size=self.batch_size, gradient_accumulation_steps=self.grad_accum,
                    save_steps=self.save_steps, logging_steps=self.logging_steps, seed=self.seed,
                    data_seed=self.seed, save_strategy="steps", save_total_limit=None,
                    bf16=self.bf16 if self.bf16 is not None else bf16_native(gpu), use_cpu=not gpu,
                    gradient_checkpointing=False, adam_beta2=self.adam_beta2,
                    lr_scheduler_kwargs={"min_lr_rate": self.min_lr_ratio},
                    report_to=["tensorboard"] if _has("tensorboard") else "none", disable_tqdm=True,
                    dataloader_num_workers=0, lr_scheduler_type="cosine_with_min_lr")


def bf16_native(gpu: bool) -> bool:
    """Whether bf16 autocast pays here: measured on this project's 2-core AVX-512 machine, SFT of
    the lab model ran 1.6x faster with it than in fp32 (and as fast as the hand-written loop)."""
    import torch

    if gpu:
        return torch.cuda.is_bf16_supported()
    return torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX")


@contextmanager
def fresh_head_quietly():
    """Load a checkpoint into a class with a new head (a verifier's) without transformers' report
    listing the head's weights as missing: they are missing by design, and trained next."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def model_path(spec: str) -> str:
    """A trainable model's directory or hub id from a model spec (the backends' spellings)."""
    from deliberate.backends import LAB_MODELS, lab_model_dir

    if spec in LAB_MODELS:
        return str(lab_model_dir(spec))
    if spec.startswith("hf:"):
        return spec.removeprefix("hf:")
    if spec.startswith("gguf:") or spec == "smollm2":
        raise BadInput(f"{spec}: a GGUF model is quantized and cannot be trained; pass a model saved with "
                       "save_pretrained (a directory) or hf:ID.")
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser())
    raise BadInput(f"model {spec!r} is not a directory, {', '.join(LAB_MODELS)} or hf:ID.")


RESUMABLE_CHANGES = ("out", "resume", "overwrite", "threads", "max_steps", "time_limit_minutes")


def changed_settings(cfg: TrainConfig, saved: Path, free: tuple[str, ...] = ()) -> list[str]:
    """The options of `cfg` that differ from a run's saved `run_config.json` (those a resume
    may change, and `free`, aside)."""
    if not saved.exists():
        return []
    before = json.loads(saved.read_text())
    return [k for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES + free and before.get(k, v) != v]


def check_out(cfg: TrainConfig) -> str | None:
    """Check, without touching anything, that the output folder may be used; return the
    checkpoint a resume starts from. Runs before any slow or failing step, so a refused run
    leaves the folder as it was."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file, not a folder.")
    if cfg.resume:
        last = get_last_checkpoint(str(out)) if out.is_dir() else None
        if last is None:
            raise BadInput(f"--resume: no checkpoint-N folder in {out} to resume from.")
        if changed := changed_settings(cfg, out / "run_config.json"):
            raise BadInput(f"--resume with options that differ from the run in {out}: {', '.join(changed)}.")
        return last
    if out.is_dir() and any(out.iterdir()):
        if not cfg.overwrite:
            raise BadInput(f"{out} already holds files; pass --overwrite to replace them or --resume to continue.")
        if not (out / "run_config.json").exists():
            raise BadInput(f"{out} holds files but no training run (run_config.json); --overwrite only replaces "
                           "a training run's folder. Choose another --out.")
    return None


def claim_out(cfg: TrainConfig, resume_from: str | None) -> None:
    """Make the output folder ready, once every check has passed: replace an old run when
    overwriting, or cut the metrics log back to the checkpoint a resume restarts from."""
    out = Path(cfg.out)
    if resume_from is not None:
        _trim_metrics(out / METRICS, int(Path(resume_from).name.split("-")[1]))
        return
    if out.is_dir() and any(out.iterdir()):
        shutil.rmtree(out)  # check_out allowed it: --overwrite, and the folder is a training run's
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")


def prepare_out(cfg: TrainConfig) -> str | None:
    """`check_out` then `claim_out`, for callers with nothing slow in between."""
    resume_from = check_out(cfg)
    claim_out(cfg, resume_from)
    return resume_from


def trl_config(cls, **kwargs):
    """A TRL config, its own refusals (a bf16 request on hardware without it...) as one line."""
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise BadInput(f"{cls.__name__}: {str(e).strip().splitlines()[0]}") from None


def _trim_metrics(path: Path, step: int) -> None:
    """Drop logged steps after the checkpoint a resumed run restarts from (they are redone)."""
    if not path.exists():
        return
    keep = [json.dumps(r) for r in _records(path) if r.get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


def _records(path: Path) -> list[dict]:
    """The JSON lines of a log; a line torn by a kill is skipped."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Milestones:
    """Plain progress lines where a rich bar would be hidden (stderr not a terminal: a log file,
    nohup, CI): one line each time another tenth of `total` is done, so a long run says it lives."""

    def __init__(self, label: str, total: int, enabled: bool, done: int = 0) -> None:
        """`done`: where a resumed run starts counting."""
        self.label, self.total, self.enabled = label, max(total, 1), enabled
        self.shown = done * 10 // self.total

    def update(self, done: int, info: str = "") -> None:
        tenth = done * 10 // self.total
        if self.enabled and tenth > self.shown:
            import sys

            self.shown = tenth
            print(f"{self.label}: {done}/{self.total}" + (f"  {info}" if info else ""), file=sys.stderr, flush=True)


def callbacks(out: str, total: int, label: str, time_limit_minutes: float | None = None) -> list:
    """The metrics log, the progress bar and the time limit, as transformers callbacks (made here
    so that importing this module does not import transformers)."""
    import time

    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        """Stop after a wall-clock budget, saving a checkpoint there (compute-matched comparisons)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.time()

        def on_step_end(self, args, state, control, **kwargs):
            if time_limit_minutes is not None and time.time() - self.t0 > 60 * time_limit_minutes:
                control.should_training_stop = True
                control.should_save = True

    class MetricsLog(TrainerCallback):
        """Every `on_log` record as one JSON line with its step: the file a plot or a table reads."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                rec = {"step": state.global_step, **{k: _plain(v) for k, v in logs.items()}}
                with (Path(out) / METRICS).open("a") as f:
                    f.write(json.dumps(rec) + "\n")

    class RichProgress(TrainerCallback):
        """A rich bar with the latest loss or reward, in place of transformers' tqdm bar."""

        def __init__(self) -> None:
            self.bar, self.task, self.info, self.lines = None, None, "", None

        def on_train_begin(self, args, state, control, **kwargs):
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console,
                                disable=not console.is_terminal)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, completed=state.global_step, info="")
            self.lines = Milestones(label, total, not console.is_terminal, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step, info=self.info)
                self.lines.update(state.global_step, self.info)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            shown = [f"{k} {logs[k]:.3f}" for k in ("loss", "reward", "frac_reward_zero_std") if k in logs]
            self.info = "  ".join(shown)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.stop()

    return [MetricsLog(), RichProgress(), TimeLimit()]


def _plain(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def quiet_trainer(trainer) -> None:
    """Remove transformers' own printing callbacks (our bar and log replace them)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)


def read_metrics(out: str | Path) -> list[dict]:
    path = Path(out) / METRICS
    return _records(path) if path.exists() else []


def finish(trainer, cfg: TrainConfig, resume_from: str | None) -> Path:
    """Train (from the checkpoint when resuming) and save the final model and tokenizer in `out`."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    quiet_trainer(trainer)
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(cfg.out)
    mark_lab(Path(cfg.out), cfg.model)
    return Path(cfg.out)


def mark_lab(out: Path, spec: str) -> None:
    """A model trained from a lab model keeps the lab prompt format (a config key transformers
    does not know and may drop on save)."""
    src = Path(model_path(spec)) / "config.json"
    dest = out / "config.json"
    if not (src.exists() and dest.exists()):
        return
    style = json.loads(src.read_text()).get("deliberate_prompt_style")
    cfg = json.loads(dest.read_text())
    if style and cfg.get("deliberate_prompt_style") != style:
        cfg["deliberate_prompt_style"] = style
        dest.write_text(json.dumps(cfg, indent=2) + "\n")
