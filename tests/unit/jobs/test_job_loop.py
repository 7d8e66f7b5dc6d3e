"""The local server's repeated steps (the index follower, housekeeping): one thread each."""

from __future__ import annotations

import threading
import time

from dupcheck_tools.local.job_loop import Repeating


def test_a_repeating_step_started_twice_runs_in_one_thread() -> None:
    """`serve` starts the index follower before the server, which starts it again: one loader."""
    ran: list[int] = []
    repeating = Repeating("dupcheck-test-repeating", lambda: ran.append(threading.get_ident()), [0.01])
    repeating.start()
    repeating.start()
    deadline = time.monotonic() + 10
    while len(ran) < 5:
        assert time.monotonic() < deadline, "the step stopped running"
        time.sleep(0.01)
    assert sum(1 for thread in threading.enumerate() if thread.name == "dupcheck-test-repeating") == 1
    repeating.stop()
    assert len(set(ran)) == 1
    assert not any(thread.name == "dupcheck-test-repeating" for thread in threading.enumerate())
