"""Block expansion: the grown lab model is deeper and computes exactly what the source does."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from deliberate.backends import lab_model_dir
from deliberate.cli import app
from deliberate.errors import BadInput
from deliberate.lab.grow import grow_model


@pytest.mark.parametrize("layers", [6, 9])
def test_a_grown_model_is_deeper_and_gives_the_same_logits(tmp_path, layers):
    src = lab_model_dir()
    dest = grow_model(src, tmp_path / "grown", layers)
    a, b = (AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32).eval() for p in (src, dest))
    assert b.config.num_hidden_layers == layers == len(b.model.layers)
    assert [blk.self_attn.layer_idx for blk in b.model.layers] == list(range(layers))
    ids = AutoTokenizer.from_pretrained(dest)("Tom has 12 apples. Tom buys 7 more. How many?\n",
                                              return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(a(ids).logits, b(ids).logits, atol=1e-5)
        ga = a.generate(ids, max_new_tokens=20, do_sample=False)
        gb = b.generate(ids, max_new_tokens=20, do_sample=False)  # through the KV cache of every block
    assert torch.equal(ga, gb)
    new = [blk for blk in b.model.layers if not blk.mlp.down_proj.weight.any()]
    assert len(new) == layers - a.config.num_hidden_layers  # the inserted blocks, and only they, start at zero


def test_grow_refuses_a_shallower_target_and_a_used_folder(tmp_path):
    with pytest.raises(BadInput, match="--layers must be above the model's 4"):
        grow_model(lab_model_dir(), tmp_path / "g", 4)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    res = CliRunner().invoke(app, ["lab", "grow", str(lab_model_dir()), str(tmp_path / "used"), "--layers", "6"])
    assert res.exit_code != 0 and "is not empty" in res.output
    res = CliRunner().invoke(app, ["lab", "grow", str(tmp_path / "nothing"), str(tmp_path / "g"), "--layers", "6"])
    assert res.exit_code != 0 and "is not a directory" in res.output
    res = CliRunner().invoke(app, ["lab", "grow", "lab", str(tmp_path / "g"), "--layers", "5"])  # a spec works
    assert res.exit_code == 0 and (tmp_path / "g" / "config.json").is_file()
