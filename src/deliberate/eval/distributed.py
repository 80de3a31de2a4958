"""`deliberate eval --ray [ADDRESS]`: the batches of an evaluation solved by Ray actors.

Each actor loads its own backend (the run's model spec) and solves whole batches with the same
`solve_and_grade` a local run uses; rows come back to the driver, which alone writes them
(`evaluate`), so the output folder, its keys and its resume are those of a local run: a killed
driver resumes with the same command and loses no finished row; rows are appended only once
each. A worker that dies (Ray reports its actor lost) is replaced and its batch runs again; a
batch that kills `max_deaths` workers is split into single problems, and a single problem that
kills `max_deaths` workers becomes an error row, so one poison problem cannot stall the run.

Ray gives placement, the object store and failure detection; what is here is only the
scheduling of batches onto actors and the retry rule, which Ray leaves to the application.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

from deliberate.errors import BackendError, DeliberateError
from deliberate.eval.runner import Executor, batch_rows, error_row
from deliberate.search.base import Strategy
from deliberate.tasks.base import Problem, Task


class WorkerDied(DeliberateError):
    """A problem whose batch killed its Ray worker every time it ran."""


class EvalWorker:
    """One Ray actor: a backend, a meter with the run's caps, the task and the strategy."""

    def __init__(self, model: str, backend_options: dict, task: Task, strategy: tuple[type[Strategy], object],
                 seed: int, max_tokens_per_problem: int | None, problem_timeout_s: float | None) -> None:
        from deliberate.backends import load_backend
        from deliberate.backends.metered import Meter

        self.meter = Meter(load_backend(model, **backend_options), max_tokens_per_problem, problem_timeout_s)
        cls, config = strategy  # rebuilt here: the driver's copy is bound to the driver's backend
        self.task, self.strategy, self.seed, self.cap = task, cls(config), seed, max_tokens_per_problem

    def pid(self) -> int:
        import os

        return os.getpid()

    def solve(self, batch: list[Problem]) -> tuple[list[dict], dict[str, BaseException]]:
        return batch_rows(self.task, self.meter, self.strategy, batch, self.seed, self.cap is not None)


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` ("auto": the one `ray start` runs here), or start a local
    one for this process (no address)."""
    try:
        import ray
    except ImportError as e:
        raise BackendError("--ray needs Ray: pip install 'deliberate[ray]'.") from e
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def ray_executor(model: str, backend_options: dict, task: Task, strategy: Strategy, seed: int, *, workers: int,
                 cpus_per_worker: float = 1, gpus_per_worker: float = 0, max_tokens_per_problem: int | None = None,
                 problem_timeout_s: float | None = None, max_deaths: int = 2, actors: list | None = None) -> Executor:
    """An `evaluate` executor over `workers` Ray actors (Ray must be started: `start_ray`).
    `actors`, when given, is filled with the live actors (a test kills one). Ray hides GPUs from
    an actor that asks for none: a GPU model needs `gpus_per_worker`."""
    import ray
    from ray.exceptions import RayActorError

    Remote = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(EvalWorker)
    recipe = (type(strategy), strategy.config)

    def spawn():
        actor = Remote.remote(model, backend_options, task, recipe, seed, max_tokens_per_problem, problem_timeout_s)
        if actors is not None:
            actors.append(actor)
        return actor

    def run(batches: list[list[Problem]]) -> Iterator[tuple[list[Problem], list[dict], dict]]:
        queue = deque(batches)
        idle = [spawn() for _ in range(min(workers, len(batches)))]
        running: dict = {}  # object ref -> (actor, batch)
        deaths: Counter = Counter()
        while queue or running:
            while queue and idle:
                actor, batch = idle.pop(), queue.popleft()
                running[actor.solve.remote(batch)] = (actor, batch)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, batch = running.pop(ref)
            try:
                rows, failures = ray.get(ref)
            except RayActorError:
                if actors is not None and actor in actors:
                    actors.remove(actor)
                idle.append(spawn())  # a fresh worker in its place
                key = tuple(p.id for p in batch)
                deaths[key] += 1
                if deaths[key] < max_deaths:
                    queue.appendleft(batch)
                elif len(batch) > 1:  # find the problem that kills: one at a time
                    queue.extendleft([p] for p in reversed(batch))
                else:
                    e = WorkerDied(f"the problem killed its Ray worker {deaths[key]} times")
                    yield batch, [error_row(batch[0], e)], {}
                continue
            idle.append(actor)
            yield batch, rows, failures
        for actor in idle:
            ray.kill(actor)

    return run
