"""The trainers on the lab model: a few steps each, exact resume, the output-folder rule, the
step-0 reward checks, and the command line's one-line errors. TRL runs on CPU here."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.errors import BadInput
from deliberate.train.common import read_metrics
from deliberate.train.grpo import GRPORunConfig, step0_check, train_grpo
from deliberate.train.rewards import accuracy
from deliberate.train.sft import SFTRunConfig, train_sft

pytest.importorskip("trl")

SFT = dict(data="lab", examples=64, max_steps=4, save_steps=2, batch_size=2, packing=True, max_length=128, threads=1)
GRPO = dict(task="lab-en-train", limit=8, max_steps=3, save_steps=2, batch_size=4, num_generations=4,
            max_completion_length=48, threads=1, rewards="accuracy,think")


def losses(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out) if "loss" in r}


def resumed_copy(src, tmp_path, keep: int):
    """A copy of a finished run cut back to its checkpoint at step `keep`, as if killed after it."""
    dst = tmp_path / "resumed"
    shutil.copytree(src, dst)
    for ck in dst.glob("checkpoint-*"):
        if int(ck.name.split("-")[1]) > keep:
            shutil.rmtree(ck)
    return dst


def test_sft_trains_saves_a_lab_model_and_resumes_exactly(tmp_path):
    out = train_sft(SFTRunConfig(out=str(tmp_path / "run"), **SFT))
    whole = losses(out)
    assert sorted(whole) == [1, 2, 3, 4] and all(v > 0 for v in whole.values())
    assert json.loads((out / "config.json").read_text())["deliberate_prompt_style"] == "lab"
    assert (out / "checkpoint-2").is_dir() and (out / "model.safetensors").is_file()
    again = resumed_copy(out, tmp_path, keep=2)
    train_sft(SFTRunConfig(out=str(again), resume=True, **SFT))
    assert losses(again) == whole  # steps 3 and 4 redone from the checkpoint: the same losses
    from deliberate import load_backend

    assert load_backend(str(out), threads=1).prompt_style == "lab"  # the trained model loads as a lab model


def test_an_output_folder_is_never_overwritten_unless_asked(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(BadInput, match="already holds files; pass --overwrite"):
        train_sft(SFTRunConfig(out=str(tmp_path / "run"), **SFT))
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    with pytest.raises(BadInput, match="no checkpoint-N folder"):
        train_sft(SFTRunConfig(out=str(tmp_path / "run"), resume=True, **SFT))
    with pytest.raises(BadInput, match="contradict"):
        train_sft(SFTRunConfig(out=str(tmp_path / "run"), resume=True, overwrite=True, **SFT))


def test_a_resume_with_other_settings_is_refused(tmp_path):
    out = train_sft(SFTRunConfig(out=str(tmp_path / "run"), **{**SFT, "max_steps": 2}))
    with pytest.raises(BadInput, match="differ from the run.*learning_rate"):
        train_sft(SFTRunConfig(out=str(out), resume=True, **{**SFT, "learning_rate": 1e-3}))


def test_grpo_steps_log_rewards_and_zero_spread_and_resume_exactly(tmp_path):
    warnings: list[str] = []
    out = train_grpo(GRPORunConfig(out=str(tmp_path / "run"), **GRPO), warn=warnings.append)
    recs = [r for r in read_metrics(out) if "loss" in r]
    assert [r["step"] for r in recs] == [1, 2, 3]
    for r in recs:  # the share of zero-spread groups and each reward's mean, every step
        assert 0.0 <= r["frac_reward_zero_std"] <= 1.0
        assert 0.0 <= r["rewards/accuracy/mean"] <= 1.0 and "rewards/think/mean" in r
    again = resumed_copy(out, tmp_path, keep=2)
    train_grpo(GRPORunConfig(out=str(again), resume=True, **GRPO), warn=warnings.append)
    assert losses(again)[3] == pytest.approx(losses(out)[3], abs=1e-6)


def test_step0_checks_every_reward_on_a_real_group():
    cfg = GRPORunConfig(**{**GRPO, "rewards": "accuracy,tests.train.test_trainers:constant"})
    rows = [{"prompt": "Tom has 3 apples. Tom buys 4 more. How many apples does Tom have now?\n", "gold": "7",
             "task": "lab-en"}]
    warned: list[str] = []
    seen = step0_check(cfg, rows, [accuracy, constant], warned.append)
    assert len(seen["accuracy"]) == 4 and set(seen["accuracy"]) <= {0.0, 1.0}
    assert any("tests.train.test_trainers:constant" in w and "same value" in w for w in warned)
    with pytest.raises(BadInput, match="one value per completion"):
        step0_check(cfg, rows, [accuracy, lambda **kw: [1.0]], warned.append)


def constant(prompts, completions, **_):
    return [0.5] * len(completions)


def test_grpo_options_are_checked_before_anything_loads(tmp_path):
    for bad, msg in [({"num_generations": 3}, "multiple of --num-generations"),
                     ({"num_generations": 1, "batch_size": 4}, "at least|>= 2"),
                     ({"loss_type": "ppo"}, "--loss-type"), ({"rewards": "nosuch"}, "unknown reward"),
                     ({"reward_weights": "1"}, "1 values for 2 rewards")]:
        with pytest.raises(BadInput, match=msg):
            train_grpo(GRPORunConfig(out=str(tmp_path / "x"), **{**GRPO, **bad}))
    assert not (tmp_path / "x").exists()


def test_the_train_commands_fail_in_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q", "solution": "S"}\n{"question": "Q2"}\n')
    r = CliRunner().invoke(app, ["train", "sft", "--data", str(bad), "--out", str(tmp_path / "o"), "--max-steps", "1"])
    assert r.exit_code == 2 and f"{bad}:2" in r.output and "solution" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", "grpo", "--num-generations", "3", "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "--num-generations" in r.output
    r = CliRunner().invoke(app, ["train", "sft", "--model", "smollm2", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "GGUF" in r.output
    r = CliRunner().invoke(app, ["train", "star", "--help"])
    assert r.exit_code == 0 and "--rationalize" in r.output and "--valid-task" in r.output


def test_a_time_limit_stops_with_a_checkpoint_and_the_curves_plot(tmp_path):
    from deliberate.train.plot import plot_run

    out = train_sft(SFTRunConfig(out=str(tmp_path / "run"), time_limit_minutes=1e-4, **SFT))
    assert sorted(losses(out)) == [1] and (out / "checkpoint-1").is_dir()  # stopped after its first step
    png = plot_run([out], tmp_path / "curves.png", keys=("loss", "reward"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(BadInput, match="none of reward was logged"):
        plot_run([out], tmp_path / "r.png", keys=("reward",))
    with pytest.raises(BadInput, match="no metrics"):
        plot_run([tmp_path], tmp_path / "x.png")


def test_self_correction_prompts_hold_the_models_own_first_attempt(tmp_path):
    from deliberate.backends import lab_model_dir
    from deliberate.search.reflection import REFLECTION
    from deliberate.train.data import PromptView
    from deliberate.train.grpo import correction_rows, prompt_rows
    from deliberate.train.rewards import second_attempt

    cfg = GRPORunConfig(**{**GRPO, "limit": 3, "temperature": 1.0, "self_correct": True, "rewards": "second_attempt"})
    plain = prompt_rows(cfg, PromptView.load("lab", str(lab_model_dir())))
    rows = correction_rows(cfg, plain)
    assert len(rows) == 3
    for p, r in zip(plain, rows, strict=True):
        assert r["prompt"].startswith(p["prompt"]) and r["prompt"].endswith(f"\n{REFLECTION}\n")
        attempt = r["prompt"][len(p["prompt"]):-len(REFLECTION) - 2]
        assert r["first_correct"] == bool(accuracy([p["prompt"]], [attempt], [p["gold"]], [p["task"]])[0])
        # the reward pays a repair double, punishes a break, as SCoRe's shaping does
        assert second_attempt([r["prompt"]], [f"The answer is {r['gold']}."], [r["gold"]], [r["task"]],
                              [r["first_correct"]]) == [1.0 if r["first_correct"] else 2.0]
    one = {**GRPO, "limit": 4, "max_steps": 1, "self_correct": True, "rewards": "second_attempt"}
    out = train_grpo(GRPORunConfig(out=str(tmp_path / "sc"), **one), warn=lambda _: None)
    assert "rewards/second_attempt/mean" in read_metrics(out)[0]


def test_a_refused_run_leaves_the_folder_as_it_was(tmp_path):
    out = train_sft(SFTRunConfig(out=str(tmp_path / "run"), **{**SFT, "max_steps": 1}))
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(BadInput, match="exceeds the model's context"):  # found after the model loads
        train_sft(SFTRunConfig(out=str(out), overwrite=True, **{**SFT, "max_length": 4096}))
    assert sorted(p.name for p in out.iterdir()) == before  # --overwrite did not delete the old run first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(BadInput, match="no training run"):
        train_sft(SFTRunConfig(out=str(tmp_path / "mine"), overwrite=True, **SFT))
    assert (tmp_path / "mine" / "thesis.tex").exists()
    for bad, msg in [({"adam_beta2": 1.0}, "--adam-beta2"), ({"warmup_ratio": 2.0}, "--warmup-ratio"),
                     ({"seed": 20_241_121}, "held-out split's seed")]:
        with pytest.raises(BadInput, match=msg):
            train_sft(SFTRunConfig(out=str(tmp_path / "x"), **{**SFT, **bad}))


def test_grpo_prompts_from_several_tasks_and_an_r1_format_opens_think_once():
    from deliberate.backends import lab_model_dir
    from deliberate.train.data import PromptView
    from deliberate.train.grpo import prompt_rows

    view = PromptView.load("lab", str(lab_model_dir()))
    rows = prompt_rows(GRPORunConfig(**{**GRPO, "task": "lab-en-train, lab-zh-train", "limit": 2, "think": True}), view)
    assert [r["task"] for r in rows] == ["lab-en-train"] * 2 + ["lab-zh-train"] * 2
    assert all(r["prompt"].endswith("\n<think>\n") for r in rows)
    r1 = PromptView("lab-r1", "lab-r1", view.tokenizer)  # its prompts open <think> already: no second one
    again = prompt_rows(GRPORunConfig(**{**GRPO, "limit": 2, "think": True}), r1)
    assert [r["prompt"] for r in again] == [r["prompt"] for r in rows[:2]]
    with pytest.raises(BadInput, match="names no task"):
        GRPORunConfig(**{**GRPO, "task": " , "}).tasks()
