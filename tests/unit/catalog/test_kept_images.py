"""Kept images' life, without a server: the rendition kept, deleted with the last record naming
it, deleted on request, swept when unclaimed; a failed write that leaves nothing behind; the
crash sweep; and the local files sized to their data (records, thumbnails, kept images)."""

from __future__ import annotations

import io
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupcheck.adapters.local_files import LocalKeptImages
from dupcheck.adapters.local_products import LocalProductIndex
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.kept_images import (
    MAX_RENDITION_BYTES,
    RENDITION_SIDE,
    KeptImageLifecycle,
    image_name,
    rendition,
)
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import Conflict, NotFound
from dupcheck.core.models import DIMENSIONS, ProductVector
from dupcheck.core.settings import Settings
from dupcheck_tools.local.housekeeping import Housekeeping
from dupcheck_tools.samples import encode, product_image
from support.api_events import call, event
from support.fakes import make_record

MAX_PIXELS = 50_000_000


def png(width: int, height: int, seed: int = 1) -> bytes:
    """Noise: the largest a picture of that size encodes to, the rendition's worst case."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def url_of(name: str, host: str = "http://127.0.0.1:8000") -> str:
    return f"{host}/images/{name}"


@pytest.fixture
def pictures(tmp_path: Path) -> Iterator[tuple[KeptImageLifecycle, SqliteRecordStore, LocalKeptImages]]:
    store = SqliteRecordStore(tmp_path / "records.sqlite3")
    images = LocalKeptImages(tmp_path / "images")
    yield KeptImageLifecycle(images, store), store, images


# -- the rendition ---------------------------------------------------------------------------------


def test_a_kept_picture_is_a_bounded_jpeg_rendition_never_the_upload() -> None:
    upload = png(3000, 2000)
    assert len(upload) > 10 * MAX_RENDITION_BYTES
    kept = rendition(upload, max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(kept)) as picture:
        assert (picture.format, picture.size) == ("JPEG", (RENDITION_SIDE, 683))  # the shape kept
    assert len(kept) <= MAX_RENDITION_BYTES  # noise too: encoded again at a lower quality
    assert rendition(upload, max_pixels=MAX_PIXELS) == kept  # the same upload, the same name
    small = encode(product_image(5))
    with Image.open(io.BytesIO(rendition(small, max_pixels=MAX_PIXELS))) as picture:
        assert picture.size == Image.open(io.BytesIO(small)).size  # never enlarged


# -- deleted with the last record, on request, or unclaimed -----------------------------------------


def test_a_kept_picture_goes_with_the_last_record_that_names_it(pictures) -> None:  # noqa: ANN001
    kept, store, images = pictures
    data = rendition(encode(product_image(7)), max_pixels=MAX_PIXELS)
    url = kept.keep(data, "http://127.0.0.1:8000")
    name = image_name(data)
    # Two records name it, by two hosts: a kept image is its name, whatever host the URL names.
    store.put(make_record("A", image_url=url))
    store.put(make_record("B", image_url=url_of(name, "http://pictures.invalid")))
    store.delete("A")
    assert kept.release(url) is False and images.get(name) == data
    store.delete("B")
    assert kept.release(url) is True and images.get(name) is None
    assert kept.release("https://shop.test/a.jpg") is False  # not a kept image: nothing to do


def test_deleting_a_picture_a_record_uses_is_refused_and_one_never_kept_is_404(pictures) -> None:  # noqa: ANN001
    kept, store, images = pictures
    data = rendition(encode(product_image(8)), max_pixels=MAX_PIXELS)
    name = image_name(data)
    store.put(make_record("A", image_url=kept.keep(data, "http://127.0.0.1:8000")))
    with pytest.raises(Conflict, match="a record uses"):
        kept.delete(name)
    assert images.get(name) == data
    store.delete("A")
    kept.delete(name)
    assert images.get(name) is None
    with pytest.raises(NotFound):
        kept.delete(name)


def test_the_sweep_deletes_pictures_no_record_uses_once_their_time_is_up(pictures) -> None:  # noqa: ANN001
    kept, store, images = pictures
    old_unused, fresh_unused, old_used = (rendition(encode(product_image(i)), max_pixels=MAX_PIXELS)
                                          for i in (11, 12, 13))  # fmt: skip
    for data in (old_unused, fresh_unused, old_used):
        kept.keep(data, "http://127.0.0.1:8000")
    store.put(make_record("U", image_url=url_of(image_name(old_used))))
    two_days_ago = time.time() - 2 * 86400
    for data in (old_unused, old_used):
        os.utime(images._path(image_name(data)), (two_days_ago, two_days_ago))
    half_written = images._path(image_name(old_unused)).parent / ".incoming-x"
    half_written.write_bytes(b"half")
    os.utime(half_written, (two_days_ago, two_days_ago))

    assert kept.sweep(86400) == 1
    assert images.get(image_name(old_unused)) is None and not half_written.exists()
    assert images.get(image_name(fresh_unused)) == fresh_unused  # its import may still come
    assert images.get(image_name(old_used)) == old_used
    # Kept again, its time starts again.
    kept.keep(old_used, "http://127.0.0.1:8000")
    store.delete("U")
    assert kept.sweep(86400) == 0 and images.get(image_name(old_used)) == old_used


def test_a_records_file_made_before_the_column_learns_which_records_use_kept_pictures(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    name = "ab" * 32 + ".png"
    with sqlite3.connect(path) as conn:  # the records table as the previous version made it
        conn.execute("CREATE TABLE records (entity_id TEXT PRIMARY KEY, id_key INTEGER NOT NULL UNIQUE, "
                     "sku TEXT NOT NULL, image_url TEXT NOT NULL, hash TEXT NOT NULL, hash_algo TEXT NOT NULL, "
                     "updated_at TEXT NOT NULL, features BLOB NOT NULL DEFAULT x'')")  # fmt: skip
        conn.executemany("INSERT INTO records VALUES (?, ?, '', ?, 'ff', 'a', '2026-01-01T00:00:00.000Z', x'')",
                         [("K", 1, url_of(name)), ("P", 2, "https://shop.test/p.jpg")])  # fmt: skip
    store = SqliteRecordStore(path)
    assert store.uses_kept_image(name) and not store.uses_kept_image("cd" * 32 + ".jpg")
    assert {r.entity_id for r in store.scan()} == {"K", "P"}
    store.delete("K")
    assert not store.uses_kept_image(name)


# -- through the API: uploads, deletes, a failed write ------------------------------------------------


class BusyRecords(SqliteRecordStore):
    busy_timeout_s = 0.2  # a locked file fails at once instead of after 30 s


@pytest.fixture
def service(settings: Settings) -> DupcheckService:
    data_dir = settings.data_dir
    products = LocalProductIndex(data_dir / "products.sqlite3")
    return build_service(settings, store=BusyRecords(data_dir / "dupcheck.sqlite3"), products=products,
                         embedder=None)  # fmt: skip


def test_uploads_keep_renditions_that_go_with_their_records(service: DupcheckService, settings: Settings) -> None:
    app = build_resolver(service, max_body_bytes=40_000_000, images=service.parts.kept)
    folder = settings.data_dir / "images"
    status, item = call(app, event("PUT", "/items/U1", None, png(2400, 1600), "image/png"))
    assert status == 201
    name = item["image_url"].rsplit("/", 1)[1]
    assert name.endswith(".jpg") and len(files_under(folder)) == 1
    assert files_under(folder)[0].stat().st_size <= MAX_RENDITION_BYTES
    # Re-hashing the kept image gives the stored record: the record was made from it.
    kept = service.parts.kept.images.get(name)
    assert service.records.entry_for(entity_id="U1", sku="", image_url="", data=kept).record.hash \
        == service.records.get("U1").hash  # fmt: skip

    # The same id uploaded again with another picture: the first goes, the second is kept.
    status, again = call(app, event("PUT", "/items/U1", None, encode(product_image(31)), "image/jpeg"))
    assert status == 201 and len(files_under(folder)) == 1
    assert call(app, event("GET", f"/images/{name}"))[0] == 404
    second = again["image_url"].rsplit("/", 1)[1]
    assert call(app, event("DELETE", f"/images/{second}"))[0] == 409
    assert call(app, event("DELETE", "/items/U1"))[0] == 204
    assert files_under(folder) == [] and call(app, event("GET", f"/images/{second}"))[0] == 404

    # A picture kept with no record: deleted on request, then gone.
    status, kept = call(app, event("POST", "/images", None, encode(product_image(32)), "image/jpeg"))
    assert status == 201
    assert call(app, event("DELETE", f"/images/{kept['name']}"))[0] == 204
    status, body = call(app, event("DELETE", f"/images/{kept['name']}"))
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_a_write_the_store_refuses_leaves_no_picture_thumbnail_or_vector(
    service: DupcheckService, settings: Settings
) -> None:
    """The store's file locked by another writer: 503, and nothing of the record is left."""
    vector = ProductVector(bytes(range(DIMENSIONS)))
    service.parts.embedder = type("Embedder", (), {"embed_bytes": lambda self, data, max_pixels: vector})()  # type: ignore[assignment]
    app = build_resolver(service, max_body_bytes=40_000_000, images=service.parts.kept)
    locker = sqlite3.connect(settings.data_dir / "dupcheck.sqlite3", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        status, body = call(app, event("PUT", "/items/orphan-1", None, encode(product_image(40)), "image/jpeg"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert (status, body["error"]["code"]) == (503, "store_unavailable")
    assert files_under(settings.data_dir / "images") == []
    assert service.parts.thumbnails is not None and service.parts.thumbnails.missing(["orphan-1"]) == {"orphan-1"}
    assert service.parts.products is not None and service.parts.products.missing(["orphan-1"]) == {"orphan-1"}
    # The same write, the file free again: everything is there.
    assert call(app, event("PUT", "/items/orphan-1", None, encode(product_image(40)), "image/jpeg"))[0] == 201
    assert (
        service.parts.thumbnails.missing(["orphan-1"]) == set()
        and service.parts.products.missing(["orphan-1"]) == set()
    )


def test_the_crash_sweep_deletes_rows_of_ids_without_a_record_when_two_passes_find_them(
    service: DupcheckService,
) -> None:
    record = make_record("crashed")
    assert service.parts.thumbnails is not None and service.parts.products is not None
    service.parts.thumbnails.put_many({"crashed": b"thumbnail", "kept": b"thumbnail"})  # a crash before the record
    service.parts.products.put_many({"crashed": ProductVector(bytes(DIMENSIONS))})
    service.parts.store.put(make_record("kept"))
    housekeeping = Housekeeping(service, [])
    assert housekeeping.run_once()["orphans"] == 0  # first seen: a save may be in flight
    assert service.parts.thumbnails.missing(["crashed"]) == set()
    assert housekeeping.run_once()["orphans"] == 1
    assert service.parts.thumbnails.missing(["crashed", "kept"]) == {"crashed"}
    assert service.parts.products.missing(["crashed"]) == {"crashed"}
    service.parts.thumbnails.put_many({"crashed": b"thumbnail"})  # its record came after all
    service.parts.store.put(record)
    housekeeping.run_once()
    assert housekeeping.run_once()["orphans"] == 0 and service.parts.thumbnails.missing(["crashed"]) == set()


# -- sized to their data ----------------------------------------------------------------------------------


def db_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.sqlite3*"))


def test_deleting_every_item_leaves_no_kept_picture_and_files_near_their_empty_size(
    service: DupcheckService, settings: Settings
) -> None:
    app = build_resolver(service, max_body_bytes=40_000_000, images=service.parts.kept)
    housekeeping = Housekeeping(service, [])
    housekeeping.run_once()
    empty = db_bytes(settings.data_dir)
    for i in range(40):
        picture = png(900, 700, seed=i) if i % 8 == 0 else encode(product_image(100 + i))
        assert call(app, event("PUT", f"/items/I{i}", None, picture, "image/png"))[0] == 201
    full = db_bytes(settings.data_dir)
    assert full > 2 * empty
    for i in range(40):
        assert call(app, event("DELETE", f"/items/I{i}"))[0] == 204
    housekeeping.run_once()
    assert files_under(settings.data_dir / "images") == []
    assert db_bytes(settings.data_dir) <= 2 * empty


def test_a_file_of_thumbnails_is_near_the_pictures_own_bytes(tmp_path: Path, service: DupcheckService) -> None:
    # In 64 KiB pages, as before, these 120 (8.6 KB each) took 1.36x their bytes.
    pictures = [encode(product_image(300 + i)) for i in range(120)]
    thumbnails = SqliteThumbnails(tmp_path / "thumbnails.sqlite3")
    blobs = {}
    for i, data in enumerate(pictures):
        blobs[f"T{i:04d}"] = service.records.entry_for(entity_id=f"T{i:04d}", sku="", image_url="", data=data).thumbnail
        thumbnails.put_many({f"T{i:04d}": blobs[f"T{i:04d}"]})  # one at a time, as uploads come
    thumbnails.tidy()
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("thumbnails.sqlite3*"))
    overhead = 64 * 1024  # the schema's pages
    assert on_disk <= 1.2 * sum(map(len, blobs.values())) + overhead


def test_a_file_made_without_auto_vacuum_is_converted_once_a_quarter_of_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "thumbnails.sqlite3"
    with sqlite3.connect(path) as conn:  # as a version before this one made it: no auto-vacuum
        conn.execute("CREATE TABLE thumbnails (entity_id TEXT PRIMARY KEY, data BLOB NOT NULL)")
    thumbnails = SqliteThumbnails(path)
    thumbnails.put_many({f"T{i}": bytes(20_000) for i in range(100)})
    for i in range(20):  # a fifth freed: not worth rewriting the file yet
        thumbnails.delete(f"T{i}")
    thumbnails.tidy()
    conn = thumbnails._conn()
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0 and conn.execute("PRAGMA freelist_count").fetchone()[0]
    for i in range(20, 60):
        thumbnails.delete(f"T{i}")
    thumbnails.tidy()
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL from now on
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert path.stat().st_size <= 1.2 * 40 * 20_000 + 64 * 1024
    assert len(thumbnails.get_many([f"T{i}" for i in range(100)])) == 40


def test_a_busy_file_is_left_for_the_next_pass_and_the_others_are_tidied(service: DupcheckService) -> None:
    assert service.parts.thumbnails is not None
    service.parts.store.put_many([make_record(f"R{i}") for i in range(200)])
    service.parts.thumbnails.put_many({f"R{i}": bytes(20_000) for i in range(50)})
    for i in range(200):
        service.parts.store.delete(f"R{i}")
    for i in range(50):
        service.parts.thumbnails.delete(f"R{i}")
    records, thumbnails = service.parts.store._conn(), service.parts.thumbnails._conn()  # type: ignore[attr-defined]
    assert records.execute("PRAGMA freelist_count").fetchone()[0] > 0
    locker = sqlite3.connect(service.parts.store.path, isolation_level=None)  # type: ignore[attr-defined]
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the records' file
    try:
        Housekeeping(service, []).run_once()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert records.execute("PRAGMA freelist_count").fetchone()[0] > 0  # left for the next pass
    assert thumbnails.execute("PRAGMA freelist_count").fetchone()[0] == 0
    Housekeeping(service, []).run_once()
    assert records.execute("PRAGMA freelist_count").fetchone()[0] == 0
