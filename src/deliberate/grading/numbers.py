"""Reading numbers as the language of the text writes them.

`2,5` is two and a half in German, French, Spanish and Russian; `50.000` is fifty thousand in
German and Spanish; `1 200` is twelve hundred in French and Russian; `1,250` is 1250 in English;
Bengali and Telugu group lakhs (`1,00,000`). Everywhere: a comma followed by one, two, or four
or more digits, or after a lone `0`, is a decimal comma (`1,22`, `0,111`, `1000,99`), since no
thousands grouping writes it; a thin or no-break space, and LaTeX's `{,}`, `\\!`, `\\,` and `\\ `
inside a number, group digits. One form is ambiguous across languages: a lone comma followed by
exactly three digits (`2,125`). It is read as a thousands separator in every language, as
MGSM's own answer key (shared by its 11 languages) and math-verify read it; a model that means
2.125 in German and writes `2,125` is graded as 2125 (documented in docs/evaluation.md).

Hand-written because no library reads numerals inside free text by language: babel's
`parse_decimal` needs the whole string to be the number and knows no LaTeX markup.
"""

from __future__ import annotations

import re
from fractions import Fraction

THIN = "\u00a0\u2009\u202f\u2007"  # no-break, thin, narrow no-break and figure spaces: digit groups
# Languages by how they write 1234.5: "1,234.5" (the default), "1.234,5", "1 234,5", "1,234.5" with lakhs.
DOT_GROUPS = frozenset({"de", "es", "it", "pt", "nl", "id", "tr", "da", "el", "ro", "hr", "sl", "vi"})
SPACE_GROUPS = frozenset({"fr", "ru", "pl", "cs", "sk", "sv", "fi", "nb", "no", "uk", "hu", "bg", "et", "lt", "lv"})
LAKH_GROUPS = frozenset({"bn", "te", "hi", "mr", "ta", "gu", "kn", "ml", "pa"})
CURRENCY = "$€£¥₹₽₩₺¢"


def decimal_comma(lang: str | None) -> bool:
    return lang in DOT_GROUPS or lang in SPACE_GROUPS


def _numeral(lang: str | None, spaces: bool, latex: bool) -> str:
    """A regex for one unsigned numeral as `lang` writes it (alternatives longest first).
    `spaces`: may a plain space group digits (`1 200`)? Yes in languages that write it so,
    and in a span known to hold one answer; not in running English, where `3 100` is two numbers.
    `latex`: inside math, a bare comma separates items (`\\boxed{1,2}` is two answers; LaTeX
    writes a decimal comma `2{,}5`), so only the three-digit grouping `2,125` joins digits."""
    g = THIN + (" " if spaces or lang in SPACE_GROUPS else "")
    space_grouped = rf"\d{{1,3}}(?:[{g}]\d{{3}})+"
    if lang in DOT_GROUPS:
        ints = [r"\d{1,3}(?:\.\d{3})+(?![\d,.])", r"\d{1,3}(?:\.\d{3})+(?=,\d)", space_grouped]
    elif lang in SPACE_GROUPS:
        ints = [space_grouped, r"\d{1,3}(?:\.\d{3}){2,}(?![\d.])"]
    else:
        ints = [r"\d{1,3}(?:,\d{3})+(?!\d)", space_grouped, r"\d{1,3}(?:\.\d{3}){2,}(?![\d.])",
                r"\d{1,3}(?:\.\d{3})+(?=,\d)"]
        if lang in LAKH_GROUPS:
            ints.insert(0, r"\d{1,2}(?:,\d{2})+,\d{3}(?!\d)")
    both = r"\d{1,3}(?:,\d{3})+\.\d+(?![.,]\d)|\d{1,3}(?:\.\d{3})+,\d+(?![.,]\d)"  # unambiguous anywhere
    lone_thousands = r"\d{1,3},\d{3}(?![\d,.]\d)"  # the ambiguous `2,125`: thousands (module docstring)
    dec_comma = r"(?<!,)(?:0|\d+),\d+(?![,.]?\d)" if decimal_comma(lang) else \
        r"(?<!,)(?:0,\d+|\d+,(?:\d{1,2}|\d{4,}))(?![,.]?\d)"
    grouped = "|".join(ints)
    if latex:
        dec_comma = r"(?!)"
    return (rf"(?:{both}|(?:{grouped})(?:[.,]\d+(?![.,]\d))?|{lone_thousands}(?:\.\d+)?|{dec_comma}"
            rf"|\d+(?:\.\d+)?|\.\d+)")


def number_pattern(lang: str | None, spaces: bool = False, latex: bool = False) -> re.Pattern:
    """A signed numeral, optionally a fraction `a/b`, not glued to a word before it (`AZYUK2A`)."""
    n = _numeral(lang, spaces, latex)
    return re.compile(rf"(?<![A-Za-z\d.])[-+]?(?:{n})(?:/\d+(?![\d.,]\d))?")


_PATTERNS: dict[tuple[str | None, bool, bool], re.Pattern] = {}


def find_numbers(text: str, lang: str | None, spaces: bool = False, latex: bool = False) -> list[re.Match]:
    key = (lang if lang in DOT_GROUPS | SPACE_GROUPS | LAKH_GROUPS else None, spaces, latex)
    if key not in _PATTERNS:
        _PATTERNS[key] = number_pattern(*key)
    return list(_PATTERNS[key].finditer(text))


def canonical(numeral: str, lang: str | None) -> str:
    """One numeral matched by `number_pattern(lang)`, rewritten plainly: separators of groups
    dropped, a `.` for the decimal separator, as written otherwise (`1.234,50` -> `1234.50`)."""
    s = re.sub(f"[{THIN} ]", "", numeral)
    sign = "-" if s.startswith("-") else ""
    s = s.lstrip("+-")
    if "/" in s:
        a, _, b = s.partition("/")
        return f"{sign}{canonical(a, lang)}/{canonical(b, lang)}"
    if "," in s and "." in s:  # both: the later one is the decimal separator
        dec = "," if s.rindex(",") > s.rindex(".") else "."
    elif s.count(",") > 1 or s.count(".") > 1:
        dec = ""  # only grouping
    elif "," in s:
        head, _, tail = s.partition(",")
        lakh = re.fullmatch(r"\d{1,2}(?:,\d{2})+,\d{3}", s)
        dec = "" if (len(tail) == 3 and head != "0" and len(head) <= 3) or lakh else ","
    elif "." in s:
        head, _, tail = s.partition(".")
        dec = "" if lang in DOT_GROUPS and len(tail) == 3 and head not in ("", "0") and len(head) <= 3 else "."
    else:
        dec = "."
    s = s.translate({ord(c): None for c in {",": ".", ".": ",", "": ".,"}[dec]}).replace(",", ".")
    return sign + ("0" + s if s.startswith(".") else s)


def to_fraction(numeral: str, lang: str | None) -> Fraction | None:
    """The value of one numeral matched by `number_pattern(lang)`."""
    try:
        return Fraction(canonical(numeral, lang))
    except (ValueError, ZeroDivisionError):
        return None


def plain_latex(s: str) -> str:
    """LaTeX number markup to plain text: `14{,}916` -> `14,916`, `16,\\!386` -> `16,386`,
    `1\\,000` -> `1 000` (a thin space), `\\$5` -> `$5`, `10\\%` -> `10%`."""
    s = s.replace("{,}", ",").replace("{.}", ".").replace("\\!", "")
    s = re.sub(r"(?<=\d)(?:\\[,;: ]|~)(?=\d)", "\u2009", s)
    return s.replace("\\$", "$").replace("\\%", "%").replace("\\€", "€")


_UNIT = r"(?:\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|[^\W\d_]{2,}\.?|[^\W\d_]*[²³°]|°)"
_WRAP = re.compile(r"^\s*(?:\$\$|\$|\\\(|\\\[)(.*?)(?:\$\$|\$|\\\)|\\\])\s*$", re.DOTALL)


def read_numeral(s: str, lang: str | None = None, latex: bool = False) -> str | None:
    """`s` as one number, canonically written (`canonical`), or None when it is anything else
    (`2\\sqrt{3}`, `3^2`, `(7, 6)`, `2 x`). Currency and unit words around the number are
    allowed (`$1,200.50`, `1 200 €`, `18 apples`, `10\\%`); a single letter is a variable, not a
    unit, so `2 x` is not the number 2."""
    s = plain_latex(s).strip()
    if m := _WRAP.match(s):
        s = m.group(1).strip()
    s = s.rstrip(".。")
    s = re.sub(rf"^[{CURRENCY}]\s*|^\\text\{{[{CURRENCY}]\}}\s*", "", s)
    s = re.sub(rf"^([-+])\s*[{CURRENCY}]\s*", r"\1", s)
    unit = rf"(?:\s*(?:%|[{CURRENCY}]|{_UNIT}))*"
    for m in find_numbers(s, lang, spaces=True, latex=latex)[:1]:
        if m.start() == 0 and re.fullmatch(unit, s[m.end():]):
            return canonical(m.group(0), lang)
    return None


def read_number(s: str, lang: str | None = None, latex: bool = False) -> Fraction | None:
    """The value of `read_numeral(s, lang, latex)`."""
    numeral = read_numeral(s, lang, latex)
    try:
        return Fraction(numeral) if numeral is not None else None
    except (ValueError, ZeroDivisionError):
        return None
