"""The local server gives the memory of a load back to the system once the load is over.

After a 5-minute mixed load (issue 67) the server stayed at 419 MB where it idled at 148 MB:
the memory was free inside glibc's heaps, not in use. glibc gives each thread that allocates
its own heap (an arena, up to 8 per core) and returns a heap's free pages only from its top;
image buffers (Pillow's 16 MB blocks, numpy's arrays) fragment them. Two calls of glibc's own
(ctypes; elsewhere, musl or macOS, both do nothing):
* `limit_arenas()`, at start before the server's threads: at most ARENA_MAX arenas (glibc's
  `M_ARENA_MAX`, what the MALLOC_ARENA_MAX variable sets before a process starts), so fewer heaps
  hold free memory apart.
* `IdleTrim`: once the server has been idle TRIM_AFTER_IDLE_S after work, `malloc_trim(0)`
  returns the free pages inside every arena to the system (in a thread of its own).
docs/lab/benchmarks.md (memory after a load) has what each gave.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import cache

logger = logging.getLogger(__name__)

ARENA_MAX = 2  # the waitress threads share them; measured in docs/lab/benchmarks.md
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
TRIM_AFTER_IDLE_S = 2.0  # the server idle this long after work: its load is over, for now


@cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = ARENA_MAX) -> bool:
    """Cap glibc's arenas, unless MALLOC_ARENA_MAX set them (the operator's choice); True when
    the cap is set. Call before threads allocate: a thread that has an arena keeps it (glibc fixes
    its limit when the ninth is made)."""
    libc = _glibc()
    return libc is not None and "MALLOC_ARENA_MAX" not in os.environ and libc.mallopt(M_ARENA_MAX, arenas) == 1


def release_free_memory() -> bool:
    """Give the free pages of every glibc arena back to the system; True when some were."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1


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
    released = release_free_memory()
    logger.debug("idle: malloc_trim %s in %.1f ms", released, (time.perf_counter() - started) * 1000)
