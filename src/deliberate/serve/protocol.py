"""The OpenAI wire, both ways: a request body read into a job, a job's outcome written back.

Which search runs comes from the model name (`mcts@lab`), from a `deliberate` object in the body
(`{"strategy": "mcts", "iterations": 8, "tree": true}`), or from `optillm_approach` (optillm's
convention); none of them means pass-through. Reasoning goes out in `message.reasoning`, mirrored
as `reasoning_content` (the names vLLM and DeepSeek's API use); usage counts every token the
search spent, prompt reads and cached reads included, and the verifier's in its own fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from deliberate.backends.base import Completion, Generation
from deliberate.backends.metered import Compute
from deliberate.errors import BadInput
from deliberate.params import SamplingParams
from deliberate.prompting import THINK_CLOSE, THINK_OPEN
from deliberate.search import STRATEGIES, Result

# optillm's approach slugs that name a strategy deliberate has ("none" is its pass-through)
OPTILLM = {"none": None, "bon": "best-of-n", "mcts": "mcts", "self_consistency": "self-consistency",
           "rstar": "rstar", "cot_reflection": "reflection"}
# which of the server's caps bounds which integer strategy option; any other integer option (beam's
# width, expand and subtrees, mcts's children, rounds, ...) multiplies the samples and takes max_n
# (token counts, named *tokens or *think, take max_tokens)
OPTION_CAPS = {"iterations": "max_iterations", "seed": None}
# request fields a strategy takes as its own option when it has one of that name
SHARED_FIELDS = ("temperature", "top_p", "max_tokens")


class ApiError(Exception):
    """An error answered as OpenAI's error object with an HTTP status."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class Route:
    strategy: str | None
    options: dict
    tree: bool = False


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def route(body: dict, served: str, caps) -> Route:
    """The strategy and options a request names, checked against the server's caps."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required: the served model, or STRATEGY@model.", param="model")
    named, _, name = model.rpartition("@")
    if name != served:
        raise ApiError(404, f"model {model!r} is not served here; this server serves {served!r} "
                            f"(STRATEGY@{served} runs a search).", param="model", code="model_not_found")
    extra = body.get("deliberate") or {}
    if not isinstance(extra, dict):
        raise ApiError(400, "deliberate must be an object of strategy options.", param="deliberate")
    extra = dict(extra)
    tree = extra.pop("tree", False)
    strategy = extra.pop("strategy", None)
    approach = body.get("optillm_approach")
    for field_name, v in (("deliberate.strategy", strategy), ("optillm_approach", approach)):
        if v is not None and not isinstance(v, str):
            raise ApiError(400, f"{field_name} must be a string.", param=field_name)
    if not isinstance(tree, bool):
        raise ApiError(400, "deliberate.tree must be true or false.", param="deliberate.tree")
    if approach is not None:
        if approach not in OPTILLM:
            raise ApiError(400, f"unknown optillm_approach {approach!r}; deliberate serves: {', '.join(OPTILLM)}.",
                           param="optillm_approach")
        approach = OPTILLM[approach]
    names = {s for s in (named or None, strategy, approach) if s}
    if len(names) > 1:
        raise ApiError(400, f"the request names two strategies: {' and '.join(sorted(names))}.", param="model")
    strategy = names.pop() if names else None
    if strategy is None:
        if extra:
            raise ApiError(400, f"option {next(iter(extra))!r} needs a strategy (deliberate.strategy).",
                           param="deliberate")
        return Route(None, {}, bool(tree))
    if strategy not in STRATEGIES:
        raise ApiError(400, f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}.", param="model")
    config = STRATEGIES[strategy].Config
    fields = config.__dataclass_fields__
    for f in SHARED_FIELDS:
        if f in fields and f not in extra and body.get(f) is not None:
            extra[f] = body[f]
    if "max_tokens" in fields and "max_tokens" not in extra and body.get("max_completion_tokens") is not None:
        extra["max_tokens"] = body["max_completion_tokens"]
    kinds = get_type_hints(config)
    for opt, v in extra.items():
        if opt in fields:
            _check_type(opt, v, kinds.get(opt))
        cap = OPTION_CAPS[opt] if opt in OPTION_CAPS else ("max_tokens" if opt.endswith(("tokens", "think"))
                                                            else "max_n")
        if isinstance(v, int) and not isinstance(v, bool) and cap:
            if v > getattr(caps, cap):
                flag = "--" + cap.replace("_", "-")
                raise ApiError(400, f"{opt} {v} is above this server's cap of {getattr(caps, cap)} ({flag}).",
                               param=f"deliberate.{opt}")
    return Route(strategy, {k: _hashable(v) for k, v in extra.items()}, tree)


def _check_type(name: str, v: Any, kind) -> None:
    """A JSON value against a strategy option's type (int, float, str, bool, optional or not)."""
    allowed = set(get_args(kind)) if get_origin(kind) in (Union, UnionType) else {kind}
    if v is None and type(None) in allowed:
        return
    ok = {int: lambda x: isinstance(x, int) and not isinstance(x, bool),
          float: lambda x: isinstance(x, int | float) and not isinstance(x, bool),
          str: lambda x: isinstance(x, str), bool: lambda x: isinstance(x, bool)}
    checks = [ok[k] for k in allowed if k in ok]
    if checks and not any(c(v) for c in checks):
        want = " or ".join(sorted(k.__name__ for k in allowed if k in ok))
        raise ApiError(400, f"deliberate.{name} must be {want}, got {v!r}.", param=f"deliberate.{name}")


def _int(body: dict, name: str, default: int | None, lo: int, hi: int) -> int | None:
    v = body.get(name, default)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(400, f"{name} must be an integer in [{lo}, {hi}], got {v!r}.", param=name)
    return v


def _num(body: dict, name: str, default: float, lo: float, hi: float) -> float:
    v = body.get(name, default)
    if v is None:
        return default
    if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
        raise ApiError(400, f"{name} must be a number in [{lo}, {hi}], got {v!r}.", param=name)
    return float(v)


def sampling(body: dict, caps, chat: bool) -> SamplingParams:
    """The pass-through request's sampling settings, OpenAI's names and defaults, within the caps."""
    if body.get("echo") and not chat:  # refused, not ignored: a client would read the wrong logprobs
        raise ApiError(400, "echo is not supported here (this server returns no prompt logprobs).", param="echo")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, list | tuple) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "stop must be a string or a list of at most 4 non-empty strings.", param="stop")
    name = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    if chat:
        k = _int(body, "top_logprobs", None, 0, 20)
        if body.get("logprobs") not in (None, True, False):
            raise ApiError(400, "logprobs must be true or false in a chat request.", param="logprobs")
        logprobs = (k or 0) if body.get("logprobs") else None
    else:
        logprobs = _int(body, "logprobs", None, 0, 20)
    try:
        return SamplingParams(n=_int(body, "n", 1, 1, caps.max_n), temperature=_num(body, "temperature", 1.0, 0, 2),
                              top_p=_num(body, "top_p", 1.0, 1e-9, 1), stop=tuple(stop),
                              max_tokens=_int(body, name, min(512, caps.max_tokens), 1, caps.max_tokens),
                              seed=_int(body, "seed", caps.seed, -(2**63), 2**63 - 1), logprobs=logprobs)
    except BadInput as e:
        raise ApiError(400, str(e)) from None


def messages_of(body: dict) -> list[dict[str, str]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ApiError(400, "messages must be a non-empty list.", param="messages")
    out = []
    for i, m in enumerate(msgs):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: the text ones
            content = "".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text"
                              and isinstance(p.get("text"), str))
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer", "tool") \
                or not isinstance(content, str):
            raise ApiError(400, f"messages[{i}] needs a role and a text content.", param=f"messages[{i}]")
        out.append({"role": m["role"], "content": content})
    return out


def question_of(messages: list[dict[str, str]]) -> str:
    """What a search answers: the last user message."""
    for m in reversed(messages):
        if m["role"] == "user" and m["content"].strip():
            return m["content"].strip()
    raise ApiError(400, "a search needs a user message with text.", param="messages")


def split_think(text: str) -> tuple[str, str]:
    """(reasoning, content) of a model's own output: what it thought inside `<think>` and the rest."""
    if THINK_CLOSE not in text:
        return "", text
    head, _, tail = text.partition(THINK_CLOSE)
    return head.replace(THINK_OPEN, "", 1).strip("\n"), tail.strip("\n")


def answer_trace(result: Result):
    """The trace the answer came from: the best-scored one that reached it (or the first)."""
    right = [t for t in result.traces if t.answer == result.answer] or result.traces
    return max(right, key=lambda t: t.score if t.score is not None else float("-inf")) if right else None


def search_message(result: Result) -> tuple[str, str, str]:
    """(reasoning, content, finish_reason) of a search's result: the path to the answer is the
    reasoning, the answer the content (the path's own text where no answer could be read)."""
    trace = answer_trace(result)
    text = trace.text if trace else ""
    reasoning, after = split_think(text)
    if result.answer is not None:
        return (reasoning or text), result.answer, "stop"
    return reasoning, after or text, (trace.finish_reason if trace else "stop")


def usage(compute: Compute, reasoning_tokens: int) -> dict:
    """OpenAI's usage object for everything a request spent: prompt reads (cached ones counted in
    `prompt_tokens_details`), every generated token, and the verifier's reads and calls."""
    return {"prompt_tokens": compute.tokens_read, "completion_tokens": compute.tokens_generated,
            "total_tokens": compute.tokens_read + compute.tokens_generated,
            "prompt_tokens_details": {"cached_tokens": compute.tokens_cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "verifier_tokens": compute.verifier_tokens, "verifier_calls": compute.verifier_calls,
            "backend_calls": compute.calls}


def request_compute(gens: list[Generation], compute: Compute) -> Compute:
    """A pass-through request's usage as OpenAI counts it: each prompt read once, whatever n, and
    cached tokens the prefix cache served (not the n samples' shared prefill, which the meter
    counts as cached reads). A search's usage stays the meter's: every read of every call."""
    prompt = sum(g.prompt_tokens for g in gens)
    shared = sum(g.prompt_tokens * (len(g.completions) - 1) for g in gens)
    return replace(compute, tokens_read=prompt, tokens_cached=max(0, compute.tokens_cached - shared))


def chat_logprobs(c: Completion) -> dict | None:
    if c.logprobs is None:
        return None
    return {"content": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
                         "top_logprobs": [{"token": a, "logprob": lp, "bytes": list(a.encode())} for a, lp in t.top]}
                        for t in c.logprobs]}


def completion_logprobs(c: Completion) -> dict | None:
    if c.logprobs is None:
        return None
    offsets, pos = [], 0
    for t in c.logprobs:
        offsets.append(pos)
        pos += len(t.token)
    return {"tokens": [t.token for t in c.logprobs], "token_logprobs": [t.logprob for t in c.logprobs],
            "top_logprobs": [dict(t.top) for t in c.logprobs], "text_offset": offsets}


def envelope(kind: str, model: str, rid: str) -> dict:
    return {"id": rid, "object": kind, "created": int(time.time()), "model": model}


def think_tokens(gens: list[Generation], count) -> int:
    """Reasoning tokens of pass-through output: those of its `<think>` parts (by the tokenizer)."""
    parts = [split_think(c.text)[0] for g in gens for c in g.completions]
    return sum(count([p for p in parts if p])) if any(parts) else 0
