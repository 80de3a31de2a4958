"""`deliberate lab train`, `lab select`, `lab export` and `lab grow`: the lab model's recipe and its snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deliberate.cli.common import Threads, err, fail_cleanly, lab_app, out
from deliberate.cli.tables import select_table
from deliberate.errors import BadInput


@lab_app.command("train")
@fail_cleanly
def lab_train(out_dir: Annotated[str, typer.Option("--out", help="Output folder (checkpoints, metrics).")]
              = "runs/lab-model",
              max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: the recipe's).")] = None,
              threads: Threads = None,
              overwrite: Annotated[bool, typer.Option(help="Replace an output folder that holds a run.")] = False,
              resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False) -> None:
    """Train a lab model from scratch: `train sft` with the shipped model's recipe."""
    from deliberate.lab.train import recipe
    from deliberate.train.sft import train_sft

    overrides = {k: v for k, v in dict(max_steps=max_steps, threads=threads).items() if v is not None}
    path = train_sft(recipe(out_dir, overwrite=overwrite, resume=resume, **overrides))
    out.print(f"model saved to {path}; checkpoints beside it (score them with `deliberate lab select {path}`)")


@lab_app.command("select")
@fail_cleanly
def lab_select(run_dir: Annotated[Path, typer.Argument(help="A training folder with step-N snapshots.")],
               limit: Annotated[int, typer.Option(help="Validation problems per language.")] = 200,
               n: Annotated[int, typer.Option("--n", help="Samples for self-consistency and pass@n.")] = 16,
               temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
               min_step: Annotated[int, typer.Option(help="Skip snapshots before this step.")] = 0,
               threads: Threads = None) -> None:
    """Score every checkpoint on the validation split (never the test split): greedy, SC, pass@n."""
    from deliberate.lab.select import select

    if limit < 1 or n < 2:
        raise BadInput(f"--limit must be >= 1 and --n >= 2, got {limit} and {n}.")

    def show(r: dict) -> None:
        err.print(f"step {r['step']} {r['task']}: greedy {r['greedy']:.1%}, SC {r['sc']:.1%}")

    rows = select(run_dir, limit=limit, n=n, temperature=temperature, threads=threads, min_step=min_step, on_row=show)
    out.print(select_table(f"{run_dir} · validation split · {limit} problems · T={temperature}", n, rows))


@lab_app.command("export")
@fail_cleanly
def lab_export(src: Annotated[Path, typer.Argument(help="A training folder or one of its step-N snapshots.")],
               dest: Annotated[Path, typer.Argument(help="Where to put the model files.")],
               fp16: Annotated[bool, typer.Option("--fp16", help="store the weights in half precision "
                                                   "but the embeddings and norms (about half the size; "
                                                   "loaded back as float32)")] = False,
               style: Annotated[str, typer.Option(help="prompt style: lab, or lab-r1 for a model whose "
                                                  "prompt opens <think> (GRPO with --think)")] = "lab") -> None:
    """Copy a trained model's loadable files (no optimizer state), marked as a lab model."""
    from deliberate.lab.train import export_model

    if not (src / "config.json").is_file():
        raise BadInput(f"no model at {src} (config.json missing).")
    if style not in ("lab", "lab-r1"):
        raise BadInput(f"--style must be lab or lab-r1, got {style!r}.")
    out.print(f"exported to {export_model(src, dest, fp16=fp16, style=style)}")


@lab_app.command("grow")
@fail_cleanly
def lab_grow(src: Annotated[str, typer.Argument(help="A model: lab, lab-r1, lab-v1 or a folder (Llama-style).")],
             dest: Annotated[Path, typer.Argument(help="Where to write the deeper model.")],
             layers: Annotated[int, typer.Option(help="Blocks of the grown model (up to 4x the source's).")]) -> None:
    """A deeper copy that computes what the source does (LLaMA Pro's block expansion), to train on."""
    from deliberate.lab.grow import grow_model
    from deliberate.train.common import model_path

    path = Path(model_path(src))
    if not (path / "config.json").is_file():
        raise BadInput(f"no model at {path} (config.json missing).")
    if dest.exists() and any(dest.iterdir()):
        raise BadInput(f"{dest} is not empty; pick a new folder.")
    out.print(f"grown to {layers} blocks: {grow_model(path, dest, layers)}")
