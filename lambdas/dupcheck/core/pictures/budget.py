"""Memory budgets: work that holds much memory at once, admitted against a budget of bytes.

Each piece of work says what it will hold (its cost) before holding it. What fits starts at once;
what does not waits for the work before it to end, a request at most `wait_s`, then is refused
with ServerBusy (503 `server_busy` with Retry-After): a burst of heavy requests queues, or is told
to come back, instead of all holding their memory at once. Background work may wait as long as it
takes (`patient`). The largest piece of work must fit alone, so the budget is at least its cost.

Two budgets use it: the decodings of pictures (core/pictures/imaging.py, `DecodeBudget`) and the catalog
bodies the local server reads (dupcheck_tools/local/app.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dupcheck.core.errors import ServerBusy

MB = 2**20
RETRY_AFTER_S = 5  # what a refused request is told


class MemoryBudget:
    """Admits work against `total_bytes` (module docstring); `holding` names the work in the 503's
    message ("decoding other large images")."""

    def __init__(self, *, total_bytes: int, wait_s: float, holding: str) -> None:
        self.total_bytes = total_bytes
        self.wait_s = wait_s
        self.holding = holding
        self.in_use = 0
        self.started = 0  # pieces of work admitted so far (the local server's idle trim counts decodes)
        self._room = threading.Condition()

    @contextmanager
    def admitted(self, cost: int, *, patient: bool = False) -> Iterator[None]:
        """Hold `cost` bytes of the budget for the block: at once when they fit, else once the work
        before has freed them; a request (not `patient`) waits at most `wait_s`, then ServerBusy."""
        cost = min(cost, self.total_bytes)
        deadline = None if patient else time.monotonic() + self.wait_s
        with self._room:
            while self.in_use + cost > self.total_bytes:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ServerBusy(
                        f"the server is {self.holding} ({self.in_use // MB} of {self.total_bytes // MB} MB in "
                        "use); try again in a few seconds",
                        retry_after_s=RETRY_AFTER_S,
                    )
                self._room.wait(left)
            self.in_use += cost
            self.started += 1
        try:
            yield
        finally:
            with self._room:
                self.in_use -= cost
                idle = self.in_use == 0
                self._room.notify_all()
            self.released(cost, idle=idle)

    def released(self, cost: int, *, idle: bool) -> None:
        """A subclass's hook, after `cost` bytes were given back (`idle`: nothing holds any now)."""
