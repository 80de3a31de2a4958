"""A task is a list of problems, a way to prompt a model for one, and a way to grade an answer."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import deliberate.grading as grading
from deliberate.errors import BadInput
from deliberate.grading import Grade


@dataclass
class Problem:
    id: str
    question: str
    answer: str  # the gold answer as a string ("18", "\\frac{1}{2}", or the puzzle for game24)
    meta: dict = field(default_factory=dict)


@dataclass
class Task:
    """A named benchmark. `load` reads the problems lazily; `kind` picks the grader."""

    name: str
    description: str
    load: Callable[[], list[Problem]]
    lang: str | None = "en"  # how its numbers are written (grading); None: unknown, each answer phrase decides
    kind: str = "math"  # how it is graded (deliberate.grading.KINDS): math, game24, translate (chrF)
    max_tokens: int = 256
    source: str = ""  # the data file, for error messages and manifests
    step_delimiter: str = "\n"  # where one reasoning step ends (tree search actions)
    prompt: str = "cot"  # how a problem is asked (deliberate.prompting): cot, lab-cot (lab exemplars), boxed
    _problems: list[Problem] | None = field(default=None, repr=False)

    @property
    def problems(self) -> list[Problem]:
        if self._problems is None:
            self._problems = self.load()
        return self._problems

    @property
    def has_answer_key(self) -> bool:
        """Open-ended tasks (translation) have references to score against, not an answer to check."""
        return self.kind != "translate"

    def extract(self, completion: str) -> tuple[str | None, str]:
        """(answer, rule that found it); needs no answer key, so strategies may call it."""
        return grading.extract(completion, self.kind, self.lang)

    def grade(self, problem: Problem, completion: str) -> Grade:
        """Extract the answer from a completion and check it against the gold answer."""
        return grading.grade(completion, problem.answer, self.kind, self.lang)

    def verdict(self, problem: Problem, answer: str | None) -> str:
        """correct | wrong | no-answer | timeout (a symbolic comparison that ran past its deadline)."""
        return grading.verdict(answer, problem.answer, self.kind, self.lang)

    def check(self, problem: Problem, answer: str | None) -> bool:
        """Is an already extracted answer right?"""
        return self.verdict(problem, answer) == "correct"

    def tool_check(self, problem: Problem, completion: str) -> str | None:
        """An external tool's verdict on a solution, as one line of feedback; None when it finds
        nothing wrong. Math: a calculator re-checks every written calculation (a wrong plan with
        right sums passes); Game of 24: the rule's checker; translation has no tool."""
        if self.kind == "game24":
            from deliberate.grading.game24 import why_not_24

            return why_not_24(problem.question, completion)
        if self.kind == "math":
            from deliberate.grading.calculator import feedback_line

            return feedback_line(completion.split(self.step_delimiter))
        return None

    def score(self, problem: Problem, answer: str | None) -> float | None:
        """chrF (sacrebleu, 0-100) of a translation against its reference; None for other tasks."""
        if self.kind != "translate":
            return None
        from sacrebleu.metrics import CHRF

        return CHRF().sentence_score(answer or "", [problem.answer]).score


def data_dir() -> Path:
    """The shared benchmark data: $DELIBERATE_DATA, else the nearest `shared/data` above here or cwd."""
    if env := os.environ.get("DELIBERATE_DATA"):
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for d in (start, *start.parents):
            if (d / "shared" / "data").is_dir():
                return d / "shared" / "data"
    raise BadInput("benchmark data not found: set DELIBERATE_DATA to the folder holding gsm8k/, mgsm/, ...")
