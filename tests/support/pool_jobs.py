"""Jobs for the worker pool's tests (tests/unit/tools/test_worker_pool.py), in a module a spawned
process can import: one that kills its own process, as the out-of-memory killer would."""

from __future__ import annotations

import os
import signal
import time

POISON = -1  # the item that kills its worker every time


def squares(items: list[int]) -> list[int]:
    """Each item squared; the POISON item kills this process with SIGKILL first."""
    if POISON in items:
        os.kill(os.getpid(), signal.SIGKILL)
    return [item * item for item in items]


def cannot_start() -> None:
    """An initializer that kills its process: a worker that never starts."""
    os.kill(os.getpid(), signal.SIGKILL)


def pid_after(seconds: list[float]) -> list[int]:
    """This process's id, after sleeping `seconds[0]` (long enough to be signalled meanwhile)."""
    time.sleep(seconds[0])
    return [os.getpid()]
