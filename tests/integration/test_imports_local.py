"""Catalog imports on the local server, over HTTP: a job of a few hundred rows served by a loopback
image server, its counts and failures, cancelling, the other ways a catalog arrives (a catalog
URL, items, an upload afterwards, gzip), kept images, refusals, and a server killed mid-job
and started again.

Nothing leaves 127.0.0.1: images and catalogs come from the loopback image server.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
from PIL import ImageOps

from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.kept_images import rendition
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer, Reply
from support.catalogs import gate_catalog, good_rows
from support.http import call, wait_for
from support.serving import kill, serve_process, stop_group

FINAL = ("done", "failed", "cancelled")


def csv_of(rows: list[tuple[str, str, str]], header: str = "entity_id,sku,image_url") -> bytes:
    return ("\n".join([header, *(",".join(row) for row in rows)]) + "\n").encode()


def start(settings: Settings, **overrides: Any) -> LocalServer:
    config = settings.model_copy(update={"port": 0, **overrides})
    server = LocalServer(build_service(config), config)
    server.start_in_thread()
    return server


@pytest.fixture
def server(settings: Settings) -> Iterator[LocalServer]:
    srv = start(settings)
    yield srv
    srv.shutdown()


def submit(server: LocalServer, body: bytes | dict, content_type: str = "text/csv", query: str = "") -> dict:
    status, job, headers = call(f"{server.url}/imports{query}", "POST", body, content_type)
    assert status == 202, job
    assert headers["Location"] == job["status_url"] == f"{server.url}/imports/{job['job_id']}"
    return job


def finished(job: dict, timeout: float = 60) -> dict:
    return wait_for(lambda: (j := call(job["status_url"])[1])["status"] in FINAL and j, timeout)


def still(job: dict, quiet_s: float = 0.6) -> dict:
    """The job once two reads `quiet_s` apart agree: what it settled at."""

    def unchanged() -> dict | None:
        before = call(job["status_url"])[1]
        time.sleep(quiet_s)
        return before if call(job["status_url"])[1] == before else None

    return wait_for(unchanged, timeout=60)


def all_failures(job: dict, limit: int = 1000) -> list[dict]:
    out, cursor = [], None
    while True:
        _, page, _ = call(f"{job['failures_url']}?limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        out += page["failures"]
        if not (cursor := page["next_cursor"]):
            return out


def test_a_job_of_a_few_hundred_rows_stores_every_good_row_and_says_why_the_others_failed(
    server: LocalServer, image_server: ImageServer
) -> None:
    rows = good_rows(image_server, 290)
    rows += [
        ("F404", "s", image_server.base_url + "/missing.jpg"),
        ("FTEXT", "s", image_server.route("/page.html", Reply(200, b"<html>not an image</html>", "text/html"))),
        ("FMETA", "s", "http://169.254.169.254/latest/meta-data/"),
        ("", "s", image_server.base_url + "/img/0.jpg"),
        ("FNOURL", "s", ""),
        ("F/SLASH", "s", image_server.base_url + "/img/1.jpg"),
        ("FREL", "s", "/m/h/mh01.jpg"),
    ]
    job = submit(server, csv_of(rows))
    assert (job["status"], job["rows"], job["source"]) == ("queued", None, "upload")

    done = finished(job, timeout=180)  # a guard against a hang: the gate looks each row up, on a busy machine too
    assert {k: done[k] for k in ("status", "rows", "done", "skipped", "failed", "duplicates", "error")} == {
        "status": "done", "rows": 297, "done": 290, "skipped": 0, "failed": 7, "duplicates": 0, "error": None,
    }  # fmt: skip
    assert done["started_at"] <= done["finished_at"] and done["rows_per_s"] > 0 and done["eta_s"] is None

    failures = all_failures(done, limit=3)  # three to a page: the cursor goes through them all
    assert [(f["row"], f["entity_id"], f["code"]) for f in failures] == [
        (291, "F404", "image_unreachable"), (292, "FTEXT", "unsupported_media_type"), (293, "FMETA", "url_not_allowed"),
        (294, "", "missing_entity_id"), (295, "FNOURL", "missing_image_url"), (296, "F/SLASH", "invalid_entity_id"),
        (297, "FREL", "relative_image_url")]  # fmt: skip
    assert "404" in failures[0]["message"] and failures[0]["image_url"].endswith("/missing.jpg")

    # Every good row is stored once and searchable (the index follows the job's writes).
    assert all(count == 1 for path, count in image_server.counts().items() if path.startswith("/img/"))
    status, item, _ = call(f"{server.url}/items/E7")
    assert status == 200 and item["image_url"] == rows[7][2]
    query = quote(image_server.image("/query.jpg", seed=7))
    found = wait_for(lambda: call(f"{server.url}/find_similar?image_url={query}&top=1")[1]["matches"])
    assert found[0]["entity_id"] == "E7" and found[0]["verdict"] == "duplicate"

    # The same catalog again: nothing downloaded, every good row skipped.
    before = image_server.counts()
    again = finished(submit(server, csv_of(rows)))
    assert (again["done"], again["skipped"], again["failed"]) == (0, 290, 7)
    assert {p: c for p, c in image_server.counts().items() if p.startswith("/img/")} == {
        p: c for p, c in before.items() if p.startswith("/img/")}  # fmt: skip

    _, listed, _ = call(f"{server.url}/imports?limit=1")
    assert [j["job_id"] for j in listed["imports"]] == [again["job_id"]] and listed["next_cursor"]
    _, older, _ = call(f"{server.url}/imports?limit=5&cursor={listed['next_cursor']}")
    assert [j["job_id"] for j in older["imports"]] == [job["job_id"]] and older["next_cursor"] is None


def test_cancelling_stops_the_job_and_keeps_what_is_stored(server: LocalServer, image_server: ImageServer) -> None:
    rows = good_rows(image_server, 120)
    image_server.delay = 0.1  # the job is still running when cancelled
    job = submit(server, csv_of(rows))
    wait_for(lambda: call(job["status_url"])[1]["done"] >= 10)
    status, cancelled, _ = call(job["status_url"], "DELETE")
    assert (status, cancelled["status"]) == (200, "cancelled") and cancelled["finished_at"]

    wait_for(lambda: server.import_worker.running_job is None)  # the engine has ended its run
    settled = call(job["status_url"])[1]
    downloaded = sum(c for p, c in image_server.counts().items() if p.startswith("/img/"))
    assert settled["status"] == "cancelled" and settled["done"] <= downloaded < 120
    assert settled["after_cancel"] <= settled["done"]  # only rows hashed before the cancel came after it
    _, page, _ = call(f"{server.url}/items?limit=100")
    assert len(page["items"]) == settled["done"]
    time.sleep(0.5)  # nothing changes once the engine has ended (not a bound on speed)
    assert call(job["status_url"])[1] == settled

    status, refusal, _ = call(job["status_url"], "DELETE")
    assert (status, refusal["error"]["code"]) == (409, "conflict")
    assert call(f"{server.url}/imports/{'0' * 32}", "DELETE")[0] == 404


def test_a_catalog_url_items_and_a_gzipped_upload_are_catalogs_too(
    server: LocalServer, image_server: ImageServer
) -> None:
    rows = good_rows(image_server, 3)
    jsonl = "".join(json.dumps({"entity_id": f"J{i}", "small_image": f"/{i}.jpg"}) + "\n" for i in range(3))
    for i in range(3):
        image_server.image(f"/media/{i}.jpg", seed=50 + i)
    catalog_url = image_server.add("/exports/catalog.jsonl", jsonl.encode(), content_type="application/x-ndjson")
    media = quote(image_server.base_url + "/media")
    by_url = submit(server, {"catalog_url": catalog_url}, query=f"?image_base_url={media}")
    assert by_url["catalog_url"] == catalog_url

    items = [{"entity_id": e, "sku": s, "image_url": u} for e, s, u in rows] + [
        {"entity_id": "..", "image_url": "http://x.invalid/a.jpg"}
    ]
    by_items = submit(server, {"items": items})
    gzipped = submit(server, gzip.compress(csv_of([("G1", "", rows[0][2])], header="id,sku,picture")),
                     "application/gzip", query="?id_column=id&url_column=picture")  # fmt: skip

    counts = ("status", "done", "failed")
    assert {k: finished(by_url)[k] for k in counts} == {"status": "done", "done": 3, "failed": 0}
    assert {k: finished(by_items)[k] for k in counts} == {"status": "done", "done": 3, "failed": 1}
    assert all_failures(by_items)[0]["code"] == "invalid_entity_id"
    assert finished(gzipped)["done"] == 1
    assert call(f"{server.url}/items/J2")[1]["image_url"] == image_server.base_url + "/media/2.jpg"

    dead = finished(submit(server, {"catalog_url": image_server.base_url + "/exports/gone.csv"}))
    assert dead["status"] == "failed" and "404" in dead["error"] and dead["rows"] is None


def test_upload_true_answers_where_to_put_the_catalog_then_runs_it(
    server: LocalServer, image_server: ImageServer
) -> None:
    job = submit(server, {"upload": True})
    upload = job["upload"]
    assert job["status"] == "awaiting_upload"
    assert (upload["method"], upload["url"], upload["fields"]) == ("PUT", f"{job['status_url']}/catalog", {})
    assert upload["max_bytes"] == 100 * 1024 * 1024 and upload["expires_at"] > job["created_at"]
    assert call(job["status_url"])[1]["status"] == "awaiting_upload"  # waits for its catalog

    status, queued, _ = call(upload["url"], "PUT", csv_of(good_rows(image_server, 4)), "text/csv")
    assert (status, queued["status"]) == (202, "queued")
    assert finished(job)["done"] == 4
    status, refusal, _ = call(upload["url"], "PUT", csv_of(good_rows(image_server, 1)), "text/csv")
    assert (status, refusal["error"]["code"]) == (409, "conflict")

    waiting = submit(server, {"upload": True})
    assert call(waiting["status_url"], "DELETE")[1]["status"] == "cancelled"
    assert call(waiting["upload"]["url"], "PUT", csv_of(good_rows(image_server, 1)), "text/csv")[0] == 409


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "says"),
    [
        (b"", "text/csv", 422, "invalid_catalog", "empty"),
        (b"id,url\n1,http://x/a.jpg\n", "text/csv", 422, "invalid_catalog", "no 'entity_id' column"),
        (b"entity_id,price\n1,3\n", "text/csv", 422, "invalid_catalog", "none of the URL columns"),
        (b"entity_id,image_url\n", "text/csv", 422, "invalid_catalog", "no rows"),
        (b"entity_id,image_url\n\xff\xfe,x\n", "text/csv", 422, "invalid_catalog", "not UTF-8"),
        (b"\x1f\x8b\x08\x00broken", "application/gzip", 422, "invalid_catalog", "gzip"),
        (b"{}", "application/json", 400, "invalid_request", "one of"),
        (b'{"catalog_url": "file:///etc/passwd"}', "application/json", 400, "invalid_request", "catalog_url"),
        (b'{"items": []}', "application/json", 400, "invalid_request", "items"),
        (json.dumps({"items": [{"entity_id": str(i), "image_url": "http://x/a.jpg"} for i in range(1001)]}).encode(),
         "application/json", 400, "invalid_request", "items"),
        (b'{"upload": true, "items": []}', "application/json", 400, "invalid_request", "one of"),
        (b'{"upload": tr', "application/json", 400, "invalid_request", "not valid JSON"),
    ],
)  # fmt: skip
def test_a_catalog_that_cannot_be_read_is_refused_at_once(
    server: LocalServer, body: bytes, content_type: str, status: int, code: str, says: str
) -> None:
    got, answer, _ = call(f"{server.url}/imports", "POST", body, content_type)
    assert (got, answer["error"]["code"]) == (status, code)
    assert says in answer["error"]["message"]
    assert call(f"{server.url}/imports")[1]["imports"] == []  # no job was recorded


def test_a_catalog_over_the_limit_is_413(settings: Settings, image_server: ImageServer) -> None:
    server = start(settings, max_catalog_bytes=2_000, max_image_bytes=1_000)
    try:
        status, answer, _ = call(f"{server.url}/imports", "POST", csv_of(good_rows(image_server, 60)), "text/csv")
        assert (status, answer["error"]["code"]) == (413, "catalog_too_large")
        # Past the server's own limit (the catalog's and its framing): waitress refuses it unread,
        # as the catalog it is (main: image_too_large), and an image route's body as an image.
        big = csv_of(good_rows(image_server, 2)) + b"\n" * 100_000
        for method, path in (("POST", "/imports"), ("PUT", f"/imports/{'a' * 32}/catalog")):
            status, answer, _ = call(f"{server.url}{path}", method, big, "text/csv")
            assert (status, answer["error"]["code"]) == (413, "catalog_too_large"), (method, answer)
        status, answer, _ = call(f"{server.url}/find_similar", "POST", b"\xff\xd8\xff" + big, "image/jpeg")
        assert (status, answer["error"]["code"]) == (413, "image_too_large")
        assert call(f"{server.url}/health")[0] == 200
    finally:
        server.shutdown()


def test_blank_lines_are_refused_at_once_and_a_run_between_rows_fails_the_job(
    server: LocalServer, image_server: ImageServer, settings: Settings
) -> None:
    """main held a request thread and a core 270 s for a 2 MiB gzip of blank lines before any answer."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as packed:
        packed.write(b"entity_id,sku,image_url\n")
        for _ in range(256):
            packed.write(b"\n" * 2**20)  # 256 MB of line ends: a 256 KB gzip
    started = time.monotonic()
    status, answer, _ = call(f"{server.url}/imports", "POST", out.getvalue(), "application/gzip")
    # The work is a few MB read (tests/unit/jobs/test_imports.py counts them); the bound is the header deadline's.
    assert time.monotonic() - started < settings.server_header_deadline
    assert (status, answer["error"]["code"]) == (422, "invalid_catalog") and "blank lines" in answer["error"]["message"]
    assert call(f"{server.url}/imports")[1]["imports"] == []

    # Its first row passes the request's check; the job's first read stops at the run of blank lines.
    rows = csv_of(good_rows(image_server, 1)) + b"\n" * 50_000 + csv_of(good_rows(image_server, 1, 1))[24:]
    done = finished(submit(server, rows))
    assert done["status"] == "failed" and "blank lines" in done["error"] and "after row 1" in done["error"]
    assert done["done"] == 0 and server.service.parts.store.count() == 0


def test_pictures_without_an_address_are_kept_and_served_back(server: LocalServer, image_server: ImageServer) -> None:
    picture = encode(product_image(808))
    status, kept, _ = call(f"{server.url}/images", "POST", picture, "image/jpeg")
    name = kept["name"]
    assert status == 201 and re.fullmatch(r"[0-9a-f]{64}\.jpg", name)
    assert kept["image_url"] == f"{server.url}/images/{name}"
    status, served, headers = call(kept["image_url"])
    assert (status, served, headers["Content-Type"]) == (200, rendition(picture, max_pixels=10**8), "image/jpeg")
    assert call(f"{server.url}/images/{'a' * 64}.png")[0] == 404
    assert call(f"{server.url}/images", "POST", b"plain text", "image/jpeg")[0] == 415

    # An upload without image_url keeps its picture; the record points at it.
    status, item, _ = call(f"{server.url}/items/U1?sku=UP", "PUT", encode(product_image(809)), "image/jpeg")
    assert status == 201 and re.fullmatch(rf"{server.url}/images/[0-9a-f]{{64}}\.jpg", item["image_url"])
    assert call(item["image_url"])[1] == rendition(encode(product_image(809)), max_pixels=10**8)

    # A folder chosen in the web app: pictures kept, then imported as items by their addresses. A kept
    # picture is read from where it is kept, whatever host its address names: nothing is fetched.
    elsewhere = f"http://pictures.invalid/images/{name}"
    job = finished(submit(server, {"items": [{"entity_id": "K1", "image_url": kept["image_url"]},
                                             {"entity_id": "K2", "image_url": elsewhere}]}))  # fmt: skip
    assert (job["done"], job["failed"]) == (2, 0)
    top = f"{server.url}/find_similar?image_url={quote(elsewhere)}&top=2"
    wait_for(lambda: {m["entity_id"] for m in call(top)[1]["matches"]} == {"K1", "K2"})  # once indexed


@pytest.mark.parametrize(
    "body",
    [b"BM<html><script>alert(document.cookie)</script></html>", b"\x89PNG\r\n\x1a\n<svg onload=alert(1)>",
     b"GIF89a<script>alert(1)</script>"],
)  # fmt: skip
def test_only_pictures_are_kept_and_they_are_served_inert(server: LocalServer, body: bytes) -> None:
    """Magic bytes are not a picture: what does not decode is refused, so nothing kept can be a
    page; and what is kept is served with nosniff and a policy that lets it run nothing."""
    status, refused, _ = call(f"{server.url}/images", "POST", body, "image/bmp")
    assert (status, refused["error"]["code"]) == (422, "invalid_image")
    assert not list((server.import_worker.settings.data_dir / "images").glob("*"))
    status, kept, _ = call(f"{server.url}/images", "POST", encode(product_image(810)), "image/jpeg")
    status, _, headers = call(kept["image_url"])
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


# -- the server killed mid-job, then started again -------------------------------------------------------


def stored_ids(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "dupcheck.sqlite3", timeout=5) as conn:
        return dict(conn.execute("SELECT entity_id, updated_at FROM records").fetchall())


def finish_in_a_new_server(data_dir: Path, job: dict, rows: int) -> None:
    """Start a server on `data_dir`: it resumes `job` and finishes it, every row stored, none failed."""
    proc, url = serve_process(data_dir)
    try:
        resumed = finished({"status_url": f"{url}/imports/{job['job_id']}"}, timeout=90)
    finally:
        kill(proc)
    assert {k: resumed[k] for k in ("status", "rows", "done", "skipped", "failed")} == {
        "status": "done", "rows": rows, "done": rows, "skipped": 0, "failed": 0}  # fmt: skip


@pytest.mark.slow
def test_a_server_killed_mid_job_finishes_it_when_started_again(image_server: ImageServer, tmp_path: Path) -> None:
    rows = good_rows(image_server, 220)  # over SMALL_JOB_ROWS: hashed in a process of their own
    data_dir = tmp_path / "data"
    image_server.delay = 0.04  # 4 downloads at a time: ~100 rows/s, so the kill lands mid-job
    proc, url = serve_process(data_dir)
    try:
        # Unchecked: the gate's look-ups keep rows between download and record longer, which the
        # bound below (the engine's hand-offs) does not count; the gate's own tests are above.
        status, job, _ = call(f"{url}/imports?on_duplicate=allow", "POST", csv_of(rows), "text/csv")
        assert status == 202
        wait_for(lambda: call(job["status_url"])[1]["done"] >= 40, timeout=60)
    finally:
        kill(proc)  # kill -9: no chance to write anything more
    before = stored_ids(data_dir)
    hits_before = image_server.counts()
    assert 40 <= len(before) < 220

    image_server.delay = 0.0
    finish_in_a_new_server(data_dir, job, 220)

    after = stored_ids(data_dir)
    assert sorted(after) == sorted(r[0] for r in rows)  # every row stored, once (entity_id is the key)
    assert all(after[e] == before[e] for e in before)  # nothing stored before the kill was written again
    hits = image_server.counts()
    again = [p for p, count in hits.items() if count > 1]
    # Only rows not stored at the kill were fetched again, and each at most once more: how many
    # were in flight depends on the machine's speed, not what a resumed job must do.
    assert all(hits_before.get(p) == 1 and hits[p] == 2 for p in again)
    assert len(again) <= 220 - len(before)


@pytest.mark.slow
def test_sigterm_to_the_process_group_stops_the_server_and_the_next_start_finishes_the_job(
    image_server: ImageServer, tmp_path: Path
) -> None:
    """The hashing process gets the signal too: it ignores it and leaves when the server tells it.
    No row fails because of the stop; the next server finishes the job."""
    rows = good_rows(image_server, 220)  # over SMALL_JOB_ROWS: hashed in a process of their own
    data_dir = tmp_path / "data"
    image_server.delay = 0.04
    proc, url = serve_process(data_dir)
    try:
        status, job, _ = call(f"{url}/imports", "POST", csv_of(rows), "text/csv")
        assert status == 202
        wait_for(lambda: call(job["status_url"])[1]["done"] >= 40, timeout=60)
        exited = stop_group(proc, signal.SIGTERM)
    finally:
        kill(proc)
    assert proc.returncode == 0 and exited < 10  # the requirement: a stop within 10 s
    left = sqlite3.connect(data_dir / "imports.sqlite3").execute("SELECT status, failed FROM import_jobs").fetchall()
    assert left == [("running", 0)]  # paused, not failed

    image_server.delay = 0.0
    finish_in_a_new_server(data_dir, job, 220)
    assert sorted(stored_ids(data_dir)) == sorted(r[0] for r in rows)


def hashing_processes(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """The server's pool processes (spawned: `spawn_main` in their command line)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


@pytest.mark.slow
def test_a_hashing_process_killed_twice_is_replaced_and_every_row_is_stored_once(
    image_server: ImageServer, tmp_path: Path
) -> None:
    """SIGKILL, as the out-of-memory killer sends it, to the hashing process twice mid-import: the
    pool is replaced each time and the rows it held hashed again from the bytes already
    downloaded, so nothing fails, nothing is downloaded twice, and the job goes on to its end."""
    rows = good_rows(image_server, 210)  # over SMALL_JOB_ROWS: hashed in a process of their own
    data_dir = tmp_path / "data"
    image_server.delay = 0.05  # downloads at most 80 rows/s: the job outlasts the two kills
    proc, url = serve_process(data_dir)
    try:
        status, job, _ = call(f"{url}/imports", "POST", csv_of(rows), "text/csv")
        assert status == 202
        killed = []
        for progress in (30, 110):  # the second kill well after the rows of the first were hashed again
            wait_for(lambda at=progress: call(job["status_url"])[1]["done"] >= at, timeout=120)
            (worker,) = hashing_processes(proc)
            worker.kill()
            killed.append(worker.pid)
        ended = finished(job, timeout=120)
        assert len(set(killed)) == 2  # the second kill found a new process
    finally:
        kill(proc)
    assert {k: ended[k] for k in ("status", "rows", "done", "skipped", "failed")} == {
        "status": "done", "rows": 210, "done": 210, "skipped": 0, "failed": 0}  # fmt: skip
    assert sorted(stored_ids(data_dir)) == sorted(r[0] for r in rows)  # every row stored, once
    assert all(count == 1 for path, count in image_server.counts().items() if path.startswith("/img/"))


def test_cancel_starts_no_download_after_it_answers_and_writes_nothing_hashed_after_it(
    server: LocalServer, image_server: ImageServer
) -> None:
    """The image host holds every download: the 8 in flight when DELETE answers are all that is
    ever downloaded (the rows already handed to the download threads are not started), and as
    none was hashed when the cancel was answered, none is written: the job counts 0 stored."""
    rows = good_rows(image_server, 60)
    image_server.hold()
    job = submit(server, csv_of(rows))
    downloads = lambda: sum(c for p, c in image_server.counts().items() if p.startswith("/img/"))  # noqa: E731
    wait_for(lambda: downloads() >= server.import_worker.settings.import_workers)  # every thread waits on the host
    status, cancelled, _ = call(job["status_url"], "DELETE")
    in_flight = downloads()
    assert (status, cancelled["status"], in_flight) == (200, "cancelled", 8)
    image_server.release()

    wait_for(lambda: server.import_worker.running_job is None)  # the engine has ended its run
    settled = call(job["status_url"])[1]
    assert downloads() == in_flight  # nothing started after the cancel
    assert (settled["done"], settled["failed"], settled["after_cancel"]) == (0, 0, 0)
    _, page, _ = call(f"{server.url}/items?limit=100")
    assert page["items"] == []


def test_the_same_id_twice_the_later_row_wins_and_the_earlier_is_listed_as_replaced(
    server: LocalServer, image_server: ImageServer
) -> None:
    """Rows run concurrently: the earlier row's host is the slower one, so without knowing the
    later row replaces it, its download would finish last and win."""
    early = image_server.image("/early.jpg", seed=41)
    late = image_server.image("/late.jpg", seed=42)
    image_server.delays["/early.jpg"] = 0.5
    rows = [("DUP", "OLD", early), ("ONE", "S1", image_server.image("/one.jpg", seed=43)), ("DUP", "NEW", late),
            ("TWO", "S2", image_server.image("/two.jpg", seed=44)), ("DUP", "NEWEST", late)]  # fmt: skip
    done = finished(submit(server, csv_of(rows)))
    assert {k: done[k] for k in ("status", "rows", "done", "skipped", "failed", "replaced")} == {
        "status": "done", "rows": 5, "done": 3, "skipped": 0, "failed": 0, "replaced": 2}  # fmt: skip
    assert [(f["row"], f["entity_id"], f["code"]) for f in all_failures(done)] == [
        (1, "DUP", "replaced"), (3, "DUP", "replaced")]  # fmt: skip
    assert "row 5 has the same entity_id" in all_failures(done)[0]["message"]
    item = call(f"{server.url}/items/DUP")[1]
    assert (item["sku"], item["image_url"]) == ("NEWEST", late)
    assert image_server.counts().get("/early.jpg", 0) == 0  # the replaced row is never downloaded


def test_every_bad_row_fails_alone_with_a_documented_code_and_the_job_goes_on(
    server: LocalServer, image_server: ImageServer
) -> None:
    """A row whose URL is no URL at all was a 500 as the first row, and as a later row failed the
    whole job ("internal error", nothing imported, no failure listed)."""
    good = image_server.image("/good.jpg", seed=61)
    for n, first in enumerate(("http://[127.0.0.1]/a.jpg", "http://[::1/a.jpg")):
        done = finished(submit(server, csv_of([("B1", "", first), (f"G{n}", "", good), ("B2", "", first)])))
        assert (done["status"], done["done"], done["failed"], done["error"]) == ("done", 1, 2, None)
        assert [(f["row"], f["code"]) for f in all_failures(done)] == [
            (1, "invalid_image_url"),
            (3, "invalid_image_url"),
        ]

    long_url = good + "?" + "x" * 3000
    items = [{"entity_id": "LONG", "image_url": long_url}, {"entity_id": "   ", "image_url": good},
             {"entity_id": "I" * 600, "image_url": good}, {"entity_id": "OK", "image_url": good}]  # fmt: skip
    done = finished(submit(server, {"items": items}, "application/json"))
    assert (done["status"], done["done"], done["failed"]) == ("done", 1, 3)
    listed = all_failures(done)
    assert [(f["row"], f["code"]) for f in listed] == [
        (1, "invalid_image_url"), (2, "missing_entity_id"), (3, "invalid_entity_id")]  # fmt: skip
    assert len(listed[0]["image_url"]) <= 2049 and len(listed[2]["entity_id"]) <= 513

    # Addresses urlsplit reads but no fetcher can: the fetcher's refusal (the API's 400
    # invalid_request) is the row's invalid_image_url, a code of the documented list.
    odd = ["http://h.test:99999/a.jpg", "http:///a.jpg", "http://h.test/a b.jpg", "http://" + "a" * 64 + ".test/"]
    done = finished(submit(server, csv_of([(f"U{i}", "", url) for i, url in enumerate(odd)] + [("G9", "", good)])))
    assert (done["status"], done["done"], done["failed"]) == ("done", 1, 4)
    assert [(f["row"], f["code"]) for f in all_failures(done)] == [(i + 1, "invalid_image_url") for i in range(4)]


@pytest.mark.parametrize("entity_id", [" ", "   "])
def test_an_id_of_only_spaces_is_refused(server: LocalServer, image_server: ImageServer, entity_id: str) -> None:
    url = image_server.image("/s.jpg", seed=62)
    status, body, _ = call(
        f"{server.url}/items", "POST", {"entity_id": entity_id, "image_url": url}, "application/json"
    )
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body, _ = call(f"{server.url}/items/{quote(entity_id)}", "PUT", encode(product_image(62)), "image/jpeg")
    assert (status, body["error"]["code"]) == (400, "invalid_request")


# -- the duplicate gate and check jobs ---------------------------------------------------------------


def all_results(job: dict, query: str = "") -> list[dict]:
    out, cursor = [], None
    while True:
        _, page, _ = call(f"{job['results_url']}?limit=7{query}" + (f"&cursor={cursor}" if cursor else ""))
        out += page["results"]
        if not (cursor := page["next_cursor"]):
            return out


def register_catalog(server: LocalServer, catalog: dict[str, bytes]) -> None:
    for entity_id, data in catalog.items():
        server.service.registrar.register_bytes(entity_id=entity_id, sku="", image_url=f"https://shop.test/{entity_id}.jpg",
                                                data=data)  # fmt: skip


@pytest.mark.parametrize("policy", ["skip", "warn"])
def test_an_import_reports_every_duplicate_of_the_catalog_and_of_its_own_rows(
    server: LocalServer, image_server: ImageServer, policy: str
) -> None:
    gate = gate_catalog(image_server, new=75, copies=20, repeats=5)  # 100 rows, 25 of them duplicates
    register_catalog(server, gate.catalog)
    done = finished(submit(server, csv_of(gate.rows), query=f"?on_duplicate={policy}"), timeout=180)
    assert (done["status"], done["on_duplicate"], done["rows"], done["duplicates"]) == ("done", policy, 100, 25)
    stored = 75 if policy == "skip" else 100
    assert (done["done"], done["skipped"], done["failed"]) == (stored, 100 - stored, 0)

    found = all_results(done, "&duplicates_only=true")
    assert {r["row"]: (r["duplicate_of"], r["duplicate_of_row"] or 0) for r in found} == gate.expected
    assert all(r["verdict"] == "duplicate" for r in found)
    assert {r["outcome"] for r in found} == {"skipped" if policy == "skip" else "done"}
    copy = next(r for r in found if r["entity_id"] == "COPY3")
    assert copy["match"]["entity_id"] == "C3" and copy["match"]["verdict"] == "duplicate" and copy["match"]["edits"]
    assert server.service.parts.store.count() == 20 + stored  # skip: none of the 25 is in the catalog
    assert (call(f"{server.url}/items/COPY0")[0] == 404) is (policy == "skip")

    _, text, headers = call(f"{done['results_url']}?format=csv&duplicates_only=true")
    assert headers["Content-Type"].startswith("text/csv") and "attachment" in headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(text.decode())))
    assert len(lines) == 25 and {line["duplicate_of"] for line in lines} >= {"C0", "E0", "E7"}


def test_an_import_with_reject_fails_its_duplicates_and_allow_does_not_look(
    server: LocalServer, image_server: ImageServer
) -> None:
    gate = gate_catalog(image_server, new=6, copies=2, repeats=1)
    register_catalog(server, gate.catalog)
    rejected = finished(submit(server, csv_of(gate.rows), query="?on_duplicate=reject"))
    assert (rejected["done"], rejected["failed"], rejected["duplicates"]) == (6, 3, 3)
    failures = all_failures(rejected)
    # Rows 1 and 9 have one picture: whichever is checked first (downloads run at once) is imported.
    assert [f["code"] for f in failures] == ["duplicate_image"] * 3
    assert {f["row"] for f in failures} in ({7, 8, 9}, {1, 7, 8})
    assert server.service.parts.store.count() == 2 + 6

    allowed = finished(submit(server, csv_of([(f"X{i}", "", url) for i, (_, _, url) in enumerate(gate.rows)]),
                              query="?on_duplicate=allow"))  # fmt: skip
    assert (allowed["done"], allowed["duplicates"], allowed["on_duplicate"]) == (9, 0, "allow")
    assert all_results(allowed) == []


def test_a_check_job_gives_each_row_its_verdict_and_stores_nothing(server: LocalServer, image_server: ImageServer
                                                                   ) -> None:  # fmt: skip
    gate = gate_catalog(image_server, new=8, copies=3, repeats=2)
    gate.rows.append(("BROKEN", "", image_server.base_url + "/missing.jpg"))
    register_catalog(server, gate.catalog)
    job = submit(server, csv_of(gate.rows), query="?mode=check")
    assert job["mode"] == "check"
    done = finished(job)
    assert (done["status"], done["rows"], done["done"], done["failed"], done["duplicates"]) == ("done", 14, 13, 1, 5)
    assert server.service.parts.store.count() == 3  # nothing stored

    results = {r["row"]: r for r in all_results(done)}
    assert sorted(results) == list(range(1, 15))  # every row: the broken one too (main left it out)
    broken = results[14]
    assert (broken["outcome"], broken["verdict"], broken["code"]) == ("failed", None, "image_unreachable")
    assert {row: (r["duplicate_of"], r["duplicate_of_row"] or 0) for row, r in results.items()
            if r["verdict"] == "duplicate"} == gate.expected  # fmt: skip
    assert {r["verdict"] for row, r in results.items() if row not in gate.expected and row != 14} <= {"new", "similar"}
    copy = results[9]
    assert copy["match"]["entity_id"] == "C0" and copy["match"]["edit_summary"]
    assert [f["code"] for f in all_failures(done)] == ["image_unreachable"]

    _, text, headers = call(f"{done['results_url']}?format=csv")
    assert headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers  # streamed
    lines = list(csv.DictReader(io.StringIO(text.decode())))
    assert [int(line["row"]) for line in lines] == sorted(results)
    assert lines[8]["match_entity_id"] == "C0" and lines[8]["verdict"] == "duplicate" and lines[8]["edits"]
    assert (lines[13]["outcome"], lines[13]["code"]) == ("failed", "image_unreachable")


def test_a_check_job_finds_an_edited_copy_of_an_earlier_row_as_an_import_of_the_file_would(
    server: LocalServer, image_server: ImageServer, settings: Settings
) -> None:
    """Issue 86: "Only check" called a mirrored copy of another row of the same file "New: nothing like
    it in the catalog", while the same file imported with on_duplicate=skip (as backfill) left it out
    as a copy of that row. A check job now judges each row against the rows before it too."""
    original = product_image(7100, (320, 240))
    cropped = ImageOps.mirror(original).crop((16, 12, 304, 228))
    rows = [("CAT-0", "", image_server.add("/file/0.jpg", encode(original))),
            ("NEW-1", "", image_server.image("/file/1.jpg", seed=7101)),
            ("CAT-0-MIRRORED", "", image_server.add("/file/m.jpg", encode(cropped))),
            ("NEW-2", "", image_server.image("/file/2.jpg", seed=7102))]  # fmt: skip
    checked = finished(submit(server, csv_of(rows), query="?mode=check"))
    results = {r["row"]: r for r in all_results(checked)}
    assert (checked["status"], checked["done"], checked["duplicates"]) == ("done", 4, 1)
    copy = results[3]
    assert (copy["verdict"], copy["duplicate_of"], copy["duplicate_of_row"]) == ("duplicate", "CAT-0", 1)
    assert copy["match"]["entity_id"] == "CAT-0" and "mirrored" in copy["match"]["edit_summary"]
    assert copy["message"].startswith("row 3: row 1 ('CAT-0') of the same catalog has the same picture: mirrored")
    assert [results[row]["verdict"] for row in (1, 2, 4)] == ["new", "new", "new"]
    assert server.service.parts.store.count() == 0  # only checked
    with sqlite3.connect(settings.data_dir / "checked.sqlite3") as conn:  # its rows' pictures: dropped at its end
        assert conn.execute("SELECT COUNT(*) FROM checked_pictures").fetchone()[0] == 0

    imported = finished(submit(server, csv_of(rows), query="?on_duplicate=skip"))
    assert (imported["done"], imported["skipped"], imported["duplicates"]) == (3, 1, 1)
    # Of the two rows with one picture, the one checked first is imported (downloads run at once).
    (left_out,) = all_results(imported)
    assert (left_out["row"], left_out["outcome"], left_out["duplicate_of"]) in (
        (3, "skipped", "CAT-0"),
        (1, "skipped", "CAT-0-MIRRORED"),
    )


def test_a_results_csv_writes_formula_cells_as_text(server: LocalServer, image_server: ImageServer) -> None:
    """Ids, SKUs and URLs are the catalog's, whoever filled it: main wrote `=HYPERLINK(...)` as it came."""
    rows = [("=HYPERLINK(A1)", "+SKU", image_server.image("/img/f1.jpg", seed=1)),
            ("@E2", "-SKU", image_server.image("/img/f2.jpg", seed=2)), ("-E3", "", "/relative.jpg")]  # fmt: skip
    done = finished(submit(server, csv_of(rows), query="?mode=check"))
    _, text, _ = call(f"{done['results_url']}?format=csv")
    lines = list(csv.reader(io.StringIO(text.decode())))
    assert [line[1] for line in lines[1:]] == ["'=HYPERLINK(A1)", "'@E2", "'-E3"]
    assert not [cell for line in lines for cell in line if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_a_check_job_is_cancelled_between_batches(server: LocalServer, image_server: ImageServer) -> None:
    rows = good_rows(image_server, 200)
    image_server.delay = 0.1
    job = submit(server, csv_of(rows), query="?mode=check")
    wait_for(lambda: call(job["status_url"])[1]["done"] >= 5)
    status, cancelled, _ = call(job["status_url"], "DELETE")
    assert (status, cancelled["status"]) == (200, "cancelled")

    def fetched() -> int:
        return sum(c for p, c in image_server.counts().items() if p.startswith("/img/"))

    # The batch in flight lands (each row it downloaded is counted; a batch judges its rows against
    # the earlier ones too, seconds on a busy machine), then no other starts.
    wait_for(lambda: call(job["status_url"])[1]["done"] == fetched(), timeout=30)
    time.sleep(1.5)
    settled = call(job["status_url"])[1]
    assert settled["status"] == "cancelled" and settled["done"] < 200 and fetched() == settled["done"]


@pytest.mark.parametrize("query", ["?on_duplicate=maybe", "?mode=store", "?mode=check&on_duplicate=sometimes"])
def test_a_bad_gate_parameter_is_a_400_and_makes_no_job(server: LocalServer, image_server: ImageServer,
                                                         query: str) -> None:  # fmt: skip
    status, body, _ = call(f"{server.url}/imports{query}", "POST", csv_of(good_rows(image_server, 2)), "text/csv")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert call(f"{server.url}/imports")[1]["imports"] == []
