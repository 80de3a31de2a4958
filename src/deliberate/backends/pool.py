"""A pool of OpenAI-compatible servers serving one model: `openai:URL1,URL2,...#MODEL`.

Each request goes to the server with the fewest requests in flight (ties to the one that has
served fewest), so eight servers take eight times the load of one. A server that fails (no
connection, a timeout, a 5xx) is taken out for a cool-down that doubles with each failure in a
row (up to a minute) and is tried again after it; the request moves to another server. Only when
every server is out does a request wait, and it fails once `attempts` tries are spent.

Written by hand because the openai client retries one base URL only, and a load balancer in front
of the servers (nginx, Envoy) is a separate service a user would have to run and watch; this is
the few lines of routing that job needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

COOLDOWN_S = 2.0  # first cool-down of a failed server; it doubles per failure in a row, up to MAX_COOLDOWN_S
MAX_COOLDOWN_S = 60.0


@dataclass
class Server:
    base_url: str
    client: Any  # openai.AsyncOpenAI
    http: Any  # httpx.Client
    inflight: int = 0
    served: int = 0
    failures: int = 0  # in a row
    down_until: float = 0.0

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def failed(self) -> None:
        self.failures += 1
        self.down_until = time.monotonic() + min(MAX_COOLDOWN_S, COOLDOWN_S * 2 ** (self.failures - 1))

    def worked(self) -> None:
        self.failures, self.served = 0, self.served + 1


class ServerPool:
    """Routes requests over `urls`; with one URL it is that server, retried by the openai client."""

    def __init__(self, urls: list[str], *, api_key: str, timeout: float, max_retries: int) -> None:
        import httpx
        import openai

        alone = len(urls) == 1
        self.servers = [Server(u, openai.AsyncOpenAI(base_url=u, api_key=api_key, timeout=timeout,
                                                     max_retries=max_retries if alone else 0),
                               httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}))
                        for u in urls]
        self.attempts = 1 if alone else max(max_retries, 1) + len(urls)

    def close(self) -> None:
        for s in self.servers:
            s.http.close()

    def up(self) -> list[Server]:
        now = time.monotonic()
        return [s for s in self.servers if s.down_until <= now]

    def pick(self) -> Server | None:
        up = self.up()
        return min(up, key=lambda s: (s.inflight, s.served)) if up else None

    async def call(self, make: Callable[[Any], Awaitable[Any]]) -> Any:
        """`make(client)` on the least-loaded server that is up; on a server's failure, on another."""
        import openai

        last: BaseException | None = None
        for _ in range(self.attempts):
            server = self.pick()
            if server is None:  # all out: wait for the first to come back
                await asyncio.sleep(max(0.0, min(s.down_until for s in self.servers) - time.monotonic()))
                server = self.pick() or min(self.servers, key=lambda s: s.down_until)
            server.inflight += 1
            try:
                result = await make(server.client)
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as e:
                server.failed()
                last = e
                continue
            finally:
                server.inflight -= 1
            server.worked()
            return result
        assert last is not None
        raise last

    def post(self, path: str, payload: dict):
        """A plain POST under a server's root (vLLM's /tokenize, /detokenize), moving on from a
        server that does not answer."""
        import httpx

        last: BaseException | None = None
        answer = None  # a 5xx, returned when no server does better
        for server in sorted(self.up() or self.servers, key=lambda s: s.inflight):
            try:
                r = server.http.post(f"{server.root}{path}", json=payload)
            except httpx.HTTPError as e:
                server.failed()
                last = e
                continue
            if r.status_code < 500:
                return r
            server.failed()
            answer = r
        if answer is not None:
            return answer
        assert last is not None
        raise last
