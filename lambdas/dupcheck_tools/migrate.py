"""Migrate from the prototype: its `hash_store` table, or an export of it, into dupcheck records.

    python -m dupcheck migrate (--from-table hash_store | --from-file EXPORT) [--image-base-url URL]
        [--target local|dynamodb] [--table NAME]

The prototype's items are `{entity_id, sku, small_image, phash}`. Each becomes a catalog row
(`small_image` -> `image_url`, a relative path appended to `--image-base-url`) and goes through
the backfill engine: the same safe downloads, hashing processes, batched writes and failures
file, and the same resume (rows the target already holds with that URL and pipeline are skipped
without a download), so an interrupted migration is finished by running it again.

The old `phash` (imagehash's 64-bit pHash of the picture composited on a 512 px white canvas)
cannot be upgraded: the current pipeline stores two other hashes and verification views that
only the picture itself gives. It is used for one thing: the picture downloaded now is hashed
the prototype's way too, and a distance over PICTURE_CHANGED_OVER means the image at that URL
changed since the prototype hashed it (`picture_changed` in the summary; -v names each).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from dupcheck.bootstrap import build_fetcher, build_store
from dupcheck.core.errors import DupcheckError, StoreUnavailable
from dupcheck.core.fingerprint.hashing import PHash64, imagehash_phash
from dupcheck.core.models import HashValue
from dupcheck.core.pictures.imaging import decode_image
from dupcheck.core.ports import ImageFetcher, RecordStore
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import (
    Backfill,
    BackfillOptions,
    BackfillSummary,
    FailureLog,
    Target,
    default_failures_path,
    failures_path_for,
)  # fmt: skip
from dupcheck_tools.catalog import CatalogError, CatalogReader, CatalogRow, Columns, local_catalog, row_of
from dupcheck_tools.exit_codes import ExitCode

log = logging.getLogger(__name__)

# The prototype fitted every picture into a white square of this side before hashing it.
PROTOTYPE_CANVAS = 512
# A stored phash further than this from the picture downloaded now: another picture. The plain
# pHash's own duplicate threshold (docs/lab/evaluation.md: at <= 4 it called none of the benchmark's
# distinct pictures a duplicate); the same bytes hashed again give 0.
PICTURE_CHANGED_OVER = PHash64.judging.duplicate_max
# Stored phashes waiting for their download. Rows reach a download at most a few batches after
# they are read (the engine's queues are bounded), so older entries belong to rows that were
# skipped or failed before downloading, and are dropped.
PENDING_LIMIT = 20_000


def prototype_phash(image: Image.Image) -> HashValue:
    """The prototype's `phash`: the picture fitted into a 512 px white square (centred, aspect
    kept, Pillow's default thumbnail filter), then imagehash's 64-bit pHash."""
    picture = image.copy()
    picture.thumbnail((PROTOTYPE_CANVAS, PROTOTYPE_CANVAS))
    canvas = Image.new("RGB", (PROTOTYPE_CANVAS, PROTOTYPE_CANVAS), "white")
    canvas.paste(picture, ((PROTOTYPE_CANVAS - picture.width) // 2, (PROTOTYPE_CANVAS - picture.height) // 2))
    return imagehash_phash(canvas)


class ComparingFetcher:
    """The engine's fetcher, plus: each downloaded picture whose row carried a prototype phash is
    hashed the prototype's way and compared with it. Thread-safe (download threads call fetch)."""

    def __init__(self, inner: ImageFetcher, max_pixels: int) -> None:
        self.inner = inner
        self.max_pixels = max_pixels
        self.compared = 0
        self.changed = 0
        self._pending: OrderedDict[str, tuple[str, str]] = OrderedDict()  # url -> (entity_id, phash)
        self._lock = threading.Lock()

    def expect(self, row: CatalogRow) -> None:
        if not row.phash or row.error is not None:
            return
        with self._lock:
            self._pending[row.image_url] = (row.entity_id, row.phash)
            if len(self._pending) > PENDING_LIMIT:
                self._pending.popitem(last=False)

    def fetch(self, url: str) -> bytes:
        data = self.inner.fetch(url)
        with self._lock:
            expected = self._pending.pop(url, None)
        if expected is not None:
            self._compare(*expected, data)
        return data

    def _compare(self, entity_id: str, stored: str, data: bytes) -> None:
        try:
            old = HashValue.from_hex(stored)
            now = prototype_phash(decode_image(data, max_pixels=self.max_pixels))
            distance = now - old
        except (DupcheckError, ValueError):  # not a picture (the row fails anyway) or not a 64-bit hex phash
            return
        with self._lock:
            self.compared += 1
            self.changed += distance > PICTURE_CHANGED_OVER
        if distance > PICTURE_CHANGED_OVER:
            log.info("%s: the picture changed since the prototype hashed it (pHash distance %d)", entity_id, distance)


@dataclass
class MigrationSummary:
    source: str
    target: str
    backfill: BackfillSummary
    phash_compared: int = 0  # rows downloaded this run whose stored phash could be compared
    picture_changed: int = 0  # of those, pictures that are not the one the prototype hashed

    @property
    def exit_code(self) -> ExitCode:
        return self.backfill.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            **self.backfill.to_dict(),
            "phash_compared": self.phash_compared,
            "picture_changed": self.picture_changed,
        }


def table_rows(
    table: str, *, image_base_url: str | None, region: str | None = None, client: Any = None
) -> tuple[Iterator[CatalogRow], int]:
    """The rows of the prototype's table (a paginated Scan) and its approximate item count.

    The client comes from the standard AWS settings (AWS_REGION, AWS_ENDPOINT_URL, profiles), so
    DynamoDB Local or a moto server works as well as the real table. Raises CatalogError when
    the table cannot be read at all."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from dupcheck_tools.catalog import from_dynamodb_json

    client = client or boto3.client("dynamodb", region_name=region or None)
    try:
        count = int(client.describe_table(TableName=table)["Table"].get("ItemCount", 0))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CatalogError(f"cannot read the table {table!r}: {error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:
        raise CatalogError(f"cannot read the table {table!r}: {exc}") from exc

    def rows() -> Iterator[CatalogRow]:
        number = 0
        try:
            for page in client.get_paginator("scan").paginate(TableName=table):
                for item in page.get("Items", []):
                    number += 1
                    yield row_of(number, from_dynamodb_json(item), Columns(), image_base_url)
        except (ClientError, BotoCoreError) as exc:  # the engine stops, keeps what is done, and says why
            raise StoreUnavailable(f"reading the table {table!r} failed after {number} items: {exc}") from exc

    return rows(), count


def migrate(
    *,
    from_table: str | None = None,
    from_file: str | os.PathLike[str] | None = None,
    image_base_url: str | None = None,
    target: Target,
    settings: Settings,
    region: str | None = None,
    failures: str | os.PathLike[str] | None = None,
    options: BackfillOptions | None = None,
    store: RecordStore | None = None,
    fetcher: ImageFetcher | None = None,
    source_client: Any = None,
) -> MigrationSummary:
    """Library entry point: exactly one of `from_table` / `from_file` (a DynamoDB JSON export,
    local or s3://; a CSV or JSON Lines file of the same fields works too)."""
    if (from_table is None) == (from_file is None):
        raise CatalogError("give exactly one of --from-table and --from-file")
    options = options or BackfillOptions()
    comparing = ComparingFetcher(fetcher or build_fetcher(settings), settings.max_image_pixels)

    def run(rows: Iterator[CatalogRow], total: int | None, failures_path: Path, source: str) -> MigrationSummary:
        failure_log = FailureLog(failures_path)
        try:
            engine = Backfill(settings, store or build_store(settings), failure_log, fetcher=comparing, options=options)
            summary = engine.run(_expecting(rows, comparing), total if options.progress else None)
        finally:
            failure_log.close()
        return MigrationSummary(source, target, summary, comparing.compared, comparing.changed)

    if from_table is not None:
        rows, count = table_rows(from_table, image_base_url=image_base_url, region=region, client=source_client)
        failures_path = Path(failures) if failures else default_failures_path(Path.cwd() / f"{from_table}.csv")
        return run(rows, count, failures_path, f"table {from_table}")
    assert from_file is not None
    with local_catalog(from_file, region=region) as path:
        reader = CatalogReader(path, Columns(), image_base_url)
        total = reader.count_rows() if options.progress else None
        return run(iter(reader), total, failures_path_for(from_file, path, failures), f"file {from_file}")


def _expecting(rows: Iterator[CatalogRow], comparing: ComparingFetcher) -> Iterator[CatalogRow]:
    for row in rows:
        comparing.expect(row)
        yield row
