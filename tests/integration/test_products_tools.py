"""Product vectors where the fingerprint is computed by the tools: backfill (its hashing processes
load the model), a re-run that fetches only the rows without a vector, and reindex, which gives
the records of a catalog backfilled before similar products were on their vectors. Loopback only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.local_products import LocalProductIndex
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.bootstrap import build_embedder
from dupcheck.core.models import PRODUCT_MODEL
from dupcheck.core.settings import Settings
from dupcheck_tools.cli import main
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer
from support.catalogs import good_rows, write_catalog


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("DUPCHECK_ALLOW_LOOPBACK_URLS", "true")
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(data))
    monkeypatch.setenv("DUPCHECK_PRODUCTS", "on")
    return data


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--no-progress", "--hash-workers", "1"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_backfill_stores_each_pictures_vector_and_a_rerun_fetches_only_the_rows_without_one(
    image_server: ImageServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.csv", good_rows(image_server, 5))
    code, summary = run(capsys, "backfill", "--catalog", str(catalog), "--target", "local")
    assert (code, summary["done"]) == (0, 5)
    products = LocalProductIndex(env / "products.sqlite3")
    assert products.count() == 5 and products.missing([f"E{i}" for i in range(5)]) == set()
    # Each is the vector registering the picture computes (the hashing process ran the same model).
    embedder = build_embedder(Settings.from_env())
    assert embedder is not None
    query = embedder.embed_bytes(encode(product_image(3)), max_pixels=10**7)
    (hit,) = products.search(query, 1)
    assert hit.entity_id == "E3" and hit.similarity > 0.95  # the served copy is re-encoded

    products.remove("E2")  # a vector lost: the next run fetches that row alone
    before = image_server.counts()
    code, summary = run(capsys, "backfill", "--catalog", str(catalog), "--target", "local")
    assert (code, summary["done"], summary["skipped"]) == (0, 1, 4)
    fetched = {path: n - before.get(path, 0) for path, n in image_server.counts().items() if n > before.get(path, 0)}
    assert fetched == {"/img/2.jpg": 1}
    assert LocalProductIndex(env / "products.sqlite3").missing(["E2"]) == set()


def test_reindex_gives_vectors_to_records_made_while_similar_products_were_off(
    image_server: ImageServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    catalog = write_catalog(tmp_path / "catalog.csv", good_rows(image_server, 4))
    monkeypatch.setenv("DUPCHECK_PRODUCTS", "off")
    assert run(capsys, "backfill", "--catalog", str(catalog), "--target", "local")[0] == 0
    assert not (env / "products.sqlite3").exists()
    records = {r.entity_id: r for r in SqliteRecordStore(env / "dupcheck.sqlite3").scan()}

    monkeypatch.setenv("DUPCHECK_PRODUCTS", "on")
    code, report = run(capsys, "reindex", "--target", "local", "--retries", "0")
    assert code == 0, report
    assert report["rehash"]["missing_product_vectors"] == 4 and report["rehash"]["done"] == 4
    products = LocalProductIndex(env / "products.sqlite3")
    assert products.count() == 4 and products.model == PRODUCT_MODEL
    again = {r.entity_id: r for r in SqliteRecordStore(env / "dupcheck.sqlite3").scan()}
    assert {k: (r.hash, r.features) for k, r in again.items()} == {k: (r.hash, r.features) for k, r in records.items()}
    code, report = run(capsys, "reindex", "--target", "local", "--retries", "0")
    assert (code, report["rehash"]["missing_product_vectors"], report["rehash"]["rows"]) == (0, 0, 0)
