"""Catalog files for `backfill`: CSV or JSON Lines rows of (entity_id, sku, image_url), streamed.

The rows themselves are parsed by `dupcheck.core.jobs.catalog_rows` (the API's imports read catalogs with
the same parser); this module adds what only an operator's machine has: files, gzip and s3://.
A catalog is read one row at a time and never held in memory. A CSV file's cells may be split by
commas, semicolons (what a spreadsheet saves where the decimal mark is a comma) or tabs: its header
row says which. The format comes from the file
name (`.csv`, `.tsv`, `.jsonl`, `.ndjson`, `.json`, optionally `.gz`) or, failing that, from the
first non-blank character (`{` means JSON Lines). A JSON line may also be a DynamoDB JSON item,
`{"Item": {"entity_id": {"S": "..."}, ...}}`: what a DynamoDB export to S3 (and the old
prototype's `hash_store` table) holds, one item per line.

A row that lacks an id or a URL is not dropped: it comes out with `error` set, so the caller
reports it as a failure (nothing is silently skipped).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

# The rows themselves are the runtime's (the API's imports read catalogs too): one parser.
from dupcheck.core.jobs.catalog_rows import (
    URL_COLUMN_CANDIDATES,
    CatalogError,
    absolute_url,
    csv_rows,
    jsonl_rows,
    make_row,
    row_of,
    sniff_format,
)
from dupcheck.core.models import CatalogRow, Columns

__all__ = [
    "URL_COLUMN_CANDIDATES", "CatalogError", "CatalogReader", "CatalogRow", "Columns", "absolute_url",
    "detect_format", "from_dynamodb_json", "local_catalog", "make_row", "row_of", "write_catalog",
]  # fmt: skip

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class CatalogReader:
    """Iterating yields CatalogRow objects, streaming from `path`."""

    path: Path
    columns: Columns = field(default_factory=Columns)
    image_base_url: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise CatalogError(f"catalog file not found: {self.path}")

    @property
    def format(self) -> str:
        return detect_format(self.path)

    def __iter__(self) -> Iterator[CatalogRow]:
        with _open_text(self.path) as handle:
            if self.format == "jsonl":
                yield from jsonl_rows(handle, self.columns, self.image_base_url, decode_item=from_dynamodb_json)
            else:
                # A .tsv is tab-separated; a .csv's cells by comma, semicolon or tab, as its header is written.
                delimiter = "\t" if _base_suffix(self.path) == ".tsv" else None
                yield from csv_rows(
                    handle, self.columns, self.image_base_url, delimiter=delimiter,
                    name=f"catalog {self.path.name}", id_hint="use --id-column", url_hint="use --url-column",
                )  # fmt: skip

    def count_rows(self) -> int:
        """Data rows, by counting lines (a quick binary pass; quoted newlines inside CSV cells
        make it an over-estimate, which only matters for the progress bar's ETA)."""
        opener = gzip.open if self.path.suffix == ".gz" else open
        lines = 0
        last = b"\n"
        with opener(self.path, "rb") as raw:
            while chunk := raw.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            lines += 1
        return max(0, lines - (1 if self.format == "csv" else 0))


def from_dynamodb_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB JSON item (`{"entity_id": {"S": "7"}}`) as plain values, with boto3's own
    deserializer (numbers come back as Decimal, which `_text` writes as digits)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def detect_format(path: Path) -> str:
    suffix = _base_suffix(path)
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    with _open_text(path) as handle:
        return sniff_format(handle.read(4096))


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    # utf-8-sig drops the BOM spreadsheet exports put in front of the header.
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
            yield handle
    else:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            yield handle


# -- S3 --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_catalog(location: str | os.PathLike[str], *, region: str | None = None) -> Iterator[Path]:
    """A local path for `location`: the file itself, or an `s3://bucket/key` object streamed to a
    temporary file (deleted afterwards) with boto3."""
    text = str(location)
    if not text.startswith("s3://"):
        yield Path(text)
        return
    parts = urlsplit(text)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise CatalogError(f"not an S3 object URI: {text}")
    import boto3

    client = boto3.client("s3", region_name=region or None)
    name = Path(key).name or "catalog"
    with tempfile.TemporaryDirectory(prefix="dupcheck-catalog-") as folder:
        target = Path(folder) / name
        with open(target, "wb") as out:
            client.download_fileobj(bucket, key, out)
        yield target


def write_catalog(path: Path, rows: list[dict[str, str]] | Iterator[dict[str, str]]) -> Path:
    """Write rows as CSV or JSON Lines (by suffix): for tests, benchmarks and examples."""
    path = Path(path)
    if detect_format_by_name(path) == "jsonl":
        with open(path, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
        return path
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    return path


def detect_format_by_name(path: Path) -> str:
    return "jsonl" if _base_suffix(path) in JSONL_SUFFIXES else "csv"
