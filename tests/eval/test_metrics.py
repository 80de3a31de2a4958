import itertools
import random

import pytest

from deliberate.eval.metrics import auroc, pass_at_k, summarize, wilson


def brute_pass_at_k(n, c, k):
    """pass@k by enumerating every k-subset of n samples of which c are correct."""
    subsets = list(itertools.combinations([1] * c + [0] * (n - c), k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(n, c, k) for n in (1, 4, 7) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_rejects_bad_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_wilson_interval():
    lo, hi = wilson(50, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.4038, 0.5962)
    assert wilson(0, 10)[0] == 0.0


def row(gold, answers, correct_flags, answer=None):
    samples = [{"answer": a, "correct": c} for a, c in zip(answers, correct_flags, strict=True)]
    return {"gold": gold, "answer": answer, "correct": answer == gold, "independent_samples": True,
            "samples": samples, "compute": {"tokens_generated": 10, "tokens_read": 5, "calls": 1, "wall_s": 0.5}}


def test_summary_pass_maj_test():
    rows = [row("7", ["7", "3", "7", "3"], [True, False, True, False], answer="7"),
            row("5", ["1", "1", "5", "2"], [False, False, True, False], answer="1"),
            row("9", ["2", "3", "4", "6"], [False] * 4, answer="2")]
    s = summarize(rows)
    assert s["accuracy"] == pytest.approx(1 / 3)
    assert s["pass@1"] == pytest.approx((0.5 + 0.25 + 0) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3)
    assert s["test@4"] == pytest.approx(2 / 3)
    # maj@2: row 1 votes 7 vs 3, tie -> first seen (7) right; row 2 votes 1 (wrong); row 3 wrong
    assert s["maj@2"] == pytest.approx(1 / 3)
    assert s["tokens_generated"] == 30 and s["tokens_per_correct"] == 30


def test_maj_counts_equivalent_spellings_as_one_vote():
    r = row("1080", ["1,080", "1080.0", "999"], [True, True, False], answer="1,080")
    assert summarize([r])["maj@3"] == 1.0


def test_random_rows_pass_at_k_is_monotone():
    rng = random.Random(0)
    rows = [row("1", ["1"] * 8, [rng.random() < 0.3 for _ in range(8)]) for _ in range(20)]
    s = summarize(rows)
    assert s["pass@1"] <= s["pass@2"] <= s["pass@4"] <= s["pass@8"] == s["test@8"]


def test_translation_summary_reports_chrf_and_the_best_samples_chrf_not_exact_match():
    from sacrebleu.metrics import CHRF

    ref = "Mia has ten apples."
    samples = [{"answer": a, "correct": False} for a in ("Mia has apples.", "Mia has ten apples", "x")]
    rows = [{"answer": "x", "gold": ref, "correct": False, "score": CHRF().sentence_score("x", [ref]).score,
             "samples": samples, "independent_samples": False,
             "compute": {"tokens_generated": 9, "tokens_read": 9, "calls": 1, "wall_s": 0.1}}]
    s = summarize(rows)
    assert not any(k.startswith("test@") for k in s)  # exact match says nothing about a translation
    best = max(CHRF().sentence_score(x["answer"], [ref]).score for x in samples)
    assert s["oracle_chrf@3"] == pytest.approx(best) and best > s["chrf"]


def test_reward_auroc_pairs_right_and_wrong_samples_within_a_problem():
    def row(samples):
        return {"answer": "1", "correct": True, "samples": [{"answer": "1", "correct": c, "reward": v}
                                                             for c, v in samples],
                "compute": {"tokens_generated": 1, "tokens_read": 1, "calls": 1, "wall_s": 0.0}}

    # problem 1: right 0.9 beats wrong 0.5 and 0.8; problem 2: right 0.4 loses to wrong 0.6, ties 0.4
    s = summarize([row([(True, 0.9), (False, 0.5), (False, 0.8)]), row([(True, 0.4), (False, 0.6), (False, 0.4)]),
                   row([(True, 0.1), (True, 0.2)])])  # no wrong sample: no pair
    assert s["reward_auroc_pairs"] == 4 and s["reward_auroc"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert "reward_auroc" not in summarize([row([(True, None), (False, None)])])


def test_a_task_without_an_answer_key_reports_no_exact_match_figures():
    samples = [{"answer": "Tom had 3 pens.", "correct": False, "reward": 0.9},
               {"answer": "Tom has 3 pens.", "correct": True, "reward": 0.1}]
    rows = [{"answer": "Tom had 3 pens.", "gold": "Tom has 3 pens.", "correct": False, "score": 60.0,
             "samples": samples, "independent_samples": True, "first_correct": True,
             "compute": {"tokens_generated": 9, "tokens_read": 9, "calls": 1, "wall_s": 0.1}}]
    s = summarize(rows)
    assert (s["metric"], s["accuracy"], s["accuracy_ci95"], s["correct"], s["exact_match"]) == ("chrf", None, None,
                                                                                                None, 0.0)
    assert not [k for k in s if k.startswith(("pass@", "maj@", "test@", "reward_auroc", "repaired"))]
    assert s["tokens_per_correct"] is None and s["chrf"] == 60.0
    assert summarize([{**rows[0], "score": None}])["metric"] == "accuracy"


def test_auroc_is_the_share_of_right_wrong_pairs_ordered_rightly():
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(2, 12)
        scores = [rng.choice([0.1, 0.2, 0.5, 0.9]) for _ in range(n)]  # ties on purpose
        labels = [rng.random() < 0.5 for _ in range(n)]
        pos = [s for s, y in zip(scores, labels, strict=True) if y]
        neg = [s for s, y in zip(scores, labels, strict=True) if not y]
        if not pos or not neg:
            assert auroc(scores, labels) is None
            continue
        pairs = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg)]
        assert auroc(scores, labels) == pytest.approx(sum(pairs) / len(pairs))
    assert auroc([0.9, 0.1], [True, False]) == 1.0 and auroc([0.1, 0.9], [True, False]) == 0.0
