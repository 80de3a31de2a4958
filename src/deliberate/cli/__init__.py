"""The `deliberate` command: a thin layer over the library. Every library error is one line, exit 2.

Each module registers its commands on the apps of `deliberate.cli.common` when imported; this
file imports them all and runs the app. No module here imports this one, so there is no cycle.
"""

from __future__ import annotations

from importlib import import_module

from deliberate.cli.common import app

# Importing a module registers its commands, and `deliberate --help` lists them in this order.
COMMAND_MODULES = ("run", "catalog", "lab", "train", "serve", "bench", "grading", "runs")
for _name in COMMAND_MODULES:
    import_module(f"deliberate.cli.{_name}")

__all__ = ["app", "main"]


def main() -> None:
    """The console script: the app, with the weight-loading bars of transformers off."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars would bury our own progress and errors
    app()
