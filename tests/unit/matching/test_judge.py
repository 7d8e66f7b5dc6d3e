"""The judge (core/matching/judge.py): a pipeline's candidates judged as the pipeline declares
(judging.py); the candidates' kept pictures each read once, decoded only when the
same-photograph test looks at it, and never one made for another version of the record; a kept
picture that cannot be read leaves the views to decide."""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from dupcheck.core.fingerprint.hashing import AlignedDualPHash, get_pipeline
from dupcheck.core.limits.judging import ByDistance, Judging
from dupcheck.core.limits.policy import ALIGNED_DUAL_PHASH
from dupcheck.core.matching import judge
from dupcheck.core.matching.alignment import Alignment, Evidence
from dupcheck.core.matching.edits import summary
from dupcheck.core.matching.judge import _LazyThumbnails, judge_candidates
from dupcheck.core.matching.photograph import SamePhotograph
from dupcheck.core.models import Edit, Edited, HashRecord, HashValue, Marks, Verdict
from dupcheck.core.stored.thumbnails import _HEADER
from support.garments import photograph
from support.scripts import load_script

PIPELINE = get_pipeline()
assert isinstance(PIPELINE, AlignedDualPHash)


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


class Store:
    """A thumbnail source that counts its reads."""

    def __init__(self, kept: Mapping[str, bytes]) -> None:
        self.kept, self.reads = dict(kept), 0

    def __call__(self, ids: Sequence[str]) -> Mapping[str, bytes]:
        self.reads += 1
        return {i: self.kept[i] for i in ids if i in self.kept}


def record(entity_id: str, image: Image.Image) -> tuple[HashRecord, bytes]:
    fp = PIPELINE.fingerprint(image, for_query=False)
    return HashRecord(entity_id, "", "", fp.hash, fp.algo, features=dict(fp.features)), fp.thumbnail


class Declared:
    """A pipeline as the judge sees it: nothing but the judging it declares."""

    def __init__(self, judging: Judging) -> None:
        self.judging = judging


def test_a_pipeline_is_judged_as_it_declares_by_distance_or_verified() -> None:
    """By distance: the index's distances against the declared limits, no picture read.
    Verified: the same candidates aligned and their kept pictures looked at, at the distance
    judged (the closest half of any query hash, whatever the index said)."""
    stored, kept = record("zip", photograph("zip", shot=1))
    query = PIPELINE.fingerprint_bytes(jpeg(photograph("zip", shot=1).resize((240, 300))), max_pixels=10**8)
    candidates = [(stored, distance) for distance in (0, 2, 3, 5, 6)]
    store = Store({"zip": kept})
    limits = ByDistance(duplicate_max=2, similar_max=5, bits=64)
    by_distance = judge_candidates(Declared(limits), query, candidates, store)
    duplicate, similar, different = Verdict.DUPLICATE, Verdict.SIMILAR, Verdict.DIFFERENT
    assert [j.verdict for j in by_distance] == [duplicate, duplicate, similar, similar, different]
    assert [j.distance for j in by_distance] == [0, 2, 3, 5, 6] and store.reads == 0
    verified = judge_candidates(Declared(PIPELINE.judging), query, candidates, store)
    assert [j.verdict for j in verified] == [duplicate] * 5 and store.reads >= 1
    assert len({j.distance for j in verified}) == 1


def test_the_record_names_a_verified_judging_declares_decide_what_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """`keeps`: whose kept picture the same-photograph test looks at (none: the views alone
    decide, as for a record kept without its picture); `compact`: whose stored views are read
    (none: nothing lines up)."""
    looked: list[int] = []
    look = SamePhotograph.look
    monkeypatch.setattr(SamePhotograph, "look", lambda test, i, at: looked.append(i) or look(test, i, at))
    stored, kept = record("zip", photograph("zip", shot=1))
    query = PIPELINE.fingerprint_bytes(jpeg(photograph("zip", shot=1).resize((240, 300))), max_pixels=10**8)
    declared, store = PIPELINE.judging, Store({"zip": kept})
    (tested,) = judge_candidates(Declared(declared), query, [(stored, 0)], store)
    assert tested.verdict is Verdict.DUPLICATE and looked  # its kept picture looked at
    looked.clear()
    views_only = Declared(dataclasses.replace(declared, keeps=frozenset()))
    assert judge_candidates(views_only, query, [(stored, 0)], store)[0].verdict is Verdict.DUPLICATE
    assert looked == []
    (unread,) = judge_candidates(Declared(dataclasses.replace(declared, compact=())), query, [(stored, 0)], store)
    assert unread.verdict is Verdict.DIFFERENT and unread.edits is None


def test_a_kept_picture_is_read_once_and_only_one_made_for_the_record_counts() -> None:
    zip_record, zip_kept = record("zip", photograph("zip", shot=1))
    print_record, print_kept = record("print", photograph("print", shot=2))
    corrupt = zip_kept[: _HEADER.size + 40]  # the header, then a JPEG cut short
    store = Store({"zip": zip_kept, "raced": print_kept, "corrupt": corrupt})
    raced = HashRecord("raced", "", "", zip_record.hash, zip_record.hash_algo)  # its picture names print's hash
    corrupted = HashRecord("corrupt", "", "", zip_record.hash, zip_record.hash_algo)
    missing = HashRecord("missing", "", "", HashValue(bytes(16)), zip_record.hash_algo)
    kept = _LazyThumbnails([zip_record, raced, corrupted, missing], store)
    assert [kept.has(i) for i in range(4)] == [True, False, True, False]
    assert store.reads == 4
    picture = kept.of(0)
    assert picture is not None and picture.hash == zip_record.hash
    assert kept.of(1) is None and kept.of(2) is None and kept.of(3) is None
    assert kept.of(0) is picture and store.reads == 4  # each read once, each decoded once


def test_a_kept_picture_that_cannot_be_decoded_leaves_the_views_to_decide() -> None:
    """The record's own picture asked about again is a duplicate however its kept picture was
    damaged; another photograph of the scene is judged as a record without one is."""
    stored, kept = record("zip", photograph("zip", shot=1))
    corrupt = kept[: _HEADER.size + 40]
    query = PIPELINE.fingerprint_bytes(jpeg(photograph("zip", shot=1).resize((240, 300))), max_pixels=10**8)
    candidates = [(stored, 0)]
    for source in (Store({"zip": corrupt}), Store({})):
        (judgement,) = judge_candidates(PIPELINE, query, candidates, source)
        assert judgement.verdict is Verdict.DUPLICATE
    other = PIPELINE.fingerprint_bytes(jpeg(photograph("print", shot=2)), max_pixels=10**8)
    damaged = judge_candidates(PIPELINE, other, candidates, Store({"zip": corrupt}))[0].verdict
    assert damaged is judge_candidates(PIPELINE, other, candidates, Store({}))[0].verdict


def test_the_candidate_turned_first_is_the_nearest_by_the_distance_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The judged distance is the closest half of any query hash; the index ranks by all 128
    bits, which a turn's fill corners move more. The nearest `verify` turns first (and tries at
    the scan's angles) is the nearest by the distance judged, whatever the index's order."""
    zip_record, zip_kept = record("zip", photograph("zip", shot=1))
    print_record, print_kept = record("print", photograph("print", shot=2))
    query = PIPELINE.fingerprint_bytes(jpeg(photograph("zip", shot=1).rotate(4)), max_pixels=10**8)
    asked: list[int | None] = []
    real = judge.verify

    def verify(probe, candidates, targets, judged=None, colour_shown=None, nearest=None, **how):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN003, ANN202
        asked.append(nearest)
        return real(probe, candidates, targets, judged, colour_shown, nearest, **how)

    monkeypatch.setattr(judge, "verify", verify)
    closest = judge._closest_halves(query, [print_record, zip_record])
    assert closest[1] < closest[0]  # the copy's photograph is the nearer by the judged distance
    candidates = [(print_record, 10), (zip_record, 60)]  # the index's order says otherwise
    judge_candidates(PIPELINE, query, candidates, Store({"zip": zip_kept, "print": print_kept}))
    assert asked and asked[0] == 1


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


def _padded(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    out = Image.new("RGB", (round(w * (1 + 2 * share)), round(h * (1 + 2 * share))), (255, 255, 255))
    out.paste(image, (round(w * share), round(h * share)))
    return out


def _judged(asked: Image.Image, *stored: Image.Image, marks: Marks = Marks.PHOTO) -> list[judge.Judgement]:
    """`asked` judged against a catalog of `stored` (ids s0, s1, ...)."""
    records, kept = zip(*(record(f"s{n}", image) for n, image in enumerate(stored)), strict=True)
    query = PIPELINE.fingerprint_bytes(jpeg(asked), max_pixels=10**8)
    source = Store({r.entity_id: k for r, k in zip(records, kept, strict=True)})
    return judge_candidates(PIPELINE, query, [(r, 0) for r in records], source, marks)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda p: _crop(p, 0.12, 0.10, 0.11, 0.13), {"cropped"}),
        (lambda p: _padded(_crop(p, 0.15, 0.05, 0.15, 0.03), 0.12), {"padded", "framed"}),
    ],
    ids=["a large crop", "padding"],
)
def test_a_pair_has_one_verdict_whichever_picture_the_catalog_holds(edit, named) -> None:  # type: ignore[no-untyped-def]  # noqa: ANN001
    """The copy asked about with the original stored, and the original asked about with the
    copy stored: both duplicates. Found the other way round, the edits are read from the
    original to the copy and say the catalog picture is the copy (`reverse`)."""
    photo = photograph("zip", shot=1)
    original = photo if "cropped" in named else _crop(photo, 0.15, 0.05, 0.15, 0.03)  # (a photo to its edges)
    copy = edit(photo)
    (forth,) = _judged(copy, original)
    (back,) = _judged(original, copy)
    assert forth.verdict is back.verdict is Verdict.DUPLICATE
    assert not forth.reverse and back.reverse
    assert back.edits is not None and named & {e.name for e in back.edits}


def test_another_photograph_in_the_pose_is_not_a_duplicate_either_way() -> None:
    """Both ways round, another exposure of the scene (and its crop) is not the photograph."""
    one, other = photograph("zip", shot=1), photograph("zip", shot=3, pose=3.0)
    for asked, stored in ((one, other), (other, one), (one, _crop(other, 0.1, 0.1, 0.1, 0.1)),
                          (_crop(other, 0.1, 0.1, 0.1, 0.1), one)):  # fmt: skip
        (judgement,) = _judged(asked, stored)
        assert judgement.verdict is not Verdict.DUPLICATE


def _caption_band(image: Image.Image, top: float, left: float, right: float) -> Image.Image:
    """`image` with a shop's dark caption band, an eighth of it high, from `left` to `right`."""
    w, h = image.size
    out = image.copy()
    draw = ImageDraw.Draw(out)
    draw.rectangle((round(w * left), round(h * top), round(w * right), round(h * (top + 0.12))), fill=(20, 20, 20))
    draw.text((round(w * (left + 0.05)), round(h * (top + 0.04))), "FREE SHIPPING ON ALL ORDERS", fill=(255, 255, 255))
    return out


@pytest.mark.parametrize(
    ("top", "left", "right"), [(0.30, 0.0, 1.0), (0.75, 0.15, 0.85)], ids=["across the picture", "across the legs"]
)
def test_a_copy_with_a_caption_band_is_a_duplicate_either_way(top: float, left: float, right: float) -> None:
    """A band over an eighth of the picture: the views differ there past what a look needs, and
    agree everywhere else (core/matching/pasted.py). Another exposure with the band is not the
    photograph."""
    photo = photograph("zip", shot=1)
    copy = _caption_band(photo, top, left, right)
    assert _judged(copy, photo)[0].verdict is Verdict.DUPLICATE
    assert _judged(photo, copy)[0].verdict is Verdict.DUPLICATE
    another = _caption_band(photograph("zip", shot=3, pose=3.0), top, left, right)
    assert _judged(another, photo)[0].verdict is not Verdict.DUPLICATE


def test_a_badge_over_the_product_is_a_duplicate_whichever_picture_holds_it() -> None:
    """A large sticker over the garment, the copy asked with its original stored and the reverse:
    both duplicates. Where one edit of the whole picture leaves the sticker unexplained, its
    outline tells what it is: an outline one picture has and the other lacks is a mark's, on
    either picture (read only as the query's, this pair was `similar`, "recoloured", both ways)."""
    photo = photograph("zip", shot=1)
    width, height = photo.size
    copy = photo.copy()
    draw = ImageDraw.Draw(copy)
    left, top, side = round(0.3 * width), round(0.55 * height), round(0.4 * width)
    draw.ellipse((left, top, left + side, top + side), fill=(240, 200, 20))
    draw.text((left + 8, top + side // 3), "SALE", font=ImageFont.load_default(size=side // 4), fill=(0, 0, 0))
    for asked, stored in ((copy, photo), (photo, copy)):
        (judgement,) = _judged(asked, stored)
        assert judgement.verdict is Verdict.DUPLICATE
        assert judgement.edits is not None and "overlay" in {edit.name for edit in judgement.edits}
        assert _judged(asked, stored, stored, stored) == [judgement] * 3  # the catalog holding it thrice


def test_a_badge_on_the_catalog_picture_is_named_there_though_it_moved_the_tone() -> None:
    """A grey photo and its copy with a red badge: asked about with the copy stored, the original
    is a duplicate, and the copy is the catalog picture. The badge's colour reads as a grey
    edit beside it, which keeps the kept pictures from being read pixel for pixel; the outline
    only the catalog picture has says where the mark lies, and the pair is read the other way
    round (before, this said the original was turned grey and badged)."""
    photo = ImageOps.grayscale(photograph("zip", shot=1)).convert("RGB")
    width, _ = photo.size
    copy = photo.copy()
    draw = ImageDraw.Draw(copy)
    left = top = round(0.05 * width)
    side = round(0.25 * width)
    draw.rectangle((left, top, left + side, top + side), fill=(220, 30, 40))
    draw.text((left + 8, top + side // 3), "SALE", font=ImageFont.load_default(size=side // 4), fill=(255, 255, 255))
    (forth,) = _judged(copy, photo)
    (back,) = _judged(photo, copy)
    assert forth.verdict is back.verdict is Verdict.DUPLICATE
    assert not forth.reverse and back.reverse
    assert back.edits is not None and {edit.name for edit in back.edits} == {"overlay"}
    assert _judged(photo, copy, copy, copy) == [back] * 3  # the catalog holding the copy thrice


def test_two_crops_from_different_sides_are_one_photograph() -> None:
    """A crop off the left and one off the top share all but a strip of each: duplicates both ways."""
    original = photograph("zip", shot=1)
    side, end = _crop(original, 0.12, 0.0, 0.0, 0.0), _crop(original, 0.0, 0.10, 0.0, 0.0)
    assert _judged(side, end)[0].verdict is Verdict.DUPLICATE
    assert _judged(end, side)[0].verdict is Verdict.DUPLICATE


def _flat_cover(band_at: int | None = None, title: str = "Kingdom") -> Image.Image:
    """A book cover on a flat colour (a frame, the author, a title, a publisher's mark); with
    `band_at`, a shop's caption band across it from that row down."""
    cover = Image.new("RGB", (600, 900), (112, 54, 140))
    draw = ImageDraw.Draw(cover)
    draw.rectangle((20, 20, 579, 879), outline=(255, 255, 255), width=3)
    draw.text((50, 40), "TOMAS BRANDT", font=ImageFont.load_default(size=26), fill=(255, 255, 255))
    draw.line((50, 70, 550, 70), fill=(255, 255, 255), width=3)
    draw.text((50, 90), title, font=ImageFont.load_default(size=57), fill=(255, 255, 255))
    draw.line((50, 165, 550, 165), fill=(255, 255, 255), width=3)
    draw.rectangle((510, 840, 550, 879), fill=(240, 240, 230))
    draw.text((520, 845), "B", font=ImageFont.load_default(size=26), fill=(0, 0, 0))
    if band_at is not None:
        draw.rectangle((0, band_at, 599, band_at + 87), fill=(30, 45, 110))
        draw.text((80, band_at + 15), "SIZES S-XXL", font=ImageFont.load_default(size=60), fill=(255, 255, 255))
    return cover


def test_one_picture_stored_several_times_gets_the_judgement_it_gets_alone() -> None:
    """The catalog holds one picture in three records: each gets the judgement the picture gets
    stored once, both ways round. (Judged apart, the caps on how many candidates a step looks at
    reached one of them and not the others: this caption copy was `duplicate` of one record and
    `different` of the two others, its cover `duplicate` of one and `similar` of the others.)"""
    plain, captioned = _flat_cover(), _flat_cover(band_at=780)
    for asked, stored in ((captioned, plain), (plain, captioned)):
        (alone,) = _judged(asked, stored)
        assert _judged(asked, stored, stored, stored) == [alone] * 3


@pytest.mark.parametrize("marks", list(Marks), ids=lambda m: m.value)
def test_another_title_in_the_same_template_is_another_product_either_way(marks: Marks) -> None:
    """Issue 83: a cover of the same template with another title is `similar`, "another title in
    the same template", whichever cover the catalog holds and whatever the shop's `marks`; the
    same cover with a caption band laid over it stays a duplicate."""
    first, second = _flat_cover(), _flat_cover(title="Fire Lost")
    for asked, stored in ((second, first), (first, second)):
        (judgement,) = _judged(asked, stored, marks=marks)
        assert judgement.verdict is Verdict.SIMILAR
        assert judgement.edits is not None and "retitled" in {e.name for e in judgement.edits}
        assert _judged(asked, stored, stored, stored, marks=marks) == [judgement] * 3  # held thrice
    assert _judged(_flat_cover(band_at=300), first, marks=marks)[0].verdict is Verdict.DUPLICATE


@pytest.mark.parametrize(("title", "author"), [("Shadow Garden", "Ines Kowalski"), ("Blue Salt River", "Clara Okafor")])
def test_another_title_found_on_a_part_of_the_cover_is_read_as_one(title: str, author: str) -> None:
    """make_prints' framed cream cover with a short title: the whole of the other cover does not
    line up, a part of it does (`_shared_part`). Judged on that part, the two kept pictures are
    still compared, so the pair is another title both ways round, and with the catalog holding
    the cover thrice, not a duplicate with text added (the part's judgement read without the
    query's own picture)."""
    spec = {"align": "center", "author_at": "bottom", "author_font": "DejaVuSans.ttf", "author_size": 28,
            "background": "flat", "colours": ["white", "grey", "navy"], "frame": True, "mark": "square",
            "publisher": "Blue Heron", "rules": True, "series": "A Novel", "title_at": "top",
            "title_colour": "navy", "title_font": "DejaVuSansCondensed-Bold.ttf", "title_size": 55}  # fmt: skip
    cover = load_script("make_prints.py").cover
    first, other = cover(spec, "Night", "Omar Okafor", Path()), cover(spec, title, author, Path())
    for asked, stored in ((other, first), (first, other)):
        (judgement,) = _judged(asked, stored)
        assert judgement.verdict is Verdict.SIMILAR
        assert judgement.edits is not None and "retitled" in {e.name for e in judgement.edits}
        assert _judged(asked, stored, stored, stored) == [judgement] * 3


_NIGHT = {"align": "center", "author_at": "bottom", "author_font": "DejaVuSans.ttf", "author_size": 28,
          "background": "flat", "colours": ["white", "grey", "navy"], "frame": True, "mark": "square",
          "publisher": "Blue Heron", "rules": True, "series": "A Novel", "title_at": "top", "title_colour": "navy",
          "title_font": "DejaVuSansCondensed-Bold.ttf", "title_size": 55}  # fmt: skip
_NORTH = {"align": "left", "author_at": "bottom", "author_font": "DejaVuSans.ttf", "author_size": 29,
          "background": "flat", "colours": ["green", "grey", "red"], "frame": False, "mark": "square",
          "publisher": "Northway", "rules": True, "series": "Vol. 3", "title_at": "middle", "title_colour": "white",
          "title_font": "DejaVuSans-Bold.ttf", "title_size": 49}  # fmt: skip
_SUMMER = {"align": "center", "author_at": "bottom", "author_font": "DejaVuSans.ttf", "author_size": 26,
           "background": "gradient", "colours": ["grey", "orange", "cream"], "frame": True, "mark": "square",
           "publisher": "Meridian", "rules": False, "series": "Volume II", "title_at": "bottom",
           "title_colour": "navy", "title_font": "DejaVuSans-BoldOblique.ttf", "title_size": 50}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "words", "seed"),
    [(_NIGHT, ("Night", "Omar Okafor"), 1), (_NIGHT, ("Night", "Omar Okafor"), 2),
     (_NORTH, ("North", "James Rossi"), 4), (_SUMMER, ("Kingdom Summer", "Jonas Novak"), 6)],
    ids=["cream cover, grey band", "cream cover, light band", "green cover", "gradient cover"],
)  # fmt: skip
def test_a_caption_band_across_a_flat_cover_is_a_copy_either_way(spec: dict[str, Any], words: tuple[str, str],
                                                                  seed: int) -> None:  # fmt: skip
    """make_prints' caption band across a flat cover, from edge to edge: the cover holds little
    detail beside it, so the views' coarse search lines the copy up with a crop that leaves the
    band out, where nothing else lines up, and the cream cover holds too little detail for the
    test at all. Lined up whole, the views agree but for the band, which crosses the picture's
    edge: an overlay. A duplicate whichever picture the catalog holds, and thrice (each was
    `different` both ways before)."""
    make_prints = load_script("make_prints.py")
    cover = make_prints.cover(spec, *words, Path())
    captioned, _ = make_prints.cover_overlay("cover_caption", cover, random.Random(seed))
    for asked, stored in ((captioned, cover), (cover, captioned)):
        (judgement,) = _judged(asked, stored)
        assert judgement.verdict is Verdict.DUPLICATE
        assert _judged(asked, stored, stored, stored) == [judgement] * 3


@pytest.mark.parametrize("k", [0, 2, 4, 5, 10], ids=["white on flat", "black on flat", "navy on flat",
                                                     "white on a gradient", "black on a gradient"])  # fmt: skip
def test_covers_whose_title_is_their_only_detail_are_another_title_either_way(k: int) -> None:
    """make_prints' covers of one template (no photo) whose title and author are their only
    detail: the views and the test compare two titles and see two pictures (`different` both
    ways before). Read from the kept pictures, they differ by nothing but text that replaced
    text: `similar`, another title, whichever cover the catalog holds and with it held thrice.
    A cover of another template is not another title, nor is the cover padded too thinly to be
    named. With a badge too, the copy stays a duplicate at least one way round and is never
    called `different`; where the views miss it, the badge beside its moved strokes reads as text
    no shift explains, and the copy as another title (`similar`: a known limit)."""
    make_prints = load_script("make_prints.py")
    spec = make_prints.template(83, k, [])
    first = make_prints.cover(spec, "Kingdom Winter Salt", "David Rossi", Path())
    second = make_prints.cover(spec, "Secret Storm", "Sofia Okafor", Path())
    for asked, stored in ((second, first), (first, second)):
        (judgement,) = _judged(asked, stored)
        assert judgement.verdict is Verdict.SIMILAR
        assert judgement.edits is not None and [e.name for e in judgement.edits] == ["retitled"]
        assert _judged(asked, stored, stored, stored) == [judgement] * 3
    elsewhere = make_prints.cover(make_prints.template(83, k + 1, []), "Secret Storm", "Sofia Okafor", Path())
    assert _judged(elsewhere, first)[0].verdict is Verdict.DIFFERENT
    padded = ImageOps.expand(first, border=8, fill=first.getpixel((2, 2))).resize(first.size, Image.Resampling.LANCZOS)
    assert _judged(padded, first)[0].verdict is _judged(first, padded)[0].verdict is Verdict.DUPLICATE
    badged = padded.copy()
    draw = ImageDraw.Draw(badged)
    draw.ellipse((20, 760, 140, 880), fill=(20, 110, 220))
    draw.text((40, 805), "-30%", font=ImageFont.load_default(size=30), fill=(255, 255, 255))
    verdicts = {_judged(badged, first)[0].verdict, _judged(first, badged)[0].verdict}
    assert Verdict.DUPLICATE in verdicts and Verdict.DIFFERENT not in verdicts


def test_another_title_is_settled_as_a_duplicate_is_no_other_way_looked_at() -> None:
    """The other way round and the part both show look again at candidates not yet settled: a
    duplicate is, and so is another title (its two kept pictures compared pixel for pixel), which
    a look the other way, naming less, must not turn back into a duplicate."""
    retitled = Edit("retitled", {"where": "top", "share": 0.03})
    assert judge._settled(judge.Judgement(2, Verdict.DUPLICATE, 99.0, ()))
    assert judge._settled(judge.Judgement(2, Verdict.SIMILAR, 89.0, (retitled,)))
    assert not judge._settled(judge.Judgement(2, Verdict.SIMILAR, 89.0, (Edit("recoloured", {"share": 0.4}),)))
    assert not judge._settled(judge.Judgement(9, Verdict.DIFFERENT, 40.0))


def test_records_hold_one_picture_only_where_their_kept_pictures_are_the_same_bytes() -> None:
    """Records with one hash and one set of views, found at one index distance, hold one picture
    where their kept pictures are the same bytes, or neither keeps one made for it; a picture
    differing in two pixels (below what the hash and views see) is another. The kept pictures
    are read once, together."""
    photo = photograph("zip", shot=1)
    touched = photo.copy()
    for x in (100, 101):
        touched.putpixel((x, 100), (255, 0, 0))
    first, kept = record("first", photo)
    again, _ = record("again", photo)
    other, other_kept = record("other", touched)
    assert (other.hash, other.features) == (first.hash, first.features) and other_kept != kept
    bare = dataclasses.replace(first, entity_id="bare")  # kept no picture
    raced = dataclasses.replace(first, entity_id="raced")  # kept one made for another hash
    _, elsewhere = record("elsewhere", photograph("print", shot=2))
    store = Store({"first": kept, "again": kept, "other": other_kept, "raced": elsewhere})
    source = judge._ReadOnce(store)
    candidates = [(first, 0), (other, 0), (again, 0), (bare, 0), (raced, 0), (again, 9)]
    assert judge._one_per_picture(candidates, source) == [0, 1, 0, 3, 3, 5]  # (found farther: its own tier)
    assert store.reads == 1
    source(["first", "raced", "bare"])
    assert store.reads == 1


def test_every_record_of_the_photograph_gets_the_turn_that_lined_one_up() -> None:
    """The catalog holds the photograph twice (as it is and padded): a turned copy that lines up
    with one once turned is judged turned against the other too, not called different."""
    original = photograph("zip", shot=1)
    turned = original.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    judgements = _judged(turned, original, _padded(original, 0.1))
    assert [j.verdict for j in judgements] == [Verdict.DUPLICATE, Verdict.DUPLICATE]


def _screened(similarity: float, luma_off: float, width: float) -> Evidence:
    """Views screened the other way round, lining the candidate up with `width` of the query."""
    blank = np.zeros((2, 2))
    alignment = Alignment((0.0, 1.0, 0.0, 1.0), False, 0.0, 0, (0.0, 1.0), (0.1, width), False,
                          blank, blank, blank, blank, blank, blank)  # fmt: skip
    return Evidence(similarity, luma_off, 0.0, layout_off=4, alignment=alignment)


def test_a_catalog_picture_that_lines_up_better_as_a_part_of_the_query_is_looked_at_the_other_way() -> None:
    """The original asked about, its large crop stored: the crop's views line up with a part of
    the query's more closely than the query's own screening lined them up (by PART_GAIN), though
    not as closely as looked_back asks. A look-alike lines up no better either way; a candidate
    lined up with the whole query shows no less of the photograph."""
    policy = ALIGNED_DUAL_PHASH
    crop = _screened(0.92, 0.025, 0.8)
    assert not policy.looked_back.passes(crop) and policy.looked_part.passes(crop)
    assert judge._worth_a_look_back(policy, crop, 0.85, undecided=False)
    assert not judge._worth_a_look_back(policy, crop, 0.91, undecided=False)  # no gain: a look-alike
    whole = _screened(0.92, 0.025, 1.0)
    assert not judge._worth_a_look_back(policy, whole, 0.85, undecided=False)
    assert judge._worth_a_look_back(policy, _screened(0.95, 0.005, 1.0), 0.85, undecided=True)


def test_the_catalogs_own_picture_uploaded_again_is_a_duplicate_with_no_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 84: a query whose kept picture is a candidate's pixel for pixel (the same file sent
    again) is a duplicate at 100% with nothing to name, judged without the same-photograph test;
    the catalog's other records are judged as before: another record of the same picture is
    found the same way, a crop of it by a look; a recompressed copy, whose pixels differ, is looked at."""
    from dupcheck_tools.samples import encode, product_image

    original = product_image(31, (480, 360))
    sent = encode(original, quality=92)
    crop = original.crop((40, 0, 480, 360))
    pictures = {"first": Image.open(io.BytesIO(sent)), "again": Image.open(io.BytesIO(sent)), "crop": crop}
    records = [record(name, image) for name, image in pictures.items()]
    kept = {rec.entity_id: thumbnail for rec, thumbnail in records}
    looked: list[HashValue | None] = []  # the hash each kept picture looked at was made for
    real_look = SamePhotograph.look

    def look(self: SamePhotograph, i: int, alignment: Alignment):  # noqa: ANN202
        picture = self._kept.of(i)
        looked.append(picture.hash if picture is not None else None)
        return real_look(self, i, alignment)

    monkeypatch.setattr(SamePhotograph, "look", look)

    def judged(data: bytes) -> list[judge.Judgement]:
        looked.clear()
        query = PIPELINE.fingerprint_bytes(data, max_pixels=40_000_000)
        candidates = [(rec, min(h - rec.hash for h in query.search_hashes)) for rec, _ in records]
        return judge_candidates(PIPELINE, query, candidates, Store(kept))

    again = judged(sent)
    assert [(j.verdict, j.score, j.edits) for j in again[:2]] == [(Verdict.DUPLICATE, 100.0, ())] * 2
    assert again[2].verdict is Verdict.DUPLICATE  # the crop: the catalog holds the photograph three times
    first, crop = records[0][0].hash, records[2][0].hash
    assert set(looked) == {crop}  # first and again hold one picture: neither looked at
    recompressed = judged(encode(original, quality=60))
    assert recompressed[0].verdict is Verdict.DUPLICATE and first in looked


def test_the_entry_point_reads_a_mark_on_the_product_as_the_shop_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """`judge_candidates` returns finished verdicts: a duplicate whose mark lies on the product is
    another print under `product`, and stays a duplicate under `photo` (the default)."""
    marked = judge.Judgement(3, Verdict.DUPLICATE, 97.0, (Edit("overlay", {"where": "centre", "share": 0.02}),),
                             on_product=lambda: True)  # fmt: skip
    monkeypatch.setattr(judge, "_by_verification", lambda *_: [marked])
    query = PIPELINE.fingerprint_bytes(jpeg(photograph("zip", shot=1)), max_pixels=10**8)
    candidate = [(record("s0", photograph("zip", shot=1))[0], 0)]
    (default,) = judge_candidates(PIPELINE, query, candidate)
    (printed,) = judge_candidates(PIPELINE, query, candidate, marks=Marks.PRODUCT)
    assert default.verdict is Verdict.DUPLICATE and [e.name for e in default.edits or ()] == ["overlay"]
    assert printed.verdict is Verdict.SIMILAR and [e.name for e in printed.edits or ()] == ["printed"]


def test_a_judgement_becomes_a_match_with_its_percentage_words_and_the_picture_it_edits() -> None:
    stored = HashRecord("s0", "SKU-0", "http://127.0.0.1/s0.jpg", HashValue(bytes(8)), "algo")
    cropped = (Edit("cropped", {"left": 0.1, "top": 0.0, "right": 0.0, "bottom": 0.0}),)
    forth = judge.as_match(stored, judge.Judgement(2, Verdict.DUPLICATE, 96.04, cropped))
    back = judge.as_match(stored, judge.Judgement(2, Verdict.DUPLICATE, 96.04, cropped, reverse=True))
    other = judge.as_match(stored, judge.Judgement(9, Verdict.DIFFERENT, 41.26))
    assert (forth.entity_id, forth.sku, forth.distance, forth.match_percent) == ("s0", "SKU-0", 2, 96.0)
    assert forth.edited is Edited.QUERY and back.edited is Edited.CATALOG and other.edited is None
    assert forth.edit_summary == summary(cropped, same_picture=True)
    assert back.edit_summary == summary(cropped, same_picture=True, of_catalog=True) != forth.edit_summary
    assert other.edits is None and other.edit_summary is None and other.match_percent == 41.3


def test_of_two_records_of_one_photograph_the_one_the_query_differs_from_less_comes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalog holds a photograph and the same photograph with a print on the chest; a copy of
    the plain one with a badge is a duplicate of both, and scores higher against the plain one:
    the print the other holds is left unexplained by the test too, and counts against it."""
    photo = photograph("zip", shot=1)
    printed, badged = photo.copy(), photo.copy()
    ImageDraw.Draw(printed).rectangle((200, 250, 290, 330), fill=(200, 30, 40))
    ImageDraw.Draw(badged).ellipse((60, 440, 130, 510), fill=(245, 200, 30))
    differing: list[float] = []
    real_score = judge.score

    def noted(*args: Any, **kwargs: Any) -> float:
        differing.append(kwargs.get("differing", 0.0))
        return real_score(*args, **kwargs)

    monkeypatch.setattr(judge, "score", noted)
    plain, other = _judged(badged, photo, printed)
    assert plain.verdict is other.verdict is Verdict.DUPLICATE
    assert plain.score > other.score
    assert differing[1] > differing[0] > 0.0  # the badge against both; the print against the printed one


@pytest.mark.parametrize("inset", [8, 14], ids=["a rim of the print left", "the print's corners left"])
def test_a_badge_over_the_other_records_print_still_puts_the_record_it_copies_first(inset: int) -> None:
    """The badge lies where the other record has its print, and covers most of it: the 32 px views
    see a blob against a blob there and agree better with the printed record, while what the
    test finds differing (the print's rim or corners beside the badge) says the plain one."""
    photo = photograph("zip", shot=1)
    printed, badged = photo.copy(), photo.copy()
    ImageDraw.Draw(printed).rectangle((200, 250, 290, 330), fill=(200, 30, 40))
    ImageDraw.Draw(badged).ellipse((200 + inset, 250 + inset, 290 - inset, 330 - inset), fill=(245, 200, 30))
    plain, other = _judged(badged, photo, printed)
    assert plain.verdict is other.verdict is Verdict.DUPLICATE
    assert plain.score > other.score
