"""The use cases over the embedded adapters: register, find, remove, restarts, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import ImageDraw, ImageEnhance, ImageOps

from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.parts import METRIC_THUMBNAIL_FAILURES
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DuplicateImage, InvalidRequest, NotFound, StoreUnavailable, UpstreamError
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue, Marks, OnDuplicate, Verdict
from dupcheck.core.settings import Settings
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck_tools.samples import encode, product_image
from support.fakes import FakeFetcher


@pytest.fixture
def images() -> dict[str, bytes]:
    return {f"https://img.test/{i}.jpg": encode(product_image(100 + i)) for i in range(12)}


@pytest.fixture
def svc(settings: Settings, images: dict[str, bytes]) -> DupcheckService:
    service = build_service(settings, fetcher=FakeFetcher(images))
    for i in range(12):
        service.registrar.register(f"E{i}", f"SKU{i}", f"https://img.test/{i}.jpg")
    return service


def test_a_registered_image_finds_itself_as_a_duplicate(svc: DupcheckService) -> None:
    result = svc.lookups.find_similar("https://img.test/4.jpg", top=3)
    assert result.is_duplicate
    best = result.matches[0]
    assert (best.entity_id, best.sku, best.distance, best.match_percent, best.verdict) == (
        "E4",
        "SKU4",
        0,
        100.0,
        "duplicate",
    )
    assert len(result.matches) == 3
    assert result.to_dict()["query"]["image_url"] == "https://img.test/4.jpg"


def test_a_resized_recompressed_copy_is_still_a_duplicate(svc: DupcheckService) -> None:
    copy = encode(product_image(107).resize((200, 200)), "JPEG", quality=50)
    result = svc.lookups.find_similar_bytes(copy, top=1)
    assert result.matches[0].entity_id == "E7"
    assert result.is_duplicate


def test_an_unknown_picture_is_not_a_duplicate(svc: DupcheckService) -> None:
    result = svc.lookups.find_similar_bytes(encode(product_image(999)), top=5)
    assert not result.is_duplicate
    assert all(m.verdict != "duplicate" for m in result.matches)


def test_matches_are_sorted_and_respect_max_distance(svc: DupcheckService) -> None:
    result = svc.lookups.find_similar("https://img.test/2.jpg", top=12)
    rank = {"duplicate": 0, "similar": 1, "different": 2}
    verdicts = [rank[m.verdict] for m in result.matches]
    assert verdicts == sorted(verdicts)  # verdict first (then aligned similarity, then distance)
    assert result.matches[0].entity_id == "E2" and result.matches[0].verdict == "duplicate"
    limited = svc.lookups.find_similar("https://img.test/2.jpg", top=12, max_distance=0)
    assert [m.entity_id for m in limited.matches] == ["E2"]


def test_remove_takes_the_image_out_of_results(svc: DupcheckService) -> None:
    svc.records.remove("E4")
    assert "E4" not in {m.entity_id for m in svc.lookups.find_similar("https://img.test/4.jpg", top=12).matches}
    with pytest.raises(NotFound):
        svc.records.remove("E4")
    with pytest.raises(NotFound):
        svc.records.get("E4")


def test_state_survives_a_restart(settings: Settings, svc: DupcheckService, images: dict[str, bytes]) -> None:
    restarted = build_service(settings, fetcher=FakeFetcher(images))
    assert restarted.parts.index.count() == 12
    assert restarted.lookups.find_similar("https://img.test/9.jpg", top=1).matches[0].entity_id == "E9"


def test_records_of_another_pipeline_are_never_compared(svc: DupcheckService) -> None:
    own = svc.records.get("E5")
    svc.parts.store.put(HashRecord("OLD", "x", "u", own.hash, "older-pipeline-v0"))
    svc.parts.index.upsert(HashRecord("OLD", "x", "u", own.hash, "older-pipeline-v0"))
    found = {m.entity_id for m in svc.lookups.find_similar("https://img.test/5.jpg", top=12).matches}
    assert "E5" in found and "OLD" not in found


def test_re_registering_updates_instead_of_duplicating(svc: DupcheckService) -> None:
    svc.registrar.register("E1", "SKU1-NEW", "https://img.test/3.jpg")
    assert svc.parts.store.count() == 12
    assert svc.records.get("E1").sku == "SKU1-NEW"
    assert {m.entity_id for m in svc.lookups.find_similar("https://img.test/3.jpg", top=2).matches} == {"E1", "E3"}


@pytest.mark.parametrize("top", [0, 101, -3])
def test_top_out_of_range_is_a_bad_request(svc: DupcheckService, top: int) -> None:
    with pytest.raises(InvalidRequest, match="top"):
        svc.lookups.find_similar("https://img.test/1.jpg", top=top)


@pytest.mark.parametrize(("entity_id", "url"), [("", "https://x/1.jpg"), ("A", ""), ("x" * 600, "https://x")])
def test_bad_ids_and_urls_are_bad_requests(svc: DupcheckService, entity_id: str, url: str) -> None:
    with pytest.raises(InvalidRequest):
        svc.registrar.register(entity_id, "s", url)


def test_metrics_are_reported_to_the_observer(settings: Settings, images: dict[str, bytes]) -> None:
    seen: list[str] = []
    service = build_service(settings, fetcher=FakeFetcher(images), observe=lambda name, _v: seen.append(name))
    service.registrar.register("A", "s", "https://img.test/1.jpg")
    service.lookups.find_similar("https://img.test/1.jpg")
    with pytest.raises(UpstreamError):
        service.lookups.find_similar("https://img.test/missing.jpg")
    assert {"HashesComputed", "IndexLatencyMs", "MatchesFound", "FetchFailures"} <= set(seen)


def test_unknown_pipeline_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown hash pipeline"):
        get_pipeline("nope-v0")


# -- thumbnails beside the records (the look-alike check) ----------------------------------------


class _Recording:
    """A ThumbnailStore that keeps them in memory, says what happened in which order, and can fail."""

    def __init__(self, log: list[str], fail_reads: bool = False) -> None:
        self.kept: dict[str, bytes] = {}
        self.log, self.fail_reads = log, fail_reads

    def put_many(self, thumbnails: dict[str, bytes]) -> int:
        self.log += [f"thumbnail {e}" for e in thumbnails]
        self.kept.update(thumbnails)
        return len(thumbnails)

    def get_many(self, entity_ids: list[str]) -> dict[str, bytes]:
        if self.fail_reads:
            raise StoreUnavailable("S3 GetObject failed: SlowDown")
        return {e: self.kept[e] for e in entity_ids if e in self.kept}

    def missing(self, entity_ids: list[str]) -> set[str]:
        return {e for e in entity_ids if e not in self.kept}

    def delete(self, entity_id: str) -> None:
        self.log.append(f"delete thumbnail {entity_id}")
        self.kept.pop(entity_id, None)


def test_register_keeps_the_thumbnail_before_the_record_and_remove_deletes_it(
    settings: Settings, images: dict[str, bytes]
) -> None:
    log: list[str] = []
    thumbnails = _Recording(log)
    service = build_service(settings, fetcher=FakeFetcher(images), thumbnails=thumbnails)
    write_rows = service.parts.store.write_rows  # type: ignore[attr-defined]  # SQLite: every record write ends here

    def logged_write(conn: Any, records: list[HashRecord], **options: Any) -> Any:
        log.extend(f"record {record.entity_id}" for record in records)
        return write_rows(conn, records, **options)

    service.parts.store.write_rows = logged_write  # type: ignore[attr-defined]
    record = service.registrar.register("E1", "SKU1", "https://img.test/1.jpg")
    assert log == ["thumbnail E1", "record E1"]
    assert Thumbnail.decode(thumbnails.kept["E1"]).hash == record.hash  # type: ignore[union-attr]
    assert "thumbnail" not in record.features  # not in the record: beside it
    service.records.remove("E1")
    assert log[-1] == "delete thumbnail E1" and "E1" not in thumbnails.kept


def test_unreadable_thumbnails_cost_the_check_not_the_query(
    settings: Settings, images: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    thumbnails = _Recording([])
    seen: list[tuple[str, float]] = []
    service = build_service(settings, fetcher=FakeFetcher(images), thumbnails=thumbnails,
                            observe=lambda name, value: seen.append((name, value)))  # fmt: skip
    service.registrar.register("E3", "SKU3", "https://img.test/3.jpg")
    thumbnails.fail_reads = True
    result = service.lookups.find_similar("https://img.test/3.jpg", top=1)
    assert result.matches[0].entity_id == "E3" and result.is_duplicate  # the views decide
    assert (METRIC_THUMBNAIL_FAILURES, 1.0) in seen
    assert "look-alike check is skipped" in caplog.text


def test_a_failed_thumbnail_write_stores_nothing(settings: Settings, images: dict[str, bytes]) -> None:
    class Failing(_Recording):
        def put_many(self, thumbnails: dict[str, bytes]) -> int:
            raise StoreUnavailable("S3 PutObject failed: ServiceUnavailable")

    service = build_service(settings, fetcher=FakeFetcher(images), thumbnails=Failing([]))
    with pytest.raises(StoreUnavailable):
        service.registrar.register("E5", "SKU5", "https://img.test/5.jpg")
    assert service.parts.store.get("E5") is None and service.parts.index.count() == 0


def test_a_copy_ranked_past_the_pool_by_its_whole_hash_is_found_by_one_half(
    settings: Settings, images: dict[str, bytes]
) -> None:
    service = build_service(settings, fetcher=FakeFetcher(images))
    pipeline = service.parts.pipeline
    original = product_image(140, (400, 320))
    service.registrar.register_bytes(entity_id="O", sku="O", image_url="https://img.test/o.jpg", data=encode(original))
    # Padded to a square: the whole picture's hash moves, the trimmed one's stays.
    copy = encode(ImageOps.pad(original, (520, 520), color=(255, 255, 255)))
    query = service.lookups.fingerprint(copy)
    stored = service.records.get("O").hash
    whole = min(stored - h for h in query.search_hashes)
    half = min(a - b for h in query.search_hashes for a, b in zip(stored.parts(2), h.parts(2), strict=True))
    flips = half + 1
    assert 2 * flips < whole  # decoys can then be nearer as a whole and farther on each half
    # More decoys than the pool: records hashed near the query as a whole, with no views to pass.
    data = bytearray(query.hash.data)
    for part in (0, len(data) // 2):
        data[part] ^= (1 << flips) - 1
    decoy = HashValue(bytes(data))
    for i in range(pipeline.candidate_pool(5) + 4):
        record = HashRecord(f"D{i}", f"D{i}", f"https://img.test/d{i}.jpg", decoy, pipeline.algo)
        service.parts.store.put(record)
        service.parts.index.upsert(record)
    assert "O" not in {h.entity_id for h in service.parts.index.search(query.search_hashes, pipeline.candidate_pool(5))}
    best = service.lookups.find_similar_bytes(copy, top=1).matches[0]
    assert (best.entity_id, best.verdict) == ("O", "duplicate")


def test_a_write_while_the_index_cannot_be_asked_is_stored_unchecked_under_warn_and_refused_under_reject(
    svc: DupcheckService,
) -> None:
    """The gate asks the index first; while it cannot (loading its records at start, or out of
    reach), `warn` stores the write and says it was not checked rather than lose it, and `reject`
    refuses it (503) rather than promise no duplicate."""
    from dupcheck.core.errors import IndexUnavailable
    from dupcheck.core.models import OnDuplicate

    class Loading:
        def __init__(self, index: object) -> None:
            self.index = index

        def search(self, *args: object, **kwargs: object) -> list:
            raise IndexUnavailable("the index is still loading its records: try again in a few seconds")

        def __getattr__(self, name: str) -> object:
            return getattr(self.index, name)

    svc.parts.index = Loading(svc.parts.index)  # type: ignore[assignment]
    data = encode(product_image(42))
    with pytest.raises(IndexUnavailable):
        svc.registrar.register_checked(entity_id="R", sku="", image_url="", data=data, on_duplicate=OnDuplicate.REJECT)
    with pytest.raises(NotFound):
        svc.records.get("R")
    stored = svc.registrar.register_checked(
        entity_id="W", sku="", image_url="", data=data, on_duplicate=OnDuplicate.WARN
    )
    assert (stored.checked, stored.duplicates) == (False, [])
    assert svc.records.get("W").entity_id == "W"


def _printed_on(seed: int) -> dict[str, bytes]:
    """A product on white, and the same photo with a design printed inside the product (a
    print-on-demand variant) and with a caption band across the picture (an overlay)."""
    plain = product_image(seed, (480, 480))
    printed, band = plain.copy(), plain.copy()
    ImageDraw.Draw(printed).rectangle((215, 215, 265, 255), fill=(20, 30, 160))
    ImageDraw.Draw(band).rectangle((0, 380, 479, 430), fill=(20, 20, 20))
    return {f"https://img.test/{name}.jpg": encode(image)
            for name, image in (("plain", plain), ("printed", printed), ("band", band))}  # fmt: skip


@pytest.mark.parametrize("seed", [201, 207, 209])
def test_a_mark_on_the_product_means_what_the_shop_says(settings: Settings, seed: int) -> None:
    service = build_service(settings, fetcher=FakeFetcher(_printed_on(seed)))
    service.registrar.register("P", "P", "https://img.test/plain.jpg")
    as_photo = service.lookups.find_similar("https://img.test/printed.jpg", 1).matches[0]
    as_product = service.lookups.find_similar("https://img.test/printed.jpg", 1, marks=Marks.PRODUCT).matches[0]
    assert as_photo.verdict is Verdict.DUPLICATE
    assert (
        as_product.verdict is Verdict.SIMILAR and as_product.edit_summary == "another print on the same photo (centre)"
    )
    # A band across the picture is an overlay whatever the setting.
    for marks in Marks:
        assert (
            service.lookups.find_similar("https://img.test/band.jpg", 1, marks=marks).matches[0].verdict
            is Verdict.DUPLICATE
        )
    # One pair, one verdict: the printed photo stored, the plain one asked about.
    other = build_service(settings.model_copy(update={"data_dir": settings.data_dir / "other"}),
                          fetcher=FakeFetcher(_printed_on(seed)))  # fmt: skip
    other.registrar.register("Q", "Q", "https://img.test/printed.jpg")
    assert other.lookups.find_similar("https://img.test/plain.jpg", 1).matches[0].verdict is Verdict.DUPLICATE
    back = other.lookups.find_similar("https://img.test/plain.jpg", 1, marks=Marks.PRODUCT).matches[0]
    assert back.verdict is Verdict.SIMILAR
    assert back.edit_summary == "the catalog picture is made from yours: another print on the same photo (centre)"
    # The gate reads it the same way: another print is stored under `product`, refused under `photo`.
    with pytest.raises(DuplicateImage):
        service.registrar.register_url_checked(
            "A", "A", "https://img.test/printed.jpg", on_duplicate=OnDuplicate.REJECT
        )
    stored = service.registrar.register_url_checked("B", "B", "https://img.test/printed.jpg",
                                                    on_duplicate=OnDuplicate.REJECT, marks=Marks.PRODUCT)  # fmt: skip
    assert stored.record.entity_id == "B" and stored.duplicates == []


@pytest.mark.parametrize("seed", [201, 207])
def test_a_copy_with_nothing_added_stays_a_duplicate_where_the_shop_sells_prints(settings: Settings, seed: int) -> None:
    """`marks=product` reads a mark the check named as added: a brighter or recompressed copy has
    none, whatever its pixels' differences."""
    plain = product_image(seed, (480, 480))
    copies = {"bright": encode(ImageEnhance.Brightness(plain).enhance(1.3)), "coarse": encode(plain, quality=40)}
    service = build_service(settings, fetcher=FakeFetcher({"https://img.test/plain.jpg": encode(plain)}))
    service.registrar.register("P", "P", "https://img.test/plain.jpg")
    for name, data in copies.items():
        match = service.lookups.find_similar_bytes(data, 1, marks=Marks.PRODUCT).matches[0]
        assert match.verdict is Verdict.DUPLICATE, name


def test_the_service_s_marks_come_from_the_settings(settings: Settings) -> None:
    service = build_service(settings.model_copy(update={"marks": "product"}), fetcher=FakeFetcher(_printed_on(207)))
    service.registrar.register("P", "P", "https://img.test/plain.jpg")
    assert service.lookups.find_similar("https://img.test/printed.jpg", 1).matches[0].verdict is Verdict.SIMILAR
    assert service.lookups.find_similar("https://img.test/printed.jpg", 1, marks=Marks.PHOTO).matches[0].verdict is (
        Verdict.DUPLICATE
    )
