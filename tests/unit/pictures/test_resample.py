"""scripts/bench/numpy_resize.py (Pillow's BOX resize in numpy, measured and not used by verification)
against the installed Pillow: the same bits, picture by picture and batched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dupcheck.core.pictures.pixels import luma, planar
from support.scripts import load_script

_resize = load_script("bench/numpy_resize.py")
box_resized_float, box_resized_rgb, vertical_first = (
    _resize.box_resized_float,
    _resize.box_resized_rgb,
    _resize.vertical_first,
)

SIDES = (1, 7, 16, 24, 32, 150)


def pillow_float(plane: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(plane, mode="F").resize((side, side), Image.Resampling.BOX), dtype=np.float32)


def pillow_rgb(picture: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(picture).resize((side, side), Image.Resampling.BOX), dtype=np.uint8)


def assert_same_bits(expected: np.ndarray, got: np.ndarray) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(expected.view(np.uint32), got.view(np.uint32))


def smooth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Gradients and a soft blob, as a product photo's luma: neighbours close, taps nearly equal."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    cy, cx = rng.random(2)
    return 255 * (0.3 * x + 0.2 * y + 0.5 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) * 8))


def random_size(rng: np.random.Generator, largest: int = 120) -> tuple[int, int]:
    return int(rng.integers(1, largest + 1)), int(rng.integers(1, largest + 1))


def random_side(rng: np.random.Generator) -> int:
    return int(rng.choice([*SIDES, int(rng.integers(1, 121))]))


def test_float_planes_resize_to_pillows_bits() -> None:
    rng = np.random.default_rng(19)
    for case in range(300):
        height, width = random_size(rng)
        side = random_side(rng)
        if case % 3 == 0:
            plane = smooth(rng, height, width).astype(np.float32)
        elif case % 3 == 1:
            plane = (rng.random((height, width)) * 255).astype(np.float32)
        else:  # any float: signs, magnitudes, fractions
            plane = (rng.standard_normal((height, width)) * 10.0 ** rng.integers(-3, 6)).astype(np.float32)
        assert_same_bits(pillow_float(plane, side), box_resized_float([plane], side)[0])


def test_rgb_pictures_resize_to_pillows_bytes() -> None:
    rng = np.random.default_rng(17)
    for case in range(300):
        height, width = random_size(rng)
        side = random_side(rng)
        if case % 2 == 0:
            picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            picture = np.clip(smooth(rng, height, width)[..., None] * [1.0, 0.8, 0.5], 0, 255).astype(np.uint8)
        assert np.array_equal(pillow_rgb(picture, side), box_resized_rgb([picture], side)[0])


def test_sizes_around_the_pass_order_switch() -> None:
    """Pillow 13 resizes vertically first when the height loses more than twice the width's
    pixels; the other order changes the results, so the cases either side of the switch are
    where a wrong rule shows (random pixels: the order shows in nearly every case)."""
    rng = np.random.default_rng(5)
    checked = 0
    for side in (1, 16, 32):
        for width in range(side, side + 40, 3):
            switch = side + 2 * (width - side)  # vertical first from one more row
            for height in (switch - 1, switch, switch + 1, switch + 2):
                if not 1 <= height <= 200:
                    continue
                assert vertical_first(height, width, side) == (height > switch)
                plane = rng.standard_normal((height, width)).astype(np.float32) * 100
                picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                assert_same_bits(pillow_float(plane, side), box_resized_float([plane], side)[0])
                assert np.array_equal(pillow_rgb(picture, side), box_resized_rgb([picture], side)[0])
                checked += 1
    assert checked > 100


def test_the_verification_case_batched() -> None:
    """Views of turned pictures (<= 80 px) and their trimmed crops: luma to 32, colour to 16,
    every view of a step in one call each, and each equal to Pillow's and to its own call."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        planes, pictures = [], []
        for _ in range(4):
            height, width = (int(v) for v in rng.integers(40, 81, 2))
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            rgb = rgb if rng.random() < 0.5 else planar(rgb)  # the pipeline's working copies are planar
            top, left = (int(v) for v in rng.integers(0, 10, 2))
            bottom, right = height - int(rng.integers(0, 10)), width - int(rng.integers(0, 10))
            gray = luma(rgb, np.float32)
            planes += [gray, gray[top:bottom, left:right]]
            pictures += [rgb, rgb[top:bottom, left:right]]
        lumas, colours = box_resized_float(planes, 32), box_resized_rgb(pictures, 16)
        assert lumas.shape == (8, 32, 32) and colours.shape == (8, 16, 16, 3)
        assert lumas.flags.c_contiguous and colours.flags.c_contiguous
        for plane, got in zip(planes, lumas, strict=True):
            assert_same_bits(pillow_float(plane, 32), got)
            assert_same_bits(box_resized_float([plane], 32)[0], got)
        for picture, got in zip(pictures, colours, strict=True):
            assert np.array_equal(pillow_rgb(picture, 16), got)
            assert np.array_equal(box_resized_rgb([picture], 16)[0], got)


def test_pictures_of_any_sizes_in_one_call_are_each_resized_alone() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        side = random_side(rng)
        count = int(rng.integers(2, 7))
        planes = [(rng.random(random_size(rng)) * 255).astype(np.float32) for _ in range(count)]
        pictures = [rng.integers(0, 256, (*random_size(rng), 3), dtype=np.uint8) for _ in range(count)]
        for plane, got in zip(planes, box_resized_float(planes, side), strict=True):
            assert_same_bits(pillow_float(plane, side), got)
        for picture, got in zip(pictures, box_resized_rgb(pictures, side), strict=True):
            assert np.array_equal(pillow_rgb(picture, side), got)


def test_every_window_length_to_200_in_one_call() -> None:
    """Each length's weight and its 22-bit rounding (a few lengths, e.g. 138 and 178, round by
    a hair): strips of every length 1..200 shrunk to one pixel, and to 3, all in one call. Half
    are v, v + 1, v, ...: means of exactly v + 0.5, where the rounding of the weight decides."""
    rng = np.random.default_rng(13)
    strips = [rng.integers(0, 256, (2, length, 3), dtype=np.uint8) for length in range(1, 201)]
    for length in range(2, 201, 2):
        alternating = (np.arange(length) % 2 + int(rng.integers(0, 255))).astype(np.uint8)
        strips.append(np.repeat(np.tile(alternating[:, None], (2, 1, 1)), 3, axis=2))
    for side in (1, 3):
        for strip, got in zip(strips, box_resized_rgb(strips, side), strict=True):
            assert np.array_equal(pillow_rgb(strip, side), got)
    planes = [(strip[..., 0] * 1.37).astype(np.float32) for strip in strips]
    for plane, got in zip(planes, box_resized_float(planes, 1), strict=True):
        assert_same_bits(pillow_float(plane, 1), got)


def test_long_axes_beside_short_ones() -> None:
    """Axes past the shared tables' lengths (256) get tables of their own, in the same call."""
    rng = np.random.default_rng(23)
    shapes = [(300, 40), (12, 530), (257, 257), (70, 80)]
    for side in (1, 16, 300):
        planes = [(rng.random(shape) * 255).astype(np.float32) for shape in shapes]
        pictures = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in shapes]
        for plane, got in zip(planes, box_resized_float(planes, side), strict=True):
            assert_same_bits(pillow_float(plane, side), got)
        for picture, got in zip(pictures, box_resized_rgb(pictures, side), strict=True):
            assert np.array_equal(pillow_rgb(picture, side), got)


def test_unchanged_axes_are_copied_and_special_values_kept() -> None:
    """An axis that keeps its size is not resampled (Pillow copies it: -0.0 stays -0.0, which
    0.0 + pixel * 1.0 would make 0.0); infinities and NaN go through the sums as Pillow's do."""
    rng = np.random.default_rng(7)
    for height, width, side in [(16, 16, 16), (16, 40, 16), (40, 16, 16), (5, 32, 32), (32, 90, 32), (1, 7, 7)]:
        plane = rng.standard_normal((height, width)).astype(np.float32)
        plane[rng.random((height, width)) < 0.3] = -0.0
        plane[:, 0] = -0.0
        assert_same_bits(pillow_float(plane, side), box_resized_float([plane], side)[0])
    for special in (np.inf, -np.inf, np.nan):
        plane = rng.standard_normal((30, 20)).astype(np.float32)
        plane[rng.random((30, 20)) < 0.05] = special
        for side in (1, 7, 16, 45):
            assert_same_bits(pillow_float(plane, side), box_resized_float([plane], side)[0])


def test_the_inputs_are_not_changed_and_views_are_read_as_they_are() -> None:
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    crops = [base[5:60, 3:80], base[::2, ::3], planar(base)[10:, :50]]
    before = [crop.copy() for crop in crops]
    gray = luma(base, np.float32)
    plane_crops = [gray[5:60, 3:80], gray[::2, ::3], gray.T]
    plane_before = [crop.copy() for crop in plane_crops]
    resized = box_resized_rgb(crops, 16)
    resized_planes = box_resized_float(plane_crops, 32)
    for crop, kept, got in zip(crops, before, resized, strict=True):
        assert np.array_equal(crop, kept)
        assert np.array_equal(pillow_rgb(np.ascontiguousarray(crop), 16), got)
    for crop, kept, got in zip(plane_crops, plane_before, resized_planes, strict=True):
        assert_same_bits(kept, crop)
        assert_same_bits(pillow_float(np.ascontiguousarray(crop), 32), got)


def test_bad_input_is_refused_clearly() -> None:
    plane = np.zeros((8, 8), dtype=np.float32)
    picture = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="float32"):
        box_resized_float([plane.astype(np.float64)], 4)
    with pytest.raises(ValueError, match="uint8"):
        box_resized_rgb([np.zeros((8, 8, 4), dtype=np.uint8)], 4)
    with pytest.raises(ValueError, match="empty"):
        box_resized_rgb([picture[:0]], 4)
    for side in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="side"):
            box_resized_float([plane], side)  # type: ignore[arg-type]
    assert box_resized_float([], 5).shape == (0, 5, 5)
    assert box_resized_rgb([], 5).shape == (0, 5, 5, 3)
