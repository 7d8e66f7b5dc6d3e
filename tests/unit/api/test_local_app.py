"""The local server's WSGI application called as waitress calls it, without sockets: what a catalog
body and a results CSV cost it in memory, and the catalog budget's admission."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from dupcheck.api.uploads import catalog_body_cost
from dupcheck.bootstrap import build_imports
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.jobs import imports as imports_module
from dupcheck.core.jobs.imports import ImportService
from dupcheck.core.models import ImportJob, ImportOptions, JobStatus, Mode, Outcome, RowResult, Source, utc_now
from dupcheck.core.pictures.budget import MemoryBudget
from dupcheck.core.settings import Settings
from dupcheck_tools.local.app import Guard, LocalApp, catalog_budget_of

MB = 2**20


class Answer:
    """What start_response was given."""

    status = ""
    headers: dict[str, str] = {}  # noqa: RUF012 - replaced per answer

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, dict(headers)


class Held:
    """An ImportStarter that starts nothing: the job stays queued."""

    def start(self, job: ImportJob) -> None:
        pass


@pytest.fixture
def imports(settings: Settings) -> ImportService:
    return build_imports(settings, starter=Held())


def app_of(service: DupcheckService, imports: ImportService, budget: MemoryBudget | None = None) -> LocalApp:
    return LocalApp(service, max_body_bytes=1 * MB, guard=Guard(api_key=None, server_names=()), imports=imports,
                    catalog_budget=budget)  # fmt: skip


def environ(method: str, path: str, body: bytes = b"", content_type: str = "", query: str = "") -> dict[str, Any]:
    """A request as waitress hands it over: its body in a file (waitress buffers a large one on disk)."""
    buffered = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the environ
    buffered.write(body)
    buffered.seek(0)
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": content_type, "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": buffered}  # fmt: skip


def peak_of(work: Callable[[], Any]) -> tuple[Any, int]:
    """What `work()` returns, and the most Python memory it held at once beyond what it started with."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = work()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def catalog(size: int) -> bytes:
    line = b"E%07d,SKU,https://shop.test/pictures/%07d.jpg\n"
    rows = b"".join(line % (i, i) for i in range(size // len(line % (0, 0)) + 1))
    return b"entity_id,sku,image_url\n" + rows[:size]


def multipart(data: bytes) -> bytes:
    return (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\nContent-Type: text/csv\r\n\r\n'
            + data + b"\r\n--XyZ--\r\n")  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "content_type", "most"),
    [("raw", "text/csv", 1.3), ("form", "multipart/form-data; boundary=XyZ", 3.3), ("items", "application/json", 4.3)],
)
def test_a_catalog_body_is_held_once_not_as_base64_text_too(
    service: DupcheckService, imports: ImportService, kind: str, content_type: str, most: float
) -> None:
    """main held a raw catalog four times (the bytes read, their base64 text as bytes then str, the
    bytes decoded again: +432 MB for a 99.6 MB body), a form's six times. What a body costs the
    budget (`catalog_body_cost`) is at least what is held."""
    app = app_of(service, imports)
    data = catalog(24 * MB)
    body = {
        "raw": data,
        "form": multipart(data),
        "items": json.dumps({"items": [{"entity_id": "E" * 24 * MB, "image_url": "h://1"}]}).encode(),
    }[kind]
    answer = Answer()
    request = environ("POST", "/imports", body, content_type)
    result, peak = peak_of(lambda: list(app(request, answer)))
    assert answer.status.startswith("202"), result
    assert peak < most * len(body), peak / len(body)
    assert peak <= catalog_body_cost(len(body), content_type)
    if kind != "items":
        with imports.catalogs.open(json.loads(b"".join(result))["job_id"]) as kept:
            assert kept.read() == data
    assert app.catalog_budget.in_use == 0


def test_a_catalog_body_beyond_the_budget_is_a_503_with_retry_after(service: DupcheckService,
                                                                    imports: ImportService) -> None:  # fmt: skip
    budget = catalog_budget_of(64 * MB)
    budget.wait_s = 0.1
    app = app_of(service, imports, budget)
    body = catalog(2 * MB)
    with budget.admitted(60 * MB):  # another request's catalog, being read
        answer = Answer()
        refused = json.loads(b"".join(app(environ("POST", "/imports", body, "text/csv"), answer)))
        assert answer.status.startswith("503") and int(answer.headers["Retry-After"]) >= 1
        assert refused["error"]["code"] == "server_busy" and "catalogs" in refused["error"]["message"]
        assert imports.recent(10, None)[0] == []  # nothing was recorded
        small = app(environ("GET", "/imports", b""), answer)  # other routes are not held back
        assert answer.status.startswith("200") and json.loads(b"".join(small))["imports"] == []
    accepted = Answer()
    list(app(environ("POST", "/imports", body, "text/csv"), accepted))
    assert accepted.status.startswith("202") and budget.in_use == 0


def _checked_job(imports: ImportService, rows: int) -> str:
    job_id = "a" * 32
    now = utc_now()
    imports.jobs.create(ImportJob(job_id, JobStatus.DONE, Source.UPLOAD, now, now, ImportOptions(mode=Mode.CHECK)))
    match = {"entity_id": "CATALOG-ITEM-0001", "sku": "SKU-0001", "image_url": "https://shop.test/catalog/0001.jpg",
             "distance": 12, "match_percent": 90.6, "verdict": "similar", "edits": ["cropped"],
             "edit_summary": "cropped on the right"}  # fmt: skip
    for start in range(1, rows + 1, 5000):
        imports.jobs.record(job_id, [
            RowResult(n, Outcome.DONE, f"=E{n:07d}", f"https://shop.test/pictures/{n:07d}.jpg", verdict="similar",
                      match=match) for n in range(start, min(start + 5000, rows + 1))])  # fmt: skip
    return job_id


def test_a_results_csv_is_streamed_a_page_at_a_time(service: DupcheckService, imports: ImportService,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """main built the whole CSV as one string (+400 MB at 300k rows): here each piece is a page, and
    what is held is a page's rows, whatever the job's (a page of 200 rows here: 1,000 by default)."""
    monkeypatch.setattr(imports_module, "MAX_PAGE", 200)
    job_id = _checked_job(imports, 20_000)
    app = app_of(service, imports)
    answer = Answer()
    pieces = app(environ("GET", f"/imports/{job_id}/results", query="format=csv"), answer)
    assert answer.status.startswith("200") and "Content-Length" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/csv") and "attachment" in answer.headers[
        "Content-Disposition"]  # fmt: skip
    assert isinstance(pieces, Iterator)  # not a list of one body: made as it is sent

    def sent(pieces: Iterable[bytes]) -> tuple[int, int, bytes]:
        total = largest = 0
        first = b""
        for piece in pieces:
            first = first or piece + b""
            total, largest = total + len(piece), max(largest, len(piece))
        return total, largest, first

    (total, largest, _), peak = peak_of(lambda: sent(pieces))
    assert total > 3 * MB and largest < total / 50  # pieces of 200 rows
    assert peak < total / 4, (peak, total)
    text = b"".join(app(environ("GET", f"/imports/{job_id}/results", query="format=csv"), Answer())).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 20_001 and lines[1][1] == "'=E0000001" and lines[-1][0] == "20000"
