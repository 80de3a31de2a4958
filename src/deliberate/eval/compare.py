"""`deliberate compare RUN_A RUN_B`: is the gap between two runs more than noise?

Two runs are compared on the problems both finished (paired), because two methods' accuracies
on the same problems are correlated and an unpaired interval overstates the noise. The gap gets
a paired bootstrap 95% interval and McNemar's exact test on the problems only one run got
right. Both are written here (a few lines each) rather than imported from scipy, which
deliberate does not otherwise need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.eval.metrics import wilson
from deliberate.eval.runner import read_rows


def load_run(path: str | Path) -> tuple[dict, dict[str, dict]]:
    """(settings, rows by problem id) of a run folder; a bad folder is one clear error."""
    folder = Path(path)
    if not (folder / "results.jsonl").is_file():
        raise BadInput(f"{folder} is not a run folder (no results.jsonl).")
    settings = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    manifest = folder / "manifest.json"
    settings["manifest"] = json.loads(manifest.read_text()) if manifest.is_file() else {}
    settings["out"] = str(folder)
    return settings, {r["id"]: r for r in read_rows(folder / "results.jsonl")}


def label(settings: dict) -> str:
    """The strategy, its size options, and the other options that differ from their defaults."""
    from deliberate.search import get_strategy

    name, options = settings.get("strategy", "?"), settings.get("options", {})
    try:
        defaults = get_strategy(name).options()
    except Exception:  # a strategy this version does not know: show every option
        defaults = {}
    size = ("n", "iterations", "width", "expand", "rounds")  # always shown: they say how much compute
    changed = " ".join(f"{k}={v}" for k, v in sorted(options.items())
                       if k in size or k not in defaults or defaults[k] != v)
    return f"{name} {changed}".strip()


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar test: a binomial(n, 1/2) test on the discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: list[bool], b: list[bool], *, samples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(b) - mean(a), resampling problems (pairs) with replacement."""
    import numpy as np

    diffs = np.array(b, dtype=np.int8) - np.array(a, dtype=np.int8)
    rng = np.random.default_rng(seed)
    stats = np.concatenate([diffs[rng.integers(0, len(diffs), (1000, len(diffs)))].mean(axis=1)
                            for _ in range(samples // 1000)])
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


def compare_runs(path_a: str | Path, path_b: str | Path, *, seed: int = 0, only: Collection[str] | None = None) -> dict:
    """The paired comparison of two runs, as a dict (the CLI prints it; the report draws it).
    `only` restricts it to these problem ids (the demo's first N, where a folder holds more)."""
    sa, ra = load_run(path_a)
    sb, rb = load_run(path_b)
    if sa.get("task") and sb.get("task") and sa["task"] != sb["task"]:
        raise BadInput(f"the runs are on different tasks ({sa['task']} and {sb['task']}); nothing to pair.")
    shared = [i for i in ra if i in rb and (only is None or i in only)]
    if not shared:
        raise BadInput(f"{path_a} and {path_b} share no problems.")
    a = [bool(ra[i]["correct"]) for i in shared]
    b = [bool(rb[i]["correct"]) for i in shared]
    pairs = list(zip(a, b, strict=True))
    n, only_a, only_b = len(shared), sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs)
    lo, hi = paired_bootstrap(a, b, seed=seed)
    p = mcnemar_p(only_a, only_b)

    def side(s: dict, rows: dict, right: list[bool]) -> dict:
        toks = sum(rows[i]["compute"]["tokens_generated"] for i in shared)
        return {"label": label(s), "model": s.get("model"), "out": s["out"], "correct": sum(right),
                "accuracy": sum(right) / n, "ci95": list(wilson(sum(right), n)), "tokens_per_problem": toks / n,
                "errors": sum("error" in rows[i] for i in shared), "only_this_right": None}

    A, B = side(sa, ra, a), side(sb, rb, b)
    A["only_this_right"], B["only_this_right"] = only_a, only_b
    diff = B["accuracy"] - A["accuracy"]
    reasons = ([f"its 95% interval {lo:+.1%} to {hi:+.1%} includes 0"] if lo <= 0 <= hi else []) + \
        ([f"McNemar p = {p:.3f} >= 0.05"] if p >= 0.05 else [])
    return {"task": sa.get("task"), "n_shared": n, "a": A, "b": B, "difference": diff, "difference_ci95": [lo, hi],
            "mcnemar_p": p, "within_noise": bool(reasons),
            "verdict": (f"the difference ({diff:+.1%}) may be noise: {' and '.join(reasons)}." if reasons else
                        f"B {'beats' if diff > 0 else 'trails'} A by {diff:+.1%} (95% interval {lo:+.1%} to "
                        f"{hi:+.1%}, McNemar p = {p:.3g}).")}
