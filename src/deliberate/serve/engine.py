"""The batcher: requests that arrive together are solved together, in shared backend calls.

One worker thread owns the backend (torch runs one forward at a time anyway). It takes the first
waiting job and goes on taking jobs while each arrives within `batch_window_ms` of the one before
(at most `batch_wait_max_ms` after the first): 32 clients that send at once reach the server one
HTTP parse apart, over more than a fixed 5 ms, and a fixed window split them into two batches,
the second waiting for the whole first (the serve bench's 9.8x). Then it solves the batch: every
pass-through request in one `generate` call (each with its own sampling settings), and the
search requests grouped by strategy, options and seed, each group one `Strategy.run` over its
problems, so a tree search of 32 requests expands 32 trees per forward. Identical search
requests (same question, strategy, options and seed) share one problem and get the same,
deterministic, answer.

Every request is billed through the meter as a problem of its own, so its usage is exact under
batching; the meter starves a request whose client left or whose time ran out (its search ends
at its next backend call, the batch goes on) and shows each generation to a streaming request.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import count

from deliberate.backends.base import Backend, Generation, PromptInput
from deliberate.backends.metered import Compute, Meter
from deliberate.params import SamplingParams
from deliberate.search import Result, Strategy, get_strategy
from deliberate.solving import adhoc_task, question_lang
from deliberate.tasks.base import Problem

_ids = count(1)
STRATEGIES_KEPT = 64  # built strategies kept (each may hold a loaded verifier); the least recently used go


@dataclass(eq=False)
class Job:
    """One request's work: pass-through (`prompts` with `params`) or a search (`question` with
    `strategy`). The server waits on `future`; `watch` sees its generations as they come."""

    prompts: list[PromptInput] = field(default_factory=list)
    params: list[SamplingParams] = field(default_factory=list)
    question: str = ""
    strategy: str | None = None
    options: dict = field(default_factory=dict)
    seed: int = 0
    deadline: float = float("inf")
    watch: Callable[[Generation], None] | None = None
    token_ids: bool = False  # the response carries the generated token ids (vLLM's return_token_ids)
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: str = field(default_factory=lambda: f"req-{next(_ids)}")
    waiters: list = field(default_factory=list)  # the server's asyncio views of `future`

    @property
    def search(self) -> bool:
        return self.strategy is not None

    def group(self) -> tuple:
        return ("search", self.strategy, tuple(sorted(self.options.items())), self.seed) if self.search else ("raw",)

    def stopped(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


@dataclass
class Outcome:
    """What a job got: the generations (pass-through) or the search's result, and its usage."""

    generations: list[Generation] | None
    result: Result | None
    compute: Compute
    expired: bool = False


class QueueFull(Exception):
    """More requests wait than the server's queue holds (answered 429)."""


class Engine:
    """Owns the backend and solves submitted jobs in batches, on one worker thread."""

    def __init__(self, backend: Backend, *, queue_size: int = 256, window_ms: float = 5.0, wait_max_ms: float = 100.0,
                 max_batch: int = 64, max_search_tokens: int | None = None) -> None:
        self.backend = backend
        self.queue_size, self.window_s, self.max_batch = queue_size, window_ms / 1000, max_batch
        self.wait_max_s = max(wait_max_ms, window_ms) / 1000
        self.cap = max_search_tokens
        self._queue: queue.Queue[Job] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._strategies: OrderedDict[tuple, Strategy] = OrderedDict()
        self.batches = 0  # batches solved (a test checks that concurrent requests share them)
        self._thread = threading.Thread(target=self._loop, name="deliberate-engine", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def strategy(self, name: str, options: dict) -> Strategy:
        """A strategy built once per name and options (a trained verifier loads once), checked
        against the backend before any request is queued."""
        key = (name, tuple(sorted(options.items())))
        with self._build_lock:
            if key in self._strategies:
                self._strategies.move_to_end(key)
                return self._strategies[key]
            strat = get_strategy(name, **options)
            strat.check(Meter(self.backend), adhoc_task("x"))
            self._strategies[key] = strat
            while len(self._strategies) > STRATEGIES_KEPT:
                self._strategies.popitem(last=False)
            return strat

    def submit(self, job: Job) -> Future:
        with self._lock:
            if self._pending >= self.queue_size:
                raise QueueFull(f"the server's queue is full ({self.queue_size} requests); retry later.")
            self._pending += 1
        job.future.add_done_callback(lambda _: self._done())
        self._queue.put(job)
        return job.future

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        """Stop the worker after the batch it is on (the app's shutdown)."""
        self._queue.put(None)  # type: ignore[arg-type]

    def _loop(self) -> None:
        while True:
            head = self._queue.get()
            if head is None:
                return
            batch = [head]
            last = time.monotonic()
            limit = last + self.wait_max_s
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get(timeout=max(0.0, min(last + self.window_s, limit) - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
                last = time.monotonic()
            self.batches += 1
            groups: dict[tuple, list[Job]] = {}
            for job in batch:
                if job.stopped():  # its client left, or its time ran out, while it waited
                    job.future.set_result(Outcome(None, None, Compute(), expired=True))
                else:
                    groups.setdefault(job.group(), []).append(job)
            for jobs in groups.values():
                try:
                    self._solve(jobs)
                except Exception as e:
                    if len(jobs) == 1:  # a backend failure answers its request (400 or 502); the loop goes on
                        if not jobs[0].future.done():
                            jobs[0].future.set_exception(e)
                        continue
                    for job in jobs:  # one bad request must not fail the rest: each alone
                        if job.future.done():
                            continue
                        try:
                            self._solve([job])
                        except Exception as one:
                            if not job.future.done():
                                job.future.set_exception(one)

    def _meter(self, owners: dict[str, list[Job]]) -> Meter:
        def stopped(owner) -> bool:
            return all(j.stopped() for j in owners.get(owner, ()))

        def watch(owner, gen: Generation) -> None:
            for j in owners.get(owner, ()):
                if j.watch is not None:
                    j.watch(gen)

        return Meter(self.backend, cap=self.cap if any(j.search for js in owners.values() for j in js) else None,
                     stopped=stopped, watch=watch)

    def _solve(self, jobs: list[Job]) -> None:
        if not jobs[0].search:
            meter = self._meter({j.id: [j] for j in jobs})
            prompts = [p for j in jobs for p in j.prompts]
            params = [p for j in jobs for p in j.params]
            owners = [j.id for j in jobs for _ in j.prompts]
            gens = iter(meter.generate(prompts, params, owners=owners))
            for j in jobs:
                j.future.set_result(Outcome([next(gens) for _ in j.prompts], None, meter.usage_of(j.id),
                                            expired=j.id in meter.starved))
            return
        first = jobs[0]
        strat = self.strategy(first.strategy, first.options)  # type: ignore[arg-type]
        by_question: dict[str, list[Job]] = {}
        for j in jobs:
            by_question.setdefault(j.question, []).append(j)
        problems = {q: Problem("q-" + hashlib.sha1(q.encode()).hexdigest()[:16], q, "") for q in by_question}
        meter = self._meter({problems[q].id: js for q, js in by_question.items()})
        by_lang: dict[str, list[str]] = {}
        for q in by_question:  # one run per task: the questions' language
            by_lang.setdefault(question_lang(q), []).append(q)
        for qs in by_lang.values():
            results = strat.run([problems[q] for q in qs], meter, adhoc_task(qs[0]), seed=first.seed)
            for q, r in zip(qs, results, strict=True):
                for j in by_question[q]:
                    j.future.set_result(Outcome(None, r, r.compute, expired=problems[q].id in meter.starved))

