"""Pixel steps shared by hashing and verification: luma, DCT, border trimming, CIELAB colour.

Each takes and returns numpy arrays of the <= 160 px working copy, so the index and the
query side of every pipeline see exactly the same pixels.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np


def planar(rgb: np.ndarray) -> np.ndarray:
    """The same (h, w, 3) pixels, stored channel by channel: every per-channel step (luma, the
    trim's comparisons) then reads contiguous memory, 3-4x faster than every third byte."""
    return np.ascontiguousarray(np.moveaxis(rgb, -1, 0)).transpose(1, 2, 0)


def luma(rgb: np.ndarray, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """BT.601 luma in `dtype`: for 8-bit pixels the same numbers as luma(rgb.astype(dtype)),
    each channel converted as it is weighed, and summed in place (in the same order)."""
    out = rgb[..., 0] * dtype(0.299)
    out += rgb[..., 1] * dtype(0.587)
    out += rgb[..., 2] * dtype(0.114)
    return out


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
    channels = outer_ring(rgb).T  # (3, ring): each channel's values side by side
    background = channel_medians(channels)
    # |v - b| <= tolerance, as two comparisons per channel: the same answer, half the work
    # (b - t and b + t are exact: b is a whole or half number).
    low, high = (background - TRIM_TOLERANCE)[:, None], (background + TRIM_TOLERANCE)[:, None]
    return background, float(((channels >= low) & (channels <= high)).all(axis=0).mean())


def channel_medians(channels: np.ndarray) -> np.ndarray:
    """np.median(channels, axis=1) of small integer rows, as float64: the same numbers (the
    middle value, or the mean of the two middle ones) without np.median's overhead, which cost
    more than the rest of the trim's arithmetic."""
    length = channels.shape[1]
    half = length // 2
    middle = np.partition(channels, [half - 1, half] if length % 2 == 0 else [half], axis=1).astype(np.float64)
    return middle[:, half] if length % 2 else (middle[:, half - 1] + middle[:, half]) / 2.0


def off_colour(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
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


def trim_box(rgb: np.ndarray, passes: int = TRIM_PASSES) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): where `trim_uniform_border` cuts `rgb` (after at most
    `passes` borders). Callers that also need other arrays of the trimmed picture (its luma)
    slice them rather than recompute them."""
    top, left = 0, 0
    bottom, right = rgb.shape[:2]
    ring = ring_colour(rgb)
    for _ in range(passes):
        inner = rgb[top:bottom, left:right]
        height, width = inner.shape[:2]
        background, uniform = ring
        if uniform < 0.5:
            break
        off = off_colour(inner, background)
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
        ring = ring_colour(inner)  # the next pass's ring, unless the line below is dropped
        # Between two borders (padding around a shot's own margin, a frame) resampling and
        # JPEG leave a blended line: one that makes the inner border look non-uniform, or one
        # uniform in a colour of neither border. The border within it is what comes off next.
        if min(inner.shape[:2]) > 8:
            within = ring_colour(inner[1:-1, 1:-1])
            blended = ring[1] < 0.5 or float(np.abs(within[0] - ring[0]).max()) > TRIM_TOLERANCE
            if within[1] >= 0.5 and blended:
                top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
                ring = within
    return top, bottom, left, right


def trim_uniform_border(rgb: np.ndarray) -> np.ndarray:
    """`rgb` without its uniform borders (a frame, padding, a shot's own margin): see above."""
    return crop(rgb, trim_box(rgb))


def crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The (top, bottom, left, right) box of an array, as a view."""
    top, bottom, left, right = box
    return array[top:bottom, left:right]


def skin_coloured(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """Whether each colour (its channels' levels) is the colour of skin, by the classic RGB rule of
    Peer et al.: a face or an arm, which a shop does not recolour and every edit of the whole
    picture changes as it changes the rest."""
    return (
        (red > 95) & (green > 40) & (blue > 20)
        & (red - np.minimum(green, blue) > 15) & (red - green > 15) & (red > blue)
    )  # fmt: skip


# sRGB (D65) -> XYZ, and the D65 white point, for CIELAB.
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)


def _srgb_to_linear(levels: np.ndarray) -> np.ndarray:
    encoded = levels.astype(np.float64) / 255.0
    return np.where(encoded > 0.04045, ((encoded + 0.055) / 1.055) ** 2.4, encoded / 12.92)


# An 8-bit level's linear light, computed once per level: each pixel then looks its value up
# rather than raising it to the power 2.4, which took half of the conversion's time.
_LINEAR = _srgb_to_linear(np.arange(256))
_LINEAR.flags.writeable = False


def cielab_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB a*, b* of 8-bit sRGB pixels, in numpy (Pillow's LAB builds a colour transform per call)."""
    linear = _LINEAR[rgb]
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), xyz * (24389 / 27 / 116) + 16 / 116)
    return 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])


def bright_srgb(luma: np.ndarray, a_b: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB levels (0-255, unrounded) of pixels of luma `luma` (0-255) and colour `a_b`
    (2, ...), each rebuilt from its luma (as the lightness of a grey of that luma: close enough
    for the hue a clip turns) and its colour: what `brightened_ab` brightens."""
    encoded = np.clip(luma, 0, 255) / 255.0
    lightness = np.where(encoded > 0.04045, ((encoded + 0.055) / 1.055) ** 2.4, encoded / 12.92)
    fy = np.where(lightness > 216 / 24389, np.cbrt(lightness), lightness * (24389 / 27 / 116) + 16 / 116)
    return _srgb_of(fy, a_b[0], a_b[1])


def brightened_ab(srgb: np.ndarray, factor: float) -> np.ndarray:
    """(2, ...) a*, b* of `bright_srgb` pixels once their 8-bit sRGB channels are multiplied by
    `factor` and clipped at 255, as a brightness edit does: the saturated channel of a bright
    colour clips first, which turns its hue. Split from `bright_srgb` so the factors a query
    tries share one rebuild (most of the cost)."""
    a, b = cielab_ab(np.clip(np.round(srgb * factor), 0, 255).astype(np.uint8))
    return np.stack([a, b])


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
        too_bright = luma(_srgb_of((middle + 16) / 116, a_star, b_star)) > gray
        high = np.where(too_bright, middle, high)
        low = np.where(too_bright, low, middle)
    return np.clip(_srgb_of(((low + high) / 2 + 16) / 116, a_star, b_star), 0, 255).round().astype(np.uint8)


def _srgb_of(fy: np.ndarray, a_star: np.ndarray, b_star: np.ndarray) -> np.ndarray:
    """sRGB in 0-255 (float, unclipped above) of CIELAB colours given by f(Y) (the lightness
    before its L* scaling) and a*, b*: the inverse of `cielab_ab`'s steps."""
    f = np.stack([fy + a_star / 500.0, fy, fy - b_star / 200.0], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, (f - 16 / 116) * (27 * 116 / 24389)) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    return np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, linear * 12.92) * 255.0
