"""Many callers at once, as a shop is: the concurrency tests' one way of racing calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call on a thread of its own, all released together by a barrier; their answers in
    order (an exception raised by a call is its answer)."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the caller asserts on it
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers
