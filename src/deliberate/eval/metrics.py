"""Metrics over graded rows: accuracy with its interval, pass@k, maj@k and Test@N."""

from __future__ import annotations

import math
from collections.abc import Sequence

from deliberate.grading.vote import majority, vote_key


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. 2021: 1 - C(n-c, k) / C(n, k), in a stable product form.

    >>> pass_at_k(16, 0, 1), pass_at_k(16, 16, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.5)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [k for k in (2**i for i in range(12)) if k <= n]
    return ks if n in ks else [*ks, n]


def summarize(rows: Sequence[dict]) -> dict:
    """Aggregate graded rows (as written by the runner) into the figures a run reports.

    `metric` names the headline figure. For a task without an answer key (rows scored by chrF)
    it is "chrf", and accuracy, its interval and `correct` are None, with no pass@k, maj@k or
    reward AUROC: they all count exact matches, which a translation rarely is (the share is
    kept as `exact_match`)."""
    total = len(rows)
    correct = sum(bool(r["correct"]) for r in rows)
    scored = [r for r in rows if r.get("score") is not None]
    s: dict = {"n_problems": total, "metric": "chrf" if scored else "accuracy", "correct": correct,
               "accuracy": correct / total if total else 0.0,
               "accuracy_ci95": [round(x, 4) for x in wilson(correct, total)],
               "no_answer": sum(r["answer"] is None and "error" not in r for r in rows),
               "errors": sum("error" in r for r in rows),
               "grader_timeouts": sum(r.get("verdict") == "timeout" for r in rows)}
    s["error_rate"] = s["errors"] / total if total else 0.0
    n = min((len(r["samples"]) for r in rows), default=0)
    if scored:  # no answer key (translation): an exact match is not its metric and would read as a 0% accuracy
        s.update(correct=None, accuracy=None, accuracy_ci95=None, exact_match=s["accuracy"])
    per_right = correct if not scored else 0  # nor is there a "per correct answer"
    if total and n > 1 and not scored and all(r.get("independent_samples") for r in rows):
        for k in ks_for(n):
            s[f"pass@{k}"] = sum(pass_at_k(n, sum(x["correct"] for x in r["samples"][:n]), k) for r in rows) / total
        for k in ks_for(n)[1:]:
            hits = 0
            for r in rows:
                first = r["samples"][:k]
                m = majority([x["answer"] for x in first])
                right = {vote_key(x["answer"]) for x in first if x["correct"]}  # the grader's verdicts
                hits += m is not None and vote_key(m) in right
            s[f"maj@{k}"] = hits / total
    if total and not scored:
        s[f"test@{max(n, 1)}"] = sum(any(x["correct"] for x in r["samples"]) for r in rows) / total
    if scored:  # translation: mean sentence chrF, sacrebleu's corpus chrF, and the best sample's (an oracle)
        from sacrebleu.metrics import CHRF

        chrf = CHRF()
        s["chrf"] = sum(r["score"] for r in scored) / len(scored)
        answers, refs = [r["answer"] or "" for r in scored], [[r["gold"] for r in scored]]
        s["corpus_chrf"] = chrf.corpus_score(answers, refs).score
        s[f"oracle_chrf@{max(n, 1)}"] = sum(
            max((chrf.sentence_score(x["answer"] or "", [r["gold"]]).score for x in r["samples"]), default=r["score"])
            for r in scored) / len(scored)
    firsts = [r for r in rows if "first_correct" in r and not scored]
    if firsts:  # self-correction, measured both ways (it can break right answers as well as repair wrong ones)
        wrong_first = [r for r in firsts if not r["first_correct"]]
        s["first_accuracy"] = (len(firsts) - len(wrong_first)) / len(firsts)
        s["repaired"] = sum(bool(r["correct"]) for r in wrong_first)
        s["repaired_share"] = s["repaired"] / len(wrong_first) if wrong_first else 0.0
        s["broken"] = sum(not r["correct"] for r in firsts if r["first_correct"])
    if not scored and (auc := reward_auroc(rows)) is not None:  # right vs wrong needs an answer key
        s["reward_auroc"], s["reward_auroc_pairs"] = auc
    for key in ("tokens_generated", "tokens_read", "tokens_cached", "calls", "wall_s", "verifier_tokens",
                "verifier_calls"):
        s[key] = round(sum(r["compute"].get(key, 0) for r in rows), 3)
    if any("capped" in r for r in rows):
        s["capped"] = sum(bool(r.get("capped")) for r in rows)
    s["tokens_per_problem"] = s["tokens_generated"] / total if total else 0.0
    s["tokens_per_correct"] = s["tokens_generated"] / per_right if per_right else None
    for key in ("tokens_read", "calls", "wall_s", "verifier_tokens"):  # the rest, per problem and per right one
        s[f"{key}_per_problem"] = s[key] / total if total else 0.0
        s[f"{key}_per_correct"] = s[key] / per_right if per_right else None
    return s


def reward_auroc(rows: Sequence[dict]) -> tuple[float, int] | None:
    """How well a reward tells right samples from wrong ones of the same problem: over every
    problem with both, the chance a right sample outscores a wrong one (ties count half). This
    is what best-of-n and search can use; a reward's ceiling is the pass@n it selects from."""
    wins, pairs = 0.0, 0
    for r in rows:
        scored = [x for x in r.get("samples", []) if isinstance(x.get("reward"), (int, float))]
        right = [x["reward"] for x in scored if x["correct"]]
        wrong = [x["reward"] for x in scored if not x["correct"]]
        for a in right:
            for b in wrong:
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
        pairs += len(right) * len(wrong)
    return (wins / pairs, pairs) if pairs else None


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Pooled AUROC: the chance a positive outscores a negative (ties half), by ranks
    (Mann-Whitney U); by hand because it is eight lines and scikit-learn is no dependency."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks, i = [0.0] * len(scores), 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # tied scores share their mean rank
        i = j + 1
    return (sum(r for r, y in zip(ranks, labels, strict=True) if y) - pos * (pos + 1) / 2) / (pos * neg)
