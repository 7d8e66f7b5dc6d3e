"""Small array helpers the matching steps share: resampling matrices, zero-mean unit blocks,
one-pixel padding and the 3x3 neighbourhood, centre weights, medians without np.median.

Each gives exactly the numbers of the numpy call it stands for (np.pad, np.median, a mean over
reshaped axes), without that call's generality: several run a few hundred times a query, where
the general call's overhead was most of their time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from functools import cache, lru_cache

import numpy as np


@lru_cache(maxsize=8192)  # windows come from a fixed lattice: a few thousand at most
def sampler(n_in: int, n_out: int, start: float, width: float) -> np.ndarray:
    """(n_out, n_in) bilinear resampling of the window [start, start + width] of a unit-length axis."""
    centres = np.clip((start + (np.arange(n_out) + 0.5) / n_out * width) * n_in - 0.5, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = (centres - low).astype(np.float32)
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def exp(values: np.ndarray) -> np.ndarray:
    """`np.exp` by the C library's `exp`, value by value, for the few values of a filter: numpy's
    vectorised float64 `exp` gives other last digits under another CPU's kernels (AVX-512's
    against the narrowest), and every sum read from the filter would follow them."""
    flat = [math.exp(float(v)) for v in np.ravel(values)]
    return np.array(flat, dtype=np.float64).reshape(np.shape(values))


def samplers(n_in: int, n_out: int, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """(len(windows), n_out, n_in): `sampler` of each (start, width), the same numbers, built
    together: the edits' border search asks for a few hundred windows off the lattice, which
    one at a time took most of a `similar` match's edits."""
    if not windows:
        return np.zeros((0, n_out, n_in), dtype=np.float32)
    starts, widths = (np.array(values, dtype=np.float64)[:, None] for values in zip(*windows, strict=True))
    centres = np.clip((starts + (np.arange(n_out) + 0.5) / n_out * widths) * n_in - 0.5, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = (centres - low).astype(np.float32)
    matrix = np.zeros((len(windows), n_out, n_in), dtype=np.float32)
    which, rows = np.arange(len(windows))[:, None], np.arange(n_out)[None, :]
    np.add.at(matrix, (which, rows, low), 1 - frac)
    np.add.at(matrix, (which, rows, high), frac)
    return matrix


def unit(blocks: np.ndarray) -> np.ndarray:
    """Zero mean and unit norm over the last two axes (a flat block stays zero)."""
    centred = blocks - blocks.mean(axis=(-2, -1), keepdims=True)
    norm = np.sqrt((centred * centred).sum(axis=(-2, -1), keepdims=True))
    return centred / np.maximum(norm, 1e-6)


def halve(grids: np.ndarray) -> np.ndarray:
    """2x2 means over the last two axes (even sides). (Strided sums: 20x faster than a mean over
    a reshaped array's axes, 6% of a new product's verification.)"""
    pairs = grids[..., 0::2, :] + grids[..., 1::2, :]
    return (pairs[..., 0::2] + pairs[..., 1::2]) * 0.25


# -- the 3x3 neighbourhood ------------------------------------------------------------------------


def padded(values: np.ndarray, fill: bool | float | None = None) -> np.ndarray:
    """`values` with one more pixel on each side of its last two axes: `fill`, or the edge
    repeated (None). np.pad's `mode="edge"` or `constant_values`, the same values, without its
    generality (it took half of a residual called ~90 times a query)."""
    *lead, height, width = values.shape
    if fill is not None:
        out = np.full((*lead, height + 2, width + 2), fill, dtype=values.dtype)
        out[..., 1:-1, 1:-1] = values
        return out
    out = np.empty((*lead, height + 2, width + 2), dtype=values.dtype)
    out[..., 1:-1, 1:-1] = values
    out[..., 0, 1:-1], out[..., -1, 1:-1] = values[..., 0, :], values[..., -1, :]
    out[..., :, 0], out[..., :, -1] = out[..., :, 1], out[..., :, -2]
    return out


def shifts(wider: np.ndarray) -> Iterator[np.ndarray]:
    """The nine one-pixel shifts of a `padded` picture (on its last two axes), each the size of
    the picture: row shift first, then column, from up-left to down-right."""
    height, width = wider.shape[-2] - 2, wider.shape[-1] - 2
    for dy in range(3):
        for dx in range(3):
            yield wider[..., dy : dy + height, dx : dx + width]


def neighbourhood(values: np.ndarray, reduce: np.ufunc, fill: bool | float | None = None) -> np.ndarray:
    """`reduce` (np.minimum, np.maximum, np.logical_and) over each pixel's 3x3 neighbourhood, on
    the last two axes; outside the picture `fill`, or the edge repeated (None). A 3x3 erosion of
    a mask is `neighbourhood(mask, np.logical_and, fill=False)`."""
    out = values.copy()
    for shifted in shifts(padded(values, fill)):
        reduce(out, shifted, out=out)
    return out


def neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 3x3 neighbourhood (itself included) are in `mask` (int8)."""
    count = np.zeros(mask.shape, dtype=np.int8)
    for shifted in shifts(padded(mask.astype(np.int8), 0)):
        count += shifted
    return count


def least_shifted(
    mine: np.ndarray, predicted: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], dtype: type[np.floating]
) -> np.ndarray:
    """Per pixel, the least `distance(mine - shifted)` over the nine one-pixel shifts of
    `predicted` (edges repeated): each pixel allowed the alignment's last pixel of slack."""
    off: np.ndarray | None = None
    for shifted in shifts(padded(predicted)):
        found = distance(mine - shifted)
        if off is None:
            off = np.full(found.shape, np.inf, dtype)
        np.minimum(off, found, out=off)
    assert off is not None
    return off


def largest(channels: np.ndarray) -> np.ndarray:
    """The largest absolute value of three channels, per pixel (a reduction over a first axis
    of three, written out: numpy's reduction over a short axis is 6x slower)."""
    return np.maximum(np.maximum(np.abs(channels[0]), np.abs(channels[1])), np.abs(channels[2]))


def tiles(values: np.ndarray, tile: int) -> np.ndarray:
    """(rows, cols, tile * tile): the tiles of a square picture (the side cut to a multiple)."""
    k = values.shape[0] // tile
    return values[: k * tile, : k * tile].reshape(k, tile, k, tile).swapaxes(1, 2).reshape(k, k, tile * tile)


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a small mask, each as (row, column) coordinates in raster
    order, largest first (ties: the one that starts first in raster order). Labelled by runs
    (a picture has far fewer runs than pixels): each row's runs of set pixels, joined to the
    runs of the row above that touch them (a column apart at most), by union-find over the
    runs, all at once: each round hooks every pair's larger root onto the smaller, then jumps
    pointers to the roots (a few rounds)."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)  # each run's row and first column, in raster order...
    end = np.nonzero(edges == -1)[1]  # ...and the column after its last
    if not row.size:
        return []
    stride = width + 2  # a row's keys never reach the next row's
    start_keys, end_keys = row * stride + start, row * stride + end
    # The runs of the row above that a run touches: those ending at or after its start and
    # starting at or before its end (8-connected), a contiguous range of that row's runs.
    below = np.flatnonzero(row > 0)
    above_row = (row[below] - 1) * stride
    first = np.searchsorted(end_keys, above_row + start[below], side="left")
    last = np.searchsorted(start_keys, above_row + end[below], side="right") - 1
    count = np.maximum(last - first + 1, 0)
    a, b = np.repeat(below, count), _ranges(first, count)
    root = np.arange(row.size)
    while True:
        ra, rb = root[a], root[b]
        apart = ra != rb
        if not apart.any():
            break
        np.minimum.at(root, np.maximum(ra, rb)[apart], np.minimum(ra, rb)[apart])
        while True:  # every run straight to its root
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped
    lengths = end - start
    run_of = np.repeat(np.arange(row.size), lengths)  # each set pixel's run, in raster order
    members = _ranges(row * width + start, lengths)
    labels = root[run_of]
    order = np.argsort(labels, kind="stable")  # raster order kept within each region
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
    groups = np.split(members[order], starts[1:])
    groups.sort(key=lambda group: (-len(group), int(group[0])))
    return [np.stack(np.divmod(group, width), axis=1) for group in groups]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """range(start, start + count) of each pair, one after the other."""
    return np.repeat(starts, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))


# -- weights and medians --------------------------------------------------------------------------


@cache
def hann(length: int) -> np.ndarray:
    """np.hanning without its end zeros; cached, read-only."""
    window = np.hanning(length + 2)[1:-1]
    window.flags.writeable = False
    return window


@cache
def centre_weight(n: int) -> np.ndarray:
    """An n x n Hann window summing to 1: shares that count pixels less towards the borders,
    where badges, frames and rotation fill are. Cached, read-only."""
    weight = np.outer(hann(n), hann(n))
    weight = weight / weight.sum()
    weight.flags.writeable = False
    return weight


def odd_median(values: np.ndarray) -> float:
    """np.median of an odd number of values (its middle one), without np.median's overhead:
    a tenth of the time, the same value."""
    middle = len(values) // 2
    return float(np.partition(values, middle)[middle])


def odd_medians(values: np.ndarray) -> np.ndarray:
    """`odd_median` of each row of a stack (over the last axis, kept as an axis of one)."""
    middle = values.shape[-1] // 2
    return np.partition(values, middle, axis=-1)[..., middle : middle + 1]


def median(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=0) of values without NaN: the middle value, or the mean of the two
    middle ones in the values' own type, as np.median takes it; without np.median's overhead."""
    half = len(values) // 2
    if len(values) % 2:
        return np.partition(values, half, axis=0)[half]
    middle = np.partition(values, (half - 1, half), axis=0)
    return (middle[half - 1] + middle[half]) / 2
