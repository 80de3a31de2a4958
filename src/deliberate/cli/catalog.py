"""`deliberate tasks`, `strategies` and `models`: what there is to run, by name."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deliberate.cli.common import app, out
from deliberate.cli.options import config_rows
from deliberate.cli.tables import options_table, strategies_table


@app.command()
def tasks() -> None:
    """List the tasks."""
    from deliberate.tasks import TASKS

    table = Table("task", "description")
    table.columns[0].no_wrap = True  # names whole; descriptions wrap
    for name, t in TASKS.items():
        table.add_row(name, t.description)
    table.add_row("jsonl:PATH", "your own JSON Lines file with question and answer fields")
    out.print(table)


@app.command()
def strategies(options: Annotated[bool, typer.Option(
        "--options", help="Then each strategy's options: flag, type, default and what it does.")] = False) -> None:
    """List the strategies."""
    from deliberate.search import DESCRIPTIONS, STRATEGIES

    out.print(strategies_table(DESCRIPTIONS, {name: STRATEGIES[name].Config for name in DESCRIPTIONS}))
    if options:  # the same fields `solve` and `eval` take as flags, from the same configs
        for name in DESCRIPTIONS:
            out.print()
            out.print(options_table(name, config_rows(STRATEGIES[name].Config)))


@app.command()
def models() -> None:
    """List the model specs."""
    from deliberate.backends import MODELS

    table = Table("spec", "model")
    table.columns[0].no_wrap = True
    for name, d in MODELS.items():
        table.add_row(name, d)
    out.print(table)
