"""`self-eval`: the model itself judges each step, scored from the probability of its yes/no.

After the problem and the steps so far, the model is asked whether the last step is correct;
the step's score is P(" Yes") / (P(" Yes") + P(" No")) read with `Backend.score`, as in
self-evaluation guided decoding (Xie et al. 2023). It needs no answer key, but it costs a
scoring pass per step, which the meter bills to the problem as verifier tokens and calls. A
model never taught to judge (the lab model) gives a weak signal: measure it.
Deviation from Xie et al.: they mix this score with the step's generation probability and
search with stochastic beam search; here it is one reward among others, and the strategy
(beam, mcts, best-of-n) decides how it is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deliberate.backends.base import Backend
from deliberate.backends.metered import Meter
from deliberate.prompting import build_prompt
from deliberate.rewards.base import Path, Reward
from deliberate.tasks.base import Problem, Task

ASK = "\nIs the last step above correct? Answer Yes or No.\nAnswer:"


class SelfEval(Reward):
    name = "self-eval"
    needs_scoring = True

    def __init__(self, backend: Backend, task: Task, shots: int = 8) -> None:
        # scoring goes through a meter so that it is billed to the problem it judges
        self.backend = backend if isinstance(backend, Meter) else Meter(backend)
        self.task, self.shots = task, shots

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        head = build_prompt(self.task, problem, self.backend, self.shots).text
        asks = [head + "".join(p.steps[: i + 1]) + ASK for p in paths for i in range(len(p.steps))]
        if not asks:
            return [[] for _ in paths]
        scored = self.backend.score([*asks, *asks], [" Yes"] * len(asks) + [" No"] * len(asks),
                                    owners=[problem.id] * (2 * len(asks)))
        yes, no = scored[: len(asks)], scored[len(asks):]
        flat = [1 / (1 + math.exp(n.total - y.total)) for y, n in zip(yes, no, strict=True)]  # P(yes) / (P(yes)+P(no))
        out, k = [], 0
        for p in paths:
            out.append(flat[k: k + len(p.steps)])
            k += len(p.steps)
        return out
