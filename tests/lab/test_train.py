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
