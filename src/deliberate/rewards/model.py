"""`prm:PATH` and `orm:PATH`: a trained verifier, a model of its own, as a reward.

A process reward model (Lightman et al. 2023, Let's Verify Step by Step) scores every step of a
path; an outcome reward model (Cobbe et al. 2021) scores the whole solution, and every step gets
that score. Strategies aggregate step scores with `last | min | prod` (search-and-learn's set).
A path given as one piece (best-of-n's whole samples) is cut at the task's step delimiter.

Three published PRM conventions load (`prm:PATH?format=F`, or found from the checkpoint):

- `token`: a token-classification head read at the last token of each step (`deliberate train
  prm` writes these); two classes give P(class 1), one gives a sigmoid;
- `shepherd` (Math-Shepherd, Wang et al. 2024): a causal LM; each step ends in the tag `ки`, and
  the step's score is P(`+`) against P(`-`) read at the tag;
- `qwen` (Qwen2.5-Math-PRM): steps separated by `<extra_0>` in the chat template's assistant
  turn, a two-class head read at each separator.

`prm:lab` is the PRM shipped with the lab model (`make lab-prm` trains it; docs/verifiers.md).

The verifier's forward passes are billed to the problem they judge as verifier tokens and one
verifier call per scoring pass (`Meter.bill_verifier`), so search's compute includes them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import parse_qs

from deliberate.errors import BadInput
from deliberate.rewards.base import Path, Reward, steps_of
from deliberate.tasks.base import Problem, Task

__all__ = ["FORMATS", "ModelReward", "parse_spec", "step_text", "token_positions"]

FORMATS = ("token", "shepherd", "qwen")
SHEPHERD_TAG, SHEPHERD_GOOD, SHEPHERD_BAD = "ки", "+", "-"
QWEN_SEP = "<extra_0>"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """`prm:PATH[?format=F]` -> (kind, path, format)."""
    kind, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    if kind not in ("prm", "orm") or not path:
        raise BadInput(f"a trained verifier is prm:PATH or orm:PATH, got {spec!r}.")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(opts) - {"format"}
    if unknown:
        raise BadInput(f"unknown option(s) {', '.join(sorted(unknown))} in {spec!r}; the only one is format.")
    fmt = opts.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise BadInput(f"unknown PRM format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    if kind == "orm" and fmt is not None:
        raise BadInput("an orm: verifier scores whole solutions and takes no format.")
    return kind, path, fmt


def verifier_path(kind: str, path: str) -> str:
    """A checkpoint's folder; `prm:lab` names the one shipped in the package (deliberate/lab/prm)."""
    if kind == "prm" and path == "lab":
        from importlib import resources

        return str(resources.files("deliberate.lab") / "prm")
    return path


def step_text(head: str, steps: Sequence[str]) -> tuple[str, list[int]]:
    """The `token` format's input, the head then the steps as written, and the offset of each
    step's last visible character, whose token the head reads (the PRM trainer labels the same)."""
    text, ends = head, []
    for s in steps:
        text += s
        ends.append(len(text.rstrip()) - 1 if text.strip() else 0)
    return text, ends


def token_positions(offsets: Sequence[tuple[int, int]], chars: Sequence[int]) -> list[int]:
    """For each character offset, the token that covers it (or the last one starting before it)."""
    out = []
    for c in chars:
        pos = next((i for i, (s, e) in enumerate(offsets) if s <= c < e), None)
        out.append(pos if pos is not None else max(i for i, (s, _) in enumerate(offsets) if s <= c))
    return out


def _custom_head(path: str) -> bool:
    import json
    from pathlib import Path as FilePath

    cfg = FilePath(path) / "config.json"
    names = json.loads(cfg.read_text()).get("architectures", []) if cfg.is_file() else []
    return any("ProcessRewardModel" in a for a in names)


class ModelReward(Reward):
    """A PRM or ORM checkpoint scoring paths; the model loads once per run."""

    def __init__(self, spec: str, task: Task | None = None, backend=None, threads: int | None = None) -> None:
        import torch
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForSequenceClassification,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )

        self.kind, path, fmt = parse_spec(spec)
        path = verifier_path(self.kind, path)
        self.name = spec
        self.task, self.meter = task, backend
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise BadInput(f"cannot load the verifier's tokenizer from {path}: {str(e).splitlines()[0]}") from None
        vocab = self.tokenizer.get_vocab()
        self.format = fmt or ("orm" if self.kind == "orm" else "shepherd" if SHEPHERD_TAG in vocab
                              else "qwen" if QWEN_SEP in vocab else "token")
        for needed in {"shepherd": (SHEPHERD_TAG,), "qwen": (QWEN_SEP,)}.get(self.format, ()):
            if needed not in vocab:
                raise BadInput(f"verifier {path}: format {self.format} needs the token {needed!r} in its vocabulary.")
        cls = {"orm": AutoModelForSequenceClassification, "shepherd": AutoModelForCausalLM}.get(
            self.format, AutoModelForTokenClassification)
        extra = {}
        if self.format == "qwen" and _custom_head(path):  # Qwen2.5-Math-PRM's head is its own code
            from transformers import AutoModel as cls  # type: ignore[no-redef]

            extra = {"trust_remote_code": True}
        try:
            self.model = cls.from_pretrained(path, dtype=torch.float32, **extra).eval()
        except (OSError, ValueError) as e:
            raise BadInput(f"cannot load {spec}: {str(e).splitlines()[0]}") from None
        if threads:
            torch.set_num_threads(threads)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.padding_side = "right"  # positions count from each text's start, as unpadded

    # -- texts and the positions whose scores are read --------------------------------------
    def _head(self, problem: Problem) -> str:
        if self.task is not None and self.meter is not None:
            from deliberate.prompting import build_prompt

            return build_prompt(self.task, problem, self.meter, 0).text  # as the generator read it
        return problem.question + "\n"

    def _text(self, problem: Problem, steps: list[str]) -> tuple[str, list[int]]:
        """The verifier's input and the character offsets whose token is read, one per step."""
        if self.format == "shepherd":
            text, ends = problem.question + " ", []
            for s in steps:
                text += s.strip() + " "
                ends.append(len(text))
                text += SHEPHERD_TAG + "\n"
            return text, ends
        if self.format == "qwen":
            body = "".join(s.strip() + QWEN_SEP for s in steps)
            msgs = [{"role": "system", "content": QWEN_SYSTEM}, {"role": "user", "content": problem.question},
                    {"role": "assistant", "content": body}]
            head = (self.tokenizer.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
                    if self.tokenizer.chat_template else problem.question + "\n")
            text, ends = head, []
            for s in steps:
                text += s.strip()
                ends.append(len(text))
                text += QWEN_SEP
            return text, ends
        return step_text(self._head(problem), steps)

    def score_texts(self, texts: list[str], ends: list[list[int]]) -> tuple[list[list[float]], int]:
        """Scores read at the given character offsets of each text (one forward pass over the
        batch), and the tokens it read; `deliberate train prm`'s evaluation calls it too."""
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, return_offsets_mapping=True,
                             add_special_tokens=self.format != "qwen")
        offsets = enc.pop("offset_mapping")
        with torch.no_grad():
            res = self.model(**enc)
            logits = (res.logits if hasattr(res, "logits") else res[0]).float()
        out = []
        for b, chars in enumerate(ends):
            if self.format == "orm":
                row = logits[b]
                p = torch.sigmoid(row[0]) if row.numel() == 1 else torch.softmax(row, -1)[1]
                out.append([float(p)] * len(chars))
                continue
            n = int(enc["attention_mask"][b].sum())  # padding is on the right
            # shepherd, qwen: the tag or separator that starts at the character; token: the step's last
            out.append([self._read(logits[b, pos]) for pos in token_positions(offsets[b].tolist()[:n], chars)])
        return out, int(enc["attention_mask"].sum())

    def _read(self, row) -> float:
        import torch

        if self.format == "shepherd":
            good, bad = (self.tokenizer.convert_tokens_to_ids(t) for t in (SHEPHERD_GOOD, SHEPHERD_BAD))
            return float(torch.softmax(row[[good, bad]], -1)[0])
        return float(torch.sigmoid(row[0]) if row.numel() == 1 else torch.softmax(row, -1)[1])

    def __call__(self, problem: Problem, paths: Sequence[Path]) -> list[list[float]]:
        if not paths:
            return []
        stepss = steps_of(paths, self.task.step_delimiter if self.task is not None else "\n")
        built = [self._text(problem, steps or [""]) for steps in stepss]
        t0 = time.perf_counter()
        scores, tokens = self.score_texts([t for t, _ in built], [e for _, e in built])
        if self.meter is not None and hasattr(self.meter, "bill_verifier"):
            self.meter.bill_verifier(problem.id, tokens, time.perf_counter() - t0)
        return scores
