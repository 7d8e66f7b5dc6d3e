"""Pillow's BOX resize, in numpy, bit for bit, for several pictures in one call.

Verification resizes a few tiny pictures (a turned query's working copy and its trimmed crop,
<= 80 px) per turning step; through Pillow each resize costs ~70 us, nearly all of it the call's
setup. Here every picture of a call goes through the same few numpy operations, each picture's
axis tables padded to the longest (the padding reads a zero pixel with a zero weight).

The numbers are Pillow's (src/libImaging/Resample.c, checked against the installed Pillow 13.0.0
by tests/unit/test_resample.py): `precompute_coeffs` gives each output pixel its first source
pixel and its weights (double, divided by their sum); an axis whose size does not change is not
resampled at all (its pixels are copied, not multiplied by 1). The two passes run horizontal
first, except when the height loses more than twice as many pixels as the width
(`vertical_first`, Pillow PR 9549): then vertical first, which here is the horizontal-first
resize of the transposed picture, transposed back.
- Mode "F" (`ImagingResample*_32bpc`): each output pixel's sum runs in double, tap after tap from
  0.0 in the source order, and each pass is stored as float32. Floating-point additions do not
  reorder, so the taps are added one at a time here too (a matmul would sum them in its own order).
- 8-bit ("RGB", `ImagingResample*_8bpc`): the weights are rounded to 22-bit fixed point, the
  sums are integers started at half a unit, then shifted down and clamped to 0..255 per pass.
  Those integers stay below 2**31, exact in float64 in any order, so a BLAS matmul sums them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# Pillow's fixed point for 8-bit pixels: 32 bits less 8 for the pixel and 2 for overshoot.
PRECISION_BITS = 32 - 8 - 2
_HALF_UNIT = float(1 << (PRECISION_BITS - 1))
_UNIT_INVERSE = 1.0 / (1 << PRECISION_BITS)


def box_resized_float(planes: Sequence[np.ndarray], side: int) -> np.ndarray:
    """(n, side, side) float32: each float32 plane (h_i, w_i) resized as Pillow's
    `Image.fromarray(plane, mode="F").resize((side, side), Image.Resampling.BOX)` resizes it,
    bit for bit."""
    planes, turned = _in_pass_order(planes, side, ndim=2, dtype=np.float32)
    heights, widths = [plane.shape[0] for plane in planes], [plane.shape[1] for plane in planes]
    n = len(planes)
    if n == 0:
        return np.zeros((0, side, side), dtype=np.float32)
    # One zero row and one zero column past the largest plane: the padded taps read them.
    padded = np.zeros((n, max(heights) + 1, max(widths) + 1), dtype=np.float32)
    for plane, h, w, out in zip(planes, heights, widths, padded, strict=True):
        out[:h, :w] = plane
    which = np.arange(n)[:, None, None]
    # Horizontal pass, kept transposed: across[i, x, y] (each gather puts its taps' axes first).
    col_index, col_weight = _stacked_taps(tuple(widths), side)
    across = _tap_sums(padded[which, :, col_index], col_weight).astype(np.float32)
    for i in _unchanged(widths, side):  # Pillow skips the pass: the pixels, not 0.0 + pixel * 1.0
        across[i] = padded[i, :, :side].T
    row_index, row_weight = _stacked_taps(tuple(heights), side)
    resized = _tap_sums(across[which, :, row_index], row_weight).astype(np.float32)
    for i in _unchanged(heights, side):
        resized[i] = across[i, :, :side].T
    resized[turned] = resized[turned].transpose(0, 2, 1)
    return resized


def box_resized_rgb(pictures: Sequence[np.ndarray], side: int) -> np.ndarray:
    """(n, side, side, 3) uint8: each RGB uint8 picture (h_i, w_i, 3) resized as Pillow's
    `Image.fromarray(picture).resize((side, side), Image.Resampling.BOX)` resizes it, bit for bit."""
    pictures, turned = _in_pass_order(pictures, side, ndim=3, dtype=np.uint8)
    heights, widths = [picture.shape[0] for picture in pictures], [picture.shape[1] for picture in pictures]
    n = len(pictures)
    if n == 0:
        return np.zeros((0, side, side, 3), dtype=np.uint8)
    padded = np.zeros((n, max(heights), max(widths), 3), dtype=np.uint8)
    for picture, h, w, out in zip(pictures, heights, widths, padded, strict=True):
        out[:h, :w] = picture
    # Channel by channel (one conversion, which numpy does fast from any layout), so that each
    # pass is one matmul a picture and neither pass needs its input transposed.
    planes = padded.transpose(0, 3, 1, 2).astype(np.float32)
    ones, fixed = _stacked_windows(tuple(widths), side, padded.shape[2])
    across = _shifted(planes @ ones.transpose(0, 2, 1)[:, None], fixed[:, None, None, :])
    ones, fixed = _stacked_windows(tuple(heights), side, padded.shape[1])
    resized = _shifted(ones[:, None] @ across.astype(np.float32), fixed[:, None, :, None])
    resized[turned] = resized[turned].transpose(0, 1, 3, 2)
    return resized.transpose(0, 2, 3, 1).astype(np.uint8)


def vertical_first(height: int, width: int, side: int) -> bool:
    """Whether Pillow 13 resizes a height x width picture to side x side vertically first: when
    the height loses more than twice as many pixels as the width (found by testing the installed
    Pillow 13.0.0 over every size to 200; the order changes float32 results and 8-bit roundings)."""
    return height - side > 2 * (width - side)


def _in_pass_order(
    pictures: Sequence[np.ndarray], side: int, ndim: int, dtype: type[np.generic]
) -> tuple[list[np.ndarray], list[int]]:
    """The pictures as the horizontal-first resize takes them (those Pillow resizes vertically
    first transposed, views only) and the positions of the transposed ones."""
    if isinstance(side, bool) or not isinstance(side, int | np.integer) or side < 1:
        raise ValueError(f"side must be a positive integer, got {side!r}")
    for picture in pictures:
        if picture.ndim != ndim or picture.dtype != dtype or (ndim == 3 and picture.shape[2] != 3):
            wanted = "(h, w) float32" if ndim == 2 else "(h, w, 3) uint8"
            raise ValueError(f"expected {wanted} pictures, got {picture.shape} {picture.dtype}")
        if picture.shape[0] < 1 or picture.shape[1] < 1:
            raise ValueError(f"cannot resize an empty picture {picture.shape}")
    turned = [i for i, picture in enumerate(pictures) if vertical_first(picture.shape[0], picture.shape[1], side)]
    ordered = [picture.swapaxes(0, 1) if i in turned else picture for i, picture in enumerate(pictures)]
    return ordered, turned


def _unchanged(sizes: Sequence[int], side: int) -> list[int]:
    return [i for i, size in enumerate(sizes) if size == side]


def _tap_sums(taps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, out, rest) float64: taps (n, out, k, rest) float32 times weights (n, out, k), summed
    as Pillow's 32-bit pass sums them: from 0.0, one tap after the other, each product in double."""
    sums = np.zeros((taps.shape[0], taps.shape[1], taps.shape[3]), dtype=np.float64)
    for k in range(taps.shape[2]):
        sums += taps[:, :, k] * weights[:, :, k, None]
    return sums


def _shifted(window_sums: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Pillow's 8-bit sums and clip8 from each output's window sum (float32, whole numbers):
    BOX gives every pixel of an output's window the same fixed-point weight, so Pillow's sum is
    that weight times the window's sum (< 2**31: exact in float64), plus half a unit, shifted
    down. The weights are never negative and add up to at most 2**22 + taps / 2, so a sum of
    8-bit pixels never shifts down past 255: clip8's clamp would change nothing."""
    sums = window_sums * fixed  # float64: the weights are
    sums += _HALF_UNIT
    sums *= _UNIT_INVERSE
    return np.floor(sums, out=sums)


@lru_cache(maxsize=1024)
def box_coefficients(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's `precompute_coeffs` for BOX over a whole axis of n_in pixels resized to n_out:
    (n_out,) each output pixel's first source pixel and (n_out, k) its weights (double, divided
    by their sum; zero past the pixel's own count)."""
    scale = float(n_in) / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    centre = (np.arange(n_out) + 0.5) * scale
    # C's (int) casts truncate toward zero, as numpy's do.
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    count = np.minimum((centre + support + 0.5).astype(np.int64), n_in) - first
    offsets = np.arange(max(int(count.max()), 1))
    position = ((first[:, None] + offsets).astype(np.float64) - centre[:, None] + 0.5) * (1.0 / filterscale)
    inside = (offsets < count[:, None]) & (position > -0.5) & (position <= 0.5)
    weights = inside.astype(np.float64)
    total = weights.sum(axis=1, keepdims=True)  # whole numbers: exact in any order
    np.divide(weights, total, out=weights, where=total != 0)
    for array in (first, weights):
        array.flags.writeable = False
    return first, weights


@lru_cache(maxsize=256)
def _stacked_taps(sizes: tuple[int, ...], side: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, side, k) source index and weight of every tap of each axis, padded to the longest:
    a padded tap reads index -1 (the zero row or column past every picture) with weight 0."""
    axes = [box_coefficients(size, side) for size in sizes]
    taps = max(weights.shape[1] for _, weights in axes)
    index = np.full((len(sizes), side, taps), -1, dtype=np.intp)
    weight = np.zeros((len(sizes), side, taps), dtype=np.float64)
    for (first, weights), size, out_index, out_weight in zip(axes, sizes, index, weight, strict=True):
        k = weights.shape[1]
        # Pillow multiplies every pixel of a tap's count, zero weights included (0 * inf is nan).
        counted = first[:, None] + np.arange(k) < size
        out_index[:, :k] = np.where(counted, first[:, None] + np.arange(k), -1)
        out_weight[:, :k] = weights
    for array in (index, weight):
        array.flags.writeable = False
    return index, weight


@lru_cache(maxsize=1024)
def box_windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's 8-bit BOX weights for an axis of n_in pixels resized to n_out, factored: a
    (n_out, n_in) float32 matrix of ones over each output's window (the pixels of non-zero
    weight) and (n_out,) the window's weight as `normalize_coeffs_8bpc` rounds it to
    PRECISION_BITS fixed point (a whole number, in float64). Sums of up to 200 8-bit pixels
    stay whole and below 2**24: a float32 matmul adds them exactly, in any order."""
    first, weights = box_coefficients(n_in, n_out)
    ones = np.zeros((n_out, n_in + weights.shape[1]), dtype=np.float32)
    ones[np.arange(n_out)[:, None], first[:, None] + np.arange(weights.shape[1])] = weights > 0
    # Every non-zero weight of an output is the same 1 / (window length): its first one speaks for all.
    fixed = np.trunc(0.5 + weights.max(axis=1) * float(1 << PRECISION_BITS))
    ones = ones[:, :n_in].copy()
    for array in (ones, fixed):
        array.flags.writeable = False
    return ones, fixed


@lru_cache(maxsize=256)
def _stacked_windows(sizes: tuple[int, ...], side: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """`box_windows` of each axis, stacked: (n, side, length) ones, zero past each axis, and (n, side)."""
    ones = np.zeros((len(sizes), side, length), dtype=np.float32)
    for size, out in zip(sizes, ones, strict=True):
        out[:, :size] = box_windows(size, side)[0]
    fixed = np.stack([box_windows(size, side)[1] for size in sizes])
    for array in (ones, fixed):
        array.flags.writeable = False
    return ones, fixed
