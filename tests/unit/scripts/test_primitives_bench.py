"""scripts/bench/primitives_bench.py's own arithmetic (issue 75), without OpenCV: the matrix it gives
cv2.warpAffine samples where Pillow's transform does, and the regions list it makes of OpenCV's
labels is `arrays.regions`'s."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dupcheck.core.matching import affine
from dupcheck.core.pictures.arrays import regions
from support.scripts import load_script

bench = load_script("bench/primitives_bench.py")

N = 16
PARAMS = bench.moved(np.array([9.0, 0.0, 0.0, 11.0, 14.2, 15.7]), 3.0, 1.05, (0.4, -0.6))


def test_the_matrix_samples_where_pillow_does() -> None:
    """A ramp's levels are its coordinates: Pillow's bilinear warp of a ramp gives the position
    each output pixel sampled (pixel centres at whole numbers), which the matrix must give."""
    rows, columns = np.mgrid[0:40, 0:40].astype(np.float32)
    matrix = bench.cv_matrix(PARAMS, N)
    y, x = np.mgrid[0:N, 0:N].astype(np.float64)
    for ramp, row in ((columns, matrix[0]), (rows, matrix[1])):
        sampled = np.asarray(
            Image.fromarray(ramp, mode="F").transform(
                (N, N), Image.Transform.AFFINE, affine._affine(PARAMS, N), Image.Resampling.BILINEAR
            )
        )
        np.testing.assert_allclose(sampled, row[0] * x + row[1] * y + row[2], atol=1e-4)


def test_the_matrix_and_the_map_convert_both_ways() -> None:
    np.testing.assert_allclose(bench.params_of(bench.cv_matrix(PARAMS, N), N), PARAMS, atol=1e-12)
    assert bench.corners_apart(PARAMS, PARAMS, N) == 0.0
    shifted = PARAMS + np.array([0, 0, 0, 0, 3.0, 4.0])
    assert abs(bench.corners_apart(PARAMS, shifted, N) - 5.0) < 1e-12


def test_the_regions_of_labels_are_arrays_regions() -> None:
    mask = np.zeros((8, 9), bool)
    mask[0, 0] = True  # one pixel, first in raster order
    mask[1:4, 5:8] = True  # nine pixels
    mask[4, 4] = True  # touches the nine by a corner: one region of ten (8-connected)
    mask[6:8, 0:5] = True  # ten pixels, starting later: after the other ten
    labels = np.zeros(mask.shape, np.int32)
    labels[0, 0], labels[1:4, 5:8], labels[4, 4], labels[6:8, 0:5] = 7, 2, 2, 5  # any numbering
    got, expected = bench.labelled_regions(labels), regions(mask)
    assert [len(r) for r in got] == [10, 10, 1]
    assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert bench.labelled_regions(np.zeros((3, 3), np.int32)) == []


def test_identical_compares_bits() -> None:
    assert bench.identical(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    assert not bench.identical(np.array([0.0]), np.array([-0.0]))
    assert not bench.identical(np.zeros(2), np.zeros(3))
    assert bench.largest_difference(np.array([1.0, 2.0]), np.array([1.5, 2.0])) == 0.5
    assert bench.largest_difference(np.zeros(2), np.zeros(3)) is None
