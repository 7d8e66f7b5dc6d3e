"""The same-photograph test: another photograph is never a duplicate, however it was edited, while
every edited copy of a photograph stays one; the same photograph recoloured is `similar`.

The garments (tests/support/garments.py) are photographed the same way: the same model, pose,
background and seams; each exposure has its own folds, texture and grain, as a real one does."""

from __future__ import annotations

import dataclasses
import io
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.fingerprint.hashing import AlignedDualPHash, get_pipeline
from dupcheck.core.limits.policy import (
    ALIGNED_DUAL_PHASH,
    COMPARE_SIDE,
    EARLY_ANOTHER,
    EARLY_SIDE,
    KEPT_SIDE,
    RECOLOURED,
    SAME_PHOTOGRAPH,
    Thresholds,
    Tier,
)
from dupcheck.core.matching import affine, judge
from dupcheck.core.matching import photograph as same_photograph
from dupcheck.core.matching.alignment import verify
from dupcheck.core.matching.one_edit import Unexplained
from dupcheck.core.matching.photograph import Finding, band, examine
from dupcheck.core.models import Verdict
from dupcheck.core.settings import Settings
from dupcheck.core.stored import thumbnails
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import Views
from support.garments import GREY, RED, SHIRT, photograph, recoloured

PIPELINE = get_pipeline()
assert isinstance(PIPELINE, AlignedDualPHash)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def badge(image: Image.Image) -> Image.Image:
    out = image.copy()
    w, h = out.size
    ImageDraw.Draw(out).ellipse((w * 0.80, h * 0.02, w * 0.98, h * 0.16), fill=(220, 20, 40))
    return out


def turned(image: Image.Image, degrees: float = 4.0) -> Image.Image:
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))


EDITS: dict[str, Callable[[Image.Image], bytes]] = {
    "as it is": lambda im: jpeg(im),
    "resized and recompressed": lambda im: jpeg(im.resize((240, 300)), 60),
    "brighter": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.25)),
    "less contrast": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(0.7)),
    "less saturated": lambda im: jpeg(ImageEnhance.Color(im).enhance(0.5)),
    "cropped at the sides": lambda im: jpeg(im.crop((40, 0, 460, 600))),
    "mirrored": lambda im: jpeg(ImageOps.mirror(im)),
    "grayscale": lambda im: jpeg(ImageOps.grayscale(im)),
    "badge": lambda im: jpeg(badge(im)),
    "turned 4 degrees": lambda im: jpeg(turned(im)),
    "JPEG quality 20": lambda im: jpeg(im, 20),
}

ZIP = photograph("zip", shot=1)  # the catalog's photograph
# Other photographs of the same scene: another garment, the same garment again, the model moved.
OTHERS = {
    "another garment in the same pose": photograph("print", shot=2),
    "the same garment photographed again": photograph("zip", shot=3),
    "the head and arms 3 degrees elsewhere": photograph("zip", shot=4, pose=3.0),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DupcheckService]:
    """The zip shirt's photograph registered through the service (record and kept picture)."""
    svc = build_service(Settings.from_env({}, data_dir=tmp_path_factory.mktemp("photograph")))
    svc.registrar.register_bytes(entity_id="zip", sku="ZIP", image_url="https://shop.example/zip.jpg", data=jpeg(ZIP))
    yield svc


def verdict_of(service: DupcheckService, data: bytes, entity_id: str = "zip") -> Verdict | None:
    return next(
        (m.verdict for m in service.lookups.find_similar_bytes(data, top=5).matches if m.entity_id == entity_id), None
    )


def finding(stored: Image.Image, query: bytes) -> Finding | None:
    """The test of `query` against `stored`'s kept picture at the views' alignment."""
    record = PIPELINE.fingerprint(stored, for_query=False)
    kept = Thumbnail.decode(record.thumbnail)
    probe = PIPELINE.fingerprint_bytes(query, max_pixels=10**8).probe
    views = Views.decode(record.features["views"])
    assert kept is not None and views is not None and probe is not None
    evidence = verify(probe, [views], [PIPELINE.policy.looked_near])[0]
    assert evidence is not None and evidence.alignment is not None
    return examine(probe, kept, evidence.alignment)


def test_a_copy_whose_views_miss_every_tier_is_tested_when_its_hash_is_close(
    service: DupcheckService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy brightened or turned past what the 32 px views line up passes no tier: when no
    candidate does, the most alike within `close_look` bits is tested all the same, and the
    test, not the views, decides (here no tier can pass at all)."""
    never = Tier(Thresholds(min_similarity=2.0, max_luma_off=0.0, max_colour_off=0.0))
    blind = dataclasses.replace(ALIGNED_DUAL_PHASH, looked_near=never, looked_far=never)
    monkeypatch.setattr(AlignedDualPHash, "policy", blind)
    copy = jpeg(ImageEnhance.Brightness(ZIP).enhance(1.1), 80)
    assert verdict_of(service, copy) is Verdict.DUPLICATE
    for other in OTHERS.values():
        assert verdict_of(service, jpeg(other)) is not Verdict.DUPLICATE
    monkeypatch.setattr(AlignedDualPHash, "policy", dataclasses.replace(blind, close_look=-1))
    assert verdict_of(service, copy) is Verdict.DIFFERENT


@pytest.mark.parametrize("other", list(OTHERS))
def test_the_views_line_up_another_photograph_of_the_scene(other: str) -> None:
    """What makes the next tests mean something: the views cannot tell these photographs apart,
    so the same-photograph test is what decides."""
    from dupcheck.core.stored.views import Views

    record = PIPELINE.fingerprint(ZIP, for_query=False)
    probe = PIPELINE.fingerprint_bytes(jpeg(OTHERS[other]), max_pixels=10**8).probe
    views = Views.decode(record.features["views"])
    assert probe is not None and views is not None
    evidence = verify(probe, [views], [PIPELINE.policy.looked_near])[0]
    assert evidence is not None and PIPELINE.policy.looked_near.passes(evidence)


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("other", list(OTHERS))
def test_another_photograph_is_never_a_duplicate(service: DupcheckService, other: str, edit: str) -> None:
    assert verdict_of(service, EDITS[edit](OTHERS[other])) is not Verdict.DUPLICATE


@pytest.mark.parametrize("edit", list(EDITS))
def test_every_edited_copy_stays_a_duplicate(service: DupcheckService, edit: str) -> None:
    assert verdict_of(service, EDITS[edit](ZIP)) is Verdict.DUPLICATE


def test_a_record_kept_at_another_kept_side_still_gets_the_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog kept its pictures at twice today's KEPT_SIDE: they are read at what they hold, so
    a colour variant, which only the same-photograph test can show, is still `similar`."""
    large = ZIP.resize((2 * ZIP.width, 2 * ZIP.height), Image.Resampling.LANCZOS)
    svc = build_service(Settings.from_env({}, data_dir=tmp_path / "data"))
    with monkeypatch.context() as kept_larger:
        kept_larger.setattr(thumbnails, "KEPT_SIDE", 2 * KEPT_SIDE)
        svc.registrar.register_bytes(
            entity_id="zip", sku="ZIP", image_url="https://shop.example/zip.jpg", data=jpeg(large)
        )
    assert svc.parts.thumbnails is not None
    kept = Thumbnail.decode(svc.parts.thumbnails.get_many(["zip"])["zip"])
    assert kept is not None and max(kept.rgb.shape[:2]) > KEPT_SIDE  # (as far as the decoded draft holds)
    assert verdict_of(svc, jpeg(recoloured(large, RED))) is Verdict.SIMILAR


def test_the_same_photograph_in_another_colour_is_similar(service: DupcheckService) -> None:
    """A shop's colour variant made from the photograph: its detail is the photograph's, a region
    of it in another colour; `similar`, and the edits say so."""
    matches = service.lookups.find_similar_bytes(jpeg(recoloured(ZIP, RED)), top=5).matches
    match = next(m for m in matches if m.entity_id == "zip")
    assert match.verdict is Verdict.SIMILAR
    assert [e["edit"] for e in match.to_dict()["edits"]] == ["recoloured"]


@pytest.mark.parametrize("colour", [RED, GREY], ids=["red", "grey"])
def test_a_recolour_is_never_a_duplicate(service: DupcheckService, colour: tuple[int, int, int]) -> None:
    """Whatever edit of the whole picture is tried. (A recolour that darkens the shirt this much,
    to grey, moves its views' luma past what lines up: `different`, not `similar`.)"""
    assert verdict_of(service, jpeg(recoloured(ZIP, colour))) in (Verdict.SIMILAR, Verdict.DIFFERENT)
    for edit in ("brighter", "less contrast", "less saturated"):
        assert verdict_of(service, EDITS[edit](recoloured(ZIP, colour))) is not Verdict.DUPLICATE


@pytest.mark.parametrize("other", list(OTHERS))
def test_fine_detail_is_shared_by_a_copy_and_not_by_another_photograph(other: str) -> None:
    copy = finding(ZIP, EDITS["less contrast"](ZIP))
    another = finding(ZIP, jpeg(OTHERS[other]))
    assert copy is not None and another is not None
    assert copy.shared >= SAME_PHOTOGRAPH > another.shared
    assert copy.duplicate and not another.same_photograph


@pytest.mark.parametrize("edit", ["less contrast", "brighter"])
@pytest.mark.parametrize("other", list(OTHERS)[:2])
def test_what_is_compared_does_not_depend_on_the_query_s_tone(
    other: str, edit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog picture's white backdrop is clipped: it holds no detail of its own, only the
    garment's outline against it, which every photograph in this pose shares to the pixel. A
    query with less contrast lifts that backdrop off white; the tiles judged, and what they share,
    stay those of the unedited query (else another photograph, toned down, gains the outline's
    tiles and can pass for the same photograph). Both looked at from one start, to the full side.
    (The model moved, the outline lines up in places only: not a photograph in this pose.)"""
    monkeypatch.setattr(same_photograph, "EARLY_ANOTHER", -1.0)
    record = PIPELINE.fingerprint(ZIP, for_query=False)
    kept, views = Thumbnail.decode(record.thumbnail), Views.decode(record.features["views"])
    as_it_is, toned = (
        PIPELINE.fingerprint_bytes(query, max_pixels=10**8).probe
        for query in (jpeg(OTHERS[other]), EDITS[edit](OTHERS[other]))
    )
    assert kept is not None and views is not None and as_it_is is not None and toned is not None
    evidence = verify(as_it_is, [views], [PIPELINE.policy.looked_near])[0]
    assert evidence is not None and evidence.alignment is not None
    before, after = (examine(probe, kept, evidence.alignment) for probe in (as_it_is, toned))
    assert before is not None and after is not None and before.side == after.side == COMPARE_SIDE
    assert abs(after.tiles - before.tiles) <= 0.25 * before.tiles
    assert after.shared < before.shared + 0.1 and not after.same_photograph


def gravel(seed: int) -> Image.Image:
    """A tray of gravel on a white table: the same tray and framing, every stone elsewhere (stones
    a few pixels across: their detail shows at 128 px, short of the finest compared side)."""
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.normal(128, 70, (600, 480)).clip(0, 255).astype(np.uint8))
    stones = np.asarray(noise.filter(ImageFilter.GaussianBlur(4)), dtype=np.float64)
    picture = np.full((600, 480), 235.0)
    picture[100:500, 80:400] = (stones[100:500, 80:400] - 128) * 6 + 110
    return Image.fromarray(picture.clip(0, 255).astype(np.uint8)).convert("RGB")


def stains(seed: int) -> Image.Image:
    """A tray on a white table with large round stains, each picture's elsewhere: two such
    photographs are unlike at the coarsest side the test compares."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (480, 600), (235, 235, 235))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((80, 100, 400, 500), fill=(150, 150, 150))
    for _ in range(25):
        x, y, r = rng.uniform(90, 390), rng.uniform(110, 490), rng.uniform(20, 45)
        level = int(rng.uniform(30, 250))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(level, level, level))
    return picture


def test_another_photograph_is_told_at_the_first_side_its_detail_is_unlike_and_a_copy_at_the_finest() -> None:
    """The detail is compared at each side from policy.EARLY_SIDE px up: another photograph is
    told at the first side where its detail is unlike the kept picture's, without the finer
    looks; a copy is always looked at to the full compared side."""
    stained = finding(stains(5), jpeg(stains(6)))
    assert stained is not None and not stained.same_photograph
    assert stained.side == EARLY_SIDE and stained.shared < EARLY_ANOTHER
    # Stones a few pixels across: at EARLY_SIDE only the tray's outline, which both share, shows.
    another = finding(gravel(1), jpeg(gravel(2)))
    assert another is not None and not another.same_photograph
    assert EARLY_SIDE < another.side < COMPARE_SIDE and another.shared < EARLY_ANOTHER <= SAME_PHOTOGRAPH
    copy = finding(gravel(1), EDITS["less contrast"](gravel(1)))
    assert copy is not None and copy.side == COMPARE_SIDE and copy.duplicate


def test_one_edit_of_the_whole_picture_explains_a_copy_and_not_a_recolour() -> None:
    """Brightness, contrast and saturation act on the whole picture (skin, trousers, background
    alike); a recoloured shirt is a region the one edit leaves unexplained."""
    for edit in ("brighter", "less contrast", "less saturated", "grayscale"):
        found = finding(ZIP, EDITS[edit](ZIP))
        assert found is not None and found.recoloured < RECOLOURED, edit
    found = finding(ZIP, jpeg(recoloured(ZIP, RED)))
    assert found is not None and found.same_photograph and found.recoloured >= RECOLOURED


def hem_recoloured(picture: Image.Image, colour: tuple[int, int, int]) -> tuple[Image.Image, float]:
    """The same photograph with only the shirt's hem (its lowest 5%) in another colour, its
    detail kept; and the share of the picture that changed."""
    pixels = np.asarray(picture, dtype=np.float64).copy()
    band = np.zeros(pixels.shape[:2], bool)
    band[int(0.65 * band.shape[0]) : int(0.70 * band.shape[0])] = True
    hem = band & (np.abs(pixels - np.array(SHIRT)).max(axis=-1) < 40)
    pixels[hem] += np.array(colour, dtype=np.float64) - np.array(SHIRT)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), float(hem.mean())


def test_a_recoloured_part_is_a_share_of_the_product_not_of_the_backdrop(service: DupcheckService) -> None:
    """A hem (a zip, a cap's crown) in another colour is a small share of a picture that is
    mostly white backdrop, and a large one of the product: another colour, never a duplicate."""
    query, changed = hem_recoloured(ZIP, RED)
    assert changed < RECOLOURED  # of the whole picture: too little to tell from a copy's noise
    found = finding(ZIP, jpeg(query))
    assert found is not None and found.same_photograph and found.another_colour
    assert verdict_of(service, jpeg(query)) is Verdict.SIMILAR


def test_a_badge_is_added_on_top_not_a_recolour() -> None:
    found = finding(ZIP, EDITS["badge"](ZIP))
    assert found is not None and found.duplicate
    assert found.unexplained is not None and found.unexplained.added > 0 and found.recoloured == 0


def test_a_recolour_shown_at_one_alignment_stands_against_another_s_added_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same region, read at two alignments: at the first its detail lines up with the
    photograph's (recoloured: the pair is the photograph in another colour), at the second,
    slightly worse, it does not (added on top: a duplicate with a badge). Nothing added on top
    has the photograph's own detail, so the first reading stands: the candidate does not pass,
    and the finding that names it is the recolour. A reading from the region's outline alone
    does not stand so."""
    cells = np.zeros((8, 8), bool)
    readings = {
        "views": Finding(0.90, 60, 0.0, 256, 0.0, None, None, Unexplained(0.10, 0.0, cells, 0.10)),  # type: ignore[arg-type]
        "turned": Finding(0.88, 60, 0.0, 256, 0.0, None, None, Unexplained(0.0, 0.10, cells)),  # type: ignore[arg-type]
    }
    monkeypatch.setattr(same_photograph, "examine", lambda probe, kept, alignment: readings[alignment])
    kept = types.SimpleNamespace(has=lambda i: True, of=lambda i: object())
    test = same_photograph.SamePhotograph(None, kept)  # type: ignore[arg-type]
    lines_up = types.SimpleNamespace(passes=lambda evidence: True)
    target = judge.Tested(lines_up, lines_up, test, 0)  # type: ignore[arg-type]
    assert not target.passes(types.SimpleNamespace(alignment="views"))  # type: ignore[arg-type]
    assert readings["turned"].duplicate and not target.passes(types.SimpleNamespace(alignment="turned"))  # type: ignore[arg-type]
    assert test.finding(0) is readings["views"] and test.recolour_shown(0)
    # A region told recoloured by its outline alone (a flat badge over a busy scene, whose edges
    # lie near any outline) shows nothing only the photograph has: the added reading passes.
    readings["views"] = Finding(0.90, 60, 0.0, 256, 0.0, None, None, Unexplained(0.10, 0.0, cells, 0.0))  # type: ignore[arg-type]
    outlined = same_photograph.SamePhotograph(None, kept)  # type: ignore[arg-type]
    target = judge.Tested(lines_up, lines_up, outlined, 0)  # type: ignore[arg-type]
    assert not target.passes(types.SimpleNamespace(alignment="views"))  # type: ignore[arg-type]
    assert target.passes(types.SimpleNamespace(alignment="turned")) and not outlined.recolour_shown(0)  # type: ignore[arg-type]


def test_the_band_keeps_fine_detail_and_drops_what_is_broad() -> None:
    """A ramp and a flat picture have no fine detail; noise has. (A ramp's ends, mirrored, turn:
    a few pixels there are a fold, which the band sees.)"""
    ramp = np.tile(np.linspace(0, 255, 64), (64, 1))
    noise = np.random.default_rng(0).normal(128, 20, (64, 64))
    assert float(np.abs(band(ramp)[:, 6:-6]).max()) < 0.5
    assert float(np.abs(band(np.full((64, 64), 90.0))).max()) < 1e-6
    assert float(band(noise).std()) > 5


def test_a_patch_too_small_to_compare_is_not_a_finding() -> None:
    """A thumbnail a few dozen pixels across holds no detail to tell photographs apart."""
    assert finding(ZIP, jpeg(ZIP.resize((32, 40)))) is None


def test_the_same_bytes_are_distance_0_and_100_percent(service: DupcheckService) -> None:
    match = service.lookups.find_similar_bytes(jpeg(ZIP), top=1).matches[0]
    assert (match.entity_id, match.distance, match.match_percent, match.verdict) == ("zip", 0, 100.0, Verdict.DUPLICATE)


def test_a_big_badge_does_not_outweigh_the_photograph_in_how_alike_a_map_leaves_them() -> None:
    """How alike a map leaves the patches chooses the start Lucas-Kanade refines and whether a
    step helped. A flat badge over a third of the query, lined up exactly, must still read as the
    photograph lined up, and better than a map one pixel off; one correlation over the patch,
    which the badge's bright block dominates, reads it as barely alike."""
    rng = np.random.default_rng(3)
    photo = np.asarray(
        Image.fromarray(rng.uniform(0, 255, (64, 64)).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1)), np.float64
    )
    query = photo.copy()
    query[:40, :40] = 255.0  # the badge
    inside = np.ones(photo.shape, bool)
    lined_up = affine.Aligned(query, photo, inside, np.zeros(6), (64, 64))
    off = affine.Aligned(query, np.roll(photo, 1, axis=1), inside, np.zeros(6), (64, 64))
    assert affine._likeness(lined_up) > 0.95
    assert affine._likeness(lined_up) > affine._likeness(off) + 0.2
    q, w = query - query.mean(), photo - photo.mean()
    assert float((q * w).sum() / np.sqrt((q * q).sum() * (w * w).sum())) < 0.6  # what one correlation says
