"""Catalog files for `backfill`: CSV or JSON Lines rows of (entity_id, sku, image_url), streamed.

A catalog is read one row at a time and never held in memory, so a 1,000,000-row export costs
no more than a 10-row one. The format comes from the file name (`.csv`, `.tsv`, `.jsonl`,
`.ndjson`, `.json`, optionally `.gz`) or, failing that, from the first non-blank character
(`{` means JSON Lines). Column names are configurable; when the URL column is not given, the
first of `image_url` and `small_image` (the usual catalog export column) that exists is used,
and a relative `small_image` path is appended to `image_base_url` (the shop's media base URL).
A JSON line may also be a DynamoDB JSON item, `{"Item": {"entity_id": {"S": "..."}, ...}}`: what
a DynamoDB export to S3 (and the old prototype's `hash_store` table) holds, one item per line.

A row that lacks an id or a URL is not dropped: it comes out with `error` set, so the caller
reports it as a failure (nothing is silently skipped).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from dupcheck.core.ids import id_problem
from dupcheck.core.service import MAX_URL_LENGTH

URL_COLUMN_CANDIDATES = ("image_url", "small_image")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")

# Catalog exports carry long descriptions; the csv module's 128 KiB field cap is too small.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CatalogError(ValueError):
    """The catalog cannot be read at all (missing file, missing column): a usage error."""


@dataclass(frozen=True)
class Columns:
    entity_id: str = "entity_id"
    sku: str = "sku"
    image_url: str | None = None  # None: the first of URL_COLUMN_CANDIDATES present


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One catalog line. `row` counts data rows from 1; `error` is (code, message) when the
    row cannot be processed."""

    row: int
    entity_id: str
    sku: str
    image_url: str
    error: tuple[str, str] | None = None
    # The prototype's 64-bit pHash (a `phash` column of its hash_store exports). It cannot be
    # upgraded to the current pipeline: `migrate` compares it to report which pictures changed.
    phash: str = ""


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
                yield from self._jsonl(handle)
            else:
                yield from self._csv(handle)

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

    # -- formats -------------------------------------------------------------------------------

    def _csv(self, handle: IO[str]) -> Iterator[CatalogRow]:
        delimiter = "\t" if _base_suffix(self.path) == ".tsv" else ","
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        id_col, sku_col, url_col = self._resolve(header)
        at = {name: i for i, name in enumerate(header)}
        phash_col = "phash" if "phash" in at else None
        number = 0
        for cells in reader:
            if not cells or not any(c.strip() for c in cells):
                continue  # blank line: not a row
            number += 1

            def cell(name: str | None, cells: list[str] = cells) -> str:
                if name is None:
                    return ""
                i = at[name]
                return cells[i].strip() if i < len(cells) else ""

            yield make_row(number, cell(id_col), cell(sku_col), cell(url_col), cell(phash_col), self.image_base_url)

    def _jsonl(self, handle: IO[str]) -> Iterator[CatalogRow]:
        number = 0
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                if set(obj) == {"Item"}:
                    obj = from_dynamodb_json(obj["Item"])
            except (ValueError, TypeError, AttributeError) as exc:
                yield CatalogRow(
                    number, "", "", "", ("invalid_row", f"line {number} is not a JSON object: {exc}")
                )
                continue
            yield row_of(number, obj, self.columns, self.image_base_url)

    def _resolve(self, header: list[str]) -> tuple[str, str | None, str]:
        if self.columns.entity_id not in header:
            raise CatalogError(
                f"catalog {self.path.name} has no {self.columns.entity_id!r} column "
                f"(columns: {', '.join(header)}); "
                "use --id-column"
            )
        if self.columns.image_url is not None:
            if self.columns.image_url not in header:
                raise CatalogError(f"catalog {self.path.name} has no {self.columns.image_url!r} column")
            url_col = self.columns.image_url
        else:
            found = [c for c in URL_COLUMN_CANDIDATES if c in header]
            if not found:
                raise CatalogError(
                    f"catalog {self.path.name} has none of the URL columns "
                    f"{', '.join(URL_COLUMN_CANDIDATES)}; "
                    "use --url-column"
                )
            url_col = found[0]
        sku_col = self.columns.sku if self.columns.sku in header else None
        return self.columns.entity_id, sku_col, url_col


def row_of(number: int, values: Mapping[str, Any], columns: Columns, image_base_url: str | None) -> CatalogRow:
    """A row from one object's fields (a JSON line, a DynamoDB item); the URL field is
    `columns.image_url`, else the first of URL_COLUMN_CANDIDATES that is set."""
    url_field = columns.image_url or next((c for c in URL_COLUMN_CANDIDATES if values.get(c)), None)
    return make_row(
        number, _text(values.get(columns.entity_id)), _text(values.get(columns.sku)),
        _text(values.get(url_field)) if url_field else "", _text(values.get("phash")), image_base_url,
    )  # fmt: skip


def make_row(
    number: int, entity_id: str, sku: str, url: str, phash: str, image_base_url: str | None
) -> CatalogRow:
    """A checked row: the URL made absolute, and `error` set for anything that cannot be processed."""
    url = absolute_url(url, image_base_url)
    error: tuple[str, str] | None = None
    if not entity_id:
        error = ("missing_entity_id", f"row {number} has no entity_id")
    elif not url:
        error = ("missing_image_url", f"row {number} ({entity_id}) has no image URL")
    elif not urlsplit(url).scheme:
        error = (
            "relative_image_url",
            f"row {number} ({entity_id}): image path {url!r} is relative; give the shop's media base "
            "URL with --image-base-url",
        )
    elif problem := id_problem(entity_id):
        error = ("invalid_entity_id", f"row {number}: {problem}")
    elif len(url) > MAX_URL_LENGTH:
        error = ("invalid_request", f"image_url is longer than {MAX_URL_LENGTH} characters")
    return CatalogRow(number, entity_id, sku, url, error, phash)


def absolute_url(url: str, base: str | None) -> str:
    """`url` itself when it has a scheme (or there is no base); else the path appended to the base,
    as a shop's media URL is built (`https://shop/media/catalog/product` + `/m/h/mh01.jpg`), and a
    protocol-relative `//host/x.jpg` takes the base's scheme."""
    if not url or not base or urlsplit(url).scheme:
        return url
    if url.startswith("//"):
        return urljoin(base, url)
    return base.rstrip("/") + "/" + url.lstrip("/")


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
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


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


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


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
