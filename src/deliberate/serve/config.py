"""`deliberate serve`'s settings: where it listens and the caps every request is held to."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from deliberate.errors import BadInput

API_KEY_ENV = "DELIBERATE_API_KEY"  # the key clients must send, when the server is given one


def opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class ServeConfig:
    model: str = opt("lab", "model spec served (lab, smollm2, gguf:PATH, hf:ID, a directory)")
    host: str = opt("127.0.0.1", "address to listen on (anything but loopback needs --api-key)")
    port: int = opt(8000, "port to listen on")
    api_key: str | None = opt(None, f"key clients must send as a Bearer token (or ${API_KEY_ENV})")
    threads: int | None = opt(None, "torch CPU threads (default: torch's)")
    seed: int = opt(0, "seed of requests that send none (the same seed gives the same answer)")
    max_n: int = opt(16, "largest n a request may ask (choices, or a strategy's samples)")
    max_tokens: int = opt(2048, "largest max_tokens a request may ask")
    max_iterations: int = opt(64, "largest iterations a strategy's request may ask (mcts, rstar)")
    max_search_tokens: int = opt(32_768, "hard cap on the tokens one request's search generates")
    max_body_bytes: int = opt(1_000_000, "largest request body in bytes (413 above it)")
    queue_size: int = opt(256, "requests waiting or running at most; more are answered 429")
    request_timeout: float = opt(300.0, "seconds a request may run before it is answered 504")
    batch_window_ms: float = opt(5.0, "the batcher takes requests into one batch while each arrives within this "
                                      "many ms of the one before")
    batch_wait_max_ms: float = opt(100.0, "the longest the first request of a batch waits for others")
    max_batch: int = opt(64, "requests solved in one batch at most")
    trees_kept: int = opt(64, "search trees kept for /v1/trees/ID (the oldest go first)")

    def __post_init__(self) -> None:
        self.api_key = self.api_key or os.environ.get(API_KEY_ENV) or None
        for name in ("max_n", "max_tokens", "max_iterations", "max_search_tokens", "max_body_bytes", "queue_size",
                     "max_batch", "trees_kept"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if self.request_timeout <= 0 or self.batch_window_ms < 0 or self.batch_wait_max_ms < 0:
            raise BadInput("--request-timeout must be > 0, --batch-window-ms and --batch-wait-max-ms >= 0.")
        if not 0 < self.port < 65536:
            raise BadInput(f"--port must be in 1..65535, got {self.port}.")
        if not self.loopback and not self.api_key:
            raise BadInput(f"listening on {self.host} reaches other machines: set --api-key (or ${API_KEY_ENV}).")

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
