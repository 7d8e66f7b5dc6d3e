"""Imports without a server: reading a kept catalog, the service's rules, the SQLite job store,
kept images, and the worker's row import with fakes."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import sqlite3
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.http_fetcher import status_error
from dupcheck.adapters.local_files import LocalCatalogFiles, LocalKeptImages
from dupcheck.adapters.sqlite_jobs import SqliteImportJobs
from dupcheck.api.uploads import CATALOG_READING_BYTES, catalog_body_cost
from dupcheck.core.catalog.kept_images import KeptImagesFetcher, image_name, kept_name
from dupcheck.core.catalog.records import build_entry
from dupcheck.core.catalog.writer import RecordWriter
from dupcheck.core.errors import (
    CatalogTooLarge,
    Conflict,
    ImageUnreachable,
    InvalidCatalog,
    KeptImageGone,
    NotFound,
    ServerBusy,
    StoreUnavailable,
    UpstreamError,
    UpstreamTimeout,
    UrlNotAllowed,
)
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.jobs import catalog_rows as catalog_module
from dupcheck.core.jobs import imports as imports_module
from dupcheck.core.jobs.import_runs import Retry, RowImporter
from dupcheck.core.jobs.imports import RESULT_COLUMNS, ImportService, catalog_rows, check_catalog, survey
from dupcheck.core.models import (
    CatalogRow,
    Columns,
    ImportJob,
    ImportOptions,
    JobStatus,
    Marks,
    Mode,
    OnDuplicate,
    Outcome,
    RowResult,
    Source,
    utc_now,
)
from dupcheck.core.pictures.budget import MemoryBudget
from dupcheck.core.settings import Settings
from dupcheck.core.spreadsheet import is_formula
from dupcheck_tools.samples import encode, product_image
from support.fakes import FakeFetcher

CSV = b"entity_id,sku,image_url\nA1,S1,https://shop.test/a1.jpg\nA2,,/rel/a2.jpg\n"


def rows(data: bytes, options: ImportOptions | None = None) -> list[tuple]:
    return [(r.row, r.entity_id, r.image_url, r.error[0] if r.error else None)
            for r in catalog_rows(io.BytesIO(data), options or ImportOptions())]  # fmt: skip


# -- reading a catalog -----------------------------------------------------------------------------


def test_a_catalog_is_csv_or_json_lines_with_or_without_gzip_and_a_bom() -> None:
    expected = [(1, "A1", "https://shop.test/a1.jpg", None), (2, "A2", "/rel/a2.jpg", "relative_image_url")]
    assert rows(CSV) == expected
    assert rows(b"\xef\xbb\xbf" + CSV) == expected  # a spreadsheet's BOM
    assert rows(gzip.compress(CSV)) == expected
    jsonl = b'\n{"entity_id": "A1", "sku": "S1", "image_url": "https://shop.test/a1.jpg"}\n{"entity_id": "A2"}\n'
    assert rows(jsonl) == [(1, "A1", "https://shop.test/a1.jpg", None), (2, "A2", "", "missing_image_url")]
    base = ImportOptions(image_base_url="https://shop.test/media")
    assert rows(CSV, base)[1] == (2, "A2", "https://shop.test/media/rel/a2.jpg", None)
    renamed = ImportOptions(Columns("id", "code", "picture"))
    renamed_csv = b"id,code,picture\n7,x,https://shop.test/7.jpg\n"
    assert rows(renamed_csv, renamed) == [(1, "7", "https://shop.test/7.jpg", None)]
    semicolons = b"entity_id;sku;image_url\nA1;S1;https://shop.test/a1.jpg\nA2;;/rel/a2.jpg\n"  # a European export
    assert rows(semicolons) == expected
    item = b'{"Item": {"entity_id": {"S": "7"}}}\n'  # a DynamoDB export line is the backfill's business
    assert rows(item)[0][3] == "invalid_row"


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        (b"entity_id,image_url\n\xff,x\n", InvalidCatalog, "not UTF-8"),
        (b"id,url\n1,x\n", InvalidCatalog, "name it with id_column"),
        (b"entity_id,price\n1,2\n", InvalidCatalog, "name it with url_column"),
        (
            b"id;price\n1;2\n",
            InvalidCatalog,
            "has no 'entity_id' column and none of the URL columns image_url, "
            r"small_image \(columns: id, price\); name it with id_column; name it with url_column$",
        ),
        (gzip.compress(CSV)[:20], InvalidCatalog, "gzip"),
    ],
)
def test_a_catalog_that_cannot_be_read_says_why(data: bytes, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        rows(data)


def test_a_gzip_bomb_stops_at_the_text_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_module, "MAX_TEXT_BYTES", 100_000)
    bomb = gzip.compress(b"entity_id,image_url\n" + b"A1,h://1\n" * 1_250_000)  # 10 MB of one row, 30 KB packed
    assert len(bomb) < 50_000
    with pytest.raises(CatalogTooLarge):
        rows(bomb)


class Counted(io.BytesIO):
    """A catalog file that counts the bytes read from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def _read_through(raw: Counted) -> float:
    """Seconds to read every row of `raw` (which must refuse the catalog: InvalidCatalog)."""
    started = time.monotonic()
    with pytest.raises(InvalidCatalog, match="blank lines"):
        list(catalog_rows(raw, ImportOptions()))
    return time.monotonic() - started


@pytest.mark.parametrize("packed", [True, False])
def test_blank_lines_before_the_first_row_refuse_the_catalog_after_a_few_mb(packed: bool) -> None:
    """A header and then nothing but line ends (main read all 2 GB of a 2 MiB gzip, 270 s, or 95 MB of
    them for 55 s, before its "no rows"): refused once MAX_BLANK_LINES of them are read."""
    head = b"entity_id,image_url\n"
    data = _gzipped(head, filler=b"\n", filler_size=128 * 2**20) if packed else head + b"\n" * 95_000_000
    raw = Counted(data)
    seconds = _read_through(raw)
    # A buffer or two: a few KB of the gzip (128 KB), 64 KB of the plain file (95 MB); main read them whole.
    assert raw.taken < (16 * 1024 if packed else 256 * 1024), raw.taken
    assert seconds < 10  # milliseconds of work (main: a minute); generous on a busy machine
    with pytest.raises(InvalidCatalog, match="before its first row"):
        check_catalog(data, ImportOptions(), len(data))


def test_a_run_of_blank_lines_between_rows_refuses_the_catalog_where_the_rows_are_read() -> None:
    """The first rows pass the request's check; the job's reads (survey: local worker, AWS dispatcher)
    stop at the run, so a row and then 2 GB of line ends cannot hold a worker either."""
    allowed = b"\n" * catalog_module.MAX_BLANK_LINES
    fine = b"entity_id,image_url\nA1,h://1\n" + allowed + b"A2,h://2\n,,,\n" + allowed[1:] + b"A3,h://3\n"
    assert [r[0] for r in rows(fine)] == [1, 2, 3]
    for blank in (b"\n", b",,,,\r\n", b" \t\n"):
        data = _gzipped(b"entity_id,image_url\nA1,h://1\n", filler=blank, filler_size=32 * 2**20)
        check_catalog(data, ImportOptions(), len(data))  # its first row is there
        raw = Counted(data)
        with pytest.raises(InvalidCatalog, match="after row 1"):
            survey(lambda raw=raw: contextlib.nullcontext(raw), ImportOptions())  # type: ignore[misc]
        assert raw.taken < min(16 * 1024, len(data) // 2), (raw.taken, len(data))
    jsonl = _gzipped(b'{"entity_id": "A1", "image_url": "h://1"}\n', filler=b"\n", filler_size=32 * 2**20)
    raw = Counted(jsonl)
    _read_through(raw)
    assert raw.taken < min(16 * 1024, len(jsonl) // 2)
    wide = b"entity_id,image_url\nA1,h://1\n" + b"," * 900_000 + b"\n" + b"," * 900_000 + b"\nA2,h://2\n"
    with pytest.raises(InvalidCatalog, match="characters of them"):
        rows(wide)  # two blank records of 0.9 MB each: over MAX_ROW_CHARS of blank text


def _peak_while(consume: Callable[[], object]) -> tuple[object, int]:
    """What `consume()` returns, and the most Python memory it held at once (tracemalloc)."""
    tracemalloc.start()
    try:
        result = consume()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _gzipped(*parts: bytes, filler: bytes = b"", filler_size: int = 0) -> bytes:
    """A gzip of `parts` with `filler_size` bytes of `filler` after the first: compressed as it
    is written, so the unpacked catalog is never held by the test either."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as packed:
        packed.write(parts[0])
        block = filler * (1024 * 1024 // max(1, len(filler)))
        for _ in range(filler_size // max(1, len(block))):
            packed.write(block)
        for part in parts[1:]:
            packed.write(part)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_line_of_64_mb_fails_its_row_without_ever_being_held(kind: str) -> None:
    """A gzip of a few hundred KB holding one 64 MB line: that row fails, the rows around it are
    read, and reading never holds more than a few MB (the whole line was held: 8x its size)."""
    if kind == "csv":
        head, before, after = (
            b"entity_id,image_url\n",
            b"A1,https://h.test/1.jpg\nA2,https://h.test/",
            b"\nA3,https://h.test/3.jpg\n",
        )
    else:
        head = b'{"entity_id": "A1", "image_url": "https://h.test/1.jpg"}\n'
        before, after = (
            b'{"entity_id": "A2", "image_url": "https://h.test/',
            b'"}\n{"entity_id": "A3", "image_url": "https://h.test/3.jpg"}\n',
        )
    data = _gzipped(head + before, after, filler=b"x", filler_size=64 * 1024 * 1024)
    assert len(data) < 1_000_000
    found, peak = _peak_while(lambda: rows(data))
    assert found == [(1, "A1", "https://h.test/1.jpg", None), (2, "", "", "invalid_row"),
                     (3, "A3", "https://h.test/3.jpg", None)]  # fmt: skip
    assert peak < 8 * 1024 * 1024, peak


def test_a_header_of_megabytes_refuses_the_catalog_with_a_short_message() -> None:
    data = _gzipped(
        b"entity_id", b",image_url\nA1,https://h.test/1.jpg\n", filler=b"\x00", filler_size=30 * 1024 * 1024
    )
    with pytest.raises(InvalidCatalog) as refused:
        _peak_while(lambda: rows(data))
    assert "header row is longer than" in refused.value.message and len(refused.value.message) < 200


def test_error_text_quotes_a_short_escaped_excerpt_of_a_header() -> None:
    header = "\x00" * 500_000 + ",image_url"
    with pytest.raises(InvalidCatalog) as refused:
        rows(header.encode() + b"\nA1,https://h.test/1.jpg\n")
    message = refused.value.message
    assert len(message) < 400 and "\\x00\\x00" in message and "\x00" not in message and "…" in message


@pytest.mark.parametrize(
    ("url", "code"),
    [("http://[127.0.0.1]/a.jpg", "invalid_image_url"), ("http://[::1/a.jpg", "invalid_image_url"),
     ("https://h.test/" + "a" * 3000 + ".jpg", "invalid_image_url"), ("http://h.test:99999/a.jpg", None)],
)  # fmt: skip
def test_a_url_that_is_no_url_fails_its_row_and_the_rows_after_it_are_read(url: str, code: str | None) -> None:
    """urlsplit's ValueError ended the whole catalog ("internal error", nothing imported); a URL
    too long was `invalid_request`, a code the failure list does not have. (A port out of range
    is the fetcher's to refuse: url_not_allowed when the row runs.)"""
    found = rows(f"entity_id,image_url\nA1,{url}\nA2,https://h.test/2.jpg\n".encode())
    assert [(r[0], r[3]) for r in found] == [(1, code), (2, None)]
    failed = next(catalog_rows(io.BytesIO(f"entity_id,image_url\nA1,{url}\n".encode()), ImportOptions()))
    assert len(failed.image_url) <= 2049 and (code is None or len(failed.error[1]) < 300)  # type: ignore[index]


def test_the_rows_a_later_row_of_the_same_id_replaces() -> None:
    data = b"entity_id,image_url\nA,h://1\nB,h://2\nA,h://3\n,h://4\n,h://5\nA/x,h://6\nA/x,h://7\nB,\nA,h://9\n"
    found = survey(lambda: io.BytesIO(data), ImportOptions())  # type: ignore[arg-type, return-value]
    assert found.rows == 9
    replaced = {row: int(later) for row, later in enumerate(found.later) if later}
    # A: rows 1 and 3 replaced by 9; B: row 2 by row 8 (whose URL is missing: it fails, and is still
    # the catalog's last word on B); no id or an id no URL can carry replaces nothing.
    assert replaced == {1: 9, 3: 9, 2: 8}


def test_check_and_count(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidCatalog, match="empty"):
        check_catalog(b"", ImportOptions(), 100)
    with pytest.raises(CatalogTooLarge):
        check_catalog(CSV, ImportOptions(), 10)
    with pytest.raises(InvalidCatalog, match="no rows"):
        check_catalog(b"entity_id,image_url\n\n", ImportOptions(), 100)
    check_catalog(CSV, ImportOptions(), 1000)
    assert survey(lambda: io.BytesIO(CSV), ImportOptions()).rows == 2  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(imports_module, "MAX_ROWS", 1)
    with pytest.raises(CatalogTooLarge, match="more than 1 rows"):
        survey(lambda: io.BytesIO(CSV), ImportOptions())  # type: ignore[arg-type, return-value]


# -- the service and the job store -----------------------------------------------------------------


class Starts:
    def __init__(self) -> None:
        self.started: list[tuple[str, JobStatus]] = []

    def start(self, job: ImportJob) -> None:
        self.started.append((job.job_id, job.status))


@pytest.fixture
def jobs(tmp_path: Path) -> SqliteImportJobs:
    return SqliteImportJobs(tmp_path / "imports.sqlite3")


@pytest.fixture
def service(jobs: SqliteImportJobs, tmp_path: Path) -> ImportService:
    return ImportService(jobs, LocalCatalogFiles(tmp_path / "imports"), Starts(), max_catalog_bytes=10_000)


def test_submitting_keeps_the_catalog_and_starts_the_job(service: ImportService) -> None:
    job = service.submit_catalog(CSV, ImportOptions())
    with service.catalogs.open(job.job_id) as kept:
        assert kept.read() == CSV
    assert service.starter.started == [(job.job_id, JobStatus.QUEUED)]  # type: ignore[attr-defined]
    items = service.submit_items([{"entity_id": "B1", "image_url": "https://shop.test/b1.jpg"}],
                                 ImportOptions(Columns("ignored")))  # fmt: skip
    with service.catalogs.open(items.job_id) as kept:
        assert json.loads(kept.read()) == {"entity_id": "B1", "sku": "", "image_url": "https://shop.test/b1.jpg"}
    assert items.options.columns == Columns()  # items always have the standard names
    with pytest.raises(NotFound):
        service.get("not-a-job-id")


def _check_job(service: ImportService, status: JobStatus = JobStatus.DONE) -> str:
    """A check job of 9 rows: checked ones, failed ones (no verdict), a replaced one; cells like formulas."""
    job_id = "c" * 32
    now = utc_now()
    service.jobs.create(ImportJob(job_id, status, Source.UPLOAD, now, now, ImportOptions(mode=Mode.CHECK)))
    match = {"entity_id": "=C1", "sku": "+S", "image_url": "https://x.test/c1.jpg", "match_percent": 97.0,
             "verdict": "duplicate", "edit_summary": "-cropped"}  # fmt: skip
    row = CatalogRow(4, "@E4", "", "https://x.test/4.jpg")
    service.jobs.record(job_id, [
        RowResult(1, Outcome.DONE, "=HYPERLINK(\"http://evil.test/\")", "https://x.test/1.jpg", verdict="new"),
        RowResult.failure(CatalogRow(2, "E2", "", "https://x.test/2.jpg"), "image_unreachable", "-404 from host"),
        RowResult(3, Outcome.DONE, "E3", "https://x.test/3.jpg", verdict="duplicate", duplicate_of="=C1", match=match),
        RowResult.failure(row, "invalid_image", " =not a picture"),  # a formula after a space
        RowResult.replaced_by(CatalogRow(5, "E5", "", "https://x.test/5.jpg"), 9),
        *(RowResult(n, Outcome.DONE, f"E{n}", f"https://x.test/{n}.jpg", verdict="similar") for n in (6, 7, 8, 9)),
    ])  # fmt: skip
    return job_id


def test_a_check_jobs_results_list_every_row_those_it_could_not_check_too(service: ImportService) -> None:
    job_id = _check_job(service)
    for limit in (1, 2, 4, 9, 100):
        listed, cursor = [], 0
        while cursor is not None:
            page, cursor = service.results(job_id, limit, cursor)
            assert len(page) <= limit
            listed += page
        assert [r.row for r in listed] == list(range(1, 10)), limit  # main: 1, 3, 6, 7, 8, 9
    by_row = {r.row: r for r in listed}
    assert (by_row[2].outcome, by_row[2].verdict, by_row[2].code) == (Outcome.FAILED, "", "image_unreachable")
    assert (by_row[5].outcome, by_row[5].code) == (Outcome.REPLACED, "replaced")
    assert [r.row for r in service.results(job_id, 100, 0, duplicates_only=True)[0]] == [3]
    # An import lists its checked rows (its duplicates) alone: its failures have their own list.
    imported = "d" * 32
    service.jobs.create(ImportJob(imported, JobStatus.DONE, Source.UPLOAD, utc_now(), utc_now()))
    service.jobs.record(
        imported,
        [
            RowResult.failure(CatalogRow(1, "E1", "", "h://1"), "invalid_image", "m"),
            RowResult(2, Outcome.DONE, "E2", "h://2", verdict="duplicate", duplicate_of="X"),
        ],
    )
    assert [r.row for r in service.results(imported, 100, 0)[0]] == [2]


def test_the_results_csv_is_made_a_page_at_a_time_with_formula_cells_as_text(
    service: ImportService, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _check_job(service)
    monkeypatch.setattr(imports_module, "MAX_PAGE", 4)  # pages of 4 rows
    pieces = list(service.results_csv(job_id))
    assert [last for last, _ in pieces] == [0, 4, 8, 9]  # the header, then one piece a page
    text = b"".join(piece for _, piece in pieces).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == list(RESULT_COLUMNS) and [int(line[0]) for line in lines[1:]] == list(range(1, 10))
    cells = [cell for line in lines[1:] for cell in line]
    assert not [c for c in cells if is_formula(c)]  # main wrote 5 such cells as they are, d308586 one more
    assert lines[1][1] == '\'=HYPERLINK("http://evil.test/")' and lines[3][5] == "'=C1" and lines[3][8] == "'+S"
    assert lines[4][14] == "' =not a picture"
    assert lines[2][14] == "'-404 from host" and lines[4][1] == "'@E4" and lines[3][12] == "'-cropped"
    # Written on after a row (a results file written a part at a time): the rest, without the header.
    rest = b"".join(piece for _, piece in service.results_csv(job_id, after_row=4)).decode()
    assert [int(line[0]) for line in csv.reader(io.StringIO(rest))] == [5, 6, 7, 8, 9]


class Files:
    """ResultFiles in memory: a file is written whole in one call, or after a row's pieces when `until` passed."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def link(self, name: str) -> str | None:
        return f"https://files.test/{name}" if name in self.files else None

    def write(self, name: str, pieces: Callable, *, until: float) -> str | None:
        self.files[name] = b"".join(piece for _, piece in pieces(0))
        return self.link(name)


def test_a_finished_jobs_csv_is_written_once_and_linked_an_active_ones_not_at_all(service: ImportService) -> None:
    with pytest.raises(StoreUnavailable):
        service.results_file("c" * 32, until=time.monotonic() + 10)  # no files here: the server streams
    service.result_files = files = Files()
    running = _check_job(service, JobStatus.RUNNING)
    with pytest.raises(Conflict, match="once it has finished"):
        service.results_file(running, until=time.monotonic() + 10)
    service.jobs.transition(running, JobStatus.DONE, allowed_from={JobStatus.RUNNING})
    link = service.results_file(running, until=time.monotonic() + 10)
    assert link is not None and link == service.results_file(running, until=time.monotonic() + 10)
    (name,) = files.files
    assert name.startswith(f"{running}/results-") and files.files[name].count(b"\r\n") == 10
    assert service.results_file(running, duplicates_only=True, until=time.monotonic() + 10) != link
    # A row recorded after the end (a batch running when the job was cancelled): a new file, never a stale one.
    service.jobs.record(running, [RowResult(10, Outcome.DONE, "E10", "h://10", verdict="new")])
    assert service.results_file(running, until=time.monotonic() + 10) != link


def test_work_beyond_a_memory_budget_waits_and_a_request_is_told_to_come_back() -> None:
    budget = MemoryBudget(total_bytes=100, wait_s=0.2, holding="reading other large catalogs")
    with budget.admitted(60):
        with budget.admitted(40):  # fits beside it
            assert budget.in_use == 100
        started = time.monotonic()
        with pytest.raises(ServerBusy, match="reading other large catalogs") as refused, budget.admitted(50):
            pass
        assert time.monotonic() - started >= 0.2  # it waited for room first
        assert (refused.value.status, refused.value.retry_after_s) == (503, 5)
    assert budget.in_use == 0
    with budget.admitted(10**9):  # more than the budget: it fits alone, held as the whole budget
        assert budget.in_use == 100


def test_a_catalog_body_costs_its_copies() -> None:
    body = 100 * 2**20
    assert catalog_body_cost(body, "text/csv") == body + CATALOG_READING_BYTES
    assert catalog_body_cost(body, "application/gzip") == body + CATALOG_READING_BYTES
    assert catalog_body_cost(body, "multipart/form-data; boundary=x") == 3 * body + CATALOG_READING_BYTES
    assert catalog_body_cost(body, "application/json") == 4 * body + CATALOG_READING_BYTES


def test_checked_rows_are_counted_and_listed_once_and_the_first_row_claims_a_picture(jobs: SqliteImportJobs) -> None:
    now = utc_now()
    jobs.create(ImportJob("b" * 32, JobStatus.RUNNING, Source.UPLOAD, now, now))
    match = {"entity_id": "C1", "sku": "", "image_url": "https://x.test/c1.jpg", "distance": 3, "match_percent": 97.0,
             "verdict": "duplicate", "edits": [], "edit_summary": "no visible edit"}  # fmt: skip
    dup = RowResult(2, Outcome.SKIPPED, "D", "https://x.test/d.jpg", "duplicate", "m", verdict="duplicate",
                    duplicate_of="C1", match=match)  # fmt: skip
    new = RowResult(3, Outcome.DONE, "N", "https://x.test/n.jpg", verdict="new")
    jobs.record("b" * 32, [RowResult(1, Outcome.DONE), dup, new])
    job = jobs.record("b" * 32, [dup])  # reported again: counted once
    assert (job.done, job.skipped, job.duplicates) == (2, 1, 1)
    assert jobs.results("b" * 32, 10) == ([dup, new], None)
    assert jobs.results("b" * 32, 10, duplicates_only=True) == ([dup], None)
    assert jobs.results("b" * 32, 1) == ([dup], 2) and jobs.results("b" * 32, 1, 2) == ([new], None)

    assert jobs.claim_picture("b" * 32, "ab12", 5, "E5") == (5, "E5")
    assert jobs.claim_picture("b" * 32, "ab12", 9, "E9") == (5, "E5")  # a later row with the same picture
    assert jobs.claim_picture("b" * 32, "ab12", 5, "E5") == (5, "E5")  # the first, delivered again
    assert jobs.claim_picture("c" * 32, "ab12", 9, "E9") == (9, "E9")  # another job's pictures are its own


def test_a_jobs_file_from_before_the_gate_gains_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""CREATE TABLE import_jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL, source TEXT NOT NULL,
        options TEXT NOT NULL, catalog_url TEXT, rows INTEGER, done INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, error TEXT);
        CREATE TABLE import_rows (job_id TEXT NOT NULL, row INTEGER NOT NULL, outcome TEXT NOT NULL, entity_id TEXT,
        image_url TEXT, code TEXT, message TEXT, PRIMARY KEY (job_id, row)) WITHOUT ROWID;
        INSERT INTO import_jobs (job_id, status, source, options, rows, done, created_at, updated_at)
        VALUES ('dddddddddddddddddddddddddddddddd', 'done', 'upload', '{}', 1, 1, 'x', 'x');""")  # fmt: skip
    conn.close()
    job = SqliteImportJobs(path).get("d" * 32)
    assert job is not None and (job.done, job.replaced, job.duplicates) == (1, 0, 0)
    assert job.options.on_duplicate is OnDuplicate.ALLOW  # recorded before the gate: it did not check


def test_cancel_and_upload_follow_the_job_status(service: ImportService, jobs: SqliteImportJobs) -> None:
    waiting = service.submit_for_upload(ImportOptions())
    assert service.upload_target(waiting) is None  # no storage form locally: PUT to the API
    queued = service.receive_catalog(waiting.job_id, CSV)
    assert queued.status is JobStatus.QUEUED
    with pytest.raises(Conflict, match="already given"):
        service.receive_catalog(waiting.job_id, CSV)
    assert service.cancel(waiting.job_id).status is JobStatus.CANCELLED
    with pytest.raises(Conflict, match="nothing to cancel"):
        service.cancel(waiting.job_id)

    old = replace(service.submit_for_upload(ImportOptions()), job_id="f" * 32,
                  created_at=(datetime.now(UTC) - timedelta(hours=2)).isoformat())  # fmt: skip
    jobs.create(old)
    expired = service.get(old.job_id)
    assert expired.status is JobStatus.FAILED and "no catalog was uploaded" in (expired.error or "")


def test_outcomes_are_counted_once_whatever_is_reported_again(jobs: SqliteImportJobs) -> None:
    now = utc_now()
    jobs.create(ImportJob("a" * 32, JobStatus.QUEUED, Source.UPLOAD, now, now))
    assert jobs.transition("a" * 32, JobStatus.DONE, allowed_from={JobStatus.RUNNING}) is None
    running = jobs.transition("a" * 32, JobStatus.RUNNING, allowed_from={JobStatus.QUEUED}, rows=5)
    assert running is not None and running.started_at and running.rows == 5
    fail = RowResult(3, Outcome.FAILED, "C", "https://x.test/c.jpg", "upstream_error", "HTTP 404")
    jobs.record("a" * 32, [RowResult(1, Outcome.DONE), RowResult(2, Outcome.SKIPPED), fail])
    job = jobs.record("a" * 32, [RowResult(1, Outcome.DONE), fail, RowResult(4, Outcome.DONE)])
    assert (job.done, job.skipped, job.failed, job.complete) == (2, 1, 1, False)
    assert jobs.failures("a" * 32, 10) == ([fail], None)
    assert list(jobs.finished_rows("a" * 32, 5)) == [0, 1, 1, 1, 1, 0]
    later = datetime.now(UTC) + timedelta(seconds=10)
    assert job.rows_per_s(later) and job.eta_s(later)


def test_rows_stored_after_a_cancel_are_counted_apart_and_an_old_jobs_file_gains_the_count(
    jobs: SqliteImportJobs, tmp_path: Path
) -> None:
    from dupcheck_tools.catalog import CatalogRow
    from dupcheck_tools.local.imports import _Recorder

    now = utc_now()
    jobs.create(ImportJob("b" * 32, JobStatus.QUEUED, Source.UPLOAD, now, now))
    running = jobs.transition("b" * 32, JobStatus.RUNNING, allowed_from={JobStatus.QUEUED}, rows=6)
    assert running is not None and running.after_cancel == 0
    recorder = _Recorder(jobs, running, resumed=False)
    record = build_entry(get_pipeline(), encode(product_image(71)), entity_id="R", sku="",
                         image_url="https://x.test/r.jpg", max_pixels=40_000_000).record  # fmt: skip
    row = lambda n: CatalogRow(n, f"R{n}", "", "https://x.test/r.jpg")  # noqa: E731
    recorder.stored("done", row(1), record)
    recorder.stored("done", row(2), record)
    recorder.flush()
    jobs.transition("b" * 32, JobStatus.CANCELLED, allowed_from={JobStatus.RUNNING})
    recorder.cancelled.set()  # what the worker does when the cancel is answered
    recorder.stored("done", row(3), record)  # hashed before the cancel, stored after it
    recorder.stored("skipped", row(4), record)  # nothing stored: not counted there
    job = jobs.record("b" * 32, [])
    assert (job.done, job.after_cancel) == (2, 0)  # not flushed yet
    recorder.flush()
    job = jobs.get("b" * 32)
    assert job is not None and (job.status, job.done, job.skipped, job.after_cancel) == (JobStatus.CANCELLED, 3, 1, 1)

    old = tmp_path / "old.sqlite3"  # a jobs file from before after_cancel was counted
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE import_jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL, source TEXT NOT NULL, "
                     "options TEXT NOT NULL, catalog_url TEXT, rows INTEGER, done INTEGER NOT NULL DEFAULT 0, "
                     "skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, "
                     "replaced INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
                     "started_at TEXT, finished_at TEXT, error TEXT)")  # fmt: skip
        conn.execute("INSERT INTO import_jobs (job_id, status, source, options, created_at, updated_at) "
                     "VALUES (?, 'done', 'upload', '{}', ?, ?)", ("c" * 32, now, now))  # fmt: skip
    conn.close()
    kept = SqliteImportJobs(old).get("c" * 32)
    assert kept is not None and kept.after_cancel == 0


def test_recent_jobs_page_newest_first_and_old_finished_ones_are_pruned(jobs: SqliteImportJobs) -> None:
    for i in range(5):
        stamp = f"2025-01-0{i + 1}T00:00:00.000Z"
        jobs.create(ImportJob(f"{i:032x}", JobStatus.DONE if i < 2 else JobStatus.QUEUED, Source.ITEMS, stamp, stamp))
    first, position = jobs.recent(3)
    assert [j.job_id[-1] for j in first] == ["4", "3", "2"] and position is not None
    rest, last = jobs.recent(3, position)
    assert [j.job_id[-1] for j in rest] == ["1", "0"] and last is None
    assert sorted(jobs.prune(datetime(2025, 3, 1, tzinfo=UTC))) == [f"{0:032x}", f"{1:032x}"]  # not the queued
    assert [j.job_id[-1] for j in jobs.runnable()] == ["2", "3", "4"]


# -- kept images ----------------------------------------------------------------------------------


def test_a_kept_picture_is_named_by_its_content_and_read_back_for_any_url_naming_it(tmp_path: Path) -> None:
    picture = encode(product_image(1))
    name = image_name(picture)
    assert name.endswith(".jpg") and image_name(picture) == name
    assert kept_name(f"https://api.test/v1/images/{name}") == name
    assert kept_name(f"https://api.test/images/{name}?x=1") == name
    assert kept_name("https://api.test/images/nothex.jpg") is None and kept_name("http://[::1") is None
    store = LocalKeptImages(tmp_path)
    store.put(name, picture)
    inner = FakeFetcher({"https://shop.test/other.jpg": b"other"})
    fetcher = KeptImagesFetcher(inner, store)
    assert fetcher.fetch(f"http://anywhere.invalid/images/{name}") == picture
    assert fetcher.fetch("https://shop.test/other.jpg") == b"other"
    missing = f"https://shop.test/images/{'0' * 64}.jpg"  # named like a kept image, but not kept: fetched
    with pytest.raises(UpstreamError):
        fetcher.fetch(missing)
    assert inner.calls == ["https://shop.test/other.jpg", missing]
    # Neither kept nor served by its host (a 404, or refused as this service's own address): deleted.
    gone, refused = (f"http://127.0.0.1:8000/images/{c * 64}.jpg" for c in "12")
    inner.errors.update({gone: ImageUnreachable(f"{gone} answered 404"), refused: UrlNotAllowed("loopback")})
    for url in (gone, refused):
        with pytest.raises(KeptImageGone, match="no longer kept here"):
            fetcher.fetch(url)
    with pytest.raises(ImageUnreachable):  # an address that names no kept image keeps its own error
        KeptImagesFetcher(FakeFetcher(errors={"https://shop.test/a.jpg": ImageUnreachable("404")}), store).fetch(
            "https://shop.test/a.jpg"
        )


# -- importing rows (the AWS worker's) --------------------------------------------------------------


class Store(dict):
    """A RecordStore that is a dict; `failing` makes every write fail."""

    failing = False

    def get_many(self, ids: list[str]) -> dict:
        return {i: self[i] for i in ids if i in self}

    def put_many(self, records: object) -> int:
        from dupcheck.core.errors import StoreUnavailable

        if self.failing:
            raise StoreUnavailable("the table is throttling")
        written = list(records)  # type: ignore[call-overload]
        self.update((r.entity_id, r) for r in written)
        return len(written)


def test_the_worker_skips_what_is_stored_and_retries_what_may_pass() -> None:
    from dupcheck.core.models import CatalogRow

    pipeline = get_pipeline()
    picture = encode(product_image(3))
    url = "https://shop.test/3.jpg"
    old = build_entry(pipeline, picture, entity_id="OLD", sku="S", image_url=url, max_pixels=10**8).record
    store = Store(OLD=old)
    new, slow, gone = (f"https://shop.test/{name}.jpg" for name in ("new", "slow", "gone"))
    fetcher = FakeFetcher({url: picture, new: picture}, errors={
        slow: UpstreamTimeout("too slow"), gone: status_error(404)})  # fmt: skip
    importer = RowImporter(RecordWriter(store), fetcher, pipeline, max_pixels=10**8)  # type: ignore[arg-type]
    batch = [
        CatalogRow(1, "OLD", "S", url),
        CatalogRow(2, "OLD", "S2", url),
        CatalogRow(3, "NEW", "", new),
        CatalogRow(4, "SLOW", "", slow),
        CatalogRow(5, "GONE", "", gone),
    ]
    results = importer.import_rows(batch, final=lambda row: False)
    assert [getattr(r, "outcome", "retry") for r in results] == [Outcome.SKIPPED, Outcome.DONE, Outcome.DONE, "retry",
                                                                  Outcome.FAILED]  # fmt: skip
    assert isinstance(results[3], Retry) and results[4].code == "image_unreachable"  # type: ignore[union-attr]
    assert store["OLD"].sku == "S2" and "NEW" in store
    assert fetcher.calls.count(url) == 0  # the stored picture was not downloaded again

    last = importer.import_rows([batch[3]], final=lambda row: True)  # the last delivery: a failure
    assert isinstance(last[0], RowResult) and last[0].code == "upstream_timeout"
    store.failing = True
    assert isinstance(importer.import_rows([CatalogRow(6, "W", "", url)], final=lambda row: False)[0], Retry)


class Thumbnails(dict):
    """A ThumbnailStore that is a dict, and notes each write in `log` (shared with the records)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def put_many(self, thumbnails: dict[str, bytes]) -> int:
        self.log += [f"thumbnail {e}" for e in thumbnails]
        self.update(thumbnails)
        return len(thumbnails)

    def get_many(self, ids: list[str]) -> dict[str, bytes]:
        return {i: self[i] for i in ids if i in self}

    def missing(self, ids: list[str]) -> set[str]:
        return {i for i in ids if i not in self}


def test_the_worker_keeps_thumbnails_before_records_and_rehashes_a_record_without_one() -> None:
    from dupcheck.core.models import CatalogRow
    from dupcheck.core.stored.thumbnails import Thumbnail

    log: list[str] = []

    class LoggedStore(Store):
        def put_many(self, records: object) -> int:
            written = list(records)  # type: ignore[call-overload]
            log.extend(f"record {r.entity_id}" for r in written)
            return super().put_many(written)

    pipeline = get_pipeline()
    pictures = {f"https://shop.test/{i}.jpg": encode(product_image(i)) for i in (4, 5)}
    a, b = pictures
    store, thumbnails = LoggedStore(), Thumbnails(log)
    fetcher = FakeFetcher(pictures)
    importer = RowImporter(RecordWriter(store, thumbnails=thumbnails), fetcher, pipeline,  # type: ignore[arg-type]
                           max_pixels=10**8)  # fmt: skip
    results = importer.import_rows([CatalogRow(1, "A", "", a), CatalogRow(2, "B", "", b)], final=lambda row: False)
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.DONE]  # type: ignore[union-attr]
    assert log == ["thumbnail A", "thumbnail B", "record A", "record B"]
    assert Thumbnail.decode(thumbnails["A"]).hash == store["A"].hash  # type: ignore[union-attr]

    # A stored record whose thumbnail went missing is not "unchanged": it is downloaded again.
    del thumbnails["B"]
    fetcher.calls.clear()
    results = importer.import_rows([CatalogRow(1, "A", "", a), CatalogRow(2, "B", "", b)], final=lambda row: False)
    assert [r.outcome for r in results] == [Outcome.SKIPPED, Outcome.DONE]  # type: ignore[union-attr]
    assert fetcher.calls == [b] and "B" in thumbnails


# -- a check job's earlier rows (core/jobs/import_runs.py EarlierRows) ----------------------------


def test_a_check_jobs_rows_are_judged_against_the_earlier_rows_kept_across_a_stop(
    settings: Settings, tmp_path: Path
) -> None:
    """A row is judged against the rows before it, of its batch too; only rows that duplicate
    nothing are kept, so a copy names the first row of its picture; a resumed run forgets what the
    stopped one kept from where it goes on (those rows are checked again), and the job's end drops it."""
    from PIL import ImageOps

    from dupcheck.adapters.local_index import LocalHashIndex
    from dupcheck.adapters.sqlite_checked import SqliteCheckedPictures
    from dupcheck.bootstrap import build_service
    from dupcheck.core.jobs.import_runs import EarlierRows

    service = build_service(settings)
    pipeline = service.parts.pipeline
    kept = SqliteCheckedPictures(tmp_path / "checked.sqlite3")
    job_id = "e" * 32
    a, b, c = (product_image(7200 + i, (320, 240)) for i in range(3))

    def earlier() -> EarlierRows:
        return EarlierRows(kept, LocalHashIndex(pipeline.index_bits, parts=pipeline.index_parts), job_id)

    def batch(*rows: tuple[int, str, Any]) -> list[tuple[CatalogRow, Any, Any]]:
        out = []
        for number, entity_id, picture in rows:
            entry, query = service.registrar.query_entry(
                entity_id=entity_id, sku="", image_url="", data=encode(picture)
            )
            out.append((CatalogRow(number, entity_id, "", f"https://img.test/{number}.jpg"), query, entry))
        return out

    first = earlier().duplicates(service, batch((1, "A", a), (2, "B", b), (3, "A-MIRRORED", ImageOps.mirror(a)),
                                                (4, "C", c), (5, "A-AGAIN", ImageOps.mirror(a).resize((300, 225)))),
                                 threads=2)  # fmt: skip
    assert [r.duplicate_row if r else None for r in first] == [None, None, 1, None, 1]  # row 5: row 1, not 3
    assert first[2] is not None and first[2].duplicate_of == "A" and first[2].verdict == "duplicate"
    assert first[2].match is not None and "mirrored" in first[2].match["edit_summary"]
    assert [n for n, _ in kept.hashes(job_id)] == [1, 2, 4]

    # Stopped after row 3 was recorded: rows 4 and 5 are checked again, and row 4 fails this time.
    resumed = earlier()
    resumed.resume_at(4)
    again = resumed.duplicates(service, batch((5, "C-AGAIN", c), (6, "B-MIRRORED", ImageOps.mirror(b))), threads=2)
    assert again[0] is None  # row 4 is forgotten: nothing to name
    assert again[1] is not None and (again[1].duplicate_of, again[1].duplicate_row) == ("B", 2)
    assert [n for n, _ in kept.hashes(job_id)] == [1, 2, 5]
    kept.drop(job_id)
    assert list(kept.hashes(job_id)) == []


def test_a_job_keeps_what_a_mark_on_the_product_means() -> None:
    options = ImportOptions(marks=Marks.PRODUCT)
    assert ImportOptions.from_dict(options.to_dict()).marks is Marks.PRODUCT
    # A job recorded before the setting reads marks as every catalog did then.
    recorded = {k: v for k, v in options.to_dict().items() if k != "marks"}
    assert ImportOptions.from_dict(recorded).marks is Marks.PHOTO
