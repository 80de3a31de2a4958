"""Tasks by name: `load_task("mgsm-zh")`, `load_task("jsonl:my.jsonl")`; `TASKS` lists them."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from deliberate.errors import UnknownName
from deliberate.tasks.base import Grade, Problem, Task, data_dir
from deliberate.tasks.loaders import (
    load_game24,
    load_gsm8k,
    load_lab,
    load_lab_translation,
    load_math500,
    load_mgsm,
    load_user_jsonl,
    load_user_translations,
)

__all__ = ["Grade", "Problem", "Task", "TASKS", "data_dir", "load_task"]

MGSM_LANGS = ("en", "zh", "ja", "de", "fr", "es", "ru", "th", "sw", "bn", "te")


def _registry() -> dict[str, Task]:
    tasks = {
        "lab-en": Task("lab-en", "lab arithmetic word problems, English (500 held-out)",
                       partial(load_lab, "en"), "en", max_tokens=160, source="generated", prompt="lab-cot"),
        "lab-zh": Task("lab-zh", "lab arithmetic word problems, Chinese (500 held-out)",
                       partial(load_lab, "zh"), "zh", max_tokens=160, source="generated", prompt="lab-cot"),
        "lab-en-valid": Task("lab-en-valid", "lab validation split, English (500; for model selection)",
                             partial(load_lab, "en", split="valid"), "en", max_tokens=160, source="generated",
                             prompt="lab-cot"),
        "lab-zh-valid": Task("lab-zh-valid", "lab validation split, Chinese (500; for model selection)",
                             partial(load_lab, "zh", split="valid"), "zh", max_tokens=160, source="generated",
                             prompt="lab-cot"),
        "lab-en-train": Task("lab-en-train", "lab training split, English (2,000; GRPO and STaR prompts)",
                             partial(load_lab, "en", 2000, "train"), "en", max_tokens=160, source="generated",
                             prompt="lab-cot"),
        "lab-zh-train": Task("lab-zh-train", "lab training split, Chinese (2,000; GRPO and STaR prompts)",
                             partial(load_lab, "zh", 2000, "train"), "zh", max_tokens=160, source="generated",
                             prompt="lab-cot"),
        **{f"lab-{lang}-hard": Task(f"lab-{lang}-hard", f"lab test problems one step longer, numbers to 30, {name} "
                                    "(500)", partial(load_lab, lang, hard=True), lang, max_tokens=192,
                                    source="generated", prompt="lab-cot")
           for lang, name in (("en", "English"), ("zh", "Chinese"))},
        "gsm8k": Task("gsm8k", "GSM8K test (1,319)", load_gsm8k, source="gsm8k/test.jsonl"),
        "gsm8k-train": Task("gsm8k-train", "GSM8K train (7,473)", partial(load_gsm8k, "train"),
                            source="gsm8k/train.jsonl"),
        "math500": Task("math500", "MATH-500 (PRM800K test split)", load_math500, max_tokens=512,
                        source="math500/test.jsonl", prompt="boxed"),
        "game24": Task("game24", "Game of 24, ToT test split (rows 900-999)", load_game24,
                       kind="game24", max_tokens=64, source="game24/24.csv"),
    }
    for src, tgt in (("en", "zh"), ("zh", "en")):
        name = f"lab-translate-{src}-{tgt}"
        tasks[name] = Task(name, f"lab questions, {src} to {tgt} (500; chrF, no answer key)",
                           partial(load_lab_translation, src, tgt), tgt, kind="translate", max_tokens=160,
                           source="generated")
    for lang in MGSM_LANGS:
        tasks[f"mgsm-{lang}"] = Task(f"mgsm-{lang}", f"MGSM {lang} (250)", partial(load_mgsm, lang), lang,
                                     source=f"mgsm/mgsm_{lang}.tsv")
    return tasks


TASKS = _registry()


def load_task(name: str) -> Task:
    """A task by name, or `jsonl:PATH` for a user file: question/answer rows (graded) or
    source/reference rows (translation, scored by chrF)."""
    if name.startswith("jsonl:"):
        path = name.removeprefix("jsonl:")
        if _first_row_has(path, "source"):
            return Task(name, f"user translations {path}", partial(load_user_translations, path),
                        kind="translate", source=path, lang=None)
        # the language is unknown: the answer phrase found in each completion decides how numbers read
        return Task(name, f"user file {path}", partial(load_user_jsonl, path), source=path, lang=None)
    if name not in TASKS:
        raise UnknownName(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}, jsonl:PATH.")
    return replace(TASKS[name], _problems=None)  # a fresh copy: problems load lazily per caller


def _first_row_has(path: str, key: str) -> bool:
    """Peek at a JSONL file's first row (a missing or bad file is reported later, by the loader)."""
    import json
    from pathlib import Path

    try:
        with Path(path).expanduser().open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
        return key in json.loads(first)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return False
