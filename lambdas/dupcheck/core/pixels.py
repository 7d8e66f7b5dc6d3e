"""Pixel steps shared by hashing and verification: luma, DCT, border trimming, CIELAB colour.

Each takes and returns numpy arrays of the <= 160 px working copy, so the index and the
query side of every pipeline see exactly the same pixels.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


@cache
def cosine_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II (scipy.fftpack's, up to a factor 2 that a median comparison ignores)."""
    k = np.arange(n)[:, None]
    return np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))


@cache
def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II: `D @ X @ D.T` equals scipy's dctn(X, norm="ortho"), without scipy."""
    matrix = np.sqrt(2.0 / n) * cosine_matrix(n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def low_frequencies(grids: np.ndarray, keep: int) -> np.ndarray:
    """(..., n, n) -> (..., keep * keep): the lowest orthonormal DCT frequencies, mean (DC) first."""
    matrix = dct_matrix(grids.shape[-1])[:keep]
    low = matrix @ grids @ matrix.T
    return low.reshape(*low.shape[:-2], keep * keep)


# Trim: a border is "uniform" when most of the outer ring is within TRIM_TOLERANCE of its median
# colour; rows and columns holding fewer off-colour pixels than TRIM_MIN_FILL of the fullest row
# (column) are cut, so a small badge or a rotated corner does not hold the box open, and padding
# (which widens every row) does not move it. Repeated: a frame, then the shot's own margin.
TRIM_TOLERANCE = 32
TRIM_MIN_FILL = 0.15
TRIM_PASSES = 3


def outer_ring(image: np.ndarray) -> np.ndarray:
    """(h, w, ...) -> (2h + 2w, ...): the pixels of the outer ring (the corners twice)."""
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def ring_colour(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The outer ring's median colour, and the share of the ring within tolerance of it."""
    ring = outer_ring(rgb).astype(np.int16)
    background = np.median(ring, axis=0)
    return background, float((np.abs(ring - background).max(axis=1) <= TRIM_TOLERANCE).mean())


def _off_colour(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels farther than the tolerance from `background` in any channel. Compared as 8-bit
    integers (v < b - t is v < ceil(b - t) for an integer v): comparing uint8 pixels with a
    float threshold converts every pixel to float64 first, 3x the time for the same answer."""
    off = np.zeros(rgb.shape[:2], dtype=bool)
    for channel in range(3):
        values = rgb[..., channel]
        low = math.ceil(background[channel] - TRIM_TOLERANCE)
        high = math.floor(background[channel] + TRIM_TOLERANCE)
        if low > 0:
            off |= values < low
        if high < 255:
            off |= values > high
    return off


def trim_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): where `trim_uniform_border` cuts `rgb`. Callers that also
    need other arrays of the trimmed picture (its luma) slice them rather than recompute them."""
    top, left = 0, 0
    bottom, right = rgb.shape[:2]
    for _ in range(TRIM_PASSES):
        inner = rgb[top:bottom, left:right]
        height, width = inner.shape[:2]
        background, uniform = ring_colour(inner)
        if uniform < 0.5:
            break
        off = _off_colour(inner, background)
        row_fill, col_fill = off.sum(axis=1), off.sum(axis=0)
        rows = np.flatnonzero(row_fill > TRIM_MIN_FILL * row_fill.max())
        cols = np.flatnonzero(col_fill > TRIM_MIN_FILL * col_fill.max())
        if len(rows) < height * 0.2 or len(cols) < width * 0.2:
            break  # almost nothing inside: trimming would keep noise, not the subject
        cut = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if cut == (0, height, 0, width):
            break
        top, bottom, left, right = top + cut[0], top + cut[1], left + cut[2], left + cut[3]
        inner = rgb[top:bottom, left:right]
        # Between two borders (padding around a shot's own margin, a frame) resampling and
        # JPEG leave a blended line, which makes the inner border look non-uniform: drop it.
        if min(inner.shape[:2]) > 8 and ring_colour(inner)[1] < 0.5 <= ring_colour(inner[1:-1, 1:-1])[1]:
            top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
    return top, bottom, left, right


def trim_uniform_border(rgb: np.ndarray) -> np.ndarray:
    """`rgb` without its uniform borders (a frame, padding, a shot's own margin): see above."""
    return crop(rgb, trim_box(rgb))


def crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The (top, bottom, left, right) box of an array, as a view."""
    top, bottom, left, right = box
    return array[top:bottom, left:right]


# sRGB (D65) -> XYZ, and the D65 white point, for CIELAB.
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def cielab_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB a*, b* of sRGB pixels, in numpy (Pillow's LAB builds a colour transform per call)."""
    linear = rgb.astype(np.float64) / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), xyz * (24389 / 27 / 116) + 16 / 116)
    return 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])
