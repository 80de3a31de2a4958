"""`deliberate serve` called by the official `openai` client on loopback: pass-through and search,
streaming, usage, batching of concurrent requests, the caps, and every error's status and shape."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from deliberate.backends.base import Capabilities
from deliberate.backends.scripted import ScriptedBackend, from_table
from deliberate.errors import BadInput
from deliberate.serve import ServeConfig

TABLE = {"Q\n": [("The answer is 1.", 0.9), ("The answer is 2.", 0.6), ("The answer is 1.", 0.8)],
         "R\n": [("The answer is 7.", 0.9)]}


def scripted(table=TABLE, **caps) -> ScriptedBackend:
    return ScriptedBackend(from_table(table), Capabilities(max_logprobs=20, scoring=True, **caps))


def test_pass_through_chat_and_completions(serving, openai_client):
    with serving(scripted()) as (base, _):
        c = openai_client(base)
        r = c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Q"}], temperature=0)
        assert r.choices[0].message.content == "The answer is 1." and r.choices[0].finish_reason == "stop"
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (2, 16)  # "Q\n" read, 16 characters written
        t = c.completions.create(model="scripted", prompt="R\n", temperature=0, logprobs=2, max_tokens=5)
        assert t.choices[0].text == "The a" and t.choices[0].finish_reason == "length"
        assert t.choices[0].logprobs.tokens == list("The a") and len(t.choices[0].logprobs.top_logprobs[0]) == 2
        several = c.completions.create(model="scripted", prompt=["Q\n", "R\n"], temperature=0)
        assert [ch.text for ch in several.choices] == ["The answer is 1.", "The answer is 7."]
        samples = c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Q"}], n=3,
                                            logprobs=True, top_logprobs=1)
        assert [ch.message.content for ch in samples.choices] == [t for t, _ in TABLE["Q\n"]]
        assert samples.choices[0].logprobs.content[0].token == "T"
        # OpenAI counts the prompt once whatever n; nothing came from a prefix cache
        assert (samples.usage.prompt_tokens, samples.usage.prompt_tokens_details.cached_tokens) == (2, 0)
        models = [m.id for m in c.models.list().data]
        assert models[0] == "scripted" and "mcts@scripted" in models


def test_a_search_answers_with_its_reasoning_and_all_it_spent(serving, openai_client):
    with serving(scripted()) as (base, _):
        c = openai_client(base)
        r = c.chat.completions.create(model="best-of-n@scripted", messages=[{"role": "user", "content": "Q"}],
                                      extra_body={"deliberate": {"n": 3}})
        msg = r.choices[0].message
        assert msg.content == "1" and msg.model_extra["reasoning"] == "The answer is 1."  # the most confident sample
        assert msg.model_extra["reasoning_content"] == msg.model_extra["reasoning"]
        assert r.usage.completion_tokens == 48 and r.usage.completion_tokens_details.reasoning_tokens == 48
        assert r.usage.prompt_tokens == 6 and r.model_extra["deliberate"]["answer"] == "1"
        # the same search named three ways
        vote = dict(messages=[{"role": "user", "content": "Q"}], temperature=1.0)
        a = c.chat.completions.create(model="self-consistency@scripted", extra_body={"deliberate": {"n": 3}}, **vote)
        b = c.chat.completions.create(model="scripted", extra_body={"deliberate": {"strategy": "self-consistency",
                                                                                   "n": 3}}, **vote)
        d = c.chat.completions.create(model="scripted", extra_body={"optillm_approach": "self_consistency",
                                                                    "deliberate": {"n": 3}}, **vote)
        assert a.choices[0].message.content == b.choices[0].message.content == d.choices[0].message.content == "1"
        t = c.completions.create(model="greedy@scripted", prompt="R")
        assert t.choices[0].text == "7" and t.choices[0].model_extra["reasoning"] == "The answer is 7."


def test_streaming_sends_the_search_as_it_goes_then_the_answer_then_usage(serving, openai_client):
    with serving(scripted()) as (base, _):
        c = openai_client(base)
        chunks = list(c.chat.completions.create(model="self-consistency@scripted", stream=True,
                                                messages=[{"role": "user", "content": "Q"}],
                                                extra_body={"deliberate": {"n": 3}}))
        reasoning = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning") or "" for ch in chunks
                            if ch.choices)
        content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert reasoning == "The answer is 1.\nThe answer is 2.\nThe answer is 1.\n" and content == "1"
        first_content = next(i for i, ch in enumerate(chunks) if ch.choices and ch.choices[0].delta.content)
        last_reasoning = max(i for i, ch in enumerate(chunks) if ch.choices and
                             (ch.choices[0].delta.model_extra or {}).get("reasoning"))
        assert last_reasoning < first_content
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 48
        multi = list(c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Q"}], n=2,
                                               stream=True, logprobs=True, top_logprobs=1))
        texts = {0: "", 1: ""}
        for ch in multi:
            for choice in ch.choices:
                texts[choice.index] += choice.delta.content or ""
        assert texts == {0: "The answer is 1.", 1: "The answer is 2."}
        assert {ch.choices[0].delta.role for ch in multi[:1]} == {"assistant"} and len(multi[0].choices) == 2
        assert any(choice.logprobs and choice.logprobs.content for ch in multi for choice in ch.choices)
        plain = list(c.completions.create(model="scripted", prompt="R\n", stream=True, temperature=0))
        assert "".join(ch.choices[0].text for ch in plain if ch.choices) == "The answer is 7."
        assert plain[-1].usage.completion_tokens == 16


def test_concurrent_requests_share_backend_calls(serving, openai_client):
    backend = scripted()
    with serving(backend, batch_window_ms=50) as (base, app):
        c = openai_client(base)
        ask = lambda i: c.chat.completions.create(  # noqa: E731
            model="scripted", temperature=0, messages=[{"role": "user", "content": "Q" if i % 2 else "R"}])
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(ask, range(32)))
        assert [a.choices[0].message.content for a in answers] == [
            "The answer is 1." if i % 2 else "The answer is 7." for i in range(32)]
        assert all(a.usage.completion_tokens == 16 for a in answers)  # each billed its own, exactly
        assert backend.calls < 16 and app.state.engine.batches < 16  # solved together, not one by one


def test_requests_that_trickle_in_join_one_batch_until_a_gap():
    """Jobs 10 ms apart over 90 ms, with a 50 ms gap rule: one batch (a fixed 50 ms window would
    have cut it); a job after a 300 ms pause starts the next; the wait never passes its cap."""
    from deliberate.params import SamplingParams
    from deliberate.serve.engine import Engine, Job

    def job():
        return Job(prompts=["Q\n"], params=[SamplingParams(temperature=0, max_tokens=4)])

    engine = Engine(scripted(), window_ms=50, wait_max_ms=2000)
    try:
        jobs = []
        for _ in range(10):
            jobs.append(job())
            engine.submit(jobs[-1])
            time.sleep(0.01)
        for j in jobs:
            j.future.result(timeout=10)
        assert engine.batches == 1
        time.sleep(0.3)
        late = job()
        engine.submit(late).result(timeout=10)
        assert engine.batches == 2
    finally:
        engine.close()
    capped = Engine(scripted(), window_ms=50, wait_max_ms=50)
    try:
        jobs = []
        for _ in range(10):
            jobs.append(job())
            capped.submit(jobs[-1])
            time.sleep(0.02)
        for j in jobs:
            j.future.result(timeout=10)
        assert capped.batches >= 2  # 180 ms of arrivals, a 50 ms cap on the first one's wait
    finally:
        capped.close()


def test_bad_requests_get_openai_errors_with_the_right_status(serving, openai_client):
    with serving(scripted(), max_n=4) as (base, _):
        c = openai_client(base)
        q = [{"role": "user", "content": "Q"}]
        with pytest.raises(openai.NotFoundError, match="not served here"):
            c.chat.completions.create(model="gpt-4", messages=q)
        with pytest.raises(openai.BadRequestError, match="temperature must be a number"):
            c.chat.completions.create(model="scripted", messages=q, temperature=5)
        with pytest.raises(openai.BadRequestError, match="n must be an integer in \\[1, 4\\]"):
            c.chat.completions.create(model="scripted", messages=q, n=9)
        with pytest.raises(openai.BadRequestError, match="unknown strategy 'magic'"):
            c.chat.completions.create(model="magic@scripted", messages=q)
        with pytest.raises(openai.BadRequestError, match="takes no option 'depth'"):
            c.chat.completions.create(model="mcts@scripted", messages=q, extra_body={"deliberate": {"depth": 3}})
        with pytest.raises(openai.BadRequestError, match="above this server's cap of 4"):
            c.chat.completions.create(model="best-of-n@scripted", messages=q, extra_body={"deliberate": {"n": 64}})
        with pytest.raises(openai.BadRequestError, match="two strategies"):
            c.chat.completions.create(model="mcts@scripted", messages=q, extra_body={"optillm_approach": "bon"})
        with pytest.raises(openai.BadRequestError, match="messages must be a non-empty list"):
            c.chat.completions.create(model="scripted", messages=[])
        raw = httpx.post(f"{base}/v1/chat/completions", content=b"{not json", timeout=10)
        assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
        big = httpx.post(f"{base}/v1/completions", content=b"x" * 2_000_000, timeout=10)
        assert big.status_code == 413 and "over 1000000 bytes" in big.json()["error"]["message"]


def test_a_backend_failure_is_a_502_and_the_server_keeps_serving(serving, openai_client):
    table = from_table(TABLE)

    def script(prompt, j, params):
        if prompt.startswith("boom"):
            raise RuntimeError("the GPU caught fire")
        return table(prompt, j, params)

    with serving(ScriptedBackend(script)) as (base, _):
        c = openai_client(base)
        with pytest.raises(openai.APIStatusError, match="the GPU caught fire") as e:
            c.completions.create(model="scripted", prompt="boom")
        assert e.value.status_code == 502
        ok = c.completions.create(model="scripted", prompt="Q\n", temperature=0)
        assert ok.choices[0].text == "The answer is 1."


def slow_backend(delay: float, seen: list | None = None, endless: bool = False) -> ScriptedBackend:
    table = from_table({**TABLE, "Q\n": [("step\n", 0.9)], "\n": [("step\n", 0.9)]} if endless else TABLE)

    def script(prompt, j, params):
        if seen is not None:
            seen.append(prompt)
        time.sleep(delay)
        return table(prompt, j, params)

    return ScriptedBackend(script)


def test_a_full_queue_answers_429_and_a_slow_request_504(serving, openai_client):
    with serving(slow_backend(0.5), queue_size=1, batch_window_ms=0) as (base, _):
        c = openai_client(base)
        ask = lambda _: c.completions.create(model="scripted", prompt="Q\n", temperature=0)  # noqa: E731
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: _try(ask, i), range(4)))
        assert sum(isinstance(r, openai.RateLimitError) for r in results) >= 1
        assert any(not isinstance(r, Exception) and r.choices[0].text == "The answer is 1." for r in results)
    with serving(slow_backend(0.3, endless=True), request_timeout=0.5) as (base, _):
        c = openai_client(base)
        with pytest.raises(openai.APIStatusError, match="time limit of 0.5 s") as e:
            c.chat.completions.create(model="mcts@scripted", messages=[{"role": "user", "content": "Q"}],
                                      extra_body={"deliberate": {"iterations": 20}})
        assert e.value.status_code == 504


def _try(fn, *a):
    try:
        return fn(*a)
    except Exception as e:
        return e


def test_a_client_that_leaves_stops_its_search(serving):
    seen: list = []
    with serving(slow_backend(0.05, seen, endless=True)) as (base, _):
        body = {"model": "mcts@scripted", "messages": [{"role": "user", "content": "Q"}],
                "deliberate": {"iterations": 60}, "stream": True}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=30) as r:
            for line in r.iter_lines():
                if '"reasoning"' in line:
                    break  # the search has begun: hang up
        time.sleep(1.0)
        calls_after_leaving = len(seen)
        time.sleep(1.0)
        assert len(seen) == calls_after_leaving  # nothing more was generated for it
        assert calls_after_leaving < 60


def test_listening_beyond_loopback_needs_a_key_and_the_key_is_checked(serving, openai_client, monkeypatch):
    monkeypatch.delenv("DELIBERATE_API_KEY", raising=False)
    with pytest.raises(BadInput, match="set --api-key"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="0.0.0.0", api_key="k").api_key == "k"
    with serving(scripted(), api_key="sesame") as (base, _):
        with pytest.raises(openai.AuthenticationError):
            openai_client(base, api_key="wrong").models.list()
        assert openai_client(base, api_key="sesame").models.list().data
        assert httpx.get(f"{base}/health").json()["status"] == "ok"  # health needs no key


def test_load_fifty_concurrent_requests_some_malformed(serving):
    """60 requests at once, every fifth malformed: each answer and each error is checked."""
    with serving(scripted(), batch_window_ms=20) as (base, _):
        def one(i: int):
            if i % 5 == 0:
                bad = [{"model": "scripted", "messages": "Q"}, {"model": "scripted", "prompt": 3},
                       {"model": "scripted", "messages": [{"role": "user", "content": "Q"}], "top_p": 0}][i % 3]
                path = "/v1/chat/completions" if "messages" in bad else "/v1/completions"
                r = httpx.post(base + path, json=bad, timeout=60)
                return i, r.status_code, r.json()
            if i % 3 == 0:
                body = {"model": "self-consistency@scripted", "messages": [{"role": "user", "content": "Q"}],
                        "deliberate": {"n": 3}}
            else:
                body = {"model": "scripted", "prompt": "Q\n" if i % 2 else "R\n", "temperature": 0}
            path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
            r = httpx.post(base + path, json=body, timeout=60)
            return i, r.status_code, r.json()

        with ThreadPoolExecutor(60) as pool:
            results = list(pool.map(one, range(60)))
    errors = ok = 0
    for i, status, body in results:
        if i % 5 == 0:
            assert status == 400 and body["error"]["message"] and body["error"]["type"] == "invalid_request_error"
            errors += 1
        elif i % 3 == 0:
            assert status == 200 and body["choices"][0]["message"]["content"] == "1"
            assert body["usage"]["completion_tokens"] == 48
            ok += 1
        else:
            assert status == 200 and body["choices"][0]["text"] == ("The answer is 1." if i % 2 else "The answer is 7.")
            ok += 1
    assert (errors, ok) == (12, 48)


def test_tokenize_and_detokenize_round_trip(serving):
    with serving(scripted()) as (base, _):
        ids = httpx.post(f"{base}/tokenize", json={"model": "scripted", "prompt": "Hi"}).json()
        assert ids["tokens"] == [72, 105] and ids["count"] == 2
        assert httpx.post(f"{base}/detokenize", json={"tokens": ids["tokens"]}).json() == {"prompt": "Hi"}
        assert httpx.post(f"{base}/detokenize", json={"tokens": "Hi"}).status_code == 400
        # token ids are prompts too (tree search through an `openai:` backend extends paths by ids)
        r = httpx.post(f"{base}/v1/completions", json={"model": "scripted", "prompt": [ord("R"), 10],
                                                        "temperature": 0}).json()
        assert r["choices"][0]["text"] == "The answer is 7."


def test_mcts_returns_its_tree_and_the_server_draws_it(serving, openai_client):
    steps = {"Q\n": [("a\n", 0.9), ("b\n", 0.5)], "a\n": [("The answer is 1.", 0.9)],
             "b\n": [("The answer is 2.", 0.4)]}
    backend = ScriptedBackend(lambda p, j, s: from_table(steps)(p, j, s))
    with serving(backend) as (base, _):
        r = openai_client(base).chat.completions.create(
            model="mcts@scripted", messages=[{"role": "user", "content": "Q"}],
            extra_body={"deliberate": {"iterations": 4, "tree": True}})
        extra = r.model_extra["deliberate"]
        assert r.choices[0].message.content == "1" and extra["tree"]["nodes"][0]["parent"] is None
        assert extra["tree"]["chosen"]["answer"] == "1"
        page = httpx.get(base + extra["tree_url"])
        assert page.status_code == 200 and "class='chosen" in page.text and "answer <b>1</b>" in page.text
        assert httpx.get(f"{base}/v1/trees/nope").status_code == 404


def test_the_lab_model_with_mcts_through_an_unmodified_client(serving, openai_client, lab):
    """The issue's end-to-end case: reasoning, streaming and usage from mcts over a real model."""
    question = "Tom has 3 apples. He buys 4 more. How many apples does Tom have now?"
    with serving(lab) as (base, _):
        c = openai_client(base)
        ask = dict(model="mcts@lab", messages=[{"role": "user", "content": question}],
                   extra_body={"deliberate": {"iterations": 4}})
        r = c.chat.completions.create(**ask)
        reasoning = r.choices[0].message.model_extra["reasoning"]
        assert r.choices[0].message.content == r.model_extra["deliberate"]["answer"]
        assert r.choices[0].message.content in reasoning  # the path ends in the answer it gives
        assert r.usage.completion_tokens > len(reasoning) // 8 and r.usage.prompt_tokens > 0
        assert r.usage.prompt_tokens_details.cached_tokens > 0  # tree search reads shared prefixes from the cache
        chunks = list(c.chat.completions.create(stream=True, **ask))
        streamed = [ch for ch in chunks if ch.choices and (ch.choices[0].delta.model_extra or {}).get("reasoning")]
        assert len(streamed) >= 4  # the search arrives step by step, not at the end
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == r.choices[0].message.content
        assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens  # the same seed, the same search


def test_one_bad_request_in_a_batch_fails_alone(serving):
    backend = scripted(context_length=40)  # a prompt of 40 characters or more does not fit
    with serving(backend, batch_window_ms=100) as (base, _):
        def one(i: int):
            prompt = "x" * 60 if i == 3 else ("Q\n" if i % 2 else "R\n")
            return httpx.post(f"{base}/v1/completions", json={"model": "scripted", "prompt": prompt, "temperature": 0},
                              timeout=30)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
    assert answers[3].status_code == 400 and answers[3].json()["error"]["code"] == "context_length_exceeded"
    assert [a.json()["choices"][0]["text"] for i, a in enumerate(answers) if i != 3] == [
        "The answer is 7.", "The answer is 1.", "The answer is 7.", "The answer is 7.", "The answer is 1.",
        "The answer is 7.", "The answer is 1."]


def test_options_are_typed_and_capped_and_unknown_routes_answer_in_openai_shape(serving):
    with serving(scripted(), max_n=4) as (base, _):
        q = {"messages": [{"role": "user", "content": "Q"}]}
        for body, msg in [({"model": "mcts@scripted", "deliberate": {"iterations": 2.5}}, "iterations must be int"),
                          ({"model": "beam@scripted", "deliberate": {"width": 500}}, "width 500 is above"),
                          ({"model": "scripted", "optillm_approach": ["bon"]}, "optillm_approach must be a string"),
                          ({"model": "scripted", "deliberate": {"n": 2}}, "needs a strategy")]:
            r = httpx.post(f"{base}/v1/chat/completions", json={**q, **body}, timeout=10)
            assert r.status_code == 400 and msg in r.json()["error"]["message"], (body, r.text)
        missing = httpx.get(f"{base}/v1/nowhere", timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["message"]


def test_a_client_that_stops_waiting_stops_its_search(serving):
    seen: list = []
    with serving(slow_backend(0.05, seen, endless=True)) as (base, _):
        body = {"model": "mcts@scripted", "messages": [{"role": "user", "content": "Q"}],
                "deliberate": {"iterations": 60}}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/chat/completions", json=body, timeout=0.5)  # not streaming: gives up
        time.sleep(1.0)
        after = len(seen)
        time.sleep(1.0)
        assert len(seen) == after and after < 60
