"""Training data: SFT rows from a file or a task, prompts for RL, all in the model's own format.

Every row becomes TRL's prompt-completion shape (`{"prompt", "completion"}`), so SFTTrainer
puts the loss on the completion only (the lab mix comes as token ids with its own loss mask).
A file may hold `{"question", "solution"}` rows (what `deliberate export-traces` writes; the
prompt is built the way `eval` would ask the question, zero-shot) or `{"prompt", "completion"}`
rows (used as they are). A bad row is refused with its file and line, before training starts.

Task sources: `lab` is the lab model's own training mix (every format of `deliberate.lab.formats`,
both languages, generated without end and never equal to a held-out problem); a task whose
problems carry a reference solution (`lab-en-train`, `lab-zh-train`) gives question/solution rows.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deliberate.backends.base import Capabilities
from deliberate.errors import BadInput, UnknownName


@dataclass
class PromptView:
    """What prompting reads off a backend (its format and chat rendering), without the weights:
    trainers build the prompts `eval` would send, from the tokenizer and config alone."""

    spec: str
    prompt_style: str
    tokenizer: Any
    capabilities: Capabilities = field(default_factory=Capabilities)  # what prompting may ask of a backend

    @classmethod
    def load(cls, spec: str, path: str) -> PromptView:
        from transformers import AutoConfig, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(path)
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise BadInput(f"could not load model {spec!r}: {str(e).strip().splitlines()[0]}") from None
        has_chat = bool(getattr(tok, "chat_template", None))
        style = getattr(config, "deliberate_prompt_style", None) or ("chat" if has_chat else "completion")
        return cls(spec, style, tok)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        from deliberate.backends.hf_tokens import render_chat

        return render_chat(self.tokenizer, messages)


def prompt_for(question: str, view: PromptView, task=None, shots: int = 0, think: bool = False) -> str:
    """The prompt `eval` would send for a question (zero-shot unless `shots`), as text; `think`
    opens `<think>` at its end (R1's template) unless the model's own prompt opens it already."""
    from deliberate.prompting import THINK_OPEN, build_prompt
    from deliberate.tasks import Problem, Task

    task = task or Task("sft", "training rows", list, lang=None)
    text = build_prompt(task, Problem("row", question, ""), view, shots=shots).text  # type: ignore[arg-type]
    opened = f"{THINK_OPEN}\n"
    return text + opened if think and not text.endswith(opened) else text


def _text(row: dict, key: str, where: str) -> str:
    v = row.get(key)
    if not isinstance(v, str) or not v.strip():
        raise BadInput(f"{where}: field {key!r} must be a non-empty string, got {json.dumps(v)[:60]}.")
    return v


def read_sft_file(path: str | Path, view: PromptView, think: bool = False) -> list[dict]:
    """prompt/completion rows from a JSONL file of question/solution or prompt/completion rows
    (`think`: a question's prompt opens `<think>`; a row's own prompt is kept as written)."""
    from deliberate.tasks.loaders import read_jsonl

    path = Path(path)
    rows = []
    for n, row in read_jsonl(path, required=()):  # it names file:line for bad JSON, non-objects, no rows
        where = f"{path}:{n}"
        if "prompt" in row or "completion" in row:
            rows.append({"prompt": _text(row, "prompt", where), "completion": _text(row, "completion", where)})
        elif "question" in row or "solution" in row:
            q, s = _text(row, "question", where), _text(row, "solution", where)
            rows.append({"prompt": prompt_for(q, view, think=think), "completion": s})
        else:
            raise BadInput(f"{where}: a row needs question/solution or prompt/completion fields, "
                           f"got {', '.join(row) or 'none'}.")
    return rows


def lab_mix(n: int, seed: int, tokenizer, mix: dict[str, float] | None = None,
            languages: tuple[str, ...] = ("en", "zh"), difficulties=None) -> list[dict]:
    """`n` examples of the lab training mix as token ids with a loss mask (a pure function of
    seed). Ids and mask rather than prompt/completion text: a think trace trains the steps after
    each `Wait` but not the wrong attempts between them, which no prefix mask can say."""
    from deliberate.lab import formats
    from deliberate.lab.generator import CURRICULUM, held_out_keys, train_stream

    stream, rng = train_stream(seed, difficulties or CURRICULUM, held_out_keys()), random.Random(seed)
    return [formats.encode(formats.example(next(stream), rng.choice(languages), rng, mix or formats.MIX), tokenizer)
            for _ in range(n)]


def lab_own_mix(spec: str, n: int, seed: int, tokenizer, threads: int | None = None,
                teacher: str | None = None, mix: dict[str, float] | None = None,
                own_plain: bool = True) -> list[dict]:
    """`n` rows of the lab mix whose plain and think rows hold the model's own right answers
    (`deliberate.lab.own`): the model at `spec` answers them greedily first. With `teacher`, that
    model answers the think rows after `<think>` instead (its right traces open them). `mix`: the
    formats' shares (`formats.MIX` unless given). Without `own_plain` the plain rows keep the
    generator's solutions in random equivalent forms: the model's own greedy answer is one form
    per problem, and 15% such rows left its samples at T=1 poor (docs/training.md)."""
    from deliberate.backends import load_backend
    from deliberate.lab import own

    kinds = tuple(k for k in (("plain",) if teacher else own.OWN_KINDS) if own_plain or k != "plain")
    model = load_backend(spec, threads=threads) if kinds else None  # not loaded when it answers nothing
    thinker = load_backend(teacher, threads=threads) if teacher else None  # a bad spec fails before any answering
    plan = own.plan(n, seed, mix)
    answers = _answers(model, spec, plan, kinds, False) if model else {}
    if thinker:
        answers |= _answers(thinker, str(teacher), plan, ("think",), True)
    return own.own_mix_rows(plan, answers, tokenizer, seed)


def _answers(backend, name: str, plan: list, kinds: tuple[str, ...], think: bool) -> dict[int, list[str]]:
    """The right greedy answers of `backend` to the plan's rows of `kinds`, under a bar."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from deliberate.lab import own
    from deliberate.params import SamplingParams
    from deliberate.train.common import Milestones

    greedy = SamplingParams(temperature=0, max_tokens=256)
    console = Console(stderr=True)
    label, total = f"{name} answers {'/'.join(kinds)} rows", sum(kind in kinds for *_, kind in plan)
    lines = Milestones(label, total, not console.is_terminal)

    def on_batch(done: int, right: int) -> None:
        bar.update(task, completed=done, right=right)
        lines.update(done, f"{right} right")

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[right]} right"), TimeRemainingColumn(), console=console,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task("own", total=total, right=0)
        return own.own_answers(lambda prompts: [g.completions[0].text for g in backend.generate(prompts, greedy)],
                               plan, on_batch=on_batch, kinds=kinds, think=think)


def sft_rows(data: str, view: PromptView, *, examples: int, seed: int, think: bool = False,
             threads: int | None = None, teacher: str | None = None,
             mix: dict[str, float] | None = None, own_plain: bool = True) -> list[dict]:
    """Rows from a file, `lab` (`examples` rows of the lab mix), `lab-own` (the same with the
    model's own right answers) or every reference solution of a task; `think` opens `<think>`
    after each question (distilling a thinking model's traces)."""
    if Path(data).expanduser().is_file():
        return read_sft_file(Path(data).expanduser(), view, think)
    if data in ("lab", "lab-own"):
        if think:
            raise BadInput(f"--think does not apply to `{data}`: the lab mix holds its own think traces.")
        if data == "lab-own":
            return lab_own_mix(view.spec, examples, seed, view.tokenizer, threads, teacher, mix, own_plain)
        return lab_mix(examples, seed, view.tokenizer, mix)
    from deliberate.tasks import load_task

    try:
        task = load_task(data)
    except UnknownName:
        raise BadInput(f"--data {data!r} is neither a file nor a task (nor `lab` or `lab-own`, "
                       "the lab training mix).") from None
    rows = [{"prompt": prompt_for(p.question, view, task, think=think), "completion": p.meta["solution"]}
            for p in task.problems if p.meta.get("solution")]
    if not rows:
        raise BadInput(f"task {data} has no reference solutions to train on; pass a file of question/solution rows.")
    return rows


def to_dataset(rows: list[dict]):
    import datasets

    datasets.disable_progress_bars()  # its per-map bars would bury the trainer's own progress
    return datasets.Dataset.from_list(rows)
