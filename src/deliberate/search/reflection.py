"""`reflection`: answer, then append Marco-o1's reflection phrase and let the model think again.

"Wait! Maybe I made some mistakes! I need to rethink from scratch." is appended after a
finished attempt, for `rounds` rounds (fewer when the next attempt would not fit the model's
context); the answer is the last attempt's. Without an external
signal, self-correction can break right answers as easily as it repairs wrong ones, so every
result records the first attempt's answer and the evaluation reports both counts: the share of
first answers that were wrong and got repaired, and the number of right ones that got broken.

With `feedback` prm or tool (search/feedback.py) an outside signal decides: an attempt the
critic finds nothing wrong with is final, and where it finds something its line (the step a PRM
scores low, the calculation a calculator rejects) is written before the reflection phrase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.params import SamplingParams
from deliberate.prompting import build_prompt
from deliberate.search.base import Result, Strategy, Trace, problem_seed
from deliberate.search.feedback import FEEDBACK, check_feedback, critic_for
from deliberate.search.tree import kept_ids
from deliberate.tasks.base import Problem, Task

# Marco-o1's reflection phrase (the method's own words; the lab model is trained on them)
REFLECTION = "Wait! Maybe I made some mistakes! I need to rethink from scratch."


@dataclass(frozen=True)
class ReflectionConfig:
    rounds: int = field(default=1, metadata={"help": "reflections after the first attempt"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})
    max_tokens: int | None = field(default=None, metadata={
        "help": "generated tokens per chain of thought: a sample, path or attempt (default: the task's)"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})
    phrase: str = field(default=REFLECTION, metadata={"help": "appended after an attempt to start the next"})
    feedback: str = field(default="intrinsic", metadata={"help": f"where feedback comes from: {', '.join(FEEDBACK)}"})
    verifier: str = field(default="prm:lab", metadata={"help": "the PRM of --feedback prm (prm:PATH)"})
    threshold: float = field(default=0.5, metadata={"help": "--feedback prm: a step scored below this is named"})

    def __post_init__(self) -> None:
        check_feedback(self.feedback, self.verifier, self.threshold)
        if self.rounds < 1:
            raise BadInput(f"rounds must be >= 1, got {self.rounds}.")
        if self.temperature < 0:
            raise BadInput(f"temperature must be >= 0, got {self.temperature}.")
        if not self.phrase.strip():
            raise BadInput("the reflection phrase is empty.")


class Reflection(Strategy):
    name = "reflection"
    Config = ReflectionConfig

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        critic = critic_for(self, c.feedback, task, backend, c.verifier, c.threshold)
        prompts = [build_prompt(task, p, backend, c.shots) for p in problems]
        # each attempt continues the ids read and generated so far: the prefix cache serves them
        contexts = [backend.encode(pr.text) for pr in prompts]
        phrase = backend.encode_continuation(f"\n{c.phrase}\n")
        traces: list[list[Trace]] = [[] for _ in problems]
        said_of: list[list[str | None]] = [[] for _ in problems]  # the critic's line before each reflection
        last: dict[int, list[int]] = {}
        live = list(range(len(problems)))
        for rnd in range(c.rounds + 1):
            if rnd:  # reflect where the next attempt still fits the model's context (room for twice the last)
                notes: dict[int, str | None] = {i: None for i in live}
                if critic is not None:  # only where the critic finds something, and naming it
                    notes = {i: critic(problems[i], [traces[i][-1].text])[0] for i in live}
                    for i in live:
                        said_of[i].append(notes[i])
                    live = [i for i in live if notes[i] is not None]
                for i in live:
                    said = phrase if notes[i] is None else backend.encode_continuation(f"\n{notes[i]}\n{c.phrase}\n")
                    contexts[i] = contexts[i] + last[i] + said
                room = backend.capabilities.context_length
                live = [i for i in live if len(contexts[i]) + 2 * traces[i][-1].tokens + 16 <= room]
                if not live:
                    break
            params = [SamplingParams(temperature=c.temperature, max_tokens=c.max_tokens or task.max_tokens,
                                     stop=prompts[i].stop, seed=problem_seed(seed, problems[i]) + rnd) for i in live]
            gens = backend.generate([contexts[i] for i in live], params, owners=[problems[i].id for i in live])
            for i, g in zip(live, gens, strict=True):
                comp = g.completions[0]
                last[i] = kept_ids(backend, comp)
                answer, rule = task.extract(comp.text)
                traces[i].append(Trace(comp.text, answer, rule, comp.n_tokens, comp.finish_reason))
        return [Result(ts[-1].answer, ts, info={"first_answer": ts[0].answer, "answers": [t.answer for t in ts],
                                                "rounds": len(ts) - 1, **({"feedback": fb} if critic else {})})
                for ts, fb in zip(traces, said_of, strict=True)]
