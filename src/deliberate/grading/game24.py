"""Game of 24: Tree of Thoughts' rule, checked exactly.

Hand-written because it is a rule, not an equivalence: every puzzle number used exactly once,
evaluated exactly with fractions (`8 / (3 - 8 / 3)` is 24, not 23.999...).
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

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


def why_not_24(puzzle: str, output: str) -> str | None:
    """The checker's reason an output breaks the rule, as feedback; None when it makes 24."""
    if check_24(puzzle, output):
        return None
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    if not lines:
        return "There is no expression."
    expr = lines[-1].lower().replace("answer:", "").split("=")[0].replace("×", "*").replace("÷", "/").replace("x", "*")
    used = sorted(int(n) for n in re.findall(r"\d+", expr))
    if used != sorted(int(n) for n in puzzle.split()):
        return f"The expression uses {' '.join(map(str, used)) or 'no numbers'}; it must use {puzzle} once each."
    try:
        value = _eval(ast.parse(expr.strip(), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError):
        return "The last line is not an arithmetic expression of the numbers."
    return f"The expression is {float(value):g}, not 24."
