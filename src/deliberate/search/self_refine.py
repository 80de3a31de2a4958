"""`self-refine` (Madaan et al. 2023): answer, ask the model for feedback, rewrite; repeat.

Each round shows the model its last solution and asks for feedback; the round stops the
problem when the feedback says the solution is correct (the stop rule: "is correct" / "no
mistakes" without a negation) or when the rewrite reaches the same answer as before (a
fixpoint); otherwise the model rewrites the solution with the feedback in view. The answer is
the last rewrite's. No external signal is used, so like reflection it can break right answers:
the first attempt's answer is recorded and the evaluation counts repaired and broken answers.
With `feedback` prm or tool (search/feedback.py) the feedback comes from outside the model: a
PRM names the first step it scores low, or a calculator the first wrong calculation; a solution
the critic finds nothing wrong with is kept as it is (that is the stop rule then).
Deviation from the paper: it writes task-specific few-shot prompts for feedback and for the
rewrite; here one zero-shot instruction serves every task (`ASK_FEEDBACK`), so the method runs
on any task without hand-written examples, at the price of weaker feedback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.grading.vote import vote_key
from deliberate.params import SamplingParams
from deliberate.prompting import build_prompt
from deliberate.search.base import Result, Strategy, Trace, problem_seed
from deliberate.search.feedback import FEEDBACK, check_feedback, critic_for
from deliberate.tasks.base import Problem, Task

ASK_FEEDBACK = ("Review the solution above step by step. If every step is correct, say \"The solution is "
                "correct.\" Otherwise name the first wrong step and say what is wrong.\nFeedback:")
ASK_REWRITE = "Rewrite the solution, fixing what the feedback found.\n"
LOOKS_RIGHT = "The solution is correct."  # what a critic that found nothing says (the stop phrase)
_LOOKS_RIGHT = re.compile(r"(?<!not )(?<!in)\b(?:is correct|are correct|no mistakes?|no errors?)\b", re.IGNORECASE)


def says_correct(feedback: str) -> bool:
    """The stop rule: the feedback calls the solution correct.

    >>> says_correct("The solution is correct."), says_correct("Step 2 is not correct: 3 + 4 = 7.")
    (True, False)
    """
    return bool(_LOOKS_RIGHT.search(feedback))


@dataclass(frozen=True)
class SelfRefineConfig:
    rounds: int = field(default=2, metadata={"help": "feedback-and-rewrite rounds at most"})
    feedback_tokens: int = field(default=64, metadata={"help": "tokens of each feedback"})
    max_tokens: int | None = field(default=None, metadata={
        "help": "generated tokens per chain of thought: a sample, path or attempt (default: the task's)"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})
    feedback: str = field(default="intrinsic", metadata={"help": f"where feedback comes from: {', '.join(FEEDBACK)}"})
    verifier: str = field(default="prm:lab", metadata={"help": "the PRM of --feedback prm (prm:PATH)"})
    threshold: float = field(default=0.5, metadata={"help": "--feedback prm: a step scored below this is named"})

    def __post_init__(self) -> None:
        check_feedback(self.feedback, self.verifier, self.threshold)
        if self.rounds < 1 or self.feedback_tokens < 1:
            raise BadInput(f"rounds and feedback_tokens must be >= 1, got {self.rounds} and {self.feedback_tokens}.")
        if self.temperature < 0:
            raise BadInput(f"temperature must be >= 0, got {self.temperature}.")


class SelfRefine(Strategy):
    name = "self-refine"
    Config = SelfRefineConfig

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        critic = critic_for(self, c.feedback, task, backend, c.verifier, c.threshold)
        prompts = [build_prompt(task, p, backend, c.shots) for p in problems]
        traces: list[list[Trace]] = [[] for _ in problems]
        feedback: list[list[str]] = [[] for _ in problems]
        seeds = [problem_seed(seed, p) for p in problems]

        def call(idx: list[int], texts: list[str], max_tokens: int, stop_extra: tuple[str, ...] = ()) -> list:
            params = [SamplingParams(temperature=c.temperature, max_tokens=max_tokens, seed=seeds[i] + len(traces[i]),
                                     stop=(*prompts[i].stop, *stop_extra)) for i in idx]
            return [g.completions[0] for g in backend.generate(texts, params, owners=[problems[i].id for i in idx])]

        def add(i: int, comp) -> None:
            answer, rule = task.extract(comp.text)
            traces[i].append(Trace(comp.text, answer, rule, comp.n_tokens, comp.finish_reason))

        limit = c.max_tokens or task.max_tokens
        live = list(range(len(problems)))
        for i, comp in zip(live, call(live, [pr.text for pr in prompts], limit), strict=True):
            add(i, comp)
        for _ in range(c.rounds):
            if not live:
                break
            # a round runs where feedback and a rewrite twice the last one's length fit the context;
            # a critic's line is written before the check and counted as it is (no room to generate it)
            found = [critic(problems[i], [traces[i][-1].text])[0] for i in live] if critic is not None else None
            heads = [prompts[i].text + traces[i][-1].text + "\n\n" for i in live]
            asked = [h + ASK_FEEDBACK for h in heads] if found is None else \
                [h + f"Feedback: {f or LOOKS_RIGHT}\n" + ASK_REWRITE for h, f in zip(heads, found, strict=True)]
            room = 2 * c.feedback_tokens if found is None else 0
            fits = [n + room + 2 * traces[i][-1].tokens + 32 <= backend.capabilities.context_length
                    for i, n in zip(live, backend.count_tokens(asked), strict=True)]
            found = None if found is None else [f for f, ok in zip(found, fits, strict=True) if ok]
            asked = [a for a, ok in zip(asked, fits, strict=True) if ok]
            live = [i for i, ok in zip(live, fits, strict=True) if ok]
            if not live:
                break
            if found is None:  # `asked` holds each head with the request for feedback
                notes = [n.text.strip() for n in call(live, asked, c.feedback_tokens, ("\n\n",))]
                flagged = [not says_correct(n) for n in notes]
            else:  # the critic's line, or the stop phrase where it found nothing wrong
                notes = [f if f is not None else LOOKS_RIGHT for f in found]
                flagged = [f is not None for f in found]
            for i, n in zip(live, notes, strict=True):
                feedback[i].append(n)
            todo = [i for i, bad in zip(live, flagged, strict=True) if bad]
            texts = [prompts[i].text + traces[i][-1].text + "\n\n" + "Feedback: " + feedback[i][-1] + "\n"
                     + ASK_REWRITE for i in todo]
            still = []
            for i, comp in zip(todo, call(todo, texts, limit) if todo else [], strict=True):
                before = traces[i][-1].answer
                add(i, comp)
                same = before is not None and traces[i][-1].answer is not None and \
                    vote_key(before) == vote_key(traces[i][-1].answer)
                if not same:
                    still.append(i)
            live = still
        return [Result(ts[-1].answer, ts, info={"first_answer": ts[0].answer, "answers": [t.answer for t in ts],
                                                "feedback": fb})
                for ts, fb in zip(traces, feedback, strict=True)]
