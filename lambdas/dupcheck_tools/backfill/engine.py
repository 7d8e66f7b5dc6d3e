"""The backfill engine: catalog rows -> store check -> download -> hash -> batched writes.

    catalog reader -> store check (get_many, batches) -> download threads -> dispatcher -> hash processes
    (main thread)     skip unchanged rows, no download    (per-host limit,    (a few images  (hash_workers.py:
                                                          retries, backoff)   a job)         pipeline once each)
                                                     \\-> writer thread: thumbnails, product vectors, then put_many

Every queue is bounded, so memory stays flat however long the catalog is. Resume and
idempotency are one mechanism: before downloading a row, the target store itself is asked (in
batches) whether it already holds that entity_id with the same image_url and the current
pipeline's hash_algo (and the thumbnail store, whether it holds its thumbnail; where similar products
are on, the product index, whether it holds its vector). If so the row is unchanged and skipped
without a download; if the URL (or the pipeline) changed, or the thumbnail or vector is missing,
it is fetched and re-hashed. Product vectors are made here in the embedded mode only: on AWS the
product sync function makes them from the table's stream. There is no checkpoint file to lose:
whatever reached the store before a crash, kill -9 or network loss is done, and only rows in
flight at that moment are fetched again. Every failure is one line in the failures file.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from dupcheck.core.catalog.gate import Passage
from dupcheck.core.catalog.kept_images import kept_gone_message
from dupcheck.core.catalog.products import Embedder, default_model_path
from dupcheck.core.catalog.writer import RecordWriter
from dupcheck.core.errors import DupcheckError, KeptImageGone, UpstreamError, UpstreamTimeout
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.jobs.catalog_rows import row_failure
from dupcheck.core.models import Claim, Entry, HashRecord, utc_now
from dupcheck.core.ports import ImageFetcher, ProductIndex, RecordStore, ThumbnailStore
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill.failures import FailureSink
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.hash_workers import Outcome, hash_in_worker, hash_row, init_worker, ready
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

# Told of every row stored or skipped: ("done" | "updated" | "skipped", row, its record). Failed
# rows go to the FailureSink. (The API's import jobs count rows with it; backfill does not.)
RowListener = Callable[[str, CatalogRow, HashRecord], None]


@dataclass(frozen=True)
class Refusal:
    """A row the screen keeps out of the store, and how the run counts it: skipped, or failed with
    a code and message for the failures file."""

    kind: str  # "skipped" | "failed"
    code: str = ""
    message: str = ""


# Looks at a hashed row before it is written (the duplicate gate, core/catalog/gate.py): the passage to
# store it with; a Refusal the run counts; or None: kept out, the screen's owner records why.
RowScreen = Callable[[CatalogRow, Entry], Passage | Refusal | None]
# A row the screen let through whose claim another write fenced before it was stored (the entity_id
# that beat it, or gate.EXPIRED): the screen's owner records it and says how to count it.
RowLost = Callable[[CatalogRow, str], str]


@dataclass
class BackfillOptions:
    workers: int = 32  # concurrent downloads
    hash_workers: int = 0  # hashing processes; 0 = one per CPU; -1 = hash in the download threads
    per_host: int = 16  # concurrent downloads from any one host
    # Added to the hashing processes' nice value: above 0 they yield the CPU to the rest of the machine
    # (an import job inside the server: its requests come first). Ignored where os.nice is missing.
    hash_niceness: int = 0
    retries: int = 3  # extra attempts on 429/5xx, connection errors and timeouts
    backoff: float = 0.5  # seconds before the first retry; doubles, with jitter
    batch_size: int = 100  # store look-ups and writes per call
    force: bool = False  # re-hash rows even when the store already has them unchanged
    dry_run: bool = False  # read and check only: no downloads, no writes
    progress: bool = True  # tqdm bar on stderr


@dataclass
class BackfillSummary:
    rows: int = 0
    done: int = 0  # downloaded, hashed and written
    updated: int = 0  # unchanged image, new sku: written without a download
    skipped: int = 0  # unchanged: already in the store with this image_url and pipeline
    failed: int = 0
    would_fetch: int = 0  # dry run only
    elapsed_s: float = 0.0
    images_per_s: float = 0.0
    hash_algo: str = ""
    failures_file: str = ""
    on_duplicate: str = ""  # the duplicate gate's policy ("allow": not checked)
    duplicates: int = 0  # rows found duplicates of the catalog or of each other (stored, skipped or refused)
    duplicates_file: str = ""  # one line per duplicate found (backfill/gate.py)
    interrupted: bool = False
    error: str | None = None  # a fatal error (e.g. the store stayed unreachable) ended the run early
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)
    # Why rows failed, for stderr (failures.explain_failures); not part of the JSON summary.
    failure_report: str = field(default="", repr=False)

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.FAILED if self.failed or self.error else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("timeline")
        data.pop("failure_report")
        return data

    def table_markdown(self) -> str:
        """The summary as a Markdown table (the notebook displays this)."""
        lines = ["| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.to_dict().items()]
        return "\n".join(lines)

    def throughput(self) -> tuple[list[float], list[float]]:
        """(seconds, rows finished per second) between timeline samples, for a plot."""
        times, rates = [], []
        for (t0, n0), (t1, n1) in zip(self.timeline, self.timeline[1:], strict=False):
            if t1 > t0:
                times.append(t1)
                rates.append((n1 - n0) / (t1 - t0))
        return times, rates


class Backfill:
    """Runs rows through check -> download -> hash -> write. One instance, one run."""

    def __init__(
        self,
        settings: Settings,
        store: RecordStore,
        failures: FailureSink,
        *,
        fetcher: ImageFetcher | None = None,
        options: BackfillOptions | None = None,
        algo: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        thumbnails: ThumbnailStore | None = None,
        on_row: RowListener | None = None,
        screen: RowScreen | None = None,
        lost: RowLost | None = None,
        embedder: Embedder | None = None,
        products: ProductIndex | None = None,
        writer: RecordWriter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.failures = failures
        self.options = options or BackfillOptions()
        self._pipeline = get_pipeline(algo) if algo else get_pipeline()
        self.algo = self._pipeline.algo
        if fetcher is None and not self.options.dry_run:
            from dupcheck.bootstrap import build_fetcher

            fetcher = build_fetcher(settings)
        self.fetcher = fetcher
        if thumbnails is None and not self.options.dry_run:
            from dupcheck.bootstrap import build_thumbnails

            thumbnails = build_thumbnails(settings)
        self.thumbnails = thumbnails
        if embedder is None and not self.options.dry_run:
            from dupcheck.bootstrap import build_local_products

            embedder, products = build_local_products(settings) or (None, None)
        self._embedder = embedder if products is not None else None
        self.products = products if self._embedder is not None else None
        self._product_model = str(settings.product_model or default_model_path()) if self._embedder else None
        self._sleep = sleep
        self._on_row = on_row
        self._screen = screen
        self._lost = lost
        if writer is None:
            from dupcheck.bootstrap import build_writer

            writer = build_writer(settings, store, thumbnails=self.thumbnails, products=self.products)
        self.writer = writer
        self.summary = BackfillSummary(hash_algo=self.algo, failures_file=str(failures.path))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drop = threading.Event()  # stopped now: rows not hashed yet are not written (stop(now=True))
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._jobs = threading.BoundedSemaphore(1)  # hashing jobs in the pool (set with the pool)
        self._bar: Any = None
        self._started = 0.0
        self._last_sample = 0.0

    # -- bookkeeping ----------------------------------------------------------------------------

    def _advance(self, kind: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.summary, kind, getattr(self.summary, kind) + n)
            if self._bar is not None:
                self._bar.update(n)
            now = time.monotonic()
            if now - self._last_sample >= 0.5:
                self._last_sample = now
                self._sample(now)

    def _sample(self, now: float) -> None:
        s = self.summary
        s.timeline.append((round(now - self._started, 3), s.done + s.updated + s.skipped + s.failed))

    def _stored(self, kind: str, row: CatalogRow, record: HashRecord) -> None:
        self._advance(kind)
        if self._on_row is not None:
            self._on_row(kind, row, record)

    def stop(self, *, now: bool = False) -> None:
        """End the run early, as Ctrl-C does: no new download starts, not even of the rows already
        handed to the download threads; rows in flight finish and are written. With `now` (a
        cancelled import, a server stopping), rows not hashed yet are left out too: only those
        already hashed are written, and the hashing processes are killed, not waited for."""
        if now:
            self._drop.set()
        self._stop.set()

    def _fail(self, row: CatalogRow, code: str, message: str) -> None:
        self.failures.add(row, code, message)
        self._advance("failed")

    # -- run ------------------------------------------------------------------------------------

    def run(self, rows: Iterable[CatalogRow], total: int | None = None) -> BackfillSummary:
        opts = self.options
        self._started = self._last_sample = time.monotonic()
        self.summary.timeline.append((0.0, 0))
        if opts.progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        work: queue.Queue[Any] = queue.Queue(maxsize=max(2, opts.workers * 2))
        writes: queue.Queue[Any] = queue.Queue(maxsize=max(2, opts.batch_size * 4))
        pool = self._hash_pool() if not opts.dry_run else None
        # Downloaded images on their way to the hashing processes (None: hashed in the download
        # threads). Bounded: a download thread waits here when the hashing is behind; two jobs'
        # worth, so that a job slot that frees finds a full job waiting.
        to_hash: queue.Queue[Any] | None = None
        dispatcher = None
        if pool is not None:
            to_hash = queue.Queue(maxsize=2 * HASH_BATCH)
            dispatcher = threading.Thread(
                target=self._dispatch_loop, args=(pool, to_hash, writes), daemon=True, name="dispatcher"
            )
        threads = [
            threading.Thread(target=self._download_loop, args=(work, writes, to_hash), daemon=True, name=f"fetch-{i}")
            for i in range(0 if opts.dry_run else max(1, opts.workers))
        ]
        writer = threading.Thread(target=self._write_loop, args=(writes,), daemon=True, name="writer")
        for thread in [*threads, writer, *([dispatcher] if dispatcher else [])]:
            thread.start()
        try:
            self._feed(rows, work, writes)
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self._stop.set()
            _drain(work)  # not started: they are not in the store, so the next run picks them up
        except DupcheckError as exc:  # the store cannot be read: stop, keep what is done
            log.error("backfill stopped: %s", exc.message)
            self.summary.error = exc.message
            self._stop.set()
            _drain(work)
        finally:
            for _ in threads:
                work.put(_STOP)
            for thread in threads:
                _join(thread)
            if pool is not None and to_hash is not None and dispatcher is not None:
                # Before the writer stops: images already downloaded (a few per worker, even
                # after Ctrl-C) are hashed and hand their records to it.
                to_hash.put(_STOP)
                _join(dispatcher)
                pool.shutdown(wait=True, kill=self._drop.is_set())
            writes.put(_STOP)
            _join(writer)
            self._finish()
        return self.summary

    def _finish(self) -> None:
        s = self.summary
        now = time.monotonic()
        s.elapsed_s = round(now - self._started, 3)
        s.images_per_s = round(s.done / s.elapsed_s, 2) if s.elapsed_s > 0 else 0.0
        self._sample(now)
        if self._bar is not None:
            self._bar.close()

    def _hash_pool(self) -> RestartingPool | None:
        """One hashing process per CPU, or none (`hash_workers < 0`: hash in the download threads).
        A process that dies (the out-of-memory killer) is replaced and its rows hashed again, one
        at a time; a row it dies on twice fails as `worker_died` (worker_pool.py)."""
        if self.options.hash_workers < 0:
            return None
        workers = self.options.hash_workers or os.cpu_count() or 1
        initargs = (self.algo, self.settings.max_image_pixels, self.options.hash_niceness, self._product_model)

        def make() -> ProcessPoolExecutor:
            # spawn, not fork: forking a process that runs threads (downloads, writer) can copy held locks.
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=init_worker, initargs=initargs)  # fmt: skip
            # The pool starts a process per job until it has `workers`: start them all now, so they
            # import while the first downloads are on their way, not one after the other later.
            for _ in range(workers):
                pool.submit(ready)
            return pool

        # Downloads hand images over without waiting for their hashes (see _process), so this
        # bounds the jobs, and with HASH_BATCH the images, between download and hash: one
        # hashing and one queued per worker keep it busy.
        self._jobs = threading.BoundedSemaphore(workers * 2)
        return RestartingPool(make, what="hashing process", one_by_one=True, on_died=_died_outcomes)

    # -- stage 1: read and check (main thread) ---------------------------------------------------

    def _feed(self, rows: Iterable[CatalogRow], work: queue.Queue[Any], writes: queue.Queue[Any]) -> None:
        iterator = iter(rows)
        while not self._stop.is_set():
            batch = list(islice(iterator, self.options.batch_size))
            if not batch:
                return
            with self._lock:
                self.summary.rows += len(batch)
            valid = []
            for row in batch:
                if row.error is not None:
                    self._fail(row, *row.error)
                else:
                    valid.append(row)
            existing = {} if self.options.force or not valid else self.store.get_many([r.entity_id for r in valid])
            done = {
                row.entity_id: record for row in valid
                if (record := existing.get(row.entity_id)) is not None
                and record.image_url == row.image_url and record.hash_algo == self.algo
            }  # fmt: skip
            # A record without the thumbnail its pipeline keeps, or without its product vector, is not
            # done: it is hashed again.
            for entity_id in self._without_thumbnail(list(done)) | self._without_vector(list(done)):
                del done[entity_id]
            for row in valid:
                if self._stop.is_set():
                    return  # stopped: rows not started stay out of the store, for a later run
                record = done.get(row.entity_id)
                if record is not None:
                    if record.sku == row.sku:
                        self._stored("skipped", row, record)
                    elif self.options.dry_run:
                        self._advance("would_fetch")
                    else:  # same image, new sku: no download needed
                        record = dataclasses.replace(record, sku=row.sku, updated_at=utc_now())
                        writes.put(("updated", row, Entry(record), None))  # its thumbnail stays as it is
                elif self.options.dry_run:
                    self._advance("would_fetch")
                else:
                    work.put(row)  # blocks when downloads are behind: back-pressure on the reader

    def _without_thumbnail(self, entity_ids: list[str]) -> set[str]:
        if not entity_ids or self.thumbnails is None or not self._pipeline.keeps_thumbnails:
            return set()
        return self.thumbnails.missing(entity_ids)

    def _without_vector(self, entity_ids: list[str]) -> set[str]:
        return self.products.missing(entity_ids) if entity_ids and self.products is not None else set()

    # -- stage 2: download (download threads; they hash too when there is no pool) --------------

    def _download_loop(
        self, work: queue.Queue[Any], writes: queue.Queue[Any], to_hash: queue.Queue[Any] | None
    ) -> None:
        while True:
            row = work.get()
            if row is _STOP:
                return
            if self._stop.is_set():
                continue  # stopped: a row not yet downloaded is not started (a cancelled import, Ctrl-C)
            try:
                self._process(row, writes, to_hash)
            except Exception as exc:  # noqa: BLE001 - one row's failure must not end the run
                log.exception("backfill of %s failed", row.entity_id)
                self._fail(row, "internal_error", f"{type(exc).__name__}: {exc}")

    def _process(self, row: CatalogRow, writes: queue.Queue[Any], to_hash: queue.Queue[Any] | None) -> None:
        try:
            data = self._fetch(row.image_url)
        except DupcheckError as exc:
            if not self._drop.is_set():  # after a stop(now=True): not a failure, a row for the next run
                self._fail(row, *row_failure(exc))
            return
        if self._drop.is_set():
            return  # stopped now: not started for this run (a resumed job downloads it again)
        if to_hash is None:
            outcome = hash_row(
                self._pipeline,
                self.settings.max_image_pixels,
                row.entity_id,
                row.sku,
                row.image_url,
                data,
                embedder=self._embedder,
            )
            if not self._drop.is_set():  # hashed after a stop(now=True): not written
                self._hashed(row, outcome, writes)
            return
        # Hand the image over and go on downloading: a thread that waited for its hash was a
        # download slot doing nothing, and at 50 ms of upstream latency the slots, not the
        # cores, capped the rate. The queue is bounded: the images in between stay few.
        to_hash.put((row, data))

    # -- stage 3: hashing jobs (dispatcher thread), their records back (the pool's thread) ---------

    def _dispatch_loop(self, pool: RestartingPool, to_hash: queue.Queue[Any], writes: queue.Queue[Any]) -> None:
        """Downloaded images to the hashing processes, a few a job: as many as are waiting when
        a job slot frees (HASH_BATCH, HASH_BATCH_BYTES at most), so a busy pool gets full jobs
        and an idle one gets each image at once. Ends at _STOP, after every image before it."""
        while True:
            item = to_hash.get()
            if item is _STOP:
                return
            if self._drop.is_set():
                continue  # stopped now: not hashed
            self._jobs.acquire()  # a slot frees when a job ends: meanwhile more images queue up
            batch = [item]
            stop = _take_more(to_hash, batch, _job_full)
            if self._drop.is_set():  # stopped now: these are not hashed
                self._jobs.release()
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
            self._jobs.release()
            for row in rows:
                self._fail(row, "internal_error", f"{type(exc).__name__}: {exc}")
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
                    self._fail(row, code, f"{type(error).__name__}: {error}")
            else:
                for row, outcome in zip(rows, future.result(), strict=True):
                    self._hashed(row, outcome, writes)
        finally:
            self._jobs.release()

    def _hashed(self, row: CatalogRow, outcome: Outcome, writes: queue.Queue[Any]) -> None:
        status, payload = outcome
        if status != "ok":
            self._fail(row, *payload)
            return
        claim: Claim | None = None
        if self._screen is not None:
            try:
                passage = self._screen(row, payload)
            except DupcheckError as exc:  # the screen's look-up failed (the index, the store): this row failed
                self._fail(row, *row_failure(exc))
                return
            if passage is None:
                return
            if isinstance(passage, Refusal):
                if passage.kind == "failed":
                    self._fail(row, passage.code, passage.message)
                else:
                    self._advance(passage.kind)
                return
            claim = passage.claim
        writes.put(("done", row, payload, claim))

    def _fetch(self, url: str) -> bytes:
        assert self.fetcher is not None
        host = (urlsplit(url).netloc or "").lower()
        with self._lock:
            gate = self._hosts.get(host)
            if gate is None:
                gate = self._hosts[host] = threading.BoundedSemaphore(max(1, self.options.per_host))
        attempt = 0
        while True:
            with gate:
                try:
                    return self.fetcher.fetch(url)
                except (UpstreamError, UpstreamTimeout) as exc:
                    # UpstreamStatusError says whether its status is worth retrying (429, 5xx);
                    # connection errors and timeouts are.
                    if not getattr(exc, "retryable", True) or attempt >= self.options.retries or self._stop.is_set():
                        raise
            delay = self.options.backoff * (2**attempt) * random.uniform(0.5, 1.5)
            log.info("retrying %s in %.2fs", url, delay)
            self._sleep(delay)
            attempt += 1

    # -- stage 4: batched writes (writer thread) -------------------------------------------------

    def _write_loop(self, writes: queue.Queue[Any]) -> None:
        size = self.options.batch_size
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
        records with their claims' commits. A row whose claim was fenced, or whose kept picture is
        gone, is not stored: the screen's owner hears of the first, the failures file of the second."""
        try:
            saved = self.writer.save_many([(entry, claim) for _, _, entry, claim in batch])
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable and friends: these rows failed
            message = exc.message if isinstance(exc, DupcheckError) else f"{type(exc).__name__}: {exc}"
            for _, row, _, claim in batch:
                self._withdraw(claim)
                self._fail(row, getattr(exc, "code", "store_unavailable"), message)
            return
        for kind, row, entry, claim in batch:
            if claim is not None and claim.claim_id in saved.beaten:
                counted = self._lost(row, saved.beaten[claim.claim_id]) if self._lost is not None else "failed"
                self._advance(counted)
            elif entry.record.entity_id in saved.gone:
                self._fail(row, KeptImageGone.code, kept_gone_message(entry.record.image_url))
            else:
                self._stored(kind, row, entry.record)

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


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _join(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(0.5)
