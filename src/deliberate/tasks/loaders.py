"""Readers for the benchmark files. A malformed row names the file, the line and the problem.

Each reader takes the local file in `shared/data/` (formats in its README); when the file is
absent it falls back to the same data on the Hugging Face hub through `datasets`, which only
works where the network allows.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.tasks.base import Problem, data_dir

HUB = {"gsm8k": ("openai/gsm8k", "main", "test"), "math500": ("HuggingFaceH4/MATH-500", None, "test")}


def _file(rel: str, hub_key: str | None = None) -> Path | list[dict]:
    try:
        path = data_dir() / rel
    except BadInput:
        path = None
    if path is not None and path.is_file():
        return path
    if hub_key in HUB:
        try:
            import datasets

            name, config, split = HUB[hub_key]
            return list(datasets.load_dataset(name, config, split=split))
        except Exception as e:  # no datasets package, or no network: report the local miss
            raise BadInput(f"data file not found: {path or rel} (and the hub copy failed: "
                           f"{type(e).__name__})") from None
    raise BadInput(f"data file not found: {path or rel}")


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read {path}: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{n}: not valid JSON ({e.msg}).") from None
        if not isinstance(row, dict):
            raise BadInput(f"{path}:{n}: expected a JSON object, got {type(row).__name__}.")
        missing = [k for k in required if k not in row]
        if missing:
            raise BadInput(f"{path}:{n}: missing field(s) {', '.join(missing)}.")
        rows.append((n, row))
    if not rows:
        raise BadInput(f"{path}: no rows.")
    return rows


def gsm8k_gold(answer: str, where: str) -> str:
    """The official extraction: the number after '#### ', commas removed."""
    m = re.search(r"#### (\-?[0-9\.\,]+)", answer)
    if not m:
        raise BadInput(f"{where}: answer has no '#### N' line.")
    return m.group(1).strip().replace(",", "")


def load_gsm8k(split: str = "test") -> list[Problem]:
    src = _file(f"gsm8k/{split}.jsonl", "gsm8k" if split == "test" else None)
    if isinstance(src, list):
        return [Problem(f"gsm8k-{split}-{i}", r["question"], gsm8k_gold(r["answer"], f"hub row {i}"))
                for i, r in enumerate(src)]
    return [Problem(f"gsm8k-{split}-{n - 1}", r["question"], gsm8k_gold(r["answer"], f"{src}:{n}"),
                    {"solution": r["answer"]})
            for n, r in read_jsonl(src, ("question", "answer"))]


def load_mgsm(lang: str) -> list[Problem]:
    path = _file(f"mgsm/mgsm_{lang}.tsv")
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) != 2:
                raise BadInput(f"{path}:{n}: expected 2 tab-separated columns, got {len(row)}.")
            gold = row[1].replace(",", "").strip()
            if not re.fullmatch(r"-?\d+", gold):
                raise BadInput(f"{path}:{n}: answer {row[1]!r} is not an integer.")
            out.append(Problem(f"mgsm-{lang}-{n - 1}", row[0], gold, {"lang": lang}))
    return out


def load_math500() -> list[Problem]:
    src = _file("math500/test.jsonl", "math500")
    rows = list(enumerate(src, 1)) if isinstance(src, list) else read_jsonl(src, ("problem", "answer"))
    return [Problem(r.get("unique_id", f"math500-{n - 1}"), r["problem"], r["answer"],
                    {"subject": r.get("subject"), "level": r.get("level")}) for n, r in rows]


def load_game24(start: int = 900, end: int = 1000) -> list[Problem]:
    """ToT's test split by default: 0-based rows 900-999 of 24.csv."""
    path = _file("game24/24.csv")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, row in enumerate(rows[start:end], start):
        nums = (row.get("Puzzles") or "").split()
        if len(nums) != 4 or not all(x.isdigit() for x in nums):
            raise BadInput(f"{path}:{i + 2}: 'Puzzles' must hold 4 integers, got {row.get('Puzzles')!r}.")
        out.append(Problem(f"game24-{i}", " ".join(nums), " ".join(nums), {"rank": row.get("Rank")}))
    return out


def load_user_jsonl(path: str) -> list[Problem]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise BadInput(f"data file not found: {p}")
    out = []
    for n, r in read_jsonl(p, ("question", "answer")):
        gold = str(r["answer"])
        if "####" in gold:
            gold = gsm8k_gold(gold, f"{p}:{n}")
        if not str(r["question"]).strip() or not gold.strip():
            raise BadInput(f"{p}:{n}: empty question or answer.")
        out.append(Problem(str(r.get("id", f"{p.stem}-{n - 1}")), str(r["question"]), gold))
    return out


def load_user_translations(path: str) -> list[Problem]:
    """A user file of {"source": ..., "reference": ...} rows (optional "src"/"tgt" language codes)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise BadInput(f"data file not found: {p}")
    out = []
    for n, r in read_jsonl(p, ("source", "reference")):
        if not str(r["source"]).strip() or not str(r["reference"]).strip():
            raise BadInput(f"{p}:{n}: empty source or reference.")
        meta = {"src": str(r.get("src", "")), "tgt": str(r.get("tgt", ""))}
        out.append(Problem(str(r.get("id", f"{p.stem}-{n - 1}")), str(r["source"]), str(r["reference"]), meta))
    return out


def load_lab_translation(src: str, tgt: str, n: int = 500) -> list[Problem]:
    """The lab test split's questions as translation pairs (training never sees them)."""
    from deliberate.lab.generator import heldout_split

    return [Problem(f"lab-tr-{src}-{tgt}-{i}", p.question[src], p.question[tgt], {"src": src, "tgt": tgt})
            for i, p in enumerate(heldout_split(n))]


def load_lab(lang: str, n: int = 500, split: str = "test", hard: bool = False) -> list[Problem]:
    """A lab split; training problems also carry their reference solution (SFT reads it).
    `hard`: the test split drawn at the generator's harder setting (HARD_DIFFICULTY)."""
    from deliberate.lab.generator import HARD_DIFFICULTY, heldout_split, train_split

    if hard:
        return [Problem(f"lab-hard-{i}", p.question[lang], str(p.answer), {"lang": lang, "ops": p.n_ops})
                for i, p in enumerate(heldout_split(n, HARD_DIFFICULTY))]
    prefix = "lab" if split == "test" else f"lab-{split}"
    if split == "train":
        return [Problem(f"{prefix}-{i}", p.question[lang], str(p.answer),
                        {"lang": lang, "ops": p.n_ops, "solution": p.solution(lang)})
                for i, p in enumerate(train_split(n))]
    return [Problem(f"{prefix}-{i}", p.question[lang], str(p.answer), {"lang": lang, "ops": p.n_ops})
            for i, p in enumerate(heldout_split(n, split=split))]
