"""`confidence`: Marco-o1's reward, the mean token confidence of a rollout.

For each generated token, c_i = exp(log p(t_i)) / sum_{k=1..5} exp(log p(t_k)) over the top-5
candidates at that position (`deliberate.search.tree.token_confidence`); a rollout's value is
v = mean(c_i) over all its tokens. The score of step i is that mean over the tokens of steps
1..i, so the last step's score is exactly Marco-o1's v and a partial path (a beam) is scored by
the same rule. It needs no answer key, so it also guides search on open-ended tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

from deliberate.errors import BadInput
from deliberate.rewards.base import Path, Reward
from deliberate.tasks.base import Problem


class Confidence(Reward):
    name = "confidence"
    needs_logprobs = 5  # Marco-o1 normalizes over the top 5

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        out = []
        for path in paths:
            if len(path.confidences) != len(path.steps):
                raise BadInput("the confidence reward needs the token confidences of every step; "
                               "generate with logprobs=5.")
            total, count, scores = 0.0, 0, []
            for conf in path.confidences:
                total += sum(conf)
                count += len(conf)
                scores.append(total / count if count else 0.0)
            out.append(scores)
        return out
