"""A calculator that re-checks the arithmetic a solution writes down: the `tool` feedback.

Every `expression = number` in a step (digits, + - * / × ÷ and parentheses on the left) is
evaluated exactly with fractions and compared with the number written after `=`; the first
that differs is the error reported. Hand-written because it is a dozen lines over `ast` (exact
fractions, as Game of 24's checker), and a general CAS would accept far more than arithmetic.
It finds slips of calculation only: a wrong plan with right sums passes.

>>> first_wrong(["3 + 4 = 7\\n", "7 * 2 = 15\\n", "The answer is 15."])
(1, '7 * 2', '15', Fraction(14, 1))
>>> first_wrong(["She pays 1,200 / 4 = $300.", "So 300 - 25 = 275."]) is None
True
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from fractions import Fraction

__all__ = ["first_wrong", "feedback_line"]

_N = r"\d[\d,]*(?:\.\d+)?"
# an expression with an operator, `=`, then the number claimed (a $ may stand before it)
_CLAIM = re.compile(rf"((?:\(\s*)*{_N}(?:\s*\)*\s*[-+*/×÷x]\s*(?:\(\s*)*{_N})+(?:\s*\))*)\s*=\s*\$?\s*(-?{_N})")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


def _exact(node: ast.AST) -> Fraction:
    """Exact value of an arithmetic syntax tree (decimal literals read as written)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(repr(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_exact(node.left), _exact(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_exact(node.operand)
    raise ValueError("not arithmetic")


def _value(expr: str) -> Fraction | None:
    """The exact value of an arithmetic expression, or None when it is not one."""
    text = re.sub(_N, lambda m: m.group().replace(",", ""), expr.replace("×", "*").replace("÷", "/").replace("x", "*"))
    try:
        return _exact(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def first_wrong(steps: Sequence[str]) -> tuple[int, str, str, Fraction] | None:
    """(step index, expression, number written, true value) of the first wrong calculation."""
    for k, step in enumerate(steps):
        for m in _CLAIM.finditer(step):
            expr, claimed = m.group(1).strip(), m.group(2)
            value = _value(expr)
            if value is not None and value != Fraction(claimed.replace(",", "")):
                return k, expr, claimed, value
    return None


def feedback_line(steps: Sequence[str]) -> str | None:
    """The calculator's feedback on a solution, or None when every calculation checks."""
    found = first_wrong(steps)
    if found is None:
        return None
    k, expr, claimed, value = found
    shown = str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
    return f"Step {k + 1} is wrong: {expr} is {shown}, not {claimed}."
