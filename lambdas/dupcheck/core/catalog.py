"""Catalog rows: (entity_id, sku, image_url) read from CSV or JSON Lines text, one row at a time.

The one parser of a catalog export, shared by the command line's backfill (files, gzip, s3://:
`dupcheck_tools.catalog`) and the API's imports (an upload, a catalog URL, items sent as JSON),
so a row means the same wherever a catalog enters. A catalog is read as a stream and never held
in memory: a 1,000,000-row export costs no more than a 10-row one.

Columns are configurable; when the URL column is not named, the first of `image_url` and
`small_image` (the usual export column) that exists is used, and a relative `small_image` path
is appended to `image_base_url` (the shop's media base URL). A row that lacks an id or a URL is
not dropped: it comes out with `error` set (a failure code and a sentence), so the caller
reports it as a failure and nothing is silently skipped.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from dupcheck.core.ids import id_problem
from dupcheck.core.service import MAX_URL_LENGTH

URL_COLUMN_CANDIDATES = ("image_url", "small_image")

# Catalog exports carry long descriptions; the csv module's 128 KiB field cap is too small.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

ItemDecoder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class CatalogError(ValueError):
    """The catalog cannot be read at all (no id column, no URL column, no such file)."""


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


def sniff_format(head: str) -> str:
    """ "jsonl" when the first non-blank character of a catalog opens a JSON object, else "csv"."""
    return "jsonl" if head.lstrip("\ufeff \t\r\n").startswith("{") else "csv"


def csv_rows(
    handle: IO[str], columns: Columns, image_base_url: str | None, *, delimiter: str = ",",
    name: str = "the catalog", id_hint: str = "", url_hint: str = "",
) -> Iterator[CatalogRow]:  # fmt: skip
    """The rows of a CSV catalog. A header without the id column or any URL column is a
    CatalogError (raised when iteration starts); `id_hint`/`url_hint` say how to name them."""
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        return
    id_col, sku_col, url_col = _resolve(header, columns, name, id_hint, url_hint)
    at = {column: i for i, column in enumerate(header)}
    phash_col = "phash" if "phash" in at else None
    number = 0
    for cells in reader:
        if not cells or not any(c.strip() for c in cells):
            continue  # blank line: not a row
        number += 1

        def cell(column: str | None, cells: list[str] = cells) -> str:
            if column is None:
                return ""
            i = at[column]
            return cells[i].strip() if i < len(cells) else ""

        yield make_row(number, cell(id_col), cell(sku_col), cell(url_col), cell(phash_col), image_base_url)


def jsonl_rows(
    handle: IO[str], columns: Columns, image_base_url: str | None, *, decode_item: ItemDecoder | None = None
) -> Iterator[CatalogRow]:
    """The rows of a JSON Lines catalog: one object per line. `decode_item` turns a DynamoDB
    JSON item (`{"Item": {...}}`, what a table export holds) into plain values; without it such
    a line is an `invalid_row` failure."""
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
                if decode_item is None:
                    raise ValueError("a DynamoDB JSON item: import it with `python -m dupcheck backfill`")
                obj = dict(decode_item(obj["Item"]))
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            yield CatalogRow(number, "", "", "", ("invalid_row", f"line {number} is not a JSON object: {exc}"))
            continue
        yield row_of(number, obj, columns, image_base_url)


def _resolve(
    header: list[str], columns: Columns, name: str, id_hint: str, url_hint: str
) -> tuple[str, str | None, str]:
    if columns.entity_id not in header:
        raise CatalogError(f"{name} has no {columns.entity_id!r} column (columns: {', '.join(header)}){_hint(id_hint)}")
    if columns.image_url is not None:
        if columns.image_url not in header:
            raise CatalogError(f"{name} has no {columns.image_url!r} column")
        url_col = columns.image_url
    else:
        found = [c for c in URL_COLUMN_CANDIDATES if c in header]
        if not found:
            candidates = ", ".join(URL_COLUMN_CANDIDATES)
            raise CatalogError(f"{name} has none of the URL columns {candidates}{_hint(url_hint)}")
        url_col = found[0]
    sku_col = columns.sku if columns.sku in header else None
    return columns.entity_id, sku_col, url_col


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


def row_of(number: int, values: Mapping[str, Any], columns: Columns, image_base_url: str | None) -> CatalogRow:
    """A row from one object's fields (a JSON line, a DynamoDB item); the URL field is
    `columns.image_url`, else the first of URL_COLUMN_CANDIDATES that is set."""
    url_field = columns.image_url or next((c for c in URL_COLUMN_CANDIDATES if values.get(c)), None)
    return make_row(
        number, _text(values.get(columns.entity_id)), _text(values.get(columns.sku)),
        _text(values.get(url_field)) if url_field else "", _text(values.get("phash")), image_base_url,
    )  # fmt: skip


def make_row(number: int, entity_id: str, sku: str, url: str, phash: str, image_base_url: str | None) -> CatalogRow:
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
            "URL (--image-base-url, or image_base_url)",
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()
