"""`deliberate serve`: an OpenAI-compatible server (FastAPI) over any backend, with search.

Routes: `/v1/models`, `/v1/completions`, `/v1/chat/completions`, `/health`, and vLLM's
`/tokenize` and `/detokenize` (so an `openai:` client can extend paths by token ids), plus
`/v1/trees/ID` (a search tree a response named; `?format=html` draws it). Requests go to the
batcher (`serve.engine`); this module only reads requests and writes answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deliberate.backends.base import Backend, Generation
from deliberate.errors import BadInput, ProblemTooLong, UnknownName
from deliberate.prompting import chat_prompt
from deliberate.search import STRATEGIES
from deliberate.serve import protocol as P
from deliberate.serve.config import ServeConfig
from deliberate.serve.engine import Engine, Job, Outcome, QueueFull
from deliberate.version import __version__


def create_app(backend: Backend, cfg: ServeConfig | None = None) -> FastAPI:
    cfg = cfg or ServeConfig(model=backend.spec)
    engine = Engine(backend, queue_size=cfg.queue_size, window_ms=cfg.batch_window_ms,
                    wait_max_ms=cfg.batch_wait_max_ms, max_batch=cfg.max_batch, max_search_tokens=cfg.max_search_tokens)
    trees: OrderedDict[str, dict] = OrderedDict()
    served = backend.spec
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        engine.close()  # the worker thread ends with the server

    app = FastAPI(title="deliberate", version=__version__, lifespan=lifespan)
    app.state.engine, app.state.trees = engine, trees

    app.add_middleware(Guard, cfg=cfg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):  # unknown routes, wrong methods
        return _error(P.ApiError(e.status_code, str(e.detail), "invalid_request_error"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        return _error(P.ApiError(500, f"internal error: {type(e).__name__}: {e}", "server_error"))

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": served, "pending": engine.pending, "batches": engine.batches}

    @app.get("/v1/models")
    async def models():
        ids = [served, *(f"{s}@{served}" for s in STRATEGIES)]
        # vLLM's max_model_len, and the prompt format the model declares (an `openai:` client reads both)
        about = {"max_model_len": backend.capabilities.context_length, "deliberate_prompt_style": backend.prompt_style}
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "deliberate",
                                            **about} for i in ids]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await _serve(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await _serve(request, chat=False)

    @app.post("/tokenize")
    async def tokenize(request: Request):
        try:
            body = await _body(request)
            text = body.get("prompt")
            if text is None and "messages" in body:
                text = chat_prompt(P.messages_of(body), backend)
            if not isinstance(text, str):
                raise P.ApiError(400, "prompt must be a string.", param="prompt")
            ids = backend.encode(text) if body.get("add_special_tokens", True) else backend.encode_continuation(text)
        except (P.ApiError, BadInput) as e:
            return _error(e if isinstance(e, P.ApiError) else P.ApiError(400, str(e)))
        return {"tokens": ids, "count": len(ids), "max_model_len": backend.capabilities.context_length}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        try:
            ids = (await _body(request)).get("tokens")
            if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
                raise P.ApiError(400, "tokens must be a list of integers.", param="tokens")
            return {"prompt": backend.decode(ids)}
        except P.ApiError as e:
            return _error(e)

    @app.get("/v1/trees/{tree_id}")
    async def tree(tree_id: str, format: str = "json"):
        if tree_id not in trees:
            return _error(P.ApiError(404, f"no tree {tree_id!r} here (the server keeps the last {cfg.trees_kept})."))
        if format == "html":
            from deliberate.serve.viewer import tree_page

            return HTMLResponse(tree_page(trees[tree_id]))
        return trees[tree_id]

    async def _body(request: Request) -> dict:
        raw = bytearray()
        async for part in request.stream():  # counted as it arrives: a chunked upload has no Content-Length
            raw += part
            if len(raw) > cfg.max_body_bytes:
                raise P.ApiError(413, f"the request body is over {cfg.max_body_bytes} bytes.")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise P.ApiError(400, "the request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise P.ApiError(400, "the request body must be a JSON object.")
        return body

    async def _serve(request: Request, chat: bool):
        try:
            body = await _body(request)
            r = P.route(body, served, cfg)
            job = _job(body, r, chat)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise P.ApiError(400, "stream must be true or false.", param="stream")
        except P.ApiError as e:
            return _error(e)
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue = asyncio.Queue()
        if stream:
            job.watch = lambda g: loop.call_soon_threadsafe(updates.put_nowait, g)
        try:
            fut = engine.submit(job)
        except QueueFull as e:
            return _error(P.ApiError(429, str(e), "rate_limit_exceeded", code="queue_full"))
        kind = "chat.completion" if chat else "text_completion"
        if stream:
            return StreamingResponse(_stream(job, fut, r, chat, updates, kind), media_type="text/event-stream")
        waiter = asyncio.wrap_future(fut)
        job.waiters.append(waiter)
        while not fut.done():  # wait, watching for a client that leaves (its search then stops) and the time
            await asyncio.wait([waiter], timeout=0.1)
            if fut.done():
                break
            if await request.is_disconnected():
                job.cancelled.set()
            elif time.monotonic() > job.deadline + 1.0:  # still queued behind other work: answer now
                job.cancelled.set()
                return _error(P.ApiError(504, f"the request ran past this server's time limit of "
                                              f"{cfg.request_timeout:g} s.", "timeout", code="timeout"))
        try:
            out = _outcome(job, fut)
        except P.ApiError as e:
            return _error(e)
        return _response(out, r, chat, kind, job)

    def _job(body: dict, r: P.Route, chat: bool) -> Job:
        deadline = time.monotonic() + cfg.request_timeout
        if r.strategy is not None:
            if chat:
                question = P.question_of(P.messages_of(body))
            else:
                question = body.get("prompt")
                if not isinstance(question, str) or not question.strip():
                    raise P.ApiError(400, "a search needs prompt to be a non-empty string.", param="prompt")
                question = question.strip()
            if body.get("n", 1) != 1:
                raise P.ApiError(400, "n must be 1 with a strategy (ask the strategy for its samples: "
                                      "deliberate.n).", param="n")
            seed = P._int(body, "seed", cfg.seed, -(2**31), 2**31 - 1)
            try:
                engine.strategy(r.strategy, r.options)
            except (BadInput, UnknownName) as e:
                raise P.ApiError(400, str(e), param="deliberate") from None
            except Exception as e:  # the strategy cannot run on this backend (a missing capability)
                raise P.ApiError(400, str(e), param="model") from None
            return Job(question=question, strategy=r.strategy, options=r.options, seed=seed, deadline=deadline)
        params = P.sampling(body, cfg, chat)
        try:
            if chat:
                prompts = [chat_prompt(P.messages_of(body), backend)]
            else:
                prompts = _prompts(body.get("prompt"))
                _check_ids(prompts, backend)
        except BadInput as e:
            raise P.ApiError(400, str(e), param="messages" if chat else "prompt") from None
        if not isinstance(body.get("return_token_ids", False), bool):
            raise P.ApiError(400, "return_token_ids must be true or false.", param="return_token_ids")
        return Job(prompts=prompts, params=[params] * len(prompts), seed=params.seed or 0, deadline=deadline,
                   token_ids=bool(body.get("return_token_ids")))

    def _outcome(job: Job, fut) -> Outcome:
        for w in job.waiters:  # the asyncio copies of the future: their exception is read here, once
            if w.done() and not w.cancelled():
                w.exception()
        try:
            out = fut.result()
        except ProblemTooLong as e:
            raise P.ApiError(400, str(e), code="context_length_exceeded") from None
        except BadInput as e:
            raise P.ApiError(400, str(e)) from None
        except Exception as e:
            raise P.ApiError(502, f"the backend failed: {type(e).__name__}: {e}", "backend_error") from None
        if out.expired and not job.cancelled.is_set():
            raise P.ApiError(504, f"the request ran past this server's time limit of {cfg.request_timeout:g} s.",
                             "timeout", code="timeout")
        return out

    def _keep_tree(result, job: Job) -> str | None:
        tree = result.info.get("tree") if result is not None else None
        if not tree:
            return None
        trees[job.id] = tree
        while len(trees) > cfg.trees_kept:
            trees.popitem(last=False)
        return job.id

    def _response(out: Outcome, r: P.Route, chat: bool, kind: str, job: Job) -> dict:
        env = P.envelope(kind, served if r.strategy is None else f"{r.strategy}@{served}", f"{kind[:4]}-{job.id}")
        if out.result is not None:
            reasoning, content, finish = P.search_message(out.result)
            tid = _keep_tree(out.result, job)
            extra = {"strategy": r.strategy, "answer": out.result.answer,
                     **({"tree_id": tid, "tree_url": f"/v1/trees/{tid}?format=html"} if tid else {}),
                     **({"tree": out.result.info.get("tree")} if r.tree else {})}
            if chat:
                msg = {"role": "assistant", "content": content, "reasoning": reasoning, "reasoning_content": reasoning}
                choice = {"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}
            else:
                choice = {"index": 0, "text": content, "reasoning": reasoning, "finish_reason": finish,
                          "logprobs": None}
            return {**env, "choices": [choice], "usage": P.usage(out.compute, out.compute.tokens_generated),
                    "deliberate": extra}
        choices = []
        for g in out.generations or []:
            for c in g.completions:
                i = len(choices)
                if chat:
                    reasoning, content = P.split_think(c.text)
                    msg = {"role": "assistant", "content": content}
                    if reasoning:
                        msg.update(reasoning=reasoning, reasoning_content=reasoning)
                    choices.append({"index": i, "message": msg, "finish_reason": c.finish_reason,
                                    "logprobs": P.chat_logprobs(c)})
                else:  # stop_reason and token_ids as vLLM names them (token ids on request)
                    choices.append({"index": i, "text": c.text, "finish_reason": c.finish_reason,
                                    "stop_reason": c.stop, "logprobs": P.completion_logprobs(c),
                                    **({"token_ids": list(c.token_ids)} if job.token_ids else {})})
        thought = P.think_tokens(out.generations or [], backend.count_tokens)
        return {**env, "choices": choices, "usage": P.usage(P.request_compute(out.generations or [], out.compute),
                                                            thought)}

    async def _stream(job: Job, fut, r: P.Route, chat: bool, updates: asyncio.Queue, kind: str) -> AsyncIterator[str]:
        chunk_kind = "chat.completion.chunk" if chat else "text_completion"
        env = P.envelope(chunk_kind, served if r.strategy is None else f"{r.strategy}@{served}", f"{kind[:4]}-{job.id}")

        def event(choices: list, **more) -> str:
            return f"data: {json.dumps({**env, 'choices': choices, **more})}\n\n"

        def delta(reasoning: str = "", content: str = "", finish=None, index: int = 0) -> dict:
            if chat:
                d = {"role": "assistant"} if not (reasoning or content) and finish is None else {}
                if reasoning:
                    d.update(reasoning=reasoning, reasoning_content=reasoning)
                if content:
                    d["content"] = content
                return {"index": index, "delta": d, "finish_reason": finish}
            return {"index": index, "text": content, "reasoning": reasoning or None, "finish_reason": finish}

        try:
            if chat:  # the role first, for every choice to come
                yield event([delta(index=i) for i in range(sum(p.n for p in job.params) if job.params else 1)])
            waiter = asyncio.wrap_future(fut)  # done on this loop after the updates posted before it
            job.waiters.append(waiter)
            while not waiter.done() or not updates.empty():
                getter = asyncio.ensure_future(updates.get())
                await asyncio.wait([getter, waiter], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                g: Generation = getter.result()
                if r.strategy is not None:  # the search as it advances: each generation's text, as reasoning
                    text = "\n".join(c.text for c in g.completions if c.text)
                    if text:
                        yield event([delta(reasoning=text + "\n")])
            try:
                out = _outcome(job, fut)
            except P.ApiError as e:
                yield f"data: {json.dumps(e.body())}\n\n"
                return
            full = _response(out, r, chat, kind, job)
            for ch in full["choices"]:
                i = ch["index"]
                if r.strategy is not None:
                    yield event([delta(content=ch["message"]["content"] if chat else ch["text"], index=i)])
                else:
                    msg = ch["message"] if chat else {"content": ch["text"]}
                    part = delta(reasoning=msg.get("reasoning", ""), content=msg.get("content", ""), index=i)
                    yield event([{**part, "logprobs": ch.get("logprobs")}])
                yield event([delta(finish=ch["finish_reason"], index=i)])
            yield event([], usage=full["usage"], **({"deliberate": full["deliberate"]} if "deliberate" in full else {}))
            yield "data: [DONE]\n\n"
        finally:
            if not fut.done():  # the client left mid-stream: stop its search
                job.cancelled.set()

    return app


class Guard:
    """The API key and the body-size cap, as plain ASGI (Starlette's BaseHTTPMiddleware would hide
    a client's disconnect from the handler, which must see it to stop the search)."""

    def __init__(self, app, cfg: ServeConfig) -> None:
        self.app, self.cfg = app, cfg

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            error = None
            if scope["path"].startswith("/v1/") and self.cfg.api_key and \
                    headers.get("authorization", "") != f"Bearer {self.cfg.api_key}":
                error = P.ApiError(401, "missing or wrong API key (Authorization: Bearer KEY).",
                                   "authentication_error", code="invalid_api_key")
            size = headers.get("content-length", "")
            if size.isdigit() and int(size) > self.cfg.max_body_bytes:
                error = P.ApiError(413, f"the request body is over {self.cfg.max_body_bytes} bytes.")
            if error is not None:
                await _error(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _check_ids(prompts: list, backend: Backend) -> None:
    """Token-id prompts within the vocabulary (an id out of range would fail the whole batch)."""
    vocab = len(getattr(backend, "tokenizer", None) or ()) or None
    for p in prompts:
        if isinstance(p, list) and (min(p) < 0 or (vocab is not None and max(p) >= vocab)):
            raise P.ApiError(400, f"a token id is outside the vocabulary (0..{(vocab or 1) - 1}).", param="prompt")


def _prompts(prompt) -> list:
    """A completions request's prompts: a string, a list of strings, token ids, or lists of them."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            return [list(prompt)]
        if all(isinstance(p, str) for p in prompt) or all(
                isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
                for p in prompt):
            return list(prompt)
    raise P.ApiError(400, "prompt must be a string, a list of strings, or token ids.", param="prompt")


def _error(e: P.ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)
