import json

from transformers import AutoModelForCausalLM, AutoTokenizer

from deliberate.lab.train import LabTrainConfig, export_model, train


def tiny(out, steps):
    return LabTrainConfig(out=str(out), steps=steps, batch_size=2, seq_len=64, hidden_size=32, layers=1, heads=2,
                          intermediate_size=64, vocab_size=400, threads=1, save_every=2, warmup=1)


def test_training_logs_resumes_and_exports(tmp_path):
    out = tmp_path / "run"
    train(tiny(out, 2))
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and log[-1]["step"] == 1
    train(tiny(out, 4))  # resumes at step 2, does not start over
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 3]
    dest = export_model(out, tmp_path / "exported")
    assert json.loads((dest / "config.json").read_text())["deliberate_prompt_style"] == "lab"
    assert not (dest / "trainer_state.pt").exists()
    tok = AutoTokenizer.from_pretrained(dest)
    model = AutoModelForCausalLM.from_pretrained(dest)
    assert model.config.model_type == "llama"
    assert tok.decode(tok("汤姆有 12 个苹果。").input_ids) == "汤姆有 12 个苹果。"
    assert [tok.decode([i]) for i in tok(" 123").input_ids][-3:] == ["1", "2", "3"]  # one token per digit


def test_training_examples_mask_what_must_not_be_learned():
    """Prompts, wrong attempts and the reflection phrase carry no loss; solutions do."""
    import random

    from deliberate.lab import formats
    from deliberate.lab.generator import make_problem

    rng = random.Random(4)
    for _ in range(200):
        p = make_problem(rng)
        for kind, make in formats.FORMATS.items():
            segs = make(p, rng.choice(["en", "zh"]), rng)
            trained = "".join(t for t, keep in segs if keep)
            untrained = "".join(t for t, keep in segs if not keep)
            assert trained and formats.REFLECTION not in trained and formats.WAIT + "\n" not in trained
            if kind in ("plain", "think", "reflection"):
                assert trained.rstrip().endswith((f"The answer is {p.answer}.", f"答案是 {p.answer}。"))
            if kind == "reflection":
                assert untrained.endswith(formats.REFLECTION + "\n")
        lines, wrong = formats.wrong_attempt(p, rng)
        assert wrong != p.answer


def test_select_scores_every_snapshot_on_validation(tmp_path):
    from deliberate.lab.select import select

    out = tmp_path / "run"
    cfg = tiny(out, 4)
    cfg.snapshots = True
    train(cfg)
    rows = select(out, tasks=("lab-en-valid",), limit=2, n=2, threads=1)
    assert [r["step"] for r in rows] == [2, 4]
    assert all(0 <= r["greedy"] <= 1 and r["pass_gap"] == r["pass@2"] - r["greedy"] for r in rows)
