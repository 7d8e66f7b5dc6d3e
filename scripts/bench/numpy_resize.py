"""Pillow's BOX resize, in numpy, bit for bit, for several pictures in one call.

Measured for issue 19 and not used by verification: a turning step's sixteen resizes cost
1.18-1.37x less than through Pillow (scripts/bench/resample_bench.py), 0.25-0.45 ms a step, not
worth a module of the service that must follow Pillow's own rules (docs/lab/benchmarks.md). Kept
beside its benchmark as the evidence, tested against the installed Pillow.

Verification resizes a few tiny pictures (a turned query's working copy and its trimmed crop,
<= 80 px) per turning step; through Pillow each resize costs ~60-80 us, most of it the call's
setup. Here all the pictures of a call go through the same few numpy operations, each
picture's taps padded to the longest.

The numbers are Pillow's (src/libImaging/Resample.c, checked against the installed Pillow 13.0.0
by tests/unit/pictures/test_resample.py):
- `precompute_coeffs` gives each output pixel a run of source pixels from `first`, each weighed
  box((source - centre + 0.5) / filterscale) (1 or 0) divided by their sum.
- Two passes, horizontal first, except when the height loses more than twice as many pixels as
  the width (`vertical_first`, Pillow PR 9549): then vertical first, which here is the
  horizontal-first resize of the transposed picture, transposed back. An axis whose size does
  not change is not resampled at all (its pixels are copied, not multiplied by 1).
- Mode "F" (`ImagingResample*_32bpc`): each output pixel's sum runs in double, tap after tap from
  0.0 in the source order, and each pass is stored as float32. Floating-point additions do not
  reorder, so the taps are added one at a time here too (a matmul would sum them in its own order).
- 8-bit ("RGB", `ImagingResample*_8bpc`): the weights are rounded to 22-bit fixed point, the
  sums are integers started at half a unit, then shifted down to 8 bits after each pass. Every
  pixel of an output's window has the same weight, so the sum is that weight times the window's
  pixel sum, which a float32 matmul with a matrix of ones adds exactly (whole numbers < 2**24).
Every bit is Pillow's for every input, -0.0 and infinities included, with one exception: where
two NaNs of opposite sign meet in a sum (NaN inputs next to both infinities), which sign the
result keeps is up to the processor's operand order, which numpy's loops do not promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

# Pillow's fixed point for 8-bit pixels: 32 bits less 8 for the pixel and 2 for overshoot.
PRECISION_BITS = 32 - 8 - 2
_UNIT_INVERSE = 1.0 / (1 << PRECISION_BITS)


def box_resized_float(planes: Sequence[np.ndarray], side: int) -> np.ndarray:
    """(n, side, side) float32: each float32 plane (h_i, w_i) resized as Pillow's
    `Image.fromarray(plane, mode="F").resize((side, side), Image.Resampling.BOX)` resizes it,
    bit for bit."""
    planes, turned = _in_pass_order(planes, side, ndim=2, dtype=np.float32)
    n = len(planes)
    if n == 0:
        return np.zeros((0, side, side), dtype=np.float32)
    heights, widths = [plane.shape[0] for plane in planes], [plane.shape[1] for plane in planes]
    # Column by column (columns[i, x, y]), zeros around each plane and a zero column and row
    # past the largest: the padded taps read them (with weight 0: zeros only, since 0 * inf
    # would be nan). Each tap then gathers a whole column (contiguous), and in float64 (exact),
    # as C multiplies: products of one type run in numpy's fast loops, mixed ones via buffers.
    columns = np.zeros((n, max(widths) + 1, max(heights) + 1), dtype=np.float64)
    for plane, h, w, out in zip(planes, heights, widths, columns, strict=True):
        out[:w, :h] = plane.T
    which = np.arange(n)[:, None]
    index, weight = _call_taps(widths, side)
    across = _tap_sums(columns[which, index], weight)  # across[i, x, y], as float32
    for i in _unchanged(widths, side):  # Pillow skips the pass: the pixels, not 0.0 + pixel * 1.0
        across[i] = columns[i, :side]
    # Row by row for the vertical pass: rows[i, y, x].
    rows = np.ascontiguousarray(across.transpose(0, 2, 1), dtype=np.float64)
    index, weight = _call_taps(heights, side)
    resized = _tap_sums(rows[which, index], weight)
    for i in _unchanged(heights, side):
        resized[i] = rows[i, :side]
    for i in turned:
        resized[i] = resized[i].T.copy()
    return resized


def box_resized_rgb(pictures: Sequence[np.ndarray], side: int) -> np.ndarray:
    """(n, side, side, 3) uint8: each RGB uint8 picture (h_i, w_i, 3) resized as Pillow's
    `Image.fromarray(picture).resize((side, side), Image.Resampling.BOX)` resizes it, bit for bit."""
    pictures, turned = _in_pass_order(pictures, side, ndim=3, dtype=np.uint8)
    n = len(pictures)
    if n == 0:
        return np.zeros((0, side, side, 3), dtype=np.uint8)
    heights, widths = [picture.shape[0] for picture in pictures], [picture.shape[1] for picture in pictures]
    height, width = max(heights), max(widths)
    # Channel by channel, then as float32 (whole numbers, exact below 2**24): each pass is one
    # matmul a picture with a matrix of ones over each output's window.
    planes = np.zeros((n, 3, height, width), dtype=np.uint8)
    for picture, h, w, out in zip(pictures, heights, widths, planes, strict=True):
        out[:, :h, :w] = picture.transpose(2, 0, 1)
    ones, scaled = _call_windows(widths, side, width)
    window_sums = planes.astype(np.float32).reshape(n, 3 * height, width) @ ones
    across = _shifted(window_sums.reshape(n, 3, height, side), scaled[:, None, None, :], np.float32)
    ones, scaled = _call_windows(heights, side, height)
    resized = _shifted(ones.transpose(0, 2, 1)[:, None] @ across, scaled[:, None, :, None], np.uint8)
    for i in turned:
        resized[i] = resized[i].transpose(0, 2, 1).copy()
    return np.ascontiguousarray(resized.transpose(0, 2, 3, 1))


def vertical_first(height: int, width: int, side: int) -> bool:
    """Whether Pillow 13 resizes a height x width picture to side x side vertically first: when
    the height loses more than twice as many pixels as the width (found by testing the installed
    Pillow 13.0.0 over sizes to 200; the order changes float32 results and 8-bit roundings)."""
    return height - side > 2 * (width - side)


class BoxTaps(NamedTuple):
    """Pillow's `precompute_coeffs` for BOX, for one axis of each of n pictures resized to
    `side`: output pixel j of picture i reads source pixels first[i, j] + t for t < reads[i, j],
    each with weight[i, j, t] (1 / the window's length, or 0 at a window's edge)."""

    first: np.ndarray  # (n, side) int64
    reads: np.ndarray  # (n, side) int64
    weight: np.ndarray  # (n, side, taps) float64, zero past each run


class _AxisTables(NamedTuple):
    """`box_taps` of every axis length 1..limit (row length - 1), in the forms the passes use."""

    reads: np.ndarray  # (limit, side): taps an output reads
    source: np.ndarray  # (taps, limit, side): source index of each tap, -1 past its reads
    weight: np.ndarray  # (taps, limit, side); tap first, so that a call takes each tap's whole rows
    start: np.ndarray  # (limit, side): an output's window of non-zero weights, [start, stop)
    stop: np.ndarray
    scaled: np.ndarray  # (limit, side) float64: the window's weight in 8-bit fixed point, / 2**22


@lru_cache(maxsize=32)
def _axis_tables(side: int, limit: int) -> _AxisTables:
    return _tables_of(range(1, limit + 1), side)


def _tables_of(lengths: Sequence[int], side: int) -> _AxisTables:
    taps = box_taps(lengths, side)
    offsets = np.arange(taps.weight.shape[2])
    source = np.where(offsets < taps.reads[..., None], taps.first[..., None] + offsets, -1)
    # A window's non-zero weights are a run (1 or 0 by position, the positions increasing) and
    # all the same; normalize_coeffs_8bpc rounds it (BOX's are never negative).
    inside = taps.weight > 0
    start = taps.first + inside.argmax(axis=2)
    fixed = np.trunc(0.5 + taps.weight.max(axis=2) * float(1 << PRECISION_BITS))
    tables = _AxisTables(
        taps.reads,
        source.transpose(2, 0, 1).copy(),
        taps.weight.transpose(2, 0, 1).copy(),
        start,
        start + inside.sum(axis=2),
        fixed * _UNIT_INVERSE,
    )
    for array in tables:
        array.flags.writeable = False
    return tables


_TABLE_LENGTHS = 256  # longer axes get tables of their own lengths only (a table of all grows as its square)


def _tables_for(sizes: Sequence[int], side: int) -> tuple[_AxisTables, np.ndarray]:
    """The tables covering every size of a call (built for lengths up to the next power of two,
    so that a few serve all calls), and each size's row in them."""
    longest = max(sizes)
    if longest > _TABLE_LENGTHS:
        return _tables_of(sizes, side), np.arange(len(sizes))
    return _axis_tables(side, max(64, 1 << (longest - 1).bit_length())), np.array(sizes, dtype=np.intp) - 1


def _call_taps(sizes: Sequence[int], side: int) -> tuple[np.ndarray, np.ndarray]:
    """(taps, n, side) source index (-1: the zero pixel past every picture) and (taps, n, side, 1)
    weight of each tap of each size, as many taps as the call's longest window, tap by tap."""
    tables, rows = _tables_for(sizes, side)
    taps = int(tables.reads[rows].max())
    return np.take(tables.source[:taps], rows, axis=1), np.take(tables.weight[:taps], rows, axis=1)[..., None]


def _call_windows(sizes: Sequence[int], side: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, length, side) float32: each output's window, ones down its column (zeros elsewhere);
    and (n, side) the window's fixed-point weight / 2**22."""
    tables, rows = _tables_for(sizes, side)
    limit = tables.reads.shape[0]
    if max(sizes) <= _TABLE_LENGTHS and limit * limit * side <= _WINDOW_TABLE_CELLS:
        return _window_matrices(side, limit)[rows, :length], tables.scaled[rows]
    source = np.arange(length)[:, None]
    inside = (source >= tables.start[rows, None, :]) & (source < tables.stop[rows, None, :])
    return inside.astype(np.float32), tables.scaled[rows]


_WINDOW_TABLE_CELLS = 1 << 18  # 1 MB of float32: colour's 16 px side up to 128 px pictures


@lru_cache(maxsize=8)
def _window_matrices(side: int, limit: int) -> np.ndarray:
    """(limit, limit, side) float32: `_call_windows`' matrix of every length 1..limit, looked up
    in one step instead of built from comparisons each call."""
    tables = _axis_tables(side, limit)
    source = np.arange(limit)[:, None]
    matrices = ((source >= tables.start[:, None, :]) & (source < tables.stop[:, None, :])).astype(np.float32)
    matrices.flags.writeable = False
    return matrices


def box_taps(sizes: Sequence[int], side: int) -> BoxTaps:
    """`precompute_coeffs` of Resample.c with the BOX filter (support 0.5), the same double
    operations in the same order, for every picture's axis at once."""
    size = np.asarray(sizes, dtype=np.int64)[:, None]
    scale = size / side
    filterscale = np.maximum(scale, 1.0)
    support = 0.5 * filterscale
    centre = (np.arange(side) + 0.5) * scale
    # C's (int) casts truncate toward zero, as numpy's do.
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    reads = np.minimum((centre + support + 0.5).astype(np.int64), size) - first
    taps = np.arange(max(int(reads.max()), 1))
    position = ((first[..., None] + taps).astype(np.float64) - centre[..., None] + 0.5) * (1.0 / filterscale)[..., None]
    inside = (taps < reads[..., None]) & (position > -0.5) & (position <= 0.5)
    weight = inside.astype(np.float64)
    total = weight.sum(axis=2, keepdims=True)  # whole numbers: exact in any order
    np.divide(weight, total, out=weight, where=total != 0)
    return BoxTaps(first, reads, weight)


def _in_pass_order(
    pictures: Sequence[np.ndarray], side: int, ndim: int, dtype: type[np.generic]
) -> tuple[list[np.ndarray], list[int]]:
    """The pictures as the horizontal-first resize takes them (those Pillow resizes vertically
    first transposed, views only) and the positions of the transposed ones."""
    if isinstance(side, bool) or not isinstance(side, int | np.integer) or side < 1:
        raise ValueError(f"side must be a positive integer, got {side!r}")
    ordered, turned = [], []
    for i, picture in enumerate(pictures):
        if picture.ndim != ndim or picture.dtype != dtype or (ndim == 3 and picture.shape[2] != 3):
            wanted = "(h, w) float32" if ndim == 2 else "(h, w, 3) uint8"
            raise ValueError(f"expected {wanted} pictures, got {picture.shape} {picture.dtype}")
        if picture.shape[0] < 1 or picture.shape[1] < 1:
            raise ValueError(f"cannot resize an empty picture {picture.shape}")
        if vertical_first(picture.shape[0], picture.shape[1], side):
            turned.append(i)
            picture = picture.swapaxes(0, 1)
        ordered.append(picture)
    return ordered, turned


def _unchanged(sizes: Sequence[int], side: int) -> list[int]:
    return [i for i, size in enumerate(sizes) if size == side]


def _tap_sums(taps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, out, rest) float32: taps (k, n, out, rest) float64 (a gathered copy: multiplied in
    place) times weights (k, n, out, 1), summed as Pillow's 32-bit pass sums them: from 0.0,
    one product after the other (numpy's sum and add.reduce may pair them otherwise), stored
    as float32."""
    taps *= weights
    sums = taps[0] + 0.0  # C starts from 0.0: a -0.0 product becomes 0.0
    for product in taps[1:]:
        sums += product
    return sums.astype(np.float32)


def _shifted(window_sums: np.ndarray, scaled: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """Pillow's 8-bit pass from each output's window sum and the window's fixed-point weight
    (/ 2**22): Pillow's integer sum (weight times window sum, < 2**31) plus half a unit, shifted
    down. In float64 all exact: products below 2**53, and scaling by 2**-22 rounds nothing.
    BOX weights are never negative and an output's add up to at most 2**22 + taps / 2, so a
    sum of 8-bit pixels never shifts down past 255: clip8's clamp would change nothing."""
    sums = window_sums.astype(np.float64)  # then one-type products (mixed ones go through buffers)
    sums *= scaled
    sums += 0.5
    return np.floor(sums, out=np.empty(sums.shape, dtype=dtype), casting="unsafe")
