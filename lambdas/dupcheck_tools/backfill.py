"""Backfill a catalog file (CSV / JSON Lines) into the record store: concurrent, resumable.

    python -m dupcheck backfill --catalog FILE [--target local|dynamodb] [--workers N] [--resume]

Pipeline (every queue is bounded, so memory stays flat however long the catalog is):

    catalog reader -> store check (get_many, batches) -> download threads -> hash processes
    (main thread)     skip unchanged rows, no download    (per-host limit,    (pipeline built
                                                          retries, backoff)   once per process)
                                                                   \\-> writer thread: put_many

Resume and idempotency are one mechanism: before downloading a row, the target store itself is
asked (in batches) whether it already holds that entity_id with the same image_url and the
current pipeline's hash_algo. If so the row is unchanged and skipped without a download; if the
URL (or the pipeline) changed, it is fetched and re-hashed. There is no checkpoint file to lose:
whatever reached the store before a crash, kill -9 or network loss is done, and only rows in
flight at that moment are fetched again. Records are built by `DupcheckService.record_for`, as
the API's register does.

Every failure (bad row, refused URL, HTTP error, not an image, too large, timeout, store write)
is one line in the failures file; the exit code is 0 when nothing failed, 1 otherwise, 2 for a
usage error and 130 when interrupted. The last stdout line is the run's summary as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import logging
import multiprocessing
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from dupcheck.core.errors import DupcheckError, UpstreamError, UpstreamTimeout
from dupcheck.core.hashing import get_pipeline
from dupcheck.core.models import HashRecord, utc_now
from dupcheck.core.ports import ImageFetcher, RecordStore
from dupcheck.core.settings import Settings, SettingsError
from dupcheck_tools.catalog import CatalogError, CatalogReader, CatalogRow, Columns

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
Target = Literal["local", "dynamodb"]
FAILURE_FIELDS = ("row", "entity_id", "image_url", "code", "message")
_STOP = object()


@dataclass
class BackfillOptions:
    workers: int = 32  # concurrent downloads
    hash_workers: int = 0  # hashing processes; 0 = one per CPU; -1 = hash in the download threads
    per_host: int = 16  # concurrent downloads from any one host
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
    interrupted: bool = False
    error: str | None = None  # a fatal error (e.g. the store stayed unreachable) ended the run early
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed or self.error else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("timeline")
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


# -- failures file -----------------------------------------------------------------------------------


class FailureLog:
    """Failures as CSV (default) or JSON Lines (`.jsonl`/`.json`), one line per failed row,
    flushed at once so a crash keeps what was written. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._jsonl = self.path.suffix.lower() in (".jsonl", ".json", ".ndjson")
        self._lock = threading.Lock()
        try:
            self._file: IO[str] = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CatalogError(f"cannot write the failures file {self.path}: {exc} (use --failures)") from exc
        self._csv = None if self._jsonl else csv.writer(self._file)
        if self._csv is not None:
            self._csv.writerow(FAILURE_FIELDS)
            self._file.flush()
        self.count = 0

    def add(self, row: CatalogRow, code: str, message: str) -> None:
        values = (row.row, row.entity_id, row.image_url, code, message)
        with self._lock:
            if self._csv is not None:
                self._csv.writerow(values)
            else:
                self._file.write(json.dumps(dict(zip(FAILURE_FIELDS, values, strict=True))) + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def default_failures_path(catalog: Path) -> Path:
    """`catalog.csv` -> `catalog.failures.csv`, next to the catalog."""
    name = catalog.name
    for suffix in (".gz", ".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return catalog.with_name(f"{name}.failures.csv")


# -- hashing processes -------------------------------------------------------------------------------

_worker_service: Any = None


class _Unused:
    """Store/index/fetcher stand-in for the hashing workers, which only call record_for."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"the backfill hashing worker does not use {name}")


def _build_record_service(settings: Settings, algo: str) -> Any:
    from dupcheck.bootstrap import build_service

    unused: Any = _Unused()
    return build_service(settings, store=unused, index=unused, fetcher=unused, pipeline=get_pipeline(algo))


def _init_hash_worker(settings: Settings, algo: str) -> None:
    """Runs once per hashing process: builds the pipeline (through the service) once."""
    global _worker_service
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts us down
    _worker_service = _build_record_service(settings, algo)
    parent = os.getppid()

    def watch_parent() -> None:  # a kill -9'd parent cannot shut us down: leave on our own
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch_parent, daemon=True, name="parent-watch").start()


def _hash_job(service: Any, entity_id: str, sku: str, image_url: str, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", service.record_for(entity_id=entity_id, sku=sku, image_url=image_url, data=data)
    except DupcheckError as exc:
        return "error", (exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - reported as this row's failure, never a crash
        return "error", ("internal_error", f"{type(exc).__name__}: {exc}")


def _hash_in_worker(entity_id: str, sku: str, image_url: str, data: bytes) -> tuple[str, Any]:
    return _hash_job(_worker_service, entity_id, sku, image_url, data)


# -- the engine --------------------------------------------------------------------------------------


class Backfill:
    """Runs rows through check -> download -> hash -> write. One instance, one run."""

    def __init__(
        self,
        settings: Settings,
        store: RecordStore,
        failures: FailureLog,
        *,
        fetcher: ImageFetcher | None = None,
        options: BackfillOptions | None = None,
        algo: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.failures = failures
        self.options = options or BackfillOptions()
        self.algo = algo or get_pipeline().algo
        if fetcher is None and not self.options.dry_run:
            from dupcheck.bootstrap import build_fetcher

            fetcher = build_fetcher(settings)
        self.fetcher = fetcher
        self._sleep = sleep
        self.summary = BackfillSummary(hash_algo=self.algo, failures_file=str(failures.path))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
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
        threads = [
            threading.Thread(
                target=self._download_loop, args=(work, writes, pool), daemon=True, name=f"fetch-{i}"
            )
            for i in range(0 if opts.dry_run else max(1, opts.workers))
        ]
        writer = threading.Thread(target=self._write_loop, args=(writes,), daemon=True, name="writer")
        for thread in [*threads, writer]:
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
                _put(work, _STOP)
            for thread in threads:
                _join(thread)
            _put(writes, _STOP)
            _join(writer)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
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

    def _hash_pool(self) -> ProcessPoolExecutor | None:
        if self.options.hash_workers < 0:
            self._local_service = _build_record_service(self.settings, self.algo)
            return None
        workers = self.options.hash_workers or os.cpu_count() or 1
        # spawn, not fork: forking a process that runs threads (downloads, writer) can copy held locks.
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_hash_worker,
            initargs=(self.settings, self.algo),
        )

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
            existing = (
                {} if self.options.force or not valid else self.store.get_many([r.entity_id for r in valid])
            )
            for row in valid:
                record = existing.get(row.entity_id)
                if record is not None and record.image_url == row.image_url and record.hash_algo == self.algo:
                    if record.sku == row.sku:
                        self._advance("skipped")
                    elif self.options.dry_run:
                        self._advance("would_fetch")
                    else:  # same image, new sku: no download needed
                        writes.put(
                            ("updated", row, dataclasses.replace(record, sku=row.sku, updated_at=utc_now()))
                        )
                elif self.options.dry_run:
                    self._advance("would_fetch")
                else:
                    work.put(row)  # blocks when downloads are behind: back-pressure on the reader

    # -- stage 2 and 3: download, then hash (download threads) -----------------------------------

    def _download_loop(
        self, work: queue.Queue[Any], writes: queue.Queue[Any], pool: ProcessPoolExecutor | None
    ) -> None:
        while True:
            row = work.get()
            if row is _STOP:
                return
            try:
                self._process(row, writes, pool)
            except Exception as exc:  # noqa: BLE001 - one row's failure must not end the run
                log.exception("backfill of %s failed", row.entity_id)
                self._fail(row, "internal_error", f"{type(exc).__name__}: {exc}")

    def _process(self, row: CatalogRow, writes: queue.Queue[Any], pool: ProcessPoolExecutor | None) -> None:
        try:
            data = self._fetch(row.image_url)
        except DupcheckError as exc:
            self._fail(row, exc.code, exc.message)
            return
        if pool is None:
            status, payload = _hash_job(self._local_service, row.entity_id, row.sku, row.image_url, data)
        else:
            future: Future[tuple[str, Any]] = pool.submit(
                _hash_in_worker, row.entity_id, row.sku, row.image_url, data
            )
            del data
            status, payload = future.result()
        if status == "ok":
            writes.put(("done", row, payload))
        else:
            self._fail(row, *payload)

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
                    if (
                        not getattr(exc, "retryable", True)
                        or attempt >= self.options.retries
                        or self._stop.is_set()
                    ):
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
            stop = False
            linger = time.monotonic() + 0.05  # a little patience fills batches without delaying progress
            while len(batch) < size:
                try:
                    more = writes.get(timeout=max(0.0, linger - time.monotonic()))
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._flush(batch)
            if stop:
                return

    def _flush(self, batch: list[tuple[str, CatalogRow, HashRecord]]) -> None:
        try:
            self.store.put_many(record for _, _, record in batch)
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable and friends: these rows failed
            message = exc.message if isinstance(exc, DupcheckError) else f"{type(exc).__name__}: {exc}"
            for _, row, _ in batch:
                self._fail(row, getattr(exc, "code", "store_unavailable"), message)
            return
        for kind, _, _ in batch:
            self._advance(kind)


def _put(q: queue.Queue[Any], item: Any) -> None:
    q.put(item)


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _join(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(0.5)


# -- library entry points ----------------------------------------------------------------------------


def build_target_store(settings: Settings, target: Target) -> RecordStore:
    """local = SQLite at settings.sqlite_path (the local server loads its index from it);
    dynamodb = the table in settings.table_name."""
    if target == "dynamodb":
        if not settings.table_name:
            raise SettingsError("the dynamodb target needs a table: --table or DUPCHECK_TABLE_NAME")
        from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore

        return DynamoDBRecordStore.from_settings(settings)
    from dupcheck.adapters.sqlite_store import SqliteRecordStore

    return SqliteRecordStore(settings.sqlite_path)


def target_settings(
    target: Target, *, table: str | None = None, region: str | None = None,
    data_dir: str | os.PathLike[str] | None = None, **overrides: Any,
) -> Settings:  # fmt: skip
    """Settings from DUPCHECK_* variables, with the target's store and any overrides."""
    values: dict[str, Any] = {"store": "dynamodb" if target == "dynamodb" else "sqlite", **overrides}
    if table:
        values["table_name"] = table
    if region:
        values["aws_region"] = region
    if data_dir:
        values["data_dir"] = Path(data_dir)
    return Settings.from_env(**values)


def backfill_catalog(
    catalog: str | os.PathLike[str],
    *,
    target: Target = "local",
    table: str | None = None,
    region: str | None = None,
    failures: str | os.PathLike[str] | None = None,
    columns: Columns | None = None,
    image_base_url: str | None = None,
    options: BackfillOptions | None = None,
    settings: Settings | None = None,
    store: RecordStore | None = None,
    fetcher: ImageFetcher | None = None,
) -> BackfillSummary:
    """Backfill one catalog file (or s3:// URI) into the target store; what the CLI and the
    notebook call. Raises CatalogError / SettingsError for usage problems."""
    from dupcheck_tools.catalog import local_catalog

    settings = settings or target_settings(target, table=table, region=region)
    with local_catalog(catalog, region=region or settings.aws_region or None) as path:
        reader = CatalogReader(path, columns or Columns(), image_base_url)
        if failures:
            failures_path = Path(failures)
        elif str(catalog).startswith("s3://"):  # not next to a temporary copy: in the working folder
            failures_path = default_failures_path(Path.cwd() / path.name)
        else:
            failures_path = default_failures_path(path)
        store = store or build_target_store(settings, target)
        failure_log = FailureLog(failures_path)
        try:
            engine = Backfill(settings, store, failure_log, fetcher=fetcher, options=options)
            total = reader.count_rows() if (options or BackfillOptions()).progress else None
            return engine.run(reader, total)
        finally:
            failure_log.close()


# -- CLI ---------------------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=("local", "dynamodb"),
        default=None,
        help="record store: local SQLite (default unless DUPCHECK_STORE=dynamodb) or DynamoDB",
    )
    parser.add_argument("--table", help="DynamoDB table (default DUPCHECK_TABLE_NAME)")
    parser.add_argument("--region", help="AWS region (default DUPCHECK_AWS_REGION / AWS_REGION)")
    parser.add_argument("--workers", type=int, default=32, help="concurrent downloads (default 32)")
    parser.add_argument(
        "--hash-workers",
        type=int,
        default=0,
        help="hashing processes (default: one per CPU; -1 hashes in the download threads)",
    )
    parser.add_argument(
        "--per-host", type=int, default=16, help="concurrent downloads per image host (default 16)"
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="retries on 429/5xx/connection errors (default 3)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=100, help="store reads/writes per call (default 100)"
    )
    parser.add_argument("--failures", help="failures file, .csv or .jsonl (default: next to the catalog)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="CSV or JSON Lines file (or s3://bucket/key)")
    add_common_arguments(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip rows the store already holds unchanged (always on; see --force)",
    )
    parser.add_argument("--force", action="store_true", help="re-download and re-hash every row")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and check against the store only: report what would be fetched",
    )
    parser.add_argument("--id-column", default="entity_id", help="entity id column (default entity_id)")
    parser.add_argument("--sku-column", default="sku", help="sku column (default sku; optional)")
    parser.add_argument(
        "--url-column", default=None, help="image URL column (default: image_url, else small_image)"
    )
    parser.add_argument("--image-base-url", help="base URL for relative image paths (small_image exports)")


def options_from_args(args: argparse.Namespace) -> BackfillOptions:
    if args.workers < 1 or args.per_host < 1 or args.batch_size < 1 or args.retries < 0:
        raise CatalogError("--workers, --per-host and --batch-size must be >= 1 and --retries >= 0")
    return BackfillOptions(
        workers=args.workers, hash_workers=args.hash_workers, per_host=args.per_host, retries=args.retries,
        batch_size=min(args.batch_size, 100), force=getattr(args, "force", False),
        dry_run=getattr(args, "dry_run", False), progress=not args.no_progress,
    )  # fmt: skip


def resolve_target(args: argparse.Namespace) -> Target:
    if args.target:
        return args.target  # type: ignore[no-any-return]
    return "dynamodb" if Settings.from_env().store == "dynamodb" else "local"


def parse_common(args: argparse.Namespace) -> tuple[BackfillOptions, Target, Settings]:
    """Options, target and settings from the arguments backfill and reindex share."""
    target = resolve_target(args)
    settings = target_settings(target, table=args.table, region=args.region, data_dir=getattr(args, "data_dir", None))
    return options_from_args(args), target, settings


def print_summary(summary: BackfillSummary | dict[str, Any]) -> None:
    data = summary.to_dict() if isinstance(summary, BackfillSummary) else summary
    sys.stdout.flush()
    print(json.dumps(data), flush=True)


def usage_error(message: str) -> int:
    print(json.dumps({"error": {"code": "usage", "message": message}}), file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    try:
        options, target, settings = parse_common(args)
        with _sigterm_as_interrupt():
            summary = backfill_catalog(
                args.catalog, target=target, region=args.region, failures=args.failures,
                columns=Columns(args.id_column, args.sku_column, args.url_column),
                image_base_url=args.image_base_url, options=options, settings=settings,
            )  # fmt: skip
    except (CatalogError, SettingsError) as exc:
        return usage_error(str(exc))
    print_summary(summary)
    return summary.exit_code


class _sigterm_as_interrupt:
    """SIGTERM (docker stop, SageMaker stop) is handled like Ctrl-C: flush and summarise."""

    def __enter__(self) -> None:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(*_: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *_: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def iter_rows(records: Iterable[HashRecord]) -> Iterator[CatalogRow]:
    """Stored records as catalog rows (reindex re-hashes these through the same engine)."""
    for number, record in enumerate(records, start=1):
        error = None if record.image_url else ("missing_image_url", "record has no image_url")
        yield CatalogRow(number, record.entity_id, record.sku, record.image_url, error)
