"""The look-alike check: different garments photographed the same way are not duplicates, while
edited copies of either still are; and the check's pieces (thumbnails, limits, fallbacks)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dupcheck.bootstrap import build_service
from dupcheck.core.hashing import AlignedDualPHash, get_pipeline
from dupcheck.core.matching.alignment import verify
from dupcheck.core.matching.photograph import Confirmed, Detail, LookalikeCheck
from dupcheck.core.matching.policy import LOOKALIKE_SIZE, LOOKALIKE_TURNED_SIZE, Limits
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Views
from dupcheck.core.models import HashRecord, Verdict
from dupcheck.core.service import DupcheckService
from dupcheck.core.settings import Settings
from support.garments import garment

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


EDITS = {
    "resized and recompressed": lambda im: jpeg(im.resize((240, 300)), 60),
    "brighter": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.25)),
    "less contrast": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(0.7)),
    "cropped at the sides": lambda im: jpeg(im.crop((20, 0, 460, 600))),
    "mirrored": lambda im: jpeg(ImageOps.mirror(im)),
    "grayscale": lambda im: jpeg(ImageOps.grayscale(im)),
    "badge": lambda im: jpeg(badge(im)),
    "JPEG quality 20": lambda im: jpeg(im, 20),
}


def turned(image: Image.Image) -> bytes:
    """A copy only the turning lines up, looked at LOOKALIKE_TURNED_SIZE (luma) and LOOKALIKE_SIZE (tint)."""
    return jpeg(image.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DupcheckService]:
    """Both garments registered through the service (records and thumbnails), as the API does."""
    data_dir = tmp_path_factory.mktemp("lookalike")
    svc = build_service(Settings.from_env({}, data_dir=data_dir))
    for detail in ("zip", "print"):
        svc.register_bytes(entity_id=detail, sku=detail, image_url=f"https://shop.example/{detail}.jpg",
                           data=jpeg(garment(detail)))  # fmt: skip
    yield svc


def verdicts(service: DupcheckService, data: bytes) -> dict[str, Verdict]:
    return {m.entity_id: m.verdict for m in service.find_similar_bytes(data, top=5).matches}


def test_the_views_alone_cannot_tell_the_two_garments_apart() -> None:
    """What makes the next tests mean something: without the finer look, the other garment's
    views pass, and it would be called a duplicate."""
    stored = Views.decode(PIPELINE.fingerprint(garment("zip"), for_query=False).features["views"])
    probe = PIPELINE.fingerprint_bytes(jpeg(garment("print")), max_pixels=10**8).probe
    assert stored is not None
    evidence = verify(probe, [stored], [PIPELINE.policy.near])[0]
    assert evidence is not None and PIPELINE.policy.near.passes(evidence)


@pytest.mark.parametrize("query, other", [("print", "zip"), ("zip", "print")])
def test_a_different_garment_in_the_same_pose_is_never_a_duplicate(
    service: DupcheckService, query: str, other: str
) -> None:
    for name, edit in {"as it is": lambda im: jpeg(im), **EDITS}.items():
        found = verdicts(service, edit(garment(query)))
        # Shown, never called a copy; `similar` or `different` by verdicts.py's own rules (as
        # it is: correlation 0.99, but 14 of the 63 low frequencies flipped, past the 12 of `similar`).
        assert found[other] is not Verdict.DUPLICATE, name


@pytest.mark.parametrize("detail", ["zip", "print"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_copy_of_either_stays_a_duplicate(service: DupcheckService, detail: str, edit: str) -> None:
    found = verdicts(service, EDITS[edit](garment(detail)))
    assert found[detail] is Verdict.DUPLICATE
    assert [entity for entity, verdict in found.items() if verdict is Verdict.DUPLICATE] == [detail]


def test_a_turned_copy_stays_a_duplicate_and_the_other_garment_turned_is_never_one(service: DupcheckService) -> None:
    found = verdicts(service, turned(garment("print")))
    assert [entity for entity, verdict in found.items() if verdict is Verdict.DUPLICATE] == ["print"]
    assert verdicts(service, turned(garment("zip")))["print"] is not Verdict.DUPLICATE


def test_a_recoloured_shirt_from_the_same_photo_is_not_a_duplicate(tmp_path: Path) -> None:
    """A shop makes the grey shirt from the dark one's photo: same pixels everywhere but the
    shirt. No brightness or contrast edit maps the dark shirt to grey while the dark trousers
    stay dark; a brightened copy is one line and stays a duplicate."""
    original = garment("zip")
    pixels = np.asarray(original).astype(np.int16)
    shirt = np.abs(pixels - np.array([45, 48, 55])).max(axis=2) < 25
    recoloured = pixels.copy()
    recoloured[shirt] += 70
    grey = Image.fromarray(np.clip(recoloured, 0, 255).astype(np.uint8))
    svc = build_service(Settings.from_env({}, data_dir=tmp_path))
    svc.register_bytes(entity_id="dark", sku="dark", image_url="https://shop.example/d.jpg", data=jpeg(original))
    assert verdicts(svc, jpeg(grey))["dark"] is Verdict.SIMILAR
    assert verdicts(svc, jpeg(ImageEnhance.Brightness(original).enhance(1.3)))["dark"] is Verdict.DUPLICATE


PURPLE = np.array([120, 90, 170])
# Made from PURPLE's photo: the same luma (108), another tint. LILAC keeps PURPLE's hue, muted
# (a faint change over the whole shirt); BLUE is another hue (luma 104: a strong change).
LILAC, BLUE = np.array([113, 100, 136]), np.array([90, 100, 160])


def tinted(where: str, colour: np.ndarray) -> Image.Image:
    """garment("zip") with its shirt (or only the shirt's lowest band, as a waistband) in
    `colour`, its grain and seams kept: what a shop makes of one photo for another SKU."""
    pixels = np.asarray(garment("zip")).astype(np.int16)
    shirt = np.abs(pixels - np.array([45, 48, 55])).max(axis=2) < 25
    if where == "band":
        shirt[: round(pixels.shape[0] * 0.64)] = False
    pixels[shirt] += (colour - np.array([45, 48, 55])).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def purple(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DupcheckService]:
    svc = build_service(Settings.from_env({}, data_dir=tmp_path_factory.mktemp("tint")))
    for where in ("shirt", "band"):
        svc.register_bytes(entity_id=where, sku=where, image_url=f"https://shop.example/{where}.jpg",
                           data=jpeg(tinted(where, PURPLE)))  # fmt: skip
    yield svc


@pytest.mark.parametrize("where, colour", [("shirt", LILAC), ("shirt", BLUE), ("band", BLUE)])
def test_a_product_recoloured_at_the_same_lightness_is_not_a_duplicate(
    purple: DupcheckService, where: str, colour: np.ndarray
) -> None:
    """The shirt (or its waistband) recoloured in the purple one's photo: the same luma
    everywhere, so the views and the look-alike check's luma pass it; its tint changed where the
    skin's, the trousers' and the background's did not, which no one edit does."""
    variant = tinted(where, colour)
    stored = PIPELINE.fingerprint(tinted(where, PURPLE), for_query=False)
    views, thumbnail = Views.decode(stored.features["views"]), Thumbnail.decode(stored.thumbnail)
    probe = PIPELINE.fingerprint_bytes(jpeg(variant), max_pixels=10**8).probe
    assert views is not None and thumbnail is not None and probe is not None
    evidence = verify(probe, [views], [PIPELINE.policy.near])[0]
    assert evidence is not None and evidence.alignment is not None and PIPELINE.policy.near.passes(evidence)
    detail = LookalikeCheck(probe, PIPELINE.policy.lookalike, lambda _: thumbnail).examine(
        thumbnail, evidence.alignment
    )
    assert detail is not None and not PIPELINE.policy.lookalike.passes(detail)
    assert PIPELINE.policy.lookalike.passes(replace(detail, retinted=0.0, repainted=0.0))  # the tint alone refutes it
    assert verdicts(purple, jpeg(variant))[where] is Verdict.SIMILAR
    if where == "shirt":  # desaturated too, the band's change falls under the strong tint's slack
        assert verdicts(purple, jpeg(ImageEnhance.Color(variant).enhance(0.6)))[where] is Verdict.SIMILAR


TONE_EDITS = {
    "less saturated": lambda im: ImageEnhance.Color(im).enhance(0.4),
    "more saturated": lambda im: ImageEnhance.Color(im).enhance(1.7),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.7),
    "more contrast": lambda im: ImageEnhance.Contrast(im).enhance(1.4),
    "less contrast, more saturated": lambda im: ImageEnhance.Color(ImageEnhance.Contrast(im).enhance(0.7)).enhance(1.4),
    "grayscale": ImageOps.grayscale,
}


@pytest.mark.parametrize("where", ["shirt", "band"])
@pytest.mark.parametrize("edit", list(TONE_EDITS))
def test_a_copy_whose_colours_were_all_edited_stays_a_duplicate(purple: DupcheckService, where: str, edit: str) -> None:
    """The same edits over the whole picture change every tint by one factor: still the picture."""
    found = verdicts(purple, jpeg(TONE_EDITS[edit](tinted(where, PURPLE))))
    assert found[where] is Verdict.DUPLICATE


# -- the pieces ----------------------------------------------------------------------------------


def test_records_carry_a_thumbnail_and_queries_do_not() -> None:
    record = PIPELINE.fingerprint(garment("zip"), for_query=False)
    thumbnail = Thumbnail.decode(record.thumbnail)
    assert thumbnail is not None and thumbnail.hash == record.hash
    assert max(thumbnail.rgb.shape[:2]) == PIPELINE.work_size
    assert PIPELINE.fingerprint(garment("zip")).thumbnail == b""
    assert "thumbnail" not in record.features  # the record stays compact: the thumbnail lives beside it


def _judged(query: str, stored: str, thumbnails: dict[str, bytes] | None) -> Verdict:
    fp = PIPELINE.fingerprint(garment(stored), for_query=False)
    record = HashRecord(stored, stored, "", fp.hash, fp.algo, features=dict(fp.features))
    probe = PIPELINE.fingerprint_bytes(jpeg(garment(query)), max_pixels=10**8)
    source = None if thumbnails is None else (lambda ids: {i: thumbnails[i] for i in ids if i in thumbnails})
    return PIPELINE.judge(probe, [(record, 10)], source)[0].verdict


def test_without_its_thumbnail_a_candidate_keeps_the_verdict_of_its_views() -> None:
    thumbnail = PIPELINE.fingerprint(garment("zip"), for_query=False).thumbnail
    assert _judged("print", "zip", {"zip": thumbnail}) is Verdict.SIMILAR
    assert _judged("print", "zip", None) is Verdict.DUPLICATE  # no thumbnail store: as before the check
    assert _judged("print", "zip", {}) is Verdict.DUPLICATE  # a record without one (made before v4)
    # A thumbnail left by another version of the record (another hash) is not this record's.
    other = PIPELINE.fingerprint(garment("print"), for_query=False).thumbnail
    assert _judged("print", "zip", {"zip": other}) is Verdict.DUPLICATE
    assert _judged("print", "zip", {"zip": b"damaged"}) is Verdict.DUPLICATE


def test_each_candidate_is_looked_at_once() -> None:
    probe = PIPELINE.fingerprint_bytes(jpeg(garment("print")), max_pixels=10**8).probe
    stored = PIPELINE.fingerprint(garment("zip"), for_query=False)
    views = Views.decode(stored.features["views"])
    assert views is not None
    asked: list[int] = []

    def thumbnail_of(candidate: int) -> Thumbnail | None:
        asked.append(candidate)
        return Thumbnail.decode(stored.thumbnail)

    check = LookalikeCheck(probe, PIPELINE.policy.lookalike, thumbnail_of)
    target = check.target(0, PIPELINE.policy.near)
    evidence = verify(probe, [views], [target])[0]  # the turning asks, and so does the verdict
    assert evidence is not None and not target.passes(evidence) and not target.passes(evidence)
    assert asked == [0]
    assert target.max_colour_off == PIPELINE.policy.near.max_colour_off


def test_a_turned_alignment_is_looked_at_twice_as_fine() -> None:
    """Its luma at LOOKALIKE_TURNED_SIZE (a turn lets another photo in the same pose line up one
    more way); an upright one at LOOKALIKE_SIZE, as before."""
    stored = PIPELINE.fingerprint(garment("print"), for_query=False)
    views, thumbnail = Views.decode(stored.features["views"]), Thumbnail.decode(stored.thumbnail)
    assert views is not None and thumbnail is not None
    sides = {}
    for name, edit in {"resized and recompressed": EDITS["resized and recompressed"], "turned": turned}.items():
        probe = PIPELINE.fingerprint_bytes(edit(garment("print")), max_pixels=10**8).probe
        check = LookalikeCheck(probe, PIPELINE.policy.lookalike, lambda _: thumbnail)
        target = check.target(0, PIPELINE.policy.far)  # the near tier lets this turn pass upright
        evidence = verify(probe, [views], [target])[0]
        assert evidence is not None and evidence.alignment is not None and target.passes(evidence)
        aligned = check.aligned(thumbnail, evidence.alignment)
        assert aligned is not None
        sides[name] = (evidence.alignment.angle != 0, aligned.query.shape)
    assert sides == {"resized and recompressed": (False, (LOOKALIKE_SIZE, LOOKALIKE_SIZE)),
                     "turned": (True, (LOOKALIKE_TURNED_SIZE, LOOKALIKE_TURNED_SIZE))}  # fmt: skip


def test_limits() -> None:
    limits = Limits(min_structure=0.75, max_missing=0.12, max_recoloured=0.015, fair_structure=0.85,
                    fair_missing=0.06)  # fmt: skip
    same = Detail(structure=0.99, missing=0.0, recoloured=0.0, overlap=1.0)
    assert limits.passes(same)
    assert not limits.passes(Detail(0.74, 0.0, 0.0, 1.0))  # structure alone
    assert not limits.passes(Detail(0.99, 0.13, 0.0, 1.0))  # detail missing alone
    assert not limits.passes(Detail(0.99, 0.0, 0.02, 1.0))  # a recoloured region alone
    assert not limits.passes(Detail(0.84, 0.07, 0.0, 1.0))  # two weaker signs together
    assert limits.passes(Detail(0.84, 0.05, 0.0, 1.0)) and limits.passes(Detail(0.86, 0.11, 0.0, 1.0))
    assert limits.passes(Detail(0.0, 1.0, 1.0, 0.4))  # too little overlap to judge: the views decide
    tints = Limits(0.75, 0.12, 0.015, 0.85, 0.06, max_retinted=0.1, max_repainted=0.005)
    assert tints.passes(Detail(0.99, 0.0, 0.0, 1.0, retinted=0.1, repainted=0.005))
    assert not tints.passes(Detail(0.99, 0.0, 0.0, 1.0, retinted=0.11))  # a faint tint over much of it
    assert not tints.passes(Detail(0.99, 0.0, 0.0, 1.0, repainted=0.006))  # a strong one over a part
    assert limits.passes(Detail(0.99, 0.0, 0.0, 1.0, retinted=1.0, repainted=1.0))  # not asked: not checked


def test_the_wider_far_option_passes_only_with_the_thumbnail_looked_at_and_agreeing() -> None:
    """A far candidate a little less alike than the far tier asks (a resampled 10-15% crop) may
    pass, but only on the look-alike check's word: never on the views alone."""
    probe = PIPELINE.fingerprint_bytes(jpeg(garment("zip")), max_pixels=10**8).probe
    stored = PIPELINE.fingerprint(garment("zip"), for_query=False)
    other = PIPELINE.fingerprint(garment("print"), for_query=False)
    views = Views.decode(stored.features["views"])
    assert probe is not None and views is not None
    found = verify(probe, [views], [PIPELINE.policy.far])[0]
    assert found is not None and PIPELINE.policy.far.passes(found)
    weaker = replace(found, similarity=0.95, luma_off=0.02, colour_off=0.012, layout_off=8)
    assert not PIPELINE.policy.far.passes(weaker) and PIPELINE.policy.far_looked.passes(weaker)

    def target(thumbnail: bytes | None) -> Confirmed:
        decoded = None if thumbnail is None else Thumbnail.decode(thumbnail)
        return LookalikeCheck(probe, PIPELINE.policy.lookalike, lambda _: decoded).target(
            0, PIPELINE.policy.far, PIPELINE.policy.far_looked
        )

    assert target(stored.thumbnail).passes(weaker)  # looked at: the same picture
    assert not target(other.thumbnail).passes(weaker)  # looked at: another garment
    assert not target(None).passes(weaker)  # nothing to look at: the views' far tier decides
    assert target(None).passes(found)
    assert not target(stored.thumbnail).passes(replace(weaker, similarity=0.93))  # past the wider option too
