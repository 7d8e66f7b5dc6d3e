"""Hash pipelines: fixed hashes (a change must bump hash_algo), invariants, and the verifier."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.core.fingerprint.hashing import (
    DEFAULT_ALGO,
    AlignedDualPHash,
    HashPipeline,
    PHash64,
    centre_weighted,
    dct_hash,
    get_pipeline,
    imagehash_phash,
)
from dupcheck.core.matching import alignment, judge
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.matching.verdicts import Judgement
from dupcheck.core.models import Fingerprint, HashPart, HashRecord, HashValue, Verdict
from dupcheck.core.pictures.pixels import (
    TRIM_TOLERANCE,
    channel_medians,
    cielab_ab,
    luma,
    off_colour,
    outer_ring,
    planar,
    ring_colour,
    trim_box,
    trim_uniform_border,
)
from dupcheck.core.stored import views_codec
from dupcheck.core.stored.views import Probe
from dupcheck_tools.samples import encode, product_image
from support.garments import hue_turned

LIMIT = 40_000_000
KEPT: dict[str, bytes] = {}  # entity id -> the picture kept beside its record, as a store keeps it


def record_of(pipeline: AlignedDualPHash, image: Image.Image, entity_id: str = "E") -> HashRecord:
    fp = pipeline.fingerprint(image, for_query=False)
    KEPT[entity_id] = fp.thumbnail
    return HashRecord(entity_id, "", "", fp.hash, fp.algo, features=dict(fp.features))


def kept_pictures(entity_ids: Sequence[str]) -> dict[str, bytes]:
    """What the service hands the judge: the candidates' kept pictures, for the same-photograph test."""
    return {e: KEPT[e] for e in entity_ids if e in KEPT}


def index_distance(query: Fingerprint, record: HashRecord) -> int:
    """What the index reports: the closest of the query's search hashes to the stored one."""
    return min(h - record.hash for h in query.search_hashes)


def judged_against(pipeline: HashPipeline, query: Fingerprint, record: HashRecord) -> Judgement:
    """The query judged against one record at the index's distance, with its kept picture."""
    return judge_candidates(pipeline, query, [(record, index_distance(query, record))], kept_pictures)[0]


def judged(original: Image.Image, copy: Image.Image) -> Judgement:
    pipeline = AlignedDualPHash()
    return judged_against(pipeline, pipeline.fingerprint(copy), record_of(pipeline, original))


def verdict(original: Image.Image, copy: Image.Image) -> tuple[Verdict, int]:
    judgement = judged(original, copy)
    return judgement.verdict, judgement.distance


# -- fixed hashes: if one of these changes, the pipeline changed and needs a new algo name --------


def test_default_pipeline_is_the_measured_one() -> None:
    assert DEFAULT_ALGO == "dualphash128-v5" and get_pipeline().index_bits == 128


@pytest.mark.parametrize(
    ("seed", "indexed", "mirrored"),
    [
        (7, "e5d99a24329367cce3929c6d3d92d249", "b08ccf7167c63299b6c7c93868c78738"),
        (8, "b867c798982765669867679898366567", "ed3292cdcd723033cd3232cdcd633037"),
    ],
)
def test_fixed_hashes_of_the_default_pipeline(seed: int, indexed: str, mirrored: str) -> None:
    fp = AlignedDualPHash().fingerprint_bytes(encode(product_image(seed)), max_pixels=LIMIT)
    assert (fp.hash.hex, fp.query_hashes[0].hex) == (indexed, mirrored)


def test_fixed_stored_views_of_the_default_pipeline() -> None:
    """The stored views are part of the pipeline's version: a change here needs a new name.

    Pinned as decoded values (and the header: finest step, two views), not as deflate's bytes,
    which may differ between zlib builds without changing what the record means."""
    views = AlignedDualPHash().fingerprint_bytes(encode(product_image(7)), max_pixels=LIMIT).features["views"]
    luma, chroma = views_codec.decode(views)
    assert views[:2] == bytes([0, 2]) and len(views) <= views_codec.MAX_BYTES
    assert hashlib.sha256(luma.tobytes() + chroma.tobytes()).hexdigest()[:16] == "91cb47c0896fdd89"


def test_fixed_hash_of_the_baseline() -> None:
    image = product_image(7)
    assert PHash64().fingerprint(image).hash.hex == "edd9922c96b267c0"


def _baseline_cases() -> list[Image.Image]:
    rng = np.random.default_rng(5)
    cases = [product_image(seed, (300, 200)) for seed in range(20)]
    cases += [Image.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)) for _ in range(10)]
    cases += [Image.new("RGB", (50, 50), colour) for colour in ((0, 0, 0), (255, 255, 255), (128, 30, 200))]
    return cases + [Image.new("L", (7, 3), 77), Image.new("RGB", (1, 1), (9, 9, 9))]


def test_the_deployed_baseline_is_imagehash_bit_for_bit_without_scipy() -> None:
    import imagehash  # a test and benchmark requirement only: the Lambda bundle leaves it out

    for image in _baseline_cases():
        assert imagehash_phash(image).hex == str(imagehash.phash(image)), image


def test_registering_skips_query_hashes_but_stores_the_same_hash() -> None:
    image = product_image(10)
    pipeline = AlignedDualPHash()
    for_query, for_store = pipeline.fingerprint(image), pipeline.fingerprint(image, for_query=False)
    assert for_store.query_hashes == () and len(for_query.query_hashes) == 3
    assert for_store.probe is None and for_query.probe is not None
    assert (for_store.hash, for_store.features) == (for_query.hash, for_query.features)


def test_same_bytes_same_fingerprint() -> None:
    data = encode(product_image(9, (900, 700)))
    pipeline = AlignedDualPHash()
    first, second = (pipeline.fingerprint_bytes(data, max_pixels=LIMIT) for _ in range(2))
    assert first == second


# -- invariants ------------------------------------------------------------------------------------


def _padded(image: Image.Image) -> Image.Image:
    side = max(image.size) + 120
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _framed(image: Image.Image) -> Image.Image:
    return ImageOps.expand(image, border=30, fill=(20, 90, 200))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    import io

    return Image.open(io.BytesIO(encode(image, "JPEG", quality=quality))).convert("RGB")


def _badge_over_corner(image: Image.Image) -> Image.Image:
    copy = image.copy()
    side = min(image.size) // 5
    ImageDraw.Draw(copy).rectangle((image.width - side - 6, 6, image.width - 6, 6 + side), fill=(230, 30, 30))
    return copy


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


COPIES = {
    "resize": lambda im: im.resize((im.width // 3, im.height // 3)),
    "jpeg q30": lambda im: _jpeg(im, 30),
    "rotate 1 degree": lambda im: im.rotate(1, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)),
    "mirror": ImageOps.mirror,
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.1),
    "less saturated": lambda im: ImageEnhance.Color(im).enhance(0.4),
    "coloured frame": _framed,
    "badge over a corner": _badge_over_corner,
    "small crop": lambda im: im.crop((12, 12, im.width - 12, im.height - 12)),
    "crop 12% per side": lambda im: _crop(im, 0.12, 0.12, 0.12, 0.12),
}
# Found first, not always called duplicates: these plain pictures hold too little fine detail for
# the same-photograph test, so their views decide, and these edits move them too much.
FOUND_FIRST = {
    "rotate 4 degrees on black": lambda im: im.rotate(-4, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0)),
    "much brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "more contrast": lambda im: ImageEnhance.Contrast(im).enhance(1.4),
    "padded to square": _padded,
    "crop 14% left, 3% right": lambda im: _crop(im, 0.14, 0.05, 0.03, 0.12),
}


@pytest.mark.parametrize("name", COPIES)
@pytest.mark.parametrize("seed", [21, 22])
def test_edited_copies_are_duplicates(name: str, seed: int) -> None:
    original = product_image(seed, (400, 320))
    judgement = judged(original, COPIES[name](original))
    assert judgement.verdict is Verdict.DUPLICATE, f"{name}: {judgement}"


@pytest.mark.parametrize("name", [*FOUND_FIRST, "crop 12% per side"])
@pytest.mark.parametrize("seed", [21, 22])
def test_heavier_edits_rank_first_and_only_they_can_be_duplicates(name: str, seed: int) -> None:
    pipeline = AlignedDualPHash()
    catalog = [record_of(pipeline, product_image(s, (400, 320)), f"E{s}") for s in (seed, *range(60, 66))]
    query = pipeline.fingerprint({**COPIES, **FOUND_FIRST}[name](product_image(seed, (400, 320))))
    judgements = judge_candidates(
        pipeline, query, [(record, index_distance(query, record)) for record in catalog], kept_pictures
    )
    ranked = sorted(
        zip(judgements, catalog, strict=True),
        key=lambda j: (-j[0].score, j[0].distance),  # as the service ranks
    )
    assert ranked[0][1].entity_id == f"E{seed}"
    assert ranked[0][0].verdict is not Verdict.SIMILAR  # nothing was recoloured
    assert all(j.verdict is not Verdict.DUPLICATE for j, _ in ranked[1:])


def test_a_copy_cropped_12_percent_per_side_is_closest_through_the_padded_query_hash() -> None:
    pipeline = AlignedDualPHash()
    original = Image.open(__import__("io").BytesIO(encode(product_image(31, (480, 360))))).convert("RGB")
    query = pipeline.fingerprint(_crop(original, 0.12, 0.12, 0.12, 0.12))
    stored = record_of(pipeline, original)
    padded_only = query.query_hashes[1:]  # the hashes taken with the crop padded back
    whole = lambda value: int(value.hex[:16], 16)  # noqa: E731 - the whole-picture half
    stored_whole = whole(stored.hash)
    plain = (whole(query.hash) ^ stored_whole).bit_count()
    padded = min((whole(v) ^ stored_whole).bit_count() for v in padded_only)
    assert padded < plain


def test_the_index_searches_both_halves_and_the_judge_screens_every_candidate_they_add() -> None:
    pipeline = AlignedDualPHash()
    value = record_of(pipeline, product_image(31, (400, 320))).hash
    assert [part.of(value) for part in pipeline.index_parts] == list(value.parts(2))
    assert [part.name for part in pipeline.index_parts] == ["whole", "trimmed"]
    policy = pipeline.policy
    added = len(pipeline.index_parts) * pipeline.part_pool
    assert pipeline.candidate_pool(5) + added == policy.screened + policy.by_part


def test_a_padded_record_behind_look_alikes_is_found_by_its_trimmed_half() -> None:
    """The catalog holds the padded copy; a crop of its photograph asks. More records are nearer
    to the crop by the whole hash and by the whole-picture half than the index returns, but the
    padded record's trimmed half is near the crop's halves (its photograph, whole)."""
    pipeline = AlignedDualPHash()
    original = product_image(31, (400, 320))
    padded = record_of(pipeline, _padded(original), "padded")
    query = pipeline.fingerprint(_crop(original, 0.12, 0.12, 0.12, 0.12))
    halves = pipeline.part_hashes(query)
    whole_half, trimmed_half = pipeline.index_parts

    def on(part: HashPart, value: HashValue) -> int:
        return min(part.of(value) - half for half in halves)

    rng = np.random.default_rng(5)
    decoys: list[HashRecord] = []
    while len(decoys) < pipeline.candidate_pool(5) + 8:  # more than the whole half's 8 of before
        bits = np.unpackbits(np.frombuffer(query.hash.data, dtype=np.uint8))
        bits[rng.choice(64, 2, replace=False)] ^= 1
        bits[64 + rng.choice(64, 10, replace=False)] ^= 1
        value = HashValue(np.packbits(bits).tobytes())
        if on(trimmed_half, value) > on(trimmed_half, padded.hash):
            decoys.append(HashRecord(f"d{len(decoys)}", "", "", value, pipeline.algo))
    assert max(index_distance(query, d) for d in decoys) < index_distance(query, padded)
    assert max(on(whole_half, d.hash) for d in decoys) < on(whole_half, padded.hash)

    def found(parts: tuple[HashPart, ...], part_k: int) -> set[str]:
        index = LocalHashIndex(pipeline.index_bits, parts=parts)
        index.upsert_many([padded, *decoys])
        hits = index.search(query.search_hashes, pipeline.candidate_pool(5), part_hashes=halves, part_k=part_k)
        return {hit.entity_id for hit in hits}

    assert "padded" in found(pipeline.index_parts, pipeline.part_pool)
    assert "padded" not in found((whole_half,), 8)  # the whole-picture half alone, as before


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_different_pictures_are_not_duplicates(seed: int) -> None:
    got, _ = verdict(product_image(seed), product_image(seed + 100))
    assert got is not Verdict.DUPLICATE


def test_a_quarter_turn_is_not_a_duplicate() -> None:
    original = product_image(24)
    got, _ = verdict(original, original.rotate(90, expand=True))
    assert got is not Verdict.DUPLICATE


def test_colour_variant_is_similar_not_duplicate_but_its_grayscale_copy_is_a_duplicate() -> None:
    red, blue = product_image(25, hue=0.0), product_image(25, hue=0.6)
    pipeline = AlignedDualPHash()
    red_record = record_of(pipeline, red)
    as_blue = judge_candidates(pipeline, pipeline.fingerprint(blue), [(red_record, 0)], kept_pictures)[0]
    assert as_blue.distance <= 4  # the hashes alone cannot tell them apart
    assert as_blue.verdict is Verdict.SIMILAR  # the kept picture can: the same picture, another colour
    assert as_blue.edits is not None and "recoloured" in {e.name for e in as_blue.edits}
    grey = pipeline.fingerprint(ImageOps.grayscale(red).convert("RGB"))
    assert judge_candidates(pipeline, grey, [(red_record, 0)], kept_pictures)[0].verdict is Verdict.DUPLICATE
    # Without its kept picture the views cannot show the colour variant is the same picture.
    assert judge_candidates(pipeline, pipeline.fingerprint(blue), [(red_record, 0)])[0].verdict is Verdict.DIFFERENT


def test_a_far_candidate_needs_stronger_evidence_than_a_near_one() -> None:
    """On its views alone (a record kept without its picture)."""
    pipeline = AlignedDualPHash()
    original = product_image(21, (400, 320))
    record = record_of(pipeline, original)
    query = pipeline.fingerprint(_padded(original))  # aligned, but a few percent of pixels still differ
    near, far = judge_candidates(pipeline, query, [(record, 0), (record, pipeline.policy.close_distance + 1)])
    assert (near.verdict, far.verdict) == (Verdict.DUPLICATE, Verdict.DIFFERENT)


def test_records_without_views_are_never_called_duplicates() -> None:
    pipeline = AlignedDualPHash()
    image = product_image(26)
    bare = HashRecord("E", "", "", pipeline.fingerprint(image).hash, pipeline.algo)
    judgement = judge_candidates(pipeline, pipeline.fingerprint(image), [(bare, 0)], kept_pictures)[0]
    # Its hashes agree, but nothing was lined up: nothing shows it is the same picture or product.
    assert judgement.verdict is Verdict.DIFFERENT and judgement.distance == 0 and judgement.edits is None


def test_only_as_many_candidates_as_verified_are_judged() -> None:
    pipeline = AlignedDualPHash()
    policy = pipeline.policy
    image = product_image(27)
    copy = pipeline.fingerprint(image.resize((400, 400)))  # not the record's own pixels, which need no look
    screened = policy.screened + policy.by_part  # the index's by the whole hash, then by each half
    # As many records of the photograph, each brightened a little more: one picture stored many
    # times would be judged once (judge._one_per_picture).
    records = [record_of(pipeline, ImageEnhance.Brightness(image).enhance(1 + k / 100), f"E{k}")
               for k in range(screened + 2)]  # fmt: skip
    assert len({tuple(r.features.items()) for r in records}) == len(records)
    judgements = judge_candidates(pipeline, copy, [(record, 0) for record in records])
    verdicts = [j.verdict for j in judgements]
    # Only `verified` of the screened ones are judged; the rest, and those past the screened
    # ones, are not shown to be anything.
    assert verdicts.count(Verdict.DUPLICATE) == policy.verified
    assert verdicts.count(Verdict.DIFFERENT) == screened + 2 - policy.verified
    assert verdicts[-2:] == [Verdict.DIFFERENT] * 2


def test_a_copy_behind_more_look_alikes_than_are_verified_is_still_found(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = AlignedDualPHash()
    original = product_image(28)
    others = [(record_of(pipeline, product_image(100 + i), f"O{i}"), 0) for i in range(pipeline.policy.verified)]
    query = pipeline.fingerprint(_crop(original, 0.08, 0.05, 0.1, 0.06))
    found: list = []
    monkeypatch.setattr(
        judge, "verify", lambda *args, **kwargs: found.extend(alignment.verify(*args, **kwargs)) or found
    )
    candidates = [*others, (record_of(pipeline, original), 20)]
    judgements = judge_candidates(pipeline, query, candidates)
    assert judgements[-1].verdict is Verdict.DUPLICATE
    # No more judged than that and the nearest by the distance judged (the index's order, which
    # puts the look-alikes first, does not choose it).
    assert sum(e is not None for e in found) <= pipeline.policy.verified + 1
    closest = judge._closest_halves(query, [record for record, _ in candidates])
    assert found[closest.index(min(closest))] is not None


def test_candidate_pool_covers_the_screened_candidates() -> None:
    pipeline = AlignedDualPHash()
    assert pipeline.candidate_pool(5) == pipeline.policy.screened == 32 and pipeline.candidate_pool(80) == 80
    assert PHash64().candidate_pool(5) == 5


def test_the_baseline_judges_on_distance_alone() -> None:
    pipeline = PHash64()
    fp = pipeline.fingerprint(product_image(7))
    record = HashRecord("E", "", "", fp.hash, pipeline.algo)
    got = [j.verdict for j in judge_candidates(pipeline, fp, [(record, 0), (record, 8), (record, 20)])]
    assert got == [Verdict.DUPLICATE, Verdict.SIMILAR, Verdict.DIFFERENT]


# -- building blocks -------------------------------------------------------------------------------


def test_dct_matches_scipy() -> None:
    from scipy.fft import dctn

    from dupcheck.core.pictures.pixels import dct_matrix

    x = np.random.default_rng(0).random((32, 32))
    matrix = dct_matrix(32)
    assert np.allclose(matrix @ x @ matrix.T, dctn(x, norm="ortho"))
    assert dct_hash(x * 255).shape == (64,)


@pytest.mark.parametrize(
    ("rgb", "a_b"),
    # Reference sRGB (D65) -> CIELAB values.
    [
        ((255, 0, 0), (80.11, 67.22)),
        ((0, 255, 0), (-86.18, 83.18)),
        ((0, 0, 255), (79.19, -107.86)),
        ((255, 255, 255), (0.0, 0.0)),
        ((128, 128, 128), (0.0, 0.0)),
    ],
)
def test_cielab_matches_reference_values(rgb: tuple[int, int, int], a_b: tuple[float, float]) -> None:
    a_star, b_star = cielab_ab(np.array([[rgb]], dtype=np.uint8))
    assert a_star[0, 0] == pytest.approx(a_b[0], abs=0.5) and b_star[0, 0] == pytest.approx(a_b[1], abs=0.5)


def test_trim_removes_padding_but_not_for_a_corner_badge() -> None:
    subject = np.asarray(product_image(27, (200, 160)))
    padded = np.full((300, 300, 3), 255, np.uint8)
    padded[70:230, 50:250] = subject
    trimmed = trim_uniform_border(padded)
    assert trimmed.shape[0] <= 160 and trimmed.shape[1] <= 200
    badged = padded.copy()
    badged[5:21, 5:21] = (230, 30, 30)  # a sticker in the padding, under 15% of the subject's size
    assert trim_uniform_border(badged).shape == trimmed.shape


def test_photo_without_uniform_border_is_left_alone() -> None:
    noise = np.random.default_rng(2).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    assert trim_uniform_border(noise).shape == noise.shape


@pytest.mark.parametrize("background", [0.0, 0.5, 20.0, 31.5, 32.0, 32.5, 127.5, 200.0, 222.5, 223.0, 254.5, 255.0])
def test_off_colour_pixels_are_those_beyond_the_tolerance(background: float) -> None:
    """The trim compares 8-bit pixels with whole-number bounds (a ring's median can end in .5):
    the same pixels as comparing their values with the float bounds, at both ends of 0-255."""
    values = np.arange(256, dtype=np.uint8)
    rgb = np.stack([values, np.full(256, 128, np.uint8), np.full(256, 128, np.uint8)], axis=-1)[None]
    expected = (values < background - TRIM_TOLERANCE) | (values > background + TRIM_TOLERANCE)
    off = off_colour(rgb, np.array([background, 128.0, 128.0]))
    assert off[0].tolist() == expected.tolist()


def _pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    near_white = [rng.integers(200, 256, (h, w, 3), dtype=np.uint8) for h, w in ((160, 129), (37, 160), (5, 4))]
    return [*near_white, rng.integers(0, 256, (1, 1, 3), dtype=np.uint8), np.asarray(product_image(12, (160, 120)))]


def test_the_fast_pixel_steps_give_the_plain_formulas_numbers() -> None:
    """Stored hashes and views must not move when a step gets faster: each one against the
    formula it replaced, exactly."""
    for rgb in _pictures():
        fast = planar(rgb)
        assert fast.shape == rgb.shape and np.array_equal(fast, rgb)
        for dtype in (np.float64, np.float32):
            plain = rgb.astype(dtype)
            expected = plain[..., 0] * 0.299 + plain[..., 1] * 0.587 + plain[..., 2] * 0.114
            assert luma(fast, dtype).dtype == dtype and np.array_equal(luma(fast, dtype), expected)
        ring = outer_ring(rgb).astype(np.int16)
        for values in (ring, ring[:-1]):  # an even and an odd count
            assert np.array_equal(channel_medians(values.T), np.median(values, axis=0))
        background, share = ring_colour(fast)
        assert np.array_equal(background, np.median(ring, axis=0))
        assert share == (np.abs(ring - background).max(axis=1) <= TRIM_TOLERANCE).mean()
        gray = luma(rgb)
        weight = np.outer(np.hanning(gray.shape[0] + 2)[1:-1], np.hanning(gray.shape[1] + 2)[1:-1])
        assert np.array_equal(centre_weighted(gray), gray * weight + gray.mean() * (1.0 - weight))
    pixels = np.random.default_rng(3).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    pixels[0, 0, :3] = [[0, 0, 0], [10, 10, 10], [255, 255, 255]]  # below and above the sRGB toe
    linear = pixels.astype(np.float64) / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), xyz * (24389 / 27 / 116) + 16 / 116)
    a_star, b_star = cielab_ab(pixels)
    assert np.array_equal(a_star, 500.0 * (f[..., 0] - f[..., 1]))
    assert np.array_equal(b_star, 200.0 * (f[..., 1] - f[..., 2]))


def test_fingerprint_leaves_the_callers_picture_alone() -> None:
    image = product_image(31, (640, 480))
    before = image.tobytes()
    AlignedDualPHash().fingerprint(image)
    assert image.size == (640, 480) and image.tobytes() == before


def test_trim_sees_through_a_blended_line_between_padding_and_a_white_margin() -> None:
    shot = product_image(29, (400, 320))  # a product on its own white margin
    canvas = Image.new("RGB", (420, 420), (0, 0, 0))  # padded to square in black
    canvas.paste(shot, (7, 57))  # odd offsets: resampling blends black and white at the seam
    work = canvas.resize((160, 160), Image.Resampling.BILINEAR)
    alone = shot.resize((round(400 * 160 / 420), round(320 * 160 / 420)), Image.Resampling.BILINEAR)
    padded_box, alone_box = (trim_uniform_border(np.asarray(im)).shape[:2] for im in (work, alone))
    assert abs(padded_box[0] - alone_box[0]) <= 2 and abs(padded_box[1] - alone_box[1]) <= 2


def test_trim_takes_padding_and_then_a_frame_through_the_line_they_blend_into() -> None:
    """Padding around a frame: resampling blends the two borders into a line uniform in a colour
    of neither; it is not a border of its own, and the frame within it is trimmed next."""
    picture = np.asarray(product_image(30, (300, 220)).convert("RGB"))
    framed = ImageOps.expand(Image.fromarray(picture), border=20, fill=(60, 50, 10))
    canvas = Image.new("RGB", (430, 430), (255, 255, 255))
    canvas.paste(framed, (45, 63))  # odd offsets: the seam falls between working pixels
    work = np.asarray(canvas.resize((160, 160), Image.Resampling.BILINEAR))
    alone = np.asarray(Image.fromarray(picture).resize((round(300 * 160 / 430), round(220 * 160 / 430))))
    top, bottom, left, right = trim_box(work)
    assert abs((bottom - top) - trim_uniform_border(alone).shape[0]) <= 2
    assert abs((right - left) - trim_uniform_border(alone).shape[1]) <= 2


def test_the_deployed_code_never_imports_the_baseline_packages() -> None:
    """The Lambda bundle leaves out imagehash, scipy and PyWavelets (infra/bundling.py): no
    handler, pipeline or verification step may import them."""
    import os
    import subprocess
    import sys

    code = """
import sys
import dupcheck.handlers.find_similar, dupcheck.handlers.stream_sync
from dupcheck.core.fingerprint.hashing import PIPELINES
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.models import HashRecord
from dupcheck_tools.samples import encode, product_image
data = encode(product_image(3))
for pipeline in (cls() for cls in PIPELINES.values()):
    fp = pipeline.fingerprint_bytes(data, max_pixels=10**7)
    record = HashRecord("E", "", "", fp.hash, fp.algo, features=dict(fp.features))
    judge_candidates(pipeline, fp, [(record, 0)])
loaded = sorted(m for m in ("imagehash", "scipy", "pywt") if m in sys.modules)
assert not loaded, loaded
"""
    env = {**os.environ, "DUPCHECK_STORE": "dynamodb", "DUPCHECK_INDEX": "opensearch",
           "DUPCHECK_TABLE_NAME": "t", "DUPCHECK_OPENSEARCH_ENDPOINT": "search-x.us-east-1.es.amazonaws.com",
           "POWERTOOLS_TRACE_DISABLED": "true"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# -- a stored record as a query (the catalog-wide duplicate report) --------------------------------


def _stored_judgement(pipeline: AlignedDualPHash, query_record: HashRecord, record: HashRecord) -> Judgement:
    codes, usable = pipeline.stored_query_codes([query_record])
    assert usable.tolist() == [True]
    query = pipeline.stored_query(query_record, tuple(HashValue(bytes(code)) for code in codes[0]))
    assert query is not None
    return judge_candidates(pipeline, query, [(record, index_distance(query, record))])[0]


@pytest.mark.parametrize(
    "name", ["resize", "mirror", "grayscale", "coloured frame", "badge over a corner", "small crop"]
)
def test_a_stored_record_is_judged_as_the_picture_it_was_made_from_would_be(name: str) -> None:
    pipeline = AlignedDualPHash()
    original = product_image(21, (400, 320))
    copy = COPIES[name](original)
    copy_record, original_record = record_of(pipeline, copy, "copy"), record_of(pipeline, original, "original")

    from_record = _stored_judgement(pipeline, copy_record, original_record)

    assert from_record.verdict is judged(original, copy).verdict is Verdict.DUPLICATE
    other = record_of(pipeline, product_image(121, (400, 320)), "other")
    assert _stored_judgement(pipeline, copy_record, other).verdict is not Verdict.DUPLICATE


def test_stored_query_codes_reach_a_mirrored_copy_as_the_pictures_own_mirrored_hash_does() -> None:
    pipeline = AlignedDualPHash()
    original = product_image(26, (400, 320))
    original_record, mirrored_record = record_of(pipeline, original), record_of(pipeline, ImageOps.mirror(original))
    codes, _ = pipeline.stored_query_codes([original_record])
    from_record = HashValue(bytes(codes[0][0]))  # the mirrored pair
    from_picture = pipeline.fingerprint(original).query_hashes[0]

    def closer_half(a: HashValue, b: HashValue) -> int:
        return min(x - y for x, y in zip(a.parts(2), b.parts(2), strict=True))

    assert closer_half(original_record.hash, mirrored_record.hash) > 12  # not found without it
    assert closer_half(from_record, mirrored_record.hash) <= closer_half(from_picture, mirrored_record.hash) + 2 <= 6


def test_records_without_usable_views_give_no_stored_query() -> None:
    pipeline = AlignedDualPHash()
    good = record_of(pipeline, product_image(27))
    damaged = HashRecord("d", "", "", good.hash, good.hash_algo, features={"views": b"\x00garbage"})
    bare = HashRecord("b", "", "", good.hash, good.hash_algo)
    codes, usable = pipeline.stored_query_codes([good, damaged, bare])
    assert usable.tolist() == [True, False, False]
    assert codes.shape == (3, 3, 16) and not codes[1:].any()
    assert pipeline.stored_query(damaged, ()) is None and pipeline.stored_query(bare, ()) is None


def test_the_baseline_queries_a_stored_record_by_its_hash_alone() -> None:
    pipeline = PHash64()
    fp = pipeline.fingerprint(product_image(28))
    record = HashRecord("p", "", "", fp.hash, fp.algo)
    codes, usable = pipeline.stored_query_codes([record])
    assert codes.shape == (1, 0, 8) and usable.tolist() == [True]
    query = pipeline.stored_query(record, ())
    assert query is not None and query.search_hashes == (record.hash,)


def _model_shot(top_tint: float = 1.0, turn: float = 0.0, face: bool = True) -> Image.Image:
    """A face (or none) above a faintly green top with folds and grain, on white (320x400); the
    top's tint (its offset from its own grey) scaled by `top_tint`, as a shop fades one
    garment's colour, and turned `turn` degrees about the grey axis, as a shop nudges its hue."""
    rng = np.random.default_rng(3)
    rgb = np.full((400, 320, 3), 250.0)
    ys, xs = np.mgrid[:400, :320]
    folds = 12.0 * np.sin(xs / 9.0 + ys / 23.0)[..., None] + rng.normal(0, 5, (400, 320, 1))
    top = (ys > 130) & (ys < 380) & (xs > 50) & (xs < 270)
    if face:
        head = (ys - 70) ** 2 / 55**2 + (xs - 160) ** 2 / 42**2 < 1
        rgb[head] = (np.array([205.0, 150.0, 120.0]) + folds / 3)[head]
    green = np.array([125.0, 145.0, 130.0]) + folds
    grey = (green @ np.array([0.299, 0.587, 0.114]))[..., None]
    rgb[top] = (grey + hue_turned(top_tint * (green - grey), turn))[top]
    return Image.fromarray(np.round(np.clip(rgb, 0, 255)).astype(np.uint8))


def test_a_faintly_faded_garment_is_told_from_a_fine_jpeg_not_from_a_coarse_one() -> None:
    """The top's faint green halved, the face as it was: no saturation edit of the whole picture
    does that, and a JPEG at quality 92 keeps colours to a level or two, so it is `similar`. At
    quality 50 (a chroma step of 17) a JPEG can move faint colours as much by itself: the same
    query is then no evidence of another colour, and the photograph itself stays a duplicate."""
    pipeline = AlignedDualPHash()
    record = record_of(pipeline, _model_shot())

    def verdict_of(picture: Image.Image, quality: int) -> Verdict:
        query = pipeline.fingerprint_bytes(encode(picture, "JPEG", quality=quality), max_pixels=LIMIT)
        assert isinstance(query.probe, Probe) and query.probe.colours_kept is (quality >= 75)
        return judged_against(pipeline, query, record).verdict

    faded = _model_shot(top_tint=0.5)
    assert verdict_of(faded, 92) is Verdict.SIMILAR
    assert verdict_of(faded, 50) is Verdict.DUPLICATE
    assert verdict_of(_model_shot(), 50) is Verdict.DUPLICATE
    assert verdict_of(_model_shot(), 92) is Verdict.DUPLICATE


def _striped_top(seed: int, colour: tuple[float, float, float], period: int) -> Image.Image:
    """A model in a top striped `colour` and white, a stripe every `period` px at 480 x 640:
    at a thumbnail's size each stripe is a pixel or two, which resampling and the JPEG's
    half-resolution colour mix with the next."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:640, 0:480]
    rgb = np.full((640, 480, 3), 255.0)
    folds = rng.normal(0, 4, (640, 480))
    head = ((xs - 240) / 55) ** 2 + ((ys - 110) / 70) ** 2 < 1
    rgb[head] = np.array([205.0, 150.0, 120.0]) + folds[head][:, None] / 2
    body = ((xs - 240) / 150) ** 2 + ((ys - 380) / 230) ** 2 < 1
    stripes = np.sin(2 * np.pi * (ys + 3 * np.sin(xs / 40)) / period) > 0
    cloth = np.where(stripes[..., None], np.array(colour), np.array([240.0, 240.0, 245.0])) + folds[..., None]
    rgb[body] = cloth[body]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))


@pytest.mark.parametrize(
    ("seed", "colour", "period"),
    [(0, (220.0, 60.0, 60.0), 14), (1, (70.0, 110.0, 225.0), 14), (2, (40.0, 160.0, 80.0), 16)],
    ids=["red", "blue", "green"],
)
def test_a_thumbnails_colours_are_compared_over_its_own_colour_samples(
    seed: int, colour: tuple[float, float, float], period: int
) -> None:
    """A thumbnail of a striped top (140 px, JPEG 85) is the photograph, not another colour of it:
    where the thumbnail holds each compared pixel once, a colour cell spans two of its JPEG's
    colour samples each way, over which its stripes mix as the kept picture's do."""
    pipeline = AlignedDualPHash()
    shot = _striped_top(seed, colour, period)
    record = record_of(pipeline, shot)
    thumbnail = shot.copy()
    thumbnail.thumbnail((140, 140), Image.Resampling.LANCZOS)
    query = pipeline.fingerprint_bytes(encode(thumbnail, "JPEG", quality=85), max_pixels=LIMIT)
    judgement = judged_against(pipeline, query, record)
    assert judgement.verdict is Verdict.DUPLICATE, judgement


@pytest.mark.parametrize("side", [120, 200])
def test_a_faintly_faded_garment_is_told_from_its_thumbnail_too(side: int) -> None:
    """Coarser cells on a thumbnail still hold a faded top's tint: `similar`."""
    pipeline = AlignedDualPHash()
    record = record_of(pipeline, _model_shot())
    thumbnail = _model_shot(top_tint=0.5)
    thumbnail.thumbnail((side, side), Image.Resampling.LANCZOS)
    query = pipeline.fingerprint_bytes(encode(thumbnail, "JPEG", quality=92), max_pixels=LIMIT)
    assert judged_against(pipeline, query, record).verdict is Verdict.SIMILAR


def test_a_garment_alone_whose_hue_turned_faintly_is_similar_from_a_fine_jpeg() -> None:
    """No face: the top's faint green turned 30 degrees, within what one edit is allowed per
    pixel. No edit of the whole picture turns a tint, so from a JPEG at quality 92 it is
    `similar`; at quality 50 a JPEG can move faint colours as much, and it stays a duplicate."""
    pipeline = AlignedDualPHash()
    record = record_of(pipeline, _model_shot(face=False))
    for quality, expected in ((92, Verdict.SIMILAR), (50, Verdict.DUPLICATE)):
        picture = encode(_model_shot(turn=30.0, face=False), "JPEG", quality=quality)
        query = pipeline.fingerprint_bytes(picture, max_pixels=LIMIT)
        assert judged_against(pipeline, query, record).verdict is expected
    query = pipeline.fingerprint_bytes(encode(_model_shot(face=False), "JPEG", quality=92), max_pixels=LIMIT)
    judgement = judged_against(pipeline, query, record)
    assert judgement.verdict is Verdict.DUPLICATE


def test_a_catalog_picture_from_a_coarse_jpeg_is_no_reference_for_a_faint_colour() -> None:
    """Registered from a JPEG at quality 50 (a chroma step of 17), the catalog picture's faint
    colours may have moved as much as a fade moves them: the faded top, asked about from a fine
    JPEG, is not shown to be another colour, and the fine original stays a duplicate."""
    pipeline = AlignedDualPHash()
    coarse = pipeline.fingerprint_bytes(encode(_model_shot(), "JPEG", quality=50), max_pixels=LIMIT, for_query=False)
    KEPT["coarse"] = coarse.thumbnail
    record = HashRecord("coarse", "", "", coarse.hash, coarse.algo, features=dict(coarse.features))
    for picture, expected in ((_model_shot(top_tint=0.5), Verdict.DUPLICATE), (_model_shot(), Verdict.DUPLICATE)):
        query = pipeline.fingerprint_bytes(encode(picture, "JPEG", quality=92), max_pixels=LIMIT)
        judgement = judged_against(pipeline, query, record)
        assert judgement.verdict is expected
