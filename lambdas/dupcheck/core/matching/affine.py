"""The query mapped onto a kept picture by one affine map, found coarse to fine.

The views line a query up with a window of a candidate (alignment.py): a crop, a mirroring, a
turn the query was given, to a few percent of a side. The same-photograph test (photograph.py)
compares fine detail, which only lines up to a pixel: so the window is refined to an affine map
(turn, scale, shear, shift) by Lucas-Kanade, at 64 px from the window (the views place it to a
pixel or two there), then at 128 and at the compared side from the map found below. A copy is
one affine map away from its photograph whatever was edited; another photograph in the same
pose is not, and the map found for it says so in the detail it leaves unmatched.

`align(query_patch, kept, starts, side)` gives the patches as photograph.py compares them, coarse
to fine up to `side` px: the query's luma and the kept picture's luma warped onto it, with where
the warp fell inside the kept picture; `warped_colour` the kept picture's colour under a map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from dupcheck.core.limits.policy import (
    AFFINE_BLUR,
    AFFINE_CHOICE,
    AFFINE_STEPS,
    EARLY_SIDE,
    LIKENESS_TILE,
    LIKENESS_VARIES,
    MAP_STEP,
    MIN_LIKENESS_TILES,
)
from dupcheck.core.matching.alignment import Alignment
from dupcheck.core.pictures.arrays import exp, median, tiles
from dupcheck.core.stored.thumbnails import Thumbnail

_RIDGE = 1e-6 * np.eye(6)  # keeps the normal equations solvable on a flat patch
Window = tuple[float, float, float, float]  # top, height, left, width, in a picture's pixels


@dataclass(frozen=True, slots=True)
class Aligned:
    """`query` (a square of luma), the kept picture's luma `warped` onto it, where the warped
    samples fell `inside` the kept picture, and the map: `params` from the patch's [-1, 1]
    square onto the kept picture resized to `resized` (height, width; see `candidate_window`)."""

    query: np.ndarray
    warped: np.ndarray
    inside: np.ndarray
    params: np.ndarray
    resized: tuple[int, int]


def align(
    query_patch: Callable[[int, bool], np.ndarray], kept: Thumbnail, starts: Sequence[Alignment], side: int
) -> Iterator[tuple[Aligned, Alignment]]:
    """The query's patch (`query_patch(n, mirrored)`: its luma at n x n) and the kept picture's
    luma mapped onto it, coarse to fine: yielded at each side from policy.EARLY_SIDE up to
    `side` (a caller that has seen enough at a coarser side stops there), with the start its map
    was refined from; nothing when no start's window is large enough. Each start (a window of
    the kept picture the views found, or one they could not tell from it) is refined at 64 px
    for policy.AFFINE_CHOICE steps, the one that lines up best for the rest of them, then at
    each finer side from the map found below."""
    levels = [n for n in AFFINE_STEPS if 64 <= n < side] or [side]
    if levels[-1] != side:
        levels.append(side)
    tried = []
    resized: dict[tuple[int, int], np.ndarray] = {}  # the kept picture at each size (starts share them)
    steps = _Steps()
    for start in starts:
        window, candidate = candidate_window(kept, start, levels[0], resized)
        if window is not None:
            patch = query_patch(levels[0], start.mirrored)
            key = (levels[0], start.mirrored)
            tried.append((steps.refined(key, patch, candidate, _window_map(window), AFFINE_CHOICE), start, candidate))
    if not tried:
        return
    (aligned, likeness), chosen, candidate = max(tried, key=lambda one: one[0][1])
    aligned, _ = steps.refined(
        (levels[0], chosen.mirrored), aligned.query, candidate, aligned.params, AFFINE_STEPS[64] - AFFINE_CHOICE,
        known=(aligned, likeness),
    )  # fmt: skip
    for n in levels[1:]:
        if aligned.query.shape[0] >= EARLY_SIDE:
            yield aligned, chosen
        _, candidate = candidate_window(kept, chosen, n, resized)
        count = AFFINE_STEPS[128] if n <= 128 else AFFINE_STEPS[256]
        scaled = _scaled(aligned.params, n / aligned.query.shape[0])
        aligned, _ = steps.refined((n, chosen.mirrored), query_patch(n, chosen.mirrored), candidate, scaled, count)
    yield aligned, chosen  # at `side`


class _Steps:
    """One `align`'s refinements, sharing what they would each make again: a query patch's
    template (`_Template`, by its side and mirroring) and a resized kept picture's Pillow images
    (plain, which a map's likeness reads, and blurred, which the steps warp), each made once."""

    def __init__(self) -> None:
        self._templates: dict[tuple[int, bool], _Template] = {}
        self._images: dict[tuple[int, ...], tuple[Image.Image, Image.Image]] = {}

    def refined(
        self, key: tuple[int, bool], query: np.ndarray, candidate: np.ndarray, start: np.ndarray, steps: int,
        known: tuple[Aligned, float] | None = None,
    ) -> tuple[Aligned, float]:  # fmt: skip
        """Lucas-Kanade from `start` (`known`: its alignment and likeness, when made already),
        with the map's likeness; refining can only help: a map that ends less alike than where
        it started (a frame or padding that the steps chase) is dropped for the start."""
        if key not in self._templates:
            self._templates[key] = _template(query, AFFINE_BLUR)
        if candidate.shape not in self._images:
            plain = Image.fromarray(candidate.astype(np.float32), mode="F")
            self._images[candidate.shape] = (
                plain,
                Image.fromarray(_blur(candidate, AFFINE_BLUR).astype(np.float32), mode="F"),
            )
        plain, blurred = self._images[candidate.shape]
        refined = _aligned(query, plain, _lucas_kanade(self._templates[key], blurred, start, steps), candidate.shape)
        if known is None:
            at_start = _aligned(query, plain, start, candidate.shape)
            known = at_start, _likeness(at_start)
        return max([(refined, _likeness(refined)), known], key=lambda one: one[1])


def candidate_window(
    kept: Thumbnail, alignment: Alignment, side: int, resized: dict[tuple[int, int], np.ndarray] | None = None
) -> tuple[Window | None, np.ndarray]:
    """The kept picture's luma, scaled so that the aligned window is `side` pixels on its longer
    side (what the query patch is), and the window there: (top, height, left, width).
    `resized`: the kept picture's luma at the sizes made so far (by (width, height)), kept."""
    height, width = kept.rgb.shape[:2]
    top, bottom, left, right = kept.box if alignment.candidate_view else (0, height, 0, width)
    view_h, view_w = bottom - top, right - left
    y0, x0 = top + alignment.rows[0] * view_h, left + alignment.cols[0] * view_w
    win_h, win_w = alignment.rows[1] * view_h, alignment.cols[1] * view_w
    if min(win_h, win_w) < 4:
        return None, np.zeros((0, 0))
    scale = side / max(win_h, win_w)
    new_w, new_h = max(2, round(width * scale)), max(2, round(height * scale))
    resized = {} if resized is None else resized
    if (new_w, new_h) not in resized:
        resized[new_w, new_h] = np.asarray(kept.grey().resize((new_w, new_h), Image.Resampling.BILINEAR), np.float64)
        resized[new_w, new_h].flags.writeable = False
    candidate = resized[new_w, new_h]
    sy, sx = new_h / height, new_w / width
    return (y0 * sy, win_h * sy, x0 * sx, win_w * sx), candidate


def turn(aligned: Aligned, box_height: float, box_width: float) -> float:
    """Degrees (anticlockwise) the query's patch, cut from a `box_height` x `box_width` box of
    its picture, lies turned from the kept picture under `aligned`'s map: the rotation of the
    map in pixels (the kept picture is resized by one scale, the patch by the box's two)."""
    a11, a12, a21, a22 = (float(p) for p in aligned.params[:4])
    j11, j12, j21, j22 = a11 / box_height, a12 / box_width, a21 / box_height, a22 / box_width
    return math.degrees(math.atan2(j12 - j21, j11 + j22))


def native_side(kept: Thumbnail, alignment: Alignment) -> float:
    """The aligned window's longer side in the kept picture's own pixels: more than it holds
    is not detail."""
    height, width = kept.rgb.shape[:2]
    top, bottom, left, right = kept.box if alignment.candidate_view else (0, height, 0, width)
    return max(alignment.rows[1] * (bottom - top), alignment.cols[1] * (right - left))


def warped_colour(kept: Thumbnail, aligned: Aligned, side: int) -> np.ndarray:
    """The kept picture's colour under `aligned`'s map, at `side` x `side`: (3, side, side) sRGB
    levels. The picture is first resized (antialiased) to where the map points at that side's
    scale, so that a small patch samples no aliasing."""
    scale = side / aligned.query.shape[0]
    height, width = (max(2, round(v * scale)) for v in aligned.resized)
    small = Image.fromarray(kept.rgb).resize((width, height), Image.Resampling.BILINEAR)
    params = _scaled(aligned.params, scale)
    warped = small.transform(
        (side, side), Image.Transform.AFFINE, _affine(params, side), resample=Image.Resampling.BILINEAR
    )
    return np.moveaxis(np.asarray(warped, dtype=np.float64), -1, 0)


def widened(
    aligned: Aligned, query: Image.Image, box: tuple[float, float, float, float], kept: Thumbnail, side: int,
    *, mirrored: bool,
) -> Aligned:  # fmt: skip
    """`aligned`, a patch cut from `box` (left, top, right, bottom) of `query` (luma, mode F),
    carried to the whole of `query` at `side` x `side`: the same map, from the whole picture's
    [-1, 1] square, onto the kept picture resized so that a step of the whole's grid is no more
    than one of its pixels either way (as the query's resize does, it then averages what lies
    between the samples instead of skipping it)."""
    left, top, right, bottom = box
    box_w, box_h = right - left, bottom - top
    # The patch's coordinates are the whole's scaled and shifted: u = su u' + cu, v = sv v' + cv
    # (a mirrored patch's columns run the other way, and so does their shift).
    su, cu = query.height / box_h, (query.height - 2 * top - box_h) / box_h
    sv, cv = query.width / box_w, (query.width - 2 * left - box_w) / box_w
    cv = -cv if mirrored else cv
    p = aligned.params
    params = np.array(
        [p[0] * su, p[1] * sv, p[2] * su, p[3] * sv, p[4] + p[0] * cu + p[1] * cv, p[5] + p[2] * cu + p[3] * cv]
    )
    # The grid's steps in the kept picture's pixels, down its rows and across its columns (a
    # copy's map is near an axis-aligned one: the kept picture's rows are the query's).
    step_down, step_across = math.hypot(params[0], params[2]) * 2 / side, math.hypot(params[1], params[3]) * 2 / side
    fy, fx = min(1.0, 1 / max(step_down, 1e-9)), min(1.0, 1 / max(step_across, 1e-9))
    height, width = max(2, round(aligned.resized[0] * fy)), max(2, round(aligned.resized[1] * fx))
    params = _scaled(params, height / aligned.resized[0], width / aligned.resized[1])
    image = kept.grey().resize((width, height), Image.Resampling.BILINEAR)
    whole = np.asarray(query.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64)
    return _aligned(whole[:, ::-1] if mirrored else whole, image, params, (height, width))


def _window_map(window: Window) -> np.ndarray:
    """The affine map from the patch's [-1, 1] square onto a window's pixel centres."""
    top, win_h, left, win_w = window
    return np.array([win_h / 2, 0.0, 0.0, win_w / 2, top + win_h / 2 - 0.5, left + win_w / 2 - 0.5])


def _scaled(params: np.ndarray, factor: float, across: float | None = None) -> np.ndarray:
    """A map onto a picture resized by `factor` (down its rows, and by `across` its columns when
    given; pixel centres: k -> (k + 0.5) * factor - 0.5)."""
    down, across = factor, factor if across is None else across
    out = np.array(params, dtype=np.float64)
    out[[0, 1]] *= down
    out[[2, 3]] *= across
    out[4], out[5] = (out[4] + 0.5) * down - 0.5, (out[5] + 0.5) * across - 0.5
    return out


def _aligned(query: np.ndarray, image: Image.Image, params: np.ndarray, resized: tuple[int, ...]) -> Aligned:
    warped, inside = _warp(image, params, query.shape[0])
    inside = np.ones(warped.shape, bool) if inside is None else inside
    return Aligned(query, warped.astype(np.float64), inside, params, (int(resized[0]), int(resized[1])))


def _likeness(aligned: Aligned) -> float:
    """How alike the query and the warped picture are over the overlap (0 for too little): the
    median of their tiles' correlations where the kept picture varies (policy.LIKENESS_TILE),
    or one correlation over the overlap when too few tiles do (a plain render)."""
    if aligned.inside.mean() < 0.5:
        return 0.0
    mine, theirs = tiles(aligned.query, LIKENESS_TILE), tiles(aligned.warped, LIKENESS_TILE)
    judged = tiles(aligned.inside, LIKENESS_TILE).all(axis=2) & (theirs.std(axis=2) >= LIKENESS_VARIES)
    if judged.sum() >= MIN_LIKENESS_TILES:
        q, w = mine[judged], theirs[judged]
        q, w = q - q.mean(axis=1, keepdims=True), w - w.mean(axis=1, keepdims=True)
        norms = np.sqrt((q * q).sum(axis=1) * (w * w).sum(axis=1))
        return float(median((q * w).sum(axis=1) / np.maximum(norms, 1e-6)))
    q, w = aligned.query[aligned.inside], aligned.warped[aligned.inside]
    q, w = q - q.mean(), w - w.mean()
    return float((q * w).sum() / max(np.sqrt((q * q).sum() * (w * w).sum()), 1e-6))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A 5-tap Gaussian, separable: smooths the last pixel of aliasing Lucas-Kanade would chase."""
    taps = exp(-(np.arange(-2, 3) ** 2) / (2 * sigma * sigma))
    taps /= taps.sum()
    padded = np.pad(image, 2, mode="edge")
    height, width = image.shape
    # Summed in place, tap by tap: the same sums in the same order as one expression, without
    # a new array for each partial sum.
    rows = taps[0] * padded[:height, :]
    for i in range(1, 5):
        rows += taps[i] * padded[i : i + height, :]
    out = taps[0] * rows[:, :width]
    for i in range(1, 5):
        out += taps[i] * rows[:, i : i + width]
    return out


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gy, gx = np.zeros_like(image), np.zeros_like(image)
    gy[1:-1] = (image[2:] - image[:-2]) * 0.5
    gx[:, 1:-1] = (image[:, 2:] - image[:, :-2]) * 0.5
    return gy, gx


@cache
def _centres(n: int) -> np.ndarray:
    """Pixel centres of n pixels along a side of the patch, in [-1, 1]."""
    centres = (np.arange(n) + 0.5) / n * 2 - 1
    centres.flags.writeable = False
    return centres


@cache
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of an n x n patch in [-1, 1]: rows (U) and columns (V)."""
    return np.meshgrid(_centres(n), _centres(n), indexing="ij")


def _affine(params: np.ndarray, n: int) -> tuple[float, ...]:
    """Pillow's AFFINE data for the map from an n x n patch's [-1, 1] square (rows u, columns v)
    to the image's pixel centres (y = p4 + p0 u + p1 v, x = p5 + p2 u + p3 v). Pillow samples
    at (a X + b Y + c, d X + e Y + f) for an output pixel's centre (X, Y), in coordinates where
    pixel k spans [k, k + 1): hence the halves."""
    a11, a12, a21, a22, ty, tx = (float(p) for p in params)
    return (2 * a22 / n, 2 * a21 / n, tx - a21 - a22 + 0.5, 2 * a12 / n, 2 * a11 / n, ty - a11 - a12 + 0.5)


def _warp(image: Image.Image, params: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """`image` (mode F) sampled bilinearly on the patch grid, and which samples lie inside it
    (None: all of them, the usual case, known from the four corners)."""
    warped = np.asarray(
        image.transform((n, n), Image.Transform.AFFINE, _affine(params, n), resample=Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    height, width = image.height, image.width
    edge = 1 - 1 / n  # the outermost pixel centres
    corners = [(su * edge, sv * edge) for su in (-1, 1) for sv in (-1, 1)]
    ys = [params[4] + params[0] * cu + params[1] * cv for cu, cv in corners]
    xs = [params[5] + params[2] * cu + params[3] * cv for cu, cv in corners]
    if min(ys) >= 0 and max(ys) <= height - 1 and min(xs) >= 0 and max(xs) <= width - 1:
        return warped, None
    # Rows and columns broadcast: each sample's numbers as from the whole grid, for n, not n^2, products.
    u, v = _centres(n)[:, None], _centres(n)[None, :]
    y, x = params[4] + params[0] * u + params[1] * v, params[5] + params[2] * u + params[3] * v
    return warped, (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)


@dataclass(frozen=True, slots=True)
class _Template:
    """A query patch as the steps read it: its side `n`, and on every `every`th row and column
    its blurred levels (`wanted`) and steepest-descent images (the gradients times the map's
    Jacobian, one column per parameter)."""

    n: int
    every: int
    wanted: np.ndarray
    steepest: np.ndarray


def _template(query: np.ndarray, sigma: float) -> _Template:
    """What every step of Lucas-Kanade reads of the query patch, made once per patch."""
    n = query.shape[0]
    u, v = _grid(n)
    template = _blur(query, sigma)
    grad_u, grad_v = _gradients(template)
    grad_u, grad_v = grad_u * (n / 2), grad_v * (n / 2)  # per unit of the patch's [-1, 1] axes
    # Above 128 px the steps solve on every other row and column: a quarter of the arithmetic,
    # the same map to a tenth of a pixel (the level below has brought it within a pixel).
    every = 2 if n > 128 else 1
    gu, gv, u, v = (a[::every, ::every] for a in (grad_u, grad_v, u, v))
    steepest = np.stack([gu * u, gu * v, gv * u, gv * v, gu, gv], axis=-1).reshape(-1, 6).astype(np.float64)
    return _Template(n, every, template[::every, ::every].ravel().astype(np.float64), steepest)


def _lucas_kanade(template: _Template, image: Image.Image, params: np.ndarray, steps: int) -> np.ndarray:
    """Inverse-compositional Gauss-Newton on the affine map (Baker and Matthews): the query's
    gradients are computed once (`template`), each step warps the kept picture, blurred as the
    query was (`image`, mode F), once (Pillow's affine transform).
    A gain and an offset are fitted at each step, and Huber weights keep a badge or a watermark
    from pulling the map. The steps solve in float64 and the map ends snapped to MAP_STEP: how
    many steps run, and the map every later limit reads, are then the same on every CPU."""
    n, every, wanted, steepest = template.n, template.every, template.wanted, template.steepest
    params = params.astype(np.float64)
    for _ in range(steps):
        warped, inside = _warp(image, params, n)
        warped = warped[::every, ::every].astype(np.float64)
        if inside is None:
            w_flat, t_flat, jacobian = warped.ravel(), wanted, steepest
        else:
            mask = inside[::every, ::every].ravel()
            if mask.sum() < mask.size // 2:
                break
            w_flat, t_flat, jacobian = warped.ravel()[mask], wanted[mask], steepest[mask]
        w_centred, t_mean = w_flat - w_flat.mean(), t_flat.mean()
        gain = float(w_centred @ (t_flat - t_mean)) / max(float(w_centred @ w_centred), 1e-6)
        error = gain * w_centred + t_mean - t_flat
        magnitude = np.abs(error)
        scale = 1.4826 * float(median(magnitude[::4])) + 1e-3  # a quarter of the pixels: as good
        weights = np.minimum(1.0, 1.5 * scale / np.maximum(magnitude, 1e-9))
        weighted = jacobian * weights[:, None]
        step = np.linalg.solve(weighted.T @ jacobian + _RIDGE, weighted.T @ error)
        # p <- p o step^-1: the map now sends the query's grid where the step says it belongs.
        (a, b), (c, d) = np.eye(2) + step[:4].reshape(2, 2)
        inverse = np.array([[d, -b], [-c, a]]) / (a * d - b * c)
        linear = params[:4].reshape(2, 2) @ inverse
        params = np.concatenate([linear.ravel(), params[4:] - linear @ step[4:]])
        if np.abs(step).max() < 1e-3:
            break
    return np.rint(params / MAP_STEP) * MAP_STEP
