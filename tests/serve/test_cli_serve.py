"""`deliberate serve` as a user starts it: a subprocess on loopback, and its one-line refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from deliberate.cli import app

runner = CliRunner()


def test_serve_refuses_bad_settings_in_one_line(monkeypatch):
    monkeypatch.delenv("DELIBERATE_API_KEY", raising=False)
    for args, msg in [(["--host", "0.0.0.0"], "set --api-key"), (["--port", "70000"], "--port must be in"),
                      (["--max-n", "0"], "--max-n must be >= 1")]:
        r = runner.invoke(app, ["serve", *args])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


def test_serve_runs_as_a_command_and_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "deliberate", "serve", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.3)
        r = httpx.post(f"{base}/v1/chat/completions", timeout=60, json={
            "model": "lab", "temperature": 0, "messages": [{"role": "user", "content": "Tom has 3 apples and buys 4 "
                                                            "more. How many apples does Tom have?"}]}).json()
        assert "The answer is" in r["choices"][0]["message"]["content"] and r["usage"]["completion_tokens"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
