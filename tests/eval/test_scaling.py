"""The scaling bench: budgets set each strategy's knob, cells resume, the plot is written."""

import json

import pytest

from deliberate import BadInput
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.eval.scaling import VARIANTS, markdown_table, plot_scaling, run_scaling
from deliberate.tasks import Problem, Task

TABLE = {"Q\n": [("a\n", 0.9), ("The answer is 2.", 0.4)], "a\n": [("The answer is 1.", 0.9)],
         "R\n": [("The answer is 5.", 0.8)]}
TASK = Task("toy", "toy", lambda: [Problem("q", "Q", "1"), Problem("r", "R", "5")])


def test_budgets_set_the_knobs():
    assert VARIANTS["self-consistency"][1](16, 60.0) == {"n": 16}
    assert VARIANTS["beam"][1](16, 60.0) == {"width": 4, "expand": 4}
    assert VARIANTS["beam"][1](4, 60.0) == {"width": 2, "expand": 2}
    assert VARIANTS["dvts"][1](16, 60.0) == {"width": 4, "expand": 4, "subtrees": 4}
    assert VARIANTS["reflection"][1](1, 60.0) is None and VARIANTS["reflection"][1](4, 60.0) == {"rounds": 3}
    assert VARIANTS["mcts-step"][1](16, 60.0)["iterations"] == 16
    assert VARIANTS["mcts-mini-64"][1](16, 60.0)["iterations"] == round(16 * 60 / (3 * 60 + 30))


def test_scaling_runs_every_cell_resumes_and_plots(tmp_path):
    b = ScriptedBackend(from_table(TABLE))
    names = ["self-consistency", "best-of-n", "mcts-step", "reflection"]
    res = run_scaling(TASK, b, budgets=[1, 2], strategies=names, limit=None, out_dir=tmp_path)
    cells = [(c["strategy"], c["budget"]) for c in res["cells"]]
    assert cells == [("self-consistency", 1), ("self-consistency", 2), ("best-of-n", 1), ("best-of-n", 2),
                     ("mcts-step", 1), ("mcts-step", 2), ("reflection", 2)]
    assert res["greedy"]["accuracy"] == 0.5 and res["greedy"]["x_greedy"] == 1.0  # greedy on Q stops at "a"
    sc2 = res["cells"][1]
    assert sc2["tokens_per_problem"] == pytest.approx(2 * res["greedy"]["tokens_per_problem"], rel=0.5)
    calls = b.calls
    again = run_scaling(TASK, b, budgets=[1, 2], strategies=names, limit=None, out_dir=tmp_path)
    assert b.calls == calls  # every cell was already on disk
    assert [c["accuracy"] for c in again["cells"]] == [c["accuracy"] for c in res["cells"]]
    saved = json.loads((tmp_path / "scaling__toy__scripted" / "scaling.json").read_text())
    assert len(saved["cells"]) == 7
    md = markdown_table(res)
    assert md.count("\n| ") == 2 + 8 and "| mcts-step | 2x |" in md and "| greedy |  | 50.0%" in md
    png = plot_scaling(res, tmp_path / "plot.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_budget_forcing_is_skipped_without_a_think_format(tmp_path):
    res = run_scaling(TASK, ScriptedBackend(from_table(TABLE), prompt_style="completion"), budgets=[2],
                      strategies=["budget-forcing"],
                      limit=1, out_dir=tmp_path)
    assert res["cells"] == [] and "budget-forcing" in res["skipped"]


def test_budget_forcing_runs_on_a_model_whose_format_thinks():
    """The lab format thinks in <think>…</think> though `</think>` is no single token of its
    vocabulary: the bench asks the format, as the strategy's own check does."""
    from deliberate.eval.scaling import skip_reason

    lab_like = ScriptedBackend(from_table(TABLE), prompt_style="lab")
    assert not lab_like.capabilities.think_format and skip_reason("budget-forcing", TASK, lab_like) is None
    plain = ScriptedBackend(from_table(TABLE), prompt_style="completion")
    assert skip_reason("budget-forcing", TASK, plain) is not None


def test_bad_bench_settings(tmp_path):
    with pytest.raises(BadInput, match="budgets must be >= 1"):
        run_scaling(TASK, ScriptedBackend(from_table(TABLE)), budgets=[0], strategies=["beam"], limit=1,
                    out_dir=tmp_path)
    with pytest.raises(BadInput, match="unknown strategy 'alphazero'"):
        run_scaling(TASK, ScriptedBackend(from_table(TABLE)), budgets=[1], strategies=["alphazero"], limit=1,
                    out_dir=tmp_path)


def test_every_variant_has_its_own_colour_and_marker_in_every_plot():
    from deliberate.eval.scaling import strategy_style

    styles = [strategy_style(label) for label in VARIANTS]
    assert len({color for color, _ in styles}) == len(VARIANTS)  # before: best-of-n and self-consistency both blue
    assert len({marker for _, marker in styles}) == len(VARIANTS)
    assert strategy_style("dvts") == strategy_style("dvts") != strategy_style("mcts-step")
    assert strategy_style("from-an-older-bench")[0] not in {color for color, _ in styles}


def test_the_docs_list_every_variant_as_the_code_defines_them():
    from pathlib import Path

    from deliberate.eval.scaling import variants_markdown

    docs = Path(__file__).resolve().parents[2] / "docs"
    scaling = (docs / "scaling.md").read_text(encoding="utf-8")
    table = scaling.split("<!-- variants-table:")[1].split("-->\n", 1)[1]
    assert table.split("<!-- /variants-table -->")[0] == variants_markdown()  # regenerate with variants_markdown()
    search = (docs / "search.md").read_text(encoding="utf-8")
    listed = search.split("<!-- variants:")[1].split("-->\n", 1)[1].split("\n\n")[0]
    assert " ".join(listed.split()).rstrip(".") == ", ".join(f"`{v}`" for v in VARIANTS)


def test_a_translation_bench_has_no_accuracy_interval_and_still_tabulates_and_plots(tmp_path):
    greedy = {"strategy": "greedy", "budget": None, "accuracy": None, "ci95": None, "chrf": 65.2,
              "oracle_chrf@1": 65.2, "tokens_per_problem": 36.0, "x_greedy": 1.0, "wall_s": 1.0, "setting": {}}
    cell = {**greedy, "strategy": "best-of-n", "budget": 4, "chrf": 61.9, "tokens_per_problem": 146.0, "x_greedy": 4.1,
            "setting": {"n": 4}}
    res = {"task": "lab-translate-en-zh", "model": "lab", "n_problems": 2, "seed": 0, "greedy": greedy, "cells": [cell]}
    assert "| best-of-n | 4x | 61.9 |" in markdown_table(res)
    assert plot_scaling(res, tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_rewards_multiply_the_strategies_that_take_one_and_cells_report_their_gain(tmp_path):
    b = ScriptedBackend(from_table(TABLE))
    res = run_scaling(TASK, b, budgets=[4], strategies=["self-consistency", "best-of-n"], limit=None,
                      out_dir=tmp_path, rewards=["confidence", "oracle"])
    names = [c["strategy"] for c in res["cells"]]
    assert names == ["self-consistency", "best-of-n+confidence", "best-of-n+oracle"]  # SC takes no reward
    oracle = res["cells"][2]
    assert oracle["reward"] == "oracle" and oracle["variant"] == "best-of-n"
    assert oracle["vs_greedy"] == pytest.approx(oracle["accuracy"] - res["greedy"]["accuracy"])
    lo, hi = oracle["vs_greedy_ci95"]
    assert lo <= oracle["vs_greedy"] <= hi
    test = oracle["test@4"]
    if test > res["greedy"]["accuracy"]:
        assert oracle["oracle_gap_share"] == pytest.approx(1.0)  # the answer key finds every right sample
    assert oracle["reward_hacked"] is False
    assert "vs greedy (paired 95% CI)" in markdown_table(res)


def test_against_greedy_flags_a_pick_worse_than_a_random_sample(tmp_path):
    from deliberate.eval.scaling import against_greedy

    def run(name, right):
        d = tmp_path / name
        d.mkdir()
        (d / "results.jsonl").write_text("".join(json.dumps({"id": str(i), "correct": c}) + "\n"
                                                 for i, c in enumerate(right)))
        return str(d)

    greedy = {"accuracy": 0.5, "out": run("g", [True, True, False, False])}
    cell = {"accuracy": 0.25, "out": run("c", [True, False, False, False]), "test@4": 0.75, "pass@1": 0.4,
            "reward": "prm:x"}
    got = against_greedy(cell, greedy)
    assert got["vs_greedy"] == -0.25 and got["reward_hacked"] is True
    assert got["oracle_gap_share"] == pytest.approx(-0.25 / 0.25)
    assert "reward_hacked" not in against_greedy({**cell, "reward": None}, greedy)  # no reward, no pick to judge


def test_one_temperature_reaches_every_variant_that_samples_and_only_those(tmp_path):
    from deliberate.eval.scaling import sampling_options

    assert sampling_options("mcts-step", 0.5) == {"temperature": 0.5, "rollout_temperature": 0.5}
    assert sampling_options("best-of-n", 0.5) == {"temperature": 0.5}
    assert sampling_options("reflection", 0.5) == {}  # greedy by default: stays greedy
    assert sampling_options("beam", None) == {}
    b = ScriptedBackend(from_table(TABLE))
    res = run_scaling(TASK, b, budgets=[2], strategies=["self-consistency", "reflection"], limit=None,
                      out_dir=tmp_path, temperature=0.3)
    sc, refl = res["cells"]
    assert sc["options"]["temperature"] == 0.3 and sc["setting"]["temperature"] == 0.3
    assert sc["out"].endswith("self-consistency__b2__t0.3")
    assert refl["options"]["temperature"] == 0.0 and refl["out"].endswith("reflection__b2")
    default = run_scaling(TASK, b, budgets=[2], strategies=["self-consistency"], limit=None, out_dir=tmp_path)
    assert default["cells"][0]["options"]["temperature"] == 0.7  # its own default, in its own folder
    with pytest.raises(BadInput, match="temperature must be > 0"):
        run_scaling(TASK, b, budgets=[2], strategies=["beam"], limit=None, out_dir=tmp_path, temperature=0)


def test_each_kind_of_reward_draws_its_own_line_style():
    from deliberate.eval.scaling import reward_dash

    styles = [reward_dash(x) for x in ("beam", "beam+confidence", "beam+prm:lab", "beam+orm:x", "beam+tool",
                                       "beam+lm:runs/judge")]
    assert styles[0] == styles[1] == "-"
    assert len({str(s) for s in styles[1:]}) == 5  # confidence, prm, orm, tool and a judge all differ
