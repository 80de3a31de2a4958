"""Finding the final answer in a chain of thought, whole.

In order: the last `\\boxed{}` (every box is kept, so several boxes can be compared as a set);
else the later of the last answer phrase (any of the 11 MGSM languages, `Final Answer:`) and
GSM8K's `#### N`; else, with no marker at all, the whole completion when it is one bare
expression, else the last math span (`$…$`, `\\(…\\)`, `\\[…\\]`) or the last number, whichever
comes later. After a phrase the answer is the whole expression: a math span, or the sentence's
text from its first mathematical token to the first prose word after it, so that in
`the answer is $2\\sqrt{3}$` the answer is `2\\sqrt{3}`, never the `2` in it. A plain number
(read in the text's language, `deliberate.grading.numbers`) is returned as a canonical numeral
(`1,200.50` -> `1200.50`); anything else is returned as written, for math-verify to parse.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from deliberate.grading.numbers import find_numbers, plain_latex, read_numeral

# Localized answer phrases: MGSM's exemplars' closing sentences, plus common variants.
# "Step-by-Step Answer:" is the exemplars' own header (a model may echo it), not an answer phrase.
# "final answer is" after the last box outranks it (Minerva's closing "Final Answer: The final
# answer is $X$. I hope it is correct.", math-verify's first rule); other phrases after a box do
# not (a check written after the boxed answer, "We may check our answer: ...").
ANSWER_PHRASES = {
    "final": r"final\s+answer\s*(?:is|[:：])|最终答案[是为：:]",
    "en": r"answer\s+(?:is|would\s+be|will\s+be)|(?<!step-by-step )(?<!step by step )answer\s*[:：]",
    "zh": r"答案是|答案为|答案：|答案:", "ja": r"答えは",
    "de": r"Antwort\s+(?:ist|lautet)|Antwort\s*:", "fr": r"réponse(?:\s+finale)?\s+est|réponse\s*:",
    "es": r"respuesta(?:\s+final)?\s+es|respuesta\s*:", "ru": r"Ответ\s*[—:–-]|ответ\s+(?:равен|будет)",
    "th": r"คำตอบคือ", "sw": r"Jibu\s+ni", "bn": r"উত্তর\s+হল", "te": r"సమాధానం",
}
_PHRASE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in ANSWER_PHRASES.items()), re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*{")
_CALC = re.compile(r"<<[^<>\n]*>>")  # GSM8K's calculator annotations
_DIGITS = {c: str(unicodedata.decimal(chr(c))) for c in range(0x110000)
           if unicodedata.category(chr(c)) == "Nd" and not chr(c).isascii()}
_OPENERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_MATH_WORDS = frozenset("sin cos tan cot sec csc log ln exp sqrt pi mod max min gcd lcm inf infty arcsin arccos "
                        "arctan sinh cosh tanh det or".split())
_SYMBOL = re.compile(r"\s*[A-Za-z]{1,12}(?:_\{?\w+\}?)?(?:\([A-Za-z]\))?\s*")  # `n`, `x_1`, `f(x)`
_VARIABLE = re.compile(r"\s*[A-Za-z](?:_\{?\w+\}?)?\s*")
_WORD = re.compile(r"\\[A-Za-z]+|[^\W\d_]+")


@dataclass(frozen=True)
class Extraction:
    """What was graded: the answer, the rule that found it, its span in the completion, the
    language its numbers were read in, and every boxed answer when there were several."""

    answer: str | None
    rule: str  # boxed | phrase | phrase-math | #### | whole | last-math | last-number | none | unclosed-think
    span: tuple[int, int] | None = None
    lang: str | None = None
    boxes: tuple[str, ...] = ()
    latex: bool = False  # read from math (a box, a math span), where a bare comma separates items


def _boxes(text: str) -> list[tuple[str, int, int]]:
    """Every complete \\boxed{...} (braces matched), as (content, start, end) of the content."""
    out = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append((text[m.end():i - 1], m.end(), i - 1))
    return [b for b in out if not any(o[1] <= b[1] and b[2] <= o[2] and o != b for o in out)]  # outermost only


def _math_span(text: str, i: int) -> tuple[int, int, int] | None:
    """If a math span opens at i: (content start, content end, span end). Inline `$…$` and
    `\\(…\\)` stay on one line; `\\$` is a dollar sign, not a delimiter."""
    for op, cl in _OPENERS:
        if text.startswith(op, i) and not (op == "$" and text.startswith("$$", i)):
            j = i + len(op)
            while (k := text.find(cl, j)) != -1:
                if cl == "$" and text[k - 1] == "\\":
                    j = k + 1
                    continue
                inner = text[i + len(op):k]
                if op in ("$", "\\(") and "\n" in inner.strip():
                    return None
                return (i + len(op), k, k + len(cl)) if inner.strip() else None
            return None
    return None


def _math_spans(text: str) -> list[tuple[int, int, int, int]]:
    """Every math span: (opener start, content start, content end, span end)."""
    spans, i = [], 0
    while i < len(text):
        if text[i] in "$\\" and (s := _math_span(text, i)):
            spans.append((i, *s))
            i = s[2]
        else:
            i += 1
    return spans


def _is_prose(word: str) -> bool:
    """A word of the sentence around an answer: `apples`, `Liter`, `个`; not `x`, `\\frac`, `sin`."""
    if word.startswith("\\") or word.lower() in _MATH_WORDS:
        return False
    return len(word) >= 2 or not word.isascii()


def _core(text: str, start: int, end: int) -> tuple[int, int, str] | None:
    """The mathematical part of text[start:end]: a math span where one comes first, else from
    its first number, bracket or non-prose word to the first prose word (units, `and`,
    `I hope ...`) or math span after it, trailing punctuation dropped."""
    seg = text[start:end]
    spans = _math_spans(seg)
    inside = lambda i: any(o <= i < e for o, _, _, e in spans)  # noqa: E731  (delimiters included)
    words = [(m.start(), _is_prose(m.group())) for m in _WORD.finditer(seg) if not inside(m.start())]
    marks = [i for i, c in enumerate(seg) if (c.isdigit() or c in "([{-+.\\") and not inside(i)]
    marks += [i for i, prose in words if not prose]
    opens = [o for o, _, _, _ in spans]
    first = min(marks + opens, default=None)
    if first is None:
        return None
    for o, a, b, _ in spans:
        if o == first:
            return start + a, start + b, "phrase-math"
    cut = min([i for i, prose in words if prose and i > first] + [o for o in opens if o > first] + [len(seg)])
    lo, hi = start + first, start + cut
    while hi > lo and (text[hi - 1].isspace() or _punct(text[hi - 1])) and not _balanced_close(text[lo:hi]):
        hi -= 1
    while lo < hi and text[lo] in " *\"'`":
        lo += 1
    return (lo, hi, "phrase") if hi > lo else None


def _punct(c: str) -> bool:
    return unicodedata.category(c)[0] in "PS" and c not in "%$€£¥₹°²³'"


def _balanced_close(s: str) -> bool:
    """Keep a closing bracket that closes something in s (`(7, 6)`, `[0, 1)`); `!` after a digit."""
    last = s[-1]
    if last == "!":
        return len(s) > 1 and s[-2].isdigit()
    pairs = {")": "([", "]": "[(", "}": "{"}
    return last in pairs and any(c in s[:-1] for c in pairs[last])


def _sentence_end(text: str, i: int) -> int:
    # `5!` is a factorial, not an exclamation: a false negative is the lesser error here
    m = re.compile(r"\n|[。।॥]|(?<!\d)\.(?!\d)|\.(?=\s|$)|(?<!\d)![\s]|\?(?=\s|$)|;\s").search(text, i)
    return m.start() if m else len(text)


def _after(text: str, i: int) -> tuple[int, int, str] | None:
    """The answer after a phrase ending at i: (start, end, rule). A bare symbol first (`The
    largest $n$ is 34.`) gives way to what the sentence says it is."""
    j = re.compile(r"[\s:：*\"'`]*").match(text, i).end()
    if span := _math_span(text, j):
        return span[0], span[1], "phrase-math"
    end, first = _sentence_end(text, j), None
    while j < end and (hit := _core(text, j, end)):
        first = first or hit
        if not _SYMBOL.fullmatch(text[hit[0]:hit[1]]):
            return hit
        j = max(hit[1], j + 1)
    return first


def _answer_text(raw: str, lang: str | None, latex: bool) -> str:
    """A span read as a canonical numeral when it is one number (after an `=` chain, its last
    member: `3 * 5 = 15`, `x = 1/3 \\approx 0.33`), else as written."""
    s = plain_latex(raw).strip()
    chain = re.split(r"(?<![<>!=\\])=(?!=)", re.split(r"\\approx|≈", s)[0])
    computed = all(_VARIABLE.fullmatch(m) or not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", m))
                   for m in chain[:-1])  # `x = 3 * 5 = 15`, not the equation `5x - 7y + 4 = 0`
    for part in ((chain[-1], s) if computed else (s,)):
        if (numeral := read_numeral(part, lang, latex)) is not None:
            return numeral
    return raw.strip()


def find_answer(completion: str, lang: str | None = None) -> Extraction:
    """Find the final answer and say which rule found it (module docstring). `lang` is the
    language numbers are read in; without it, the language of the answer phrase found decides."""
    text, offset = completion.translate(_DIGITS).replace("−", "-"), 0
    if "</think>" in text:
        offset = text.rindex("</think>") + len("</think>")
        text = text[offset:]
    elif "<think>" in text:
        return Extraction(None, "unclosed-think", lang=lang)
    text = _CALC.sub(lambda m: " " * len(m.group()), text)  # blanked, not removed: spans stay true

    def found(a: int, b: int, rule: str, lg: str | None, boxes: tuple[str, ...] = ()) -> Extraction:
        latex = rule in ("boxed", "phrase-math", "last-math") or (rule == "whole" and a > 0 and text[a - 1] in "$[(")
        return Extraction(_answer_text(text[a:b], lg, latex), rule, (offset + a, offset + b), lg, boxes, latex)

    boxes = _boxes(text)
    marks: list[tuple[int, int, int, str, str | None]] = []
    for m in reversed(list(_PHRASE.finditer(text))):
        if hit := _after(text, m.end()):
            marks.append((m.start(), *hit, lang or ("en" if m.lastgroup == "final" else m.lastgroup)))
            if m.lastgroup == "final" and boxes and m.start() > boxes[-1][2]:
                return found(*marks[-1][1:4], marks[-1][4])
            break
    if boxes:  # a boxed answer is the most explicit marker there is (MATH's convention)
        content, a, b = boxes[-1]
        return found(a, b, "boxed", lang, tuple(c.strip() for c, _, _ in boxes) if len(boxes) > 1 else ())
    if hashes := list(_HASHES.finditer(text)):
        m = hashes[-1]
        if core := _core(text, m.end(), _sentence_end(text, m.end())):
            marks.append((m.start(), core[0], core[1], "####", lang))
    if marks:
        _, a, b, rule, lg = max(marks, key=lambda x: x[0])
        return found(a, b, rule, lg)
    return _fallback(text, lang, found)


def _fallback(text: str, lang: str | None, found) -> Extraction:
    """No box, no phrase: the whole completion if it is one expression; else the last math span
    or the last number, whichever ends later."""
    stripped = text.strip()
    if stripped and not any(_is_prose(w.group()) for w in _WORD.finditer(_without_math(stripped))):
        a = text.index(stripped)
        spans = _math_spans(stripped)
        if len(spans) == 1 and spans[0][0] == 0 and spans[0][3] == len(stripped):
            return found(a + spans[0][1], a + spans[0][2], "whole", lang)
        if "\n" not in stripped:
            return found(a, a + len(stripped), "whole", lang)
    spans = _math_spans(text)
    nums = find_numbers(text, lang)
    last_span = spans[-1] if spans else None
    last_num = nums[-1] if nums else None
    if last_span and (last_num is None or last_num.end() <= last_span[3]):
        return found(last_span[1], last_span[2], "last-math", lang)
    if last_num:
        return found(last_num.start(), last_num.end(), "last-number", lang)
    return Extraction(None, "none", lang=lang)


def _without_math(s: str) -> str:
    out, last = [], 0
    for o, _, _, e in _math_spans(s):
        out.append(s[last:o])
        last = e
    out.append(s[last:])
    return "".join(out)
