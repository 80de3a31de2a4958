"""The `openai:` backend against `deliberate serve` on loopback (pass-through over the lab model):
what the probe declares, the same outputs as the local backend, n expanded where a server
ignores it, retries, and one-line errors."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from deliberate.backends import load_backend  # noqa: E402
from deliberate.backends.openai_api import OpenAIBackend, parse_spec  # noqa: E402
from deliberate.errors import BackendError, BadInput  # noqa: E402
from deliberate.params import SamplingParams  # noqa: E402
from deliberate.search import get_strategy  # noqa: E402
from deliberate.serve import ServeConfig, background, create_app  # noqa: E402
from deliberate.tasks import load_task  # noqa: E402


@pytest.fixture(scope="module")
def served(lab):
    with background(create_app(lab, ServeConfig(model="lab"))) as base:
        yield base


@pytest.fixture(scope="module")
def remote(served):
    return load_backend(f"openai:{served}/v1#lab")


def test_the_probe_declares_what_the_server_returns(remote, lab):
    assert remote.max_logprobs == 20 and remote.native_n and remote.seeded and remote.returns_ids
    assert remote.tokenizes and remote.prompt_style == "lab"
    assert remote.capabilities.context_length == lab.capabilities.context_length
    assert remote.encode("3 + 4 = 7") == lab.encode("3 + 4 = 7") and remote.decode(lab.encode("3 + 4")) == "3 + 4"
    # deliberate serve refuses echo (it returns no prompt logprobs), so nothing is scored through it
    assert not remote.echoes and not remote.capabilities.scoring
    with pytest.raises(BackendError, match="does not echo prompt logprobs"):
        remote.score(["Q: 1 + 1\n"], ["2"])


def test_generations_match_the_local_backend_token_for_token(remote, lab):
    prompts = ["Tom has 3 apples and buys 4 more. How many apples does Tom have?\n", [*lab.encode("Amy has 5 pens.\n")]]
    for p in (SamplingParams(temperature=0, max_tokens=24, logprobs=5),
              SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=11, stop=("\n",))):
        here, there = lab.generate(prompts, p), remote.generate(prompts, p)
        for a, b in zip(here, there, strict=True):
            assert [c.text for c in a.completions] == [c.text for c in b.completions]
            assert [c.token_ids for c in a.completions] == [c.token_ids for c in b.completions]
            assert [c.n_tokens for c in a.completions] == [c.n_tokens for c in b.completions]
            assert a.prompt_tokens == b.prompt_tokens and b.cached_tokens >= a.prompt_tokens * (p.n - 1)
            if p.logprobs:
                assert [round(t.logprob, 4) for t in a.completions[0].logprobs] == \
                       [round(t.logprob, 4) for t in b.completions[0].logprobs]
                top_here, top_there = a.completions[0].logprobs[0].top, b.completions[0].logprobs[0].top
                assert [x[0] for x in top_here] == [x[0] for x in top_there]


def test_eval_strategies_through_the_server_give_the_local_answers(remote, lab):
    task = load_task("lab-en")
    problems = task.problems[:6]
    for name, opts in [("greedy", {}), ("self-consistency", {"n": 4}), ("mcts", {"iterations": 3})]:
        strat = get_strategy(name, **opts)
        here = strat.run(problems, lab, task, seed=3)
        there = strat.run(problems, remote, task, seed=3)
        assert [r.answer for r in here] == [r.answer for r in there], name
        assert [r.compute.tokens_generated for r in here] == [r.compute.tokens_generated for r in there], name


def test_a_server_that_ignores_n_gets_n_requests_seeded_apart(served):
    remote = OpenAIBackend(f"openai:{served}/v1#lab")
    remote.native_n = False  # as llama.cpp's server: one choice whatever n says
    g = remote.generate(["Amy has 5 pens.\n"], SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=5))[0]
    assert len(g.completions) == 3
    one = [remote.generate(["Amy has 5 pens.\n"], SamplingParams(temperature=1.0, max_tokens=12, seed=5 + j))[0]
           .completions[0].text for j in range(3)]
    assert [c.text for c in g.completions] == one


def test_retries_and_refusals():
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app, hits = FastAPI(), {"n": 0}

    @app.get("/v1/models")
    async def models():
        hits["n"] += 1
        if hits["n"] <= 2:  # busy twice, then fine: the client backs off and retries
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        return {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}

    with background(app) as base:
        with pytest.raises(BackendError, match="neither /completions nor"):  # models answered after two 429s
            OpenAIBackend(f"openai:{base}/v1#m", max_retries=3)
        assert hits["n"] == 3
        with pytest.raises(BackendError, match="serves no model 'other'; it serves: m"):
            OpenAIBackend(f"openai:{base}/v1#other")
    with pytest.raises(BackendError, match="no OpenAI-compatible server answers"):
        OpenAIBackend("openai:http://127.0.0.1:9/v1#m", max_retries=0, timeout=2)
    for bad in ("openai:localhost#m", "openai:http://x/v1", "openai:http://x/v1#"):
        with pytest.raises(BadInput, match="expected openai:BASE_URL#MODEL"):
            parse_spec(bad)
    assert parse_spec("openai:http://h:1/v1/#lab?format=lab") == (["http://h:1/v1"], "lab", "lab")


def test_a_chat_only_server_is_used_through_chat_completions(lab):
    from fastapi.responses import JSONResponse

    app = create_app(lab, ServeConfig(model="lab"))

    @app.middleware("http")
    async def chat_only(request, call_next):  # as a hosted chat API: no /completions, no /tokenize
        if request.url.path in ("/v1/completions", "/tokenize", "/detokenize"):
            return JSONResponse({"error": {"message": "not here"}}, status_code=404)
        return await call_next(request)

    with background(app) as base:
        remote = OpenAIBackend(f"openai:{base}/v1#lab")
        assert remote.chat_only and remote.prompt_style == "chat" and remote.max_logprobs == 20
        task = load_task("lab-en")
        res = get_strategy("self-consistency", n=3).run(task.problems[:2], remote, task, seed=1)
        assert all(r.answer is not None for r in res) and all(len(r.traces) == 3 for r in res)
        assert all(r.compute.tokens_generated > 0 and r.compute.calls == 1 for r in res)
        with pytest.raises(BackendError, match="does not tokenize"):
            get_strategy("mcts", iterations=2).run(task.problems[:1], remote, task)
