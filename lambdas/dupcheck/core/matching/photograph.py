"""The look-alike check: a second, finer look at the candidates the views would call duplicates.

The views every record stores (32x32 luma, 16x16 colour: views.py) hold a
product's shape and colours, not a collar, a zip, a print or a seam: two different black
t-shirts on the same model in the same pose agree there almost pixel for pixel, and so do a
black cap and the grey one a shop made from the same photo (docs/evaluation.md, "Precision at
catalog scale"). So a candidate whose views pass is looked at again, at 64x64 (its luma at
128x128 when only a turn lined it up: `_side`), against its thumbnail (thumbnails.py): the
record's 160 px working copy, kept beside the record rather than in it.

1. Alignment: the views' alignment (the window, the mirroring, the turn) is refined by
   Lucas-Kanade to an affine map from the query onto the thumbnail, at 32 px then at 64, with a
   gain and an offset for brightness and contrast and robust weights so that a badge does not
   pull it. A copy is one affine map away from its source whatever was edited (a few degrees of
   turn the views let pass upright, a squash, a crop's last pixels); another photo is not.
2. Structure: the aligned pictures are cut in 8x8 tiles of 8x8 pixels, and the tiles with
   detail on both sides are correlated. A copy's tiles agree (JPEG, a resize and a badge's
   edge cost little, and a tile only one side has detail in, an overlay's, is not counted);
   another garment on the same model in the same pose, or the same model photographed twice,
   agrees in the large but not tile by tile: the face, the arms, the seams and the prints are
   a pixel or two elsewhere, or are not there at all. And the gradients' magnitudes are
   correlated over the whole picture: the same detail, in the same places.
3. Tone: brightness and contrast edits map every luma level of the source through one line,
   clipped at black and white. A shop that recolours a product in a photo (a black cap made
   grey) changes some regions and leaves others (the underbrim, the strap): the share of the
   picture that no clipped line explains, a pixel of slack allowed, says so.
4. Tint: the same in colour. Every edit of the whole picture (brightness, contrast, saturation,
   grayscale, a chain of them) multiplies each pixel's tint, its offset from the grey of its
   own luma, by one factor; a shop's recolour changes the product's tint and not the skin's or
   the background's (purple leggings made lilac, a mint waistband made cyan at one lightness).

A far candidate a little less alike than the views alone accept (a resampled 10-15% crop) may
pass too, but only when this look was made and agrees (`Confirmed.wider`).

Cost (docs/benchmarks.md): a few milliseconds per candidate looked at, and only candidates the
views already pass are (about one per query for a copy, almost never for a new product); the
thumbnail is read from the store for those alone.

Its surface: judge.py asks `LookalikeCheck(probe, limits, thumbnail_of).target(i, tier, wider)`
for each candidate's `Confirmed` target, which verification's turning and the verdict ask
`passes` of; `examine` and `Detail` say what it saw (tests, scripts/pair_picture.py). The
catalog-wide report's second look (dupcheck_tools/duplicates/second_look.py) reuses its
alignment: `candidate_window`, `align`, `query_colour`, `warped_colour`. Its limits are
policy.py's `Limits` (ALIGNED_DUAL_PHASH.lookalike) and its measuring constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from PIL import Image

from dupcheck.core.matching.alignment import Alignment, Evidence
from dupcheck.core.matching.arrays import centre_weight, largest, least_shifted, neighbourhood, neighbours, unit
from dupcheck.core.matching.policy import (
    BACKGROUND_TOLERANCE,
    LOOKALIKE_SIZE,
    LOOKALIKE_TURNED_SIZE,
    LUCAS_KANADE_BLUR,
    LUCAS_KANADE_STEPS,
    LUMA_SLACK,
    MAX_TINT_FACTOR,
    MIN_FITTED,
    SOLID,
    STRONG_EDGE,
    TEXTURED,
    TILE,
    TINT_CLIPPED_BRIGHT,
    TINT_CLIPPED_DARK,
    TINT_SLACK,
    TINT_STRONG,
    TONE_BRIGHT,
    TONE_DARK,
    TONE_FIT_KEPT,
    Limits,
    Tier,
)
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Probe
from dupcheck.core.pixels import luma

_RIDGE = 1e-6 * np.eye(6)  # keeps the normal equations solvable on a flat patch


@dataclass(frozen=True, slots=True)
class Detail:
    """What the finer look saw, at its alignment: `structure`, the median correlation of the
    8x8 tiles with detail on both sides (1: the same detail everywhere); `missing`, the share of
    the candidate's strong edges the query has nowhere within a pixel (a zip, a seam, a print,
    a face that is not there); `recoloured`, the share of solid regions (they survive a 3x3
    erosion) no clipped tone line explains; `overlap`, the share of the query the aligned
    thumbnail covers; `retinted` and `repainted`, the share of solid regions whose tint (a
    colour's offset from the grey of its luma) is off the one tint scale every edit of the
    picture applies, by more than TINT_SLACK and by more than TINT_STRONG (a shop's recolour of
    the product, which leaves the skin and the background as they were; see `_tint_changes`).
    Shares are centre-weighted."""

    structure: float
    missing: float
    recoloured: float
    overlap: float
    retinted: float = 0.0
    repainted: float = 0.0


class LookalikeCheck:
    """One query's look-alike check: `confirm(candidate, evidence)` looks at a candidate whose
    views pass; its thumbnail comes from `thumbnail_of` (None: not kept, and the views decide).
    Each candidate is looked at once, whatever the turning asks again."""

    def __init__(self, probe: Probe, limits: Limits, thumbnail_of: Callable[[int], Thumbnail | None]) -> None:
        self.probe, self.limits, self._thumbnail_of = probe, limits, thumbnail_of
        self._seen: dict[tuple[int, Alignment], bool | None] = {}  # None: not looked at
        self._queries: dict[tuple[float, tuple[float, ...], bool, int], np.ndarray] = {}

    def target(self, candidate: int, tier: Tier, wider: Tier | None = None) -> Confirmed:
        return Confirmed(tier, self, candidate, wider)

    def confirm(self, candidate: int, evidence: Evidence, *, looked: bool = False) -> bool:
        """Whether the finer look agrees with the views' alignment; without a look (no
        thumbnail, a window too small) the views decide, unless `looked` asks for one."""
        alignment = evidence.alignment
        if alignment is None:
            return not looked
        key = (candidate, alignment)
        if key not in self._seen:
            thumbnail = self._thumbnail_of(candidate)
            detail = None if thumbnail is None else self.examine(thumbnail, alignment)
            self._seen[key] = None if detail is None else self.limits.passes(detail)
        agrees = self._seen[key]
        return not looked if agrees is None else agrees

    def examine(self, thumbnail: Thumbnail, alignment: Alignment) -> Detail | None:
        """The finer look at a candidate's thumbnail at the views' alignment (None: its window
        is too small to look at)."""
        side = _side(alignment)
        window, candidate = candidate_window(thumbnail, alignment, side)
        if window is None:
            return None
        aligned = align(self._query(alignment, side), candidate, window)
        warped, _ = warped_colour(thumbnail.rgb, aligned.params, candidate.shape)
        inside = _pooled(aligned.inside, side // LOOKALIKE_SIZE)
        retinted, repainted = _tint_changes(query_colour(self.probe, alignment), warped, inside)
        return replace(_measure(aligned), retinted=retinted, repainted=repainted)

    def aligned(self, thumbnail: Thumbnail, alignment: Alignment) -> Aligned | None:
        """The query's patch and the thumbnail mapped onto it, as the check compares them."""
        side = _side(alignment)
        window, candidate = candidate_window(thumbnail, alignment, side)
        return None if window is None else align(self._query(alignment, side), candidate, window)

    def _query(self, alignment: Alignment, side: int) -> np.ndarray:
        key = (alignment.angle, alignment.query_box, alignment.mirrored, side)
        if key not in self._queries:
            picture = self.probe.turned(alignment.angle)
            height, width = picture.shape[:2]
            top, bottom, left, right = alignment.query_box
            gray = Image.fromarray(luma(picture, np.float32), mode="F")
            patch = gray.resize((side, side), Image.Resampling.BILINEAR,
                                box=(left * width, top * height, right * width, bottom * height))  # fmt: skip
            query = np.asarray(patch, dtype=np.float64)
            self._queries[key] = query[:, ::-1] if alignment.mirrored else query
        return self._queries[key]


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A candidate's tier, and then the look-alike check: what verification's turning and the
    verdict ask `passes` of (duck-typed as a Tier: alignment.py's `Target`)."""

    tier: Tier
    check: LookalikeCheck
    candidate: int
    wider: Tier | None = None  # passes too, but only when the thumbnail was looked at and agrees

    def passes(self, evidence: Evidence) -> bool:
        if self.tier.passes(evidence):
            return self.check.confirm(self.candidate, evidence)
        return (
            self.wider is not None
            and self.wider.passes(evidence)
            and self.check.confirm(self.candidate, evidence, looked=True)
        )

    def open_on_colour(self, evidence: Evidence) -> bool:
        return self.tier.open_on_colour(evidence) or (self.wider is not None and self.wider.open_on_colour(evidence))

    @property
    def max_colour_off(self) -> float:
        return self.tier.max_colour_off


# -- the finer look --------------------------------------------------------------------------


def _side(alignment: Alignment) -> int:
    """The side of an alignment's luma look. A turned one is looked at twice as fine: a turn is
    one more freedom of the alignment, fitted to the pair, so another photo in the same pose has
    one more way to line up, and one did where the 64 px look could not tell (magento_0063 and
    0060: a crew-neck and a V-neck tee on one model, head turned; docs/evaluation.md,
    "Leave-one-out"). At 128 px a face and a neckline are seen at about the thumbnail's own
    resolution (160 px). The tint stays at LOOKALIKE_SIZE: the thumbnail's JPEG keeps its colour at half
    resolution, so a finer tint is the coding's."""
    return LOOKALIKE_TURNED_SIZE if alignment.angle else LOOKALIKE_SIZE


def _pooled(mask: np.ndarray, factor: int) -> np.ndarray:
    """`mask` at 1/factor of its side: a pixel where all the pixels it covers are set."""
    if factor == 1:
        return mask
    n = mask.shape[0] // factor
    return np.asarray(mask.reshape(n, factor, n, factor).all(axis=(1, 3)))


def candidate_window(
    thumbnail: Thumbnail, alignment: Alignment, side: int = LOOKALIKE_SIZE
) -> tuple[tuple[float, float, float, float] | None, np.ndarray]:
    """The candidate's luma, scaled so that the aligned window is `side` pixels on its longer
    side (what the query patch is), and the window there: (top, height, left, width)."""
    height, width = thumbnail.rgb.shape[:2]
    top, bottom, left, right = thumbnail.box if alignment.candidate_view else (0, height, 0, width)
    view_h, view_w = bottom - top, right - left
    y0, x0 = top + alignment.rows[0] * view_h, left + alignment.cols[0] * view_w
    win_h, win_w = alignment.rows[1] * view_h, alignment.cols[1] * view_w
    if min(win_h, win_w) < 4:
        return None, np.zeros((0, 0))
    scale = side / max(win_h, win_w)
    new_w, new_h = max(2, round(width * scale)), max(2, round(height * scale))
    gray = Image.fromarray(luma(thumbnail.rgb, np.float32), mode="F")
    candidate = np.asarray(gray.resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.float64)
    sy, sx = new_h / height, new_w / width
    return (y0 * sy, win_h * sy, x0 * sx, win_w * sx), candidate


@cache
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of an n x n patch in [-1, 1]: rows (U) and columns (V)."""
    centres = (np.arange(n) + 0.5) / n * 2 - 1
    return np.meshgrid(centres, centres, indexing="ij")


@dataclass(frozen=True, slots=True)
class Aligned:
    """`query` (a square of luma), the candidate's luma `warped` onto it, and where the warped
    samples fell `inside` the candidate."""

    query: np.ndarray
    warped: np.ndarray
    inside: np.ndarray
    params: np.ndarray  # the affine map (see _affine) from the patch onto the candidate's pixels


def align(query: np.ndarray, candidate: np.ndarray, window: tuple[float, float, float, float]) -> Aligned:
    """`query` (a square of luma) against `candidate` (luma) whose `window` (top, height, left,
    width, in its pixels) the views aligned with it, refined to the affine map that fits best."""
    top, win_h, left, win_w = window
    # The affine map from the patch's [-1, 1] square to the candidate's pixel centres.
    start = np.array([win_h / 2, 0.0, 0.0, win_w / 2, top + win_h / 2 - 0.5, left + win_w / 2 - 0.5])
    coarse = start * 0.5
    coarse[4:] = (start[4:] + 0.5) * 0.5 - 0.5
    coarse = _lucas_kanade(_halved(query), _halved(candidate), coarse, LUCAS_KANADE_STEPS[0], LUCAS_KANADE_BLUR[0])
    params = coarse * 2.0
    params[4:] = (coarse[4:] + 0.5) * 2.0 - 0.5
    params = _lucas_kanade(query, candidate, params, LUCAS_KANADE_STEPS[1], LUCAS_KANADE_BLUR[1])
    image = Image.fromarray(candidate.astype(np.float32), mode="F")
    # Refining can only help: a map that ends less alike than the views' own (a frame or padding
    # that the steps chase) is dropped for the views' window.
    refined, started = (_aligned(query, image, p) for p in (params, start))
    return refined if _likeness(refined) >= _likeness(started) else started


def _aligned(query: np.ndarray, image: Image.Image, params: np.ndarray) -> Aligned:
    warped, inside = _warp(image, params, query.shape[0])
    inside = np.ones(warped.shape, bool) if inside is None else inside
    return Aligned(query, warped.astype(np.float64), inside, params)


def _likeness(aligned: Aligned) -> float:
    """Correlation of the query with the warped candidate over the overlap (0 for too little)."""
    if aligned.inside.mean() < 0.5:
        return 0.0
    q, w = aligned.query[aligned.inside], aligned.warped[aligned.inside]
    q, w = q - q.mean(), w - w.mean()
    return float((q * w).sum() / max(np.sqrt((q * q).sum() * (w * w).sum()), 1e-6))


def _halved(image: np.ndarray) -> np.ndarray:
    height, width = image.shape
    small = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (max(2, width // 2), max(2, height // 2)), Image.Resampling.BOX
    )
    return np.asarray(small, dtype=np.float64)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A 5-tap Gaussian, separable: smooths the last pixel of aliasing Lucas-Kanade would chase."""
    taps = np.exp(-(np.arange(-2, 3) ** 2) / (2 * sigma * sigma))
    taps /= taps.sum()
    padded = np.pad(image, 2, mode="edge")
    rows = sum(taps[i] * padded[i : i + image.shape[0], :] for i in range(5))
    return sum(taps[i] * rows[:, i : i + image.shape[1]] for i in range(5))


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gy, gx = np.zeros_like(image), np.zeros_like(image)
    gy[1:-1] = (image[2:] - image[:-2]) * 0.5
    gx[:, 1:-1] = (image[:, 2:] - image[:, :-2]) * 0.5
    return gy, gx


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
    u, v = _grid(n)
    y, x = params[4] + params[0] * u + params[1] * v, params[5] + params[2] * u + params[3] * v
    return warped, (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)


def _lucas_kanade(query: np.ndarray, candidate: np.ndarray, params: np.ndarray, steps: int, sigma: float) -> np.ndarray:
    """Inverse-compositional Gauss-Newton on the affine map (Baker and Matthews): the query's
    gradients are computed once, each step warps the candidate once (Pillow's affine transform).
    A gain and an offset are fitted at each step, and Huber weights keep a badge or a watermark
    from pulling the map."""
    n = query.shape[0]
    u, v = _grid(n)
    template = _blur(query, sigma)
    image = Image.fromarray(_blur(candidate, sigma).astype(np.float32), mode="F")
    grad_u, grad_v = _gradients(template)
    grad_u, grad_v = grad_u * (n / 2), grad_v * (n / 2)  # per unit of the patch's [-1, 1] axes
    steepest = np.stack([grad_u * u, grad_u * v, grad_v * u, grad_v * v, grad_u, grad_v], axis=-1).reshape(-1, 6)
    steepest = steepest.astype(np.float32)
    wanted = template.ravel().astype(np.float32)
    params = params.astype(np.float64)
    for _ in range(steps):
        warped, inside = _warp(image, params, n)
        if inside is None:
            w_flat, t_flat, jacobian = warped.ravel(), wanted, steepest
        else:
            mask = inside.ravel()
            if mask.sum() < n * n // 2:
                break
            w_flat, t_flat, jacobian = warped.ravel()[mask], wanted[mask], steepest[mask]
        w_centred, t_mean = w_flat - w_flat.mean(), t_flat.mean()
        gain = float(w_centred @ (t_flat - t_mean)) / max(float(w_centred @ w_centred), 1e-6)
        error = gain * w_centred + t_mean - t_flat
        magnitude = np.abs(error)
        scale = 1.4826 * float(np.median(magnitude[::4])) + 1e-3  # a quarter of the pixels: as good
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
    return params


def _measure(aligned: Aligned) -> Detail:
    query, warped, inside = aligned.query, aligned.warped, aligned.inside
    overlap = float(inside.mean())
    q_in, w_in = query[inside], warped[inside]
    if q_in.size < 16:
        return Detail(0.0, 1.0, 1.0, overlap)
    w_mean, q_mean = w_in.mean(), q_in.mean()
    gain = ((w_in - w_mean) * (q_in - q_mean)).sum() / max(((w_in - w_mean) ** 2).sum(), 1e-6)
    fitted = gain * (warped - w_mean) + q_mean
    weight = centre_weight(query.shape[0])
    # Structure: tiles with detail on both sides (an overlay's tile has it on one side only).
    n = query.shape[0] // TILE
    q_tiles = query.reshape(n, TILE, n, TILE).swapaxes(1, 2)
    f_tiles = fitted.reshape(n, TILE, n, TILE).swapaxes(1, 2)
    whole = inside.reshape(n, TILE, n, TILE).swapaxes(1, 2).all(axis=(2, 3))
    both = whole & (q_tiles.std(axis=(2, 3)) > TEXTURED) & (f_tiles.std(axis=(2, 3)) > TEXTURED)
    correlations = (unit(q_tiles) * unit(f_tiles)).sum(axis=(2, 3))[both]
    structure = float(np.median(correlations)) if correlations.size else 1.0
    # Missing detail: the candidate's strong edges (away from the overlap's rim, where the
    # gradient sees outside) without a query edge half as strong within a pixel, where the query
    # shows something (not its plain background: text or a badge over a catalog picture's white
    # is not a detail the query lacks, a zip on the shirt it shows is). An overlay on the query
    # adds edges, which does not count; blur and JPEG weaken edges, by less than half.
    q_edges, f_edges = np.hypot(*_gradients(query)), np.hypot(*_gradients(fitted))
    strong = _eroded(_eroded(inside)) & (f_edges > STRONG_EDGE) & _shown(query)
    lost = strong & (neighbourhood(q_edges, np.maximum) < 0.5 * f_edges)
    missing = float((lost * weight).sum() / max((strong * weight).sum(), 1e-9))
    # Recoloured: either picture may be the edited one (brightening clips the edited one's
    # highlights, which no line maps back), so each is predicted from the other and the better
    # way counts; a region recoloured in one of them is off both ways.
    recoloured = min(
        float((_eroded((_tone_residual(a, b, inside) > LUMA_SLACK) & inside) * weight).sum())
        for a, b in ((query, warped), (warped, query))
    )
    return Detail(structure, missing, recoloured, overlap)


def query_colour(probe: Probe, alignment: Alignment, side: int = LOOKALIKE_SIZE) -> np.ndarray:
    """The query's patch as `LookalikeCheck._query` cuts it (turned, cut to the aligned box,
    mirrored as aligned), in colour: (3, side, side) sRGB levels."""
    picture = Image.fromarray(probe.turned(alignment.angle))
    top, bottom, left, right = alignment.query_box
    box = (left * picture.width, top * picture.height, right * picture.width, bottom * picture.height)
    patch = np.asarray(picture.resize((side, side), Image.Resampling.BILINEAR, box=box), dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(patch[:, ::-1] if alignment.mirrored else patch, -1, 0))


def warped_colour(
    rgb: np.ndarray, params: np.ndarray, resized: tuple[int, ...], side: int = LOOKALIKE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """The thumbnail's colour (`rgb`) sampled where `params` maps the patch: (3, side, side),
    and which samples fall inside the thumbnail. The map is onto the thumbnail resized to
    `resized` (what `align` saw, candidate_window): onto its own pixel centres it is scaled by
    that resize on each axis (the patch's [-1, 1] square is the same at any side)."""
    sy, sx = rgb.shape[0] / resized[0], rgb.shape[1] / resized[1]
    own = np.concatenate([params[:4] * np.array([sy, sy, sx, sx]), (params[4:] + 0.5) * np.array([sy, sx]) - 0.5])
    channels = (Image.fromarray(np.ascontiguousarray(rgb[..., c], np.float32), mode="F") for c in range(3))
    warps = [_warp(channel, own, side) for channel in channels]
    inside = warps[0][1]
    return np.stack([warped for warped, _ in warps]), np.ones((side, side), bool) if inside is None else inside


def _tint_changes(query: np.ndarray, warped: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """(retinted, repainted) of Detail, from the query patch and the thumbnail warped onto it
    ((3, LOOKALIKE_SIZE, LOOKALIKE_SIZE) sRGB levels each).

    Every edit a copy gets in one go, brightness (x f), contrast (k x + (1 - k) mean), saturation
    (s x + (1 - s) luma), grayscale and any chain of them, maps a pixel's tint, its offset from
    the grey of its own luma, through one factor: tint' = t x tint, the same t everywhere. A shop
    that recolours its product in a photo changes the tint of the product and leaves the skin,
    the props and the background as they were: no one factor explains both (purple leggings made
    lilac, a mint waistband made cyan). So the factor is fitted (least squares, twice more on the
    pixels it explains, so the recoloured part does not pull it), and what it leaves off counts
    where the pixel and most of its neighbours are off (a region, not an edge's last pixel of
    misalignment), a pixel of slack allowed. Clipped pixels (a brightened highlight, a darkened
    shadow) are left out: a clip turns a tint. Either picture may be the edited one (a
    grayscale copy has no tint to predict the other's from), so each is predicted from the other
    and the smaller share counts, for each threshold."""
    brightest = np.maximum(query.max(axis=0), warped.max(axis=0))
    darkest = np.minimum(query.min(axis=0), warped.min(axis=0))
    unclipped = inside & (brightest < TINT_CLIPPED_BRIGHT) & (darkest > TINT_CLIPPED_DARK)
    tints = [rgb - luma(np.moveaxis(rgb, 0, -1), np.float32) for rgb in (query, warped)]
    weight = centre_weight(query.shape[-1])
    offs = [_tint_off(mine, theirs, unclipped) for mine, theirs in (tints, tints[::-1])]
    faint, strong = (
        min(float((solid((off > slack) & unclipped) * weight).sum()) for off in offs)
        for slack in (TINT_SLACK, TINT_STRONG)
    )
    return faint, strong


def _tint_off(mine: np.ndarray, theirs: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel's distance of `mine` from `theirs` times the fitted tint
    factor (in [0, MAX_TINT_FACTOR]), each pixel allowed a one-pixel shift."""
    factor = 1.0
    for _ in range(3):
        x, y = theirs[:, chosen], mine[:, chosen]
        factor = min(max(float((x * y).sum()) / max(float((x * x).sum()), 1e-6), 0.0), MAX_TINT_FACTOR)
        kept = chosen & (largest(mine - factor * theirs) < TINT_SLACK)
        if kept.sum() < MIN_FITTED:
            break
        chosen = kept
    return off_shifted(mine, factor * theirs)


def off_shifted(mine: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel's distance of `mine` from `predicted` ((3, n, n) each),
    each pixel allowed a one-pixel shift (the alignment's last pixel of slack)."""
    return least_shifted(mine, predicted, largest, np.float32)


def solid(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` with at least SOLID of their 3x3 neighbourhood (themselves included)
    in it: a band two or three pixels high stays, as a recoloured waistband is at this size,
    which a 3x3 erosion would take; scattered pixels go."""
    return mask & (neighbours(mask) >= SOLID)


def _shown(query: np.ndarray) -> np.ndarray:
    """The query patch's pixels that are not its plain background (the median of its outer
    ring, when most of the ring is within BACKGROUND_TOLERANCE of it; all of them otherwise), grown by a
    pixel so that the outline of what is shown counts."""
    ring = np.concatenate([query[0], query[-1], query[:, 0], query[:, -1]])
    level = float(np.median(ring))
    if np.mean(np.abs(ring - level) <= BACKGROUND_TOLERANCE) < 0.5:
        return np.ones(query.shape, bool)
    return neighbourhood(np.abs(query - level) > BACKGROUND_TOLERANCE, np.maximum)


def _eroded(mask: np.ndarray) -> np.ndarray:
    """A 3x3 erosion: what is left of a region once a pixel is taken from its rim (a stroke of
    text one or two pixels wide is gone, a recoloured cap is not)."""
    return neighbourhood(mask, np.logical_and, fill=False)


def _tone_residual(query: np.ndarray, warped: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per pixel, how far `query` is from one clipped tone line of `warped`: query ~
    clip(g * warped + b), fitted on the pixels away from black and white, twice more on those
    within TONE_FIT_KEPT levels (a recoloured region must not pull the line), each pixel allowed a
    one-pixel shift. Brightness and contrast are such a line; a region recoloured is off it."""
    chosen = inside & (query > TONE_DARK) & (query < TONE_BRIGHT) & (warped > TONE_DARK) & (warped < TONE_BRIGHT)
    if chosen.sum() < MIN_FITTED:
        chosen = inside
    gain, offset = 1.0, 0.0
    for _ in range(3):
        x, y = warped[chosen], query[chosen]
        x_mean, y_mean = x.mean(), y.mean()
        gain = float(((x - x_mean) * (y - y_mean)).sum() / max(((x - x_mean) ** 2).sum(), 1e-6))
        offset = float(y_mean - gain * x_mean)
        kept = chosen & (np.abs(query - (gain * warped + offset)) < TONE_FIT_KEPT)
        if kept.sum() < MIN_FITTED:
            break
        chosen = kept
    predicted = np.clip(gain * warped + offset, 0, 255)
    return least_shifted(query, predicted, np.abs, np.float64)
