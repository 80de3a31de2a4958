"""The lab model's recipe (train sft from random weights), its training mix, select and export."""

import json
import random

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from deliberate.lab import formats
from deliberate.lab.generator import make_problem
from deliberate.lab.train import export_model, recipe

pytest.importorskip("trl")


def tiny(out, **kw):
    return recipe(str(out), **{**dict(max_steps=2, examples=40, batch_size=2, max_length=64, save_steps=1,
                                      threads=1, logging_steps=1), **kw})


def test_the_recipe_trains_from_scratch_and_exports_a_lab_model(tmp_path):
    from deliberate.lab.select import select
    from deliberate.train.sft import train_sft

    out = train_sft(tiny(tmp_path / "run"))
    rows = select(out, tasks=("lab-en-valid",), limit=2, n=2, threads=1)
    assert [r["step"] for r in rows] == [1, 2]  # every checkpoint, scored on validation
    assert all(0 <= r["greedy"] <= 1 and r["pass_gap"] == r["pass@2"] - r["greedy"] for r in rows)
    dest = export_model(out / "checkpoint-2", tmp_path / "exported")
    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["deliberate_prompt_style"] == "lab" and cfg["use_cache"] is True  # the trainer had turned it off
    assert "is_local" not in json.loads((dest / "tokenizer_config.json").read_text())
    assert not (dest / "optimizer.pt").exists()
    tok = AutoTokenizer.from_pretrained(dest)
    assert AutoModelForCausalLM.from_pretrained(dest).config.max_position_embeddings == 512
    assert tok.decode(tok("汤姆有 12 个苹果。").input_ids) == "汤姆有 12 个苹果。"
    assert [tok.decode([i]) for i in tok(" 123").input_ids][-3:] == ["1", "2", "3"]  # one token per digit


def test_training_examples_mask_what_must_not_be_learned():
    """Prompts, wrong attempts, `Wait` and the reflection phrase carry no loss; solutions do."""
    rng = random.Random(4)
    for _ in range(200):
        p = make_problem(rng)
        for kind, make in formats.FORMATS.items():
            segs = make(p, rng.choice(["en", "zh"]), rng)
            trained = "".join(t for t, keep in segs if keep)
            untrained = "".join(t for t, keep in segs if not keep)
            assert trained and formats.REFLECTION not in trained and formats.WAIT + "\n" not in trained
            answer = (f"The answer is {p.answer}.", f"答案是 {p.answer}。")
            if kind == "plain":
                assert trained.rstrip().endswith(answer)
            if kind == "think":  # R1's template: the answer in <answer> after </think>
                assert trained.endswith(tuple(f"{formats.THINK_CLOSE}\n{formats.ANSWER_OPEN}{a}{formats.ANSWER_CLOSE}"
                                              for a in answer))
            if kind == "reflection":
                assert untrained.endswith(formats.REFLECTION + "\n") and trained.rstrip().endswith(answer)
        lines, wrong = formats.wrong_attempt(p, rng)
        assert wrong != p.answer


def test_reflection_attempts_are_wrong_less_often_than_the_model_and_right_ones_are_confirmed():
    rng = random.Random(5)
    wrong = 0
    for _ in range(2000):
        p = make_problem(rng)
        (prompt, _), (fix, _) = formats.reflection(p, "en", rng)
        attempt_answer = prompt.split(formats.REFLECTION)[0].strip().splitlines()[-1]
        if attempt_answer == f"The answer is {p.answer}.":
            assert fix == attempt_answer  # confirmed in one line, not rewritten
        else:
            wrong += 1
            assert len(fix.splitlines()) > 1 and fix.endswith(f"The answer is {p.answer}.")
    assert abs(wrong / 2000 - formats.REFLECTION_WRONG) < 0.03


def test_think_traces_hold_many_waits_of_different_lengths_inside_the_context():
    """Up to a dozen `Wait`s (budget forcing at 4x appends about seven), continuations of two
    lengths (a check copying the step written last, verbatim; a fresh solution), every block
    ending in its answer line as a plain solution does, and every trace within the characters
    that fit the 512-token context."""
    rng = random.Random(6)
    waits, kinds = set(), set()
    for _ in range(1000):
        p = make_problem(rng)
        segs = formats.think(p, "en", rng)
        texts = [t for t, _ in segs]
        assert sum(len(t) for t in texts[1:]) <= formats.THINK_CHARS
        waits.add(texts.count(f"{formats.WAIT}\n"))
        blocks = [(t.split(formats.THINK_CLOSE)[0].strip().splitlines(), trained)
                  for t, trained in segs[1:] if t != f"{formats.WAIT}\n"]
        last = None  # the last step of the latest right block
        for lines, trained in blocks:
            assert lines[-1].startswith("The answer is ")
            if not trained:  # a wrong first attempt, never trained
                assert lines[-1] != f"The answer is {p.answer}." and last is None
                continue
            assert lines[-1] == f"The answer is {p.answer}."
            if lines[0].startswith(formats.CHECK):
                assert lines[:-1] == [formats.CHECK + last]
                kinds.add("check")
            elif last is not None:
                kinds.add("resolve")
            last = lines[-2].removeprefix(formats.CHECK)
    assert max(waits) >= 10 and {0, 1, 2, 3} <= waits and kinds == {"check", "resolve"}


def test_fp16_export_halves_the_weights_and_loads_back_to_the_same_predictions(tmp_path):
    import torch
    from safetensors import safe_open

    from deliberate.backends import lab_model_dir

    src = tmp_path / "full"  # the shipped model is stored in fp16 already: a float32 copy of it first
    AutoModelForCausalLM.from_pretrained(lab_model_dir(), dtype=torch.float32).save_pretrained(src)
    AutoTokenizer.from_pretrained(lab_model_dir()).save_pretrained(src)
    dest = export_model(src, tmp_path / "half", fp16=True)
    full, half = (src / "model.safetensors").stat().st_size, (dest / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    with safe_open(dest / "model.safetensors", "pt") as f:  # embeddings and norms stay float32
        kept = {k for k in f.keys() if f.get_tensor(k).dtype == torch.float32}
    assert kept and all("embed" in k or "norm" in k for k in kept) and "model.embed_tokens.weight" in kept
    tok = AutoTokenizer.from_pretrained(dest)
    ids = tok("Tom has 12 apples. Tom buys 7 more. How many apples does Tom have now?", return_tensors="pt").input_ids
    a, b = (AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32).eval() for p in (src, dest))
    with torch.no_grad():
        la, lb = a(ids).logits, b(ids).logits
    assert lb.dtype == torch.float32 and torch.equal(la.argmax(-1), lb.argmax(-1))
    assert (la.softmax(-1) - lb.softmax(-1)).abs().max() < 1e-2


def test_export_marks_the_prompt_style_and_refuses_an_unknown_one(tmp_path):
    from typer.testing import CliRunner

    from deliberate.backends import lab_model_dir
    from deliberate.cli import app

    dest = export_model(lab_model_dir(), tmp_path / "r1", style="lab-r1")
    assert json.loads((dest / "config.json").read_text())["deliberate_prompt_style"] == "lab-r1"
    res = CliRunner().invoke(app, ["lab", "export", str(lab_model_dir()), str(tmp_path / "x"), "--style", "chat"])
    assert res.exit_code != 0 and "--style must be lab or lab-r1" in res.output and not (tmp_path / "x").exists()
