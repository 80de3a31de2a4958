"""The import graph: no cycles, no module importing the package's top, every module importable alone."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted((SRC / "deliberate").rglob("*.py")):
        name = ".".join(f.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every deliberate module `name` imports, at module level or inside a function: a cycle
    hidden in a function-level import is still a cycle."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("deliberate"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("deliberate")}
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


def test_no_module_inside_the_package_imports_its_top():
    known = modules()
    offenders = [name for name, path in known.items()
                 if name not in ("deliberate", "deliberate.__main__") and "deliberate" in imports_of(name, path, known)]
    assert offenders == []


@pytest.mark.timeout(300)
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """A fresh interpreter loads the heavy third-party libraries once, then forks one child per
    module; each child starts with no deliberate module loaded and imports just that one."""
    names = sorted(n for n in modules() if n != "deliberate.__main__")
    script = textwrap.dedent(f"""
        import importlib, os, sys, traceback
        import torch, transformers, typer, rich, sympy  # loaded once; deliberate is not
        assert not any(m.startswith("deliberate") for m in sys.modules)
        failed = []
        for name in {names!r}:
            pid = os.fork()
            if pid == 0:
                try:
                    importlib.import_module(name)
                    os._exit(0)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            if status:
                failed.append(name)
        print("FAILED", failed)
        sys.exit(1 if failed else 0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=280,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
