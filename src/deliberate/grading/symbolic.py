"""Symbolic comparison with math-verify, in a helper process with a hard deadline.

sympy can run for ever on some inputs (`9^{9^{9^{9}}}`), and math-verify's own timeouts use
signals, which only the main thread of a process may set; a grader called from threads or
worker processes must still be bounded. So every call into math-verify happens in one helper
process per grading process, shared by its threads: a comparison past its deadline kills the
helper, its verdict is `None` (a `timeout`), and the next comparison starts a fresh helper. A
plain subprocess, not multiprocessing: spawn would re-import the user's `__main__` script.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
from pathlib import Path

SYMBOLIC_TIMEOUT_S = 5.0  # the most one symbolic comparison may take before its verdict is `timeout`


def _mv_parse(s: str):
    from math_verify import parse

    wrapped = s if ("$" in s or "\\boxed" in s or "\\(" in s or "\\[" in s) else f"${s}$"
    return parse(wrapped, parsing_timeout=None)


def _is_collection(parsed: list) -> bool:
    from sympy import FiniteSet

    return bool(parsed) and isinstance(parsed[0], FiniteSet) and len(parsed[0]) > 1


def same(gold: str, predicted: str, boxes: list[str]) -> bool:
    """math-verify's equivalence, else a whitespace- and markup-blind string match; several
    boxed answers count as one set when the gold is a set of several (and the last box alone
    does not already match). Unbounded in time on its own: only ever run in the helper."""
    from math_verify import verify

    try:
        gp, pp = _mv_parse(gold), _mv_parse(predicted)
        if gp and pp and verify(gp, pp, timeout_seconds=None):
            return True
        if len(boxes) > 1 and _is_collection(gp):
            return bool(verify(gp, _mv_parse("$" + ", ".join(boxes) + "$"), timeout_seconds=None))
        if gp and pp:
            return False
    except Exception:  # math-verify raises assorted errors on malformed LaTeX: not equivalent
        return False
    norm = lambda x: re.sub(r"\s|\\text|[{}$]", "", x).lower()  # noqa: E731
    return norm(gold) == norm(predicted)


def math_verify_own(gold: str, completion: str) -> list:
    """math-verify alone, default settings: [its verdict, the answer string it extracted]."""
    from math_verify import parse, verify

    try:
        gp, pp = parse(gold, parsing_timeout=None), parse(completion, parsing_timeout=None)
        ok = bool(gp and pp and verify(gp, pp, timeout_seconds=None))
        return [ok, pp[-1] if pp and isinstance(pp[-1], str) else None]
    except Exception:
        return [False, None]


_OPS = {"same": same, "math-verify": math_verify_own}


def serve() -> None:
    """The helper process: read [op, *args] JSON lines on stdin, answer one JSON line each."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns that we time it out ourselves
    import math_verify  # noqa: F401  (imported before saying ready, so the deadline is the comparison's)

    print("ready", flush=True)
    for line in sys.stdin:
        op, *args = json.loads(line)
        print(json.dumps(_OPS[op](*args)), flush=True)


class SymbolicWorker:
    """One helper process per grading process, shared by its threads (a lock serializes them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        here = str(Path(__file__).resolve().parents[2])  # so the helper imports this same deliberate
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self._proc = subprocess.Popen([sys.executable, "-c", "from deliberate.grading.symbolic import serve; serve()"],
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

    def call(self, op: str, *args, timeout: float):
        """The helper's answer to one request, or None when it ran past `timeout` seconds."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(json.dumps([op, *args]) + "\n")
                self._proc.stdin.flush()
                answer = self._read(timeout)
                if answer:
                    return json.loads(answer)
            except (OSError, ValueError):
                pass
            self._stop()
            return None


WORKER = SymbolicWorker()
