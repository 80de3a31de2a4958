"""GRPO's reward functions, called as TRL calls them: keyword columns in, one float per completion out."""

from __future__ import annotations

import math

import pytest

from deliberate.errors import BadInput
from deliberate.train.rewards import REWARDS, accuracy, check_group, resolve, second_attempt, think
from deliberate.train.rewards import format as r1_format

SOLVED = "6 / 2 = 3\n3 + 10 = 13\nThe answer is 13."
THINK_PROMPT = "Tom has 3 apples. He buys 4 more. How many apples does Tom have now?\n<think>\n"


def call(fn, completions, prompts=None, options=None, **columns):
    """TRL's call: prompts, completions and every dataset column, each a list as long as the batch
    (`options` are keyword arguments a user would bind, such as `alpha`)."""
    n = len(completions)
    prompts = prompts if prompts is not None else ["Q\n"] * n
    columns = {k: v if isinstance(v, list) else [v] * n for k, v in columns.items()}
    return fn(prompts=prompts, completions=completions, completion_ids=[[0]] * n, **columns, **(options or {}))


def my_reward(prompts, completions, **_):
    """A user's own reward, loaded by its dotted path."""
    return [float(len(c)) for c in completions]


def test_accuracy_reads_the_lab_answer_phrase():
    comps = [SOLVED, "6 / 2 = 3\nThe answer is 12.", "I cannot tell.", "", "The answer is 13 or 12."]
    assert call(accuracy, comps, gold="13", task="lab-en") == [1.0, 0.0, 0.0, 0.0, 0.0]
    # with no answer phrase the grader (the one eval uses) reads the last number, as documented
    assert call(accuracy, ["6 / 2 = 3\n3 + 10 = 13", "13 - 1 = 12"], gold="13", task="lab-en") == [1.0, 0.0]
    assert call(accuracy, ["答案是 13。", "答案是 12。"], gold="13", task="lab-zh") == [1.0, 0.0]
    # each row is graded against its own gold
    assert call(accuracy, [SOLVED, SOLVED], gold=["13", "12"], task="lab-en") == [1.0, 0.0]


def test_accuracy_reads_a_conversational_completion_by_its_last_message():
    convo = [[{"role": "user", "content": "The answer is 12."}, {"role": "assistant", "content": SOLVED}],
             [{"role": "assistant", "content": SOLVED}, {"role": "assistant", "content": "The answer is 12."}]]
    assert call(accuracy, convo, gold="13", task="lab-en") == [1.0, 0.0]


def test_accuracy_refuses_a_task_without_an_answer_key():
    with pytest.raises(BadInput, match="no answer key"):
        call(accuracy, ["x"], gold="y", task="lab-translate-en-zh")


def test_format_wants_think_then_answer_and_nothing_after():
    comps = ["<think>\nsteps\n</think>\n<answer>13</answer>",
             "<think>\nsteps\n</think>\n<answer>13</answer>\n",  # trailing whitespace is fine
             "<think>\nsteps\n</think>\nThe answer is 13.",  # no <answer>
             "<think>\nsteps\n</think>\n<answer>13</answer> and more",  # text after </answer>
             "steps\n</think><answer>13</answer>",  # no <think>, and the prompt did not open one
             "<answer>13</answer>",
             "<think>a</think><answer>1</answer><answer>2</answer>",  # two answers
             "<think>a</think><think>b</think>\n<answer>1</answer>"]  # two think blocks
    assert call(r1_format, comps) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_format_counts_a_think_the_prompt_opened():
    prompts = [THINK_PROMPT, THINK_PROMPT, "Q\n"]
    comps = ["steps\n</think><answer>13</answer>", "<think>\nsteps\n</think><answer>13</answer>",
             "steps\n</think><answer>13</answer>"]
    assert call(r1_format, comps, prompts=prompts) == [1.0, 1.0, 0.0]
    prompt = [{"role": "user", "content": "Q"}]
    reply = [{"role": "assistant", "content": "<think>a</think><answer>1</answer>"}]
    assert r1_format(prompts=[prompt, prompt], completions=[reply, [*reply, {"role": "user", "content": "x"}]]) == \
        [1.0, 0.0]


def test_think_wants_one_close_and_an_answer_after_it():
    comps = ["3 + 4 = 7\n</think>\nThe answer is 7.",
             "3 + 4 = 7\n</think>\nThe answer is 7.\n</think>\nThe answer is 7.",  # two </think>
             "3 + 4 = 7\n</think>\n",  # nothing after </think>
             "3 + 4 = 7\nThe answer is 7.",  # never closed
             "The answer is 7.\n</think>\nI am done."]  # the answer is inside the thinking only
    assert call(think, comps, prompts=[THINK_PROMPT] * 5, task="lab-en") == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_think_needs_the_think_opened_once():
    prompts = ["Q\n", "Q\n", THINK_PROMPT]
    comps = ["<think>\n3 + 4 = 7\n</think>\nThe answer is 7.",  # opened by the completion
             "3 + 4 = 7\n</think>\nThe answer is 7.",  # never opened
             "<think>\n3 + 4 = 7\n</think>\nThe answer is 7."]  # the prompt opened it: not opened twice
    assert call(think, comps, prompts=prompts, task="lab-en") == [1.0, 0.0, 1.0]


def test_second_attempt_pays_repair_and_punishes_breaking():
    right, wrong = "The answer is 13.", "The answer is 12."
    comps, first = [right, right, wrong, wrong], [False, True, True, False]
    assert call(second_attempt, comps, gold="13", task="lab-en", first_correct=first, options={"alpha": 1.0}) == \
        [2.0, 1.0, -1.0, 0.0]
    assert call(second_attempt, comps, gold="13", task="lab-en", first_correct=first, options={"alpha": 0.5}) == \
        [1.5, 1.0, -0.5, 0.0]
    # the default alpha is SCoRe's 1
    assert call(second_attempt, comps, gold="13", task="lab-en", first_correct=first) == [2.0, 1.0, -1.0, 0.0]


def test_a_column_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError):
        accuracy(prompts=["Q"] * 2, completions=[SOLVED] * 2, gold=["13"], task=["lab-en"] * 2)


def test_resolve_by_name_and_by_path(tmp_path, monkeypatch):
    for name, fn in REWARDS.items():
        assert resolve(name) is fn and resolve(f"  {name}\n") is fn
    assert resolve("deliberate.train.rewards:think") is think
    assert resolve("deliberate.train.rewards.think") is think
    (tmp_path / "my_rewards_mod.py").write_text("def length(completions, **_):\n"
                                                "    return [float(len(c)) for c in completions]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("my_rewards_mod:length", "my_rewards_mod.length"):
        assert call(resolve(spec), ["ab", "abcd"]) == [2.0, 4.0]
    assert resolve(f"{__name__}:my_reward") is my_reward  # this module, by its own name


def test_resolve_names_the_choices_and_the_failure():
    with pytest.raises(BadInput, match="unknown reward 'nonesuch'") as e:
        resolve("nonesuch")
    assert all(name in str(e.value) for name in REWARDS)
    with pytest.raises(BadInput, match="could not be loaded"):
        resolve("deliberate_no_such_module:f")
    with pytest.raises(BadInput, match="could not be loaded"):
        resolve("deliberate.train.rewards:no_such_function")
    with pytest.raises(BadInput, match="not callable"):
        resolve("deliberate.train.rewards:SCORE_ALPHA")


BATCH = {"prompts": ["Q\n"] * 3, "completions": ["a", "bb", "ccc"]}


@pytest.mark.parametrize("fn, message", [
    (lambda **_: [1.0, 2.0], "one value per completion (3), got 2"),
    (lambda **_: 1.0, "one value per completion (3), got float"),
    (lambda **_: [1.0, math.nan, 0.0], "returned NaN"),
    (lambda **_: [1.0, "1", 0.0], "returned '1'"),
    (lambda **_: [1.0, math.inf, 0.0], "returned inf"),
    (lambda **_: [True, False, True], "returned True"),
    (lambda **_: 1 / 0, "failed on a group of 3 completions: ZeroDivisionError"),
])
def test_check_group_refuses_a_bad_function_by_name(fn, message):
    with pytest.raises(BadInput, match="reward my-fn") as e:
        check_group(fn, "my-fn", BATCH, 3)
    assert message in str(e.value)


def test_check_group_says_whether_the_group_is_flat():
    assert check_group(lambda **_: [1.0, 1.0, 1.0], "f", BATCH, 3) == ([1.0, 1.0, 1.0], True)
    assert check_group(lambda **_: [1.0, 0.0, 1.0], "f", BATCH, 3) == ([1.0, 0.0, 1.0], False)
    assert check_group(lambda **_: [None, 0.5, None], "f", BATCH, 3) == ([None, 0.5, None], True)
    np = pytest.importorskip("numpy")
    assert check_group(lambda **_: [np.float32(1), np.float32(0), 1], "f", BATCH, 3)[1] is False  # numpy floats count
    assert check_group(lambda **_: [None, None, None], "f", BATCH, 3) == ([None, None, None], True)
    assert check_group(lambda **_: (0, None, 2), "f", BATCH, 3) == ([0, None, 2], False)
    values, flat = check_group(REWARDS["accuracy"], "accuracy",
                               {**BATCH, "completions": ["The answer is 1.", "The answer is 2.", "x"],
                                "gold": ["1"] * 3, "task": ["lab-en"] * 3}, 3)
    assert (values, flat) == ([1.0, 0.0, 0.0], False)


def test_accuracy_gives_nothing_for_thinking_the_prompt_opened_and_never_closed():
    prompts = ["Q\n<think>\n"] * 2
    comps = ["6 + 7 = 13\nThe answer is 13.", "6 + 7 = 13\n</think>\n<answer>The answer is 13.</answer>"]
    assert accuracy(prompts=prompts, completions=comps, gold=["13", "13"], task=["lab-en", "lab-en"]) == [0.0, 1.0]
