"""The local server gives the memory of a load back to the system once the load is over.

After a 5-minute mixed load (issue 67) the server stayed at 419 MB where it idled at 148 MB:
memory free inside glibc's heaps, not in use. glibc returns a heap's free pages only from its
top; the decoder trims after large decodes (core/pictures/imaging.py, `give_back_memory`), but what
requests leave besides (hashing's arrays, responses, SQLite's reads) stayed. `IdleTrim` calls
the same `malloc_trim(0)` once the server has been idle TRIM_AFTER_IDLE_S after work, in a
thread of its own. Work is requests and the ends of background jobs (`Activity`: an import
hashing in its download threads, a scan's read, pairing and report in its thread), so what a job
that ends after the last request leaves is given back too, 2 s after it ends. Capping glibc's
heaps (MALLOC_ARENA_MAX=2) was measured too and is not set: alone it kept more
(docs/lab/benchmarks.md, memory after a load).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dupcheck.core.pictures.imaging import give_back_memory

logger = logging.getLogger(__name__)

TRIM_AFTER_IDLE_S = 2.0  # the server idle this long after work: its load is over, for now


class Activity:
    """A background worker's jobs, for the idle trim: how many have ended. A job's end is work
    done, as a request is; a job running does not keep the server from trimming what requests
    left (a scan verifies for minutes after the last request)."""

    def __init__(self) -> None:
        self.ended = 0
        self._lock = threading.Lock()

    @contextmanager
    def job(self) -> Iterator[None]:
        try:
            yield
        finally:
            with self._lock:
                self.ended += 1


class IdleTrim:
    """Trims once each time the server goes idle after work: `tick(work_done, busy)` is called
    every second or so with a count of the tasks started so far and whether any runs now."""

    def __init__(self, idle_s: float = TRIM_AFTER_IDLE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s, self.clock = idle_s, clock
        self.seen = 0  # tasks counted at the last tick
        self.worked_at: float | None = None  # when work was last seen, None once trimmed
        # malloc_trim walks every free chunk: 0.6 s on a badly fragmented 650 MB heap. Its own
        # thread, so the server's loop goes on accepting meanwhile.
        self.worker: threading.Thread | None = None

    def tick(self, work_done: int, busy: bool) -> None:
        now = self.clock()
        if busy or work_done != self.seen:
            self.seen, self.worked_at = work_done, now
            return
        running = self.worker is not None and self.worker.is_alive()
        if self.worked_at is not None and now - self.worked_at >= self.idle_s and not running:
            self.worked_at = None
            self.worker = threading.Thread(target=_release, name="memory-trim", daemon=True)
            self.worker.start()


def _release() -> None:
    started = time.perf_counter()
    give_back_memory()
    logger.debug("idle: malloc_trim in %.1f ms", (time.perf_counter() - started) * 1000)
