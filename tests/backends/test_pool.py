"""`openai:URL1,URL2#MODEL`: a pool of two `deliberate serve` processes over the lab model on
loopback. Requests spread over both; one server SIGKILLed in the middle of a batch costs no
request and changes no answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from deliberate.backends import load_backend  # noqa: E402
from deliberate.backends.openai_api import parse_spec  # noqa: E402
from deliberate.params import SamplingParams  # noqa: E402
from deliberate.prompting import build_prompt  # noqa: E402
from deliberate.tasks import load_task  # noqa: E402


def _serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "deliberate", "serve", "--model", "lab", "--port", str(port),
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=1)
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"deliberate serve did not come up on {base}") from None
            time.sleep(0.2)


@pytest.fixture
def two_servers():
    procs = [_serve(), _serve()]
    yield procs
    for proc, _ in procs:
        proc.kill()
        proc.wait()


def test_a_spec_with_several_urls_is_a_pool():
    urls, model, style = parse_spec("openai:http://a:8000/v1, http://b:8000/v1/#lab?format=lab")
    assert urls == ["http://a:8000/v1", "http://b:8000/v1"] and model == "lab" and style == "lab"


@pytest.mark.slow  # reason: two server processes, each with the lab model
def test_requests_spread_over_the_pool_and_survive_a_killed_server(two_servers, lab):
    (first, a), (_, b) = two_servers
    pool = load_backend(f"openai:{a}/v1,{b}/v1#lab")
    task = load_task("lab-en")
    prompts = [build_prompt(task, p, lab).text for p in task.problems[:48]]
    params = SamplingParams(temperature=0, max_tokens=60)
    expected = [g.completions[0].text for g in lab.generate(prompts, params)]
    try:
        assert [g.completions[0].text for g in pool.generate(prompts[:16], params)] == expected[:16]
        assert all(s.served >= 4 for s in pool.pool.servers)  # both took a share of the load

        got: list = []
        worker = threading.Thread(target=lambda: got.extend(pool.generate(prompts, params)))
        worker.start()
        time.sleep(0.3)  # requests are in flight on both servers
        first.send_signal(signal.SIGKILL)
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert [g.completions[0].text for g in got] == expected  # every request answered, by the survivor
        dead, alive = pool.pool.servers
        assert dead.failures >= 1 and dead.down_until > 0 and alive.failures == 0
    finally:
        pool.close()
