"""`deliberate train sft | grpo | star | prm | orm | plot`: the trainers (each flag a field of
its config) and their curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deliberate.cli.common import app, err, fail_cleanly, out
from deliberate.cli.options import with_config_options
from deliberate.errors import BadInput
from deliberate.train.grpo import GRPORunConfig
from deliberate.train.labels import LabelConfig
from deliberate.train.orm import ORMRunConfig
from deliberate.train.prm import PRMRunConfig
from deliberate.train.sft import SFTRunConfig
from deliberate.train.star import StarConfig

train_app = typer.Typer(help="Train the generator (SFT, GRPO, STaR on TRL) and its verifiers (PRM, ORM).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


def _warn(line: str) -> None:
    err.print(line, markup=False, highlight=False)


@train_app.command("sft")
@fail_cleanly
@with_config_options(SFTRunConfig)
def sft(**options: Any) -> None:
    """Supervised fine-tuning on question/solution rows (loss on the solution only)."""
    from deliberate.train.sft import train_sft

    out.print(f"model saved to {train_sft(SFTRunConfig(**options))}")


@train_app.command("grpo")
@fail_cleanly
@with_config_options(GRPORunConfig)
def grpo(**options: Any) -> None:
    """GRPO (DeepSeek-R1) with the grader as the accuracy reward and R1's format reward."""
    from deliberate.train.grpo import train_grpo

    out.print(f"model saved to {train_grpo(GRPORunConfig(**options), warn=_warn)}")


@train_app.command("star")
@fail_cleanly
@with_config_options(StarConfig)
def star(**options: Any) -> None:
    """STaR: sample, keep right rationales, rationalize failures, fine-tune; repeat."""
    from deliberate.train.star import train_star

    rows = train_star(StarConfig(**options), log=_warn)
    for r in rows:
        out.print(f"iteration {r['iteration']}: validation greedy {r['valid_accuracy']:.1%} "
                  f"({r['kept']} rationales kept, {r['rationalized']} rationalized)")


def _show_eval(path: Path) -> None:
    """The held-out scores a verifier run wrote, in one line."""
    import json

    from deliberate.train.prm import EVAL_FILE

    if not (path / EVAL_FILE).exists():
        return
    e = json.loads((path / EVAL_FILE).read_text())
    show = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    out.print(f"held out: {e['steps']:,} steps of {e['rows']:,} solutions, step AUROC {show(e['step_auroc'])}, "
              f"accuracy at 0.5 {e['step_accuracy']:.1%}; within-problem AUROC {show(e['within_problem_auroc_min'])}"
              f" (min step), {show(e['within_problem_auroc_last'])} (last step)")


@train_app.command("prm")
@fail_cleanly
@with_config_options(PRMRunConfig)
def prm(**options: Any) -> None:
    """A process reward model: a head at each step's last token, trained on step labels (deliberate label)."""
    from deliberate.train.prm import train_prm

    path = train_prm(PRMRunConfig(**options))
    out.print(f"PRM saved to {path}; use it as --reward prm:{path}")
    _show_eval(path)


@train_app.command("orm")
@fail_cleanly
@with_config_options(ORMRunConfig)
def orm(**options: Any) -> None:
    """An outcome reward model on TRL's RewardTrainer: right against wrong solutions of one problem."""
    from deliberate.train.orm import train_orm

    path = train_orm(ORMRunConfig(**options))
    out.print(f"ORM saved to {path}; use it as --reward orm:{path}")
    _show_eval(path)


@app.command("label")
@fail_cleanly
@with_config_options(LabelConfig)
def label(**options: Any) -> None:
    """Step labels for a PRM by Monte Carlo rollouts (Math-Shepherd); --first-error: OmegaPRM's binary search."""
    from rich.progress import Progress

    from deliberate.train.labels import label_task

    with Progress(console=err, transient=True) as bar:
        job = bar.add_task("labelling problems", total=None)
        totals = label_task(LabelConfig(**options), on_batch=lambda d, n: bar.update(job, completed=d, total=n))
    out.print(f"{totals['solutions']} solutions of {totals['problems']} problems, {totals['steps']} steps "
              f"({totals['right_steps']:.1%} labelled right); {totals['rollouts']:,} rollouts, "
              f"{totals['rollout_tokens']:,} rollout tokens; rows in {totals['out']}")


@train_app.command("plot")
@fail_cleanly
def plot(runs: Annotated[list[Path], typer.Argument(help="Training output folders (their metrics.jsonl).")],
         out_file: Annotated[Path, typer.Option("--out", help="Image to write (.png, .svg).")] = Path("curves.png"),
         keys: Annotated[str, typer.Option(help="Comma-separated logged keys, one panel each.")]
         = "reward,frac_reward_zero_std,loss",
         smooth: Annotated[int, typer.Option(help="Moving average over this many logged steps.")] = 10) -> None:
    """Plot the logged curves of one or more training runs."""
    from deliberate.train.plot import plot_run

    if smooth < 1:
        raise BadInput(f"--smooth must be >= 1, got {smooth}.")
    out.print(f"wrote {plot_run(runs, out_file, tuple(k.strip() for k in keys.split(',') if k.strip()), smooth)}")
