"""`export-traces`: the best path of every problem of a search run, written as SFT data.

Marco-o1 built its chain-of-thought data with MCTS: the search's best path per problem becomes
a training solution. "Best" is by the run's own reward (the value or score each sample row
holds), never by the gold answer, unless `correct_only` asks to keep only paths the grader
marked right (then the best right path by reward; problems with none are left out). Rows of
runs without rewards (greedy, self-consistency) have nothing to choose by and are refused.

Output rows: {"id", "question", "solution", "answer", "reward", "correct", "run", "strategy"};
`question` and `solution` are what `deliberate train sft` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.eval.runner import read_rows


def best_path(row: dict, correct_only: bool = False) -> dict | None:
    """The sample with the highest reward among those with an answer (the first of equals)."""
    pool = [s for s in row.get("samples", []) if s.get("answer") is not None and s.get("reward") is not None]
    if correct_only:
        pool = [s for s in pool if s.get("correct")]
    return max(pool, key=lambda s: s["reward"]) if pool else None


def export_traces(run_dir: str | Path, out: str | Path, *, correct_only: bool = False,
                  overwrite: bool = False) -> dict:
    """Write one SFT row per problem; return counts (written, skipped and why)."""
    run_dir, out = Path(run_dir), Path(out)
    rows = read_rows(run_dir / "results.jsonl")
    if not rows:
        raise BadInput(f"no graded rows in {run_dir} (results.jsonl missing or empty).")
    if out.exists() and not overwrite:
        raise BadInput(f"{out} exists; pass --overwrite to replace it.")
    settings = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    graded = [r for r in rows if "error" not in r]
    if graded and not any(s.get("reward") is not None for r in graded for s in r.get("samples", [])):
        raise BadInput(f"run {run_dir} ({settings.get('strategy', 'unknown strategy')}) has no rewards to choose "
                       "paths by; export-traces reads mcts, beam, rstar or best-of-n runs.")
    written, no_path = 0, 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for r in graded:
            best = best_path(r, correct_only)
            if best is None:
                no_path += 1
                continue
            f.write(json.dumps({"id": r["id"], "question": r["question"], "solution": best["text"],
                                "answer": best["answer"], "reward": best["reward"], "correct": best.get("correct"),
                                "run": str(run_dir), "strategy": settings.get("strategy")}, ensure_ascii=False) + "\n")
            written += 1
    return {"written": written, "errors_skipped": len(rows) - len(graded),
            ("not_right" if correct_only else "no_answer"): no_path, "out": str(out)}
