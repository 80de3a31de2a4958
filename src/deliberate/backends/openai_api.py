"""`openai:BASE_URL#MODEL`: any OpenAI-compatible server as a backend (vLLM, SGLang, llama.cpp,
Ollama, `deliberate serve`, a hosted API), through the official `openai` client.

The server is probed once, and the backend declares only what it saw come back: the largest
top-k logprobs it returns, whether it honours `n` (llama.cpp's server does not: the backend then
sends n requests, seeded seed, seed+1, ...), whether a seed reproduces a sample, whether it
tokenizes (vLLM's `/tokenize`, which tree search needs to extend paths by token ids), whether
it returns token ids, and its context length. A strategy that needs more fails before generating,
in one line (`Strategy.check`). Requests go out concurrently (asyncio, at most `concurrency` in
flight); the client retries 429, 5xx and timeouts with exponential backoff, up to `max_retries`.
Usage is read off each response, prompt tokens and cached prompt tokens included, so compute
figures mean what the local backend's mean. The API key comes from `DELIBERATE_OPENAI_API_KEY`
(or `OPENAI_API_KEY`). A model format other than the server's declared one is chosen with
`openai:URL#MODEL?format=lab` (a lab model behind vLLM, which cannot say). Several base URLs,
`openai:URL1,URL2#MODEL`, make a pool of servers of one model (`pool.py`): each request goes to
the least-loaded server, and one that fails is taken out and tried again later.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence

from deliberate.backends.base import Capabilities, Completion, Generation, PromptInput, Scored, TokenLogprob, transcript
from deliberate.backends.pool import ServerPool
from deliberate.errors import BackendError, BadInput
from deliberate.params import SamplingParams

KEY_ENVS = ("DELIBERATE_OPENAI_API_KEY", "OPENAI_API_KEY")
CHAT_MARK = "\x00deliberate-chat\x00"  # a rendered conversation for a chat-only server: the messages as JSON


def parse_spec(spec: str) -> tuple[list[str], str, str | None]:
    """`openai:BASE_URL[,BASE_URL...]#MODEL[?format=STYLE]` -> (base_urls, model, style); several
    URLs make a pool of servers of the same model."""
    rest = spec.removeprefix("openai:")
    url, sep, model = rest.partition("#")
    style = None
    if "?format=" in model:
        model, _, style = model.partition("?format=")
    urls = [u.strip().rstrip("/") for u in url.split(",")]
    if not sep or not all(u.startswith(("http://", "https://")) for u in urls) or not model:
        raise BadInput(f"model spec {spec!r}: expected openai:BASE_URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#lab "
                       "(several servers: openai:URL1,URL2#MODEL).")
    return urls, model, style or None


class OpenAIBackend:
    """`generate` (and `score`, where the server echoes prompt logprobs) over HTTP."""

    def __init__(self, spec: str, *, concurrency: int = 16, timeout: float = 120.0, max_retries: int = 4,
                 api_key: str | None = None, **_local_options) -> None:
        self.spec = spec
        urls, self.model, style = parse_spec(spec)
        self.base_url = ",".join(urls)  # for messages; requests go through the pool
        key = api_key or next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None) or "none"
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="deliberate-openai", daemon=True).start()
        self._limit = asyncio.Semaphore(concurrency * len(urls))
        self.pool = ServerPool(urls, api_key=key, timeout=timeout, max_retries=max_retries)
        self.weights_id = f"openai:{self.base_url}#{self.model}"
        self._probe(style)

    def close(self) -> None:
        """Stop the backend's event loop and close its connections."""
        self.pool.close()
        self._loop.call_soon_threadsafe(self._loop.stop)

    # -- probing ---------------------------------------------------------------------------
    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _call(self, **kw):
        async def go():
            async with self._limit:
                return await self.pool.call(lambda client: client.completions.create(model=self.model, **kw))

        return self._run(go())

    def _probe(self, style: str | None) -> None:
        import openai

        try:
            async def models():
                return await self.pool.call(lambda client: client.models.list())

            listed = self._run(models()).data
        except openai.APIConnectionError:
            raise BackendError(f"no OpenAI-compatible server answers at {self.base_url}.") from None
        except openai.APIError as e:
            raise BackendError(f"{self.base_url}/models failed: {e}") from None
        about = next((m for m in listed if m.id == self.model), None)
        if about is None:
            raise BackendError(f"the server at {self.base_url} serves no model {self.model!r}; it serves: "
                               f"{', '.join(m.id for m in listed[:10])}.")
        self._about = about.model_extra or {}
        self.prompt_style = style or self._about.get("deliberate_prompt_style") or "completion"
        self.chat_only = False
        self.max_logprobs = 0
        for k in (20, 5, 1, None):
            try:
                r = self._call(prompt="1", max_tokens=2, temperature=0, logprobs=k)
            except openai.NotFoundError:  # no /completions: chat completions, which cannot continue a text
                self.chat_only = True
                break
            except openai.BadRequestError:
                continue
            lp = r.choices[0].logprobs
            if k and lp and lp.top_logprobs and lp.top_logprobs[0]:
                self.max_logprobs = min(k, max(len(t) for t in lp.top_logprobs if t))
                break
            if k is None:
                break
        if self.chat_only:
            self._probe_chat(style)
            return
        self.native_n = self.seeded = self.returns_ids = False
        try:  # a strict server may refuse what it does not offer: then it is not offered
            two = self._call(prompt="1", max_tokens=4, temperature=1.0, n=2, seed=1)
            self.native_n = len(two.choices) == 2
            again = self._call(prompt="1", max_tokens=4, temperature=1.0, n=2, seed=1)
            self.seeded = [c.text for c in two.choices] == [c.text for c in again.choices]
        except openai.BadRequestError:
            pass
        try:
            ids = self._call(prompt="1", max_tokens=2, temperature=0, extra_body={"return_token_ids": True})
            self.returns_ids = isinstance((ids.choices[0].model_extra or {}).get("token_ids"), list)
        except openai.BadRequestError:
            pass
        tok = self._tokenize("1 + 1")
        self.tokenizes = tok is not None
        self.echoes = bool(tok and self.max_logprobs) and self._probe_echo(tok["tokens"])
        ctx = self._about.get("max_model_len") or (tok or {}).get("max_model_len") or 4096
        self.capabilities = Capabilities(max_logprobs=self.max_logprobs, scoring=self.echoes, prefix_cache=False,
                                         chat_template=self.prompt_style == "chat", context_length=int(ctx))

    def _probe_echo(self, ids: list[int]) -> bool:
        """Does the server echo the prompt with a logprob per prompt token (what `score` reads)?
        A server that ignores `echo` returns the generated token's alone, and is not trusted."""
        import openai

        try:
            lp = self._echo(ids).choices[0].logprobs
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            return False
        vals = lp.token_logprobs if lp is not None else None
        return bool(vals) and len(vals) >= len(ids) and all(v is not None for v in vals[1:len(ids)])

    async def _echo_async(self, ids: list[int]):
        """The prompt ids echoed with their logprobs (one token generated: some servers refuse 0)."""
        async with self._limit:
            return await self.pool.call(lambda client: client.completions.create(
                model=self.model, prompt=list(ids), max_tokens=1, temperature=0, echo=True, logprobs=1))

    def _echo(self, ids: list[int]):
        return self._run(self._echo_async(ids))

    def _chat(self, **kw):
        async def go():
            async with self._limit:
                return await self.pool.call(lambda client: client.chat.completions.create(model=self.model, **kw))

        return self._run(go())

    def _probe_chat(self, style: str | None) -> None:
        """A chat-only server: prompts are conversations (`render_chat` keeps them as messages)."""
        import openai

        hi = [{"role": "user", "content": "1"}]
        for k in (20, 5, 1, 0):
            try:
                r = self._chat(messages=hi, max_tokens=2, temperature=0, logprobs=True, top_logprobs=k)
            except openai.NotFoundError:
                raise BackendError(f"{self.base_url} has neither /completions nor /chat/completions.") from None
            except openai.BadRequestError:
                continue
            content = r.choices[0].logprobs.content if r.choices[0].logprobs else None
            if content:
                self.max_logprobs = min(k, max(len(t.top_logprobs) for t in content))
            break
        two = self._chat(messages=hi, max_tokens=4, temperature=1.0, n=2, seed=1)
        self.native_n = len(two.choices) == 2
        again = self._chat(messages=hi, max_tokens=4, temperature=1.0, n=2, seed=1)
        self.seeded = [c.message.content for c in two.choices] == [c.message.content for c in again.choices]
        self.returns_ids, self.tokenizes = False, self._tokenize("1 + 1") is not None
        self.prompt_style = "chat" if style is None else style
        ctx = int(self._about.get("max_model_len") or 4096)
        self.capabilities = Capabilities(max_logprobs=self.max_logprobs, scoring=False, prefix_cache=False,
                                         chat_template=True, context_length=ctx)

    def _tokenize(self, text: str, special: bool = True) -> dict | None:
        import httpx

        try:
            r = self.pool.post("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": special})
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 and isinstance(r.json().get("tokens"), list) else None

    # -- tokens ----------------------------------------------------------------------------
    def _need_tokenizer(self) -> None:
        if not self.tokenizes:
            raise BackendError(f"the server at {self.base_url} does not tokenize (no /tokenize): tree search and "
                               "token counts need it (vLLM and deliberate serve have it).")

    def encode(self, text: str) -> list[int]:
        self._need_tokenizer()
        return self._tokenize(text)["tokens"]  # type: ignore[index]

    def encode_continuation(self, text: str) -> list[int]:
        self._need_tokenizer()
        return self._tokenize(text, special=False)["tokens"]  # type: ignore[index]

    def decode(self, ids: Sequence[int]) -> str:
        self._need_tokenizer()
        r = self.pool.post("/detokenize", {"model": self.model, "tokens": list(ids)})
        if r.status_code != 200:
            raise BackendError(f"{self.base_url}: /detokenize answered {r.status_code}: {r.text[:200]}")
        return r.json()["prompt"]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.encode(t)) for t in texts]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        if self.chat_only:  # the conversation itself travels, as JSON behind a marker generate() reads back
            return CHAT_MARK + json.dumps(messages, ensure_ascii=False)
        r = self.pool.post("/tokenize", {"model": self.model, "messages": messages})
        if r.status_code == 200 and r.json().get("tokens"):
            return self.decode(r.json()["tokens"])  # the server's own chat template
        return transcript(messages)

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Scored]:
        """Logprob of each continuation token given its prompt, read off the server's echo of the
        joined ids (prompt and continuation tokenized apart, as the local backends join them)."""
        if not self.echoes:
            raise BackendError(f"{self.spec} cannot score a given continuation: the server does not echo prompt "
                               "logprobs (vLLM's server does).")
        if len(prompts) != len(continuations):
            raise BadInput(f"got {len(prompts)} prompts but {len(continuations)} continuations.")
        pairs = [(self.encode(p), self.encode_continuation(c)) for p, c in zip(prompts, continuations, strict=True)]

        import openai

        async def all_echoes():
            return await asyncio.gather(*(self._echo_async(p + c) for p, c in pairs))

        try:
            echoed = self._run(all_echoes())
        except openai.APIError as e:
            raise BackendError(f"{self.spec}: scoring failed: {type(e).__name__}: {e}") from None
        out = []
        for (p, c), r in zip(pairs, echoed, strict=True):
            lp = r.choices[0].logprobs
            vals, toks = lp.token_logprobs[len(p):len(p) + len(c)], lp.tokens[len(p):len(p) + len(c)]
            if len(vals) != len(c) or any(v is None for v in vals):
                raise BackendError(f"{self.spec} echoed {len(lp.token_logprobs)} logprobs for {len(p) + len(c)} "
                                   "prompt tokens: it cannot score.")
            out.append(Scored(list(toks), [float(v) for v in vals], len(p)))
        return out

    # -- generation ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[PromptInput],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Generation]:
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(plist) != len(prompts):
            raise BadInput(f"got {len(prompts)} prompts but {len(plist)} sampling params.")
        return self._run(self._generate_all(list(prompts), plist))

    async def _generate_all(self, prompts: list[PromptInput], plist: list[SamplingParams]) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p, sp) for p, sp in zip(prompts, plist, strict=True))))

    def _messages(self, prompt: PromptInput) -> list[dict[str, str]]:
        if not isinstance(prompt, str):
            raise BackendError(f"{self.spec} is chat-only: it cannot continue token ids (tree search needs "
                               "/completions).")
        if not prompt.startswith(CHAT_MARK):
            return [{"role": "user", "content": prompt}]
        try:
            return json.loads(prompt[len(CHAT_MARK):])
        except ValueError:
            raise BackendError(f"{self.spec} is chat-only: it cannot continue a partial answer (this strategy "
                               "appends to its prompts and needs /completions).") from None

    async def _request(self, prompt: PromptInput, p: SamplingParams, n: int, seed: int | None):
        import openai

        if self.chat_only:
            return await self._chat_request(prompt, p, n, seed)

        if p.logprobs is not None and p.logprobs > self.max_logprobs:
            raise BackendError(f"{self.spec} returns at most {self.max_logprobs} top logprobs; {p.logprobs} asked.")
        extra = {"return_token_ids": True} if self.returns_ids else {}
        if p.top_k:
            extra["top_k"] = p.top_k
        async with self._limit:
            try:
                return await self.pool.call(lambda client: client.completions.create(
                    model=self.model, prompt=prompt if isinstance(prompt, str) else list(prompt), n=n,
                    max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, stop=list(p.stop) or None,
                    seed=seed, logprobs=p.logprobs if p.logprobs is not None else (0 if self.max_logprobs else None),
                    extra_body=extra or None))
            except openai.BadRequestError as e:
                raise BadInput(f"{self.spec} refused the request: {e.message}") from None
            except openai.APIError as e:
                raise BackendError(f"{self.spec}: {type(e).__name__}: {e}") from None

    async def _chat_request(self, prompt: PromptInput, p: SamplingParams, n: int, seed: int | None):
        import openai

        if p.logprobs is not None and p.logprobs > self.max_logprobs:
            raise BackendError(f"{self.spec} returns at most {self.max_logprobs} top logprobs; {p.logprobs} asked.")
        async with self._limit:
            try:
                messages = self._messages(prompt)
                return await self.pool.call(lambda client: client.chat.completions.create(
                    model=self.model, messages=messages, n=n, max_tokens=p.max_tokens,
                    temperature=p.temperature, top_p=p.top_p, stop=list(p.stop) or None, seed=seed,
                    logprobs=p.logprobs is not None or None, top_logprobs=p.logprobs))
            except openai.BadRequestError as e:
                raise BadInput(f"{self.spec} refused the request: {e.message}") from None
            except openai.APIError as e:
                raise BackendError(f"{self.spec}: {type(e).__name__}: {e}") from None

    async def _one(self, prompt: PromptInput, p: SamplingParams) -> Generation:
        if self.native_n or p.n == 1:
            responses = [await self._request(prompt, p, p.n, p.seed)]
        else:  # the server ignores n: n requests, each seeded apart
            responses = await asyncio.gather(*(self._request(prompt, p, 1, None if p.seed is None else p.seed + j)
                                               for j in range(p.n)))
        comps = [await asyncio.to_thread(self._completion, c, p, r) for r in responses for c in r.choices]
        first = responses[0].usage
        prompt_tokens = first.prompt_tokens if first else 0
        cached = sum(_cached(r.usage) for r in responses)
        if self.native_n:
            cached += prompt_tokens * (p.n - 1)  # one prefill read for the n samples, as the local backend counts
        text = prompt if isinstance(prompt, str) else ""
        return Generation(text, prompt_tokens, comps, prompt_ids=[] if isinstance(prompt, str) else list(prompt),
                          cached_tokens=cached)

    def _completion(self, c, p: SamplingParams, response) -> Completion:
        if self.chat_only:
            content = c.logprobs.content if c.logprobs is not None and c.logprobs.content else None
            lps = [TokenLogprob(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs][: p.logprobs or 0])
                   for t in content] if content is not None else None
            text = c.message.content or ""
            if lps is not None:
                n = len(lps)
            elif self.tokenizes:
                n = len(self.encode_continuation(text))
            else:  # the response's usage, shared among its choices
                n = (response.usage.completion_tokens if response.usage else 0) // max(1, len(response.choices))
            return Completion(text, n, "length" if c.finish_reason == "length" else "stop",
                              lps if p.logprobs is not None else None, None, [])
        lps = None
        if c.logprobs is not None and c.logprobs.tokens is not None:
            tops = c.logprobs.top_logprobs or [None] * len(c.logprobs.tokens)
            lps = [TokenLogprob(t, lp if lp is not None else 0.0,
                                sorted((top or {}).items(), key=lambda kv: -kv[1])[: p.logprobs or 0])
                   for t, lp, top in zip(c.logprobs.tokens, c.logprobs.token_logprobs, tops, strict=True)]
        ids = (c.model_extra or {}).get("token_ids") or []
        if not ids and self.tokenizes and c.text:
            ids = self.encode_continuation(c.text)
        stop = (c.model_extra or {}).get("stop_reason")
        n_tokens = len(lps) if lps is not None else len(ids)
        if not n_tokens and c.text:  # nothing to count by: the response's usage, shared among its choices
            n_tokens = (response.usage.completion_tokens if response.usage else 0) // max(1, len(response.choices))
        return Completion(c.text, n_tokens, "length" if c.finish_reason == "length" else "stop",
                          lps if p.logprobs is not None else None, stop if isinstance(stop, str) else None, list(ids))


def _cached(usage) -> int:
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return int(getattr(details, "cached_tokens", 0) or 0)
