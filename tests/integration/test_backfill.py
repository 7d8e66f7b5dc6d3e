"""`python -m dupcheck backfill` against a loopback image server: records, failures, exit codes,
idempotent re-runs, changed URLs, retries, and resume after kill -9 / Ctrl-C.

Nothing leaves 127.0.0.1; images come from dupcheck_tools.samples.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill import BackfillOptions, backfill_catalog
from dupcheck_tools.backfill.failures import FailureLog, explain_failures
from dupcheck_tools.backfill.stages import HASH_BATCH
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.cli import main
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer, Reply
from support.catalogs import good_rows, write_catalog

MAX_BYTES = 1_000_000


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("DUPCHECK_ALLOW_LOOPBACK_URLS", "true")
    monkeypatch.setenv("DUPCHECK_MAX_IMAGE_BYTES", str(MAX_BYTES))
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(data))
    return data


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["backfill", "--no-progress", "--hash-workers", "1", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def stored(data_dir: Path) -> dict[str, Any]:
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    return {r.entity_id: r for r in store.scan()}


def read_failures(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# -- in-process runs -----------------------------------------------------------------------------------


def test_records_failures_file_and_exit_code(image_server: ImageServer, env: Path, tmp_path: Path, capsys: Any) -> None:
    rows = good_rows(image_server, 4)
    rows += [
        ("F404", "s", image_server.base_url + "/missing.jpg"),
        ("FTEXT", "s", image_server.route("/page.html", Reply(200, b"<html>not an image</html>", "text/html"))),
        ("FBIG", "s", image_server.route("/huge.jpg", Reply(200, b"\xff\xd8\xff" + b"0" * (MAX_BYTES + 10)))),
        ("FMETA", "s", "http://169.254.169.254/latest/meta-data/"),
        ("", "s", image_server.base_url + "/img/0.jpg"),
        ("FNOURL", "s", ""),
    ]
    catalog = write_catalog(tmp_path / "catalog.csv", rows)

    code, summary = run_cli(capsys, "--catalog", str(catalog), "--target", "local")

    assert code == 1
    assert {k: summary[k] for k in ("rows", "done", "skipped", "failed")} == {
        "rows": 10, "done": 4, "skipped": 0, "failed": 6
    }  # fmt: skip
    failures = {f["entity_id"]: f for f in read_failures(tmp_path / "catalog.failures.csv")}
    assert {k: v["code"] for k, v in failures.items()} == {
        "F404": "image_unreachable",
        "FTEXT": "unsupported_media_type",
        "FBIG": "image_too_large",
        "FMETA": "url_not_allowed",
        "": "missing_entity_id",
        "FNOURL": "missing_image_url",
    }
    assert "404" in failures["F404"]["message"]
    assert failures[""]["row"] == "9"
    assert summary["failures_file"] == str(tmp_path / "catalog.failures.csv")

    # The records, and their thumbnails beside them, are exactly what the service's register would store.
    service = build_service(Settings.from_env(allow_loopback_urls=True))
    records = stored(env)
    thumbnails = SqliteThumbnails(env / "thumbnails.sqlite3").get_many(list(records))
    assert sorted(records) == sorted(thumbnails) == ["E0", "E1", "E2", "E3"]
    for entity_id, sku, url in rows[:4]:
        expected = service.records.entry_for(
            entity_id=entity_id,
            sku=sku,
            image_url=url,
            data=image_server.routes[url[len(image_server.base_url) :]].body,
        )
        got = records[entity_id]
        assert (got.sku, got.image_url, got.hash, got.hash_algo, dict(got.features)) == (
            expected.record.sku, expected.record.image_url, expected.record.hash, expected.record.hash_algo,
            dict(expected.record.features),
        )  # fmt: skip
        assert thumbnails[entity_id] == expected.thumbnail


def test_a_run_where_every_row_failed_says_why_and_what_to_do_on_stderr(
    image_server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Every picture on this machine, the loopback switch off: the JSON summary counts 5 failures,
    and stderr says which reason, with the setting that fixes it and where the rows are listed."""
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DUPCHECK_ALLOW_LOOPBACK_URLS", raising=False)
    catalog = write_catalog(tmp_path / "catalog.csv", good_rows(image_server, 5))
    code = main(["backfill", "--no-progress", "--hash-workers", "1", "--catalog", str(catalog)])
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert (code, summary["failed"], summary["done"]) == (1, 5, 0) and "failure_report" not in summary
    assert f"backfill: every row failed; each is listed in {tmp_path / 'catalog.failures.csv'}" in err
    assert "5 x url_not_allowed, e.g. " in err
    assert "fix: " in err and "DUPCHECK_ALLOW_LOOPBACK_URLS=true" in err.split("fix: ")[1]


def test_the_failure_report_names_the_commonest_reasons_first(tmp_path: Path) -> None:
    log = FailureLog(tmp_path / "failures.csv")
    codes = ["upstream_timeout"] * 3 + ["relative_image_url"] * 4 + ["image_unreachable"] * 2 + ["invalid_row", "x"]
    for number, code in enumerate(codes, start=1):
        log.add(CatalogRow(number, f"E{number}", "", f"/p/{number}.jpg"), code, f"row {number}: {code}")
    log.close()
    report = explain_failures(log, rows=20).splitlines()
    assert report[0] == f"backfill: 11 of 20 rows failed; each is listed in {tmp_path / 'failures.csv'}:"
    assert report[1] == "  4 x relative_image_url, e.g. row 4: relative_image_url"
    assert "--image-base-url" in report[2]
    assert report[3].startswith("  3 x upstream_timeout, e.g. row 1:")
    assert report[5].startswith("  2 x image_unreachable")
    assert report[7] == "  2 more, for 2 other reasons"
    assert explain_failures(FailureLog(tmp_path / "none.csv"), rows=20) == ""


def test_rerun_changes_nothing_and_changed_url_is_rehashed(
    image_server: ImageServer, env: Path, tmp_path: Path, capsys: Any
) -> None:
    rows = good_rows(image_server, 5)
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    code, first = run_cli(capsys, "--catalog", str(catalog))
    assert (code, first["done"], first["failed"]) == (0, 5, 0)
    before, hits = stored(env), image_server.counts()

    code, again = run_cli(capsys, "--catalog", str(catalog), "--resume")
    assert (code, again["done"], again["skipped"], again["failed"]) == (0, 0, 5, 0)
    assert image_server.counts() == hits  # not one download
    assert stored(env) == before  # not one write (updated_at unchanged)

    # A record whose thumbnail is missing is not done: that row alone is fetched again.
    SqliteThumbnails(env / "thumbnails.sqlite3").delete("E3")
    code, again = run_cli(capsys, "--catalog", str(catalog), "--resume")
    assert (code, again["done"], again["skipped"]) == (0, 1, 4)
    counts = image_server.counts()
    assert {p: counts[p] - hits[p] for p in counts if counts[p] != hits[p]} == {"/img/3.jpg": 1}
    assert SqliteThumbnails(env / "thumbnails.sqlite3").missing(["E3"]) == set()
    before, hits = stored(env), counts

    # E1 points at a new image, E2 only changed its sku.
    rows[1] = ("E1", "SKU-1", image_server.image("/img/new-1.jpg", seed=101))
    rows[2] = ("E2", "SKU-2-renamed", rows[2][2])
    write_catalog(catalog, rows)
    code, changed = run_cli(capsys, "--catalog", str(catalog))
    assert (code, changed["done"], changed["updated"], changed["skipped"]) == (0, 1, 1, 3)
    counts = image_server.counts()
    assert counts.pop("/img/new-1.jpg") == 1
    assert counts == hits  # nothing else was downloaded
    after = stored(env)
    assert after["E1"].image_url.endswith("/img/new-1.jpg") and after["E1"].hash != before["E1"].hash
    assert after["E2"].sku == "SKU-2-renamed" and after["E2"].hash == before["E2"].hash
    assert {k: after[k] for k in ("E0", "E3", "E4")} == {k: before[k] for k in ("E0", "E3", "E4")}


def test_retries_429_and_5xx_but_not_404(image_server: ImageServer, env: Path, tmp_path: Path) -> None:
    image = encode(product_image(3, (200, 200)))
    image_server.scripts["/flaky.jpg"] = [Reply(503), Reply(503), Reply(200, image)]
    image_server.scripts["/busy.jpg"] = [Reply(429), Reply(200, image)]
    image_server.scripts["/down.jpg"] = [Reply(500)] * 10
    catalog = write_catalog(
        tmp_path / "c.csv",
        [("A", "", image_server.base_url + "/flaky.jpg"), ("B", "", image_server.base_url + "/busy.jpg"),
         ("C", "", image_server.base_url + "/gone.jpg"), ("D", "", image_server.base_url + "/down.jpg")],
    )  # fmt: skip
    summary = backfill_catalog(
        catalog, failures=tmp_path / "f.jsonl",
        options=BackfillOptions(retries=2, backoff=0.01, hash_workers=-1, progress=False),
    )  # fmt: skip
    assert (summary.done, summary.failed, summary.exit_code) == (2, 2, 1)
    assert image_server.counts() == {"/flaky.jpg": 3, "/busy.jpg": 2, "/gone.jpg": 1, "/down.jpg": 3}
    failures = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    codes = sorted((f["entity_id"], f["code"]) for f in failures)
    assert codes == [("C", "image_unreachable"), ("D", "upstream_error")]  # a 404 is the address's fault


def test_dry_run_downloads_and_writes_nothing(
    image_server: ImageServer, env: Path, tmp_path: Path, capsys: Any
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 3) + [("X", "", "")])
    code, summary = run_cli(capsys, "--catalog", str(catalog), "--dry-run")
    assert (code, summary["would_fetch"], summary["failed"], summary["done"]) == (1, 3, 1, 0)
    assert image_server.counts() == {}
    assert stored(env) == {}


def test_hash_niceness_lowers_the_priority_of_the_hashing_processes(settings: Settings, tmp_path: Path) -> None:
    # The server's import jobs hash at nice +10 so that requests get the CPU first (docs/lab/benchmarks.md).
    from dupcheck_tools.backfill.engine import Backfill
    from dupcheck_tools.backfill.failures import FailureLog

    engine = Backfill(settings, SqliteRecordStore(tmp_path / "store.sqlite3"), FailureLog(tmp_path / "failures.csv"),
                      options=BackfillOptions(hash_workers=1, hash_niceness=5, progress=False))  # fmt: skip
    pool = engine.hashing.pool()
    assert pool is not None
    try:
        assert pool.submit(os.nice, 0).result(timeout=120) == min(19, os.nice(0) + 5)
    finally:
        pool.shutdown()


class RecordingPool:
    """Stands in for the hashing pool: records each job's rows and answers at once ("ok" with
    the entity_id), or with `error` (a dead worker), or refuses to take the job (`refuse`)."""

    def __init__(self, error: BaseException | None = None, refuse: BaseException | None = None) -> None:
        self.jobs: list[list[str]] = []
        self.error, self.refuse = error, refuse

    def submit(self, fn: Any, jobs: list[tuple[str, str, str, bytes]]) -> Any:
        from concurrent.futures import Future

        if self.refuse is not None:
            raise self.refuse
        self.jobs.append([entity_id for entity_id, *_ in jobs])
        future: Future[Any] = Future()
        if self.error is not None:
            future.set_exception(self.error)
        else:
            future.set_result([("ok", entity_id) for entity_id, *_ in jobs])
        return future


def dispatch(
    settings: Settings, tmp_path: Path, pool: RecordingPool, images: list[bytes], slots: int = 1, failures: Any = None
) -> tuple[Any, list[Any]]:
    """Every image queued (then the stop), and the dispatcher run to its end with `slots` jobs at a time."""
    import queue
    import threading

    from dupcheck.core.models import CatalogRow
    from dupcheck_tools.backfill.engine import Backfill
    from dupcheck_tools.backfill.failures import FailureLog
    from dupcheck_tools.backfill.stages import _STOP

    failures = failures or FailureLog(tmp_path / "failures.csv")
    engine = Backfill(settings, SqliteRecordStore(tmp_path / "store.sqlite3"), failures,
                      options=BackfillOptions(progress=False))  # fmt: skip
    engine.hashing.jobs = threading.BoundedSemaphore(slots)
    to_hash: queue.Queue[Any] = queue.Queue()
    for i, data in enumerate(images):
        to_hash.put((CatalogRow(row=i + 1, entity_id=f"E{i}", sku="", image_url=f"http://127.0.0.1/{i}.jpg"), data))
    to_hash.put(_STOP)
    writes: queue.Queue[Any] = queue.Queue()
    engine.hashing.dispatch_loop(pool, to_hash, writes)  # type: ignore[arg-type]
    assert engine.hashing.jobs.acquire(blocking=False)  # every slot given back
    return engine, [writes.get_nowait() for _ in range(writes.qsize())]


def test_hashing_jobs_carry_the_images_waiting_up_to_a_count_and_a_size(settings: Settings, tmp_path: Path) -> None:
    from dupcheck_tools.backfill.stages import HASH_BATCH_BYTES

    pool = RecordingPool()
    engine, written = dispatch(settings, tmp_path, pool, [b"x"] * (2 * HASH_BATCH + 1))
    assert pool.jobs == [["E0", "E1", "E2", "E3"], ["E4", "E5", "E6", "E7"], ["E8"]]
    assert [(kind, row.entity_id, record, claim) for kind, row, record, claim in written] == [
        ("done", f"E{i}", f"E{i}", None)
        for i in range(2 * HASH_BATCH + 1)  # no gate: written without a claim
    ]
    # Large pictures: a job closes once it holds HASH_BATCH_BYTES; one larger image goes alone.
    pool = RecordingPool()
    big = b"x" * (HASH_BATCH_BYTES // 2)
    dispatch(settings, tmp_path / "big", pool, [big, big, big, b"x" * HASH_BATCH_BYTES, b"x"])
    assert pool.jobs == [["E0", "E1"], ["E2", "E3"], ["E4"]]


@pytest.mark.parametrize("broken", ["worker died", "pool refused"])
def test_a_hashing_job_that_fails_fails_its_rows_and_the_run_goes_on(
    settings: Settings, tmp_path: Path, broken: str
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    error = BrokenProcessPool("a child process terminated abruptly")
    pool = RecordingPool(error=error) if broken == "worker died" else RecordingPool(refuse=error)
    engine, written = dispatch(settings, tmp_path, pool, [b"x"] * 6)
    assert written == []
    assert engine.summary.failed == 6  # every row of every job, and the dispatcher went on to the end
    failures = read_failures(tmp_path / "failures.csv")
    assert sorted(f["entity_id"] for f in failures) == [f"E{i}" for i in range(6)]
    assert {f["code"] for f in failures} == {"internal_error"}
    assert all("BrokenProcessPool" in f["message"] for f in failures)


def test_the_dispatcher_outlives_a_job_it_cannot_even_report(settings: Settings, tmp_path: Path) -> None:
    # The pool refuses every job and the failures file cannot be written: each job is logged and
    # dropped (its rows are not stored, so the next run fetches them again), and the dispatcher
    # still reaches the stop, so that no download thread waits on it forever.
    from concurrent.futures.process import BrokenProcessPool

    class Unwritable:
        path = tmp_path / "failures.csv"

        def add(self, row: Any, code: str, message: str) -> None:
            raise OSError("No space left on device")

    pool = RecordingPool(refuse=BrokenProcessPool("gone"))
    engine, written = dispatch(settings, tmp_path, pool, [b"x"] * 6, failures=Unwritable())
    assert written == [] and engine.summary.done == 0


def test_usage_errors_exit_2(env: Path, tmp_path: Path, capsys: Any) -> None:
    assert main(["backfill", "--catalog", str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("id,url\n1,http://x/a.jpg\n")
    assert main(["backfill", "--catalog", str(bad)]) == 2
    assert main(["backfill", "--catalog", str(bad), "--target", "dynamodb"]) == 2  # no table
    with pytest.raises(SystemExit) as exc:
        main(["backfill"])
    assert exc.value.code == 2


# -- subprocess runs: kill -9 and Ctrl-C, then resume -----------------------------------------------------


def start_backfill(catalog: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ, DUPCHECK_ALLOW_LOOPBACK_URLS="true", DUPCHECK_DATA_DIR=str(data_dir),
        DUPCHECK_MAX_IMAGE_BYTES=str(MAX_BYTES),
    )  # fmt: skip
    cmd = [sys.executable, "-m", "dupcheck", "backfill", "--catalog", str(catalog), "--no-progress",
           "--workers", "4", "--per-host", "4", "--hash-workers", "1", *extra]  # fmt: skip
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_interruptible,
    )  # fmt: skip


def _interruptible() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background (`make test &`)
    inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stored_count(data_dir: Path) -> int:
    path = data_dir / "dupcheck.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # table not created yet


def wait_for_records(proc: subprocess.Popen[str], data_dir: Path, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while stored_count(data_dir) < at_least:
        assert proc.poll() is None, f"backfill ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "backfill made no progress"
        time.sleep(0.05)


def reap(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # hashing processes this test started, if any remain
    return out, err


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(image_server: ImageServer, tmp_path: Path) -> None:
    rows = good_rows(image_server, 40)
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    data_dir = tmp_path / "data"
    image_server.delay = 0.15  # ~25 images/s with 4 downloads in flight: slow enough to kill mid-run

    proc = start_backfill(catalog, data_dir)
    wait_for_records(proc, data_dir, 8)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    reap(proc)
    done_before = stored(data_dir)
    hits_before = image_server.counts()
    assert 8 <= len(done_before) < 40

    image_server.delay = 0.0
    proc = start_backfill(catalog, data_dir, "--resume")
    out, err = reap(proc)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["done"], summary["skipped"], summary["failed"]) == (40 - len(done_before), len(done_before), 0)

    after = stored(data_dir)
    assert sorted(after) == sorted(r[0] for r in rows)  # every item stored, once (entity_id is the key)
    hits = image_server.counts()
    for entity_id, _, url in rows:
        path = url[len(image_server.base_url) :]
        if entity_id in done_before:  # finished before the kill: neither downloaded nor written again
            assert hits[path] == hits_before[path] == 1
            assert after[entity_id] == done_before[entity_id]
        elif path in hits_before:  # in flight at the kill: fetched once more
            assert hits[path] == 2
        else:
            assert hits[path] == 1
    finished = {u[len(image_server.base_url) :] for e, _, u in rows if e in done_before}
    in_flight = sum(1 for p in hits_before if p not in finished)
    # At most what the pipeline's bounded stages hold (engine.py): the 4 downloads, the hand-off
    # queue to the hashing process (2 jobs' worth), the image the dispatcher holds while it waits
    # for a job slot, the 2 jobs of the one process (--hash-workers 1), and a few records the
    # writer gathers for its next batch. Not all 40: no stage is unbounded.
    assert in_flight <= 4 + 2 * HASH_BATCH + 1 + 2 * HASH_BATCH + 4


@pytest.mark.slow
def test_ctrl_c_flushes_summarises_and_resumes(image_server: ImageServer, tmp_path: Path) -> None:
    # 60 rows at 0.3 s each over 4 connections: ~4.5 s of downloads, so the interrupt after 5
    # stored records lands mid-run even on a loaded machine.
    rows = good_rows(image_server, 60)
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    data_dir = tmp_path / "data"
    image_server.delay = 0.3
    proc = start_backfill(catalog, data_dir)
    wait_for_records(proc, data_dir, 5)
    proc.send_signal(signal.SIGINT)
    out, err = reap(proc)
    assert proc.returncode == 130, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    assert summary["done"] == stored_count(data_dir) < 60  # what it reports is what it wrote

    image_server.delay = 0.0
    proc = start_backfill(catalog, data_dir, "--resume")
    out, _ = reap(proc)
    again = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0
    assert (again["skipped"], again["done"]) == (summary["done"], 60 - summary["done"])


def test_backfill_reads_a_dynamodb_json_export_with_relative_paths(
    env: Path,
    tmp_path: Path,
    image_server: ImageServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The prototype's hash_store, exported as DynamoDB JSON: relative small_image paths joined to
    --image-base-url, and its phash reported as unused instead of silently ignored."""
    image_server.image("/media/m/a.jpg", seed=1)
    image_server.image("/media/m/b.jpg", seed=2)
    items = [("A", "/m/a.jpg"), ("B", "m/b.jpg")]
    export = tmp_path / "hash_store.json"
    export.write_text("".join(
        json.dumps({"Item": {"entity_id": {"S": e}, "sku": {"S": f"S-{e}"}, "small_image": {"S": path},
                             "phash": {"S": "0123456789abcdef"}}}) + "\n"
        for e, path in items
    ))  # fmt: skip
    code, summary = run_cli(
        capsys, "--catalog", str(export), "--image-base-url", image_server.base_url + "/media", "--hash-workers", "-1"
    )
    assert (code, summary["done"], summary["failed"]) == (0, 2, 0)
    assert {e: r.image_url for e, r in stored(env).items()} == {
        "A": image_server.base_url + "/media/m/a.jpg", "B": image_server.base_url + "/media/m/b.jpg",
    }  # fmt: skip
    assert "phash column" in caplog.text and "cannot be upgraded" in caplog.text
