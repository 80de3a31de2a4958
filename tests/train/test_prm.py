"""The PRM trainer: targets at the tokens the reward reads, soft labels kept, the masked loss,
and short training runs on the lab model's backbone that must learn a planted step signal."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.errors import BadInput
from deliberate.rewards import get_reward
from deliberate.rewards.base import Path as SearchPath
from deliberate.rewards.model import step_text
from deliberate.tasks.base import Problem
from deliberate.train.common import model_path, read_metrics
from deliberate.train.prm import IGNORE, Collator, PRMRunConfig, encode, evaluate_prm, step_loss, targets, train_prm

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path("lab"))


ROW = {"prompt": "Q: Tom has 3 apples and buys 4. How many?\nA: ", "completions": ["3 + 4 = 7.\n", "So 7 apples.\n",
       "The answer is 7."], "labels": [True, False, False], "soft_labels": [0.75, 0.0, 0.0]}


def test_targets_sit_on_the_last_token_of_each_step_where_the_reward_reads(tok):
    f = encode(ROW, tok, 512)
    at = [i for i, y in enumerate(f["labels"]) if y != IGNORE]
    assert [f["labels"][i] for i in at] == [1.0, 0.0, 0.0]
    text, ends = step_text(ROW["prompt"], ROW["completions"])
    offsets = tok(text, return_offsets_mapping=True)["offset_mapping"]
    for i, c in zip(at, ends, strict=True):
        s, e = offsets[i]
        assert s <= c < e and text[c] in ".7"  # the step's last visible character, not its newline
    assert len(f["input_ids"]) == len(f["labels"]) == len(f["attention_mask"])


def test_soft_labels_are_used_only_when_asked_and_complete(tok):
    assert targets(ROW, soft=True) == [0.75, 0.0, 0.0]
    assert targets(ROW, soft=False) == [1.0, 0.0, 0.0]
    assert targets({**ROW, "soft_labels": None}, soft=True) == [1.0, 0.0, 0.0]  # first-error rows have none
    assert targets({**ROW, "soft_labels": [0.5, None, 0.0]}, soft=True) == [1.0, 0.0, 0.0]
    feats = [encode(ROW, tok, 512, soft=True), encode({**ROW, "completions": ROW["completions"][:1],
                                                        "labels": [True], "soft_labels": [0.25]}, tok, 512, True)]
    batch = Collator(tok.eos_token_id)(feats)
    assert batch["labels"].dtype == torch.float32
    assert sorted(v for v in batch["labels"].flatten().tolist() if v != IGNORE) == [0.0, 0.0, 0.25, 0.75]
    assert batch["attention_mask"][1].sum() == len(feats[1]["input_ids"])  # the shorter row is right-padded


def test_truncation_drops_the_steps_it_cuts(tok):
    whole = encode(ROW, tok, 512)
    n_prompt = len(tok(ROW["prompt"] + ROW["completions"][0])["input_ids"])
    cut = encode(ROW, tok, n_prompt + 1)
    assert sum(y != IGNORE for y in cut["labels"]) == 1 < sum(y != IGNORE for y in whole["labels"])
    assert encode(ROW, tok, 4) is None  # not even the first step fits


def test_the_loss_is_binary_cross_entropy_on_the_labelled_positions_only():
    logits = torch.tensor([[[2.0], [9.0], [-1.0]], [[0.5], [7.0], [3.0]]])
    labels = torch.tensor([[1.0, IGNORE, 0.0], [0.25, IGNORE, IGNORE]])
    out = type("Out", (), {"logits": logits})()

    def bce(z, y):
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    want = bce(2.0, 1.0) + bce(-1.0, 0.0) + bce(0.5, 0.25)
    assert float(step_loss(out, labels)) == pytest.approx(want / 3, rel=1e-5)
    assert float(step_loss(out, labels, num_items_in_batch=6)) == pytest.approx(want / 6, rel=1e-5)


def planted(n: int, seed: int) -> list[dict]:
    """Solutions whose wrong steps say `oops`, a right and a wrong one per problem: a signal a
    PRM must learn from labels alone, within a problem as well as across problems."""
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        if k % 2 == 0:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
        bad = k % 2 == 1
        first = f"{a} + {b} = {a + b + (1 if bad else 0)}{' oops' if bad else ''}.\n"
        rows.append({"id": f"p{k // 2}", "prompt": f"Q: What is {a} + {b}?\nA: ",
                     "completions": [first, f"The answer is {a + b + bad}."], "labels": [not bad, not bad],
                     "correct": not bad})
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("prm")
    data, valid = d / "train.jsonl", d / "valid.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in planted(64, 0)))
    valid.write_text("".join(json.dumps(r) + "\n" for r in planted(32, 1)))
    cfg = PRMRunConfig(out=str(d / "run"), data=str(data), valid_data=str(valid), max_steps=24, batch_size=8,
                       learning_rate=1e-3, save_steps=12, threads=1, max_length=64)
    return train_prm(cfg), cfg


def test_a_short_run_learns_the_planted_signal_and_loads_as_a_reward(trained):
    out, _ = trained
    logged = [r["loss"] for r in read_metrics(out) if "loss" in r]
    assert len(logged) == 24 and all(math.isfinite(v) for v in logged)
    assert sum(logged[-4:]) < sum(logged[:4])
    e = json.loads((out / "eval.json").read_text())
    assert e["steps"] == 64 and e["step_auroc"] > 0.9 and e["within_problem_auroc_min"] > 0.9
    reward = get_reward(f"prm:{out}")
    assert reward.format == "token"
    good, bad = (SearchPath(steps=[t]) for t in ("3 + 4 = 7.\nThe answer is 7.", "3 + 4 = 8 oops.\nThe answer is 8."))
    (g1, g2), (b1, _) = reward(Problem(id="x", question="What is 3 + 4?", answer="7"), [good, bad])
    assert g1 > b1  # the first step of the wrong solution scores below the right one


def test_scoring_a_saved_prm_is_deterministic_and_matches_eval(trained):
    out, cfg = trained
    rows = planted(32, 1)
    assert evaluate_prm(str(out), rows, threads=1) == json.loads((out / "eval.json").read_text())


def test_one_step_run_from_the_command_line_and_its_refusals(tmp_path):
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in planted(8, 2)))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "prm", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps",
                              "1", "--batch-size", "4", "--threads", "1", "--valid-data", str(data)])
    assert res.exit_code == 0, res.output
    assert "PRM saved to" in res.output and "step AUROC" in res.output
    res = runner.invoke(app, ["train", "prm", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r2")])
    assert res.exit_code != 0 and "no label file" in res.output and "Traceback" not in res.output
    with pytest.raises(BadInput, match="max-length"):
        PRMRunConfig(max_length=2).validate()


def test_orm_pairs_stay_within_a_problem():
    from deliberate.train.orm import pairs

    rows = planted(40, 3)
    got = pairs(rows, per_problem=16, seed=0)
    assert got and all(a["id"] == b["id"] and a["correct"] and not b["correct"] for a, b in got)
    one_sided = [r for r in rows if r["correct"]]
    assert pairs(one_sided, 16, 0) == []
    with pytest.raises(BadInput, match="problem's id"):
        pairs([{k: v for k, v in rows[0].items() if k != "id"}], 16, 0)


def test_orm_trains_on_pairs_with_trl_and_loads_as_a_reward(tmp_path):
    from deliberate.train.orm import ORMRunConfig, train_orm

    data = tmp_path / "labels.jsonl"
    rows = [{**r, "id": f"p{k // 4}"} for k, r in enumerate(planted(96, 4))]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = train_orm(ORMRunConfig(out=str(tmp_path / "orm"), data=str(data), valid_data=str(data), max_steps=16,
                                 batch_size=8, learning_rate=1e-3, save_steps=16, threads=1))
    e = json.loads((out / "eval.json").read_text())
    assert e["within_problem_auroc_last"] > 0.8
    reward = get_reward(f"orm:{out}")
    scores = reward(Problem(id="x", question="What is 3 + 4?", answer="7"),
                    [SearchPath(steps=["3 + 4 = 7.\n", "The answer is 7."])])
    assert len(scores[0]) == 2 and scores[0][0] == scores[0][1]  # one outcome score, given to every step
