import pytest

from deliberate import BadInput, UnknownName, load_task
from deliberate.grading import is_equivalent
from deliberate.tasks import TASKS
from deliberate.tasks.loaders import load_user_jsonl


@pytest.mark.parametrize("name, count", [
    ("gsm8k", 1319), ("gsm8k-train", 7473), ("math500", 500), ("game24", 100),
    ("lab-en", 500), ("lab-zh", 500), ("lab-en-valid", 500),
    *[(f"mgsm-{lang}", 250) for lang in ("en", "zh", "ja", "de", "fr", "es", "ru", "th", "sw", "bn", "te")],
])
def test_every_task_loads(name, count):
    assert len(load_task(name).problems) == count


def test_formats_follow_the_data_readme():
    gsm = load_task("gsm8k").problems
    assert gsm[0].answer == "18"
    assert all("," not in p.answer for p in gsm)
    # MGSM-en row i is GSM8K test row i
    assert [p.answer for p in load_task("mgsm-en").problems] == [p.answer for p in gsm[:250]]
    # row i is the same problem in every language
    assert [p.answer for p in load_task("mgsm-zh").problems] == [p.answer for p in load_task("mgsm-te").problems]
    assert load_task("game24").problems[0].id == "game24-900"
    assert load_task("math500").problems[0].answer.startswith("\\left( 3")


@pytest.mark.parametrize("name", ["gsm8k", "gsm8k-train", "mgsm-en", "mgsm-bn"])
def test_gold_is_equivalent_to_itself_written_as_a_completion(name):
    task = load_task(name)
    for p in task.problems:
        g = task.grade(p, f"Some reasoning with 12 numbers.\nThe answer is {p.answer}.")
        assert g.correct, (p.id, p.answer, g)


def test_lab_tasks_are_the_same_problems_in_both_languages():
    en, zh = load_task("lab-en").problems, load_task("lab-zh").problems
    assert [p.answer for p in en] == [p.answer for p in zh]
    assert en[0].question != zh[0].question
    valid = load_task("lab-en-valid").problems
    assert not {p.question for p in valid} & {p.question for p in en}


def test_unknown_task_lists_choices():
    with pytest.raises(UnknownName, match="mgsm-en"):
        load_task("mgsm-xx")


def test_user_jsonl(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "q", "answer": "a\\n#### 1,000"}\n')
    probs = load_task(f"jsonl:{f}").problems
    assert [p.answer for p in probs] == ["2", "1000"]
    assert is_equivalent(probs[1].answer, "1000")


@pytest.mark.parametrize("content, message", [
    ('{"question": "a", "answer": "1"}\n{"question": "b"\n', "mine.jsonl:2: not valid JSON"),
    ('{"question": "a"}\n', "mine.jsonl:1: missing field(s) answer"),
    ('[1, 2]\n', "mine.jsonl:1: expected a JSON object"),
    ('{"question": " ", "answer": "1"}\n', "mine.jsonl:1: empty question"),
])
def test_malformed_rows_name_file_and_line(tmp_path, content, message):
    f = tmp_path / "mine.jsonl"
    f.write_text(content)
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_user_jsonl(str(f))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BadInput, match="data file not found"):
        _ = load_task(f"jsonl:{tmp_path / 'nope.jsonl'}").problems


def test_missing_shared_data_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("DELIBERATE_DATA", str(tmp_path))
    with pytest.raises(BadInput, match="data file not found"):
        _ = load_task("mgsm-fr").problems


def test_registry_descriptions():
    assert all(t.description for t in TASKS.values())
