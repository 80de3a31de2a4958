"""`lm:SPEC`: another language model's likelihood of a path, as a verifier stronger than the generator.

Any model spec that can score a continuation (`lab`, a local checkpoint, `hf:ID`, `gguf:PATH`)
judges the generator's paths: the score of step i is the geometric mean token probability of
steps 1..i under the judge, exp(mean log p), so the last step's score is the whole path's
per-token likelihood, and partial paths (a beam's, mcts's) are scored by the same rule, as the
`confidence` reward scores them under the generator itself. Issue 13 lists "a verifier larger
(stronger) than the generator" among the ways to beat confidence; this reward needs no training
and no answer key. Deviation: Marco-o1 normalizes each token over the top 5; a scoring pass
returns only the chosen token's logprob, and offline the judge's plain mean logprob ranked
samples about as well as its top-5 confidence (docs/verifiers.md).

The judge's forward passes are billed to the problem as verifier tokens and calls, as a PRM's are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from deliberate.errors import BadInput
from deliberate.rewards.base import Path, Reward, steps_of
from deliberate.tasks.base import Problem, Task


class Likelihood(Reward):
    """Step scores exp(mean log p) of the path so far under a judge model loaded once per run."""

    def __init__(self, spec: str, task: Task | None = None, backend=None) -> None:
        from deliberate.backends import load_backend

        judge_spec = spec.removeprefix("lm:")
        if not judge_spec:
            raise BadInput("the lm reward names its judge model: lm:SPEC (lm:lab, lm:PATH, lm:hf:ID).")
        self.name = spec
        self.task, self.meter = task, backend
        self.judge = load_backend(judge_spec)
        if not self.judge.capabilities.scoring:
            raise BadInput(f"the judge {judge_spec!r} of {spec} cannot score a given text.")

    def _head(self, problem: Problem) -> str:
        """The prompt as the judge reads it: the generator's own prompt, built for the judge's format."""
        if self.task is None:
            return problem.question + "\n"
        from deliberate.prompting import build_prompt

        return build_prompt(self.task, problem, self.judge, 0).text

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        if not paths:
            return []
        stepss = steps_of(paths, self.task.step_delimiter if self.task is not None else "\n")
        head = self._head(problem)
        t0 = time.perf_counter()
        scored = self.judge.score([head] * len(paths), ["".join(steps) for steps in stepss])
        out, read, calls = [], sum(s.prompt_tokens + len(s.logprobs) for s in scored), 1
        for steps, s in zip(stepss, scored, strict=True):
            step_lps = _by_step(s.tokens, s.logprobs, steps)
            if step_lps is None:  # the judge's pieces do not spell the text: score step by step
                again = self.judge.score([head + "".join(steps[:i]) for i in range(len(steps))], steps)
                read += sum(x.prompt_tokens + len(x.logprobs) for x in again)
                calls += 1
                step_lps = [x.logprobs for x in again]
            total, count, scores = 0.0, 0, []
            for lps in step_lps:
                total += sum(lps)
                count += len(lps)
                scores.append(math.exp(total / count) if count else 0.0)
            out.append(scores)
        if self.meter is not None and hasattr(self.meter, "bill_verifier"):
            self.meter.bill_verifier(problem.id, read, time.perf_counter() - t0, calls=calls)
        return out


def _by_step(pieces: Sequence[str], logprobs: Sequence[float], steps: Sequence[str]) -> list[list[float]] | None:
    """The logprobs of one scoring pass over the whole path, grouped by the step each token starts
    in; None when the token pieces do not join to the text (a character split across tokens)."""
    if "".join(pieces) != "".join(steps):
        return None
    ends, at = [], 0
    for step in steps:
        at += len(step)
        ends.append(at)
    out: list[list[float]] = [[] for _ in steps]
    pos, k = 0, 0
    for piece, lp in zip(pieces, logprobs, strict=True):
        while k < len(ends) - 1 and pos >= ends[k]:
            k += 1
        out[k].append(lp)
        pos += len(piece)
    return out
