"""A turned query's rotation: Pillow, one call per angle, against the same turns in numpy.

Verification turns the query's 80 px working copy by up to four angles a step
(core/stored/views.py `Probe._views_at`):

    np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill))

Pillow's bilinear affine transform takes its generic per-pixel C path. `numpy_rotated` below is
the candidate that was to replace it: every angle of a step in one set of array operations,
bit-identical to Pillow 13's result. This script first checks that it is (`--check` random
pictures, sizes, angles and fills; it exits 1 at the first difference), then times both ways
on one picture for 1 and for 4 angles: thread CPU time of each call, the two ways alternated
call by call (the order reversed every other round), medians, and Pillow's median over
numpy's (above 1: numpy is faster).

    .venv/bin/python scripts/bench/rotation_bench.py [--rounds 400] [--size 80x80] [--check 300]

The result (docs/lab/benchmarks.md, "A turned query's rotation in numpy (issue 19)"): numpy takes
1.5-2x Pillow's CPU time (0.67-0.68x Pillow's speed for one angle, 0.49-0.61x for four), so
verification keeps Pillow's rotate.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

BILINEAR = Image.Resampling.BILINEAR
STEP_ANGLES = (3.7, -2.1, 5.5, -6.3)  # a step's angles: rounded to 0.1 degree, within +-7


def pillow_matrix(angle: float, width: int, height: int) -> tuple[float, float, float, float, float, float]:
    """The inverse affine matrix `Image.rotate(angle)` hands to `transform` (no expand, centre or
    translation), with Pillow's float operations in Pillow's order (Image.py `rotate`): the
    angle taken modulo 360 first (-2.1 turns as 357.9, whose sine differs in the last bits),
    cos and sin rounded to 15 digits, the translation `transform(-cx - 0, -cy - 0)` (a*x + b*y
    + 0.0) with the centre added after."""
    turn = -math.radians(angle % 360.0)
    a, b = round(math.cos(turn), 15), round(math.sin(turn), 15)
    d, e = round(-math.sin(turn), 15), round(math.cos(turn), 15)
    cx, cy = width / 2, height / 2
    return a, b, (a * -cx + b * -cy + 0.0) + cx, d, e, (d * -cx + e * -cy + 0.0) + cy


def numpy_rotated(rgb: np.ndarray, angles: Sequence[float], fill: tuple[int, int, int]) -> np.ndarray:
    """(len(angles), h, w, 3) uint8: `rgb` (h, w, 3) uint8 turned by each angle (degrees,
    anticlockwise) exactly as `Image.fromarray(rgb).rotate(angle, resample=BILINEAR,
    fillcolor=fill)` turns it, the bilinear turns made together. `rgb` is not modified."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(f"an (h, w, 3) uint8 picture is needed, not {rgb.dtype} {rgb.shape}")
    if len(fill) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in fill):
        raise ValueError(f"fill is three levels 0-255, not {fill!r}")
    height, width = rgb.shape[:2]
    out = np.empty((len(angles), height, width, 3), np.uint8)
    resampled = []
    for i, angle in enumerate(angles):
        # rotate()'s fast paths (no resampling, no fill): a copy, a flip, a square's quarter turn.
        turn = angle % 360.0
        if turn == 0:
            out[i] = rgb
        elif turn == 180:
            out[i] = rgb[::-1, ::-1]
        elif turn in (90, 270) and width == height:
            out[i] = np.rot90(rgb, 1 if turn == 90 else 3)
        else:
            resampled.append(i)
    if not resampled:
        return out
    turned = _bilinear(rgb, [pillow_matrix(angles[i], width, height) for i in resampled], fill)
    if len(resampled) == len(angles):
        return turned
    out[resampled] = turned
    return out


def _bilinear(rgb: np.ndarray, matrices: Sequence[Sequence[float]], fill: tuple[int, int, int]) -> np.ndarray:
    """Pillow's ImagingGenericTransform with affine_transform and bilinear_filter32RGB
    (libImaging/Geometry.c), for every matrix at once, in float64 with the C code's operations
    in its order: the same doubles, so the same truncated bytes."""
    height, width = rgb.shape[:2]
    a = np.array(matrices).T[:, :, None, None]  # (6, angles, 1, 1)
    columns, rows = np.arange(width) + 0.5, (np.arange(height) + 0.5)[:, None]
    # affine_transform: xin = a0 * (x + 0.5) + a1 * (y + 0.5) + a2, summed left to right (the
    # products are the same per column and per row, so they are made once for each).
    xin = a[0] * columns + a[1] * rows
    xin += a[2]
    yin = a[3] * columns + a[4] * rows
    yin += a[5]
    # The filter writes nothing where the point lies outside [0, w) x [0, h): those pixels keep
    # the fill that transform() painted the new image with.
    inside = xin >= 0
    inside &= xin < width
    inside &= yin >= 0
    inside &= yin < height
    # Then the pixel centres: xin -= 0.5, x = FLOOR(xin) (floor, negatives too), dx = xin - x.
    xin -= 0.5
    yin -= 0.5
    left, top = np.floor(xin), np.floor(yin)
    xin -= left  # dx
    yin -= top  # dy
    # For a point inside, x and y run from -1 to w - 1 and h - 1: each pixel reads the pair
    # (in[x0], in[x1] - in[x0]) of its row and of the row below from `_pairs`; outside, the
    # fill's pair, twice.
    stride = width + 2
    fill_entry = (height + 2) * stride
    top += 1
    top *= stride
    top += left
    index = np.where(inside, top, fill_entry - 1).astype(np.intp)
    index += 1
    below = index + stride
    below[~inside] = fill_entry
    table = _pairs(rgb, fill, fill_entry)
    upper, lower = np.empty((*index.shape, 2)), np.empty((*index.shape, 2))
    v1, v2 = np.empty(index.shape), np.empty(index.shape)
    out = np.empty((*index.shape, 3), np.uint8)
    for band in range(3):
        np.take(table[band], index, axis=0, out=upper, mode="wrap")
        np.take(table[band], below, axis=0, out=lower, mode="wrap")
        # v1 = in[x0] + (in[x1] - in[x0]) * dx, v2 the same on the next row, v1 + (v2 - v1) * dy
        np.multiply(upper[..., 1], xin, out=v1)
        v1 += upper[..., 0]
        np.multiply(lower[..., 1], xin, out=v2)
        v2 += lower[..., 0]
        v2 -= v1
        v2 *= yin
        v1 += v2
        np.copyto(out[..., band], v1, casting="unsafe")  # (UINT8) v1: truncated, as C converts
    return out


def _pairs(rgb: np.ndarray, fill: tuple[int, int, int], fill_entry: int) -> np.ndarray:
    """(3, fill_entry + 1, 2) float64: per band, for every pixel of the picture padded by one
    all round (row by row), in[x] and in[x + 1] - in[x], then the fill's pair (fill, 0): fill +
    0 * dx is the fill. The padding repeats the edge, as XCLIP and YCLIP clamp x0, x1 and the
    row: a point on the last row has no row below, where the C code takes v2 = v1, which the
    repeated row gives too. (A pair on the right padding, whose difference runs into the next
    row, is never read: x + 1 is at most w there.)"""
    height, width = rgb.shape[:2]
    table = np.empty((3, fill_entry + 1, 2))
    padded = table[:, :fill_entry, 0].reshape(3, height + 2, width + 2)
    padded[:, 1:-1, 1:-1] = rgb.transpose(2, 0, 1)
    padded[:, 0, 1:-1], padded[:, -1, 1:-1] = padded[:, 1, 1:-1], padded[:, -2, 1:-1]
    padded[:, :, 0], padded[:, :, -1] = padded[:, :, 1], padded[:, :, -2]
    np.subtract(table[:, 1:fill_entry, 0], table[:, : fill_entry - 1, 0], out=table[:, : fill_entry - 1, 1])
    table[:, fill_entry - 1, 1] = 0.0
    table[:, fill_entry, 0], table[:, fill_entry, 1] = fill, 0.0
    return table


def pillow_rotated(image: Image.Image, angles: Sequence[float], fill: tuple[int, int, int]) -> list[np.ndarray]:
    """What verification does today: one Pillow call per angle, on the Image it keeps."""
    return [np.asarray(image.rotate(angle, resample=BILINEAR, fillcolor=fill)) for angle in angles]


def check(cases: int, seed: int = 19) -> int:
    """Random pictures (1-90 px a side, noise or smooth), angles and fills: numpy's turns against
    Pillow's. The number of turns compared; SystemExit(1) at the first difference."""
    rng = np.random.default_rng(seed)
    compared = 0
    for case in range(cases):
        height, width = (int(v) for v in rng.integers(1, 91, 2))
        if case % 2:
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:  # smooth: the bilinear weights then decide many a truncation
            yy, xx = np.mgrid[0:height, 0:width]
            rgb = np.stack([(xx * 255 // max(width - 1, 1)), (yy * 255 // max(height - 1, 1)), (xx + yy) % 256], -1)
            rgb = rgb.astype(np.uint8)
        angles = [round(float(v), 1) or 0.1 for v in rng.uniform(-7, 7, int(rng.integers(1, 5)))]
        fill = (int(rng.integers(256)), int(rng.integers(256)), int(rng.integers(256)))
        ours = numpy_rotated(rgb, angles, fill)
        theirs = pillow_rotated(Image.fromarray(rgb), angles, fill)
        for angle, mine, pillow in zip(angles, ours, theirs, strict=True):
            if not np.array_equal(mine, pillow):
                print(f"differs: {height}x{width} turned {angle}, fill {fill}", file=sys.stderr)
                raise SystemExit(1)
            compared += 1
    return compared


def timed(ways: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median thread CPU time (us) of each way, the ways alternated call by call."""
    samples: dict[str, list[int]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            started = time.thread_time_ns()
            ways[name]()
            samples[name].append(time.thread_time_ns() - started)
    return {name: statistics.median(s) / 1000 for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=400, help="alternated calls of each way per angle count")
    parser.add_argument("--size", default="80x80", help="the picture's WIDTHxHEIGHT (verification's: 80x80)")
    parser.add_argument("--check", type=int, default=300, help="random cases compared with Pillow first")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    compared = check(args.check)
    print(f"bit-identical: {compared} turns of {args.check} random pictures")
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image, fill = Image.fromarray(rgb), (200, 190, 180)
    summary: dict[str, object] = {"size": args.size, "rounds": args.rounds, "identical_turns": compared}
    for count in (1, 4):
        angles = STEP_ANGLES[:count]
        ways = {
            "pillow": lambda angles=angles: pillow_rotated(image, angles, fill),
            "numpy": lambda angles=angles: numpy_rotated(rgb, angles, fill),
        }
        medians = timed(ways, args.rounds)
        ratio = medians["pillow"] / medians["numpy"]
        print(f"{count} angle(s): Pillow {medians['pillow']:.0f} us, numpy {medians['numpy']:.0f} us: {ratio:.2f}x")
        summary[f"angles_{count}"] = {**{name: round(us, 1) for name, us in medians.items()}, "ratio": round(ratio, 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
