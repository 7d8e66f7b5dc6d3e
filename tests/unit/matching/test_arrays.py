"""The shared array helpers (core/matching/arrays.py) give exactly the numbers of the numpy calls
and loops they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from dupcheck.core.matching import arrays

RNG = np.random.default_rng(11)


def _brute(values: np.ndarray, reduce: np.ufunc, pad: dict) -> np.ndarray:
    """`reduce` over each pixel's 3x3 neighbourhood of a 2-D array, one pixel at a time."""
    wider = np.pad(values, 1, **pad)
    out = np.empty_like(values)
    for y in range(values.shape[0]):
        for x in range(values.shape[1]):
            out[y, x] = reduce.reduce(wider[y : y + 3, x : x + 3], axis=None)
    return out


@pytest.mark.parametrize("shape", [(5, 7), (3, 2, 6, 4), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, bool])
def test_padded_is_np_pad(shape: tuple[int, ...], dtype: type) -> None:
    values = (RNG.random(shape) * 100).astype(dtype)
    width = [(0, 0)] * (len(shape) - 2) + [(1, 1), (1, 1)]
    edge = arrays.padded(values)
    assert edge.dtype == values.dtype and np.array_equal(edge, np.pad(values, width, mode="edge"))
    fill = False if dtype is bool else 0
    constant = arrays.padded(values, fill)
    assert constant.dtype == values.dtype and np.array_equal(constant, np.pad(values, width, constant_values=fill))


def test_neighbourhood_reductions_match_brute_force() -> None:
    values = RNG.random((9, 11))
    mask = RNG.random((9, 11)) > 0.3
    assert np.array_equal(arrays.neighbourhood(values, np.maximum), _brute(values, np.maximum, {"mode": "edge"}))
    assert np.array_equal(arrays.neighbourhood(values, np.minimum), _brute(values, np.minimum, {"mode": "edge"}))
    for fill in (False, True):
        eroded = arrays.neighbourhood(mask, np.logical_and, fill=fill)
        assert np.array_equal(eroded, _brute(mask, np.logical_and, {"constant_values": fill}))
    stack = RNG.random((3, 9, 11)) > 0.5  # leading axes: each picture alone
    together = arrays.neighbourhood(stack, np.logical_and, fill=True)
    assert np.array_equal(together, np.stack([arrays.neighbourhood(m, np.logical_and, fill=True) for m in stack]))


def test_neighbours_counts_the_3x3_neighbourhood() -> None:
    mask = RNG.random((8, 6)) > 0.5
    counts = _brute(mask.astype(np.int64), np.add, {"constant_values": 0})
    found = arrays.neighbours(mask)
    assert found.dtype == np.int8 and np.array_equal(found, counts)


def test_least_shifted_is_the_least_over_the_nine_shifts() -> None:
    mine, predicted = RNG.random((3, 7, 7)).astype(np.float32), RNG.random((3, 7, 7)).astype(np.float32)
    wider = np.pad(predicted, ((0, 0), (1, 1), (1, 1)), mode="edge")
    every = [arrays.largest(mine - wider[:, dy : dy + 7, dx : dx + 7]) for dy in range(3) for dx in range(3)]
    found = arrays.least_shifted(mine, predicted, arrays.largest, np.float32)
    assert found.dtype == np.float32 and np.array_equal(found, np.min(every, axis=0))
    assert np.array_equal(arrays.largest(mine), np.abs(mine).max(axis=0))
    flat, guess = RNG.random((6, 6)), RNG.random((6, 6))
    wide = np.pad(guess, 1, mode="edge")
    brute = np.min([np.abs(flat - wide[dy : dy + 6, dx : dx + 6]) for dy in range(3) for dx in range(3)], axis=0)
    assert np.array_equal(arrays.least_shifted(flat, guess, np.abs, np.float64), brute)


@pytest.mark.parametrize("count", [5, 6, 63])
def test_medians_are_np_median(count: int) -> None:
    values = RNG.random((count, 4, 2)).astype(np.float32)
    assert np.array_equal(arrays.median(values), np.median(values, axis=0))
    if count % 2:
        rows = RNG.random((3, count))
        assert np.array_equal(arrays.odd_medians(rows), np.median(rows, axis=-1, keepdims=True))
        assert arrays.odd_median(rows[0]) == float(np.median(rows[0]))


def test_unit_halve_and_weights() -> None:
    blocks = RNG.random((4, 6, 6))
    unit = arrays.unit(blocks)
    assert np.allclose(unit.mean(axis=(1, 2)), 0) and np.allclose((unit * unit).sum(axis=(1, 2)), 1)
    assert not arrays.unit(np.ones((1, 3, 3))).any()  # a flat block stays zero
    grids = RNG.random((2, 8, 8))
    assert np.allclose(arrays.halve(grids), grids.reshape(2, 4, 2, 4, 2).mean(axis=(2, 4)))
    weight = arrays.centre_weight(24)
    window = np.hanning(26)[1:-1]
    assert np.array_equal(weight, np.outer(window, window) / np.outer(window, window).sum())
