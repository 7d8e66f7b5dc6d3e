"""`export` and `import`: records as JSON Lines, between stores, idempotently, line errors kept."""

from __future__ import annotations

import base64
import dataclasses
import gc
import gzip
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import HashRecord, HashValue, IndexHit, PutCounts
from dupcheck_tools import records_file
from dupcheck_tools.cli import main
from dupcheck_tools.cli import records as cli_records
from dupcheck_tools.local.sync import IndexFollower
from dupcheck_tools.records_file import export_records, import_records
from support.aws import TABLE
from support.fakes import make_record


def records(count: int) -> list[HashRecord]:
    return [
        make_record(
            f"E{i}",
            hash_hex=f"{i:032x}",
            hash_algo="dualphash128-v3",
            features={"views": bytes([i % 256]) * 40 + b"\x00\xff"},
        )  # fmt: skip
        for i in range(count)
    ]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(list(args))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


@pytest.mark.parametrize("name", ["catalog.jsonl", "catalog.jsonl.gz"])
def test_export_then_import_into_another_store_gives_the_same_records(tmp_path: Path, capsys: Any, name: str) -> None:
    source = SqliteRecordStore(tmp_path / "a" / "dupcheck.sqlite3")
    source.put_many(records(1200))
    # Thumbnails beside all records but E7 (one a file can lack: reindex makes it again).
    kept = {f"E{i}": f"thumbnail {i}".encode() + b"\xff\x00" for i in range(1200) if i != 7}
    SqliteThumbnails(tmp_path / "a" / "thumbnails.sqlite3").put_many(kept)
    out = tmp_path / name

    code, summary = run(capsys, "--data-dir", str(tmp_path / "a"), "export", "--out", str(out), "--target", "local")

    assert (code, summary["records"]) == (0, 1200)
    assert not out.with_name(name + ".partial").exists()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(out, "rt") as file:
        lines = {line["entity_id"]: line for line in map(json.loads, file)}
    # The fields GET /items/{id}?include=features returns, features as base64, and the thumbnail.
    assert set(lines["E0"]) == {"entity_id", "sku", "image_url", "hash", "hash_algo", "updated_at", "features",
                                "thumbnail"}  # fmt: skip
    assert base64.b64decode(lines["E0"]["features"]["views"]).endswith(b"\x00\xff")
    assert base64.b64decode(lines["E5"]["thumbnail"]) == kept["E5"]
    assert "thumbnail" not in lines["E7"]

    code, summary = run(capsys, "--data-dir", str(tmp_path / "b"), "import", str(out), "--target", "local")

    assert code == 0, summary
    assert (summary["lines"], summary["imported"], summary["failed"]) == (1200, 1200, 0)
    target = SqliteRecordStore(tmp_path / "b" / "dupcheck.sqlite3")
    assert sorted(target.scan(), key=lambda r: r.entity_id) == sorted(source.scan(), key=lambda r: r.entity_id)
    thumbnails = SqliteThumbnails(tmp_path / "b" / "thumbnails.sqlite3")
    assert thumbnails.get_many([f"E{i}" for i in range(1200)]) == kept


def test_import_is_idempotent_and_keeps_a_newer_record(tmp_path: Path) -> None:
    file = tmp_path / "c.jsonl"
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records(10)))
    store = SqliteRecordStore(tmp_path / "s.db")

    first = import_records(store, file, failures=tmp_path / "f.csv")
    again = import_records(store, file, failures=tmp_path / "f.csv")

    assert (first.imported, first.unchanged) == (10, 0)
    assert (again.imported, again.unchanged, again.kept_newer) == (0, 10, 0)
    changed = dataclasses.replace(store.get("E3"), sku="EDITED", updated_at="2099-01-01T00:00:00.000Z")
    store.put(changed)
    third = import_records(store, file, failures=tmp_path / "f.csv")
    assert (third.unchanged, third.kept_newer) == (9, 1)
    assert store.get("E3") == changed
    forced = import_records(store, file, failures=tmp_path / "f.csv", overwrite=True)
    assert forced.imported == 10 and store.get("E3").sku == "SKU-E3"


def test_a_record_kept_newer_keeps_its_own_thumbnail(tmp_path: Path) -> None:
    def line(record: HashRecord, thumbnail: bytes) -> str:
        return json.dumps({**record.to_dict(), "thumbnail": base64.b64encode(thumbnail).decode()}) + "\n"

    old, fresh = records(2)
    newer = dataclasses.replace(old, hash=HashValue.from_hex("ab" * 16), updated_at="2099-01-01T00:00:00.000Z")
    store, thumbnails = SqliteRecordStore(tmp_path / "s.db"), SqliteThumbnails(tmp_path / "t.db")
    store.put(newer)
    thumbnails.put_many({"E0": b"the newer picture's"})
    file = tmp_path / "old.jsonl"
    file.write_text(line(old, b"the older picture's") + line(fresh, b"E1's") + line(fresh, b"E1's, later line"))

    summary = import_records(store, file, failures=tmp_path / "f.csv", thumbnails=thumbnails)

    assert (summary.imported, summary.kept_newer, summary.unchanged) == (1, 1, 1)
    assert thumbnails.get_many(["E0", "E1"]) == {"E0": b"the newer picture's", "E1": b"E1's, later line"}
    forced = import_records(store, file, failures=tmp_path / "f.csv", thumbnails=thumbnails, overwrite=True)
    assert forced.imported == 3 and thumbnails.get_many(["E0"]) == {"E0": b"the older picture's"}


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_is_imported(tmp_path: Path, capsys: Any) -> None:
    good = [json.dumps(r.to_dict()) for r in records(3)]
    broken = dict(json.loads(good[0]), entity_id="a/b")
    lines = [
        good[0],
        "{not json",
        json.dumps(broken),
        "",  # blank lines are skipped, not failures
        json.dumps({"entity_id": "X", "hash_algo": "dualphash128-v3"}),
        json.dumps(dict(json.loads(good[1]), entity_id="Y", features={"views": "not base64!"})),
        json.dumps(dict(json.loads(good[1]), entity_id="Z", colour="red")),
        "[1, 2]",
        good[1],
        json.dumps(dict(json.loads(good[2]), hash="zz")),
        json.dumps(dict(json.loads(good[2]), entity_id="T", thumbnail="not base64!")),
    ]
    file = tmp_path / "c.jsonl"
    file.write_text("\n".join(lines) + "\n")

    code, summary = run(capsys, "--data-dir", str(tmp_path / "d"), "import", str(file),
                        "--failures", str(tmp_path / "bad.jsonl"))  # fmt: skip

    assert code == 1
    assert (summary["lines"], summary["imported"], summary["failed"]) == (11, 2, 8)
    reported = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [(r["row"], r["code"]) for r in reported] == [
        (2, "invalid_json"), (3, "invalid_id"), (5, "invalid_record"), (6, "invalid_record"),
        (7, "invalid_record"), (8, "invalid_record"), (10, "invalid_record"), (11, "invalid_record"),
    ]  # fmt: skip
    assert "thumbnail" in reported[-1]["message"] and "base64" in reported[-1]["message"]
    assert reported[1]["entity_id"] == "a/b" and "URL path segment" in reported[1]["message"]
    assert "base64" in reported[3]["message"] and "colour" in reported[4]["message"]
    assert sorted(r.entity_id for r in SqliteRecordStore(tmp_path / "d" / "dupcheck.sqlite3").scan()) == ["E0", "E1"]


def test_within_a_file_the_last_line_of_an_id_wins(tmp_path: Path) -> None:
    first, second = make_record("A", sku="old"), make_record("A", sku="new")
    file = tmp_path / "c.jsonl"
    file.write_text(json.dumps(first.to_dict()) + "\n" + json.dumps(second.to_dict()) + "\n")
    store = SqliteRecordStore(tmp_path / "s.db")
    import_records(store, file, failures=tmp_path / "f.csv", overwrite=True)
    assert store.get("A").sku == "new" and store.count() == 1


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    code = main(["--data-dir", str(tmp_path), "import", str(tmp_path / "nothing.jsonl")])
    assert code == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "usage"


def test_records_move_between_the_embedded_store_and_dynamodb(tmp_path: Path, ddb_store: Any) -> None:
    local = SqliteRecordStore(tmp_path / "s.db")
    local.put_many(records(60))
    file = tmp_path / "c.jsonl.gz"
    assert export_records(local, file).records == 60

    summary = import_records(ddb_store, file, failures=tmp_path / "f.csv")

    assert (summary.imported, summary.failed) == (60, 0)
    assert sorted(ddb_store.scan(), key=lambda r: r.entity_id) == sorted(local.scan(), key=lambda r: r.entity_id)
    back = tmp_path / "back.jsonl"
    assert export_records(ddb_store, back, segments=3).records == 60
    assert import_records(local, back, failures=tmp_path / "f.csv").unchanged == 60


def test_an_interrupted_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many(records(5))

    def scan(segments: int = 1) -> Any:
        yield make_record("first")
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "scan", scan)
    summary = export_records(store, tmp_path / "out.jsonl")
    assert summary.interrupted and summary.exit_code == 130
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_hash_values_survive_as_hex(tmp_path: Path) -> None:
    record = make_record("H", hash_hex="00" * 15 + "ff", hash_algo="dualphash128-v3")
    file = tmp_path / "c.jsonl"
    file.write_text(json.dumps(record.to_dict()) + "\n")
    store = SqliteRecordStore(tmp_path / "s.db")
    import_records(store, file, failures=tmp_path / "f.csv")
    assert store.get("H").hash == HashValue.from_hex("00" * 15 + "ff")


def test_the_commands_take_dynamodb_as_their_target(tmp_path: Path, ddb_store: Any, capsys: Any) -> None:
    file = tmp_path / "c.jsonl"
    local = SqliteRecordStore(tmp_path / "s.db")
    local.put_many(records(12))
    assert export_records(local, file).records == 12

    dynamodb = ["--target", "dynamodb", "--table", TABLE]
    assert main(["import", str(file), *dynamodb, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["imported"] == 12
    assert ddb_store.count() == 12
    assert main(["export", "--out", str(tmp_path / "back.jsonl"), *dynamodb, "--no-progress"]) == 0
    assert len((tmp_path / "back.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("target", ["sqlite", "dynamodb"])
@pytest.mark.parametrize("batch", [2, records_file.BATCH])
def test_a_later_line_of_an_id_meets_the_earlier_one_in_any_batch(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, target: str, batch: int
) -> None:
    # SQLite compares on write (NewestPuts); DynamoDB is read, compared and written: both count alike.
    store = SqliteRecordStore(tmp_path / "s.db") if target == "sqlite" else request.getfixturevalue("ddb_store")
    monkeypatch.setattr(records_file, "BATCH", batch)
    lines = [
        make_record("A", sku="first", updated_at="2026-01-01T00:00:00.000Z"),
        make_record("B"),
        make_record("A", sku="older", updated_at="2025-01-01T00:00:00.000Z"),
        make_record("A", sku="latest", updated_at="2026-05-01T00:00:00.000Z"),
        make_record("A", sku="latest", updated_at="2026-05-01T00:00:00.000Z"),
    ]
    file = tmp_path / "c.jsonl"
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in lines))

    summary = import_records(store, file, failures=tmp_path / "f.csv")

    assert (summary.imported, summary.kept_newer, summary.unchanged, summary.failed) == (3, 1, 1, 0)
    assert store.get("A") == lines[3] and store.get("B") == lines[1]
    again = import_records(store, file, failures=tmp_path / "f.csv")
    assert (again.imported, again.kept_newer, again.unchanged) == (0, 2, 3)


def test_a_batch_ends_at_its_count_or_once_its_thumbnails_reach_their_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records files without thumbnails are written BATCH records a transaction; thumbnails
    (a v4 export's are ~20 KB each) end a batch sooner, so a batch's memory stays bounded."""
    monkeypatch.setattr(records_file, "BATCH", 8)
    monkeypatch.setattr(records_file, "BATCH_THUMBNAIL_BYTES", 250)
    catalog = records(30)
    carrying = set(range(10, 20))  # lines 10-19 carry a 100-byte thumbnail: three to a batch at most
    file = tmp_path / "c.jsonl"
    file.write_text("".join(
        json.dumps({**r.to_dict(), **({"thumbnail": base64.b64encode(bytes(100)).decode()} if i in carrying else {})})
        + "\n" for i, r in enumerate(catalog)
    ))  # fmt: skip
    store, thumbnails = SqliteRecordStore(tmp_path / "s.db"), SqliteThumbnails(tmp_path / "t.db")
    written: list[list[str]] = []
    put_newest = store.put_newest

    def recorded(batch: list[HashRecord], **options: Any) -> PutCounts:
        written.append([record.entity_id for record in batch])
        return put_newest(batch, **options)

    monkeypatch.setattr(store, "put_newest", recorded)
    summary = import_records(store, file, failures=tmp_path / "f.csv", thumbnails=thumbnails)

    assert summary.imported == 30 and store.count() == 30
    # 0-7; 8-12 (the third thumbnail ends it); 13-15; 16-18; 19-26 (one thumbnail); 27-29
    assert [len(batch) for batch in written] == [8, 5, 3, 3, 8, 3]
    assert [entity_id for batch in written for entity_id in batch] == [r.entity_id for r in catalog]
    assert len(thumbnails.get_many([f"E{i}" for i in range(30)])) == 10


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_imported(tmp_path: Path) -> None:
    good = [json.dumps(r.to_dict()).encode() for r in records(3)]
    file = tmp_path / "c.jsonl"
    file.write_bytes(b"\n".join([good[0], b'{"entity_id": "caf\xe9"}', good[1], good[2]]) + b"\n")
    store = SqliteRecordStore(tmp_path / "s.db")

    summary = import_records(store, file, failures=tmp_path / "bad.jsonl")

    assert (summary.lines, summary.imported, summary.failed) == (4, 3, 1)
    reported = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [(r["row"], r["code"]) for r in reported] == [(2, "invalid_json")]
    assert "utf-8" in reported[0]["message"].lower()


def test_the_servers_index_follows_every_record_an_import_writes(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    index = LocalHashIndex(128, resolve_ids=store.ids_for_keys)
    follower = IndexFollower(store, index, {"dualphash128-v3"})
    file = tmp_path / "c.jsonl"
    catalog = records(12_000)  # more than one write transaction
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in catalog))
    import_records(store, file, failures=tmp_path / "f.csv")

    assert follower.poll() == 12_000 and index.count() == 12_000
    moved = {i: dataclasses.replace(catalog[i], hash=HashValue.from_hex(f"{i + 1:032x}".replace("0", "f", 8)),
                                    updated_at="2099-01-01T00:00:00.000Z") for i in (5, 7_000, 11_999)}  # fmt: skip
    file.write_text("".join(json.dumps(moved.get(i, r).to_dict()) + "\n" for i, r in enumerate(catalog)))
    summary = import_records(store, file, failures=tmp_path / "f.csv")

    assert (summary.imported, summary.unchanged) == (3, 11_997)
    assert follower.poll() == 3  # only the written ones reach the change log
    for record in moved.values():
        assert index.search([record.hash], 1)[0] == IndexHit(record.entity_id, 0)


def test_an_interrupted_import_counts_exactly_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.jsonl"
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records(100)))
    monkeypatch.setattr(records_file, "BATCH", 10)
    parsed = records_file.parse_line
    calls = itertools.count(1)

    def parse_then_interrupt(line: bytes) -> HashRecord:
        if next(calls) == 35:
            raise KeyboardInterrupt
        return parsed(line)

    monkeypatch.setattr(records_file, "parse_line", parse_then_interrupt)
    store = SqliteRecordStore(tmp_path / "s.db")
    summary = import_records(store, file, failures=tmp_path / "f.csv")

    assert summary.interrupted and summary.exit_code == 130
    assert summary.imported == store.count() and summary.imported in (20, 30)


def test_a_store_failure_ends_the_import_with_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.jsonl"
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records(100)))
    monkeypatch.setattr(records_file, "BATCH", 10)
    store = SqliteRecordStore(tmp_path / "s.db")
    put_newest, calls = store.put_newest, itertools.count(1)

    def failing_second(batch: list[HashRecord], *, overwrite: bool = False) -> PutCounts:
        if next(calls) == 2:
            raise StoreUnavailable("local store failed: disk I/O error")
        return put_newest(batch, overwrite=overwrite)

    monkeypatch.setattr(store, "put_newest", failing_second)
    with pytest.raises(StoreUnavailable, match="disk I/O"):
        import_records(store, file, failures=tmp_path / "f.csv")
    # Batches queued behind the failure are dropped: at most the one already taken up is written.
    assert store.count() in (10, 20)


def test_no_record_is_written_without_its_thumbnail_when_the_thumbnails_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "c.jsonl"
    file.write_text("".join(
        json.dumps({**r.to_dict(), "thumbnail": base64.b64encode(f"of {r.entity_id}".encode()).decode()}) + "\n"
        for r in records(100)
    ))  # fmt: skip
    monkeypatch.setattr(records_file, "BATCH", 10)
    store, thumbnails = SqliteRecordStore(tmp_path / "s.db"), SqliteThumbnails(tmp_path / "t.db")
    put_many, calls = thumbnails.put_many, itertools.count(1)

    def failing_second(kept: dict[str, bytes]) -> int:
        if next(calls) == 2:
            raise StoreUnavailable("local thumbnail store failed: disk I/O error")
        return put_many(kept)

    monkeypatch.setattr(thumbnails, "put_many", failing_second)
    with pytest.raises(StoreUnavailable, match="thumbnail"):
        import_records(store, file, failures=tmp_path / "f.csv", thumbnails=thumbnails)
    # The batch whose thumbnails failed left no record; every record written has its thumbnail.
    ids = [f"E{i}" for i in range(100)]
    written = set(store.get_many(ids))
    assert store.count() in (10, 20) and not written & {f"E{i}" for i in range(10, 20)}
    assert set(thumbnails.get_many(ids)) >= written


def test_progress_follows_the_compressed_bytes_of_a_gz_file(tmp_path: Path, capsys: Any) -> None:
    file = tmp_path / "c.jsonl.gz"
    with gzip.open(file, "wt") as out:
        out.writelines(json.dumps(r.to_dict()) + "\n" for r in records(3000))
    import_records(SqliteRecordStore(tmp_path / "s.db"), file, failures=tmp_path / "f.csv", progress=True)
    shown = [int(p) for p in re.findall(r"import:\s+(\d+)%", capsys.readouterr().err)]
    assert shown and shown[-1] == 100 and max(shown) == 100


def test_the_command_pauses_cyclic_gc_and_its_lines_leave_no_cycles_behind(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import command runs without the cyclic collector (cyclic_gc_paused says why), which is
    only safe while good and bad lines alike are freed by reference counting alone."""
    bad = ["{not json", json.dumps({"entity_id": "a/b", "hash": "00", "hash_algo": "x"}), '{"entity_id": "X"}',
           json.dumps({"entity_id": "Y", "hash": "zz", "hash_algo": "x"}), "[1, 2]"]  # fmt: skip
    seen: list[bool] = []
    real = cli_records.import_records
    monkeypatch.setattr(cli_records, "import_records", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))

    def cycles_left_by_importing(count: int) -> int:
        good = [json.dumps(r.to_dict()) for r in records(count)]
        file = tmp_path / f"c{count}.jsonl"
        file.write_text("\n".join(itertools.chain.from_iterable(zip(good, itertools.cycle(bad)))) + "\n")
        gc.collect()
        gc.disable()  # from here to the count: no collection frees what the lines might leave
        try:
            code, summary = run(capsys, "--data-dir", str(tmp_path / f"d{count}"), "import", str(file), "--no-progress")
            assert (code, summary["imported"], summary["failed"]) == (1, count, count)
            assert not gc.isenabled()  # the command restores the collector's state, not "enabled"
            return gc.collect()  # what the command left that only the collector frees (argparse's)
        finally:
            gc.enable()

    small, large = cycles_left_by_importing(200), cycles_left_by_importing(3000)
    assert large - small < 50  # a cycle per line would leave thousands more
    code, _ = run(capsys, "--data-dir", str(tmp_path / "d"), "import", str(tmp_path / "c200.jsonl"), "--no-progress")
    assert code == 1 and seen == [False, False, False] and gc.isenabled()


@pytest.mark.parametrize(
    "catalog",
    [
        "entity_id,sku,image_url\nA,S,https://shop.test/a.jpg\n",
        '{"entity_id": "A", "sku": "S", "image_url": "https://shop.test/a.jpg"}\n',
    ],
)
def test_import_of_a_catalog_says_which_command_imports_it(tmp_path: Path, capsys: Any, catalog: str) -> None:
    """A catalog is not an export file: every row would fail as a record. Nothing is read as one;
    the answer names the command that imports a catalog as the web app does."""
    file = tmp_path / "catalog.csv"
    file.write_text("\n\n" + catalog)
    code = main(["--data-dir", str(tmp_path / "d"), "import", str(file)])
    error = json.loads(capsys.readouterr().err)["error"]
    assert code == 2 and error["code"] == "usage"
    assert f"backfill --catalog {file}" in error["message"] and "--on-duplicate" in error["message"]
    assert not (tmp_path / "d" / "dupcheck.sqlite3").exists() or SqliteRecordStore(
        tmp_path / "d" / "dupcheck.sqlite3").count() == 0  # fmt: skip
