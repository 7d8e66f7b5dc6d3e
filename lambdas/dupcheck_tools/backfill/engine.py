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

This module reads and checks the rows and runs the stages; the stages after the download threads'
fetch (the per-host limit, the hashing processes and their dispatcher, the writer) are in
stages.py, and the summary and the counting every thread does are in tally.py.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from dupcheck.core.catalog.gate import Passage
from dupcheck.core.catalog.products import Embedder, default_model_path
from dupcheck.core.catalog.writer import RecordWriter
from dupcheck.core.errors import DupcheckError
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.jobs.catalog_rows import row_failure
from dupcheck.core.models import Claim, Entry, utc_now
from dupcheck.core.ports import ImageFetcher, ProductIndex, RecordStore, ThumbnailStore
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill.failures import FailureSink
from dupcheck_tools.backfill.stages import _STOP, HASH_BATCH, HashingStage, HostFetcher, RowLost, WriteStage
from dupcheck_tools.backfill.tally import BackfillSummary, RowListener, RunTally
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.hash_workers import Outcome, hash_row

log = logging.getLogger(__name__)


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
        product_model = str(settings.product_model or default_model_path()) if self._embedder else None
        self._screen = screen
        if writer is None:
            from dupcheck.bootstrap import build_writer

            writer = build_writer(settings, store, thumbnails=self.thumbnails, products=self.products)
        self.writer = writer
        self.summary = BackfillSummary(hash_algo=self.algo, failures_file=str(failures.path))
        self.tally = RunTally(self.summary, failures, on_row)
        self._stop = threading.Event()
        self._drop = threading.Event()  # stopped now: rows not hashed yet are not written (stop(now=True))
        opts = self.options
        self._downloads = (
            None if fetcher is None
            else HostFetcher(fetcher, per_host=opts.per_host, retries=opts.retries, backoff=opts.backoff, sleep=sleep,
                             stop=self._stop)
        )  # fmt: skip
        initargs = (self.algo, settings.max_image_pixels, opts.hash_niceness, product_model)
        self.hashing = HashingStage(self.tally, self._hashed, self._drop, workers=opts.hash_workers, initargs=initargs)
        self._writes = WriteStage(writer, self.tally, lost, opts.batch_size)

    def stop(self, *, now: bool = False) -> None:
        """End the run early, as Ctrl-C does: no new download starts, not even of the rows already
        handed to the download threads; rows in flight finish and are written. With `now` (a
        cancelled import, a server stopping), rows not hashed yet are left out too: only those
        already hashed are written, and the hashing processes are killed, not waited for."""
        if now:
            self._drop.set()
        self._stop.set()

    # -- run ------------------------------------------------------------------------------------

    def run(self, rows: Iterable[CatalogRow], total: int | None = None) -> BackfillSummary:
        opts = self.options
        self.tally.start(total, opts.progress)
        work: queue.Queue[Any] = queue.Queue(maxsize=max(2, opts.workers * 2))
        writes: queue.Queue[Any] = queue.Queue(maxsize=max(2, opts.batch_size * 4))
        pool = self.hashing.pool() if not opts.dry_run else None
        # Downloaded images on their way to the hashing processes (None: hashed in the download
        # threads). Bounded: a download thread waits here when the hashing is behind; two jobs'
        # worth, so that a job slot that frees finds a full job waiting.
        to_hash: queue.Queue[Any] | None = None
        dispatcher = None
        if pool is not None:
            to_hash = queue.Queue(maxsize=2 * HASH_BATCH)
            dispatcher = threading.Thread(
                target=self.hashing.dispatch_loop, args=(pool, to_hash, writes), daemon=True, name="dispatcher"
            )
        threads = [
            threading.Thread(target=self._download_loop, args=(work, writes, to_hash), daemon=True, name=f"fetch-{i}")
            for i in range(0 if opts.dry_run else max(1, opts.workers))
        ]
        writer = threading.Thread(target=self._writes.loop, args=(writes,), daemon=True, name="writer")
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
            self.tally.finish()
        return self.summary

    # -- stage 1: read and check (main thread) ---------------------------------------------------

    def _feed(self, rows: Iterable[CatalogRow], work: queue.Queue[Any], writes: queue.Queue[Any]) -> None:
        iterator = iter(rows)
        while not self._stop.is_set():
            batch = list(islice(iterator, self.options.batch_size))
            if not batch:
                return
            self.tally.read(len(batch))
            valid = []
            for row in batch:
                if row.error is not None:
                    self.tally.fail(row, *row.error)
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
                        self.tally.stored("skipped", row, record)
                    elif self.options.dry_run:
                        self.tally.advance("would_fetch")
                    else:  # same image, new sku: no download needed
                        record = dataclasses.replace(record, sku=row.sku, updated_at=utc_now())
                        writes.put(("updated", row, Entry(record), None))  # its thumbnail stays as it is
                elif self.options.dry_run:
                    self.tally.advance("would_fetch")
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
                self.tally.fail(row, "internal_error", f"{type(exc).__name__}: {exc}")

    def _process(self, row: CatalogRow, writes: queue.Queue[Any], to_hash: queue.Queue[Any] | None) -> None:
        try:
            assert self._downloads is not None
            data = self._downloads.fetch(row.image_url)
        except DupcheckError as exc:
            if not self._drop.is_set():  # after a stop(now=True): not a failure, a row for the next run
                self.tally.fail(row, *row_failure(exc))
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

    def _hashed(self, row: CatalogRow, outcome: Outcome, writes: queue.Queue[Any]) -> None:
        status, payload = outcome
        if status != "ok":
            self.tally.fail(row, *payload)
            return
        claim: Claim | None = None
        if self._screen is not None:
            try:
                passage = self._screen(row, payload)
            except DupcheckError as exc:  # the screen's look-up failed (the index, the store): this row failed
                self.tally.fail(row, *row_failure(exc))
                return
            if passage is None:
                return
            if isinstance(passage, Refusal):
                if passage.kind == "failed":
                    self.tally.fail(row, passage.code, passage.message)
                else:
                    self.tally.advance(passage.kind)
                return
            claim = passage.claim
        writes.put(("done", row, payload, claim))


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _join(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(0.5)
