"""The shared array helpers (core/pictures/arrays.py) give exactly the numbers of the numpy calls
and loops they stand for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dupcheck.core.pictures import arrays

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


def _flood_filled(mask: np.ndarray) -> list[set[tuple[int, int]]]:
    """The 8-connected regions of a mask, one pixel at a time (a flood fill from each unseen one)."""
    seen: set[tuple[int, int]] = set()
    found = []
    for start in zip(*np.nonzero(mask), strict=True):
        start = (int(start[0]), int(start[1]))
        if start in seen:
            continue
        region, stack = set(), [start]
        seen.add(start)
        while stack:
            y, x = stack.pop()
            region.add((y, x))
            for ny in range(y - 1, y + 2):
                for nx in range(x - 1, x + 2):
                    inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                    if inside and mask[ny, nx] and (ny, nx) not in seen:
                        seen.add((ny, nx))
                        stack.append((ny, nx))
        found.append(region)
    return found


@pytest.mark.parametrize("density", [0.1, 0.45, 0.6, 0.95])
def test_regions_are_the_flood_filled_ones_largest_first(density: float) -> None:
    for _ in range(20):
        mask = RNG.random((int(RNG.integers(1, 40)), int(RNG.integers(1, 40)))) < density
        found = arrays.regions(mask)
        expected = _flood_filled(mask)
        assert sorted(map(len, expected), reverse=True) == [len(region) for region in found]
        assert sorted(map(sorted, expected)) == sorted(sorted(map(tuple, region.tolist())) for region in found)
        for region in found:  # raster order within a region; ties by where they start
            assert [tuple(p) for p in region.tolist()] == sorted(map(tuple, region.tolist()))
        assert [(-len(r), r[0].tolist()) for r in found] == sorted((-len(r), r[0].tolist()) for r in found)


def test_regions_join_diagonally_and_not_across_a_gap() -> None:
    mask = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1], [1, 1, 0, 0]], bool)
    found = arrays.regions(mask)
    assert [r.tolist() for r in found] == [[[0, 3], [1, 3], [2, 3]], [[0, 0], [1, 1]], [[3, 0], [3, 1]]]
    assert arrays.regions(np.zeros((3, 3), bool)) == []


@pytest.mark.parametrize("shape", [(1, 30), (30, 1), (25, 33)])
def test_regions_of_runs_that_touch_only_at_a_corner(shape: tuple[int, int]) -> None:
    """A checkerboard is one region (each pixel touches the next row's at its corners); every
    other row of it, many (rows two apart never touch)."""
    rows, cols = np.indices(shape)
    board = (rows + cols) % 2 == 0
    for mask in (board, board & (rows % 4 == 0)):
        found = arrays.regions(mask)
        expected = _flood_filled(mask)
        assert sorted(sorted(map(tuple, r.tolist())) for r in found) == sorted(map(sorted, expected))
    if min(shape) > 1:
        assert len(arrays.regions(board)) == 1


def test_exp_is_the_c_librarys_value_by_value_in_the_arrays_shape() -> None:
    values = np.array([[-0.5, 0.0, 1e-3], [-40.0, 2.5, -1e-300]])
    got = arrays.exp(values)
    assert got.shape == values.shape and got.dtype == np.float64
    assert got.tolist() == [[math.exp(v) for v in row] for row in values.tolist()]
    np.testing.assert_allclose(got, np.exp(values), rtol=1e-15)
