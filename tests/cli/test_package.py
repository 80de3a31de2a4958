"""The CLI package's import graph: no module imports the package itself (`deliberate.cli`,
whose `__init__` imports them all) and no command module imports another, so the cycle the
single `cli.py` had with its sub-modules cannot come back."""

from __future__ import annotations

import ast
from pathlib import Path

import deliberate.cli
from deliberate.cli import COMMAND_MODULES

PACKAGE = Path(deliberate.cli.__file__).parent
SHARED = {"common", "options", "tables"}  # what command modules may import from the package


def imported(path: Path) -> set[str]:
    """The modules a file imports: `import a.b` and `from a.b import c` give a.b, and
    `from deliberate import cli` gives deliberate.cli; relative imports resolved in the package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(["deliberate", "cli"][:3 - node.level] + ([module] if module else []))
            names.add(module)
            if module in ("deliberate", "deliberate.cli"):  # `from deliberate import cli`, `from . import run`
                names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_no_module_imports_the_package_or_another_command():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert set(modules) == SHARED | set(COMMAND_MODULES)  # a new command module must be registered
    for stem, path in modules.items():
        ours = {n for n in imported(path) if n == "deliberate.cli" or n.startswith("deliberate.cli.")}
        assert "deliberate.cli" not in ours, f"{stem} imports deliberate.cli, the package"
        allowed = {f"deliberate.cli.{s}" for s in SHARED - {stem}}
        if stem in SHARED:  # the shared modules import no command module
            allowed = {f"deliberate.cli.{s}" for s in ("common",) if s != stem}
        assert ours <= allowed, f"{stem} imports {sorted(ours - allowed)}"


def test_the_old_modules_are_gone():
    assert not list(PACKAGE.parent.glob("cli*.py"))
