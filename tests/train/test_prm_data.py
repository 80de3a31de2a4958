"""Step-labelled data as published: stepwise rows, Math-Shepherd's tagged text, PRM800K's rated
steps (rows written here in each source's own layout), and bad rows named by file and line."""

import json

import pytest

from deliberate import BadInput
from deliberate.train.prm_data import read_step_rows

SHEPHERD = {  # the layout of peiyi9979/Math-Shepherd
    "input": "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 ки\nStep 2: He has 6. The answer is: 6 ки",
    "label": "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 +\nStep 2: He has 6. The answer is: 6 -",
    "task": "GSM8K",
}
PRM800K = {  # the layout of openai/prm800k's phase2 rows
    "labeler": "x", "timestamp": "t", "generation": 1, "is_quality_control_question": False,
    "question": {"problem": "What is 1 + 1?", "ground_truth_answer": "2"},
    "label": {"steps": [
        {"completions": [{"text": "1 + 1 = 2.", "rating": 1, "flagged": False}], "human_completion": None,
         "chosen_completion": 0},
        {"completions": [{"text": "So it is 3.", "rating": -1, "flagged": False},
                         {"text": "So it is 2.", "rating": 0, "flagged": False}],
         "human_completion": None, "chosen_completion": 1},
        {"completions": [{"text": "# Answer\n\n3", "rating": -1, "flagged": False}], "human_completion": None,
         "chosen_completion": None},
    ], "total_time": 1, "finish_reason": "found_error"},
}
STEPWISE = {"prompt": "Q", "completions": ["a", "b"], "labels": [True, False], "id": "q"}


def write(tmp_path, *rows, raw=None):
    path = tmp_path / "steps.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_each_published_layout_reads_as_stepwise_rows(tmp_path):
    shepherd, prm800k, own = read_step_rows(write(tmp_path, SHEPHERD, PRM800K, STEPWISE))
    assert shepherd == {"prompt": "Tom has 3 apples and buys 2. How many?",
                        "completions": ["Step 1: 3 + 2 = 5", "Step 2: He has 6. The answer is: 6"],
                        "labels": [True, False]}
    # the chosen path; neutral (0) counts as right; a step nobody chose ends the path after it
    assert prm800k == {"prompt": "What is 1 + 1?", "completions": ["1 + 1 = 2.", "So it is 2.", "# Answer\n\n3"],
                       "labels": [True, True, False]}
    assert own["labels"] == [True, False] and own["id"] == "q"


def test_soft_labels_are_made_hard(tmp_path):
    (row,) = read_step_rows(write(tmp_path, {"prompt": "Q", "completions": ["a", "b"], "labels": [0.25, 0.0]}))
    assert row["labels"] == [True, False]


@pytest.mark.parametrize("row,words", [
    ({"prompt": "Q", "completions": ["a", "b"], "labels": [True]}, "2 steps but 1 labels"),
    ({"prompt": "Q", "completions": ["a"], "labels": [2]}, "a label must be a bool"),
    ({"input": "no tags here", "label": "no tags here"}, "no step tag"),
    ({"input": "Q Step 1: a ки", "label": "Q Step 1: a ?"}, "does not have \\+ or -"),
    ({"question": {"problem": "Q"}, "label": {"steps": []}}, "no rated step"),
    ({"text": "hello"}, "not a stepwise, Math-Shepherd or PRM800K row"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, words):
    path = write(tmp_path, STEPWISE, row)
    with pytest.raises(BadInput, match=rf"steps.jsonl:2: .*{words}"):
        read_step_rows(path)


def test_broken_json_and_empty_files(tmp_path):
    with pytest.raises(BadInput, match=r"steps.jsonl:1: "):
        read_step_rows(write(tmp_path, raw="{not json\n"))
    with pytest.raises(BadInput, match="holds no rows"):
        read_step_rows(write(tmp_path, raw="\n"))
    with pytest.raises(BadInput, match="no label file"):
        read_step_rows(tmp_path / "missing.jsonl")
