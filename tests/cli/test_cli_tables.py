"""Every table and every --help reads whole at 80 columns: no "…", every name and flag intact.

Rich shrinks a table that does not fit and cuts what no longer fits with an ellipsis; at 80
columns that made mcts-mini-32 and mcts-mini-64 the same "mcts-m…" and `--rollout-temperatu…`.
Tables that need a model run are rendered from small fabricated summaries through the same
functions the commands print with.
"""

from __future__ import annotations

from dataclasses import fields

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.cli.tables import (
    compare_table,
    demo_table,
    noise_line,
    scaling_table,
    select_table,
    strategies_table,
    summary_table,
)
from deliberate.eval.metrics import summarize
from deliberate.eval.scaling import VARIANTS, budget_rule
from deliberate.search import DESCRIPTIONS, STRATEGIES

runner = CliRunner()


def at_80(renderable) -> str:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def assert_whole(text: str, *names: str) -> None:
    assert "…" not in text, text
    assert all(cell_len(line) <= 80 for line in text.splitlines()), text
    lines = text.splitlines()
    for name in names:  # each on one line, not folded across two
        assert any(name in line for line in lines), f"{name!r} not whole in:\n{text}"


def commands(group, path: tuple[str, ...] = ()):
    """Every command and subcommand (duck-typed: typer ships its own copy of click)."""
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if hasattr(cmd, "commands"):
            yield from commands(cmd, (*path, name))


ROOT = get_command(app)
ALL = [((), ROOT), *commands(ROOT)]


@pytest.mark.parametrize("path, cmd", ALL, ids=[" ".join(p) or "deliberate" for p, _ in ALL])
def test_help_at_80_columns_shows_every_flag_whole(path, cmd):
    r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    flags = [o for p in cmd.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)
             if o.startswith("--")]
    assert "--rollout-temperature" in flags or path != ("eval",)
    assert_whole(r.output, *flags, *getattr(cmd, "commands", {}))  # a group's subcommands too


def test_bench_help_lists_every_variant():
    r = runner.invoke(app, ["bench", "scaling", "--help"], env={"COLUMNS": "80"})
    assert_whole(r.output, *VARIANTS)


def math_summary(**extra) -> dict:
    samples = [{"answer": "1", "correct": True, "reward": 0.9}, {"answer": "2", "correct": False, "reward": 0.4}]
    rows = [{"answer": "1", "correct": True, "samples": samples, "independent_samples": True, "first_correct": False,
             "compute": {"tokens_generated": 123_456, "tokens_read": 9_876, "calls": 3, "wall_s": 1.5}}] * 3
    return {"task": "lab-en", "model": "lab", "strategy": "self-consistency", **summarize(rows),
            "out": "runs/eval/lab-en__lab__self-consistency__0123abcd-a-long-folder-name-that-does-not-fit", **extra}


def test_summary_table_at_80_columns():
    s = math_summary(errors=1, error_rate=0.01, grader_timeouts=1, verifier_calls=4, verifier_tokens=1000, capped=2)
    text = at_80(summary_table(s))
    assert_whole(text, "accuracy", "pass@2", "maj@2", "reward AUROC", "first attempt", "problems cut by the token cap")
    assert "0123abcd" in text.replace("\n", "").replace("│", "").replace(" ", "")  # the folder folds, whole


def test_a_translation_summary_leads_with_chrf_and_shows_no_exact_match():
    samples = [{"answer": "Tom has 3 pens.", "correct": False}, {"answer": "Tom had 3 pens.", "correct": False}]
    rows = [{"answer": "Tom had 3 pens.", "gold": "Tom has 3 pens.", "correct": False, "score": 60.0,
             "samples": samples, "independent_samples": True,
             "compute": {"tokens_generated": 10, "tokens_read": 10, "calls": 1, "wall_s": 0.1}}] * 5
    s = {"task": "lab-translate-en-zh", "model": "lab", "strategy": "greedy", **summarize(rows), "out": "runs/x"}
    assert s["metric"] == "chrf" and s["accuracy"] is None and s["correct"] is None and s["exact_match"] == 0.0
    assert not any(k.startswith(("pass@", "maj@", "test@")) for k in s)
    text = at_80(summary_table(s))
    body = [line for line in text.splitlines() if "│" in line and "metric" not in line]
    assert "chrF" in body[0]  # its own metric first
    assert_whole(text, "chrF (mean / corpus)", "best sample's chrF @2")
    assert "accuracy" not in text and "pass@" not in text and "maj@" not in text and "0.0%" not in text


def test_demo_table_and_noise_lines_at_80_columns():
    s = math_summary()
    runs = [("greedy", s), ("self-consistency (n=16)", s), ("best-of-n (n=16)", s)]
    assert_whole(at_80(demo_table("lab-en · lab · 30 problems", runs)), "self-consistency (n=16)", "best-of-n (n=16)")
    c = {"difference": 0.033, "difference_ci95": [-0.067, 0.133], "mcnemar_p": 0.62, "within_noise": True}
    line = noise_line("self-consistency (n=16)", c)
    assert line.startswith("self-consistency (n=16) - greedy: +3.3%") and line.endswith("within noise.")
    assert noise_line("x", {**c, "within_noise": False}).endswith("more than noise.")


def test_strategies_table_at_80_columns():
    configs = {name: STRATEGIES[name].Config for name in DESCRIPTIONS}
    text = at_80(strategies_table(DESCRIPTIONS, configs))
    assert_whole(text, *DESCRIPTIONS, *(f"{f.name}=" for c in configs.values() for f in fields(c)))


def test_list_commands_at_80_columns():
    from deliberate.backends import MODELS
    from deliberate.tasks import TASKS

    for command, names in (("tasks", TASKS), ("models", MODELS), ("strategies", DESCRIPTIONS)):
        r = runner.invoke(app, [command], env={"COLUMNS": "80"})
        assert r.exit_code == 0, r.output
        assert_whole(r.output, *names)


def test_lab_select_table_at_80_columns():
    rows = [{"step": 2000, "task": t, "greedy": 0.575, "sc": 0.665, "pass@16": 0.85, "sc_gain": 0.09, "pass_gap": 0.275}
            for t in ("lab-en-valid", "lab-zh-valid")]
    text = at_80(select_table("runs/lab-model · validation split · 200 problems · T=0.7", 16, rows))
    assert_whole(text, "lab-en-valid", "lab-zh-valid", "pass@16", "+27.5%", "self-consistency")


def test_compare_table_at_80_columns():
    side = {"label": "self-consistency n=16 temperature=1.0", "model": "gguf:/models/some-long-name.gguf",
            "accuracy": 0.604, "ci95": [0.561, 0.646], "only_this_right": 42, "tokens_per_problem": 977.0, "errors": 0}
    text = at_80(compare_table({"task": "lab-en", "n_shared": 500, "a": side, "b": side}))
    assert_whole(text, "60.4%", "right where", "tokens per")


def scaling_result(chrf: bool = False) -> dict:
    def cell(label, budget, options):
        c = {"strategy": label, "budget": budget, "tokens_per_problem": 977.0, "x_greedy": 16.1, "wall_s": 1549.0,
             "setting": options or {}}
        if chrf:
            return {**c, "accuracy": None, "ci95": None, "chrf": 61.6, "oracle_chrf@16": 75.7}
        return {**c, "accuracy": 0.593, "ci95": [0.537, 0.647], "test@16": 0.817}

    cells = [cell(label, b, knob(b, 60.7)) for label, (_, knob) in VARIANTS.items() for b in (1, 4, 16)
             if knob(b, 60.7) is not None]
    return {"task": "lab-translate-en-zh" if chrf else "lab-en", "model": "lab", "n_problems": 300, "seed": 0,
            "cap": False, "budget_rule": budget_rule(False), "greedy": cell("greedy", None, {}), "cells": cells}


@pytest.mark.parametrize("chrf", [False, True])
def test_scaling_table_at_80_columns_keeps_every_variant_apart(chrf):
    result = scaling_result(chrf)
    text = at_80(scaling_table(result))
    names = [f"{c['strategy']} {c['budget']}x" for c in result["cells"]]
    words = {w for c in result["cells"] for kv in c["setting"].items() for w in [f"{kv[0]}={kv[1]}"]}
    assert_whole(text, *names, *words, "the mean each")
    assert ("accuracy" in text) != chrf
