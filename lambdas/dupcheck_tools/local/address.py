"""Where the local server on a data dir answers, for the commands that write its address into a
record: `add FILE` and `index-dir` keep a file's picture and store `<base>/images/<name>` as its
image_url, which the web app shows; a server started with `--port 8001` serves it there, not at
the default port 8000.

A running server records itself in its data dir (`server.json`: its URL and process id) and holds
an exclusive lock on that file for as long as it runs; the lock goes with the process, a kill -9
too. A reader trusts the file only while the lock is held: a file left by a server that died is
passed over (no stale port), and no request is made to find out. Of two servers on one data dir
the first records itself; the second runs unrecorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

SERVER_FILE = "server.json"
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # listening everywhere: this machine answers


def base_url(host: str, port: int) -> str:
    """The address a server bound to `host`:`port` is reached at from this machine."""
    host = _WILDCARD.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class ServerRecord:
    """A running server's record of itself (module docstring): `take` it once listening, `release`
    it when stopping."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd, self.path = fd, path

    @classmethod
    def take(cls, data_dir: Path, url: str) -> ServerRecord | None:
        """Record `url` as the server of `data_dir`, or None when another running server has (or the
        folder cannot be written: the commands then fall back to the default address)."""
        path = Path(data_dir) / SERVER_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"url": url, "pid": os.getpid()}).encode())
        except OSError:  # BlockingIOError: another server holds it
            os.close(fd)
            return None
        return cls(fd, path)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding the lock: no reader takes it for a live one
        os.close(self._fd)


def running_server(data_dir: Path) -> str | None:
    """The URL of the server running on `data_dir`, or None when none is."""
    try:
        fd = os.open(Path(data_dir) / SERVER_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: its server runs
        else:
            return None  # nobody holds it: left by a server that died
        try:
            url = json.loads(os.read(fd, 4096) or b"{}").get("url")
        except (OSError, ValueError, AttributeError):
            return None  # being written at this moment
        return url if isinstance(url, str) and url.startswith("http") else None
    finally:
        os.close(fd)
