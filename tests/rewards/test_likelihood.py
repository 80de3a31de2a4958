"""`lm:SPEC`: a judge model's likelihood of a path, checked against the judge run by hand on a tiny
random-weight model built here, grouped by step, billed as verifier compute, and used by best-of-n."""

import math

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from deliberate import BadInput
from deliberate.backends import lab_model_dir
from deliberate.backends.metered import Meter
from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.rewards import Path, get_reward
from deliberate.rewards.likelihood import _by_step
from deliberate.search import get_strategy
from deliberate.tasks import Problem, Task

Q = Problem("q", "Tom has 3 apples and buys 2.", "5")
TASK = Task("t", "test", lambda: [Q])
STEPS = ["3 + 2 = 5\n", "The answer is 5."]


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(lab_model_dir("lab"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg)
    model.config.deliberate_prompt_style = "lab"  # the judge reads the question bare, as the lab model
    out = tmp_path_factory.mktemp("judge")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out), model.eval(), tok


def by_hand(model, tok, head: str, steps: list[str]) -> list[float]:
    """exp(mean log p) of steps 1..i, from one forward pass of the judge over head + path."""
    p = tok(head).input_ids
    c = tok("".join(steps), add_special_tokens=False).input_ids
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([p + c])).logits[0].float(), -1)
    lps = [float(logp[len(p) + t - 1, tok_id]) for t, tok_id in enumerate(c)]
    starts, at = [], 0
    for tid in c:
        starts.append(at)
        at += len(tok.decode([tid]))
    out, bound = [], 0
    for s in steps:
        bound += len(s)
        mine = [lp for lp, st in zip(lps, starts, strict=True) if st < bound]
        out.append(math.exp(sum(mine) / len(mine)))
    return out


def test_step_scores_are_the_judges_running_mean_likelihood(judge):
    path, model, tok = judge
    meter = Meter(ScriptedBackend(from_texts({})))
    reward = get_reward(f"lm:{path}", task=TASK, backend=meter)
    (scores,) = reward(Q, [Path(STEPS)])
    assert scores == pytest.approx(by_hand(model, tok, Q.question + "\n", STEPS), rel=1e-4)
    assert 0 < scores[-1] < 1
    # a whole sample given as one piece is cut at the task's delimiter and scored the same
    (whole,) = reward(Q, [Path(["".join(STEPS)])])
    assert whole == pytest.approx(scores, rel=1e-6)
    used = meter.usage_of(Q.id)
    n_read = 2 * (len(tok(Q.question + "\n").input_ids) + len(tok("".join(STEPS), add_special_tokens=False).input_ids))
    assert used.verifier_calls == 2 and used.verifier_tokens == n_read


def test_tokens_group_by_the_step_they_start_in_or_fall_back():
    assert _by_step(["3 +", " 2\n", "Th", "e end"], [-1.0, -2.0, -3.0, -4.0], ["3 + 2\n", "The end"]) == \
        [[-1.0, -2.0], [-3.0, -4.0]]
    assert _by_step(["ab\nc", "d"], [-1.0, -2.0], ["ab\n", "cd"]) == [[-1.0], [-2.0]]  # a piece across the cut
    assert _by_step(["\ufffd", "\ufffd"], [-1.0, -2.0], ["米\n"]) is None  # pieces that do not spell the text


def test_best_of_n_picks_the_sample_the_judge_finds_likeliest(judge):
    path, model, tok = judge
    texts = ["3 + 2 = 5\nThe answer is 5.", "3 * 2 = 6\nThe answer is 6.", "3 - 2 = 1\nThe answer is 1."]
    strategy = get_strategy("best-of-n", n=3, reward=f"lm:{path}")
    res = strategy(Q, ScriptedBackend(from_texts({"Tom has": texts})), TASK)
    like = {t: by_hand(model, tok, Q.question + "\n", [t.split("\n")[0] + "\n", t.split("\n")[1]])[-1]
            for t in texts}
    assert [t.score for t in res.traces] == pytest.approx([like[t.text] for t in res.traces], rel=1e-4)
    assert res.answer == max(res.traces, key=lambda t: like[t.text]).answer
    assert res.compute.verifier_tokens > 0 and res.compute.verifier_calls == 1


def test_a_judge_spec_must_name_a_model():
    with pytest.raises(BadInput, match="lm:SPEC"):
        get_reward("lm:", task=TASK)
