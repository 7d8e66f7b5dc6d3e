"""Rebuild the search index from the record store, re-hashing records of an older pipeline.

    python -m dupcheck reindex [--target local|dynamodb]

For recovery (the index was lost or drifted) and after a hash-pipeline change:

1. count store records and index documents (before);
2. every record whose `hash_algo` is not the current pipeline's is upgraded: converted in
   place when only the stored form changed (`HashPipeline.upgrade`), otherwise re-hashed from
   its image_url through the backfill engine (same downloads, retries, hashing processes,
   batched writes, failures file); so is every record of the current pipeline whose thumbnail
   is missing from the thumbnail store (an import of a file without thumbnails, a write that
   failed halfway): v2 and v3 records are re-hashed into v4 with their thumbnails; and, where
   similar products are on in the embedded mode, every record without its product vector;
3. rebuild the index from the store: local = the in-process index loaded from SQLite (what
   the local server does at start) and checked by searching a sample of records; dynamodb =
   a parallel DynamoDB scan bulk-upserted into OpenSearch (or any HashIndex passed in);
4. count again (after) and fail loudly (exit 1, a clear message) unless every store record is
   on the current pipeline and index documents == store records.

The last stdout line is the report as JSON.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dupcheck.bootstrap import build_index, build_local_products, build_thumbnails
from dupcheck.core.fingerprint.hashing import HashPipeline, get_pipeline
from dupcheck.core.models import HashRecord
from dupcheck.core.ports import HashIndex, ImageFetcher, ProductIndex, ProvisionedIndex, RecordStore, ThumbnailStore
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import Backfill, BackfillOptions, BackfillSummary, FailureLog, Target
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.exit_codes import ExitCode

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
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.ok else ExitCode.FAILED

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def iter_rows(records: Iterable[HashRecord]) -> Iterator[CatalogRow]:
    """Stored records as catalog rows: re-hashing them goes through the backfill engine."""
    for number, record in enumerate(records, start=1):
        error = None if record.image_url else ("missing_image_url", "record has no image_url")
        yield CatalogRow(number, record.entity_id, record.sku, record.image_url, error)


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
    thumbnails: ThumbnailStore | None = None,
) -> ReindexReport:
    """Library entry point. `index` None builds the target's index from settings (local: the
    in-process index loaded from SQLite; dynamodb: OpenSearch); `thumbnails` None, the target's
    thumbnail store."""
    pipeline = pipeline or get_pipeline()
    thumbnails = thumbnails if thumbnails is not None else build_thumbnails(settings)
    options = options or BackfillOptions()
    report = ReindexReport(target=target, hash_algo=pipeline.algo)
    local = index is None and target == "local"

    # 1. before
    if local:
        index = build_index(settings.model_copy(update={"index": "local"}), pipeline, store)
    elif index is None:
        index = build_index(settings.model_copy(update={"index": "opensearch"}), pipeline, store)
    if isinstance(index, ProvisionedIndex):
        index.ensure_index()
    report.before = {"store_records": store.count(), "index_docs": index.count()}
    log.info("before: %s", report.before)

    # 2. upgrade records of another pipeline: converted where the pipeline can, re-hashed through
    # the backfill engine otherwise (none to re-hash: no engine, no bar)
    products = build_local_products(settings) if target == "local" else None
    converted = _Converter(store, pipeline, thumbnails, products[1] if products else None)
    failure_log = FailureLog(failures)
    try:
        stale = converted.needing_images(store.scan(segments))
        first = next(stale, None)
        summary = BackfillSummary(hash_algo=pipeline.algo, failures_file=str(failures))
        if first is not None:
            engine = Backfill(settings, store, failure_log, fetcher=fetcher, options=options, algo=pipeline.algo,
                              thumbnails=thumbnails, embedder=products[0] if products else None,
                              products=products[1] if products else None)  # fmt: skip
            summary = engine.run(iter_rows(itertools.chain([first], stale)))
    finally:
        failure_log.close()
    report.rehash = {
        "converted": converted.count,
        "missing_thumbnails": converted.missing_thumbnails,
        "missing_product_vectors": converted.missing_vectors,
        **{k: summary.to_dict()[k] for k in ("rows", "done", "failed", "skipped", "elapsed_s", "failures_file")},
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
            for record in store.scan(segments):
                if record.hash_algo == pipeline.algo:
                    yield record
                else:
                    stale_left += 1

        bar = tqdm(current(), total=report.before["store_records"], unit="doc", desc="index",
                   disable=not options.progress, dynamic_ncols=True)  # fmt: skip
        report.indexed = index.upsert_many(bar)
        bar.close()
        if isinstance(index, ProvisionedIndex):
            index.refresh()  # OpenSearch counts only refreshed documents

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


class _Converter:
    """Records of another pipeline that the current one converts without their image (a new
    stored form of the same hashes) are written back in batches; the rest pass through, and so
    do the current pipeline's records whose thumbnail (or product vector) is missing."""

    BATCH = 500

    def __init__(
        self, store: RecordStore, pipeline: HashPipeline, thumbnails: ThumbnailStore | None,
        products: ProductIndex | None = None,
    ) -> None:  # fmt: skip
        self.store, self.pipeline, self.thumbnails, self.products = store, pipeline, thumbnails, products
        self.count = self.missing_thumbnails = self.missing_vectors = 0

    def needing_images(self, records: Iterable[HashRecord]) -> Iterator[HashRecord]:
        batch: list[HashRecord] = []
        current: list[HashRecord] = []
        for record in records:
            if record.hash_algo == self.pipeline.algo:
                current.append(record)
                if len(current) >= self.BATCH:
                    yield from self._without_thumbnail(current)
                    current = []
                continue
            upgraded = self.pipeline.upgrade(record)
            if upgraded is None:
                yield record
                continue
            batch.append(upgraded)
            if len(batch) >= self.BATCH:
                self.count += self.store.put_many(batch)
                batch = []
        if batch:
            self.count += self.store.put_many(batch)
        yield from self._without_thumbnail(current)

    def _without_thumbnail(self, records: list[HashRecord]) -> list[HashRecord]:
        ids = [r.entity_id for r in records]
        missing: set[str] = set()
        if records and self.thumbnails is not None and self.pipeline.keeps_thumbnails:
            missing = self.thumbnails.missing(ids)
            self.missing_thumbnails += len(missing)
        if records and self.products is not None:
            without_vector = self.products.missing(ids)
            self.missing_vectors += len(without_vector)
            missing |= without_vector
        return [r for r in records if r.entity_id in missing]


def _verify(index: HashIndex, store: RecordStore, pipeline: HashPipeline, report: ReindexReport) -> int:
    """Search a sample of records by their own hash: each must come back at distance 0."""
    checked = 0
    for record in itertools.islice((r for r in store.scan() if r.hash_algo == pipeline.algo), VERIFY_SAMPLE):
        hits = index.search([record.hash], 100, max_distance=0)
        if record.entity_id not in {h.entity_id for h in hits}:
            report.message = f"verification failed: {record.entity_id} is not found by its own hash"
            return checked
        checked += 1
    return checked
