"""The eval runner under faults: error rows, --max-errors, bounded grading in threads, manifests."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from deliberate import grading
from deliberate.backends.base import Capabilities
from deliberate.backends.scripted import ScriptedBackend, from_texts
from deliberate.errors import BackendError, BadInput
from deliberate.eval.runner import RunBug, TooManyErrors, evaluate, read_rows
from deliberate.search import base as search_base
from deliberate.search import get_strategy
from deliberate.search.base import Compute, Result, Strategy, Trace
from deliberate.tasks import Problem, Task, load_task


class Raising:
    """A reward that raises on one problem: an injected fault."""

    name, needs_answer_key, needs_logprobs = "raising", False, 5

    def __init__(self, bad_id: str) -> None:
        self.bad_id = bad_id

    def __call__(self, problem, paths):
        if problem.id == self.bad_id:
            raise RuntimeError("injected reward fault")
        return [[0.5] for _ in paths]


def test_a_raising_reward_costs_one_error_row_and_the_run_goes_on(lab, tmp_path, monkeypatch):
    task = load_task("lab-en")
    bad = task.problems[2].id
    monkeypatch.setattr(search_base, "get_reward", lambda *a, **k: Raising(bad))
    s = evaluate(task, lab, get_strategy("best-of-n", n=2), limit=6, out_dir=tmp_path, batch_problems=4)
    rows = read_rows(tmp_path / "results.jsonl")
    assert [r["id"] for r in rows] == [p.id for p in task.problems[:6]]  # every problem, once, in order
    errors = [r for r in rows if "error" in r]
    assert [(r["id"], r["error"]) for r in errors] == [(bad, "RuntimeError: injected reward fault")]
    assert all(r["samples"] for r in rows if "error" not in r)  # its batch-mates were solved normally
    assert (s["errors"], s["error_rate"], s["n_problems"]) == (1, pytest.approx(1 / 6), 6)


def test_max_errors_aborts_a_broken_run_and_keeps_its_rows(lab, tmp_path, monkeypatch):
    task = load_task("lab-en")
    monkeypatch.setattr(search_base, "get_reward", lambda *a, **k: Raising(task.problems[0].id))
    with pytest.raises(TooManyErrors, match="more than --max-errors 0"):
        evaluate(task, lab, get_strategy("best-of-n", n=2), limit=6, out_dir=tmp_path, batch_problems=2,
                 max_errors=0)
    rows = read_rows(tmp_path / "results.jsonl")
    assert len(rows) == 2 and "error" in rows[0]  # it stopped after the first batch, rows on disk


class Buggy:
    """A reward with a programming error on some problems (all of them by default)."""

    name, needs_answer_key, needs_logprobs = "buggy", False, 5

    def __init__(self, only: set[str] | None = None) -> None:
        self.only = only

    def __call__(self, problem, paths):
        if self.only is None or problem.id in self.only:
            return [[len(None)] for _ in paths]  # TypeError: a bug, not a bad sample
        return [[0.5] for _ in paths]


def test_a_bug_in_every_problem_stops_the_run_with_its_traceback(lab, tmp_path, monkeypatch):
    task = load_task("lab-en")
    monkeypatch.setattr(search_base, "get_reward", lambda *a, **k: Buggy())
    with pytest.raises(RunBug, match=r"a bug stopped the run: TypeError: .*in every problem tried") as e:
        evaluate(task, lab, get_strategy("best-of-n", n=2), limit=6, out_dir=tmp_path, batch_problems=2)
    assert "error.log" in str(e.value) and "\n" not in str(e.value)  # one line for the user
    log = (tmp_path / "error.log").read_text()
    assert "Traceback" in log and "len(None)" in log  # the traceback names the faulty line
    assert read_rows(tmp_path / "results.jsonl") == []  # no error rows: a fixed rerun solves them
    monkeypatch.setattr(search_base, "get_reward", lambda *a, **k: Raising("none"))
    s = evaluate(task, lab, get_strategy("best-of-n", n=2), limit=6, out_dir=tmp_path, batch_problems=2)
    assert s["errors"] == 0 and s["n_problems"] == 6


def test_a_programming_error_in_one_problem_is_still_an_error_row(lab, tmp_path, monkeypatch):
    task = load_task("lab-en")
    monkeypatch.setattr(search_base, "get_reward", lambda *a, **k: Buggy({task.problems[1].id}))
    s = evaluate(task, lab, get_strategy("best-of-n", n=2), limit=4, out_dir=tmp_path, batch_problems=2)
    rows = read_rows(tmp_path / "results.jsonl")
    assert s["errors"] == 1 and [r["id"] for r in rows if "error" in r] == [task.problems[1].id]
    assert rows[1]["error"].startswith("TypeError") and rows[1]["compute"]["tokens_generated"] > 0  # what it spent


def test_compute_is_exact_per_problem_whatever_the_batching(lab, tmp_path):
    """The meter bills each request to its problem: batched or alone, a problem costs the same."""
    task = load_task("lab-en")
    for name, opts in (("best-of-n", {"n": 4}), ("mcts", {"iterations": 3}), ("beam", {"width": 2, "expand": 2}),
                       ("reflection", {})):
        runs = [evaluate(task, lab, get_strategy(name, **opts), limit=3, out_dir=tmp_path / f"{name}{b}",
                         batch_problems=b) for b in (1, 3)]
        alone, batched = (read_rows(tmp_path / f"{name}{b}" / "results.jsonl") for b in (1, 3))
        for a, b in zip(alone, batched, strict=True):
            for key in ("tokens_generated", "tokens_read", "calls", "verifier_tokens"):
                assert a["compute"][key] == b["compute"][key], (name, key, a["compute"], b["compute"])
        assert runs[0]["tokens_generated"] == sum(r["compute"]["tokens_generated"] for r in alone) > 0


def test_bad_settings_still_fail_the_run_not_each_row(lab, tmp_path):
    with pytest.raises(BadInput, match="larger than max_tokens"):
        evaluate(load_task("lab-en"), lab, get_strategy("mcts", action="mini-step:64", max_tokens=32), limit=2,
                 out_dir=tmp_path)


@dataclass(frozen=True)
class FixedConfig:
    text: str = ""


class Fixed(Strategy):
    """Answers every problem with one fixed text (to feed the grader chosen inputs)."""

    name, Config = "fixed", FixedConfig

    def solve_batch(self, problems, backend, task, *, seed=0):
        text = self.config.text
        answer = task.extract(text)[0]
        return [Result(answer, [Trace(text, answer, "phrase", 1, "stop")], Compute(1, 1, 1, 0.0)) for _ in problems]


def test_a_grader_input_that_would_hang_is_a_timeout_verdict_even_in_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "SYMBOLIC_TIMEOUT_S", 1.0)
    problems = [Problem(f"p{i}", "q", "\\frac{1}{2}") for i in range(2)]
    task = Task("toy", "toy", lambda: problems)
    hang = Fixed(text="The answer is \\boxed{9^{9^{9^{9}}}}.")  # sympy would evaluate this tower for ever
    start = time.time()
    with ThreadPoolExecutor(2) as pool:  # off the main thread, where signal-based timeouts cannot work
        s = pool.submit(evaluate, task, ScriptedBackend(from_texts({})), hang, out_dir=tmp_path).result(timeout=60)
    assert time.time() - start < 30
    rows = read_rows(tmp_path / "results.jsonl")
    assert [r["verdict"] for r in rows] == ["timeout", "timeout"] and s["grader_timeouts"] == 2
    assert s["correct"] == 0 and s["errors"] == 0
    # the grader recovers: the next comparison in a thread is answered normally
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda a: grading.compare("\\frac{1}{2}", a), ["0.5", "\\frac{2}{4}", "1/3", None]))
    assert verdicts == ["correct", "correct", "wrong", "no-answer"]


def test_rows_record_the_graded_span_rule_and_verdict(lab, tmp_path):
    s = evaluate(load_task("lab-en"), lab, get_strategy("greedy"), limit=3, out_dir=tmp_path)
    for r in read_rows(tmp_path / "results.jsonl"):
        sample = r["samples"][0]
        if sample["answer"] is not None:
            a, b = sample["span"]
            assert sample["text"][a:b] == sample["answer"] and sample["rule"] == "phrase"
            assert r["graded"] == {"rule": "phrase", "span": [a, b], "sample": 0}
        assert r["verdict"] in ("correct", "wrong", "no-answer") and (r["verdict"] == "correct") == r["correct"]
    assert s["no_answer"] == sum(r["answer"] is None for r in read_rows(tmp_path / "results.jsonl"))


def test_manifest_records_what_the_numbers_depend_on(lab, tmp_path):
    evaluate(load_task("lab-en"), lab, get_strategy("self-consistency", n=2, temperature=0.9), limit=2,
             out_dir=tmp_path, seed=3)
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["model"]["spec"] == "lab" and len(m["model"]["weights_sha256"]) == 64
    assert len(m["model"]["files_sha256"]) == 64  # config and tokenizer files change results too
    assert m["strategy"] == {"name": "self-consistency", "options": get_strategy(
        "self-consistency", n=2, temperature=0.9).options()} and m["seed"] == 3
    assert {"torch", "transformers", "math-verify"} <= set(m["libraries"])
    assert len(m["task"]["data_sha256"]) == 64 and len(m["prompt_template_sha256"]) == 64
    assert len(m["grader_sha256"]) == 64 and m["machine"]["cpu_count"] >= 1
    assert json.loads((tmp_path / "run.json").read_text())["weights"] == m["model"]["weights_sha256"][:16]


@pytest.mark.parametrize("strategy, options, caps, words", [
    ("mcts", {}, Capabilities(max_logprobs=0), "mcts with the confidence reward needs top-5 logprobs, "
                                                "but backend 'scripted' returns at most 0."),
    ("best-of-n", {"reward": "self-eval"}, Capabilities(max_logprobs=20, scoring=False),
     "best-of-n with the self-eval reward needs continuation scoring, but backend 'scripted' cannot score"),
    ("budget-forcing", {}, Capabilities(max_logprobs=20, think_format=False),
     "budget-forcing needs a model that thinks in <think>…</think>; backend 'scripted' has no think format."),
])
def test_a_capability_mismatch_fails_before_any_generation(tmp_path, strategy, options, caps, words):
    backend = ScriptedBackend(from_texts({}), caps, prompt_style="completion")  # a format that declares no thinking
    with pytest.raises(BackendError) as e:
        evaluate(load_task("lab-en"), backend, get_strategy(strategy, **options), limit=2, out_dir=tmp_path / "r")
    assert words in str(e.value)
    assert backend.calls == 0 and not (tmp_path / "r").exists()  # nothing generated, nothing written


class Slow(ScriptedBackend):
    """Every backend call takes 0.2 s."""

    def generate(self, prompts, params):
        time.sleep(0.2)
        return super().generate(prompts, params)


def test_a_problem_past_its_time_limit_is_an_error_row_and_the_run_goes_on(tmp_path):
    problems = [Problem(f"p{i}", "Tom has 3 apples.", "3") for i in range(2)]
    task = Task("toy", "toy", lambda: problems)
    backend = Slow(from_texts({"Tom": ["The answer is 3."]}))
    start = time.time()
    s = evaluate(task, backend, get_strategy("reflection", rounds=6), out_dir=tmp_path / "slow", problem_timeout_s=0.5)
    rows = read_rows(tmp_path / "slow" / "results.jsonl")
    assert [r.get("error") for r in rows] == ["ProblemTimeout: the problem took more than 0.5 s"] * 2
    assert s["errors"] == 2 and time.time() - start < 3  # each stopped at its first call past 0.5 s
    for r in rows:  # a cut row still records what it spent before the cut
        assert r["compute"]["calls"] >= 2 and r["compute"]["tokens_generated"] > 0 and r["compute"]["wall_s"] > 0.3
    s = evaluate(task, backend, get_strategy("greedy"), out_dir=tmp_path / "fast", problem_timeout_s=5)
    assert s["errors"] == 0 and s["correct"] == 2


def toy_run() -> tuple[Task, ScriptedBackend]:
    problems = [Problem(f"p{i}", "Tom has 3 apples.", "3") for i in range(2)]
    return Task("toy", "toy", lambda: problems), ScriptedBackend(from_texts({"Tom": ["The answer is 3."]}))


def test_run_folders_are_named_as_the_readme_says_and_an_old_name_still_resumes(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    task, backend = toy_run()
    out = Path(evaluate(task, backend, get_strategy("greedy"))["out"])
    name, digest = out.name.rsplit("__", 1)
    assert out.parent == Path("runs/eval") and name == "toy__scripted__greedy" and len(digest) == 8
    old = out.rename(out.with_name(f"toy_scripted_greedy__{digest}"))  # the name before: `__` squeezed to `_`
    calls = backend.calls
    assert Path(evaluate(task, backend, get_strategy("greedy"))["out"]) == old and backend.calls == calls


def test_a_refused_resume_names_each_setting_with_both_values(tmp_path):
    task, backend = toy_run()
    evaluate(task, backend, get_strategy("self-consistency", n=2), out_dir=tmp_path)
    with pytest.raises(BadInput, match=r"different settings \(options\.n: 2 in the folder, 3 now; "
                                       r"seed: 0 in the folder, 1 now\); use another --out"):
        evaluate(task, backend, get_strategy("self-consistency", n=3), out_dir=tmp_path, seed=1)
    with pytest.raises(BadInput, match=r"\(max_tokens_per_problem: not set in the folder, 100 now\)"):
        evaluate(task, backend, get_strategy("self-consistency", n=2), out_dir=tmp_path, max_tokens_per_problem=100)
