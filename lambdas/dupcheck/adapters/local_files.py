"""Files the embedded mode keeps under the data dir: import catalogs and kept images.

`imports/<job_id>.catalog` holds a job's catalog as it arrived (CSV or JSON Lines, maybe
gzipped); `images/<ab>/<sha256>.<ext>` the pictures kept for records without a public address
(core/catalog/kept_images.py), fanned out by the name's first two characters so no folder grows huge.
Every file is written to a temporary name and renamed, so a reader never sees half a file. A kept
picture's modification time is when it was last kept: the sweep's clock for pictures no record uses.
The pictures' lock (core/catalog/kept_images.py) is a file lock on `images.lock` beside the folder,
so the command line, a server and its workers take the same one; the kernel lets it go when its
holder dies.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: one process's threads are ordered, other processes are not
    fcntl = None  # type: ignore[assignment]

from dupcheck.core.catalog.kept_images import is_image_name
from dupcheck.core.errors import NotFound, StoreUnavailable
from dupcheck.core.jobs.imports import check_job_id


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise StoreUnavailable(f"cannot write {path.name} under the data dir: {exc}") from exc


class LocalCatalogFiles:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, job_id: str) -> Path:
        return self.root / f"{check_job_id(job_id)}.catalog"

    def put(self, job_id: str, data: bytes) -> None:
        _write_atomically(self._path(job_id), data)

    @contextlib.contextmanager
    def open(self, job_id: str) -> Iterator[IO[bytes]]:
        try:
            handle = open(self._path(job_id), "rb")  # noqa: SIM115 - closed below, after the caller
        except FileNotFoundError as exc:
            raise NotFound(f"import {job_id} has no catalog") from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read the catalog of import {job_id}: {exc}") from exc
        with handle:
            yield handle

    def remove(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(job_id).unlink()


class FileLock:
    """A lock of threads (re-entrant) and of processes (flock on `path`), one per file in a
    process: flock excludes two descriptors of one process as it does two processes."""

    _made: dict[Path, FileLock] = {}
    _making = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd = -1

    @classmethod
    def of(cls, path: Path) -> FileLock:
        key = path.resolve()
        with cls._making:
            return cls._made.setdefault(key, cls(key))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._depth == 0 and fcntl is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                except OSError as exc:
                    if self._fd >= 0:
                        os.close(self._fd)
                        self._fd = -1
                    raise StoreUnavailable(f"cannot lock the kept images ({self.path}): {exc}") from exc
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd >= 0:
                    os.close(self._fd)  # lets the flock go
                    self._fd = -1


class LocalKeptImages:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = FileLock.of(self.root.with_name(self.root.name + ".lock"))  # beside the pictures, not among them

    def lock(self) -> contextlib.AbstractContextManager[object]:
        return self._lock.held()

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def _path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        try:  # a name is its content: the same picture is kept once, its clock started again
            os.utime(path)
        except FileNotFoundError:
            _write_atomically(path, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot keep the picture {name}: {exc}") from exc

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read the kept image {name}: {exc}") from exc

    def delete(self, name: str) -> bool:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete the kept image {name}: {exc}") from exc
        return True

    def names_older_than(self, seconds: float) -> Iterator[str]:
        """Kept images last kept `seconds` ago or more (and half-written files a crash left)."""
        before = time.time() - seconds
        for path in self.root.glob("??/*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime > before:
                    continue
                if path.name.startswith(".incoming-"):
                    path.unlink()  # a write a crash interrupted
                elif is_image_name(path.name):
                    yield path.name
