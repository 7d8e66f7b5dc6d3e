"""What every pool process of the batch tools does first (backfill's hashing, the duplicate
report's verification): leave Ctrl-C and SIGTERM to the parent, which shuts the pool down (a
terminal's Ctrl-C and systemd's stop signal the whole process group: a worker that died of them
failed the rows it held), and leave on its own if the parent dies without doing so (kill -9),
instead of lingering."""

from __future__ import annotations

import os
import signal
import threading
import time


def start_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch_parent, daemon=True, name="parent-watch").start()
