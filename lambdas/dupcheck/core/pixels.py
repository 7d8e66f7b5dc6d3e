"""Pixel steps shared by hashing and verification: luma, DCT, border trimming, CIELAB colour.

Each takes and returns numpy arrays of the <= 160 px working copy, so the index and the
query side of every pipeline see exactly the same pixels.
"""

from __future__ import annotations

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
    """Pixels farther than the tolerance from `background` in any channel (one channel at a
    time: 18x faster than the max over a widened copy, and the same answer)."""
    off = np.zeros(rgb.shape[:2], dtype=bool)
    for channel in range(3):
        values = rgb[..., channel]
        off |= (values < background[channel] - TRIM_TOLERANCE) | (values > background[channel] + TRIM_TOLERANCE)
    return off


def trim_uniform_border(rgb: np.ndarray) -> np.ndarray:
    for _ in range(TRIM_PASSES):
        height, width = rgb.shape[:2]
        background, uniform = ring_colour(rgb)
        if uniform < 0.5:
            break
        off = _off_colour(rgb, background)
        row_fill, col_fill = off.sum(axis=1), off.sum(axis=0)
        rows = np.flatnonzero(row_fill > TRIM_MIN_FILL * row_fill.max())
        cols = np.flatnonzero(col_fill > TRIM_MIN_FILL * col_fill.max())
        if len(rows) < height * 0.2 or len(cols) < width * 0.2:
            break  # almost nothing inside: trimming would keep noise, not the subject
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (top, bottom, left, right) == (0, height, 0, width):
            break
        rgb = rgb[top:bottom, left:right]
        # Between two borders (padding around a shot's own margin, a frame) resampling and
        # JPEG leave a blended line, which makes the inner border look non-uniform: drop it.
        if min(rgb.shape[:2]) > 8 and ring_colour(rgb)[1] < 0.5 <= ring_colour(rgb[1:-1, 1:-1])[1]:
            rgb = rgb[1:-1, 1:-1]
    return rgb


# sRGB (D65) -> XYZ, and the D65 white point, for CIELAB.
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)


def cielab_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB a*, b* of sRGB pixels, in numpy (Pillow's LAB builds a colour transform per call)."""
    linear = rgb.astype(np.float64) / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), xyz * (24389 / 27 / 116) + 16 / 116)
    return 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])


def rgb_from_luma_ab(gray: np.ndarray, a_star: np.ndarray, b_star: np.ndarray, steps: int = 10) -> np.ndarray:
    """sRGB pixels (uint8) with the given luma (Rec. 601, as `luma`) and CIELAB a*, b*: the
    inverse of what a record's views keep, so a stored record can be looked at again (turned, as
    a query is, when a catalog is checked against itself). Views keep luma, not L*, so L* is
    found per pixel by bisection (luma grows with L* at fixed a*, b*); colours outside sRGB
    clip, as they did when the picture was taken. Ten halvings of L* (0-100) come within 0.1 of
    it, a fraction of a luma level."""
    low, high = np.zeros(gray.shape), np.full(gray.shape, 100.0)
    for _ in range(steps):
        middle = (low + high) / 2
        too_bright = luma(_lab_to_srgb(middle, a_star, b_star)) > gray
        high = np.where(too_bright, middle, high)
        low = np.where(too_bright, low, middle)
    return np.clip(_lab_to_srgb((low + high) / 2, a_star, b_star), 0, 255).round().astype(np.uint8)


def _lab_to_srgb(lightness: np.ndarray, a_star: np.ndarray, b_star: np.ndarray) -> np.ndarray:
    """CIELAB -> sRGB in 0-255 (float, unclipped above), the inverse of `cielab_ab`'s steps."""
    fy = (lightness + 16) / 116
    f = np.stack([fy + a_star / 500, fy, fy - b_star / 200], axis=-1)
    xyz = np.where(f**3 > 216 / 24389, f**3, (116 * f - 16) * 27 / 24389) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    return 255.0 * np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, linear * 12.92)
