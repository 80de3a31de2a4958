"""`prm:PATH` / `orm:PATH`: each published convention on a tiny random-weight model built here
(no download), read at the right token (checked against the model run on the prefix alone),
aggregated by the strategy, and billed as verifier compute."""

import pytest
import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
)

from deliberate import BadInput
from deliberate.backends import lab_model_dir
from deliberate.backends.metered import Meter
from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.rewards import Path, get_reward
from deliberate.rewards.model import parse_spec
from deliberate.search import get_strategy
from deliberate.tasks import Problem, Task

Q = Problem("q", "Tom has 3 apples and buys 2.", "5")
TASK = Task("t", "test", lambda: [Q])
STEPS = ["3 + 2 = 5\n", "The answer is 5."]
OTHER = ["3 + 2 = 6\n", "6 - 1 = 5\n", "The answer is 5."]


def build(tmp_path, name, cls, extra_tokens=(), **head):
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(lab_model_dir("lab"))
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=tok.pad_token_id, **head)
    model = cls(cfg)
    out = tmp_path / name
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out), model.eval(), tok


def last_logits(model, tok, text, special=True):
    ids = tok(text, return_tensors="pt", add_special_tokens=special)
    with torch.no_grad():
        return model(**ids).logits[0, -1]


def test_token_classification_prm_reads_each_steps_last_token(tmp_path):
    path, model, tok = build(tmp_path, "tok", LlamaForTokenClassification, num_labels=2)
    backend = Meter(ScriptedBackend(from_texts({})))
    prm = get_reward(f"prm:{path}", task=TASK, backend=backend)
    assert prm.format == "token"
    (scores,) = prm(Q, [Path(STEPS)])
    head = "Tom has 3 apples and buys 2.\n"
    want = [float(torch.softmax(last_logits(model, tok, head + t), -1)[1]) for t in ("3 + 2 = 5", "3 + 2 = 5\n"
                                                                                         "The answer is 5.")]
    assert scores == pytest.approx(want, abs=1e-5)
    # a path in one piece (best-of-n's samples) is cut at the task's delimiter: the same scores
    assert prm(Q, [Path(["".join(STEPS)])])[0] == pytest.approx(want, abs=1e-5)
    use = backend.usage_of("q")
    assert use.verifier_calls == 2 and use.verifier_tokens == 2 * len(tok(head + "".join(STEPS)).input_ids)


def test_math_shepherd_prm_reads_plus_against_minus_at_each_tag(tmp_path):
    path, model, tok = build(tmp_path, "shepherd", LlamaForCausalLM, extra_tokens=("ки",))
    prm = get_reward(f"prm:{path}", task=TASK)
    assert prm.format == "shepherd"
    (scores,) = prm(Q, [Path(STEPS)])
    good, bad = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    first = "Tom has 3 apples and buys 2. 3 + 2 = 5 ки"
    prefixes = [first, first + "\nThe answer is 5. ки"]
    want = [float(torch.softmax(last_logits(model, tok, t)[[good, bad]], -1)[0]) for t in prefixes]
    assert scores == pytest.approx(want, abs=1e-5)


def test_qwen_prm_reads_its_two_class_head_at_each_separator(tmp_path):
    path, model, tok = build(tmp_path, "qwen", LlamaForTokenClassification, extra_tokens=("<extra_0>",), num_labels=2)
    prm = get_reward(f"prm:{path}", task=TASK)
    assert prm.format == "qwen"
    (scores,) = prm(Q, [Path(STEPS)])
    prefixes = ["Tom has 3 apples and buys 2.\n3 + 2 = 5<extra_0>",
                "Tom has 3 apples and buys 2.\n3 + 2 = 5<extra_0>The answer is 5.<extra_0>"]
    want = [float(torch.softmax(last_logits(model, tok, t, special=False), -1)[1]) for t in prefixes]
    assert scores == pytest.approx(want, abs=1e-5)


def test_orm_gives_every_step_the_solutions_score(tmp_path):
    path, model, tok = build(tmp_path, "orm", LlamaForSequenceClassification, num_labels=1)
    orm = get_reward(f"orm:{path}", task=TASK)
    a, b = orm(Q, [Path(STEPS), Path(OTHER)])
    assert len(a) == 2 and len(set(a)) == 1 and len(b) == 3 and len(set(b)) == 1 and a[0] != b[0]
    ids = tok("Tom has 3 apples and buys 2.\n" + "".join(STEPS), return_tensors="pt")
    with torch.no_grad():
        want = float(torch.sigmoid(model(**ids).logits[0, 0]))
    assert a[0] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("aggregate", ["last", "min", "prod"])
def test_best_of_n_picks_by_the_aggregated_prm_score_and_counts_its_compute(tmp_path, aggregate):
    from deliberate.rewards.base import path_value

    path, _, _ = build(tmp_path, "tok", LlamaForTokenClassification, num_labels=2)
    texts = {"Tom has": ["".join(STEPS), "".join(OTHER), "3 + 2 = 4\nThe answer is 4."]}
    strategy = get_strategy("best-of-n", n=3, reward=f"prm:{path}", aggregate=aggregate)
    res = strategy(Q, ScriptedBackend(from_texts(texts)), TASK)
    direct = get_reward(f"prm:{path}", task=TASK)(Q, [Path([t]) for t in texts["Tom has"]])
    values = [path_value(s, aggregate) for s in direct]
    assert [t.score for t in res.traces] == pytest.approx(values, abs=1e-5)
    assert res.answer == res.traces[values.index(max(values))].answer
    assert res.compute.verifier_calls == 1 and res.compute.verifier_tokens > 0


@pytest.mark.parametrize("spec,words", [
    ("prm:", "prm:PATH or orm:PATH"),
    ("xrm:/a", "prm:PATH or orm:PATH"),
    ("prm:/a?format=nope", "unknown PRM format 'nope'"),
    ("prm:/a?aggregate=min", "unknown option"),
    ("orm:/a?format=token", "takes no format"),
])
def test_bad_specs(spec, words):
    with pytest.raises(BadInput, match=words):
        parse_spec(spec)


def test_a_format_whose_token_is_missing_and_a_missing_model_fail_in_one_line(tmp_path):
    path, _, _ = build(tmp_path, "tok", LlamaForTokenClassification, num_labels=2)
    with pytest.raises(BadInput, match="needs the token 'ки'"):
        get_reward(f"prm:{path}?format=shepherd", task=TASK)
    with pytest.raises(BadInput, match="cannot load the verifier's tokenizer"):
        get_reward(f"prm:{tmp_path}/nothing", task=TASK)


@pytest.mark.parametrize("name,options", [("beam", dict(width=2, expand=2)),
                                          ("beam", dict(width=2, expand=2, subtrees=2)),
                                          ("mcts", dict(iterations=3)), ("best-of-n", dict(n=2, vote="weighted"))])
def test_every_strategy_that_takes_a_reward_runs_with_a_prm(tmp_path, name, options):
    path, _, _ = build(tmp_path, "tok", LlamaForTokenClassification, num_labels=2)
    sols = ["3 + 2 = 5\nThe answer is 5.", "3 + 2 = 6\nThe answer is 6."]

    def script(prompt, j, params):  # continues whichever solution the prefix has begun
        done = prompt.split("buys 2.\n", 1)[1]
        rest = next((s[len(done):] for s in (sols[j % 2], *sols) if s.startswith(done)), "The answer is 5.")
        return [(ch, -0.1, [(ch, -0.1)]) for ch in rest]

    res = get_strategy(name, reward=f"prm:{path}", **options)(Q, ScriptedBackend(script), TASK)
    assert res.answer in ("5", "6") and res.compute.verifier_calls >= 1 and res.compute.verifier_tokens > 0
