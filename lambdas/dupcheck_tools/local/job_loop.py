"""The loops of the local server's background workers: jobs (imports, duplicate scans) one at a
time, oldest first, until the server stops; and a step repeated on a clock (the index follower,
housekeeping)."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TypeVar

from dupcheck.core.errors import StoreUnavailable
from dupcheck_tools.local.memory import Activity

logger = logging.getLogger(__name__)
J = TypeVar("J")


def run_jobs(
    *, stopping: threading.Event, wake: threading.Event, poll_s: float, runnable: Callable[[], Sequence[J]],
    run: Callable[[J], object], fail: Callable[[J, str], object], name: Callable[[J], str],
    activity: Activity | None = None,
) -> None:  # fmt: skip
    """Run the first of `runnable()` until `stopping` is set, waiting for `wake` (or `poll_s`: a job
    another process recorded) when there is none. A store that cannot be read is tried again; a
    bug fails its job (`fail`, with the reason) and the loop goes on: it never ends the worker.
    Each job run is counted in `activity` (the server's idle trim)."""
    while not stopping.is_set():
        try:
            found = runnable()
        except StoreUnavailable:
            logger.exception("the job store cannot be read; trying again")
            found = []
        if not found:
            wake.wait(poll_s)
            wake.clear()
            continue
        try:
            with activity.job() if activity is not None else nullcontext():
                run(found[0])
        except Exception as exc:  # the job fails with the reason; the worker goes on
            logger.exception("%s failed", name(found[0]))
            try:
                fail(found[0], f"internal error ({type(exc).__name__}); it has been logged")
            except Exception:  # noqa: BLE001 - e.g. the store is locked: the job is tried again after a pause
                logger.exception("could not record that %s failed", name(found[0]))
                stopping.wait(poll_s)


class Repeating:
    """A daemon thread that runs `step` at once, then again after each of `waits` in turn (the
    last one repeated), until `stop()`. A failing step is logged and run again at its next time.
    A second `start()` changes nothing (one thread)."""

    def __init__(self, name: str, step: Callable[[], object], waits: Sequence[float]) -> None:
        self.name, self.step, self.waits = name, step, list(waits)
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        for turn in itertools.count():
            try:
                self.step()
            except Exception:  # a locked or vanished file: try again at the next turn
                logger.exception("%s failed; trying again", self.name)
            if self.stopping.wait(self.waits[min(turn, len(self.waits) - 1)]):
                return
