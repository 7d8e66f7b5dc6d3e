"""Aligned verification: its building blocks against brute force, and what it tells apart."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dupcheck.core.fingerprint.hashing import AlignedDualPHash
from dupcheck.core.limits.policy import GREY_CHROMA, LAYOUT_BITS, RANK_STEP, TURN_SPREAD, Thresholds, Tier
from dupcheck.core.matching import alignment
from dupcheck.core.matching.alignment import Alignment, Evidence, verify
from dupcheck.core.models import HashValue
from dupcheck.core.pictures import arrays
from dupcheck.core.pictures.pixels import bright_srgb, brightened_ab, cielab_ab, luma
from dupcheck.core.stored import views_codec
from dupcheck.core.stored.views import WHOLE, Probe, Views, _unturned_box, greyish, views_of
from dupcheck_tools.samples import encode, product_image
from support.fakes import raw_views

PIPELINE = AlignedDualPHash()


def rgb_of(image: Image.Image) -> np.ndarray:
    """The working copy the pipeline verifies (<= 160 px)."""
    copy = image.convert("RGB")
    copy.thumbnail((PIPELINE.work_size, PIPELINE.work_size), Image.Resampling.BILINEAR)
    return np.asarray(copy)


def evidence(original: Image.Image, copy: Image.Image, tier: Tier = PIPELINE.policy.near) -> Evidence:
    stored = Views.decode(views_of(rgb_of(original)).encode())
    assert stored is not None
    return verify(Probe(rgb_of(copy)), [stored], [tier])[0]


# -- building blocks -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "width"), [(0.0, 1.0), (0.1, 0.72), (0.28, 0.72), (0.05, 0.9)])
def test_sampler_rows_are_weights_inside_the_window(start: float, width: float) -> None:
    matrix = arrays.sampler(32, 24, start, width)
    assert np.allclose(matrix.sum(axis=1), 1.0)
    ramp = np.arange(32, dtype=np.float32) + 0.5  # cell centres, in cells
    sampled = matrix @ ramp / 32  # in unit lengths
    assert sampled.min() >= start - 1 / 32 and sampled.max() <= start + width + 1 / 32


def test_samplers_built_together_are_each_window_s_sampler() -> None:
    """The edits' border search builds hundreds of windows off the lattice at once: the same
    numbers, bit for bit, as one at a time (the lattice's, clipped ends, arbitrary ones)."""
    rng = np.random.default_rng(5)
    windows = [*alignment._windows(), (0.0, 1.0), (0.97, 0.2), (-0.05, 0.5)]
    windows += [(float(s), float(w)) for s, w in zip(rng.random(300) * 0.6, 0.2 + rng.random(300) * 0.8, strict=True)]
    for n_in, n_out in ((32, 24), (16, 24), (16, 8)):
        together = arrays.samplers(n_in, n_out, windows)
        alone = np.stack([arrays.sampler(n_in, n_out, *window) for window in windows])
        assert together.dtype == alone.dtype and np.array_equal(together, alone)
    assert arrays.samplers(32, 24, []).shape == (0, 24, 32)


def test_window_norms_kept_for_another_query_give_the_same_correlations() -> None:
    """A turned candidate's coarse windows are kept across its turns: the scores are those of
    the full computation, for every query."""
    rng = np.random.default_rng(4)
    lumas = (rng.random((1, 2, 32, 32)) * 255).astype(np.float32)
    windows = alignment._coarse_windows(lumas)
    for seed in range(3):
        query = Probe(rgb_of(product_image(seed, (200, 160)))).at(0.0)
        assert np.array_equal(alignment._coarse_scores(lumas, query, windows), alignment._coarse_scores(lumas, query))


@pytest.mark.parametrize(("pictures", "channels"), [(1, 1), (1, 2), (4, 2), (5, 2), (12, 1), (20, 2)])
def test_the_tolerant_residual_is_the_least_distance_to_a_one_pixel_shift(pictures: int, channels: int) -> None:
    """Both ways of taking the nine shifts (together for a few pictures, one at a time for many)
    give each pixel's least distance, the channels summed in order, bit for bit."""
    rng = np.random.default_rng(pictures * 10 + channels)
    query = (rng.random((pictures, channels, 24, 24)) * 255).astype(np.float32)
    fitted = (rng.random((pictures, channels, 24, 24)) * 255).astype(np.float32)
    padded = np.pad(fitted, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    sums = []
    for dy in range(3):
        for dx in range(3):
            squared = (query - padded[:, :, dy : dy + 24, dx : dx + 24]) ** 2
            total = squared[:, 0].copy()
            for channel in range(1, channels):
                total += squared[:, channel]
            sums.append(total)
    assert np.array_equal(alignment._tolerant_residual(query, fitted), np.sqrt(np.min(sums, axis=0)))


def test_window_correlations_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    grids = rng.random((3, 2, 16, 16)).astype(np.float32)
    queries = arrays.unit(rng.random((4, 8, 8)).astype(np.float32))
    rows = alignment._coarse_sampler()
    got = alignment._window_correlations(rows, rows, grids, queries, 8)
    assert got.shape == (3, 2, len(rows), len(rows), 4)
    for n, v, a, b in [(0, 0, 0, 0), (1, 1, 5, 9), (2, 0, len(rows) - 1, 3)]:
        block = arrays.unit(rows[a] @ grids[n, v] @ rows[b].T)
        want = [(block * q).sum() for q in queries]
        assert np.allclose(got[n, v, a, b], want, atol=1e-4)


def test_views_survive_encoding_close_to_what_they_were() -> None:
    views = views_of(rgb_of(product_image(3)))
    encoded = views.encode()
    decoded = Views.decode(encoded)
    assert decoded is not None and len(encoded) <= views_codec.MAX_BYTES
    assert decoded.luma.shape == (2, 32, 32) and decoded.chroma.shape == (2, 2, 16, 16)
    # Lossy like JPEG: a few levels on average, against verification's tolerances of 20 and 12.
    assert np.abs(decoded.luma - views.luma).mean() <= 6 and np.abs(decoded.chroma - views.chroma).mean() <= 3


@pytest.mark.parametrize("data", [b"", b"not views", b"\x00\x02" + b"\x00" * 100])
def test_bytes_that_are_not_views_decode_to_none(data: bytes) -> None:
    assert Views.decode(data) is None
    good = views_of(rgb_of(product_image(3))).encode()
    # One damaged record among good ones costs only its own views.
    decoded = Views.decode_many([good, data, good])
    assert decoded[1] is None and decoded[0] is not None and decoded[2] is not None


def test_views_of_dualphash128_v2_records_are_read_raw() -> None:
    views = views_of(rgb_of(product_image(3)))
    raw = raw_views(views)
    old = Views.from_raw(raw)
    assert old is not None and np.abs(old.luma - views.luma).max() <= 0.5
    assert Views.from_raw(raw[:-1]) is None


def test_thresholds_need_every_signal() -> None:
    limits = Thresholds(0.8, max_luma_off=0.05, max_colour_off=0.02, max_layout_off=4, max_colour_missing=0.003)
    assert limits.passes(Evidence(0.9, 0.01, 0.0, 4, colour_missing=0.003))
    assert not limits.passes(Evidence(0.7, 0.01, 0.0, 4))
    assert not limits.passes(Evidence(0.9, 0.06, 0.0, 4))
    assert not limits.passes(Evidence(0.9, 0.01, 0.03, 4))
    assert not limits.passes(Evidence(0.9, 0.01, 0.0, 6))
    assert not limits.passes(Evidence(0.9, 0.01, 0.0, 4, colour_missing=0.004))


def test_thresholds_that_need_colour_refuse_a_grayscale_query() -> None:
    seen, unseen = Evidence(0.99, 0.0, 0.0, 0, colour_seen=True), Evidence(0.99, 0.0, 0.0, 0, colour_seen=False)
    needs = Thresholds(0.9, 0.05, 0.02, needs_colour=True)
    assert needs.passes(seen) and not needs.passes(unseen)
    assert Thresholds(0.9, 0.05, 0.02).passes(unseen)


def test_a_tier_passes_when_any_of_its_thresholds_does() -> None:
    strict, alike = Thresholds(0.85, 0.01, 0.01), Thresholds(0.95, 0.08, 0.03, max_layout_off=6)
    tier = Tier(strict, alike)
    assert tier.passes(Evidence(0.86, 0.005, 0.0, 20))  # the strict one
    assert tier.passes(Evidence(0.97, 0.05, 0.02, 6))  # the other
    assert not tier.passes(Evidence(0.97, 0.05, 0.02, 8))  # neither
    assert tier.max_colour_off == 0.03


def test_colour_is_open_when_everything_but_colour_passes() -> None:
    """open_on_colour: the evidence meets every threshold but colour's, whatever its colour."""
    limits = Thresholds(0.8, max_luma_off=0.05, max_colour_off=0.02, max_layout_off=4, needs_colour=True)
    assert limits.open_on_colour(Evidence(0.9, 0.01, 0.5, 4, colour_missing=0.5))  # colour decides: fails
    assert not limits.open_on_colour(Evidence(0.7, 0.01, 0.0, 4))
    assert not limits.open_on_colour(Evidence(0.9, 0.06, 0.0, 4))
    assert not limits.open_on_colour(Evidence(0.9, 0.01, 0.0, 5))
    assert not limits.open_on_colour(Evidence(0.9, 0.01, 0.0, 4, colour_seen=False))
    tier = Tier(Thresholds(0.85, 0.01, 0.01), Thresholds(0.95, 0.08, 0.03, max_layout_off=6))
    assert tier.open_on_colour(Evidence(0.97, 0.05, 0.9, 6)) and not tier.open_on_colour(Evidence(0.97, 0.05, 0.0, 8))


def test_colour_left_unbrightened_only_where_no_verdict_score_or_edit_reads_it() -> None:
    """verify(colour_shown=...) tries a brighter query's brightened colours only on evidence whose
    colour can decide its target or is shown: that evidence is what trying all of them gives,
    and the rest was left as it was (cheaper), never passing where it did not."""
    original = product_image(23, (400, 320))
    query = Probe(rgb_of(ImageEnhance.Brightness(original).enhance(1.3)))
    covered = original.copy()
    ImageDraw.Draw(covered).rectangle((150, 120, 260, 210), fill=(20, 20, 20))  # luma off: no pass
    candidates = [
        views_of(rgb_of(picture))
        for picture in (original, covered, ImageEnhance.Contrast(original).enhance(0.6), product_image(24, (400, 320)))
    ]
    targets = [PIPELINE.policy.near] + [PIPELINE.policy.far] * 3  # the copy passes: nothing is turned
    shown = lambda evidence: evidence.similarity >= 0.97  # noqa: E731 - what the caller shows
    every = verify(query, candidates, targets)
    cheaper = verify(query, candidates, targets, colour_shown=shown)
    fields = ("similarity", "luma_off", "colour_off", "colour_missing", "layout_off", "colour_seen")
    left = 0
    for target, a, b in zip(targets, every, cheaper, strict=True):
        assert a is not None and b is not None
        assert target.passes(a) == target.passes(b)
        if target.open_on_colour(b) or shown(b):
            assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        else:
            left += [getattr(a, f) for f in fields] != [getattr(b, f) for f in fields]
    assert targets[0].passes(every[0]) and left >= 1


def test_layout_bits_ignore_brightness_and_contrast_not_structure() -> None:
    picture = arrays.unit(np.random.default_rng(5).random((1, 24, 24)).astype(np.float32)) * 300 + 120
    bits = alignment._layout(picture)
    assert bits.shape == (1, LAYOUT_BITS) and bits.sum() == LAYOUT_BITS // 2  # split at the median
    assert (alignment._layout(picture * 0.6 + 40) == bits).all()
    assert (alignment._layout(picture[:, :, ::-1]) != bits).sum() > 10


# -- what it tells apart ---------------------------------------------------------------------------


def test_a_crop_is_aligned_with_the_window_it_was_cut_from() -> None:
    original = product_image(41, (480, 360))
    w, h = original.size
    cropped = original.crop((round(w * 0.16), round(h * 0.04), round(w * 0.97), round(h * 0.86)))
    found = evidence(original, cropped)
    assert found.similarity >= 0.97 and found.luma_off <= 0.01
    # Unaligned, the same crop compares far worse: the search is what finds it.
    unaligned = float(
        (arrays.unit(views_of(rgb_of(cropped)).luma[0]) * arrays.unit(views_of(rgb_of(original)).luma[0])).sum()
    )
    assert unaligned < found.similarity - 0.1


def test_a_big_crop_keeps_its_layout_another_product_on_the_same_model_does_not() -> None:
    original = product_image(21, (400, 320))
    w, h = original.size
    cropped = original.crop((round(w * 0.14), round(h * 0.02), round(w * 0.98), round(h * 0.86)))
    lookalike = original.copy()  # the same shot, another product below the waist
    lookalike.paste(product_image(121, (400, 320)).crop((0, h // 2, w, h)), (0, h // 2))
    copy, other = evidence(original, cropped, PIPELINE.policy.far), evidence(original, lookalike, PIPELINE.policy.far)
    # Resampling the crop leaves more pixels off than the strict threshold allows; the layout
    # and the similarity are what let it pass.
    assert copy.luma_off > PIPELINE.policy.far.options[0].max_luma_off and copy.layout_off <= 6
    assert PIPELINE.policy.far.passes(copy)
    assert other.layout_off >= 12 and not PIPELINE.policy.far.passes(other)


def test_a_different_picture_does_not_align() -> None:
    found = evidence(product_image(42), product_image(43))
    assert not PIPELINE.policy.near.passes(found)


@pytest.mark.parametrize("seed", [21, 22, 24])
def test_another_colour_differs_in_colour_only(seed: int) -> None:
    found = evidence(product_image(seed, hue=0.1), product_image(seed, hue=0.6))
    assert found.similarity >= 0.95 and found.colour_off > 0.2


def shorts(band: tuple[int, int, int], badge: bool = False) -> Image.Image:
    """Navy shorts on white with a waistband 3% of the picture high, in `band`; optionally an
    opaque red badge on the background's corner."""
    image = Image.new("RGB", (480, 480), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((140, 150, 340, 330), fill=(30, 30, 70))
    draw.rectangle((150, 330, 230, 430), fill=(225, 190, 160))  # legs
    draw.rectangle((250, 330, 330, 430), fill=(225, 190, 160))
    draw.rectangle((140, 136, 340, 150), fill=band)
    draw.rectangle((140, 40, 340, 136), fill=(225, 190, 160))  # skin above the waistband
    if badge:
        draw.ellipse((10, 10, 90, 90), fill=(220, 20, 40))
    return image


def test_a_recoloured_waistband_is_colour_the_query_lacks() -> None:
    original = shorts((250, 200, 0))
    variant = evidence(original, shorts((0, 120, 220)))
    assert variant.colour_missing > PIPELINE.policy.near.options[0].max_colour_missing
    assert not PIPELINE.policy.near.passes(variant)
    copy = evidence(original, Image.open(io.BytesIO(encode(original.resize((360, 360)), "JPEG", quality=60))))
    assert copy.colour_missing == 0.0 and PIPELINE.policy.near.passes(copy)


def test_a_badge_over_the_background_is_not_a_recoloured_product() -> None:
    found = evidence(shorts((250, 200, 0)), shorts((250, 200, 0), badge=True))
    assert found.colour_missing == 0.0 and PIPELINE.policy.near.passes(found)


def test_the_product_is_what_is_off_a_plain_background_inside_its_outline() -> None:
    views = views_of(rgb_of(shorts((250, 200, 0))))
    luma = arrays.sampler(32, 24, 0.0, 1.0) @ views.luma[0] @ arrays.sampler(32, 24, 0.0, 1.0).T
    chroma = arrays.sampler(16, 24, 0.0, 1.0) @ views.chroma[0] @ arrays.sampler(16, 24, 0.0, 1.0).T
    product = alignment._product(luma[None], chroma[None], views.luma[:1], views.chroma[:1])[0]
    assert not product[:, :5].any() and not product[:2].any()  # the white around the shorts
    assert product[10:14, 9:15].all()  # inside the shorts
    assert product.sum() < ((np.abs(luma - 255) > 12).sum())  # the outline is left out
    gradient = np.linspace(0, 255, 32 * 32, dtype=np.float32).reshape(1, 32, 32)  # no plain ring
    assert alignment._product(luma[None], chroma[None], gradient, views.chroma[:1]).all()


@pytest.mark.parametrize(
    "edit",
    [
        lambda im: ImageOps.grayscale(im).convert("RGB"),
        lambda im: ImageEnhance.Color(im).enhance(0.35),
        lambda im: ImageEnhance.Color(im).enhance(1.6),
    ],
    ids=["grayscale", "desaturated", "saturated"],
)
def test_saturation_changes_and_grayscale_keep_the_colour(edit) -> None:  # noqa: ANN001
    original = product_image(44, hue=0.1)
    assert evidence(original, edit(original)).colour_off <= PIPELINE.policy.near.max_colour_off


def test_a_grayscale_query_sees_colour_only_against_a_picture_without_colour() -> None:
    """A grayscale query cannot show that a black hoodie is not its red twin, so against a
    coloured candidate its colour is not seen; against a grayscale candidate both have none, and
    the colours were compared."""
    coloured = product_image(44, hue=0.1)
    grey = ImageOps.grayscale(coloured).convert("RGB")
    assert not evidence(coloured, grey).colour_seen
    assert evidence(grey, grey.resize((300, 240))).colour_seen
    assert evidence(grey, coloured).colour_seen  # a coloured query is always compared


@pytest.mark.parametrize(("seed", "hue"), [(23, 0.0), (30, 0.6), (32, 0.6)])
def test_a_brightened_copy_whose_saturated_colours_clip_keeps_its_colour(
    monkeypatch: pytest.MonkeyPatch, seed: int, hue: float
) -> None:
    """Brightening clips the saturated channel of bright colours, which turns their hue: compared
    with the catalog picture brightened the same way, the colours agree; no saturation scale
    alone explains them."""
    original = product_image(seed, (400, 320), hue=hue)
    brighter = ImageEnhance.Brightness(original).enhance(1.3)
    assert PIPELINE.policy.near.passes(evidence(original, brighter))
    monkeypatch.setattr(alignment, "BRIGHTENINGS", ())
    plain = evidence(original, brighter)
    assert not PIPELINE.policy.near.passes(plain) and plain.colour_off + plain.colour_missing > 0.05


def test_candidates_brightened_together_are_judged_as_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The brightened colours of every candidate a brighter query tries are computed in one pass:
    each candidate's colour evidence is what it gets judged alone, and the pass changed it."""
    original = product_image(23, (400, 320))
    query = Probe(rgb_of(ImageEnhance.Brightness(original).enhance(1.3)))
    candidates = [
        views_of(rgb_of(picture))
        for picture in (
            original,
            original.crop((12, 10, 388, 310)),
            ImageEnhance.Color(original).enhance(0.7),
            product_image(23, (400, 320), hue=0.3),
        )
    ]
    everything = Tier(Thresholds(0, 1, 1))  # passes all: nothing is turned
    together = verify(query, candidates, [everything] * len(candidates))
    alone = [verify(query, [c], [everything])[0] for c in candidates]
    fields = ("similarity", "luma_off", "colour_off", "colour_missing", "layout_off", "colour_seen")
    for a, b in zip(together, alone, strict=True):
        assert a is not None and b is not None
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert a.alignment is not None and b.alignment is not None
        assert np.array_equal(a.alignment.colour_off, b.alignment.colour_off)
    monkeypatch.setattr(alignment, "BRIGHTENINGS", ())
    plain = verify(query, candidates, [everything] * len(candidates))
    changed = sum(
        (p.colour_off, p.colour_missing) != (t.colour_off, t.colour_missing)
        for p, t in zip(plain, together, strict=True)
        if p is not None and t is not None
    )
    assert changed >= 2


def test_greyish_is_the_99th_percentile_under_the_limit() -> None:
    """greyish decides np.percentile(chroma, 99) < GREY_CHROMA, values straddling it included."""
    rng = np.random.default_rng(5)
    for size in (576, 256, 60):
        chroma = rng.gamma(2.0, rng.uniform(0.3, 1.0, size=(400, 1)), size=(400, size)).astype(np.float32)
        chroma[::3, : size // 2] = rng.uniform(3.95, 4.05, size=(len(chroma[::3]), size // 2))
        chroma[1::3, :] = GREY_CHROMA
        want = np.percentile(chroma, 99, axis=1) < GREY_CHROMA
        assert 0 < want.sum() < len(want)
        assert np.array_equal(greyish(chroma), want)


def test_the_colour_a_brightness_edit_gives_a_pixel() -> None:
    """bright_srgb then brightened_ab: a saturated red brightened 1.3 clips in red and turns towards orange-yellow;
    a dark grey stays grey."""
    red = np.array([[[200, 40, 40]]], dtype=np.uint8)
    brighter = np.clip(red.astype(float) * 1.3, 0, 255).astype(np.uint8)
    a, b = cielab_ab(red)
    want = np.stack(cielab_ab(brighter))[:, 0, 0]
    got = brightened_ab(bright_srgb(luma(red.astype(float))[0, 0], np.array([a[0, 0], b[0, 0]])), 1.3)
    assert np.allclose(got, want, atol=6.0)
    grey = brightened_ab(bright_srgb(np.float64(60.0), np.zeros(2)), 1.3)
    assert np.abs(grey).max() < 1.0


def test_a_turned_copy_is_aligned_by_turning_the_query_back() -> None:
    original = product_image(21, (400, 320))
    turned = original.rotate(5, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    upright_only = verify(Probe(rgb_of(turned)), [views_of(rgb_of(original))], [Tier(Thresholds(0, 1, 1))])[0]
    found = evidence(original, turned)
    assert found.similarity > upright_only.similarity + 0.05 and PIPELINE.policy.near.passes(found)


@pytest.mark.parametrize("seed", [16, 21, 44])
def test_a_copy_turned_with_fill_corners_is_turned_back(seed: int) -> None:
    original = product_image(seed, (400, 320))
    turned = original.rotate(4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    upright_only = verify(Probe(rgb_of(turned)), [views_of(rgb_of(original))], [Tier(Thresholds(0, 1, 1))])[0]
    found = evidence(original, turned, PIPELINE.policy.far)
    # The black corners pull the upright correlation far down; the colours still agree (a copy
    # whose corners also push colour past the tier's limit is not turned: turning explains
    # structure, not colour).
    assert upright_only.similarity < 0.6 and upright_only.colour_off <= PIPELINE.policy.far.max_colour_off
    assert found.similarity > upright_only.similarity + 0.2 and PIPELINE.policy.far.passes(found)


@pytest.mark.parametrize("mirrored", [False, True], ids=["as it is", "mirrored"])
def test_the_first_turn_tried_turns_the_query_back_mirrored_or_not(mirrored: bool) -> None:
    """A copy turned 4 degrees clockwise, then mirrored or not, lined up by its mirrored view or
    its own: the query is turned back at the first try, anticlockwise as it is and clockwise
    mirrored (a mirrored view turns the other way), and the turned query lines up. (The views
    underestimate the first turn; the next ones take the rest.)"""
    original = product_image(21, (400, 320))
    copy = original.rotate(-4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    copy = ImageOps.mirror(copy) if mirrored else copy
    probe, stored = Probe(rgb_of(copy)), views_of(rgb_of(original))
    never = Tier(Thresholds(min_similarity=2.0, max_luma_off=0.0, max_colour_off=0.0))
    upright = verify(probe, [stored], [never])[0]
    assert upright is not None and upright.alignment is not None and upright.alignment.mirrored is mirrored
    turning = alignment._Turning(stored, stored.luma[None], never, upright)
    assert len(turning.trials) == 1 and turning.trials[0] != 0 and (turning.trials[0] < 0) is mirrored
    found = verify(Probe(rgb_of(copy)), [stored], [PIPELINE.policy.far])[0]
    assert found is not None and found.alignment is not None and PIPELINE.policy.far.passes(found)
    assert abs(found.alignment.angle) >= 3.0 and (found.alignment.angle < 0) is mirrored


def test_nothing_is_turned_once_a_candidate_passes_upright() -> None:
    original = product_image(21, (400, 320))
    turned = original.rotate(5, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    alone, beside_a_copy = Probe(rgb_of(turned)), Probe(rgb_of(turned))
    assert PIPELINE.policy.near.passes(verify(alone, [views_of(rgb_of(original))], [PIPELINE.policy.near])[0])
    assert len(alone._by_angle) > 1  # it had to be turned
    found = verify(beside_a_copy, [views_of(rgb_of(original)), views_of(rgb_of(turned))], [PIPELINE.policy.near] * 2)
    assert PIPELINE.policy.near.passes(found[1]) and list(beside_a_copy._by_angle) == [0.0]


class _ScriptedProbe:
    """Stands in for a Probe: `at(angle)` hands the angle on to the scripted judge."""

    def __init__(self) -> None:
        self.angles: list[float] = []

    def at(self, angle: float) -> float:
        self.angles.append(angle)
        return angle

    def at_many(self, angles: list[float]) -> list[float]:
        return [self.at(angle) for angle in angles]


def _scripted(sim: float, *, layout: int = 2, passing: bool = False, left: float = 0.0) -> Evidence:
    """Evidence whose luma_off says whether it passes the scripted target, and whose alignment
    carries the turn still left (read back by the scripted residual_turn)."""
    alignment = Alignment(
        query_box=WHOLE, mirrored=False, angle=left, candidate_view=0, rows=(0.0, 1.0),
        cols=(0.0, 1.0), query_trimmed=False, mine=np.zeros((2, 2)), theirs=np.zeros((2, 2)),
        my_colour=np.zeros((2, 2, 2)), their_colour=np.zeros((2, 2, 2)), luma_off=np.zeros((2, 2), bool),
        colour_off=np.zeros((2, 2), bool),
    )  # fmt: skip
    return Evidence(sim, 0.0 if passing else 0.5, 0.0, layout, alignment=alignment)


@pytest.mark.parametrize(
    ("upright_left", "judged", "tried", "returned"),
    [
        # Turned by the turn left, then by what is left after that: the first that lines up wins.
        (3.0, {3.0: _scripted(0.9, left=1.0), 4.0: _scripted(0.98, passing=True)}, [3.0, 4.0], 4.0),
        # The first turn made the pair less alike: the estimate pointed the wrong way.
        (2.0, {2.0: _scripted(0.5, left=0.0), -2.0: _scripted(0.98, passing=True)}, [2.0, -2.0], -2.0),
        # Nothing left to turn: upright stays.
        (0.1, {}, [], None),
        # Passing by moving the layout is not lining up: the search goes on, and keeps upright.
        (3.0, {3.0: _scripted(0.97, layout=alignment.TURNED_MAX_LAYOUT + 2, passing=True, left=0.1)}, [3.0], None),
        # A turn that makes the pair much less alike than the best ends the search.
        (3.0, {3.0: _scripted(0.75, left=2.0), -3.0: _scripted(0.2, left=2.0)}, [3.0, -3.0], None),
        # The best turn that does not pass is what is returned.
        (2.0, {2.0: _scripted(0.9, left=0.2)}, [2.0], 2.0),
        # A first turn that barely raises the correlation is not followed by more (another picture),
        # whatever turn its alignment says is left...
        (3.0, {3.0: _scripted(0.8 + alignment.TURN_PROMISE / 2, left=1.0)}, [3.0], 3.0),
        # ...nor is one whose reverse barely does.
        (3.0, {3.0: _scripted(0.7, left=1.0), -3.0: _scripted(0.81, left=1.0)}, [3.0, -3.0], -3.0),
        # A first turn too small to say anything goes on, even when it gained little.
        (0.5, {0.5: _scripted(0.81, left=4.0), 4.5: _scripted(0.99, passing=True)}, [0.5, 4.5], 4.5),
        # A first turn that gains little but passes (its layout or halves do not agree yet) goes on.
        (
            3.0,
            {
                3.0: _scripted(0.82, layout=alignment.TURNED_MAX_LAYOUT + 2, passing=True, left=1.0),
                4.0: _scripted(0.99, passing=True),
            },
            [3.0, 4.0],
            4.0,
        ),
    ],
)
def test_the_turning_search(monkeypatch, upright_left, judged, tried, returned) -> None:  # noqa: ANN001
    monkeypatch.setattr(alignment, "_coarse_scores", lambda luma, angle, *_: np.array([angle]))
    monkeypatch.setattr(alignment, "_coarse_windows", lambda luma: None)
    monkeypatch.setattr(
        alignment, "_judge_aligned", lambda queries, candidates, scores, *_: ([judged[q] for q in queries], {})
    )
    monkeypatch.setattr(alignment, "residual_turn", lambda alignment, *_: alignment.angle)
    monkeypatch.setattr(alignment, "_turn_spread", lambda alignment: 0.0)
    probe = _ScriptedProbe()
    target = Tier(Thresholds(0.8, 0.1, 0.1))
    upright = _scripted(0.8, left=upright_left)
    found = alignment._turned(probe, None, None, target, upright)  # type: ignore[arg-type]
    assert probe.angles == tried
    assert found is (judged[returned] if returned is not None else upright)


def test_turnings_in_lockstep_answer_in_order_and_stop_at_the_first_that_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Candidates are turned together, a step each per judgement call; the answers come in the
    candidates' order, so a later candidate that lines up sooner does not win over an earlier
    one that lines up at its second turn, and once the caller stops (a candidate passed) no
    turning after it is judged further."""
    scripts = {  # per candidate (its luma stands for it): angle -> evidence
        "a": {3.0: _scripted(0.9, left=1.0), 4.0: _scripted(0.98, passing=True)},  # lines up at its 2nd turn
        "b": {2.0: _scripted(0.99, passing=True)},  # lines up at its 1st
        "c": {5.0: _scripted(0.9, left=1.0), 6.0: _scripted(0.91, left=1.0), 7.0: _scripted(0.92, left=1.0)},
    }
    calls: list[list[tuple[str, float]]] = []

    def judge(queries, candidates, scores, *_):  # noqa: ANN001, ANN202
        calls.append([(name, angle) for name, angle in zip(candidates, queries, strict=True)])
        return [scripts[name][angle] for name, angle in calls[-1]], {}

    monkeypatch.setattr(alignment, "_coarse_scores", lambda luma, angle, *_: np.array([angle]))
    monkeypatch.setattr(alignment, "_coarse_windows", lambda luma: None)
    monkeypatch.setattr(alignment, "_judge_aligned", judge)
    monkeypatch.setattr(alignment, "residual_turn", lambda alignment, *_: alignment.angle)
    monkeypatch.setattr(alignment, "_turn_spread", lambda alignment: 0.0)
    target = Tier(Thresholds(0.8, 0.1, 0.1))
    upright = {"a": _scripted(0.8, left=3.0), "b": _scripted(0.8, left=2.0), "c": _scripted(0.8, left=5.0)}

    def turnings() -> list[alignment._Turning]:
        return [alignment._Turning(name, name, target, upright[name]) for name in "abc"]  # type: ignore[arg-type]

    answers = []
    for answer in alignment._turned_in_order(_ScriptedProbe(), turnings()):  # type: ignore[arg-type]
        answers.append(answer)
        if target.passes(answer):
            break
    assert answers == [scripts["a"][4.0]]  # a, though b lined up first
    assert calls == [[("a", 3.0), ("b", 2.0), ("c", 5.0)], [("a", 4.0), ("c", 6.0)]]  # c's 3rd turn never judged
    # Asked for every answer, each is what the candidate's turning alone gives.
    calls.clear()
    together = list(alignment._turned_in_order(_ScriptedProbe(), turnings()))  # type: ignore[arg-type]
    alone = [alignment._turned(_ScriptedProbe(), name, name, target, upright[name]) for name in "abc"]  # type: ignore[arg-type]
    assert together == alone and together[2] is scripts["c"][7.0]


def test_the_query_turned_by_several_angles_together_is_each_turn_alone() -> None:
    picture = rgb_of(product_image(12, (400, 320)))
    angles = [0.0, 3.1, -2.4, 3.1, 5.0]
    together = Probe(picture).at_many(angles)
    assert together[1] is together[3]  # an angle asked twice is made once
    for angle, mine in zip(angles, together, strict=True):
        alone = Probe(picture).at(angle)
        assert (mine.angle, mine.whole, mine.trimmed) == (alone.angle, alone.whole, alone.trimmed)
        for name in ("coarse", "fine", "fine_unit", "chroma", "grey"):
            assert np.array_equal(getattr(mine, name), getattr(alone, name)), (angle, name)


def test_candidates_turned_together_are_judged_as_each_alone() -> None:
    """Each candidate's turned evidence, judged in one call with the others' (each with the
    query turned by its own angle), is bit for bit what it is turned alone."""
    original = product_image(21, (400, 320))
    query = rgb_of(original.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)))
    others = [product_image(seed, (400, 320)) for seed in (7, 16, 44)]
    stored = [views_of(rgb_of(picture)) for picture in (*others, original)]
    tier = Tier(Thresholds(0.99, 0.0, 0.0))  # nothing passes: every turning runs to its end
    probe = Probe(query)
    uprights, _ = alignment._judge_aligned(
        [probe.at(0.0)], stored, alignment._coarse_scores(np.stack([v.luma for v in stored]), probe.at(0.0))
    )

    def turning(i: int) -> alignment._Turning:
        return alignment._Turning(stored[i], stored[i].luma[None], tier, uprights[i])

    together = list(alignment._turned_in_order(probe, [turning(i) for i in range(len(stored))]))
    alone = [next(alignment._turned_in_order(Probe(query), [turning(i)])) for i in range(len(stored))]
    assert any(found.alignment is not None and found.alignment.angle for found in together)  # some were turned
    for mine, theirs in zip(together, alone, strict=True):
        assert mine == theirs  # similarity, luma, colour, layout, colour missing: exactly
        assert mine.alignment == theirs.alignment and mine.alignment is not None and theirs.alignment is not None
        assert np.array_equal(mine.alignment.mine, theirs.alignment.mine)
        assert np.array_equal(mine.alignment.luma_off, theirs.alignment.luma_off)


def test_a_turn_whose_parts_disagree_is_not_a_turned_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another picture in the same pose lines up by a turn too, but its halves disagree on the turn."""
    judged = {3.0: _scripted(0.99, passing=True, left=0.1)}
    monkeypatch.setattr(alignment, "_coarse_scores", lambda luma, angle, *_: np.array([angle]))
    monkeypatch.setattr(alignment, "_coarse_windows", lambda luma: None)
    monkeypatch.setattr(
        alignment, "_judge_aligned", lambda queries, candidates, scores, *_: ([judged[q] for q in queries], {})
    )
    monkeypatch.setattr(alignment, "residual_turn", lambda alignment, *_: alignment.angle)
    upright = _scripted(0.8, left=3.0)
    target = Tier(Thresholds(0.8, 0.1, 0.1))
    monkeypatch.setattr(alignment, "_turn_spread", lambda alignment: TURN_SPREAD + 1)
    assert alignment._turned(_ScriptedProbe(), None, None, target, upright) is upright  # type: ignore[arg-type]
    monkeypatch.setattr(alignment, "_turn_spread", lambda alignment: TURN_SPREAD - 1)
    assert alignment._turned(_ScriptedProbe(), None, None, target, upright) is judged[3.0]  # type: ignore[arg-type]


@pytest.mark.parametrize("angle", [-4.0, -2.0, 2.5, 4.5])
def test_the_turn_left_is_measured_on_the_aligned_pair(angle: float) -> None:
    original = product_image(21, (400, 320))
    turned = original.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    upright, stored = Probe(rgb_of(turned)).at(0.0), views_of(rgb_of(original))
    scores = alignment._coarse_scores(stored.luma[None], upright)
    (found,), _ = alignment._judge_aligned([upright], [stored], scores)
    assert found.alignment is not None
    left = alignment.residual_turn(found.alignment)
    # It points the way back, and one step goes a good part of it (_turned repeats the step).
    assert left * angle < 0 and abs(angle) / 3 <= abs(left) <= abs(angle) + 1.5


def test_the_turn_left_is_the_least_squares_fit_over_the_agreeing_pixels() -> None:
    """residual_turn reads each array at the agreeing pixels once; its numbers are those of the
    fit written plainly over the whole arrays (np.gradient, the basis of every pixel), bit for bit."""

    def plainly(alignment: Alignment, leave_out: np.ndarray | None) -> float:
        mine, theirs = alignment.mine.astype(np.float64), alignment.theirs.astype(np.float64)
        agree = ~alignment.luma_off if leave_out is None else ~(alignment.luma_off | leave_out)
        if agree.sum() < 32 or float(theirs[agree].std()) < 1.0:
            return 0.0
        gain = float(mine[agree].std() / theirs[agree].std())
        fitted = gain * (theirs - theirs[agree].mean()) + mine[agree].mean()
        dy, dx = np.gradient(fitted)
        y, x = np.mgrid[0 : mine.shape[0], 0 : mine.shape[0]] - (mine.shape[0] - 1) / 2.0
        basis = np.stack([y * dx - x * dy, dx, dy, x * dx + y * dy], axis=-1)[agree]
        solution, *_ = np.linalg.lstsq(basis, (mine - fitted)[agree], rcond=None)
        return float(np.degrees(solution[0]))

    rng = np.random.default_rng(5)
    checked = 0
    for case in range(300):
        smooth = np.cumsum(np.cumsum(rng.normal(size=(24, 24)), 0), 1) * 4 + 128
        mine = (smooth if case % 2 else rng.random((24, 24)) * 255).astype(np.float32)
        theirs = (mine * rng.uniform(0.6, 1.4) + rng.normal(size=mine.shape) * rng.uniform(0, 25)).astype(np.float32)
        off = rng.random(mine.shape) < rng.uniform(0.0, 0.98)
        leave_out = None if case % 3 else rng.random(mine.shape) < 0.5
        aligned = Alignment(
            (0.0, 1.0, 0.0, 1.0), False, 0.0, 0, (0.0, 1.0), (0.0, 1.0), False,
            mine, theirs, np.zeros((2, 24, 24), np.float32), np.zeros((2, 24, 24), np.float32), off, off,
        )  # fmt: skip
        expected = plainly(aligned, leave_out)
        assert alignment.residual_turn(aligned, leave_out) == expected
        checked += expected != 0.0
    assert checked > 100  # most cases fit (the rest have too few agreeing pixels)


def test_the_box_kept_after_turning_back_is_the_picture_turned_with_expand() -> None:
    picture = Image.new("RGB", (120, 80), (200, 30, 30))
    turned = picture.rotate(4, expand=True, fillcolor=(0, 0, 0)).rotate(-4, fillcolor=(0, 0, 0))
    left, top, right, bottom = _unturned_box(turned.size, -4)
    assert abs((right - left) - 120) <= 2 and abs((bottom - top) - 80) <= 2
    inside = np.asarray(turned.crop((left + 1, top + 1, right - 1, bottom - 1)))
    assert (inside[..., 0] > 150).all()  # no fill inside: only the picture


def test_turning_another_picture_does_not_make_it_a_copy() -> None:
    def gray(seed: int) -> Image.Image:  # no colour, so only the structure can fail
        return ImageOps.grayscale(product_image(seed)).convert("RGB")

    probe = Probe(rgb_of(gray(7)))
    found = verify(probe, [views_of(rgb_of(gray(8)))], [PIPELINE.policy.far])[0]
    assert found is not None and not PIPELINE.policy.far.passes(found)
    assert len(probe._by_angle) <= 1 + 2 * alignment.ROTATION_STEPS  # upright and a few turns at most


def test_only_the_candidates_most_alike_at_the_coarse_alignment_are_judged() -> None:
    original = product_image(29)
    others = [views_of(rgb_of(product_image(200 + i))) for i in range(5)]
    probe = Probe(rgb_of(original.crop((48, 40, 432, 440))))  # 8-10% off every side
    found = verify(probe, [*others, views_of(rgb_of(original))], [PIPELINE.policy.far] * 6, judged=2)
    assert sum(e is not None for e in found) == 2
    last = found[-1]
    assert last is not None and PIPELINE.policy.far.passes(last)


def test_no_candidates_no_work() -> None:
    assert verify(Probe(rgb_of(product_image(1))), [], []) == []


@pytest.mark.parametrize(
    ("first", "second", "alike"),
    [
        ((200, 40, 40), (200, 40, 40), True),  # the same swatch, uploaded again
        ((255, 255, 255), (255, 255, 255), True),  # the same white placeholder
        ((255, 255, 255), (0, 0, 0), False),
        ((200, 40, 40), (40, 40, 200), False),  # another colour: another SKU
    ],
)
def test_plain_pictures_are_judged_on_their_level_and_colour(first, second, alike) -> None:  # noqa: ANN001
    found = evidence(Image.new("RGB", (300, 200), first), Image.new("RGB", (120, 80), second))
    assert PIPELINE.policy.near.passes(found) is alike


# -- a stored record as a query (the duplicate report) --------------------------------------------


def test_a_stored_picture_is_rebuilt_from_its_views() -> None:
    rgb = rgb_of(product_image(43, (400, 320)))
    views = views_of(rgb)
    rebuilt = views.picture(80)
    assert rebuilt.shape == (80, 80, 3)
    again = views_of(rebuilt)
    # The same luma and colour, up to resampling a 32 px view to 80 px and back.
    assert np.abs(again.luma[0] - views.luma[0]).mean() < 3.0
    assert np.abs(again.chroma[0] - views.chroma[0]).mean() < 3.0


def test_luma_and_colour_go_back_to_the_pixels_they_came_from() -> None:
    from dupcheck.core.pictures.pixels import cielab_ab, luma, rgb_from_luma_ab

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    a_star, b_star = cielab_ab(rgb)
    back = rgb_from_luma_ab(luma(rgb.astype(np.float64)), a_star, b_star)
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 2


class _OnlyTurned:
    """A target only evidence with the query turned passes: upright, nothing does, so the
    turning runs, and which candidates it turned shows in their evidence."""

    judges_detail = True
    found_photograph = False
    max_colour_off = 1.0

    def passes(self, evidence: Evidence) -> bool:
        return evidence.alignment is not None and evidence.alignment.angle != 0.0

    def open_on_colour(self, evidence: Evidence) -> bool:
        return False


def test_the_candidate_nearest_by_hash_is_judged_and_turned_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy turned a few degrees is less alike upright than other pictures can be: screened by
    coarse likeness alone (1 of 2 judged here) its own candidate is never judged, nor turned
    while more alike ones are. Named the nearest by hash, it is judged and turned first."""
    original = product_image(21, (400, 320))
    turned = original.rotate(4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    stored = [views_of(rgb_of(turned)), views_of(rgb_of(original))]  # the first more alike upright
    targets = [_OnlyTurned(), _OnlyTurned()]
    monkeypatch.setattr(alignment, "ROTATED_CANDIDATES", 1)
    screened = verify(Probe(rgb_of(turned)), stored, targets, judged=1)
    assert screened[1] is None
    found = verify(Probe(rgb_of(turned)), stored, targets, judged=1, nearest=1)
    assert found[1] is not None and targets[1].passes(found[1])  # judged, and turned
    both = verify(Probe(rgb_of(turned)), stored, targets, nearest=1)
    assert both[1] is not None and targets[1].passes(both[1])
    # The more alike one was not turned on its own (ROTATED_CANDIDATES 1: the nearest only), but
    # judged at the angle that lined the nearest up, as every candidate is once one lines up.
    assert both[0] is not None and both[0].alignment is not None and both[1].alignment is not None
    assert both[0].alignment.angle == both[1].alignment.angle


def test_once_a_turn_lines_one_candidate_up_the_others_are_judged_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog holds the photograph twice, as it is and padded: a turned copy turned to line
    up with one (the only one turned here) is judged at that angle against the other too."""
    monkeypatch.setattr(alignment, "ROTATED_CANDIDATES", 1)
    original = product_image(21, (400, 320))
    padded = ImageOps.expand(original, border=40, fill=(255, 255, 255))
    turned = original.rotate(4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    stored = [views_of(rgb_of(original)), views_of(rgb_of(padded))]
    targets = [_OnlyTurned(), _OnlyTurned()]
    found = verify(Probe(rgb_of(turned)), stored, targets, nearest=0)
    assert all(e is not None and targets[k].passes(e) for k, e in enumerate(found))


class _LinedUp:
    """A target the same-photograph test would decide (`judges_detail`): here the far tier's
    views, with the query turned by 3 degrees or more (only a turned query lines up), and
    whether a look already found the photograph as given."""

    judges_detail = True
    max_colour_off = 1.0

    def __init__(self, found_photograph: bool = False) -> None:
        self.found_photograph = found_photograph

    def passes(self, evidence: Evidence) -> bool:
        angle = evidence.alignment.angle if evidence.alignment is not None else 0.0
        return abs(angle) >= 3.0 and PIPELINE.policy.far.passes(evidence)

    def open_on_colour(self, evidence: Evidence) -> bool:
        return False


def test_the_nearest_is_tried_at_the_scans_angles_when_the_estimates_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn the views say is left can stop near 0 (a busy scene): the candidate nearest by
    hash is then tried turned by each of TURN_SCAN's angles, in order, and a copy turned about
    that much lines up at the right one. Another candidate is not scanned, nor one whose
    photograph a look found (only its colour is in question then)."""
    original = product_image(21, (400, 320))
    copy = original.rotate(-4, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    stored = [views_of(rgb_of(original))]
    monkeypatch.setattr(alignment, "residual_turn", lambda *_args, **_kwargs: 0.0)  # nothing left, it says
    monkeypatch.setattr(alignment, "TURN_SCAN", (-4.0, 4.0))
    target = _LinedUp()
    found = verify(Probe(rgb_of(copy)), stored, [target], nearest=0)[0]
    assert found is not None and found.alignment is not None and target.passes(found)
    assert found.alignment.angle == 4.0  # turned back: -4 was judged first and did not line up
    not_nearest = verify(Probe(rgb_of(copy)), stored, [target])[0]
    assert not_nearest is not None and not target.passes(not_nearest)
    seen = _LinedUp(found_photograph=True)
    assert not target.passes(verify(Probe(rgb_of(copy)), stored, [seen], nearest=0)[0])
    monkeypatch.setattr(alignment, "TURN_SCAN", ())
    assert not target.passes(verify(Probe(rgb_of(copy)), stored, [target], nearest=0)[0])


def busy(seed: int) -> Image.Image:
    """A picture busy to its edges (a scene, not a product on a backdrop): coarse colour blocks
    blurred together, a product on top, fine grain."""
    rng = np.random.default_rng(seed)
    blocks = Image.fromarray(rng.integers(30, 226, (6, 9, 3), dtype=np.uint8)).resize(
        (480, 320), Image.Resampling.BICUBIC
    )
    blocks.paste(product_image(seed, (200, 160)).convert("RGB"), (140, 80))
    grain = rng.normal(0, 6, (320, 480, 3))
    return Image.fromarray(np.clip(np.asarray(blocks, dtype=np.float64) + grain, 0, 255).astype(np.uint8))


def padded_and_turned(image: Image.Image, angle: float) -> Image.Image:
    """Padded to a square in black, then turned with `expand` on a white fill: its borders
    tilted inside the fill, as a shop's re-upload may be."""
    square = ImageOps.pad(image, (max(image.size),) * 2, color=(0, 0, 0))
    return square.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))


@pytest.mark.parametrize("angle", [-4.8, 3.0])
def test_a_turned_copys_borders_say_its_turn(angle: float) -> None:
    turned = busy(21).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    for copy in (turned, padded_and_turned(busy(22), angle)):
        found = PIPELINE.fingerprint(copy).probe
        assert found is not None and found.border_turn() == pytest.approx(-angle, abs=0.3)  # turned back
    upright = PIPELINE.fingerprint(ImageOps.pad(busy(21), (480, 480), color=(0, 0, 0))).probe
    assert upright is not None and upright.border_turn() is None  # straight sides, upright: no turn
    product = PIPELINE.fingerprint(product_image(21, (400, 320)).rotate(angle, fillcolor=(255, 255, 255))).probe
    assert product is not None and product.border_turn() is None  # a product's outline on its own white


@pytest.mark.parametrize("seed", [21, 22, 1005])
def test_a_copy_padded_then_turned_is_judged_turned_back_by_its_borders(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Padded and turned, the copy's views are too little alike upright for the turning to start
    from (the fill and the padding tilted around the picture); turned back by the angle its own
    borders show, they line up."""
    original = busy(seed)
    copy = padded_and_turned(original, -4.8)
    target = PIPELINE.policy.far
    stored = [views_of(rgb_of(original))]
    found = verify(Probe(rgb_of(copy)), stored, [target], nearest=0)[0]
    assert found is not None and found.alignment is not None and target.passes(found)
    assert found.alignment.angle == pytest.approx(4.8, abs=0.3)
    monkeypatch.setattr(Probe, "border_turn", lambda self: None)
    assert not target.passes(verify(Probe(rgb_of(copy)), stored, [target], nearest=0)[0])


@pytest.mark.parametrize("seed", [21, 22, 23, 24, 25])
def test_a_copy_padded_and_turned_is_searched_for_turned_back_by_its_borders(seed: int) -> None:
    """Padded to a square, then turned on a fill: the fill's corners and the turned padding move
    the trimmed box, so every hash of the copy as it is lies far from the catalog picture's (the
    closer half 12-20 bits); the copy turned back by the angle its borders show, searched too,
    lies within a few bits."""
    stored = PIPELINE.fingerprint(busy(seed), for_query=False).hash
    query = PIPELINE.fingerprint(padded_and_turned(busy(seed), -4.8))

    def closer_half(value: HashValue) -> int:
        return min(mine - theirs for mine in value.parts(2) for theirs in stored.parts(2))

    as_it_is = (query.hash, *query.query_hashes[:3])
    assert min(map(closer_half, as_it_is)) >= 10
    assert min(map(closer_half, query.search_hashes)) <= 4
    upright = PIPELINE.fingerprint(busy(seed))
    assert len(upright.search_hashes) == 4  # no turn shown, nothing more to search


@pytest.mark.parametrize("seed", [21, 22])
def test_inside_a_copys_padding_its_borders_say_its_turn(seed: int) -> None:
    """Turned on a black fill, then padded in white: the padding's sides are upright, the fill's
    inside them are turned; the picture inside the padding is a query of its own, and where it
    lies on the whole one is kept for the edits."""
    turned = busy(seed).rotate(3, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    copy = ImageOps.expand(turned, border=(60, 24, 40, 36), fill=(255, 255, 255))  # left, top, right, bottom
    probe = PIPELINE.fingerprint(copy).probe
    assert probe is not None and probe.border_turn() is None
    inside = probe.inside_border()
    assert inside is not None and inside.border_turn() == pytest.approx(-3.0, abs=0.3)
    width, height = copy.size
    assert inside.outer == pytest.approx((60 / width, 40 / width, 24 / height, 36 / height), abs=0.02)
    across = 1 - 100 / width  # the inner picture's share of the query's width
    assert inside.on_query((0.0, 0.5, 0.0, 0.0))[1] == pytest.approx(40 / width + 0.5 * across, abs=0.02)
    padded = PIPELINE.fingerprint(ImageOps.expand(busy(seed), border=(60, 24, 40, 36), fill=(255, 255, 255))).probe
    assert padded is not None and padded.inside_border() is None  # padding on an upright picture: no turn inside


@pytest.mark.parametrize("seed", [21, 22])
@pytest.mark.parametrize("angle", [1.0, 1.2, -1.3])
@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255)])
def test_inside_a_copys_padding_a_small_turn_is_read_to_a_tenth_of_a_degree(
    seed: int, angle: float, fill: tuple[int, int, int]
) -> None:
    """Turned a degree or so, the fill is a wedge 2-4 px wide at the 160 px working copy, which a
    JPEG's blur and the trim's rounding swallow: the turn inside the padding is read on the
    larger picture kept for the same-photograph test (the working copy read 1.2 degrees as 0.44
    or none). On a white fill inside white padding too (the whole picture shows that turn,
    through the padding, less exactly)."""
    turned = busy(seed).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    copy = Image.open(io.BytesIO(encode(ImageOps.expand(turned, border=(60, 24, 40, 36), fill=(255, 255, 255)))))
    probe = PIPELINE.fingerprint(copy).probe
    inside = probe.inside_border() if probe is not None else None
    assert inside is not None and inside.border_turn() == pytest.approx(-angle, abs=0.2)


def test_a_tie_between_views_goes_to_the_trimmed_ones_upright_first_and_a_better_score_wins() -> None:
    """The coarse window is taken by the score snapped to RANK_STEP; among scores equal there, the
    candidate's trimmed view, then the query's trimmed view, upright before mirrored (the views
    the edits are read from), then the first window. A score one step higher wins over all that."""
    scores = np.full((1, 2, 3, 3, 4), 0.2)  # (candidate, its view, y window, x window, query view)
    scores[0, 0, 1, 1, 0] = 0.9  # whole views
    scores[0, 1, 2, 0, 1] = 0.9 + RANK_STEP / 4  # trimmed views: the same score, but for rounding
    scores[0, 1, 0, 2, 3] = 0.9  # the trimmed views, the query mirrored
    assert alignment._best_windows(scores) == [(1, 2, 0, 1)]
    scores[0, 1, 2, 0, 1] = 0.9 - RANK_STEP / 4
    assert alignment._best_windows(scores) == [(1, 2, 0, 1)]  # (whichever way the rounding went)
    scores[0, 1, 2, 0, 1] = 0.2
    assert alignment._best_windows(scores) == [(1, 0, 2, 3)]  # upright gone: mirrored over the whole views
    scores[0, 0, 1, 1, 0] = 0.9 + 2 * RANK_STEP
    assert alignment._best_windows(scores) == [(0, 1, 1, 0)]  # higher by a step: the whole views
    twice = np.concatenate([scores, np.full((1, 2, 3, 3, 4), 0.5)])
    assert alignment._best_windows(twice) == [(0, 1, 1, 0), (1, 0, 0, 1)]  # all equal: the first trimmed window
