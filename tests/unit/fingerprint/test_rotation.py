"""scripts/bench/rotation_bench.py's numpy rotation: byte for byte Pillow's BILINEAR rotate with a
fill colour, for every size, angle and fill, so the benchmark compares equal work."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from support.scripts import load_script

ARBITRARY = (33.3, -33.3, 45.0, 90.0, -90.0, 123.4, 180.0, 270.0, 360.0, -359.9)


@pytest.fixture(scope="module")
def rb() -> ModuleType:
    return load_script("bench/rotation_bench.py")


def pillow(rgb: np.ndarray, angle: float, fill: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill))


def picture(rng: np.random.Generator, height: int, width: int, kind: int) -> np.ndarray:
    """Noise, a smooth ramp (many bilinear values land near a whole level) or flat blocks with
    hard edges (equal neighbours: differences of 0 and 255)."""
    if kind == 0:
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    if kind == 1:
        ramp = [xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (3 * xx + 5 * yy) % 256]
        return np.stack(ramp, axis=-1).astype(np.uint8)
    blocks = ((xx // 7 + yy // 5) % 2).astype(np.uint8) * 255
    return np.stack([blocks, 255 - blocks, np.full_like(blocks, int(rng.integers(256)))], axis=-1)


def test_random_pictures_angles_and_fills_turn_exactly_as_pillow_turns(rb: ModuleType) -> None:
    rng = np.random.default_rng(2026)
    compared = differing = 0
    for case in range(150):
        height, width = (int(v) for v in rng.integers(1, 91, 2))
        if case < 6:  # the tiny ones, for sure
            height, width = [(1, 1), (1, 7), (9, 1), (2, 2), (3, 2), (80, 64)][case]
        rgb = picture(rng, height, width, case % 3)
        angles = [round(float(v), 1) or 0.1 for v in rng.uniform(-7, 7, 2)]
        angles += [float(rng.choice([0.1, -0.1, 7.0, -7.0])), float(rng.choice(ARBITRARY))]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        turned = rb.numpy_rotated(rgb, angles, fill)
        assert turned.shape == (len(angles), height, width, 3) and turned.dtype == np.uint8
        for angle, ours in zip(angles, turned, strict=True):
            differing += not np.array_equal(ours, pillow(rgb, angle, fill))
            compared += 1
    assert compared == 600 and differing == 0


def test_an_80px_working_copy_at_every_step_angle_is_pillows(rb: ModuleType) -> None:
    """Every angle a step can ask (-7 to 7 by 0.1, 0 aside) of one 80x80 picture: 140 turns."""
    rgb = picture(np.random.default_rng(7), 80, 80, 0)
    angles = [round(a / 10, 1) for a in range(-70, 71) if a]
    turned = rb.numpy_rotated(rgb, angles, (250, 248, 240))
    for angle, ours in zip(angles, turned, strict=True):
        assert np.array_equal(ours, pillow(rgb, angle, (250, 248, 240))), angle


def test_the_matrix_is_the_one_rotate_hands_to_transform(rb: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit for bit, for every tenth of a degree from -360 to 360 (from -360 to -7 the angle's
    modulo changes the last digits of its sine), on an even and an odd size."""
    handed: list[tuple[float, ...]] = []

    def spy(self: Image.Image, size: tuple[int, int], method: Image.Transform, data: tuple[float, ...], *args, **kw):  # noqa: ANN002, ANN003, ANN202
        handed.append(tuple(data))
        return self  # the matrix is all this test is after

    monkeypatch.setattr(Image.Image, "transform", spy)
    angles = [a / 10 for a in range(-3600, 3601) if a % 900]  # the quarter turns do not resample
    for width, height in ((80, 64), (7, 5)):
        image = Image.new("RGB", (width, height))
        handed.clear()
        for angle in angles:
            image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        assert handed == [rb.pillow_matrix(angle, width, height) for angle in angles]


def test_several_angles_at_once_are_each_turned_alone(rb: ModuleType) -> None:
    rgb = picture(np.random.default_rng(3), 64, 80, 1)
    angles = [3.7, -2.1, 0.1, -6.3, 90.0, 180.0]
    together = rb.numpy_rotated(rgb, angles, (10, 20, 30))
    for angle, turned in zip(angles, together, strict=True):
        assert np.array_equal(turned, rb.numpy_rotated(rgb, [angle], (10, 20, 30))[0])
    # A fill shows where the turn uncovered the frame: a turn that ignored it would differ here.
    assert np.array_equal(together[0][0, 0], [10, 20, 30])


def test_quarter_and_half_turns_take_pillows_shortcuts(rb: ModuleType) -> None:
    """Pillow flips for 180 and a square's 90/270 (no fill at all), resamples a non-square's 90."""
    rng = np.random.default_rng(5)
    square, oblong = picture(rng, 12, 12, 0), picture(rng, 10, 14, 0)
    for rgb in (square, oblong):
        for angle in (0.0, 90.0, 180.0, 270.0, -90.0, 360.0):
            assert np.array_equal(rb.numpy_rotated(rgb, [angle], (1, 2, 3))[0], pillow(rgb, angle, (1, 2, 3)))
    assert np.array_equal(rb.numpy_rotated(square, [90.0], (1, 2, 3))[0], np.rot90(square))
    assert (rb.numpy_rotated(oblong, [90.0], (1, 2, 3))[0][:, 0] == [1, 2, 3]).all()  # its 10 px across 14


def test_the_picture_is_left_as_it_was_and_a_view_turns_as_a_copy_would(rb: ModuleType) -> None:
    rgb = picture(np.random.default_rng(11), 40, 50, 0)
    before = rgb.copy()
    rb.numpy_rotated(rgb, [4.2, -4.2], (0, 0, 0))
    assert np.array_equal(rgb, before)
    view = rgb[5:35:1, ::-1]  # not contiguous
    assert np.array_equal(
        rb.numpy_rotated(view, [2.5], (9, 9, 9))[0], rb.numpy_rotated(np.ascontiguousarray(view), [2.5], (9, 9, 9))[0]
    )


@pytest.mark.parametrize(
    ("rgb", "fill"),
    [
        (np.zeros((8, 8, 3), np.float64), (0, 0, 0)),
        (np.zeros((8, 8), np.uint8), (0, 0, 0)),
        (np.zeros((8, 8, 4), np.uint8), (0, 0, 0)),
        (np.zeros((0, 8, 3), np.uint8), (0, 0, 0)),
        (np.zeros((8, 8, 3), np.uint8), (0, 0, 256)),
        (np.zeros((8, 8, 3), np.uint8), (0, 0)),
    ],
)
def test_what_it_cannot_turn_is_refused(rb: ModuleType, rgb: np.ndarray, fill: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        rb.numpy_rotated(rgb, [3.0], fill)
