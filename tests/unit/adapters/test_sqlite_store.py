"""The embedded record store: upserts, batches, paging, persistence and concurrent readers."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from dupcheck.adapters import sqlite_store
from dupcheck.adapters.local_index import entity_key
from dupcheck.adapters.sqlite_files import PAGE_SIZE
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import HashRecord, HashValue, PutCounts


def _record(i: int, **changes: object) -> HashRecord:
    base = {
        "entity_id": f"id-{i:05d}",
        "sku": f"SKU{i}",
        "image_url": f"https://img/{i}.jpg",
        "hash": HashValue.from_hex(f"{i:016x}"),
        "hash_algo": "phash64-v1",
        "features": {"c": str(i).encode()},
    }
    return HashRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    record = _record(1)
    store.put(record)
    assert store.get("id-00001") == record
    assert store.get("missing") is None


def test_upsert_is_idempotent_and_updates(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put(_record(1))
    store.put(_record(1))
    store.put(_record(1, image_url="https://img/new.jpg", hash=HashValue.from_hex("ff" * 8)))
    assert store.count() == 1
    got = store.get("id-00001")
    assert got is not None and got.image_url == "https://img/new.jpg" and got.hash.hex == "ff" * 8


def test_batches_larger_than_sqlite_parameter_limits(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    assert store.put_many(_record(i) for i in range(2500)) == 2500
    ids = [f"id-{i:05d}" for i in range(0, 2500, 2)] + ["missing"]
    assert len(store.get_many(ids)) == 1250
    scanned = list(store.scan())
    assert len(scanned) == 2500 == store.count()
    assert [r.entity_id for r in scanned] == sorted(r.entity_id for r in scanned)
    keys = [entity_key(f"id-{i:05d}") for i in range(1000)]
    assert len(store.ids_for_keys(keys)) == 1000


def test_delete_reports_whether_something_was_there(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put(_record(1))
    assert store.delete("id-00001") is True
    assert store.delete("id-00001") is False
    assert store.count() == 0


def _loaded(store: SqliteRecordStore, algos: set[str], bits: int = 64) -> dict[int, str]:
    keys, codes = store.index_codes(algos, bits)
    assert keys.dtype == np.int64 and codes.dtype == np.uint8 and codes.shape == (len(keys), bits // 8)
    loaded = {int(key): code.tobytes().hex() for key, code in zip(keys, codes, strict=True)}
    assert len(loaded) == len(keys)  # each record once
    return loaded


def test_index_codes_only_for_the_requested_pipelines(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many([_record(1), _record(2, hash_algo="other-v9"), _record(3, hash_algo="older-v1")])
    assert _loaded(store, {"phash64-v1"}) == {entity_key("id-00001"): f"{1:016x}"}
    assert _loaded(store, {"phash64-v1", "older-v1"}) == {
        entity_key("id-00001"): f"{1:016x}",
        entity_key("id-00003"): f"{3:016x}",
    }
    assert _loaded(store, {"none-v1"}) == {}
    assert store.index_rows_for(["id-00002", "id-00003", "missing"], {"older-v1"}) == {
        "id-00003": (entity_key("id-00003"), f"{3:016x}")
    }


def test_index_codes_reads_every_record_once_across_reads_and_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk read goes by ranges of rowids: records deleted, rewritten or written after a gap
    are each read once, with their current hash and their own key (negative keys included)."""
    monkeypatch.setattr(sqlite_store, "_CODES_PER_READ", 7)
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many(_record(i) for i in range(60))
    for i in range(0, 60, 4):
        store.delete(f"id-{i:05d}")
    store.put_many([_record(5, hash=HashValue.from_hex("ab" * 8)), _record(200), _record(8)])  # 8 was deleted
    kept = [i for i in range(60) if i % 4] + [8, 200]
    expected = {entity_key(f"id-{i:05d}"): f"{i:016x}" for i in kept}
    expected[entity_key("id-00005")] = "ab" * 8
    assert any(key < 0 for key in expected) and any(key > 0 for key in expected)
    assert _loaded(store, {"phash64-v1"}) == expected
    empty = SqliteRecordStore(tmp_path / "empty.db")
    assert _loaded(empty, {"phash64-v1"}) == {}


def test_index_codes_refuses_a_stored_hash_of_another_width(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many([_record(1), _record(2)])
    with pytest.raises(ValueError, match="128 bits"):
        store.index_codes({"phash64-v1"}, 128)
    with sqlite3.connect(tmp_path / "s.db") as conn:  # one 72-bit hash and one 56-bit: 128 bits in all
        conn.execute("UPDATE records SET hash = hash || 'ff' WHERE entity_id = 'id-00001'")
        conn.execute("UPDATE records SET hash = substr(hash, 3) WHERE entity_id = 'id-00002'")
    with pytest.raises(ValueError, match="64 bits: 2 stored hashes"):
        store.index_codes({"phash64-v1"}, 64)


def test_features_are_one_blob_and_rows_written_before_v3_still_read(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    record = _record(1, features={"views": b"\x00\xff" * 300, "x": b""})
    store.put(record)
    assert store.get(record.entity_id) == record
    with sqlite3.connect(tmp_path / "s.db") as conn:
        (stored,) = conn.execute("SELECT features FROM records").fetchone()
        assert isinstance(stored, bytes) and len(stored) < 620  # binary, not 800 characters of base64
        # A v2 row: a JSON object of base64 text in the same column.
        conn.execute("UPDATE records SET features = ?", (json.dumps({"views": base64.b64encode(b"raw").decode()}),))
    assert store.get(record.entity_id).features == {"views": b"raw"}


def test_data_survives_reopening(tmp_path: Path) -> None:
    SqliteRecordStore(tmp_path / "s.db").put_many(_record(i) for i in range(10))
    assert SqliteRecordStore(tmp_path / "s.db").count() == 10


def test_a_new_file_has_large_pages_and_a_file_made_before_keeps_its_own(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "new.db")
    store.put(_record(1))
    assert store._conn().execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    with sqlite3.connect(tmp_path / "old.db") as made_before:  # SQLite's default pages, not WAL
        made_before.execute("CREATE TABLE unrelated (x)")
    old, records = SqliteRecordStore(tmp_path / "old.db"), [_record(i) for i in range(300)]
    old.put_many(records)
    assert old._conn().execute("PRAGMA page_size").fetchone()[0] == 4096
    assert old.get("id-00007") == records[7] and old.count() == 300
    assert SqliteRecordStore(tmp_path / "old.db").get("id-00299") == records[299]  # reopened, mapped


def test_concurrent_readers_and_a_writer(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many(_record(i) for i in range(200))
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                assert len(store.get_many([f"id-{i:05d}" for i in range(200)])) == 200
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    def write() -> None:
        try:
            for i in range(200, 400):
                store.put(_record(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 400


def test_pages_follow_entity_ids_and_say_when_nothing_is_left(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many(_record(i) for i in range(7))
    first, after = store.page(None, 3)
    second, after_second = store.page(after, 3)
    last, end = store.page(after_second, 3)
    assert [r.entity_id for r in first + second + last] == [f"id-{i:05d}" for i in range(7)]
    assert after == "id-00002" and end is None and len(last) == 1
    assert store.page(None, 7) == (store.page(None, 10)[0], None)  # exactly the rest: no next page
    assert store.page("id-00006", 5) == ([], None)


def test_a_search_matches_ids_and_skus_ignoring_case_beyond_ascii(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_many([_record(1, entity_id="Straße-1", sku="abc"), _record(2, entity_id="x2", sku="STRASSE-9"),
                    _record(3, entity_id="y3", sku="MH01"), _record(4, entity_id="mh01-b", sku="")])  # fmt: skip
    assert [r.entity_id for r in store.page(None, 10, "strasse")[0]] == ["Straße-1", "x2"]
    found, after = store.page(None, 1, "MH01")
    assert [r.entity_id for r in found] == ["mh01-b"] and after == "mh01-b"
    assert [r.entity_id for r in store.page(after, 1, "mh01")[0]] == ["y3"]
    assert store.page(None, 10, "nothing like it") == ([], None)


def _stamped(i: int, at: str, **changes: object) -> HashRecord:
    return _record(i, updated_at=at, **changes)


def test_put_newest_compares_on_write_and_counts_each_record(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    first = [_stamped(i, "2026-01-01T00:00:00.000Z") for i in range(3)]
    assert store.put_newest(first) == PutCounts(written=3)
    assert store.latest_change() == 3

    later = _stamped(1, "2026-02-01T00:00:00.000Z", sku="LATER")
    older = _stamped(2, "2025-06-01T00:00:00.000Z", sku="OLDER")
    same_stamp_edited = _stamped(0, "2026-01-01T00:00:00.000Z", sku="EDITED")
    counts = store.put_newest([first[0], later, older, same_stamp_edited, _stamped(9, "2026-01-01T00:00:00Z")])

    # first[0] unchanged; the later one and a new id written; the older one kept out; an edit with
    # the stored stamp is not older, so it is written (as the read-then-compare import did).
    assert counts == PutCounts(written=3, unchanged=1, kept_newer=1)
    assert [store.get(f"id-0000{i}").sku for i in (0, 1, 2)] == ["EDITED", "LATER", "SKU2"]
    # Only what was written reaches the change log the server's index follows.
    changed, _ = store.changes_since(3)
    assert sorted(entity_id for _, entity_id in changed) == ["id-00000", "id-00001", "id-00009"]


def test_put_newest_orders_by_the_instant_not_the_text_of_updated_at(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put_newest([_stamped(1, "2026-01-01T00:00:00.000Z")])
    # Later as text, but 23:00 the day before in UTC.
    earlier = _stamped(1, "2026-01-01T01:00:00.000+02:00", sku="EARLIER")
    assert store.put_newest([earlier]) == PutCounts(kept_newer=1)
    assert store.put_newest([earlier], overwrite=True) == PutCounts(written=1)
    assert store.get("id-00001").sku == "EARLIER"


def test_put_newest_meets_an_ids_earlier_record_in_the_same_call(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    old, new = _stamped(1, "2026-01-01T00:00:00Z", sku="OLD"), _stamped(1, "2026-03-01T00:00:00Z", sku="NEW")
    assert store.put_newest([new, old, new]) == PutCounts(written=1, unchanged=1, kept_newer=1)
    assert store.get("id-00001").sku == "NEW"
    assert store.put_newest([_stamped(2, "2026-01-01T00:00:00Z", sku="OLD"), _stamped(2, "2026-03-01T00:00:00Z")]) \
        == PutCounts(written=2)  # fmt: skip
    assert store.get("id-00002").sku == "SKU2" and store.count() == 2


def test_put_newest_rolls_back_a_call_that_fails(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")
    store.put(_record(1))
    clash = _record(2)
    with sqlite3.connect(tmp_path / "s.db") as conn:  # another id already holds id-00002's key
        conn.execute("UPDATE records SET id_key = ? WHERE entity_id = 'id-00001'", (entity_key("id-00002"),))
    with pytest.raises(StoreUnavailable, match="key collision"):
        store.put_newest([_record(3), clash])
    assert store.get("id-00003") is None and store.count() == 1


def test_put_newest_runs_before_commit_while_its_records_cannot_be_read(tmp_path: Path) -> None:
    store, reader = SqliteRecordStore(tmp_path / "s.db"), SqliteRecordStore(tmp_path / "s.db")
    store.put(_record(1))
    seen: list[int] = []

    assert store.put_newest([_record(2), _record(3)], before_commit=lambda: seen.append(reader.count())) \
        == PutCounts(written=2)  # fmt: skip
    assert seen == [1] and reader.count() == 3


def test_put_newest_writes_nothing_when_before_commit_fails(tmp_path: Path) -> None:
    store = SqliteRecordStore(tmp_path / "s.db")

    def thumbnails_failed() -> None:
        raise StoreUnavailable("local thumbnail store failed: disk I/O error")

    with pytest.raises(StoreUnavailable, match="thumbnail"):
        store.put_newest([_record(1), _record(2)], before_commit=thumbnails_failed)
    assert store.count() == 0
    assert store.put_newest([_record(1)]) == PutCounts(written=1)  # the connection is usable again


@pytest.mark.parametrize("parameters", [9, 100, 32766])
def test_put_newest_fits_each_statement_to_sqlites_parameter_limit(tmp_path: Path, parameters: int) -> None:
    # Statements take as many rows as the connection binds (one row at 9 parameters; 11 at 100;
    # 4,000 at the usual 32,766): a write of more rows than one statement holds stores them all.
    store = SqliteRecordStore(tmp_path / "s.db")
    store._conn().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, parameters)
    records = [_stamped(i, "2026-01-01T00:00:00.000Z") for i in range(4100)]
    assert store.put_newest(records) == PutCounts(written=4100)
    assert store.put_newest(records[::-1]) == PutCounts(unchanged=4100)
    assert store.count() == 4100 and store.get("id-04099") == records[-1]
