"""What every command module shares: the typer apps, the two consoles, the one-line error rule
and the run options (model, seed, threads).

It lives apart from the package's `__init__` so that the command modules can import it while
`__init__` imports them to register their commands: when the shared pieces lived in `cli.py`,
that file and the modules it imported at its bottom imported each other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from deliberate.errors import DeliberateError

app = typer.Typer(help="Deliberate reasoning for any language model, measured.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
lab_app = typer.Typer(help="The lab model: train it, export it.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
bench_app = typer.Typer(help="Benchmarks: accuracy against compute, and the engine's speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
out = Console()
err = Console(stderr=True)

Model = Annotated[str, typer.Option("--model", "-m",
                                    help="Model spec: lab, smollm2, gguf:PATH, hf:ID, or a directory.")]
Strat = Annotated[str, typer.Option("--strategy", "-s", help="Strategy name (see `deliberate strategies`).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed; the same seed gives the same result.")]
Threads = Annotated[int | None, typer.Option("--threads", help="torch CPU threads (default: torch's).")]
# in a help panel of its own: its long flag would squeeze every other option's column at 80 columns
PrefixCache = Annotated[bool, typer.Option("--prefix-cache/--no-prefix-cache",
                                           help="Reuse the key/values of shared prefixes across calls (the "
                                                "outputs are the same either way; off is for comparison).",
                                           rich_help_panel="Engine")]

P = ParamSpec("P")
R = TypeVar("R")


def fail_cleanly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DeliberateError as e:
            typer.echo(f"error: {e}", err=True)  # one unwrapped line, whatever the terminal width
            raise typer.Exit(2) from None

    return wrapper
