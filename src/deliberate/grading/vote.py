"""Which answers count as the same vote: shared by voting strategies, rewards and metrics.

It lives with grading (it reads numbers the way the grader does), below both search and
rewards, so neither has to import the other for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

from deliberate.grading.numbers import read_number


def vote_key(answer: str) -> str:
    """Answers that are the same number vote together ("1,080", "1080.0")."""
    n = read_number(answer, getattr(answer, "lang", None))
    return str(Fraction(n)) if n is not None else " ".join(answer.split())


def majority(answers: Sequence[str | None]) -> str | None:
    """The most common answer (ties go to the one seen first); None votes are ignored."""
    keys = [(vote_key(a), a) for a in answers if a is not None]
    if not keys:
        return None
    counts = Counter(k for k, _ in keys)
    best = max(counts.values())
    return next(a for k, a in keys if counts[k] == best)
