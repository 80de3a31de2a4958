"""The lab mix with the model's own right answers (`deliberate.lab.own`, `--data lab-own`)."""

from __future__ import annotations

import random

import pytest

from deliberate.backends import lab_model_dir
from deliberate.errors import BadInput
from deliberate.lab import formats, own
from deliberate.lab.generator import heldout_split
from deliberate.prompting import lab_question
from deliberate.train.data import PromptView, sft_rows


@pytest.fixture(scope="module")
def view():
    return PromptView.load("lab", str(lab_model_dir()))


def decode(view, row, trained: bool) -> str:
    ids = [t for t, m in zip(row["input_ids"], row["completion_mask"], strict=True) if m == trained]
    return view.tokenizer.decode(ids)


def test_a_think_trace_opens_with_the_own_answer_and_only_re_checks_it():
    p = heldout_split(split="valid")[0]
    answer = ["1 + 1 = 2", "2 * 3 = 6", formats.answer_line("en", p.answer)]
    waits = set()
    for seed in range(40):
        segs = formats.own_think(p, "en", random.Random(seed), answer)
        assert segs[0] == (formats.think_prompt(p.question["en"]), False)
        assert segs[1][0].startswith("\n".join(answer)) and segs[1][1]
        text = "".join(t for t, _ in segs)
        assert text.endswith(f"{formats.ANSWER_OPEN}{answer[-1]}{formats.ANSWER_CLOSE}")
        blocks = text.split(f"{formats.WAIT}\n")[1:]
        assert all(b.startswith(f"{formats.CHECK}2 * 3 = 6\n{answer[-1]}\n") for b in blocks)
        assert len(text) - len(segs[0][0]) <= formats.THINK_CHARS
        assert all(not trained for t, trained in segs if t == f"{formats.WAIT}\n")  # Wait itself is never trained
        waits.add(len(blocks))
    assert 0 in waits and max(waits) >= 3


def test_only_a_right_answer_with_steps_is_kept():
    p = heldout_split(split="valid")[0]
    right = formats.answer_line("en", p.answer)
    assert own.right_lines(f"1 + 1 = 2\n{right}\n", p, "en") == ["1 + 1 = 2", right]
    assert own.right_lines(right, p, "en") is None  # no steps
    assert own.right_lines("1 + 1 = 2\n" + formats.answer_line("en", p.answer + 1), p, "en") is None
    assert own.right_lines("1 + 1 = 2\n" + formats.answer_line("zh", p.answer), p, "en") is None


def test_own_answers_asks_plain_and_think_rows_and_keeps_the_right_ones():
    plan = own.plan(60, seed=5)
    asked: list[str] = []

    def generate(prompts: list[str]) -> list[str]:  # right on even rows of the batch, wrong on odd
        asked.extend(prompts)
        by_prompt = {lab_question(p.question[lang]): (p, lang) for p, lang, _ in plan}
        out = []
        for k, prompt in enumerate(prompts):
            p, lang = by_prompt[prompt]
            out.append("x = 1\n" + formats.answer_line(lang, p.answer if k % 2 == 0 else p.answer + 1))
        return out

    answers = own.own_answers(generate, plan, batch=7)
    wanted = [i for i, (_, _, kind) in enumerate(plan) if kind in own.OWN_KINDS]
    assert len(asked) == len(wanted) and 0 < len(wanted) < 60
    assert sorted(answers) == [i for n, i in enumerate(wanted) if n % 7 % 2 == 0]


def test_own_rows_train_the_own_answer_and_are_a_function_of_the_seed(view):
    plan = own.plan(40, seed=5)
    answers = {i: ["own 9 + 9 = 18", formats.answer_line(lang, p.answer)]
               for i, (p, lang, kind) in enumerate(plan) if kind in own.OWN_KINDS}
    rows = own.own_mix_rows(plan, answers, view.tokenizer, seed=3)
    assert rows == own.own_mix_rows(plan, answers, view.tokenizer, seed=3)
    for i, (p, lang, kind) in enumerate(plan):
        trained = decode(view, rows[i], True)
        if kind == "plain":
            assert trained.startswith("own 9 + 9 = 18\n" + formats.answer_line(lang, p.answer))
        elif kind == "think":
            assert trained.startswith("own 9 + 9 = 18") and formats.ANSWER_OPEN in trained
        else:
            assert "own 9 + 9" not in trained


def test_lab_own_rows_come_from_the_models_own_greedy_answers(view):
    from deliberate.backends import load_backend
    from deliberate.params import SamplingParams

    rows = sft_rows("lab-own", view, examples=24, seed=5, threads=1)
    plan = own.plan(24, seed=5)
    assert len(rows) == 24
    plain = [i for i, (_, _, kind) in enumerate(plan) if kind == "plain"]
    gens = load_backend("lab", threads=1).generate([lab_question(plan[i][0].question[plan[i][1]]) for i in plain],
                                                   SamplingParams(temperature=0, max_tokens=256))
    right = {i: lines for i, g in zip(plain, gens, strict=True)
             if (lines := own.right_lines(g.completions[0].text, plan[i][0], plan[i][1])) is not None}
    assert right  # the lab model answers some of its plain rows right
    for i, lines in right.items():
        assert decode(view, rows[i], True).startswith("\n".join(lines))
    with pytest.raises(BadInput, match="--think does not apply to `lab-own`"):
        sft_rows("lab-own", view, examples=4, seed=5, think=True)


def test_a_teachers_trace_is_kept_when_it_is_one_right_attempt_closed_by_think():
    p = heldout_split(split="valid")[0]
    right, wrong = formats.answer_line("en", p.answer), formats.answer_line("en", p.answer + 1)
    close = f"\n{formats.THINK_CLOSE}\n{formats.ANSWER_OPEN}{right}{formats.ANSWER_CLOSE}"
    assert own.right_thought(f"1 + 1 = 2\n{right}{close}", p, "en") == ["1 + 1 = 2", right]
    assert own.right_thought(f"1 + 1 = 2\n{right}", p, "en") is None  # thinking never closed
    assert own.right_thought(f"1 + 1 = 2\n{wrong}{close}", p, "en") is None
    assert own.right_thought(f"1 + 1 = 2\n{wrong}\n{formats.WAIT}\n1 + 1 = 2\n{right}{close}", p, "en") is None


def test_a_teacher_answers_the_think_rows_after_think_and_the_model_the_plain_ones(view):
    plan = own.plan(60, seed=5)
    asked: list[str] = []

    def teacher(prompts: list[str]) -> list[str]:
        asked.extend(prompts)
        by_prompt = {formats.think_prompt(p.question[lang]): (p, lang) for p, lang, _ in plan}
        return [f"t 1 = 1\n{formats.answer_line(by_prompt[q][1], by_prompt[q][0].answer)}\n{formats.THINK_CLOSE}\n"
                for q in prompts]

    answers = own.own_answers(teacher, plan, kinds=("think",), think=True)
    think = [i for i, (_, _, kind) in enumerate(plan) if kind == "think"]
    assert sorted(answers) == think and len(asked) == len(think)
    rows = own.own_mix_rows(plan, answers, view.tokenizer, seed=3)
    assert all(decode(view, rows[i], True).startswith("t 1 = 1\n") for i in think)
    with pytest.raises(BadInput, match="--teacher applies to `--data lab-own` only"):
        from deliberate.train.sft import SFTRunConfig

        SFTRunConfig(model="lab", data="lab", teacher="lab-r1", out="x").validate()


def test_lab_own_with_a_teacher_opens_think_rows_with_its_right_traces(view):
    from deliberate.backends import load_backend
    from deliberate.params import SamplingParams

    rows = sft_rows("lab-own", view, examples=24, seed=5, threads=1, teacher="lab-r1")
    plan = own.plan(24, seed=5)
    think = [i for i, (_, _, kind) in enumerate(plan) if kind == "think"]
    gens = load_backend("lab-r1", threads=1).generate([formats.think_prompt(plan[i][0].question[plan[i][1]])
                                                       for i in think], SamplingParams(temperature=0, max_tokens=256))
    right = {i: lines for i, g in zip(think, gens, strict=True)
             if (lines := own.right_thought(g.completions[0].text, plan[i][0], plan[i][1])) is not None}
    assert right  # lab-r1 thinks some of them through right
    for i, lines in right.items():
        assert decode(view, rows[i], True).startswith("\n".join(lines))


def test_mix_sets_the_formats_shares_of_the_plan_and_bad_mixes_fail_in_one_line():
    """`--mix`: a format left out gets no rows; the shares are weights; each bad part is named."""
    from deliberate.train.sft import SFTRunConfig

    plan = own.plan(400, seed=4, mix=formats.parse_mix("think=3, translation=1"))
    kinds = [kind for *_, kind in plan]
    assert set(kinds) == {"think", "translation"} and 0.65 < kinds.count("think") / len(kinds) < 0.85
    assert [k for *_, k in own.plan(50, seed=4)] != [k for *_, k in own.plan(50, seed=4, mix={"plain": 1.0})]
    for bad, why in [("plain=0.5,cot=0.5", "'cot=0.5' is not FORMAT=SHARE"), ("plain", "is not FORMAT=SHARE"),
                     ("plain=x", "the share is not a number"), ("plain=-1", "finite number >= 0"),
                     ("plain=nan", "finite number >= 0"), ("plain=0,think=0", "no format a share above 0")]:
        with pytest.raises(BadInput, match=why):
            SFTRunConfig(model="lab", data="lab", mix=bad, out="x").validate()
    with pytest.raises(BadInput, match="--mix applies to `--data lab` or `lab-own` only"):
        SFTRunConfig(model="lab", data="gsm8k", mix="plain=1", out="x").validate()
    assert SFTRunConfig(model="lab", data="lab-own", mix="plain=1", out="x").mix_shares() == {"plain": 1.0}


def test_generator_plain_leaves_the_plain_rows_to_the_generator(view, monkeypatch):
    """`--generator-plain`: the model is not asked the plain rows; they hold generator solutions."""
    import deliberate.train.data as data
    from deliberate.train.sft import SFTRunConfig

    asked: list[tuple[str, tuple[str, ...], bool]] = []
    monkeypatch.setattr(data, "_answers",
                        lambda backend, name, plan, kinds, think: asked.append((name, kinds, think)) or {})
    rows = sft_rows("lab-own", view, examples=40, seed=5, threads=1, own_plain=False)
    assert asked == [("lab", ("think",), False)]
    sft_rows("lab-own", view, examples=40, seed=5, threads=1, teacher="lab-r1", own_plain=False)
    assert asked[1:] == [("lab-r1", ("think",), True)]  # only the teacher answers
    plan = own.plan(40, seed=5)
    plain = [i for i, (_, _, kind) in enumerate(plan) if kind == "plain"]
    assert plain
    for i in plain:
        p, lang, _ = plan[i]
        trained = decode(view, rows[i], True)
        assert formats.answer_line(lang, p.answer) in trained and "\n" in trained.strip()
    with pytest.raises(BadInput, match="--generator-plain applies to `--data lab-own` only"):
        SFTRunConfig(model="lab", data="lab", generator_plain=True, out="x").validate()
