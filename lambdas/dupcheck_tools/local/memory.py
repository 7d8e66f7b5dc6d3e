"""The local server gives the memory of a load back to the system once the load is over.

After a 5-minute mixed load (issue 67) the server stayed at 419 MB where it idled at 148 MB:
memory free inside glibc's heaps, not in use. glibc returns a heap's free pages only from its
top; the decoder trims after large decodes (core/pictures/imaging.py, `give_back_memory`), but what
requests leave besides (hashing's arrays, responses, SQLite's reads) stayed. `IdleTrim` calls
the same `malloc_trim(0)` once a spell of work is over, in a thread of its own: TRIM_AFTER_IDLE_S
after the last picture decoded (decodes and the ends of background jobs, `Activity`: an import
hashing in its download threads, a scan's read, pairing and report in its thread), even while
light requests go on (the web app's progress polls, issue 86: 230 MB free in glibc's heaps stayed
with a server whose scan page was open), and TRIM_AFTER_IDLE_S after the last request. Capping
glibc's heaps (MALLOC_ARENA_MAX=2) was measured too and is not set: alone it kept more
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

TRIM_AFTER_IDLE_S = 2.0  # no picture decoded (or no request) this long after work: the spell is over, for now


class Activity:
    """A background worker's jobs, for the idle trim: how many have ended. A job's end is picture
    work done, as a decode is; a job running holds the trim back only while it decodes in this
    process (a scan verifies in processes of its own for minutes after the last request)."""

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
    """Trims once after each spell of work, in a thread of its own. `tick(...)` is called every
    second or so with counts of the requests started and of the picture work done so far (decodes
    started, background jobs ended), and whether a request or a decode runs now.

    Picture work (large decodes, a job's end) leaves the most: its spell ends once no picture has
    been decoded for `idle_s`, whatever light requests go on (the web app polls a running import or
    scan every second: a server watched so never went idle, and kept a load's memory). Requests
    alone (pages, status) are given back once they stop for `idle_s`. Never while a picture is
    being decoded: its memory is in use, and what a trim frees then is taken again at once."""

    def __init__(self, idle_s: float = TRIM_AFTER_IDLE_S, clock: Callable[[], float] = time.monotonic, *,
                 pictures: int = 0) -> None:  # fmt: skip
        """`pictures`: the count of picture work done before (the process's decodes so far)."""
        self.idle_s, self.clock = idle_s, clock
        self.seen = (0, pictures)  # requests and picture work counted at the last tick
        self.requests_at = self.pictures_at = 0.0  # when each was last seen
        self.requests_since = self.pictures_since = False  # seen since the last trim
        # malloc_trim walks every free chunk: 0.6 s on a badly fragmented 650 MB heap. Its own
        # thread, so the server's loop goes on accepting meanwhile.
        self.worker: threading.Thread | None = None

    def tick(self, *, requests: int, answering: bool, pictures: int, decoding: bool) -> None:
        now = self.clock()
        if answering or requests != self.seen[0]:
            self.requests_at, self.requests_since = now, True
        if decoding or pictures != self.seen[1]:
            self.pictures_at, self.pictures_since = now, True
        self.seen = (requests, pictures)
        if not (self.requests_since or self.pictures_since) or now - self.pictures_at < self.idle_s:
            return  # nothing to give back, or pictures still being decoded
        if not self.pictures_since and now - self.requests_at < self.idle_s:
            return  # light requests only, still coming
        if self.worker is not None and self.worker.is_alive():
            return
        self.requests_since = self.pictures_since = False
        self.worker = threading.Thread(target=_release, name="memory-trim", daemon=True)
        self.worker.start()


def _release() -> None:
    started = time.perf_counter()
    give_back_memory()
    logger.debug("idle: malloc_trim in %.1f ms", (time.perf_counter() - started) * 1000)
