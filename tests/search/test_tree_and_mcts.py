"""The tree, expansion and MCTS on scripted backends: UCT, rewards and backpropagation to the number."""

import json
import math

import pytest

from deliberate import BadInput
from deliberate.backends.metered import Meter
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.search import get_strategy
from deliberate.search.mcts import MCTS, puct, uct
from deliberate.search.tree import Action, Tree, expand
from deliberate.tasks import Problem, Task

TASK = Task("t", "test", lambda: [])

TABLE = {
    "Q\n": [("a\n", 0.8), ("b\n", 0.5)],
    "Q\na\n": [("The answer is 1.", 0.9)],
    "Q\nb\n": [("The answer is 2.", 0.5)],
}


def test_action_specs():
    assert Action.parse("step") == Action("step", 0, "\n")
    assert Action.parse("mini-step:32").tokens == 32 and str(Action.parse("mini-step:64")) == "mini-step:64"
    for bad in ("mini-step:0", "mini-step:x", "chunk"):
        with pytest.raises(BadInput):
            Action.parse(bad)


def test_expand_batches_trees_merges_duplicates_and_marks_answers():
    b = ScriptedBackend(from_table({**TABLE, "R\n": [("c\n", 0.7), ("c\n", 0.7), ("The answer is 9.", 0.6)]}))
    meter = Meter(b)
    q, r = Tree("Q\n", prompt_ids=b.encode("Q\n")), Tree("R\n", prompt_ids=b.encode("R\n"))
    kids = expand(meter, [(q, q.root, 2, 0, 50, "q"), (r, r.root, 3, 0, 50, "r")], Action.parse("step"),
                  temperature=1.0, extract=TASK.extract)
    assert b.calls == 1
    assert [k.text for k in kids[0]] == ["a\n", "b\n"] and [k.text for k in kids[1]] == ["c\n", "The answer is 9."]
    assert [k.terminal for k in kids[1]] == [False, True] and kids[1][1].answer == "9"
    assert kids[0][0].confidences == pytest.approx([0.8, 0.8]) and kids[0][0].tokens == 2
    assert kids[0][0].ids == b.encode("a\n") and q.ids(kids[0][0]) == b.encode("Q\na\n")  # ids, not re-tokenized text
    assert meter.usage_of("r").tokens_generated == 2 + 2 + 16  # merged duplicates still cost their tokens
    assert meter.usage_of("q").tokens_generated == 4 and meter.usage_of("q").calls == 1
    mini = expand(meter, [(q, q.root, 1, 0, 50, "q")], Action.parse("mini-step:1"), temperature=1.0)
    assert mini[0][0].text == "a" and not mini[0][0].terminal


def test_tree_json_round_trip():
    t = Tree("Q\n", "Q")
    a = t.add(t.root, "a\n", prior=0.5, tokens=2, confidences=[0.8, 0.8])
    t.add(a, "The answer is 1.", terminal=True, answer="1", tokens=16)
    a.visits, a.value_sum = 3, 2.5
    back = Tree.from_json(json.loads(json.dumps(t.to_json())))
    assert back == t and back.text(back.nodes[2]) == "a\nThe answer is 1." and back.tokens(back.nodes[2]) == 18
    with pytest.raises(BadInput, match="version"):
        Tree.from_json({**t.to_json(), "version": 2})


def test_uct_and_puct_choose_by_the_formula():
    t = Tree("Q\n")
    t.root.visits = 10
    a = t.add(t.root, "a")
    b = t.add(t.root, "b")
    a.visits, a.value_sum, b.visits, b.value_sum = 5, 4.0, 2, 1.0
    assert uct(t.root, a, 1.0) == pytest.approx(0.8 + math.sqrt(math.log(10) / 5))
    assert uct(t.root, b, 1.0) == pytest.approx(0.5 + math.sqrt(math.log(10) / 2))
    assert MCTS(exploration=1.0)._select(t) is b  # 1.573 > 1.479: exploration wins
    assert MCTS(exploration=0.1)._select(t) is a  # 0.868 > 0.598: exploitation wins
    assert puct(t.root, b, 1.0, 0.25) == pytest.approx(0.5 + 0.25 * math.sqrt(10) / 3)
    c = t.add(t.root, "c")
    assert MCTS()._select(t) is c  # an unvisited child first


def test_mcts_phases_to_the_number():
    """it0: expand root -> a, b; roll out from a (v = (2*0.8 + 16*0.9)/18). it1: b is unvisited;
    its two children are the same terminal step, merged (v = 0.5). it2: UCT picks a (0.889 + 0.833 >
    0.5 + 0.833); its child is terminal. Answer: most visited a, then its terminal child."""
    b = ScriptedBackend(from_table(TABLE))
    res = MCTS(iterations=3, children=2, exploration=1.0).run([Problem("p", "Q", "1")], b, TASK, seed=0)[0]
    tree = Tree.from_json(res.info["tree"])
    root, a, bb = tree.nodes[0], tree.nodes[1], tree.nodes[2]
    va = (2 * 0.8 + 16 * 0.9) / 18
    assert [n.text for n in tree.nodes] == ["", "a\n", "b\n", "The answer is 2.", "The answer is 1."]
    assert (root.visits, a.visits, bb.visits) == (3, 2, 1)
    assert root.value_sum == pytest.approx(2 * va + 0.5) and a.value_sum == pytest.approx(2 * va)
    assert bb.value == pytest.approx(0.5) and tree.nodes[4].terminal and tree.nodes[4].answer == "1"
    assert res.answer == "1"
    assert [t.answer for t in res.traces] == ["1", "2", "1"] and res.traces[0].score == pytest.approx(va)
    assert res.compute.tokens_generated == 4 + 16 + 32 + 32
    assert res.compute.calls == 4 and b.calls == 4  # it1 and it2 need no rollout call


def test_mcts_batches_problems_and_is_seeded():
    table = {**TABLE, "R\n": [("The answer is 7.", 0.9)]}
    b = ScriptedBackend(from_table(table))
    probs = [Problem("p", "Q", "1"), Problem("r", "R", "7")]
    res = MCTS(iterations=2, children=2).run(probs, b, TASK, seed=0)
    assert [r.answer for r in res] == ["1", "7"]
    alone = ScriptedBackend(from_table(table))
    MCTS(iterations=2, children=2).run(probs[:1], alone, TASK, seed=0)
    assert b.calls == alone.calls == 3  # the second problem rides in the same calls
    again = MCTS(iterations=2, children=2).run(probs[::-1], ScriptedBackend(from_table(table)), TASK, seed=0)
    assert [r.info["tree"] for r in again[::-1]] == [r.info["tree"] for r in res]


def test_invalid_mcts_settings():
    with pytest.raises(BadInput, match="iterations must be >= 1"):
        get_strategy("mcts", iterations=0)
    with pytest.raises(BadInput, match="larger than max_tokens"):
        get_strategy("mcts", action="mini-step:64", max_tokens=32).run(
            [Problem("p", "Q", "1")], ScriptedBackend(from_table(TABLE)), TASK)


def test_mcts_on_the_lab_model_finishes_every_path_within_budget(lab):
    from deliberate import load_task

    task = load_task("lab-en")
    res = get_strategy("mcts", iterations=3, children=2, action="mini-step:8").run(
        task.problems[:2], lab, task, seed=1)
    for r in res:
        tree = Tree.from_json(r.info["tree"])
        assert all(tree.tokens(n) <= task.max_tokens for n in tree.nodes)
        assert all(len(n.confidences) == n.tokens for n in tree.nodes[1:])
        assert r.compute.tokens_generated > 0 and len(r.traces) >= 1


def test_rstar_expands_every_action_and_checks_mutual_consistency():
    table = {"Q\n": [("1 + 2 = 3\nThe answer is 3.", 0.9)], "Sub-question:": [(" What is 1 + 2? 3\n", 0.9)],
             "Rephrased:": [(" Q, restated.\n", 0.9)], "Answer again:": [(" 3\n", 0.9)],
             "3\n": [("The answer is 3.", 0.9)], "\n": [("1 + 2 = 3\nThe answer is 3.", 0.9)]}
    b = ScriptedBackend(from_table(table))
    res = get_strategy("rstar", iterations=3, actions="step,rest,subquestion,reanswer,rephrase")(
        Problem("p", "Q", "3"), b, TASK)
    tree = Tree.from_json(res.info["tree"])
    assert {tree.nodes[i].kind for i in tree.root.children} == {"step", "rest", "subquestion", "rephrase"}
    rest = next(tree.nodes[i] for i in tree.root.children if tree.nodes[i].kind == "rest")
    assert rest.terminal and rest.answer == "3"
    sub = next(tree.nodes[i] for i in tree.root.children if tree.nodes[i].kind == "subquestion")
    assert sub.text == "Sub-question: What is 1 + 2? 3\n"
    assert res.answer == "3" and res.info["consistent_paths"] >= 1
    assert all(t.score == pytest.approx(1.0) for t in res.traces if t.answer == "3")  # every answer agrees
    with pytest.raises(BadInput, match="rstar actions"):
        get_strategy("rstar", actions="step,teleport")


def test_rstar_on_the_lab_model_with_its_two_meaningful_actions(lab):
    from deliberate import load_task

    task = load_task("lab-zh")
    res = get_strategy("rstar", iterations=2, actions="step,rest").run(task.problems[:2], lab, task, seed=0)
    assert all(set(r.info["actions"]) <= {"step", "rest"} and r.compute.tokens_generated > 0 for r in res)


def test_mcts_consistency_reward_scores_a_rollout_against_the_earlier_ones():
    """Consistency compares paths, so MCTS hands it every earlier rollout: the first rollout has
    no peers (0), the second agrees with the first (1.0)."""
    table = {"Q\n": [("a\n", 0.8), ("b\n", 0.5)], "Q\na\n": [("The answer is 1.", 0.9)],
             "Q\nb\n": [("The answer is 1.", 0.5)]}
    mcts = MCTS(iterations=2, children=2, reward="consistency")
    (s,) = mcts._search([Problem("p", "Q", "1")], Meter(ScriptedBackend(from_table(table))), TASK, 0)
    assert [(r.answer, r.value) for r in s.rollouts] == [("1", 0.0), ("1", 1.0)]


def test_rstar_defaults_to_the_actions_the_models_format_knows():
    rstar = get_strategy("rstar")
    assert rstar.actions_for(ScriptedBackend(from_table({}))) == ["step", "rest"]  # the lab format
    assert rstar.actions_for(ScriptedBackend(from_table({}), prompt_style="completion")) == [
        "step", "rest", "subquestion", "reanswer", "rephrase"]
    assert get_strategy("rstar", actions="rest").actions_for(ScriptedBackend(from_table({}))) == ["rest"]
