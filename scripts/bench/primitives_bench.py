"""The image primitives of the same-photograph test, as written (Pillow, numpy) against OpenCV's.

Issue 75 asks whether OpenCV (opencv-python-headless) does faster what the matching engine writes
by hand, and gives the same answers. Each primitive the served check runs is taken at the sizes
it runs at (the compared sides 64, 128 and 256 px, policy.AFFINE_STEPS) on the bench photos kept
as the service keeps them (thumbnails.py: a JPEG at policy.KEPT_SIDE px on its longer side, read
back), through the engine's own function where it has one and otherwise the same call:

- `resize F` / `resize RGB`: `candidate_window`'s and `warped_colour`'s Pillow BILINEAR resize
  (antialiased) of the kept luma (mode F) and colour, to where a window of 3/4 of the picture is
  the side; against cv2.resize INTER_AREA (antialiased) and INTER_LINEAR (not: a row of its own);
- `warp F` / `warp RGB`: `_warp`'s and `warped_colour`'s Pillow affine transform (BILINEAR) onto
  the side x side grid, by the window's map turned 2 degrees, scaled and shifted; against
  cv2.warpAffine (WARP_INVERSE_MAP, INTER_LINEAR, edges replicated) by the same map in its
  pixel-centre convention (`cv_matrix`);
- `blur`: `_blur` (5 taps, float64, edges repeated) of the resized luma, against cv2.sepFilter2D
  with the same taps; `gradients`: `_gradients`, against two cv2.Sobel (ksize 1, scale 1/2)
  with the border rows and columns zeroed as `_gradients` leaves them;
- `band`: photograph.py's `band` (numpy's rfft2 of the mirrored square), against cv2.dft and
  cv2.idft of the same padded square by the same filter; and a spatial difference of two
  cv2.GaussianBlur (edges mirrored as np.pad's "reflect") as a row of its own (another filter:
  truncated kernels, not the FFT's);
- `pooled`: one_edit.py's `_pooled` of the (3, side, side) colour in cells of side / 64, against
  cv2.resize INTER_AREA of the same pixels channels-last (given contiguous: OpenCV's best case);
- `regions`: arrays.py's `regions` of 64 x 64 and 32 x 32 masks (the cells' luma above its
  median, and its brightest tenth), against cv2.connectedComponents (8-connected) and the
  same list made of its labels (each region's pixels in raster order, largest first);
- `lucas-kanade`: one whole refinement, `_lucas_kanade` from the window's map for the policy's
  steps at the side (at 64 px from the window's map, finer from a map within a pixel, as the side
  below leaves it), against cv2.findTransformECC (MOTION_AFFINE, as many iterations, the same
  1e-3 stop) from the same map. These are two algorithms (Lucas-Kanade with a gain, an offset
  and Huber weights, snapped to MAP_STEP; ECC's correlation), not one written twice: their maps
  are compared by the farthest a corner of the patch lands apart (px at the side), and each by
  its error from the map the query was made with (the kept luma warped by a known map, as a
  copy is one affine map away from its photograph). cv2.calcOpticalFlowPyrLK tracks points
  without a global map, weights or the gain: it is not a refinement of one map, not measured.

Each pair runs alternately in one process, which goes first swapped every round, each call timed
in thread CPU time with BLAS and OpenCV held to one thread, as the service runs (no work hidden in
another thread); the medians per call (us) and their ratio (current / OpenCV: above 1, OpenCV
is faster). Outputs are compared before timing: bit-identical (np.array_equal, floats by their
bits), else the largest absolute difference. `--outputs FILE` saves every output (.npz); `--same-as
FILE` compares this run's with a saved run's: run once with the machine's kernels and once under
the narrowest (`--narrow`: cv2.setUseOptimized(False), and OPENCV_CPU_DISABLE naming every target
cv2.getCPUFeaturesLine() marks dispatched; numpy's and OpenBLAS's by the environment
`scripts/same_answers.py env` prints) to see which side gives the same bits on every CPU. The
last line printed is one JSON object (`--json-out FILE` writes it too). OpenCV is not a
dependency of the project: install it apart (a `pip install --target DIR opencv-python-headless`
and DIR on PYTHONPATH).

    PYTHONPATH=lambdas:.:DIR .venv/bin/python scripts/bench/primitives_bench.py [--photos 20]
        [--rounds 30] [--images DIR] [--narrow] [--outputs FILE] [--same-as FILE] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dupcheck.bootstrap import one_blas_thread
from dupcheck.core.limits.policy import AFFINE_BLUR, AFFINE_STEPS, COLOUR_SIDE, DETAIL_BAND
from dupcheck.core.matching import affine, one_edit, photograph
from dupcheck.core.models import HashValue
from dupcheck.core.pictures import arrays
from dupcheck.core.stored.thumbnails import Thumbnail, thumbnail_bytes
from scripts.helpers.places import BENCH_IMAGES

SIDES = (64, 128, 256)  # the compared sides the map is refined at (policy.AFFINE_STEPS)
WINDOW = 0.75  # the aligned window's share of the kept picture: the candidate a little over the side
TURN, SCALE, SHIFT = 2.0, 1.03, (0.7, -0.4)  # degrees, factor, px (rows, columns): the map warped by
TRUTH = (1.5, 0.98, (1.3, -0.9))  # the map a Lucas-Kanade query is made with, from the window's
NEAR = (0.2, 1.004, (0.4, -0.3))  # where a finer side starts from: the truth within a pixel (the side below's)
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}


# -- pure helpers (tests/unit/scripts/test_primitives_bench.py) --------------------------------------------


def cv_matrix(params: np.ndarray, n: int) -> np.ndarray:
    """The 2 x 3 matrix cv2.warpAffine (WARP_INVERSE_MAP) samples by for `affine._warp`'s map
    onto an n x n grid: OpenCV reads output pixel (x, y) at M @ (x, y, 1) in pixel-centre
    coordinates, Pillow at (a X + b Y + c, d X + e Y + f) for the centre (X, Y) = (x + 1/2,
    y + 1/2) in coordinates where pixel k spans [k, k + 1), less a half."""
    a, b, c, d, e, f = affine._affine(params, n)
    return np.array([[a, b, c + (a + b) / 2 - 0.5], [d, e, f + (d + e) / 2 - 0.5]])


def params_of(matrix: np.ndarray, n: int) -> np.ndarray:
    """`cv_matrix` the other way: the map from the patch's [-1, 1] square (rows u, columns v)."""
    (a, b, c), (d, e, f) = matrix
    # x = a col + b row + c with col = (v + 1) n / 2 - 1/2 and row = (u + 1) n / 2 - 1/2.
    half = n / 2
    return np.array([e * half, d * half, b * half, a * half, f + (d + e) * (half - 0.5), c + (a + b) * (half - 0.5)])


def moved(params: np.ndarray, degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """`params` turned by `degrees` and scaled by `scale` about the patch's centre, then shifted
    by `shift` (rows, columns) px of the picture."""
    theta = math.radians(degrees)
    turn = scale * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    linear = params[:4].reshape(2, 2) @ turn
    return np.concatenate([linear.ravel(), params[4:] + np.asarray(shift, dtype=np.float64)])


def corners_apart(p: np.ndarray, q: np.ndarray, n: int) -> float:
    """The farthest the patch's outermost pixel centres land apart under two maps (px)."""
    edge = 1 - 1 / n
    far = 0.0
    for u in (-edge, edge):
        for v in (-edge, edge):
            dy = (p[4] - q[4]) + (p[0] - q[0]) * u + (p[1] - q[1]) * v
            dx = (p[5] - q[5]) + (p[2] - q[2]) * u + (p[3] - q[3]) * v
            far = max(far, math.hypot(dy, dx))
    return far


def labelled_regions(labels: np.ndarray) -> list[np.ndarray]:
    """`arrays.regions`'s list made of a labelled picture (0: unset): each label's (row, column)
    coordinates in raster order, largest first, ties to the one that starts first."""
    flat = labels.ravel()
    members = np.flatnonzero(flat)
    if not members.size:
        return []
    of = flat[members]
    order = np.argsort(of, kind="stable")
    starts = np.flatnonzero(np.r_[True, of[order][1:] != of[order][:-1]])
    groups = np.split(members[order], starts[1:])
    groups.sort(key=lambda group: (-len(group), int(group[0])))
    return [np.stack(np.divmod(group, labels.shape[1]), axis=1) for group in groups]


def as_array(output: Any) -> np.ndarray:
    """One array of an output: an array as it is, a list of regions as (label, row, column) rows,
    a map as its six numbers."""
    if isinstance(output, list):
        rows = [np.c_[np.full(len(r), i), r] for i, r in enumerate(output)]
        return np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
    return np.asarray(output)


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    """The same shape and the same values, floats by their bits (-0.0 is not 0.0, NaN is NaN)."""
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype == a.dtype:
        return bool(np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")))
    return bool(np.array_equal(a, b))


def largest_difference(a: np.ndarray, b: np.ndarray) -> float | None:
    """The largest absolute difference of two outputs of one shape (None: the shapes differ)."""
    if a.shape != b.shape:
        return None
    if not a.size:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def summary(current: Sequence[float], opencv: Sequence[float]) -> dict[str, float]:
    """Median us per call of each way, and their ratio (current / OpenCV)."""
    a, b = statistics.median(current), statistics.median(opencv)
    return {"current_us": round(a, 1), "opencv_us": round(b, 1), "ratio": round(a / b, 2)}


# -- the cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One primitive at one size: its inputs (one a photo), and the two ways of computing it, each
    a function of one input giving the output as the engine would read it."""

    name: str
    size: str
    inputs: list[Any]
    current: Callable[[Any], Any]
    opencv: Callable[[Any], Any]
    compare: Callable[[Any, Any], tuple[bool, float | None]] | None = None  # default: as arrays
    extra: dict[str, Any] = field(default_factory=dict)


def kept_pictures(images: Path, count: int) -> list[Thumbnail]:
    """`count` bench photos spread over the sorted folder, kept as the service keeps them."""
    paths = sorted(p for p in images.rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not paths:
        sys.exit(f"no photos in {images}")
    chosen = [paths[i * len(paths) // count] for i in range(min(count, len(paths)))]
    kept = []
    for path in chosen:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        box = (0, picture.height, 0, picture.width)
        data = thumbnail_bytes(HashValue(bytes(16)), picture, box, (picture.height, picture.width))
        thumbnail = Thumbnail.decode(data)
        assert thumbnail is not None
        kept.append(thumbnail)
    return kept


def window_map(kept: Thumbnail, n: int) -> tuple[tuple[int, int], np.ndarray]:
    """The kept picture's size (width, height) resized so that a centred window of WINDOW of it
    is n px on its longer side (as `candidate_window` sizes it), and the window's map there."""
    height, width = kept.rgb.shape[:2]
    scale = n / (WINDOW * max(height, width))
    new_w, new_h = max(2, round(width * scale)), max(2, round(height * scale))
    sy, sx = new_h / height, new_w / width
    win_h, win_w = WINDOW * height, WINDOW * width
    top, left = (height - win_h) / 2, (width - win_w) / 2
    return (new_w, new_h), affine._window_map((top * sy, win_h * sy, left * sx, win_w * sx))


def cases(cv2: Any, kept: list[Thumbnail]) -> Iterator[Case]:
    """Every primitive at every size."""
    for n in SIDES:
        yield from side_cases(cv2, kept, n)
    greys = [k.grey() for k in kept]
    for cells in (64, 32):
        masks = []
        for grey in greys:
            luma = np.asarray(grey.resize((cells, cells), Image.Resampling.BILINEAR), dtype=np.float64)
            masks += [luma > np.median(luma), luma > np.quantile(luma, 0.9)]

        def cv_regions(mask: np.ndarray) -> list[np.ndarray]:
            return labelled_regions(cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[1])

        yield Case("regions", f"{cells}", masks, arrays.regions, cv_regions)


def side_cases(cv2: Any, kept: list[Thumbnail], n: int) -> Iterator[Case]:
    """The primitives of one compared side, n px."""
    border, inverse = cv2.BORDER_REPLICATE, cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    taps = np.exp(-(np.arange(-2, 3) ** 2) / (2 * AFFINE_BLUR * AFFINE_BLUR))
    taps /= taps.sum()
    sized = [window_map(k, n) for k in kept]
    maps = [moved(p, TURN, SCALE, SHIFT) for _, p in sized]
    size = f"{n}"

    def pil_resize(one: Any) -> np.ndarray:
        return np.asarray(one[0].resize(one[2], Image.Resampling.BILINEAR), np.float64)

    def cv_area(one: Any) -> np.ndarray:
        return cv2.resize(one[1], one[2], interpolation=cv2.INTER_AREA)

    def cv_linear(one: Any) -> np.ndarray:
        return cv2.resize(one[1], one[2], interpolation=cv2.INTER_LINEAR).astype(np.float64)

    def pil_colour(one: Any) -> np.ndarray:
        return np.asarray(one[0].resize(one[2], Image.Resampling.BILINEAR))

    resize_in = [(k.grey(), np.asarray(k.grey(), dtype=np.float32), s) for k, (s, _) in zip(kept, sized, strict=True)]
    colour_in = [(Image.fromarray(k.rgb), k.rgb, s) for k, (s, _) in zip(kept, sized, strict=True)]
    yield Case("resize F (INTER_AREA)", size, resize_in, pil_resize, lambda one: cv_area(one).astype(np.float64))
    yield Case("resize F (INTER_LINEAR)", size, resize_in, pil_resize, cv_linear)
    yield Case("resize RGB (INTER_AREA)", size, colour_in, pil_colour, cv_area)

    candidates = [pil_resize(one) for one in resize_in]
    blurred = [affine._blur(c, AFFINE_BLUR) for c in candidates]

    def cv_blur(image: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(image, cv2.CV_64F, taps, taps, borderType=border)

    def cv_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gy = cv2.Sobel(image, cv2.CV_64F, 0, 1, ksize=1, scale=0.5, borderType=border)
        gx = cv2.Sobel(image, cv2.CV_64F, 1, 0, ksize=1, scale=0.5, borderType=border)
        gy[0], gy[-1], gx[:, 0], gx[:, -1] = 0, 0, 0, 0
        return gy, gx

    yield Case("blur", size, candidates, lambda c: affine._blur(c, AFFINE_BLUR), cv_blur)
    yield Case("gradients", size, blurred, affine._gradients, cv_gradients, compare=_pair_compared)

    def pil_warp(one: Any) -> np.ndarray:
        warped = one[0].transform((n, n), Image.Transform.AFFINE, affine._affine(one[2], n), Image.Resampling.BILINEAR)
        return np.asarray(warped)

    def cv_warp(one: Any) -> np.ndarray:
        return cv2.warpAffine(one[1], cv_matrix(one[2], n), (n, n), flags=inverse, borderMode=border)

    singles = [b.astype(np.float32) for b in blurred]
    warp_in = [(Image.fromarray(b, mode="F"), b, p) for b, p in zip(singles, maps, strict=True)]
    yield Case("warp F", size, warp_in, pil_warp, cv_warp)
    smalls = [pil_colour(one) for one in colour_in]
    rgb_in = [(Image.fromarray(s), s, p) for s, p in zip(smalls, maps, strict=True)]
    yield Case("warp RGB", size, rgb_in, pil_warp, cv_warp)

    patches = [
        affine._warp(Image.fromarray(c.astype(np.float32), mode="F"), p, n)[0].astype(np.float64)
        for c, p in zip(candidates, maps, strict=True)
    ]
    yield Case("band (DFT)", size, patches, photograph.band, lambda p: _cv_band(cv2, p))
    yield Case("band (GaussianBlur)", size, patches, photograph.band, lambda p: _cv_band_spatial(cv2, p))

    k = max(1, round(n / COLOUR_SIDE))
    if k > 1:  # (k 1: `_pooled` is a cast)

        def cv_pooled(one: Any) -> np.ndarray:
            return np.moveaxis(cv2.resize(one[1], (n // k, n // k), interpolation=cv2.INTER_AREA), -1, 0)

        colours = [np.moveaxis(pil_warp(one).astype(np.float64), -1, 0) for one in rgb_in]
        # one_edit's other use: levels an edit made, clipped (not whole numbers: sums that round)
        toned = [np.clip(c * 1.0137 + 0.31, 0, 255) for c in colours]
        for name, values in (("pooled", colours), ("pooled (edited levels)", toned)):
            pool_in = [(c, np.ascontiguousarray(np.moveaxis(c, 0, -1))) for c in values]
            yield Case(name, f"{n}/{k}", pool_in, lambda one: one_edit._pooled(one[0], k), cv_pooled)

    yield _lucas_kanade_case(cv2, n, candidates, blurred, sized)


def _pair_compared(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> tuple[bool, float | None]:
    differences = [largest_difference(x, y) for x, y in zip(a, b, strict=True)]
    same = all(identical(x, y) for x, y in zip(a, b, strict=True))
    return same, None if None in differences else max(d for d in differences if d is not None)


def _cv_band(cv2: Any, values: np.ndarray) -> np.ndarray:
    n = values.shape[0]
    pad = max(4, int(3 * DETAIL_BAND[1]) + 1)
    pad += (-(n + 2 * pad)) % 32 // 2
    mirrored = cv2.copyMakeBorder(values, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    spectrum = cv2.dft(mirrored, flags=cv2.DFT_COMPLEX_OUTPUT)
    spectrum *= _full_filter(mirrored.shape)[:, :, None]
    out = cv2.idft(spectrum, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    return out[pad : pad + n, pad : pad + n]


_FILTERS: dict[tuple[int, int], np.ndarray] = {}


def _full_filter(shape: tuple[int, int]) -> np.ndarray:
    """`photograph._band_filter` on the full (not rfft) grid, as cv2.dft's complex output holds it."""
    if shape not in _FILTERS:
        _FILTERS[shape] = photograph.band_response(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]))
    return _FILTERS[shape]


def _cv_band_spatial(cv2: Any, values: np.ndarray) -> np.ndarray:
    narrow, wide = DETAIL_BAND
    fine = cv2.GaussianBlur(values, (0, 0), narrow, borderType=cv2.BORDER_REFLECT_101)
    return fine - cv2.GaussianBlur(values, (0, 0), wide, borderType=cv2.BORDER_REFLECT_101)


def _lucas_kanade_case(
    cv2: Any, n: int, candidates: list[np.ndarray], blurred: list[np.ndarray], sized: list[tuple[Any, np.ndarray]]
) -> Case:
    steps = AFFINE_STEPS[n]
    inputs = []
    for candidate, smooth, (_, start) in zip(candidates, blurred, sized, strict=True):
        truth = moved(start, TRUTH[0], TRUTH[1], TRUTH[2])
        if n > min(SIDES):  # refined from the map found at the side below, not from the window
            start = moved(truth, NEAR[0], NEAR[1], NEAR[2])
        query = affine._warp(Image.fromarray(candidate.astype(np.float32), mode="F"), truth, n)[0].astype(np.float64)
        template = affine._template(query, AFFINE_BLUR)
        image = Image.fromarray(smooth.astype(np.float32), mode="F")
        inputs.append((template, image, start, query.astype(np.float32), candidate.astype(np.float32), truth))
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, steps, 1e-3)

    def current(one: Any) -> np.ndarray:
        return affine._lucas_kanade(one[0], one[1], one[2], steps)

    def ecc(one: Any) -> np.ndarray:
        try:
            _, matrix = cv2.findTransformECC(one[3], one[4], cv_matrix(one[2], n).astype(np.float32),
                                             cv2.MOTION_AFFINE, criteria, None, 5)  # fmt: skip
        except cv2.error:
            return np.full(6, np.nan)  # ECC's own failure (a flat patch): no map
        return params_of(matrix.astype(np.float64), n)

    def compare(a: np.ndarray, b: np.ndarray) -> tuple[bool, float | None]:
        return bool(np.array_equal(a, b)), corners_apart(a, b, n)

    case = Case("lucas-kanade (ECC)", f"{n} x{steps}", inputs, current, ecc, compare=compare)
    case.extra["errors_px"] = lambda one, a, b: (corners_apart(a, one[5], n), corners_apart(b, one[5], n))
    return case


# -- the run -----------------------------------------------------------------------------------------


def thread_us(function: Callable[[Any], Any], one: Any) -> float:
    started = time.thread_time_ns()
    function(one)
    return (time.thread_time_ns() - started) / 1e3


def compared(case: Case, a: Any, b: Any) -> tuple[bool, float | None]:
    if case.compare is not None:
        return case.compare(a, b)
    x, y = as_array(a), as_array(b)
    return identical(x, y), largest_difference(x, y)


def run_case(case: Case, rounds: int, saved: dict[str, np.ndarray], same_as: Any) -> dict[str, Any]:
    key = f"{case.name}|{case.size}"
    same_bits, differences, errors = True, [], []
    same_across = {"current": True, "opencv": True}
    for i, one in enumerate(case.inputs):
        a, b = case.current(one), case.opencv(one)
        same, difference = compared(case, a, b)
        same_bits &= same
        differences.append(difference)
        if "errors_px" in case.extra:
            errors.append(case.extra["errors_px"](one, a, b))
        for way, output in (("current", a), ("opencv", b)):
            arrays_ = output if isinstance(output, tuple) else (output,)
            for j, array in enumerate(arrays_):
                name = f"{key}|{way}|{i}|{j}"
                saved[name] = as_array(array)
                if same_as is not None:
                    same_across[way] &= name in same_as and identical(same_as[name], saved[name])
    times: dict[str, list[float]] = {"current": [], "opencv": []}
    ways = [("current", case.current), ("opencv", case.opencv)]
    for round_ in range(rounds):
        for one in case.inputs:
            for way, function in ways if round_ % 2 == 0 else ways[::-1]:
                times[way].append(thread_us(function, one))
    known = [d for d in differences if d is not None and not math.isnan(d)]
    row: dict[str, Any] = {"primitive": case.name, "size": case.size, **summary(times["current"], times["opencv"])}
    row["identical"] = same_bits
    row["max_diff"] = None if len(known) < len(differences) else float(f"{max(known):.3g}")
    if errors:
        lk, ecc = zip(*errors, strict=True)
        row["median_error_px"] = {"current": float(f"{statistics.median(lk):.3g}"),
                                  "opencv": float(f"{statistics.median(ecc):.3g}")}  # fmt: skip
        row["max_diff"] = float(f"{statistics.median(known):.3g}") if known else None
        row["max_diff_is"] = "median over the photos of the farthest corner apart, px"
    if same_as is not None:
        row["same_as_saved"] = same_across
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=BENCH_IMAGES)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--narrow", action="store_true", help="cv2.setUseOptimized(False)")
    parser.add_argument("--outputs", type=Path, help="save every output here (.npz)")
    parser.add_argument("--same-as", type=Path, help="compare every output with a saved run's")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        import cv2  # noqa: PLC0415  (not a dependency of the project: installed apart to measure it)
    except ImportError:
        sys.exit(
            "primitives_bench.py needs OpenCV, which the project does not install: "
            "pip install --target DIR opencv-python-headless, then put DIR on PYTHONPATH"
        )
    imported = time.perf_counter() - started
    one_blas_thread()
    cv2.setNumThreads(0)  # OpenCV's own work in the calling thread, as thread CPU time counts it
    cv2.setUseOptimized(not args.narrow)
    same_as = dict(np.load(args.same_as)) if args.same_as else None
    kept = kept_pictures(args.images, args.photos)
    saved: dict[str, np.ndarray] = {}
    rows = []
    for case in cases(cv2, kept):
        row = run_case(case, args.rounds, saved, same_as)
        rows.append(row)
        diff = "-" if row["max_diff"] is None else f"{row['max_diff']:.3g}"
        across = ""
        if "same_as_saved" in row:
            across = "  same as saved: " + ", ".join(
                f"{w} {'yes' if s else 'NO'}" for w, s in row["same_as_saved"].items()
            )
        print(
            f"{row['primitive']:24s} {row['size']:>7s}  current {row['current_us']:8.1f} us  OpenCV "
            f"{row['opencv_us']:8.1f} us  {row['ratio']:5.2f}x  identical {'yes' if row['identical'] else 'no '}"
            f"  max diff {diff}{across}",
            flush=True,
        )
    if args.outputs:
        np.savez_compressed(args.outputs, **saved)
    result = {
        "bench": "primitives",
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "pillow": Image.__version__,
        "opencv_optimized": cv2.useOptimized(),
        "opencv_cpu_features": cv2.getCPUFeaturesLine(),
        "opencv_import_s": round(imported, 3),
        "photos": len(kept),
        "rounds": args.rounds,
        "rows": rows,
    }
    line = json.dumps(result)
    if args.json_out:
        args.json_out.write_text(line + "\n", encoding="utf-8")
    print(line)


if __name__ == "__main__":
    main()
