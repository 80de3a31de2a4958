"""Open-ended translation tasks: references, chrF, no answer key, user files."""

import json

import pytest

from deliberate import BadInput, load_task
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.eval.runner import evaluate
from deliberate.lab.formats import translation_prompt
from deliberate.prompting import build_prompt
from deliberate.rewards import get_reward
from deliberate.search import get_strategy


def test_lab_translation_pairs_are_the_test_questions():
    en_zh, zh_en, lab = load_task("lab-translate-en-zh"), load_task("lab-translate-zh-en"), load_task("lab-en")
    assert len(en_zh.problems) == 500 and en_zh.problems[3].question == lab.problems[3].question
    assert zh_en.problems[3].answer == lab.problems[3].question and not en_zh.has_answer_key
    p = en_zh.problems[0]
    assert build_prompt(en_zh, p, ScriptedBackend(from_table({}))).text == translation_prompt(p.question, "en", "zh")


def test_chrf_scores_and_the_oracle_is_refused():
    task = load_task("lab-translate-zh-en")
    p = task.problems[0]
    assert task.score(p, p.answer) == pytest.approx(100.0)
    assert 0 < task.score(p, p.answer.replace("has", "had")) < 100
    assert task.score(p, None) == 0.0
    assert task.extract("\n  Tom has 3 pens.\nextra line") == ("Tom has 3 pens.", "first-line")
    with pytest.raises(BadInput, match="answer key"):
        get_reward("oracle", task=task)
    with pytest.raises(BadInput, match="answer key"):
        get_strategy("best-of-n", reward="oracle")(p, ScriptedBackend(from_table({})), task)


def test_user_translation_file_and_eval_reports_chrf(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [{"source": "Tom has 3 pens.", "reference": "汤姆有3支笔。",
                                                     "src": "en", "tgt": "zh"},
                                                    {"source": "Amy has 2 eggs.", "reference": "艾米有2个鸡蛋。",
                                                     "src": "en", "tgt": "zh"}]))
    task = load_task(f"jsonl:{f}")
    assert task.kind == "translate" and task.problems[1].meta == {"src": "en", "tgt": "zh"}
    b = ScriptedBackend(from_table({"Tom has 3 pens.\n": [("汤姆有3支笔。", 0.9)],
                                    "Amy has 2 eggs.\n": [("艾米有3个鸡蛋。", 0.9)]}))
    s = evaluate(task, b, get_strategy("greedy"), out_dir=tmp_path / "run")
    assert s["metric"] == "chrf" and 50 < s["chrf"] < 100 and s["corpus_chrf"] > 0
    assert s["accuracy"] is None and s["exact_match"] == 0.5  # an exact match is not a translation's metric
    (tmp_path / "bad.jsonl").write_text('{"source": "x", "reference": ""}\n')
    with pytest.raises(BadInput, match="bad.jsonl:1: empty source or reference"):
        _ = load_task(f"jsonl:{tmp_path / 'bad.jsonl'}").problems


def test_the_lab_model_translates_only_its_two_languages(tmp_path):
    f = tmp_path / "de.jsonl"
    f.write_text(json.dumps({"source": "Hallo", "reference": "Hello", "src": "de", "tgt": "en"}) + "\n")
    task = load_task(f"jsonl:{f}")
    with pytest.raises(BadInput, match="only en<->zh"):
        build_prompt(task, task.problems[0], ScriptedBackend(from_table({})))
