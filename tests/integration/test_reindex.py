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
from dupcheck.core import views_codec
from dupcheck.core.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue
from dupcheck.core.settings import Settings
from dupcheck.core.verification import Views
from dupcheck_tools.backfill import BackfillOptions, backfill_catalog
from dupcheck_tools.cli import main
from dupcheck_tools.reindex import reindex
from support.catalogs import good_rows, write_catalog
from support.fakes import raw_views
from support.image_server import ImageServer

OLD_ALGO = "phash64-v0"
LEGACY = "dualphash128-v2"
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


def test_local_reindex_converts_v2_records_without_downloading(
    image_server: ImageServer, data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    catalog = write_catalog(tmp_path / "c.csv", good_rows(image_server, 4))
    backfill_catalog(catalog, options=FAST)
    store = SqliteRecordStore(data_dir / "dupcheck.sqlite3")
    current = {r.entity_id: r for r in store.scan()}
    for entity_id in ("E1", "E2"):  # as dualphash128-v2 wrote them: the same hash, the views raw
        views = Views.decode(current[entity_id].features["views"])
        store.put(dataclasses.replace(current[entity_id], hash_algo=LEGACY, features={"views": raw_views(views)}))
    hits = image_server.counts()

    code, report, _ = run_reindex(capsys, "--target", "local")

    assert code == 0, report
    assert (report["rehash"]["converted"], report["rehash"]["rows"]) == (2, 0)
    # The current pipeline reads v2 records: they stayed searchable until converted.
    assert report["before"] == {"store_records": 4, "index_docs": 4}
    assert image_server.counts() == hits  # nothing downloaded
    for entity_id, record in store.get_many(["E1", "E2"]).items():
        assert (record.hash, record.hash_algo) == (current[entity_id].hash, get_pipeline().algo)
        assert record.updated_at > current[entity_id].updated_at  # a newer version, for the index
        assert len(record.features["views"]) <= views_codec.MAX_BYTES
        assert Views.decode(record.features["views"]) is not None


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
