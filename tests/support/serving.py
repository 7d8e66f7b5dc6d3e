"""The local server as a process of its own (`python -m dupcheck serve`), for the tests that kill
it, stop it with a signal, and start it again on the same data dir."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def serve_process(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """A server on a free loopback port over `data_dir` (in a session of its own: a process
    group); the process and its URL."""
    env = dict(os.environ, DUPCHECK_ALLOW_LOOPBACK_URLS="true", DUPCHECK_DATA_DIR=str(data_dir), DUPCHECK_PORT="0",
               DUPCHECK_IMPORT_WORKERS="4")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"serving on (http://\S+)", line)
    assert found, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
    return proc, found.group(1)


def kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its hashing process
    proc.wait(timeout=10)
    proc.communicate(timeout=10)


def stop_group(proc: subprocess.Popen[str], signum: int) -> float:
    """Send `signum` to the server's whole process group (systemd's stop, a terminal's Ctrl-C);
    the seconds until the server exited."""
    sent = time.monotonic()
    os.killpg(proc.pid, signum)
    proc.wait(timeout=60)
    exited = time.monotonic() - sent
    proc.communicate(timeout=10)
    return exited
