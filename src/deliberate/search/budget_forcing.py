"""`budget-forcing` (s1, Muennighoff et al. 2025): control how long a model thinks.

For models that think inside `<think>…</think>`: while the thinking is shorter than
`min_think` tokens, an attempt to end it is suppressed and "Wait" is appended, so the model
thinks on; at `max_think` tokens the end of thinking is forced. Then the answer is generated
after `</think>`. Suppression works by stopping at `</think>` and not keeping it, which is the
same as s1's removal of the end-of-thinking token. Thinking also ends where the model's context
would leave no room for the answer. Where the budget or the context cuts a line short, that
unfinished line is dropped before `</think>` (its tokens still count): s1 cuts at the token, but
a number cut in half (`70 + 14 = 8`) reads as another number, and a model that copies its last
line into the answer then answers it (on the lab model at 16x, 52 of the 177 answers right at 4x
broke so; 25 with the line dropped). A `Wait` left bare by the drop goes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deliberate.backends.metered import Meter
from deliberate.errors import BadInput
from deliberate.params import SamplingParams
from deliberate.prompting import THINK_CLOSE, THINK_OPEN, build_prompt, format_of
from deliberate.search.base import Result, Strategy, Trace, problem_seed
from deliberate.tasks.base import Problem, Task

WAIT = "Wait"  # s1's word appended to make a model think on


@dataclass(frozen=True)
class BudgetForcingConfig:
    min_think: int = field(default=0, metadata={"help": "tokens of thinking before an end is allowed"})
    max_think: int = field(default=256, metadata={"help": "tokens of thinking at most"})
    answer_tokens: int = field(default=32, metadata={"help": "tokens for the answer after </think>"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})
    wait: str = field(default=WAIT, metadata={"help": "appended when the model ends its thinking too early"})
    shots: int = field(default=8, metadata={"help": "few-shot exemplars for real models (the lab model takes none)"})

    def __post_init__(self) -> None:
        if self.min_think < 0 or self.max_think < 1 or self.answer_tokens < 1:
            raise BadInput("need min_think >= 0, max_think >= 1 and answer_tokens >= 1.")
        if self.min_think > self.max_think:
            raise BadInput(f"min_think must be <= max_think, got {self.min_think} > {self.max_think}.")
        if self.temperature < 0:
            raise BadInput(f"temperature must be >= 0, got {self.temperature}.")


class BudgetForcing(Strategy):
    name = "budget-forcing"
    Config = BudgetForcingConfig
    needs = {"think_format": f"a model that thinks in {THINK_OPEN}…{THINK_CLOSE}"}

    def solve_batch(self, problems: Sequence[Problem], backend: Meter, task: Task, *,
                    seed: int = 0) -> list[Result]:
        c = self.config
        opened = "" if format_of(backend).opens_think else f"{THINK_OPEN}\n"  # the prompt may open it already
        heads = [build_prompt(task, p, backend, c.shots).text + opened for p in problems]
        thought = ["" for _ in problems]
        used = [0 for _ in problems]
        waits = [0 for _ in problems]
        cut = [False for _ in problems]  # the last piece of thinking stopped at a token limit
        live = list(range(len(problems)))
        rnd = 0
        reserve = c.answer_tokens + 16  # the context keeps room for </think> and the answer
        while live:  # each round: think on until </think>, the budget, the context, or the end of the text
            sizes = backend.count_tokens([heads[i] + thought[i] for i in live])
            room = {i: min(c.max_think - used[i], backend.capabilities.context_length - n - reserve)
                    for i, n in zip(live, sizes, strict=True)}
            live = [i for i in live if room[i] >= 1]
            if not live:
                break
            gens = backend.generate([heads[i] + thought[i] for i in live],
                                    [SamplingParams(temperature=c.temperature, max_tokens=room[i],
                                                    stop=(THINK_CLOSE,), seed=problem_seed(seed, problems[i]) + rnd)
                                     for i in live], owners=[problems[i].id for i in live])
            still = []
            for i, g in zip(live, gens, strict=True):
                comp = g.completions[0]
                thought[i] += comp.text
                used[i] += comp.n_tokens
                cut[i] = comp.finish_reason == "length"
                if comp.stop == THINK_CLOSE and used[i] < c.min_think:
                    thought[i] = thought[i].rstrip("\n") + f"\n{c.wait}\n"  # suppress the end: think on
                    waits[i] += 1
                    still.append(i)
            live, rnd = still, rnd + 1
        ends = [(_whole_lines(t, c.wait) if short else t).rstrip("\n") + f"\n{THINK_CLOSE}\n"
                for t, short in zip(thought, cut, strict=True)]
        gens = backend.generate([h + e for h, e in zip(heads, ends, strict=True)],
                                SamplingParams(temperature=0.0, max_tokens=c.answer_tokens),
                                owners=[p.id for p in problems])
        out = []
        for i, g in enumerate(gens):
            comp = g.completions[0]
            text = f"{THINK_OPEN}\n{ends[i]}{comp.text}"
            answer, rule = task.extract(text)
            trace = Trace(text, answer, rule, used[i] + comp.n_tokens, comp.finish_reason)
            out.append(Result(answer, [trace], info={"think_tokens": used[i], "waits": waits[i]}))
        return out


def _whole_lines(thought: str, wait: str) -> str:
    """The thinking up to its last finished line (all of it when no line is finished yet), less a
    `wait` line that the dropped line followed."""
    head, sep, _ = thought.rpartition("\n")
    if not sep:
        return thought
    kept = head + sep
    return kept[:-len(wait) - 1] if kept.endswith(f"\n{wait}\n") else kept
