"""Catalog rows: (entity_id, sku, image_url) read from CSV or JSON Lines text, one row at a time.

The one parser of a catalog export, shared by the command line's backfill (files, gzip, s3://:
`dupcheck_tools.catalog`) and the API's imports (an upload, a catalog URL, items sent as JSON),
so a row means the same wherever a catalog enters. A catalog is read as a stream and never held
in memory: a 1,000,000-row export costs no more than a 10-row one. Nor is a row: a line read
stops at MAX_ROW_CHARS, and a row longer than that (one CSV record, one JSON line) is skipped
to its end a chunk at a time and becomes that row's failure; a header row that long refuses
the file. Blank lines are not rows, and a run of them is bounded too (MAX_BLANK_LINES, or
MAX_ROW_CHARS of text): a file of nothing but line ends after its header would otherwise be read
for minutes (2 GB unpacked) before its first row, or between two. Error text quotes what it read
only as a short, escaped excerpt (`excerpt`).

Columns are configurable; when the URL column is not named, the first of `image_url` and
`small_image` (the usual export column) that exists is used, and a relative `small_image` path
is appended to `image_base_url` (the shop's media base URL). A row that lacks an id or a URL is
not dropped: it comes out with `error` set (a failure code and a sentence), so the caller
reports it as a failure and nothing is silently skipped. A failed row's id and URL are kept to
their limits (MAX_ID_LENGTH, MAX_URL_LENGTH), so a failure list stays small whatever it lists.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from dupcheck.core.catalog.lookups import MAX_URL_LENGTH
from dupcheck.core.errors import DupcheckError, InvalidRequest
from dupcheck.core.ids import MAX_ID_LENGTH, id_problem
from dupcheck.core.models import CatalogRow, Columns

URL_COLUMN_CANDIDATES = ("image_url", "small_image")
DELIMITERS = (",", ";", "\t")  # what a CSV catalog's cells may be split by (detect_delimiter)
# The longest row (a CSV record, quoted line breaks included; a JSON line), in characters.
# Catalog exports carry long descriptions, over the csv module's 128 KiB field cap; a megabyte
# holds any real row while a hostile one costs a few megabytes to read, never its length.
MAX_ROW_CHARS = 1024 * 1024
_SKIP_CHARS = 64 * 1024  # an over-long line is read past in pieces of this size
# Blank lines (or CSV records of empty cells) in a row that refuse the catalog: more than any
# export holds between rows (a spreadsheet's empty lines at the end), and read in milliseconds.
MAX_BLANK_LINES = 10_000
EXCERPT_CHARS = 80

csv.field_size_limit(MAX_ROW_CHARS)
T = TypeVar("T")

ItemDecoder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class CatalogError(ValueError):
    """The catalog cannot be read at all (no id column, no URL column, no such file)."""


class _RowTooLong(Exception):
    """The row being read is longer than MAX_ROW_CHARS (its line has been read past)."""


class _Lines:
    """The lines of a text stream, none held longer than MAX_ROW_CHARS: a row (`new_row` starts
    one) that grows past it raises _RowTooLong once its line has been read past, and the next
    line starts afresh. A class, not a generator: it goes on after raising, as csv.reader does."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.row_chars = 0
        self._held: str | None = None  # a line `peek` read, given again by the next `__next__`

    def __iter__(self) -> _Lines:
        return self

    def peek(self) -> str:
        """The next line, without taking it ("" at the end; a line too long raises _RowTooLong)."""
        if self._held is None:
            try:
                self._held = next(self)
            except StopIteration:
                self._held = ""
            self.row_chars = 0
        return self._held

    def __next__(self) -> str:
        if self._held is not None:
            line, self._held = self._held, None
            if not line:
                raise StopIteration
            self.row_chars += len(line)
            return line
        line = self.handle.readline(MAX_ROW_CHARS + 1)
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        if self.row_chars <= MAX_ROW_CHARS:
            return line
        while line and not line.endswith(("\n", "\r")):
            line = self.handle.readline(_SKIP_CHARS)
        self.row_chars = 0
        raise _RowTooLong

    def new_row(self) -> None:
        self.row_chars = 0


class _BlankRun:
    """The blank lines read in a row: past MAX_BLANK_LINES of them, or MAX_ROW_CHARS of their text,
    the catalog is refused (CatalogError), so that what is read between two rows stays bounded."""

    def __init__(self, lines: _Lines, name: str) -> None:
        self.lines, self.name = lines, name
        self.count = self.chars = 0

    def add(self, after_row: int) -> None:
        """One more blank record (the one just read); `after_row` is the last data row before it."""
        self.count += 1
        self.chars += self.lines.row_chars
        if self.count > MAX_BLANK_LINES or self.chars > MAX_ROW_CHARS:
            where = f"after row {after_row}" if after_row else "before its first row"
            raise CatalogError(
                f"{self.name} has more than {MAX_BLANK_LINES} blank lines (or {MAX_ROW_CHARS} characters of them) "
                f"in a row {where}: not a catalog export; remove them"
            )

    def end(self) -> None:
        self.count = self.chars = 0


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters (escapes included) of `text` for an error message, control and
    other unprintable characters escaped (a NUL reads as \\x00), and an ellipsis when there was more."""
    shown: list[str] = []
    size = 0
    for c in text[:limit]:
        piece = c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        size += len(piece)
        if size > limit:
            return "".join(shown) + "…"
        shown.append(piece)
    return "".join(shown) + ("…" if len(text) > limit else "")


@dataclass(frozen=True)
class _Unreadable:
    """A row that could not be read: why, as the end of a sentence."""

    why: str

    def row(self, number: int) -> CatalogRow:
        return CatalogRow(number, "", "", "", ("invalid_row", f"row {number} {self.why}"))


def _records(source: Iterator[T], lines: _Lines) -> Iterator[T | _Unreadable]:
    """Each record `source` reads from `lines` (a csv.reader's rows, or the lines themselves), or
    _Unreadable for one over MAX_ROW_CHARS or one csv cannot read (a quote left open at the end)."""
    while True:
        lines.new_row()
        try:
            yield next(source)
        except StopIteration:
            return
        except _RowTooLong:
            yield _Unreadable(f"is longer than {MAX_ROW_CHARS} characters")
        except csv.Error as exc:
            yield _Unreadable(f"is not CSV: {excerpt(str(exc))}")


def sniff_format(head: str) -> str:
    """ "jsonl" when the first non-blank character of a catalog opens a JSON object, else "csv"."""
    return "jsonl" if head.lstrip("\ufeff \t\r\n").startswith("{") else "csv"


def csv_rows(
    handle: IO[str], columns: Columns, image_base_url: str | None, *, delimiter: str | None = None,
    name: str = "the catalog", id_hint: str = "", url_hint: str = "",
) -> Iterator[CatalogRow]:  # fmt: skip
    """The rows of a CSV catalog, its cells split by `delimiter`, or when None by the one of
    DELIMITERS its header row is written with (`detect_delimiter`). A header without the id column
    or any URL column is a CatalogError naming every column missing (raised when iteration starts),
    as is a run of blank lines too long (when it is reached); `id_hint`/`url_hint` say how to name
    the columns."""
    lines = _Lines(handle)
    try:
        delimiter = delimiter or detect_delimiter(lines.peek(), columns)
    except _RowTooLong:
        raise CatalogError(f"{name}'s header row is longer than {MAX_ROW_CHARS} characters: not a catalog") from None
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        return
    except _RowTooLong:
        raise CatalogError(f"{name}'s header row is longer than {MAX_ROW_CHARS} characters: not a catalog") from None
    except csv.Error as exc:
        raise CatalogError(f"{name}'s header row is not CSV: {excerpt(str(exc))}") from None
    id_col, sku_col, url_col = _resolve(header, columns, name, id_hint, url_hint)
    at = {column: i for i, column in enumerate(header)}
    phash_col = "phash" if "phash" in at else None
    number = 0
    blanks = _BlankRun(lines, name)
    for cells in _records(reader, lines):
        if isinstance(cells, _Unreadable):
            number += 1
            blanks.end()
            yield cells.row(number)
            continue
        if not cells or not any(c.strip() for c in cells):
            blanks.add(number)  # blank line: not a row
            continue
        blanks.end()
        number += 1

        def cell(column: str | None, cells: list[str] = cells) -> str:
            if column is None:
                return ""
            i = at[column]
            return cells[i].strip() if i < len(cells) else ""

        yield make_row(number, cell(id_col), cell(sku_col), cell(url_col), cell(phash_col), image_base_url)


def jsonl_rows(
    handle: IO[str], columns: Columns, image_base_url: str | None, *, decode_item: ItemDecoder | None = None,
    name: str = "the catalog",
) -> Iterator[CatalogRow]:  # fmt: skip
    """The rows of a JSON Lines catalog: one object per line. `decode_item` turns a DynamoDB
    JSON item (`{"Item": {...}}`, what a table export holds) into plain values; without it such
    a line is an `invalid_row` failure. A run of blank lines too long is a CatalogError."""
    number = 0
    lines = _Lines(handle)
    blanks = _BlankRun(lines, name)
    for line in _records(lines, lines):
        if isinstance(line, _Unreadable):
            number += 1
            blanks.end()
            yield line.row(number)
            continue
        if not line.strip():
            blanks.add(number)
            continue
        blanks.end()
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
            problem = excerpt(str(exc))
            yield CatalogRow(number, "", "", "", ("invalid_row", f"line {number} is not a JSON object: {problem}"))
            continue
        yield row_of(number, obj, columns, image_base_url)


def detect_delimiter(header: str, columns: Columns) -> str:
    """The one of DELIMITERS a header row is written with: the one that splits it into the columns
    the catalog needs (its id column, a URL column), else into the most cells; a comma when none
    splits it (a header of one column). A spreadsheet saves CSV with `;` where the decimal mark is a
    comma (most of Europe), and `\t` as "text, tab-separated"."""
    wanted = {columns.entity_id, columns.image_url or "", *URL_COLUMN_CANDIDATES} - {""}

    def fit(delimiter: str) -> tuple[int, int]:
        try:
            cells = next(csv.reader([header.strip("\r\n")], delimiter=delimiter), [])
        except csv.Error:
            return (0, 0)
        names = {cell.strip().lstrip("\ufeff") for cell in cells}
        return (len(names & wanted), len(cells))

    return max(DELIMITERS, key=fit)  # the first (a comma) of those that fit alike


def _resolve(
    header: list[str], columns: Columns, name: str, id_hint: str, url_hint: str
) -> tuple[str, str | None, str]:
    """The id, SKU and URL columns of a header; every column missing named in one CatalogError."""
    missing, hints = [], []
    if columns.entity_id not in header:
        missing.append(f"no {columns.entity_id!r} column")
        hints.append(id_hint)
    if columns.image_url is not None:
        url_col = columns.image_url
        if url_col not in header:
            missing.append(f"no '{excerpt(url_col)}' column")
            hints.append(url_hint)
    else:
        url_col = next((c for c in URL_COLUMN_CANDIDATES if c in header), "")
        if not url_col:
            missing.append(f"none of the URL columns {', '.join(URL_COLUMN_CANDIDATES)}")
            hints.append(url_hint)
    if missing:
        listed = excerpt(", ".join(header), 2 * EXCERPT_CHARS)
        said = "; ".join(hint for hint in hints if hint)
        raise CatalogError(f"{name} has {' and '.join(missing)} (columns: {listed}){_hint(said)}")
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
    """A checked row: the URL made absolute, and `error` set for anything that cannot be processed
    (then the id and URL it keeps are cut to their limits)."""
    error: tuple[str, str] | None = None
    who = excerpt(entity_id)
    try:
        url = absolute_url(url, image_base_url)
        scheme = urlsplit(url).scheme
    except ValueError as exc:  # "http://[::1/a.jpg", "http://[127.0.0.1]/a.jpg": no URL at all
        error = ("invalid_image_url", f"row {number} ({who}): image_url '{excerpt(url)}' is not a URL ({exc})")
        scheme = ""
    if error is not None:
        pass
    elif not entity_id:
        error = ("missing_entity_id", f"row {number} has no entity_id")
    elif not url:
        error = ("missing_image_url", f"row {number} ({who}) has no image URL")
    elif not scheme:
        error = (
            "relative_image_url",
            f"row {number} ({who}): image path '{excerpt(url)}' is relative; give the shop's media base "
            "URL (--image-base-url, or image_base_url)",
        )
    elif problem := id_problem(entity_id):
        error = ("invalid_entity_id", f"row {number}: {problem}")
    elif len(url) > MAX_URL_LENGTH:
        error = ("invalid_image_url", f"row {number} ({who}): image_url is longer than {MAX_URL_LENGTH} characters")
    if error is not None:
        entity_id, url = _cut(entity_id, MAX_ID_LENGTH), _cut(url, MAX_URL_LENGTH)
    return CatalogRow(number, entity_id, sku, url, error, phash)


def row_failure(exc: DupcheckError) -> tuple[str, str]:
    """A row's failure (code, message) for what its image's download raised. The fetcher refuses
    an address it cannot read (no host, a port out of range, whitespace inside, a malformed host
    name) as the API's 400 `invalid_request`; in a catalog that is the row's image_url at fault,
    `invalid_image_url` like every other URL a row cannot give, a code the failure list has."""
    if isinstance(exc, InvalidRequest):
        return "invalid_image_url", exc.message
    return exc.code, exc.message


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


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
