"""`deliberate serve` (an OpenAI-compatible server with search) and `deliberate view` (a search tree as a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deliberate.cli.common import app, fail_cleanly, out
from deliberate.cli.options import with_config_options
from deliberate.errors import BadInput
from deliberate.serve.config import ServeConfig


@app.command("serve")
@fail_cleanly
@with_config_options(ServeConfig)
def serve(**options: Any) -> None:
    """Serve a model over the OpenAI API; STRATEGY@MODEL (or a `deliberate` object) runs a search."""
    from importlib.util import find_spec

    if find_spec("fastapi") is None or find_spec("uvicorn") is None:
        raise BadInput("deliberate serve needs FastAPI and uvicorn: pip install 'deliberate[serve]'.")
    from deliberate.serve import serve as run

    run(ServeConfig(**options), log=out.print)


@app.command("view")
@fail_cleanly
def view(tree: Annotated[Path, typer.Argument(help="A search tree: JSON as a run or the server returned it.")],
         out_file: Annotated[Path | None, typer.Option("--out", help="The page to write (default: TREE.html).")]
         = None) -> None:
    """Write one self-contained HTML page of a search tree: nodes, values, visits, the chosen path."""
    from deliberate.serve.viewer import read_tree, tree_page

    dest = out_file or tree.with_suffix(".html")
    dest.write_text(tree_page(read_tree(tree)), encoding="utf-8")
    out.print(f"wrote {dest}")
