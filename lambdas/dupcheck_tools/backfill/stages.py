"""A backfill run's stages after the read (engine.py runs them and owns the queues between them):
downloads at a polite rate (HostFetcher), the hashing processes and the dispatcher that hands them
images a few a job (HashingStage), and the writer thread's batched writes (WriteStage). Each counts
the rows it ends through the run's RunTally (tally.py)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from dupcheck.core.catalog.kept_images import kept_gone_message
from dupcheck.core.catalog.writer import RecordWriter
from dupcheck.core.errors import DupcheckError, KeptImageGone, UpstreamError, UpstreamTimeout
from dupcheck.core.models import Claim, Entry
from dupcheck.core.ports import ImageFetcher
from dupcheck_tools.backfill.tally import RunTally
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.hash_workers import Outcome, hash_in_worker, init_worker, ready
from dupcheck_tools.worker_pool import RestartingPool, WorkerDied

log = logging.getLogger(__name__)

_STOP = object()

# Images a hashing job carries at most, and the bytes past which it takes no more. A job costs
# the backfill process ~0.3 ms of CPU whatever it carries (the pool's queues, pickling,
# wake-ups), as much as a download: handing the hashing processes a few images at once pays it
# once for them. The byte cap keeps the images between download and hash few when they are large.
HASH_BATCH = 4
HASH_BATCH_BYTES = 4 * 2**20

WORKER_DIED = "worker_died"  # a row's failure code: its hashing process died twice on it

# A row the screen let through whose claim another write fenced before it was stored (the entity_id
# that beat it, or gate.EXPIRED): the screen's owner records it and says how to count it.
RowLost = Callable[[CatalogRow, str], str]
# What becomes of a hashed row (Backfill._hashed): screened, then queued for the writer or counted.
Hashed = Callable[[CatalogRow, Outcome, "queue.Queue[Any]"], None]


class HostFetcher:
    """Downloads at most `per_host` images at once from any one host, and retries what is worth
    retrying with a doubling, jittered backoff, until the run stops."""

    def __init__(
        self,
        fetcher: ImageFetcher,
        *,
        per_host: int,
        retries: int,
        backoff: float,
        sleep: Callable[[float], None],
        stop: threading.Event,
    ) -> None:
        self.fetcher = fetcher
        self._per_host, self._retries, self._backoff = per_host, retries, backoff
        self._sleep = sleep
        self._stop = stop
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}

    def fetch(self, url: str) -> bytes:
        host = (urlsplit(url).netloc or "").lower()
        with self._lock:
            gate = self._hosts.get(host)
            if gate is None:
                gate = self._hosts[host] = threading.BoundedSemaphore(max(1, self._per_host))
        attempt = 0
        while True:
            with gate:
                try:
                    return self.fetcher.fetch(url)
                except (UpstreamError, UpstreamTimeout) as exc:
                    # UpstreamStatusError says whether its status is worth retrying (429, 5xx);
                    # connection errors and timeouts are.
                    if not getattr(exc, "retryable", True) or attempt >= self._retries or self._stop.is_set():
                        raise
            delay = self._backoff * (2**attempt) * random.uniform(0.5, 1.5)
            log.info("retrying %s in %.2fs", url, delay)
            self._sleep(delay)
            attempt += 1


class HashingStage:
    """The hashing processes, and the dispatcher thread that hands them downloaded images a few a
    job; each job's outcomes go back to the run through `hashed` (in the pool's thread)."""

    def __init__(
        self,
        tally: RunTally,
        hashed: Hashed,
        drop: threading.Event,
        *,
        workers: int,
        initargs: tuple[Any, ...],
    ) -> None:
        self._tally = tally
        self._hashed = hashed
        self._drop = drop
        self._workers = workers
        self._initargs = initargs
        self.jobs = threading.BoundedSemaphore(1)  # hashing jobs in the pool (set with the pool)

    def pool(self) -> RestartingPool | None:
        """One hashing process per CPU, or none (`hash_workers < 0`: hash in the download threads).
        A process that dies (the out-of-memory killer) is replaced and its rows hashed again, one
        at a time; a row it dies on twice fails as `worker_died` (worker_pool.py)."""
        if self._workers < 0:
            return None
        workers = self._workers or os.cpu_count() or 1
        initargs = self._initargs

        def make() -> ProcessPoolExecutor:
            # spawn, not fork: forking a process that runs threads (downloads, writer) can copy held locks.
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=init_worker, initargs=initargs)  # fmt: skip
            # The pool starts a process per job until it has `workers`: start them all now, so they
            # import while the first downloads are on their way, not one after the other later.
            for _ in range(workers):
                pool.submit(ready)
            return pool

        # Downloads hand images over without waiting for their hashes (see Backfill._process), so
        # this bounds the jobs, and with HASH_BATCH the images, between download and hash: one
        # hashing and one queued per worker keep it busy.
        self.jobs = threading.BoundedSemaphore(workers * 2)
        return RestartingPool(make, what="hashing process", one_by_one=True, on_died=_died_outcomes)

    def dispatch_loop(self, pool: RestartingPool, to_hash: queue.Queue[Any], writes: queue.Queue[Any]) -> None:
        """Downloaded images to the hashing processes, a few a job: as many as are waiting when
        a job slot frees (HASH_BATCH, HASH_BATCH_BYTES at most), so a busy pool gets full jobs
        and an idle one gets each image at once. Ends at _STOP, after every image before it."""
        while True:
            item = to_hash.get()
            if item is _STOP:
                return
            if self._drop.is_set():
                continue  # stopped now: not hashed
            self.jobs.acquire()  # a slot frees when a job ends: meanwhile more images queue up
            batch = [item]
            stop = _take_more(to_hash, batch, _job_full)
            if self._drop.is_set():  # stopped now: these are not hashed
                self.jobs.release()
                if stop:
                    return
                continue
            try:
                self._submit(pool, batch, writes)
            except Exception:  # noqa: BLE001 - e.g. the failures file cannot be written
                # The dispatcher must outlive any one job: without it the downloads would wait
                # forever. These rows are not in the store: the next run fetches them again.
                log.exception("hashing job of %d rows failed", len(batch))
            if stop:
                return

    def _submit(self, pool: RestartingPool, batch: list[tuple[CatalogRow, bytes]], writes: queue.Queue[Any]) -> None:
        rows = [row for row, _ in batch]
        try:
            jobs = [(row.entity_id, row.sku, row.image_url, data) for row, data in batch]
            future: Future[list[Outcome]] = pool.submit(hash_in_worker, jobs)
        except Exception as exc:  # noqa: BLE001 - e.g. the processes cannot start: these rows failed, the run goes on
            self.jobs.release()
            for row in rows:
                self._tally.fail(row, "internal_error", f"{type(exc).__name__}: {exc}")
            return
        future.add_done_callback(lambda done: self._collect(rows, done, writes))

    def _collect(self, rows: list[CatalogRow], future: Future[list[Outcome]], writes: queue.Queue[Any]) -> None:
        """A hashing job ended (in the pool's thread): its records to the writer, or its failures
        (neither after a stop(now=True): hashed after it)."""
        try:
            if self._drop.is_set():
                return
            error = future.exception()
            if error is not None:  # the processes cannot start (WorkerDied): these rows failed
                code = WORKER_DIED if isinstance(error, WorkerDied) else "internal_error"
                for row in rows:
                    self._tally.fail(row, code, f"{type(error).__name__}: {error}")
            else:
                for row, outcome in zip(rows, future.result(), strict=True):
                    self._hashed(row, outcome, writes)
        finally:
            self.jobs.release()


class WriteStage:
    """The writer thread: hashed rows in batches through the write path (core/catalog/writer.py),
    each row counted by what became of it."""

    def __init__(self, writer: RecordWriter, tally: RunTally, lost: RowLost | None, batch_size: int) -> None:
        self.writer = writer
        self._tally = tally
        self._lost = lost
        self._batch_size = batch_size

    def loop(self, writes: queue.Queue[Any]) -> None:
        size = self._batch_size
        while True:
            item = writes.get()
            if item is _STOP:
                return
            batch = [item]
            # A little patience fills batches without delaying progress.
            stop = _take_more(writes, batch, lambda taken: len(taken) >= size, time.monotonic() + 0.05)
            self._flush(batch)
            if stop:
                return

    def _flush(self, batch: list[tuple[str, CatalogRow, Entry, Claim | None]]) -> None:
        """One batch through the write path (core/catalog/writer.py): thumbnails and vectors, then the
        records with their claims' commits. A row whose claim was fenced, or whose kept image is
        gone, is not stored: the screen's owner hears of the first, the failures file of the second."""
        try:
            saved = self.writer.save_many([(entry, claim) for _, _, entry, claim in batch])
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable and friends: these rows failed
            message = exc.message if isinstance(exc, DupcheckError) else f"{type(exc).__name__}: {exc}"
            for _, row, _, claim in batch:
                self._withdraw(claim)
                self._tally.fail(row, getattr(exc, "code", "store_unavailable"), message)
            return
        for kind, row, entry, claim in batch:
            if claim is not None and claim.claim_id in saved.beaten:
                counted = self._lost(row, saved.beaten[claim.claim_id]) if self._lost is not None else "failed"
                self._tally.advance(counted)
            elif entry.record.entity_id in saved.gone:
                self._tally.fail(row, KeptImageGone.code, kept_gone_message(entry.record.image_url))
            else:
                self._tally.stored(kind, row, entry.record)

    def _withdraw(self, claim: Claim | None) -> None:
        if claim is not None and self.writer.claims is not None:
            try:
                self.writer.claims.withdraw(claim.claim_id)
            except DupcheckError as exc:  # its lease ends it: nobody waits on it past that
                log.warning("claim %s not withdrawn: %s", claim.claim_id, exc.message)


def _died_outcomes(jobs: list[tuple[str, str, str, bytes]], _: WorkerDied) -> list[Outcome]:
    """The outcome of rows whose hashing process died twice while it hashed them."""
    message = ("the hashing process died twice while it hashed this picture (killed from outside: most likely out "
               "of memory); import the row again when more memory is free, or make the picture smaller")  # fmt: skip
    return [("error", (WORKER_DIED, message))] * len(jobs)


def _take_more(
    q: queue.Queue[Any], batch: list[Any], full: Callable[[list[Any]], bool], deadline: float | None = None
) -> bool:
    """Move items from `q` to `batch` until `full(batch)`: those waiting now, or (with a
    `deadline`, time.monotonic()) those that come before it. True when it took the _STOP."""
    while not full(batch):
        try:
            item = q.get_nowait() if deadline is None else q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if item is _STOP:
            return True
        batch.append(item)
    return False


def _job_full(batch: list[tuple[CatalogRow, bytes]]) -> bool:
    return len(batch) >= HASH_BATCH or sum(len(data) for _, data in batch) >= HASH_BATCH_BYTES
