"""`reindex`: rebuild the index from the store, re-hashing records of another pipeline first.

Local target through the CLI (SQLite + in-process index); DynamoDB target on moto with a
LocalHashIndex standing in for OpenSearch through the HashIndex port.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue
from dupcheck.core.settings import Settings
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import Views
from dupcheck_tools.backfill import BackfillOptions, backfill_catalog
from dupcheck_tools.cli import main
from dupcheck_tools.reindex import reindex
from scripts.helpers.loopback import ImageServer
from support.catalogs import good_rows, write_catalog
from support.fakes import raw_views

OLD_ALGO = "phash64-v0"
LEGACY = "dualphash128-v2"
COMPACT = "dualphash128-v3"
FAST = BackfillOptions(hash_workers=-1, progress=False, backoff=0.01, retries=0)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DUPCHECK_ALLOW_LOOPBACK_URLS", "true")
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def outdate(store: Any, entity_ids: list[str]) -> None:
    """Pretend these records were hashed by an older pipeline."""
    old = store.get_many(entity_ids)
    stale = HashValue.from_hex("f" * 16)
    store.put_many(dataclasses.replace(old[e], hash_algo=OLD_ALGO, hash=stale) for e in entity_ids)


def run_reindex(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["reindex", "--no-progress", "--hash-workers", "1", "--retries", "0", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_local_reindex_rehashes_old_pipeline_and_verifies(
    image_server: ImageServer, data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 6))
    assert backfill_catalog(catalog, options=FAST).done == 6
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    current = {r.entity_id: r for r in store.scan()}
    outdate(store, ["E1", "E4"])
    hits = image_server.counts()

    code, report, _ = run_reindex(capsys, "--target", "local")

    assert code == 0, report
    assert report["ok"] is True
    assert report["before"] == {"store_records": 6, "index_docs": 4}  # the old hashes are not loaded
    assert (report["rehash"]["rows"], report["rehash"]["done"], report["rehash"]["failed"]) == (2, 2, 0)
    assert report["after"] == {"store_records": 6, "index_docs": 6}
    assert report["verified"] == 6
    counts = image_server.counts()
    assert {p: counts[p] - hits[p] for p in counts if counts[p] != hits[p]} == {"/img/1.jpg": 1, "/img/4.jpg": 1}
    rehashed = store.get_many(["E1", "E4"])
    assert all(rehashed[e].hash == current[e].hash and rehashed[e].hash_algo == current[e].hash_algo for e in rehashed)

    # Nothing stale left: a second reindex downloads nothing.
    code, report, _ = run_reindex(capsys, "--target", "local")
    assert (code, report["rehash"]["rows"]) == (0, 0)
    assert image_server.counts() == counts


def test_local_reindex_fails_loudly_when_a_record_cannot_be_rehashed(
    image_server: ImageServer, data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 3))
    backfill_catalog(catalog, options=FAST)
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    outdate(store, ["E2"])
    del image_server.routes["/img/2.jpg"]  # its image is gone: 404

    code, report, err = run_reindex(capsys, "--target", "local", "--failures", str(tmp_path / "r.csv"))

    assert code == 1
    assert report["ok"] is False
    assert "1 store records are still hashed with another pipeline" in report["message"]
    assert "index holds 2 documents but the store holds 3 records" in report["message"]
    assert "reindex FAILED" in err
    assert "E2" in (tmp_path / "r.csv").read_text()


def test_local_reindex_brings_v2_and_v3_records_to_v4_with_their_thumbnails(
    image_server: ImageServer, data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 5))
    backfill_catalog(catalog, options=FAST)
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    thumbnails = SqliteThumbnails(data_dir / "thumbnails.sqlite3")
    assert thumbnails.missing([f"E{i}" for i in range(5)]) == set()  # backfill kept one per record
    current = {r.entity_id: r for r in store.scan()}
    # E1 as dualphash128-v2 wrote it (views raw), E2 as v3 (the same record), neither with a
    # thumbnail; E3 of the current pipeline, its thumbnail lost (an import of a file without it).
    views = Views.decode(current["E1"].features["views"])
    store.put(dataclasses.replace(current["E1"], hash_algo=LEGACY, features={"views": raw_views(views)}))
    store.put(dataclasses.replace(current["E2"], hash_algo=COMPACT))
    for entity_id in ("E1", "E2", "E3"):
        thumbnails.delete(entity_id)
    hits = image_server.counts()

    code, report, _ = run_reindex(capsys, "--target", "local")

    assert code == 0, report
    # The current pipeline reads v2 and v3 records: they stayed searchable until re-hashed.
    assert report["before"] == {"store_records": 5, "index_docs": 5}
    assert (report["rehash"]["rows"], report["rehash"]["done"], report["rehash"]["converted"]) == (3, 3, 0)
    assert report["rehash"]["missing_thumbnails"] == 1
    counts = image_server.counts()
    assert {p: counts[p] - hits[p] for p in counts if counts[p] != hits[p]} == {f"/img/{i}.jpg": 1 for i in (1, 2, 3)}
    assert thumbnails.missing([f"E{i}" for i in range(5)]) == set()
    for entity_id, record in store.get_many(["E1", "E2", "E3"]).items():
        assert (record.hash, record.hash_algo) == (current[entity_id].hash, get_pipeline().algo)
        assert Thumbnail.decode(thumbnails.get_many([entity_id])[entity_id]).hash == record.hash  # type: ignore[union-attr]

    # Nothing left to do: a second reindex downloads nothing.
    code, report, _ = run_reindex(capsys, "--target", "local")
    assert (code, report["rehash"]["rows"], report["rehash"]["missing_thumbnails"]) == (0, 0, 0)
    assert image_server.counts() == counts


class _Compacting:
    """A pipeline that stores `OLD_ALGO`'s records in a new form it can convert without the
    image: what `HashPipeline.upgrade` is for (v2 -> v3 was one such step)."""

    def __init__(self) -> None:
        self._real = get_pipeline()
        self.algo = self._real.algo
        self.reads = frozenset({self.algo, OLD_ALGO})
        self.index_bits, self.keeps_thumbnails = self._real.index_bits, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def upgrade(self, record: HashRecord) -> HashRecord | None:
        return dataclasses.replace(record, hash_algo=self.algo) if record.hash_algo == OLD_ALGO else None


def test_reindex_converts_what_a_pipeline_can_upgrade_without_downloading(
    image_server: ImageServer, data_dir: Path, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 4))
    backfill_catalog(catalog, options=FAST)
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    before = {r.entity_id: r for r in store.scan()}
    store.put_many(dataclasses.replace(before[e], hash_algo=OLD_ALGO) for e in ("E0", "E3"))
    hits = image_server.counts()

    report = reindex(Settings.from_env(), target="local", store=store, failures=tmp_path / "r.csv",
                     options=FAST, pipeline=_Compacting())  # type: ignore[arg-type]  # fmt: skip

    assert report.ok, report.message
    assert (report.rehash["converted"], report.rehash["rows"]) == (2, 0)
    assert image_server.counts() == hits  # nothing downloaded
    assert {r.hash_algo for r in store.scan()} == {get_pipeline().algo}


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore, create_table

    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        import boto3

        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "dupcheck-reindex")
        yield DynamoDBRecordStore("dupcheck-reindex", client=client, base_delay=0.001)


def test_dynamodb_reindex_into_an_index_port(
    image_server: ImageServer, data_dir: Path, tmp_path: Path, dynamodb: Any
) -> None:
    settings = Settings.from_env(store="dynamodb", table_name="dupcheck-reindex", allow_loopback_urls=True)
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 8))
    summary = backfill_catalog(catalog, target="dynamodb", settings=settings, store=dynamodb, options=FAST)
    assert (summary.done, summary.failed) == (8, 0)
    outdate(dynamodb, ["E0", "E5"])
    index = LocalHashIndex(get_pipeline().index_bits)  # stands in for OpenSearch through the HashIndex port

    report = reindex(settings, target="dynamodb", store=dynamodb, index=index,
                     failures=tmp_path / "r.csv", options=FAST, segments=3)  # fmt: skip

    assert report.ok, report.message
    assert report.exit_code == 0
    assert report.before == {"store_records": 8, "index_docs": 0}
    assert (report.rehash["rows"], report.rehash["done"]) == (2, 2)
    assert report.indexed == 8
    assert report.after == {"store_records": 8, "index_docs": 8}
    assert all(r.hash_algo != OLD_ALGO for r in dynamodb.scan())
    some = dynamodb.get("E5")
    assert [h.entity_id for h in index.search([some.hash], 1, max_distance=0)] == ["E5"]

    # An index document the store does not have (e.g. a lost delete) is a loud mismatch.
    index.upsert(HashRecord("ghost", "", "http://x/ghost.jpg", HashValue(bytes(index.bits // 8)), some.hash_algo))
    report = reindex(settings, target="dynamodb", store=dynamodb, index=index,
                     failures=tmp_path / "r.csv", options=FAST, segments=2)  # fmt: skip
    assert not report.ok and report.exit_code == 1
    assert "index holds 9 documents but the store holds 8 records" in report.message
