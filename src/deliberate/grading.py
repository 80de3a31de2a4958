"""Grading: find the final answer in a chain of thought, decide equivalence, check Game of 24.

`extract_answer` tries, in order: the last `\\boxed{}`; the answer after the last localized
answer phrase (all 11 MGSM languages) or GSM8K's `#### N`, whichever comes later; else the
last number in the text.
Think-format output is read after `</think>`; thinking that never closes has no answer.
`is_equivalent` compares plain numbers exactly as rationals (so `18.0 == 18` but
`0.333 != 1/3`), and everything else with math-verify (fractions, LaTeX, sets, intervals,
equations). `compare` gives the verdict, `timeout` included: symbolic comparison runs in a
helper process with a hard deadline, because sympy can run for ever on some inputs
(`9^{9^{9^{9}}}`) and math-verify's own timeouts use signals, which only the main thread of a
process may set; a grader called from threads or worker processes must still be bounded.
The Game of 24 check is hand-written because it is a rule, not an equivalence: every puzzle
number used exactly once, evaluated exactly with fractions.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
# Localized answer phrases of MGSM's exemplars (and common English variants).
ANSWER_PHRASES = {
    "en": r"answer is|answer\s*:", "zh": r"答案是|答案为|答案：|答案:", "ja": r"答えは",
    "de": r"Antwort ist", "fr": r"réponse est", "es": r"respuesta es", "ru": r"Ответ\s*[—:–-]",
    "th": r"คำตอบคือ", "sw": r"Jibu ni", "bn": r"উত্তর হল", "te": r"సమాధానం",
}
_PHRASE = re.compile("|".join(f"(?:{p})" for p in ANSWER_PHRASES.values()), re.IGNORECASE)
_LEAD = re.compile(r"^[\s:：*\"'`$€£¥₹\\(]*(?:is\s+)?(?:about\s+)?[$€£¥₹]?\s*(" + NUM + ")")
_NUMBER = re.compile(r"(?<![\d.])" + NUM)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*{")
_CALC = re.compile(r"<<[^<>\n]*>>")  # GSM8K's calculator annotations
_HASHES = re.compile(r"####\s*\$?\s*(" + NUM + ")")
_DIGITS = {c: str(unicodedata.decimal(chr(c))) for c in range(0x110000)
           if unicodedata.category(chr(c)) == "Nd" and not chr(c).isascii()}


@dataclass(frozen=True)
class Extraction:
    """What was graded: the answer, the rule that found it, and its span in the completion."""

    answer: str | None
    rule: str  # "phrase" | "####" | "boxed" | "last-number" | "none" | "unclosed-think"
    span: tuple[int, int] | None = None


def _clean_number(s: str) -> str:
    s = s.replace(",", "").strip().rstrip(".")
    return s[1:] if s.startswith("+") else s


def _boxed(text: str) -> tuple[str, int, int] | None:
    """Content of the last \\boxed{...}, braces matched."""
    last = None
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            last = (text[m.end():i - 1], m.start(), i)
    return last


def _after_phrase(text: str, start: int) -> tuple[str, int, int] | None:
    """The answer in the sentence after an answer phrase: a \\boxed{} in it, else the number after
    its last '=' ("the answer is 3 * 5 = 15"), else its leading (or first) number."""
    tail = text[start:].split("\n")[0]
    sentence = re.split(r"\.(?=\s|$)|。", tail)[0]
    if b := _boxed(sentence):
        return b[0].strip(), start + b[1], start + b[2]
    if "=" in sentence and (n := _LEAD.match(sentence[sentence.rindex("=") + 1:])):
        at = start + sentence.rindex("=") + 1
        return _clean_number(n.group(1)), at + n.start(1), at + n.end(1)
    if n := _LEAD.match(tail) or _NUMBER.search(tail[:60]):
        g = 1 if n.re is _LEAD else 0
        return _clean_number(n.group(g)), start + n.start(g), start + n.end(g)
    return None


def find_answer(completion: str) -> Extraction:
    """Find the final answer and say which rule found it (for auditing): the last \\boxed{}; else
    the later of the last answer phrase and GSM8K's `#### N`; else the last number. GSM8K's
    `<<calculator>>` notes are skipped."""
    text, offset = completion.translate(_DIGITS).replace("−", "-"), 0
    if "</think>" in text:
        offset = text.rindex("</think>") + len("</think>")
        text = text[offset:]
    elif "<think>" in text:
        return Extraction(None, "unclosed-think")
    text = _CALC.sub(lambda m: " " * len(m.group()), text)  # blanked, not removed: spans stay true
    found: list[tuple[int, Extraction]] = []
    for m in reversed(list(_PHRASE.finditer(text))):
        if hit := _after_phrase(text, m.end()):
            found.append((m.start(), Extraction(hit[0], "phrase", (offset + hit[1], offset + hit[2]))))
            break
    if hashes := list(_HASHES.finditer(text)):
        m = hashes[-1]
        span = (offset + m.start(1), offset + m.end(1))
        found.append((m.start(), Extraction(_clean_number(m.group(1)), "####", span)))
    if b := _boxed(text):  # a boxed answer is the most explicit marker there is (MATH's convention)
        return Extraction(b[0].strip(), "boxed", (offset + b[1], offset + b[2]))
    if found:
        return max(found, key=lambda x: x[0])[1]
    if nums := list(_NUMBER.finditer(text)):
        m = nums[-1]
        return Extraction(_clean_number(m.group(0)), "last-number", (offset + m.start(), offset + m.end()))
    return Extraction(None, "none")


def extract_answer(completion: str) -> str | None:
    """The final answer of a chain-of-thought completion, or None if it has none.

    >>> extract_answer("3 + 4 = 7\\nThe answer is 7.")
    '7'
    >>> extract_answer("Elle a donc 1 200 € ... La réponse est 1,200.")
    '1200'
    """
    return find_answer(completion).answer


_PLAIN = re.compile(r"[-+]?[$€£¥₹]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|[-+]?\d+/\d+|[-+]?\.\d+")


def _as_number(s: str) -> Fraction | None:
    s = s.strip().strip("$").replace("\\%", "%").replace("\\$", "$").strip()
    if not _PLAIN.fullmatch(s):
        return None
    s = s.replace(",", "").replace("%", "")
    s = re.sub(r"[$€£¥₹]", "", s)
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


SYMBOLIC_TIMEOUT_S = 5.0  # the most one symbolic comparison may take before its verdict is `timeout`


def _mv_parse(s: str):
    from math_verify import parse

    wrapped = s if ("$" in s or "\\boxed" in s) else f"${s}$"
    return parse(wrapped, parsing_timeout=None)


def _symbolic_same(gold: str, predicted: str) -> bool:
    """math-verify's equivalence, else a whitespace- and markup-blind string match. Unbounded in
    time on its own: only ever called inside the helper process."""
    from math_verify import verify

    try:
        gp, pp = _mv_parse(gold), _mv_parse(predicted)
        if gp and pp:
            return bool(verify(gp, pp, timeout_seconds=None))
    except Exception:  # math-verify raises assorted errors on malformed LaTeX: not equivalent
        return False
    norm = lambda x: re.sub(r"\s|\\text|[{}$]", "", x).lower()  # noqa: E731
    return norm(gold) == norm(predicted)


def _serve() -> None:
    """The helper process: read [gold, predicted] JSON lines on stdin, answer true/false lines."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns that we time it out ourselves
    import math_verify  # noqa: F401  (imported before saying ready, so the deadline is the comparison's)

    print("ready", flush=True)
    for line in sys.stdin:
        gold, predicted = json.loads(line)
        print(json.dumps(_symbolic_same(gold, predicted)), flush=True)


class _SymbolicWorker:
    """One helper process per grading process, shared by its threads (a lock serializes them);
    a comparison past its deadline kills the helper, and the next one starts a fresh helper.
    A plain subprocess, not multiprocessing: spawn would re-import the user's __main__ script."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        here = str(Path(__file__).resolve().parent.parent)  # so the helper imports this same deliberate
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self._proc = subprocess.Popen([sys.executable, "-c", "from deliberate.grading import _serve; _serve()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, encoding="utf-8", env=env)
        if self._read(120) != "ready":
            self._stop()
            raise RuntimeError("the symbolic grading helper did not start")

    def _read(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        return self._proc.stdout.readline().strip() if ready else None

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None

    def same(self, gold: str, predicted: str, timeout: float) -> bool | None:
        """True/False, or None when the comparison ran past `timeout` seconds."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(json.dumps([gold, predicted]) + "\n")
                self._proc.stdin.flush()
                answer = self._read(timeout)
                if answer in ("true", "false"):
                    return answer == "true"
            except (OSError, ValueError):
                pass
            self._stop()
            return None


_WORKER = _SymbolicWorker()


def compare(gold: str, predicted: str | None, timeout: float | None = None) -> str:
    """The verdict on an extracted answer: "correct", "wrong", "no-answer" or "timeout"."""
    if predicted is None or not str(predicted).strip():
        return "no-answer"
    if not str(gold).strip():
        return "wrong"
    g, p = _as_number(gold), _as_number(predicted)
    if g is not None and p is not None:
        return "correct" if g == p else "wrong"
    same = _WORKER.same(str(gold), str(predicted), timeout or SYMBOLIC_TIMEOUT_S)
    return "timeout" if same is None else "correct" if same else "wrong"


def is_equivalent(gold: str, predicted: str | None) -> bool:
    """True when `predicted` is mathematically the same answer as `gold` (a timeout is not).

    >>> is_equivalent("1080", "1,080.00"), is_equivalent("\\\\frac{1}{2}", "0.5")
    (True, True)
    """
    return compare(gold, predicted) == "correct"


# -- Game of 24 ------------------------------------------------------------------------------
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    raise ValueError("only integers, + - * / and parentheses are allowed")


def check_24(puzzle: str, output: str) -> bool:
    """ToT's rule: the last line's expression (before any '=') uses each number once and is 24."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    if not lines:
        return False
    expr = lines[-1].lower().replace("answer:", "").split("=")[0]
    expr = expr.replace("×", "*").replace("÷", "/").replace("x", "*")
    if sorted(int(n) for n in re.findall(r"\d+", expr)) != sorted(int(n) for n in puzzle.split()):
        return False
    try:
        return _eval(ast.parse(expr.strip(), mode="eval")) == 24
    except (SyntaxError, ValueError, ZeroDivisionError):
        return False
