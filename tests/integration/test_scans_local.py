"""Duplicate scans on the local server: the engine's progress and its stop, one scan at a time,
a scan started over HTTP and published where GET /duplicates reads it, and a scan that a
stopped server left running, resumed by the next one without reading or pairing again; the
report a scan publishes keeps a spreadsheet from evaluating its CSV's cells.

The catalog (tests/support/duplicates.py) is the duplicate report's: two groups of copies, a
product in two colours, unrelated pictures.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import dupcheck_tools.duplicates as engine
from dupcheck.adapters.sqlite_scans import SqliteScanJobs
from dupcheck.bootstrap import build_service
from dupcheck.core.errors import Conflict
from dupcheck.core.jobs.scans import FINAL, ScanService
from dupcheck.core.models import Marks, ScanJob, ScanStatus
from dupcheck.core.settings import Settings
from dupcheck_tools.duplicates import PHASES, Stop, find_duplicates
from dupcheck_tools.duplicates.scan_runs import JobProgress, run_scan
from dupcheck_tools.duplicates.workfile import WORK_NAME
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.local import memory
from dupcheck_tools.local.scans import SCANS_DIR, ScanWorker
from dupcheck_tools.local.server import LocalServer
from support.duplicates import EXPECTED_GROUPS, CountingStore, catalog_entries, copies_of_the_catalog
from support.held_jobs import hold, kill_holders
from support.http import wait_for
from support.serving import kill, serve_process, stop_group


@pytest.fixture(scope="module")
def entries() -> list[Any]:
    return catalog_entries()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data", port=0)


@pytest.fixture
def service(settings: Settings, entries: list[Any]) -> Any:
    service = build_service(settings)
    for entry in entries:
        service.records.save(entry)
    return service


def groups_of(report: dict[str, Any]) -> list[list[str]]:
    return [group["items"] for group in report["groups"]]


# -- the engine's progress ---------------------------------------------------------------------


def test_the_engine_tells_each_phase_in_order_and_a_listener_can_stop_it(service: Any, tmp_path: Path) -> None:
    told: list[tuple[str, int, int | None]] = []
    summary = find_duplicates(service.parts.store, tmp_path / "all", source="test", workers=1,
                              thumbnails=service.parts.thumbnails, on_progress=lambda *p: told.append(p))  # fmt: skip
    phases = list(dict.fromkeys(phase for phase, _, _ in told))
    assert phases == list(PHASES)  # read, pair, thumbnails, verify, report
    last = {phase: (done, total) for phase, done, total in told}
    assert last["read"] == (summary.records, summary.records) and last["verify"][0] == last["verify"][1] > 0
    assert all(done <= total for _, done, total in told if total is not None)

    def stop_in_verify(phase: str, done: int, total: int | None) -> None:
        if phase == "verify" and done > 0:
            raise Stop

    out = tmp_path / "stopped"
    stopped = find_duplicates(service.parts.store, out, source="test", workers=1, thumbnails=service.parts.thumbnails,
                              on_progress=stop_in_verify)  # fmt: skip
    assert stopped.interrupted and (out / WORK_NAME).exists() and not (out / "duplicates.json").exists()


def test_every_step_counts_the_records_and_a_small_catalogs_verification_moves_record_by_record(
    service: Any, tmp_path: Path
) -> None:
    """The issue's scan: "Comparing the pictures. 0 of 8 records" of a catalog of 35, an empty
    bar that jumped to full, then `done: 0, total: null`. Now each step goes through the records
    compared, the ones with nothing to do in it done from its start, and moves a record at a time."""
    told: list[tuple[str, int, int | None]] = []
    summary = find_duplicates(service.parts.store, tmp_path / "all", source="test", workers=1,
                              thumbnails=service.parts.thumbnails, on_progress=lambda *p: told.append(p))  # fmt: skip
    compared = summary.compared
    assert compared == summary.records > 0
    for phase in PHASES:
        counts = [(done, total) for p, done, total in told if p == phase]
        assert {total for _, total in counts} == {compared}, phase  # read: the store's count was exact here
        assert counts[-1] == (compared, compared), phase
        assert [done for done, _ in counts] == sorted(done for done, _ in counts), phase  # never backwards
    verify = [done for p, done, _ in told if p == "verify"]
    judged = summary.judged
    assert 0 < judged < compared  # some records have no candidate: nothing to compare, done from the start
    assert verify[0] == compared - judged
    assert summary.judged >= 2 and len(set(verify)) >= summary.judged + 1  # a step for each record judged


@pytest.fixture
def copies(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A service over two copies of the catalog (20 records), verified in 2 processes (however
    small the catalog) 4 records a job: a job holds several records, and several jobs run at once."""
    service = build_service(settings)
    catalog = copies_of_the_catalog(2)
    service.parts.thumbnails.put_many({entry.record.entity_id: entry.thumbnail for entry in catalog})
    service.parts.store.put_many([entry.record for entry in catalog])
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(engine, "JOB_SIZE", 4)
    return service


def pairs_of(report: dict[str, Any]) -> list[tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each group's records, pairs and related pairs, by their ends (a record judged again alone,
    without its job's confirmations, may name a pair's edits or score otherwise: workers.judge)."""
    return [(g["items"], sorted((p["a"], p["b"]) for p in g["pairs"]), sorted((p["a"], p["b"]) for p in g["related"]))
            for g in report["groups"]]  # fmt: skip


@pytest.mark.slow
def test_a_verification_process_killed_once_costs_nothing(copies: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """SIGKILL (the out-of-memory killer) to the process judging c0-a-original's job: the pool is
    replaced and the jobs it held (that one and those beside it) judged again, a record at a time;
    every record is judged, and the report is a clean run's."""
    clean = find_duplicates(
        copies.parts.store, tmp_path / "clean", source="test", workers=2, thumbnails=copies.parts.thumbnails
    )
    runs = tmp_path / "runs"
    hold(monkeypatch, runs, {"c0-a-original": 1})
    killer = kill_holders(runs, 1)
    disturbed = find_duplicates(copies.parts.store, tmp_path / "killed", source="test", workers=2,
                                thumbnails=copies.parts.thumbnails)  # fmt: skip
    killer.join()
    assert len(killer.killed) == 1  # killed while it held the record
    assert clean.report is not None and disturbed.report is not None and clean.report["groups"]
    assert pairs_of(disturbed.report) == pairs_of(clean.report)
    assert disturbed.not_verified == {} and "not_verified" not in disturbed.report
    assert (disturbed.judged, disturbed.judged_back) == (clean.judged, clean.judged_back)
    assert disturbed.exit_code == ExitCode.OK


@pytest.mark.slow
def test_a_record_whose_process_is_killed_twice_is_not_verified_and_the_scan_publishes_the_rest(
    copies: Any, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process judging c1-a-small is killed, then the one judging it again alone: that record
    alone is left unjudged, named in the scan's result and its report with the reason; the scan
    ends done and publishes the groups (c1-a-small's pairs come from the records that judged it)."""
    clean = find_duplicates(
        copies.parts.store, tmp_path / "clean", source="test", workers=2, thumbnails=copies.parts.thumbnails
    )
    runs = tmp_path / "runs"
    hold(monkeypatch, runs, {"c1-a-small": 2})
    killer = kill_holders(runs, 2)
    worker = ScanWorker(copies, settings)
    started = worker.jobs.transition(worker.scans.start().scan_id, ScanStatus.RUNNING,
                                     allowed_from={ScanStatus.QUEUED})  # fmt: skip
    assert started is not None
    ended = run_scan(started, worker.jobs, copies.parts.store, work_dir=tmp_path / "scan", source="test",
                     reports=worker.reports, thumbnails=copies.parts.thumbnails, workers=2)  # fmt: skip
    killer.join()
    assert len(set(killer.killed)) == 2  # the second kill found the process that judged it again
    assert ended is not None and ended.status is ScanStatus.DONE, ended
    assert ended.result is not None and "1 record was not verified (c1-a-small)" in ended.result["skipped"]
    report = json.loads((settings.data_dir / "duplicates" / "duplicates.json").read_text())
    assert report["not_verified"]["entity_ids"] == ["c1-a-small"]
    assert "died twice" in report["not_verified"]["reason"]
    assert clean.report is not None and pairs_of(report) == pairs_of(clean.report)
    assert "1 record was not verified" in (settings.data_dir / "duplicates" / "report.html").read_text()


def test_a_resumed_run_reads_and_pairs_nothing_again_and_counts_on_from_what_was_judged(
    service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(engine, "JOB_SIZE", 2)
    verified: list[tuple[int, int | None]] = []

    def stop_in_the_second_job(phase: str, done: int, total: int | None) -> None:
        if phase == "verify":
            verified.append((done, total))
            if done >= verified[0][0] + 3:  # the step starts at the records with nothing to judge
                raise Stop

    assert find_duplicates(service.parts.store, out, source="test", workers=1, thumbnails=service.parts.thumbnails,
                           on_progress=stop_in_the_second_job).interrupted  # fmt: skip
    stopped_at, total = verified[-1]

    def no_pairing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("paired again: the pairs were saved")

    monkeypatch.setattr(engine, "_candidates", no_pairing)
    resumed: list[tuple[str, int, int | None]] = []
    second = find_duplicates(service.parts.store, out, source="test", workers=1, thumbnails=service.parts.thumbnails,
                             resume=True, on_progress=lambda *p: resumed.append(p))  # fmt: skip
    assert second.resumed and second.report is not None and groups_of(second.report) == EXPECTED_GROUPS
    verify = [(done, t) for phase, done, t in resumed if phase == "verify"]
    # Counted on from what was saved (the first job; the second, stopped within, is judged again).
    assert verify[0] == (verified[0][0] + 2, total) and verify[0][0] < stopped_at and verify[-1] == (total, total)
    assert [phase for phase, _, _ in resumed if phase in ("read", "pair")] == []


def test_the_saved_pairs_come_back_whole_across_parts_and_go_with_a_new_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import dupcheck_tools.duplicates.workfile as workfile

    monkeypatch.setattr(workfile, "_PART_BYTES", 24)  # three pairs a part: 1,001 pairs, 334 parts each
    work = workfile.WorkFile(tmp_path / WORK_NAME)
    work.start({"source": "test"})
    assert not work.paired() and work.candidates() is None
    owners, candidates, distances = np.arange(1001), np.arange(1001)[::-1].copy(), np.full(1001, 7)
    work.save_candidates(owners, candidates, distances)
    assert work.paired()
    found = work.candidates()
    assert found is not None and all(np.array_equal(a, b) for a, b in zip(found, (owners, candidates, distances),
                                                                          strict=True))  # fmt: skip
    work.save_candidates(owners[:2], candidates[:2], distances[:2])  # a second save replaces the first
    assert [len(a) for a in work.candidates() or ()] == [2, 2, 2]
    work.restart_read()  # what was paired belonged to the read that is gone
    assert not work.paired() and work.candidates() is None
    empty = np.empty(0, dtype=np.int64)
    work.save_candidates(empty, empty, empty)  # a catalog without a pair is paired too
    assert work.paired() and [len(a) for a in work.candidates() or ()] == [0, 0, 0]


def test_a_jobs_progress_is_written_at_most_every_second_and_at_each_phase(tmp_path: Path) -> None:
    written: list[tuple[str, int, int | None]] = []

    class Jobs:
        running = True

        def progress(self, scan_id: str, phase: str, done: int, total: int | None) -> bool:
            written.append((phase, done, total))
            return self.running

    now = [0.0]
    listener = JobProgress(Jobs(), "s", lambda: False, every_s=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for done in range(10):
        listener("read", done, 100)
        now[0] += 0.3
    listener("read", 100, 100)  # the end of a phase is always written
    listener("pair", 0, 40)
    assert written == [("read", 0, 100), ("read", 4, 100), ("read", 8, 100), ("read", 100, 100), ("pair", 0, 40)]
    stopping = JobProgress(Jobs(), "s", lambda: True)  # type: ignore[arg-type]
    with pytest.raises(Stop):
        stopping("verify", 3, 10)
    cancelled = Jobs()
    cancelled.running = False  # the job is no longer running (cancelled): the run stops
    with pytest.raises(Stop):
        JobProgress(cancelled, "s", lambda: False)("verify", 3, 10)  # type: ignore[arg-type]


# -- scans as jobs -----------------------------------------------------------------------------


def test_scans_started_within_one_millisecond_are_listed_newest_first(tmp_path: Path) -> None:
    class Starter:
        def start(self, job: ScanJob) -> None:
            pass

    jobs = SqliteScanJobs(tmp_path / "scans.sqlite3")
    scans = ScanService(jobs, Starter(), clock=lambda: "2026-11-25T06:00:00.000Z")  # every stamp the same
    started = []
    for _ in range(8):
        started.append(scans.start().scan_id)
        jobs.transition(started[-1], ScanStatus.DONE, allowed_from={ScanStatus.QUEUED})
    assert [job.scan_id for job in scans.recent(8)] == started[::-1]


def test_one_scan_at_a_time_and_a_stalled_one_gives_way(tmp_path: Path) -> None:
    started: list[str] = []

    class Starter:
        def start(self, job: ScanJob) -> None:
            started.append(job.scan_id)

    jobs = SqliteScanJobs(tmp_path / "scans.sqlite3")
    scans = ScanService(jobs, Starter(), stalled_after_s=600)
    first = scans.start()
    with pytest.raises(Conflict, match=first.scan_id):
        scans.start()
    assert started == [first.scan_id]
    assert jobs.transition(first.scan_id, ScanStatus.RUNNING, allowed_from={ScanStatus.QUEUED}) is not None
    with pytest.raises(Conflict):
        scans.start()
    # Silent for longer than stalled_after_s (its runner died): failed when next looked at.
    old = (datetime.now(UTC) - timedelta(minutes=11)).isoformat().replace("+00:00", "Z")
    jobs._conn().execute("UPDATE scans SET updated_at = ? WHERE scan_id = ?", (old, first.scan_id))
    second = scans.start()
    assert scans.get(first.scan_id).status is ScanStatus.FAILED and "stopped answering" in str(
        scans.get(first.scan_id).error
    )
    assert [job.scan_id for job in scans.recent()] == [second.scan_id, first.scan_id]


# -- over HTTP, and across a restart -----------------------------------------------------------


def call(url: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def server(service: Any, settings: Settings) -> Iterator[LocalServer]:
    srv = LocalServer(service, settings)
    srv.start_in_thread()
    yield srv
    srv.shutdown()


def test_a_scan_ending_after_the_last_request_is_followed_by_a_memory_trim(
    service: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle trim counts a background job's end as work: a server that answered no request
    gives back what its scan left once the scan has ended (it counted requests alone: never)."""
    trims: list[float] = []
    monkeypatch.setattr(memory, "give_back_memory", lambda: trims.append(time.monotonic()))
    srv = LocalServer(service, settings)
    srv.start_in_thread()
    try:
        job = srv.scan_worker.scans.start()  # as the API would, without a request to this server
        wait_for(lambda: srv.scan_worker.scans.get(job.scan_id).status in FINAL, timeout=120)
        wait_for(lambda: srv.scan_worker.activity.ended == 1, timeout=30)
        wait_for(lambda: trims, timeout=30)
    finally:
        srv.shutdown()
    assert srv.scan_worker.scans.get(job.scan_id).status is ScanStatus.DONE
    assert len(trims) == 1


def test_a_scan_started_over_http_runs_in_the_server_and_publishes_its_report(server: LocalServer) -> None:
    assert call(f"{server.url}/duplicates")[0] == 404
    status, scan = call(f"{server.url}/duplicates/scans", "POST")
    assert status == 202 and scan["status"] == "queued" and scan["status_url"].endswith(scan["scan_id"])
    deadline = time.monotonic() + 120
    seen = set()
    while (current := call(scan["status_url"])[1])["status"] not in ("done", "failed"):
        seen.add(current["phase"])
        assert time.monotonic() < deadline, current
        time.sleep(0.2)
    assert current["status"] == "done", current
    assert current["result"]["groups"] == len(EXPECTED_GROUPS) and current["report_url"] == f"{server.url}/duplicates"
    # Done, the scan says so in its own counts: its last step, every record compared.
    compared = current["result"]["compared"]
    assert (current["phase"], current["step"], current["steps"]) == ("report", 5, 5)
    assert current["done"] == current["total"] == compared
    status, report = call(f"{server.url}/duplicates")
    assert status == 200 and groups_of(report) == EXPECTED_GROUPS
    data_dir = server.scan_worker.settings.data_dir
    assert sorted(p.name for p in (data_dir / "duplicates").iterdir()) == [
        "duplicates.csv", "duplicates.json", "report.html"]  # fmt: skip
    assert not (data_dir / SCANS_DIR / scan["scan_id"]).exists()  # the work is gone with the scan
    assert call(f"{server.url}/duplicates/scans?limit=1")[1]["scans"][0]["scan_id"] == scan["scan_id"]


def test_a_scan_started_with_marks_is_judged_so_and_a_scan_file_from_before_reads_as_photo(
    server: LocalServer, tmp_path: Path
) -> None:
    status, scan = call(f"{server.url}/duplicates/scans?marks=product", "POST")
    assert status == 202 and scan["marks"] == "product"
    deadline = time.monotonic() + 120
    while (current := call(scan["status_url"])[1])["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, current
        time.sleep(0.2)
    assert current["status"] == "done" and current["marks"] == "product"
    assert call(f"{server.url}/duplicates")[1]["marks"] == "product"
    # A scans file written before scans kept their `marks`: opened, it gains the column, and its
    # scans (which judged as photo) say so.
    old = tmp_path / "old-scans.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.execute("""CREATE TABLE scans (scan_id TEXT PRIMARY KEY, status TEXT NOT NULL, phase TEXT,
            done INTEGER NOT NULL DEFAULT 0, total INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            started_at TEXT, finished_at TEXT, error TEXT, result TEXT)""")
        conn.execute("INSERT INTO scans (scan_id, status, created_at, updated_at) VALUES ('ab12', 'done', 'x', 'x')")
    conn.close()
    found = SqliteScanJobs(old).get("ab12")
    assert found is not None and found.marks is Marks.PHOTO
    assert SqliteScanJobs(old).recent(1)[0].marks is Marks.PHOTO  # (opened again: the column is there once)


def test_delete_cancels_a_running_scan_which_stops_and_publishes_nothing(server: LocalServer) -> None:
    status, scan = call(f"{server.url}/duplicates/scans", "POST")
    assert status == 202
    wait_for(lambda: call(scan["status_url"])[1]["phase"] == "verify", timeout=120)
    status, cancelled = call(scan["status_url"], "DELETE")
    assert (status, cancelled["status"]) == (200, "cancelled") and cancelled["finished_at"]
    data_dir = server.scan_worker.settings.data_dir
    wait_for(lambda: not (data_dir / SCANS_DIR / scan["scan_id"]).exists(), timeout=60)  # stopped, work dropped
    ended = call(scan["status_url"])[1]
    assert ended["status"] == "cancelled" and ended["result"] is None
    assert call(f"{server.url}/duplicates")[0] == 404  # nothing published
    status, refusal = call(scan["status_url"], "DELETE")
    assert (status, refusal["error"]["code"]) == (409, "conflict")
    assert call(f"{server.url}/duplicates/scans/{'0' * 32}", "DELETE")[0] == 404
    status, again = call(f"{server.url}/duplicates/scans", "POST")  # the next one runs to its end
    assert status == 202
    done = wait_for(lambda: (s := call(again["status_url"])[1])["status"] in ("done", "failed") and s, timeout=120)
    assert done["status"] == "done"


class Crash(BaseException):
    """What no job loop catches: it would end the scan worker's thread."""


def test_a_scan_whose_worker_died_is_failed_at_once_with_the_reason_and_the_next_scan_runs(
    service: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashes = [Crash("the thread's last words")]
    real_run_scan = run_scan

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        if crashes:
            raise crashes.pop()
        return real_run_scan(*args, **kwargs)

    monkeypatch.setattr("dupcheck_tools.local.scans.run_scan", crash_once)
    worker = ScanWorker(service, settings, poll_s=0.05)
    worker.start_thread()
    try:
        job = worker.scans.start()
        failed = wait_for(lambda: (j := worker.scans.get(job.scan_id)).status is ScanStatus.FAILED and j, timeout=60)
        assert "Crash: the thread's last words" in str(failed.error)
        second = worker.scans.start()  # the worker went on: the next scan runs
        done = wait_for(lambda: (j := worker.scans.get(second.scan_id)).status in FINAL and j, timeout=120)
        assert done.status is ScanStatus.DONE
    finally:
        worker.stop()


def test_a_scan_a_stopped_server_left_running_is_resumed_by_the_next(service: Any, settings: Settings) -> None:
    worker = ScanWorker(service, settings)
    job = worker.scans.start()
    recorded = worker.jobs.progress

    def progress(scan_id: str, phase: str, done: int, total: int | None) -> bool:
        running = recorded(scan_id, phase, done, total)
        if phase == "verify":
            worker.stop()  # the server shuts down mid-scan
        return running

    worker.jobs.progress = progress  # type: ignore[method-assign]
    assert worker.run(job) is None
    left = worker.jobs.get(job.scan_id)
    assert left is not None and left.status is ScanStatus.RUNNING and left.phase == "verify"
    assert (settings.data_dir / SCANS_DIR / job.scan_id / WORK_NAME).exists()

    counting = CountingStore(service.parts.store)
    service.parts.store = counting  # the next server: the same store, its reads counted
    worker = ScanWorker(service, settings)
    (runnable,) = worker.jobs.runnable()
    done = worker.run(runnable)
    assert done is not None and done.status is ScanStatus.DONE and counting.scans == 0  # nothing read again
    report = json.loads((settings.data_dir / "duplicates" / "duplicates.json").read_text())
    assert groups_of(report) == EXPECTED_GROUPS


def test_a_scans_published_csv_keeps_a_spreadsheet_from_evaluating_a_cell(settings: Settings, entries: list[Any]
                                                                          ) -> None:  # fmt: skip
    """A scan publishes the report's CSV as the command writes it: an id or SKU a spreadsheet would
    evaluate (the catalog's, whoever filled it) is text there, with a leading '; the JSON keeps it."""
    hostile = {"b-original": ("=1+1", "@SUM(1+1)"), "b-grayscale": ("-2+3", "+cmd")}
    service = build_service(settings)
    for entry in entries:
        entity_id, sku = hostile.get(entry.record.entity_id, (entry.record.entity_id, entry.record.sku))
        service.records.save(
            dataclasses.replace(entry, record=dataclasses.replace(entry.record, entity_id=entity_id, sku=sku))
        )
    worker = ScanWorker(service, settings)
    done = worker.run(worker.scans.start())
    assert done is not None and done.status is ScanStatus.DONE
    published = settings.data_dir / "duplicates"
    with (published / "duplicates.csv").open(newline="") as fh:
        rows = {row["entity_id"]: row for row in csv.DictReader(fh)}
    for entity_id, sku in hostile.values():
        assert rows["'" + entity_id]["sku"] == "'" + sku
    assert rows["a-original"]["sku"] == "SKU-A-ORIGINAL"  # ordinary cells as they are
    report = json.loads((published / "duplicates.json").read_text())
    assert ["=1+1", "-2+3"] in groups_of(report)  # b-original has the colour: kept, listed first


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_mid_scan_stops_the_server_and_the_next_start_finishes_the_scan(
    service: Any, settings: Settings
) -> None:
    """SIGINT to the whole process group (a terminal's Ctrl-C) while a scan verifies: the server
    exits within 10 s, the scan stays running (not failed), and the next server resumes it and
    publishes the report a scan that was never stopped publishes."""
    data_dir = settings.data_dir  # the catalog, saved by the `service` fixture
    proc, url = serve_process(data_dir)
    try:
        status, scan = call(f"{url}/duplicates/scans", "POST")
        assert status == 202
        wait_for(lambda: call(scan["status_url"])[1]["phase"] == "verify", timeout=120)
        exited = stop_group(proc, signal.SIGINT)
    finally:
        kill(proc)
    assert proc.returncode == 0 and exited < 10  # the requirement: a stop within 10 s
    left = SqliteScanJobs(data_dir / "scans.sqlite3").get(scan["scan_id"])
    assert left is not None and left.status is ScanStatus.RUNNING and left.error is None

    proc, url = serve_process(data_dir)
    status_url = f"{url}/duplicates/scans/{scan['scan_id']}"  # the new server's port
    try:
        done = wait_for(lambda: (s := call(status_url)[1])["status"] in ("done", "failed") and s, timeout=120)
        assert done["status"] == "done", done
        assert groups_of(call(f"{url}/duplicates")[1]) == EXPECTED_GROUPS
    finally:
        kill(proc)
