"""Property tests on deterministic toy trees with known values (no model).

Each toy problem is a random tree of reasoning steps (depth 3, 2-3 children per node, random
token confidences) whose leaves end in "The answer is <leaf>."; exactly one leaf is right. A
scripted backend serves it: expanding a node returns its children's step lines, a rollout
from a node follows first children down to a leaf. On many random trees we check what the
MCTS docstring promises: every iteration adds one visit and its value to each node of its
path, root included (so a node's visits are at least its children's, and the root's equal the
iterations); values stay within the reward's range; with the oracle reward the search finds the
one right leaf; and the result does not depend on what else shares the batch.
"""

from __future__ import annotations

import random

import pytest

from deliberate.backends.metered import Meter
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.search.mcts import MCTS
from deliberate.tasks import Problem, Task

TASK = Task("toy", "toy trees", lambda: [])


def toy_tree(seed: int, depth: int = 3) -> tuple[Problem, dict, int]:
    """(problem, scripted table, number of leaves). Step lines are unique per tree and per node."""
    rng = random.Random(seed)
    table: dict[str, list[tuple[str, float]]] = {}
    leaves: list[str] = []

    def grow(key: str, level: int) -> str:
        """Fill the table below `key`; return the first-child continuation from it to a leaf."""
        if level == depth:
            leaves.append(key)
            table[key] = [(f"The answer is {len(leaves)}.", rng.uniform(0.3, 0.99))]
            return table[key][0][0]
        kids = []
        for c in range(rng.randint(2, 3)):
            line = f"t{seed}n{level}{key.strip()}x{c}\n"  # unique: it spells the node's path
            kids.append((line + grow(line, level + 1), rng.uniform(0.3, 0.99)))
        table[key] = kids
        return kids[0][0]

    root = f"Q{seed}\n"
    grow(root, 0)
    gold = rng.randint(1, len(leaves))
    return Problem(f"toy{seed}", f"Q{seed}", str(gold)), table, len(leaves)


def search(problems, table, **options):
    backend = ScriptedBackend(from_table(table))
    results = MCTS(children=3, temperature=1.0, rollout_temperature=0.7, **options).run(
        problems, backend, TASK, seed=0)
    return results, backend


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reward", ["oracle", "confidence"])
def test_visits_and_values_follow_the_documented_backpropagation(seed, reward):
    problem, table, _ = toy_tree(seed)
    iterations = random.Random(seed).randint(3, 20)
    mcts = MCTS(children=3, iterations=iterations, reward=reward)
    (found,) = mcts._search([problem], Meter(ScriptedBackend(from_table(table))), TASK, 0)
    tree = found.tree
    children = {n.id: [] for n in tree.nodes}
    for n in tree.nodes[1:]:
        children[n.parent].append(n)
    # where each rollout started and its value (in a toy tree a node's rollout is always the same path)
    started = {r.node: r.value for r in found.rollouts}
    assert tree.root.visits == iterations  # one visit per iteration at the root
    for n in tree.nodes:
        ended_here = n.visits - sum(c.visits for c in children[n.id])
        assert ended_here >= 0  # a path through a child passes its parent
        # the value sum is the children's plus one rollout value per iteration that ended here
        expected = sum(c.value_sum for c in children[n.id]) + (ended_here * started[n.id] if ended_here else 0)
        assert n.value_sum == pytest.approx(expected)
        assert 0 <= n.value_sum <= n.visits + 1e-9  # both rewards lie in [0, 1]


@pytest.mark.parametrize("seed", range(12))
def test_mcts_with_the_oracle_reward_finds_the_one_right_leaf(seed):
    problem, table, leaves = toy_tree(seed)
    (res,), _ = search([problem], table, iterations=4 * leaves, reward="oracle")
    assert res.answer == problem.answer
    assert max(t.score for t in res.traces) == 1.0


def test_a_search_does_not_depend_on_its_batch():
    trees = [toy_tree(s) for s in range(4)]
    table = {k: v for _, t, _ in trees for k, v in t.items()}
    together, _ = search([p for p, _, _ in trees], table, iterations=10)
    for (p, t, _), r in zip(trees, together, strict=True):
        (alone,), _ = search([p], t, iterations=10)
        assert alone.info["tree"] == r.info["tree"] and alone.answer == r.answer
