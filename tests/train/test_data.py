"""SFT rows: read from a file (a bad row is named by file and line), the lab mix (token ids and a loss
mask), and task solutions."""

from __future__ import annotations

import json
import re

import pytest

from deliberate.backends import lab_model_dir
from deliberate.errors import BadInput
from deliberate.lab.generator import ANSWER_PHRASE, heldout_split
from deliberate.prompting import LAB_TRANSLATE, lab_question
from deliberate.search.budget_forcing import WAIT
from deliberate.search.reflection import REFLECTION
from deliberate.tasks import load_task
from deliberate.train.data import PromptView, lab_mix, read_sft_file, sft_rows


@pytest.fixture(scope="module")
def view():
    return PromptView.load("lab", str(lab_model_dir()))


def write(tmp_path, *lines: str):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def row(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False)


def test_the_view_reads_the_lab_models_own_format(view):
    assert view.spec == "lab" and view.prompt_style == "lab"
    with pytest.raises(BadInput, match="could not load model 'nowhere'"):
        PromptView.load("nowhere", "/nonexistent/model/dir")


def test_question_solution_rows_are_prompted_as_eval_would(tmp_path, view):
    path = write(tmp_path, row(question="Tom has 3 apples. How many?", solution="The answer is 3.", id="a"), "",
                 row(question="汤姆有3个苹果。", solution="答案是 3。"))
    assert read_sft_file(path, view) == [
        {"prompt": lab_question("Tom has 3 apples. How many?"), "completion": "The answer is 3."},
        {"prompt": "汤姆有3个苹果。\n", "completion": "答案是 3。"}]


def test_prompt_completion_rows_are_used_as_they_are(tmp_path, view):
    path = write(tmp_path, row(prompt="P1\n<think>\n", completion=" c1 "), "   ", row(prompt="P2", completion="c2"))
    assert read_sft_file(str(path), view) == [{"prompt": "P1\n<think>\n", "completion": " c1 "},
                                              {"prompt": "P2", "completion": "c2"}]
    # both shapes may share a file
    path = write(tmp_path, row(prompt="P", completion="c"), row(question="Q", solution="s"))
    assert read_sft_file(path, view) == [{"prompt": "P", "completion": "c"}, {"prompt": "Q\n", "completion": "s"}]


def test_think_opens_think_after_each_question_but_keeps_a_rows_own_prompt(tmp_path, view):
    """Distilling a thinking model (R1 section 4.1): the student's prompt opens <think> as the
    teacher's did, once, and a prompt/completion row is trained as written."""
    path = write(tmp_path, row(question="Tom has 3 apples. How many?", solution="3\n</think>\n<answer>3</answer>"),
                 row(prompt="P", completion="c"))
    a, b = read_sft_file(path, view, think=True)
    assert a["prompt"] == lab_question("Tom has 3 apples. How many?") + "<think>\n" and b == {"prompt": "P",
                                                                                              "completion": "c"}
    r1 = PromptView("lab-r1", "lab-r1", view.tokenizer)  # its prompts open <think> already: no second one
    assert read_sft_file(path, r1, think=True)[0]["prompt"].count("<think>") == 1
    rows = sft_rows("lab-en-train", view, examples=1, seed=3, think=True)
    assert rows and all(r["prompt"].endswith("\n<think>\n") for r in rows)
    with pytest.raises(BadInput, match="--think does not apply to `lab`"):
        sft_rows("lab", view, examples=1, seed=3, think=True)


GOOD = row(question="Q", solution="s")


@pytest.mark.parametrize("lines, line, message", [
    ([GOOD, "", "{not json"], 3, "not valid JSON"),
    ([GOOD, '["question", "solution"]'], 2, "expected a JSON object, got list"),
    (["", "", "", '"just a string"'], 4, "expected a JSON object, got str"),
    ([GOOD, GOOD, row(question="Q")], 3, "field 'solution' must be a non-empty string, got null"),
    ([row(question="Q", solution="")], 1, "field 'solution' must be a non-empty string"),
    ([GOOD, row(question="Q", solution="  \n ")], 2, "field 'solution' must be a non-empty string"),
    ([GOOD, row(question="Q", solution=4)], 2, "field 'solution' must be a non-empty string, got 4"),
    (["", row(solution="s")], 2, "field 'question' must be a non-empty string"),
    ([GOOD, "", "", row(prompt="P")], 4, "field 'completion' must be a non-empty string"),
    ([row(completion="c")], 1, "field 'prompt' must be a non-empty string"),
    ([GOOD, "", row(text="hello", answer="1")], 3, "needs question/solution or prompt/completion fields, got text, "),
    ([GOOD, "{}"], 2, "got none"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, view, lines, line, message):
    path = write(tmp_path, *lines)
    with pytest.raises(BadInput) as e:
        read_sft_file(path, view)
    assert f"{path}:{line}:" in str(e.value) and message in str(e.value)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_a_file_without_rows_is_refused(tmp_path, view, text):
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    with pytest.raises(BadInput, match=re.escape(f"{path}: no rows")):
        read_sft_file(path, view)


def test_an_unreadable_file_is_refused(tmp_path, view):
    with pytest.raises(BadInput, match="cannot read"):
        read_sft_file(tmp_path / "missing.jsonl", view)
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "caf\xe9", "completion": "x"}\n')
    with pytest.raises(BadInput, match="cannot read"):
        read_sft_file(tmp_path / "latin1.jsonl", view)


@pytest.fixture(scope="module")
def mix(view):
    return lab_mix(400, 3, view.tokenizer)


def split(r: dict, tok) -> tuple[str, str]:
    """A lab-mix row as (its prompt: the text before the first trained token, the trained text)."""
    ids, mask = r["input_ids"], r["completion_mask"]
    return tok.decode(ids[: mask.index(1)]), tok.decode([i for i, m in zip(ids, mask, strict=True) if m])


def test_the_lab_mix_is_a_pure_function_of_its_seed(view, mix):
    tok = view.tokenizer
    assert len(mix) == 400 and len(lab_mix(7, 0, tok)) == 7 and lab_mix(0, 0, tok) == []
    assert lab_mix(20, 3, tok) == mix[:20]
    assert lab_mix(20, 4, tok) != mix[:20]
    for r in mix:
        assert set(r) == {"input_ids", "completion_mask"} and len(r["input_ids"]) == len(r["completion_mask"])
        assert r["input_ids"][-1] == tok.eos_token_id and r["completion_mask"][-1] == 1  # the end is trained
        prompt, trained = split(r, tok)
        assert prompt.strip() and trained.removesuffix(tok.eos_token).strip()


def test_the_lab_mix_holds_every_format_in_both_languages(view, mix):
    rows = [split(r, view.tokenizer) for r in mix]
    translate = [p for p, _ in rows if p.startswith(tuple(LAB_TRANSLATE.values()))]
    think = [(p, t) for p, t in rows if p.endswith("<think>\n")]
    assert translate and think and len(translate) + len(think) < len(rows)
    assert any(ANSWER_PHRASE["en"].split("{}")[0] in t for _, t in rows)
    assert any(ANSWER_PHRASE["zh"].split("{}")[0] in t for _, t in rows)
    # think rows train the close of the thinking and the answer after it
    assert all("</think>\n" in t for _, t in think)
    # the model never learns to say Wait (nor the reflection phrase) by itself, only what follows it
    assert not any(WAIT in t or REFLECTION in t for _, t in rows)
    assert any(0 in r["completion_mask"][r["completion_mask"].index(1):] for r in mix)  # an untrained Wait


def test_the_lab_mix_never_asks_a_held_out_question(view, mix):
    test = heldout_split(split="test")
    heldout = {p.question[lang] + "\n" for p in test for lang in ("en", "zh")}
    valid = {p.question["en"] + "\n" for p in heldout_split(split="valid")}
    for r in mix:
        prompt = split(r, view.tokenizer)[0]
        for header in LAB_TRANSLATE.values():  # a translation row asks its question after the header
            prompt = prompt.removeprefix(header + "\n")
        assert not prompt.startswith(tuple(heldout)) and not prompt.startswith(tuple(valid))


@pytest.mark.parametrize("name, lang", [("lab-en-train", "en"), ("lab-zh-train", "zh")])
def test_a_train_split_gives_its_reference_solutions(view, name, lang):
    rows = sft_rows(name, view, examples=5, seed=0)  # the task's rows, all of them
    problems = load_task(name).problems
    assert len(rows) == len(problems) == 2000
    for r, p in zip(rows, problems, strict=True):
        assert r["prompt"] == lab_question(p.question)
        assert r["completion"].endswith("\n" + ANSWER_PHRASE[lang].format(p.answer))
    assert len({r["prompt"] for r in rows}) == 2000


def test_sft_rows_reads_a_file_or_the_lab_mix(tmp_path, view):
    path = write(tmp_path, row(question="Q", solution="s"))
    assert sft_rows(str(path), view, examples=99, seed=0) == [{"prompt": "Q\n", "completion": "s"}]
    assert sft_rows("lab", view, examples=6, seed=1) == lab_mix(6, 1, view.tokenizer)


def test_sft_rows_refuses_what_it_cannot_train_on(view):
    with pytest.raises(BadInput, match="'nonexistent-thing' is neither a file nor a task"):
        sft_rows("nonexistent-thing", view, examples=5, seed=0)
    with pytest.raises(BadInput, match="task lab-en-valid has no reference solutions"):
        sft_rows("lab-en-valid", view, examples=5, seed=0)
