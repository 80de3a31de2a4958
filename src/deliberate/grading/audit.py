"""Audit a finished run's grading against math-verify's own `parse` + `verify`.

Every sample of every row is graded twice, now: by deliberate (`grade`, with the task's kind and
language) and by math-verify alone with default settings on the raw completion (in the bounded
helper process). Where they disagree the audit shows both extractions and both verdicts, so a
user sees where deliberate's grader departs from the library it builds on, and can judge why
(a decimal comma, a number read out of a larger expression, an echoed header). It also counts
rows whose stored verdict differs from today's (the grader changed since the run).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.grading import grade
from deliberate.grading.symbolic import SYMBOLIC_TIMEOUT_S, WORKER


@dataclass(frozen=True)
class Disagreement:
    id: str
    sample: int
    gold: str
    ours: str | None  # the text deliberate graded (its span of the completion)
    rule: str
    our_verdict: str
    theirs: str | None  # the answer string math-verify extracted
    their_verdict: str
    tail: str  # the completion's last characters, for context


@dataclass
class Audit:
    run: str
    task: str
    samples: int = 0
    agree: int = 0
    changed: int = 0  # samples whose stored verdict differs from deliberate's verdict today
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.agree / self.samples if self.samples else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}


def math_verify_verdict(gold: str, completion: str, timeout: float = SYMBOLIC_TIMEOUT_S) -> tuple[str, str | None]:
    """math-verify's own verdict on a raw completion, bounded: (correct|wrong|timeout, extracted)."""
    out = WORKER.call("math-verify", gold, completion, timeout=timeout)
    if out is None:
        return "timeout", None
    return ("correct" if out[0] else "wrong"), out[1]


def audit_rows(rows: list[dict], kind: str, lang: str | None, run: str = "", task: str = "",
               on_progress=None) -> Audit:
    """Grade every sample of `rows` both ways (module docstring); error rows have no samples."""
    if kind != "math":
        raise BadInput(f"the grading audit compares math answers with math-verify; task {task!r} is graded "
                       f"as {kind!r}.")
    audit = Audit(run, task)
    for k, row in enumerate(rows):
        for i, sample in enumerate(row.get("samples") or []):
            text, gold = sample.get("text") or "", str(row.get("gold", ""))
            ours = grade(text, gold, kind, lang)
            theirs, extracted = math_verify_verdict(gold, text)
            audit.samples += 1
            audit.changed += sample.get("verdict", ours.verdict) != ours.verdict
            if (ours.verdict == "correct") == (theirs == "correct"):
                audit.agree += 1
            else:
                shown = text[slice(*ours.span)] if ours.span else ours.answer
                audit.disagreements.append(Disagreement(str(row.get("id")), i, gold, shown, ours.rule, ours.verdict,
                                                        extracted, theirs, " ".join(text[-160:].split())))
        if on_progress:
            on_progress(k + 1, len(rows))
    return audit


def audit_run(run_dir: str | Path, on_progress=None) -> Audit:
    """Audit the rows of a run folder (`results.jsonl`, with the task named in `run.json`)."""
    from deliberate.eval.runner import read_rows
    from deliberate.tasks import load_task

    d = Path(run_dir)
    if not (d / "results.jsonl").exists():
        raise BadInput(f"{d} holds no results.jsonl: not a run folder (deliberate eval --out DIR makes one).")
    try:
        settings = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"{d / 'run.json'} cannot be read ({e}); the audit needs it to know the task.") from e
    task = load_task(settings["task"])
    return audit_rows(read_rows(d / "results.jsonl"), task.kind, task.lang, str(d), task.name, on_progress)
