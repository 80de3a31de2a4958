"""`deliberate train sft | grpo | star`: the trainers, each flag a field of the trainer's config."""

from __future__ import annotations

from typing import Any

import typer

from deliberate.cli.common import app, err, fail_cleanly, out
from deliberate.cli.options import with_config_options
from deliberate.train.grpo import GRPORunConfig
from deliberate.train.sft import SFTRunConfig
from deliberate.train.star import StarConfig

train_app = typer.Typer(help="Train the generator: SFT, GRPO and STaR on TRL.", no_args_is_help=True)
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
