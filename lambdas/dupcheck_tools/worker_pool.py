"""A process pool that outlives its processes: what backfill's hashing and the duplicate report's
verification run their jobs in.

A worker killed from outside (the out-of-memory killer's SIGKILL) breaks a ProcessPoolExecutor
for good: every job in it, and every job submitted after, fails with BrokenProcessPool. Here the
broken pool is replaced at once and the jobs it held are run again, each one alone in the new
pool (nothing else is submitted meanwhile), so the job that kills a worker is told from the
jobs that were only beside it: a job fails, with `WorkerDied`, only when a worker dies while it
runs alone, its second death. A job is a pure function of its payload, so running it again is
safe.

Why not loky (joblib's reusable executor): it replaces a broken executor too, but fails the
jobs it held just as concurrent.futures does, so telling the job that killed a worker from its
neighbours would still be ours to write; it would add a dependency for the ten lines that
rebuild a pool (docs/architecture.md, "Worker processes").
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from typing import Any

log = logging.getLogger(__name__)

DEATHS = 2  # a job whose worker died this often (the last time alone in the pool) fails
# Pools in a row that died before finishing any job: the processes cannot start (their
# initializer fails, a module is missing), so every job fails rather than starting more.
FRUITLESS = 4


class WorkerDied(Exception):
    """A job's worker process died twice while running it, the second time with no other job
    beside it: the job itself kills its worker (most likely it needs more memory than there is)."""


@dataclass(eq=False)
class _Job:
    fn: Callable[[Any], Any]
    payload: Any
    future: Future[Any] = field(default_factory=Future)
    deaths: int = 0
    # A job split after a death (`one_by_one`): its parts' results, and the parts still to end.
    parts: list[Any] = field(default_factory=list)
    left: int = 0
    parent: tuple[_Job, int] | None = None  # a part: the job it is part of, and which part
    settled: bool = False  # its future's result is decided (set outside the lock, just after)

    def settle(self, into: list[Callable[[], Any]], *, result: Any = None, error: BaseException | None = None) -> None:
        """Decide the future's result once (under the pool's lock); `into` sets it, after the lock."""
        if self.settled:
            return
        self.settled = True
        into.append(partial(self.future.set_exception, error) if error is not None
                    else partial(self.future.set_result, result))  # fmt: skip


class RestartingPool:
    """`submit` and `shutdown` as a ProcessPoolExecutor's, with its processes replaced when one
    dies (module docstring). `make` builds each pool (its size, start method, initializer).

    With `one_by_one`, payloads and results are lists (a job is a few items): a job that was in a
    pool that broke runs again one item at a time, so the item that kills its worker is found
    among the job's; its result is the items' results, in order. `on_died(payload, error)` is the
    result of a job (or item) that died twice; without it, the job's future raises WorkerDied."""

    def __init__(
        self, make: Callable[[], ProcessPoolExecutor], *, what: str = "worker process", one_by_one: bool = False,
        on_died: Callable[[Any, WorkerDied], Any] | None = None,
    ) -> None:  # fmt: skip
        self._make, self.what, self.one_by_one, self.on_died = make, what, one_by_one, on_died
        self._pool = make()
        # Broken pools' manager threads: each ends its pool's other processes and joins them.
        self._retired: list[threading.Thread] = []
        self._generation = 0  # pools made after the first: the deaths seen
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._waiting: deque[_Job] = deque()  # not sent while a suspect runs alone
        self._suspects: deque[_Job] = deque()  # in a pool that broke: each runs again alone
        self._running: set[_Job] = set()
        self._settling = 0  # results being handed to their callers
        self._fruitless = 0  # pools replaced since a job last finished
        self._broken: WorkerDied | None = None  # set once the processes cannot be kept alive
        self._closed = False
        self._killed = False  # shut down with `kill`: a death is the end, not a reason to restart

    @property
    def restarts(self) -> int:
        """How many times a dead worker's pool was replaced."""
        return self._generation

    def submit(self, fn: Callable[[Any], Any], payload: Any) -> Future[Any]:
        job = _Job(fn, payload)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            if self._broken is not None:
                job.future.set_exception(self._broken)
                return job.future
            self._waiting.append(job)
            self._pump()
        return job.future

    def shutdown(self, *, wait: bool = True, cancel_futures: bool = False, kill: bool = False) -> None:
        """Stop the pool: with `wait`, after every job submitted has its result (jobs run again
        after a death included); with `cancel_futures`, the jobs not yet started are cancelled;
        with `kill`, the jobs running too (their processes are killed: a server stopping now,
        whose jobs' results nobody wants; their futures raise CancelledError)."""
        with self._lock:
            self._closed = True
            self._killed = kill
            if cancel_futures or kill:
                for job in self._waiting:
                    job.future.cancel()
                for job in {self._top(job) for job in self._suspects}:
                    if not job.settled:  # running: it cannot be cancelled()
                        job.settled = True
                        job.future.set_exception(CancelledError())
                self._waiting.clear()
                self._suspects.clear()
            if kill:
                # No public way before Python 3.14's terminate_workers(); they ignore SIGTERM.
                for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                    process.kill()
            elif wait:
                while self._busy():
                    self._idle.wait()
            pool = self._pool  # read after the wait: a death while waiting replaced it
        pool.shutdown(wait=wait, cancel_futures=cancel_futures or kill)  # killed: only reaps them
        if wait or kill:
            # A broken pool's other processes end on its own thread: waited for, so none outlives this.
            for thread in self._retired:
                thread.join()
            self._retired.clear()

    # -- under the lock ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send what may run now: a suspect alone once the pool is empty, else every waiting job."""
        if self._suspects:
            if not self._running:
                self._send(self._suspects.popleft())
            return
        while self._waiting:
            self._send(self._waiting.popleft())

    def _send(self, job: _Job) -> None:
        if job.parent is None and job.deaths == 0 and not job.future.set_running_or_notify_cancel():
            return  # cancelled while it waited (a job sent again is running already)
        self._running.add(job)
        generation = self._generation
        try:
            inner = self._pool.submit(job.fn, job.payload)
        except BrokenProcessPool:  # broke before this job reached it: not this job's doing
            self._replace(generation)
            inner = self._pool.submit(job.fn, job.payload)
            generation = self._generation
        except Exception as exc:  # noqa: BLE001 - e.g. a payload that cannot be pickled: this job's error
            self._running.discard(job)
            settle: list[Callable[[], Any]] = []
            self._ended(job, settle, error=exc)
            for done in settle:
                done()
            return
        inner.add_done_callback(lambda done: self._finished(job, generation, done))

    def _replace(self, generation: int) -> None:
        """A new pool for the one of `generation`, unless that was replaced already."""
        if generation != self._generation:
            return
        # Its thread is kept to be joined: a second shutdown(wait=True) of this pool would not wait.
        thread = getattr(self._pool, "_executor_manager_thread", None)
        if thread is not None:
            self._retired.append(thread)
        self._pool.shutdown(wait=False)  # its jobs have failed already, or fail with BrokenProcessPool
        self._generation += 1
        self._fruitless += 1
        log.warning("a %s died; starting another (restart %d)", self.what, self._generation)
        self._pool = self._make()

    # -- the pool's own thread --------------------------------------------------------------------

    def _finished(self, job: _Job, generation: int, inner: Future[Any]) -> None:
        settle: list[Callable[[], Any]] = []  # run outside the lock: the callers' callbacks run there
        with self._lock:
            self._running.discard(job)
            error = CancelledError() if inner.cancelled() else inner.exception()
            if isinstance(error, BrokenProcessPool) and self._killed:
                self._ended(job, settle, error=CancelledError())
            elif isinstance(error, BrokenProcessPool):
                self._died(job, generation, settle)
            elif error is not None:
                self._ended(job, settle, error=error)
            else:
                self._fruitless = 0
                self._ended(job, settle, result=inner.result())
            self._settling += len(settle)
            self._pump()
        for done in settle:
            try:
                done()
            finally:
                with self._lock:
                    self._settling -= 1
                    if not self._busy():
                        self._idle.notify_all()

    def _died(self, job: _Job, generation: int, settle: list[Callable[[], Any]]) -> None:
        """`job`'s worker died: run it again alone (in parts, `one_by_one`), or it has failed."""
        job.deaths += 1
        self._replace(generation)
        if self._fruitless >= FRUITLESS and self._broken is None:
            self._broken = WorkerDied(f"{self._fruitless} pools of {self.what}es in a row died before finishing "
                                      "any job: they cannot start (see the log)")  # fmt: skip
            log.error("%s", self._broken)
        if self._broken is not None:
            for top in {self._top(j) for j in (job, *self._waiting, *self._suspects)}:
                top.settle(settle, error=self._broken)
            self._waiting.clear()
            self._suspects.clear()
        elif job.deaths >= DEATHS:
            died = WorkerDied(f"its {self.what} died {job.deaths} times while it ran (killed from outside: most "
                              "likely out of memory)")  # fmt: skip
            if self.on_died is not None:
                self._ended(job, settle, result=self.on_died(job.payload, died))
            else:
                self._ended(job, settle, error=died)
        elif self.one_by_one and len(job.payload) > 1:
            job.parts, job.left = [None] * len(job.payload), len(job.payload)
            self._suspects.extend(_Job(job.fn, [item], deaths=job.deaths, parent=(job, i))
                                  for i, item in enumerate(job.payload))  # fmt: skip
        else:
            self._suspects.append(job)

    def _ended(self, job: _Job, settle: list[Callable[[], Any]], *, result: Any = None,
               error: BaseException | None = None) -> None:  # fmt: skip
        """`job` has its result (or error): its future's, or its part of the job it was split from."""
        if job.parent is None:
            job.settle(settle, result=result, error=error)
            return
        whole, index = job.parent
        if error is not None:
            whole.settle(settle, error=error)
            return
        whole.parts[index] = result
        whole.left -= 1
        if not whole.left:
            whole.settle(settle, result=[item for part in whole.parts for item in part])

    @staticmethod
    def _top(job: _Job) -> _Job:
        return job.parent[0] if job.parent is not None else job

    def _busy(self) -> bool:
        return bool(self._waiting or self._suspects or self._running or self._settling)
