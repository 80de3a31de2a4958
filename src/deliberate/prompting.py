"""Prompting has one owner: this module renders a task's problem in the model's format.

A model declares its format (`Backend.prompt_style`: the lab model's config says "lab"; a
tokenizer with a chat template is "chat"; anything else "completion"), and `FORMATS` says what
a model of each format can follow: whether it thinks in `<think>…</think>`, which of rStar's
actions it knows. Strategies ask here (`build_prompt`, `format_of`) and never branch on a
task's or a model's name; backends only tokenize. A new format (a chat-only endpoint) is a
new entry here, not a change to any strategy.

Real models get MGSM's own exemplars in the problem's language (GSM8K uses the English ones:
they are Wei et al.'s GSM8K chain-of-thought exemplars), lab tasks get lab-generated
exemplars in the same "Question / Step-by-Step Answer" shape, MATH-500 asks for `\\boxed{}`,
and Game of 24 gets three worked puzzles written for this project. A chat model receives
the exemplars as earlier turns; a base model receives them as one text.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from functools import cache

from deliberate.backends.base import Backend
from deliberate.errors import BadInput
from deliberate.tasks.base import Problem, Task, data_dir

# R1's think tags (DeepSeek-AI 2025), which s1's budget forcing also controls
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
RSTAR_ACTIONS = ("step", "rest", "subquestion", "reanswer", "rephrase")


@dataclass(frozen=True)
class Format:
    """A prompt format and what a model prompted in it can follow."""

    name: str
    think_format: bool = False  # trained to think inside <think>…</think> (budget forcing needs it)
    rstar_actions: tuple[str, ...] = RSTAR_ACTIONS  # rStar's actions the model can carry out
    bare: bool = False  # asked with the question alone, no exemplars (models trained on the lab formats)
    opens_think: bool = False  # the prompt ends in `<think>`: the model always thinks first (R1's template)


FORMATS = {
    # the lab model was taught steps, whole solutions and the think format, never sub-questions
    # or rephrasing: rStar's other actions would be text it has never seen
    "lab": Format("lab", think_format=True, rstar_actions=("step", "rest"), bare=True),
    # the lab model after R1-style GRPO: every answer is thought out in <think>…</think> first
    "lab-r1": Format("lab-r1", think_format=True, rstar_actions=("step", "rest"), bare=True, opens_think=True),
    "chat": Format("chat"),
    "completion": Format("completion"),
}


def format_of(backend: Backend) -> Format:
    """The format a backend's model declares; a model whose vocabulary has `</think>` thinks."""
    fmt = FORMATS.get(backend.prompt_style)
    if fmt is None:
        raise BadInput(f"model {backend.spec!r} declares prompt format {backend.prompt_style!r}; "
                       f"known formats: {', '.join(FORMATS)}.")
    if backend.capabilities.think_format and not fmt.think_format:
        fmt = replace(fmt, think_format=True)
    return fmt


@dataclass(frozen=True)
class Prompt:
    text: str
    stop: tuple[str, ...]


# The lab model's own prompt shapes; its training data (deliberate.lab.formats) is built from them.
LAB_TRANSLATE = {("en", "zh"): "Translate to Chinese:", ("zh", "en"): "翻译成英文："}


def lab_question(question: str) -> str:
    return question + "\n"


def bare_prompt(question: str, fmt: Format) -> str:
    """A question as a model trained on the lab formats reads it (opening `<think>` where it thinks first)."""
    return lab_question(question) + (f"{THINK_OPEN}\n" if fmt.opens_think else "")


def lab_translation(text: str, src: str, tgt: str) -> str:
    return f"{LAB_TRANSLATE[(src, tgt)]}\n{text}\n"


def with_hint(question: str, answer: str) -> str:
    """A question with its answer given, for STaR's rationalization: the model writes a rationale
    that reaches the answer, and the rationale is then trained under the plain question."""
    return f"{question} (Hint: the answer is {answer}.)"


@cache
def mgsm_exemplars(lang: str) -> list[tuple[str, str]]:
    data = json.loads((data_dir() / "mgsm" / "exemplars.json").read_text(encoding="utf-8"))
    return [(e["q"], e["a"]) for e in data["exemplars"][lang]]


def _labels(lang: str) -> tuple[str, str]:
    """The localized "Question:" and "Step-by-Step Answer:" labels, read off the exemplars."""
    q, a = mgsm_exemplars(lang)[0]
    cut = lambda s: s[: min(i for i in (s.find(":"), s.find("："), len(s)) if i >= 0) + 1]  # noqa: E731
    return cut(q), cut(a)


@cache
def lab_exemplars(lang: str, k: int = 4) -> list[tuple[str, str]]:
    from deliberate.lab.generator import make_problem

    q_label, a_label = _labels(lang)
    rng = random.Random(7)  # not the test split's seed
    sep = "" if lang == "zh" else " "
    out = []
    for _ in range(k):
        p = make_problem(rng)
        # one step per line, as the lab model writes them: tree search's step actions are lines
        out.append((f"{q_label}{sep}{p.question[lang]}", f"{a_label}\n" + p.solution(lang)))
    return out


GAME24_SHOTS = [("2 3 4 8", "(8 - 4) * 3 * 2 = 24"), ("1 5 5 5", "5 * (5 - 1 / 5) = 24"),
                ("3 3 8 8", "8 / (3 - 8 / 3) = 24")]
GAME24_RULE = "Use the four numbers once each with + - * / and parentheses to make 24."
MATH_RULE = "Solve the problem step by step. Put the final answer in \\boxed{}."


def build_prompt(task: Task, problem: Problem, backend: Backend, shots: int = 8) -> Prompt:
    """The prompt text for one problem on one backend, with the stop strings that end an answer."""
    if task.kind == "translate":
        return translation_prompt(problem, backend)
    fmt = format_of(backend)
    if fmt.bare:
        return Prompt(bare_prompt(problem.question, fmt), ())
    if task.kind == "game24":
        pairs = [(f"{GAME24_RULE}\nInput: {q}", f"Answer: {a}") for q, a in GAME24_SHOTS[:shots]]
        query, lead, stop = f"{GAME24_RULE}\nInput: {problem.question}", "Answer:", ("\nInput:",)
    elif task.prompt == "boxed":
        pairs, query, lead, stop = [], f"{MATH_RULE}\n\nProblem: {problem.question}", "Solution:", ("\nProblem:",)
    else:
        lang = task.lang if task.lang in ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh") else "en"
        pairs = (lab_exemplars(lang) if task.prompt == "lab-cot" else mgsm_exemplars(lang))[:shots]
        q_label, a_label = _labels(lang)
        sep = "" if lang in ("zh", "ja") else " "
        query, lead, stop = f"{q_label}{sep}{problem.question}", a_label, (f"\n{q_label}", f"{q_label}")
    if backend.prompt_style == "chat":
        messages = []
        for q, a in pairs:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": query})
        return Prompt(backend.render_chat(messages), stop)
    shots_text = "".join(f"{q}\n{a}\n\n" for q, a in pairs)
    return Prompt(f"{shots_text}{query}\n{lead}", stop)


LANG_NAMES = {"en": "English", "zh": "Chinese", "de": "German", "fr": "French", "es": "Spanish", "ja": "Japanese",
              "ru": "Russian"}


def translation_prompt(problem: Problem, backend: Backend) -> Prompt:
    """The lab model's own translation format, or a plain instruction for real models."""
    src, tgt = problem.meta.get("src", ""), problem.meta.get("tgt", "")
    if format_of(backend).bare:
        if (src, tgt) not in LAB_TRANSLATE:
            raise BadInput(f"the lab model translates only en<->zh; got src={src!r}, tgt={tgt!r}.")
        return Prompt(lab_translation(problem.question, src, tgt), ())
    ask = (f"Translate the following {LANG_NAMES.get(src, src or 'source')} text into "
           f"{LANG_NAMES.get(tgt, tgt or 'the target language')}. Reply with the translation only.\n\n"
           f"{problem.question}")
    if backend.prompt_style == "chat":
        return Prompt(backend.render_chat([{"role": "user", "content": ask}]), ())
    return Prompt(f"{ask}\nTranslation:", ("\n\n",))


def chat_prompt(messages: list[dict[str, str]], backend: Backend) -> str:
    """A conversation as the model's own prompt, for a server's pass-through chat requests: a
    model trained on the bare lab formats knows no turns and is asked the last user message as
    a question; any other model gets the backend's rendering (its chat template, or a plain
    "Role: text" transcript that a base model continues as the assistant)."""
    if not messages:
        raise BadInput("messages is empty.")
    fmt = format_of(backend)
    if not fmt.bare:
        return backend.render_chat(messages)
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), None)
    if last is None:
        raise BadInput("messages holds no user message.")
    return bare_prompt(last, fmt)
