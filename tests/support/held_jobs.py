"""A verification job that says when it runs and waits to be killed, so a test kills (SIGKILL, as
the out-of-memory killer does) exactly the process that holds a given record, however the jobs
are spread over the processes.

`hold(monkeypatch, folder, {"c1-a-small": 2})` makes the engine's verification jobs
`judge_or_hold` (in a module a spawned process can import): a job with one of the named records
among its queries, the first n times it runs, writes a file named for its process into `folder`
and sleeps; `kill_holders(folder, 3)` kills each such process as its file appears, in a thread.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not imported by the worker processes
    import pytest

HOLDS = "DUPCHECK_TEST_HOLDS"  # {"folder": ..., "records": {entity_id: runs held}}, read by the worker
WAIT_S = 120.0  # how long a held job waits to be killed (then judges, and the test fails on its counts)


def judge_or_hold(job: Any) -> Any:
    """`judge_in_worker`, after waiting to be killed when the job holds a named record (above)."""
    from dupcheck_tools.duplicates import workers

    holds = json.loads(os.environ[HOLDS])
    assert workers._state is not None
    records = workers._state[1].records(query for query, *_ in job)
    for record, _ in records.values():
        held = holds["records"].get(record.entity_id, 0)
        folder = Path(holds["folder"])
        runs = len(list(folder.glob(f"{record.entity_id}.*")))
        if runs < held:
            partial = folder / f".{record.entity_id}.{runs}"
            partial.write_text(str(os.getpid()))
            partial.rename(folder / f"{record.entity_id}.{runs}")  # whole when seen
            time.sleep(WAIT_S)
    return workers.judge_in_worker(job)


def hold(monkeypatch: pytest.MonkeyPatch, folder: Path, records: dict[str, int]) -> None:
    """The engine's verification jobs hold `records` (entity_id: runs), for the processes it starts next."""
    import dupcheck_tools.duplicates as engine

    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv(HOLDS, json.dumps({"folder": str(folder), "records": records}))
    monkeypatch.setattr(engine, "judge_in_worker", judge_or_hold)


class Killer(threading.Thread):
    """Kills the process of each held run as it appears in `folder`, `count` in all; `killed` their
    process ids, in order."""

    def __init__(self, folder: Path, count: int, timeout: float = 240.0) -> None:
        super().__init__(daemon=True)
        self.folder, self.count, self.timeout = folder, count, timeout
        self.killed: list[int] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        seen: set[Path] = set()
        while len(self.killed) < self.count and time.monotonic() < deadline:
            for run in sorted(set(self.folder.glob("[!.]*")) - seen):
                seen.add(run)
                pid = int(run.read_text())
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            time.sleep(0.05)


def kill_holders(folder: Path, count: int) -> Killer:
    killer = Killer(folder, count)
    killer.start()
    return killer
