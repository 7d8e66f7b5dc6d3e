"""`export` and `import`: records as JSON Lines, between stores, idempotently, line errors kept."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.core.models import HashRecord, HashValue
from dupcheck_tools.cli import main
from dupcheck_tools.records_file import export_records, import_records
from support.aws import TABLE
from support.fakes import make_record


def records(count: int) -> list[HashRecord]:
    return [
        make_record(f"E{i}", hash_hex=f"{i:032x}", hash_algo="dualphash128-v3",
                    features={"views": bytes([i % 256]) * 40 + b"\x00\xff"})  # fmt: skip
        for i in range(count)
    ]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(list(args))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


@pytest.mark.parametrize("name", ["catalog.jsonl", "catalog.jsonl.gz"])
def test_export_then_import_into_another_store_gives_the_same_records(
    tmp_path: Path, capsys: Any, name: str
) -> None:
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
