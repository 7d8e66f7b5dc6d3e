"""Rebuild the search index from the record store, re-hashing records of an older pipeline.

    python -m dupcheck reindex [--target local|dynamodb]

For recovery (the index was lost or drifted) and after a hash-pipeline change:

1. count store records and index documents (before);
2. every record whose `hash_algo` is not the current pipeline's is re-hashed from its
   image_url through the backfill engine (same downloads, retries, hashing processes, batched
   writes, failures file);
3. rebuild the index from the store: local = the in-process index loaded from SQLite (what
   the local server does at start) and checked by searching a sample of records; dynamodb =
   a parallel DynamoDB scan bulk-upserted into OpenSearch (or any HashIndex passed in);
4. count again (after) and fail loudly (exit 1, a clear message) unless every store record is
   on the current pipeline and index documents == store records.

The last stdout line is the report as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dupcheck.core.hashing import HashPipeline, get_pipeline
from dupcheck.core.models import HashRecord
from dupcheck.core.ports import HashIndex, ImageFetcher, RecordStore
from dupcheck.core.settings import Settings, SettingsError
from dupcheck_tools.backfill import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Backfill,
    BackfillOptions,
    BackfillSummary,
    FailureLog,
    Target,
    add_common_arguments,
    build_target_store,
    iter_rows,
    parse_common,
    print_summary,
    usage_error,
)
from dupcheck_tools.catalog import CatalogError

log = logging.getLogger(__name__)

VERIFY_SAMPLE = 200


@dataclass
class ReindexReport:
    target: str
    hash_algo: str
    before: dict[str, int] = field(default_factory=dict)
    rehash: dict[str, Any] = field(default_factory=dict)
    indexed: int = 0
    after: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    ok: bool = False
    message: str = ""
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.ok else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _scan(store: RecordStore, segments: int) -> Iterator[HashRecord]:
    if segments > 1:
        try:
            return iter(store.scan(segments=segments))  # type: ignore[call-arg]
        except TypeError:
            pass
    return iter(store.scan())


def _refresh(index: HashIndex) -> None:
    """OpenSearch counts only refreshed documents; other indexes need nothing."""
    refresh = getattr(index, "refresh", None)
    if callable(refresh):
        refresh()


def reindex(
    settings: Settings,
    *,
    target: Target,
    store: RecordStore,
    index: HashIndex | None = None,
    failures: Path,
    options: BackfillOptions | None = None,
    fetcher: ImageFetcher | None = None,
    pipeline: HashPipeline | None = None,
    segments: int = 4,
) -> ReindexReport:
    """Library entry point. `index` None builds the target's index from settings (local: the
    in-process index loaded from SQLite; dynamodb: OpenSearch)."""
    from dupcheck.bootstrap import build_index

    pipeline = pipeline or get_pipeline()
    options = options or BackfillOptions()
    report = ReindexReport(target=target, hash_algo=pipeline.algo)
    local = index is None and target == "local"

    # 1. before
    if local:
        index = build_index(settings.model_copy(update={"index": "local"}), pipeline, store)
    elif index is None:
        index = build_index(settings.model_copy(update={"index": "opensearch"}), pipeline, store)
    ensure = getattr(index, "ensure_index", None)
    if callable(ensure):
        ensure()
    report.before = {"store_records": store.count(), "index_docs": index.count()}
    log.info("before: %s", report.before)

    # 2. re-hash records of another pipeline through the backfill engine
    failure_log = FailureLog(failures)
    try:
        engine = Backfill(settings, store, failure_log, fetcher=fetcher, options=options, algo=pipeline.algo)
        stale = (r for r in _scan(store, segments) if r.hash_algo != pipeline.algo)
        summary: BackfillSummary = engine.run(iter_rows(stale))
    finally:
        failure_log.close()
    report.rehash = {
        k: summary.to_dict()[k] for k in ("rows", "done", "failed", "skipped", "elapsed_s", "failures_file")
    }
    if summary.interrupted:
        report.interrupted = True
        report.message = "interrupted while re-hashing; run reindex again"
        return report

    # 3. rebuild the index from the store
    stale_left = 0
    if local:
        index = build_index(settings.model_copy(update={"index": "local"}), pipeline, store)
        report.indexed = index.count()
    else:

        def current() -> Iterator[HashRecord]:
            nonlocal stale_left
            for record in _scan(store, segments):
                if record.hash_algo == pipeline.algo:
                    yield record
                else:
                    stale_left += 1

        report.indexed = index.upsert_many(current())
        _refresh(index)

    # 4. after, and verify
    store_records = store.count()
    report.after = {"store_records": store_records, "index_docs": index.count()}
    if local:
        current_records = sum(1 for r in store.scan() if r.hash_algo == pipeline.algo)
        stale_left = store_records - current_records
        report.verified = _verify(index, store, pipeline, report)
    problems = []
    if stale_left:
        problems.append(
            f"{stale_left} store records are still hashed with another pipeline than {pipeline.algo} "
            f"(their re-hash failed: see {summary.failures_file})"
        )
    if report.after["index_docs"] != store_records:
        problems.append(
            f"index holds {report.after['index_docs']} documents but the store holds {store_records} records"
        )
    if report.message:
        problems.append(report.message)
    report.ok = not problems
    report.message = (
        "; ".join(problems)
        if problems
        else (f"index rebuilt: {report.after['index_docs']} documents == {store_records} store records")
    )
    return report


def _verify(index: HashIndex, store: RecordStore, pipeline: HashPipeline, report: ReindexReport) -> int:
    """Search a sample of records by their own hash: each must come back at distance 0."""
    checked = 0
    for record in itertools.islice((r for r in store.scan() if r.hash_algo == pipeline.algo), VERIFY_SAMPLE):
        hits = index.search([record.hash_value], 100, max_distance=0)
        if record.entity_id not in {h.entity_id for h in hits}:
            report.message = f"verification failed: {record.entity_id} is not found by its own hash"
            return checked
        checked += 1
    return checked


# -- CLI ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--segments", type=int, default=4, help="DynamoDB parallel scan segments (default 4)")


def run(args: argparse.Namespace) -> int:
    try:
        options, target, settings = parse_common(args)
        store = build_target_store(settings, target)
        failures = Path(args.failures) if args.failures else settings.data_dir / "reindex.failures.csv"
        report = reindex(settings, target=target, store=store, failures=failures, options=options,
                         segments=max(1, args.segments))  # fmt: skip
    except (CatalogError, SettingsError) as exc:
        return usage_error(str(exc))
    if not report.ok and not report.interrupted:
        print(f"reindex FAILED: {report.message}", file=sys.stderr)
    print_summary(report.to_dict())
    return report.exit_code


__all__ = ["ReindexReport", "add_arguments", "reindex", "run"]
