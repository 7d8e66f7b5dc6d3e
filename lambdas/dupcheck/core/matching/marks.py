"""Text or a watermark written over a copy: what the photograph's pixels cannot explain.

The same-photograph test (photograph.py) maps a copy onto its catalog picture to a pixel at
256 px. Whatever was edited, every 16 px tile of the copy is then, to within JPEG's noise, a
local edit of the kept picture's tile: its tone (a gain and an offset: a brightness, contrast
or grayscale edit is one such line, a curve is one per tile), a fraction of a pixel of shift
(the map's last error: the kept picture's two gradients) and a little blur or sharpening
(resampling: its Laplacian). Text laid over the picture is none of these: its strokes are
shapes of their own. So, per tile, the query is fitted by those five terms of the kept
picture (least squares, then again without the pixels the first fit missed most, which is
where strokes are); what is left is smoothed at the scale of a stroke, which cancels what
misalignment leaves on both sides of an edge and keeps a stroke's one-signed fill; and a
pixel is *written* where that residue stands out from the pair's own noise and from what a
pixel of misalignment could leave at a strong edge there.

Written pixels are kept away from the overlap's edge (where a crop, a frame or padding cuts,
and the query has an edge the kept picture lacks) and from the query's tones an edit clipped.
A watermark is then a group of written pixels close together (a word: its letters side by
side), over `policy.MARK_SHARE` of the patch: edits.py names it "text or a badge added" where it
lies. edits.py asks about the query's whole picture under the test's map where the test compared
a trimmed box (photograph.whole_picture): a shop's watermark often lies on the backdrop.

What chose the limits (policy.py, "Text or a watermark"): docs/lab/evaluation.md, "Watermarks:
what a local edit cannot explain".
"""

from __future__ import annotations

import math

import numpy as np

from dupcheck.core.limits.policy import (
    BACKDROP,
    BACKDROP_RING,
    CLIPPED,
    HOLDER_LEVEL,
    HOLDER_MARGIN,
    HOLDER_OUTLINE,
    HOLDER_PIXELS,
    LINE_ASTRAY,
    LINE_DETAIL,
    LINE_SHARED,
    LINE_TILE,
    LINE_TILES,
    MARK_BLOCK,
    MARK_EDGE,
    MARK_GAP,
    MARK_GRADIENT,
    MARK_LEVEL,
    MARK_LINE,
    MARK_NOISE,
    MARK_REFIT,
    MARK_SHARE,
    MARK_SMOOTHING,
    MARK_TILE,
    MIN_SIDE,
    MOVED,
    MOVED_LEVEL,
    MOVED_PIXELS,
    MOVED_REACH,
    MOVED_TILE,
    PRODUCT_BACKDROP,
    PRODUCT_MARGIN,
    PRODUCT_MARK_LEVEL,
    PRODUCT_MARK_PIXELS,
    SWAP_CONTRAST,
    SWAP_STEP,
    SWAP_TILE,
    SWAPPED,
    WORD_ALONE,
    WORD_ROW,
)
from dupcheck.core.matching.affine import Aligned
from dupcheck.core.matching.one_edit import quantile_line
from dupcheck.core.pictures.arrays import exp, neighbourhood, odd_medians, padded, regions, tiles

_TERMS = 5  # gain, offset, two gradients, Laplacian
_RIDGE = 1e-6 * np.eye(_TERMS)


def written(aligned: Aligned) -> np.ndarray:
    """The pixels of the patch (mirrored as `aligned.query` is) where something was written
    over the photograph: a bool mask of the patch's side, False near the overlap's edge."""
    query, kept = aligned.query, aligned.warped
    n = query.shape[0]
    scale = n / 256
    tile = max(4, round(MARK_TILE * scale))
    side = n // tile * tile
    query, kept, inside = query[:side, :side], kept[:side, :side], aligned.inside[:side, :side]
    gradients = _gradients(kept)
    residue = _smoothed(_local_residue(query, kept, gradients, tile), MARK_SMOOTHING * scale)
    # A clip is one more bend of the tone that a tile's line misses, not something written: the
    # query's own pixels an edit took to (or near) black or white are left out, not their
    # neighbours (beside a white backdrop, those are a dark word's strokes).
    saturated = (query < CLIPPED) | (query > 255 - CLIPPED)
    usable = _eroded(inside, max(1, round(MARK_EDGE * scale))) & ~saturated
    if not usable.any():
        return np.zeros((n, n), dtype=bool)
    noise = 1.4826 * float(np.median(np.abs(residue[usable])))  # the residue's own spread (MAD)
    # The strongest gradient in each pixel's 3x3 neighbourhood: what a pixel of misalignment can leave there.
    gradient = neighbourhood(np.hypot(*gradients), np.maximum)
    marked = usable & (np.abs(residue) > max(MARK_LEVEL, MARK_NOISE * noise) + MARK_GRADIENT * gradient)
    out = np.zeros((n, n), dtype=bool)
    out[:side, :side] = marked
    return out


def mark_holder(mine: np.ndarray, theirs: np.ndarray) -> tuple[bool, np.ndarray] | None:
    """Which of two kept pictures of one shape (RGB, lined up pixel for pixel) holds what was
    pasted where they differ, and where they differ (a bool mask): True `mine`, False `theirs`;
    None when they do not tell. A mark's outline (a badge's edge, a letter's stroke) is an edge
    of the picture it lies on and of nothing in the other, which only continues the photograph
    there: the picture with more gradient energy (summed over the colour channels) on the outline
    of the pixels that differ holds it, by over HOLDER_MARGIN in log. Both pictures are kept the
    same way (size, JPEG), so neither is the sharper for it."""
    width = HOLDER_OUTLINE
    ours, other = mine.astype(np.float64), theirs.astype(np.float64)
    differs = np.abs(_smoothed(ours - other, 1.0)).max(axis=2) > HOLDER_LEVEL
    if int(differs.sum()) < HOLDER_PIXELS:
        return None
    # Within `width` of a differing pixel and of one that agrees, `width` from the picture's edge.
    inside = _eroded(np.ones(differs.shape, dtype=bool), width)
    ys, xs = np.nonzero(inside & ~_eroded(~differs, width) & ~_eroded(differs | ~inside, width))
    energies = [float(np.sum((p[ys, xs + 1] - p[ys, xs - 1]) ** 2 + (p[ys + 1, xs] - p[ys - 1, xs]) ** 2))
                for p in (ours, other)]  # fmt: skip
    if min(energies) <= 0.0:
        return None if max(energies) <= 0.0 else (energies[0] > energies[1], differs)
    ratio = math.log(energies[0] / energies[1])
    return (ratio > 0, differs) if abs(ratio) > HOLDER_MARGIN else None


def lined_up(mine: np.ndarray, theirs: np.ndarray, *, by_text: bool = False) -> bool:
    """Whether two kept pictures of one shape (RGB) line up closely enough for replaced_text to
    compare them pixel for pixel, the detail read on `mine`. Along each axis, in each LINE_TILE
    px tile with detail across it (its pixels LINE_DETAIL levels from their neighbours that way,
    root mean square: more than a JPEG's noise) that the two share (no pixel SWAP_CONTRAST
    apart, and a pixel's shift of its own differs LINE_SHARED times more than the two do, lined
    up as well as a pixel's shift lines them), the shift that lines them up best (the parabola
    through their differences a pixel either way) is under SWAP_CONTRAST / 255 of a pixel, in
    all but LINE_ASTRAY of them (a title's soft edge): a full-contrast edge moved more differs
    by SWAP_CONTRAST and would swap colours itself. Padding a few px wide, too thin to be named,
    moves them more, and so can a mirrored copy's kept picture. With under LINE_TILES such tiles
    along an axis nothing tells, unless `by_text` (a flat cover: the text its only detail) and
    none lies astray along the other axis: then the text itself tells, lined up unless its
    strokes are the same strokes moved (`_strokes_moved`). A mark added beside strokes moved
    reads as text no shift explains too, so only where a wrong reading costs no duplicate
    (`edits.retitled`). Integer sums: one answer on any machine."""
    ours, other = (_grey_int(picture) for picture in (mine, theirs))
    rows, cols = (ours.shape[0] - 2) // LINE_TILE, (ours.shape[1] - 2) // LINE_TILE
    if rows * cols == 0:
        return False

    def differences(picture: np.ndarray, dy: int, dx: int) -> np.ndarray:
        """Per tile, the squared differences between `ours` and `picture` moved by (dy, dx)."""
        moved = picture[1 + dy : 1 + dy + rows * LINE_TILE, 1 + dx : 1 + dx + cols * LINE_TILE]
        squared = (ours[1 : 1 + rows * LINE_TILE, 1 : 1 + cols * LINE_TILE] - moved) ** 2
        return squared.reshape(rows, LINE_TILE, cols, LINE_TILE).sum(axis=(1, 3))

    here = differences(other, 0, 0)
    floor = (LINE_DETAIL * 1000) ** 2 * LINE_TILE**2
    # Tiles where the two differ (the text itself) say nothing of how the rest lines up.
    differs = apart(mine, theirs)
    inner = differs[1 : 1 + rows * LINE_TILE, 1 : 1 + cols * LINE_TILE]
    alike = ~inner.reshape(rows, LINE_TILE, cols, LINE_TILE).any(axis=(1, 3))
    unmeasured = False
    for step in ((1, 0), (0, 1)):
        before, after = differences(other, -step[0], -step[1]), differences(other, *step)
        own = differences(ours, *step)
        shared = alike & (own >= floor) & (np.minimum(here, np.minimum(before, after)) * LINE_SHARED < own)
        if int(shared.sum()) < LINE_TILES:
            unmeasured = True  # too little detail besides the text along this axis (a flat cover)
            continue
        # The parabola's lowest point lies (before - after) / (2 curvature) from here.
        curvature = (before + after - 2 * here)[shared]
        off = np.abs(before - after)[shared]
        astray = int(((curvature <= 0) | (off * 255 > 2 * SWAP_CONTRAST * curvature)).sum())
        if astray > LINE_ASTRAY * int(shared.sum()):
            return False
    # Where an axis could not be measured, the text itself tells: unless a shift of a few px explains it.
    return not unmeasured or (by_text and not _strokes_moved(ours, other, differs))


def _strokes_moved(ours: np.ndarray, other: np.ndarray, differs: np.ndarray) -> bool:
    """Whether the strokes where two pictures (luma x 1000, int64) differ (`differs`) are the
    same strokes moved: a copy padded by less than a named padding (MIN_SIDE a side), kept at the
    same size again. In each MOVED_TILE px tile holding MOVED_PIXELS of them, at the shift (up to
    MOVED_REACH px) that explains it best, a resampled stroke's pixels lie within the other's
    range over a pixel round them (MOVED_LEVEL levels of JPEG's noise either way); another
    word's ink lands on the other's ground. Moved where, either way round, under MOVED of those
    tiles' pixels lie out of range. A margin of MIN_SIDE and the reach is left out: the thin
    padding lies there, and a shift has nothing beyond the picture's edge to bring in."""
    inside = np.zeros(differs.shape, dtype=bool)
    top, left = (math.ceil(MIN_SIDE * side) + MOVED_REACH for side in differs.shape)
    inside[top : differs.shape[0] - top, left : differs.shape[1] - left] = True
    counts = _tile_sums((differs & inside).astype(np.int64), MOVED_TILE)
    held = counts >= MOVED_PIXELS
    if not held.any():
        return True
    spread = min(_unexplained(a, b, held, inside) for a, b in ((ours, other), (other, ours)))
    return spread < MOVED * int(counts[held].sum())


def _unexplained(mine: np.ndarray, theirs: np.ndarray, held: np.ndarray, inside: np.ndarray) -> int:
    """Of the MOVED_TILE px tiles `held`, the pixels `inside` of `mine` out of `theirs`'s range
    over a pixel round them, at each tile's best shift up to MOVED_REACH px, summed."""
    reach, level = MOVED_REACH, int(MOVED_LEVEL * 1000)
    height, width = mine.shape
    wide = np.pad(theirs, reach, mode="edge")
    low = neighbourhood(wide, np.minimum) - level
    high = neighbourhood(wide, np.maximum) + level
    best = None
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            window = (slice(dy, dy + height), slice(dx, dx + width))
            out = ((mine < low[window]) | (mine > high[window])) & inside
            count = _tile_sums(out.astype(np.int64), MOVED_TILE)
            best = count if best is None else np.minimum(best, count)
    assert best is not None
    return int(best[held].sum())


def _tile_sums(values: np.ndarray, tile: int) -> np.ndarray:
    """Per `tile` px tile (the last ones cut short at the picture's edge), the sum of `values`."""
    starts = [np.arange(0, size, tile) for size in values.shape]
    return np.add.reduceat(np.add.reduceat(values, starts[0], axis=0), starts[1], axis=1)


def apart(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Where two pictures of one shape (RGB) lie SWAP_CONTRAST apart (RGB distance: a stroke on
    its ground), in whole numbers: the same pixels on any machine."""
    return np.square(mine.astype(np.int64) - theirs.astype(np.int64)).sum(axis=2) > SWAP_CONTRAST**2


def _grey_int(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in whole levels x 1000 (int64: sums exact in any order)."""
    wide = rgb.astype(np.int64)
    return wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114


def replaced_text(mine: np.ndarray, theirs: np.ndarray) -> bool:
    """Whether two kept pictures of one shape (RGB, lined up pixel for pixel) differ by text that
    replaced text: another title in one template shows, where the two differ, each picture's ink
    on the other's ground, so the same pairs of colours come both ways round (ink over ground
    where one has a stroke, ground over ink where the other has), letter by letter; a mark laid
    on top only adds its own colours over what it hides. Counted per SWAP_TILE px tile over the
    pixels SWAP_CONTRAST apart, colours in SWAP_STEP levels: SWAPPED of those pairs at least."""
    differs = apart(mine, theirs)
    if int(differs.sum()) < HOLDER_PIXELS:
        return False
    steps = 256 // SWAP_STEP + 1
    colours = steps**3

    def colour(picture: np.ndarray) -> np.ndarray:
        coded = np.clip(picture[differs].astype(np.int64), 0, 255) // SWAP_STEP
        return (coded[:, 0] * steps + coded[:, 1]) * steps + coded[:, 2]

    ys, xs = np.nonzero(differs)
    tile = (ys // SWAP_TILE) * (differs.shape[1] // SWAP_TILE + 1) + xs // SWAP_TILE
    a, b = colour(mine), colour(theirs)
    changed = a != b
    tile, a, b = tile[changed], a[changed], b[changed]
    if not len(tile):
        return False
    keys, counts = np.unique((tile * colours + a) * colours + b, return_counts=True)
    # Each pair's count beside its swap's (the same tile, the colours the other way round).
    swaps = (tile * colours + b) * colours + a
    swap_keys, swap_counts = np.unique(swaps, return_counts=True)
    at = np.searchsorted(keys, swap_keys)
    found = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == swap_keys)
    both = np.minimum(swap_counts[found], counts[at[found]]).sum()
    return bool(both >= SWAPPED * len(tile))


def on_product(aligned: Aligned) -> bool | None:
    """Whether what was added on top of the photograph lies on the product: inside its outline,
    touching neither the plain backdrop around it nor the picture's edge (a print on a shirt's
    chest, a logo on a mug), as opposed to a caption band across the picture, a corner badge or a
    watermark over the backdrop. None where nothing was added or no plain backdrop says where the
    product ends (a scene). Read on the test's patches: the mark is the written pixels and the
    pixels off the pair's tone line by PRODUCT_MARK_LEVEL (a solid logo's body)."""
    query, kept, inside = aligned.query.astype(np.float64), aligned.warped.astype(np.float64), aligned.inside
    n = query.shape[0]
    gain, offset = quantile_line(query, kept, inside)
    body = (np.abs(query - (gain * kept + offset)) > PRODUCT_MARK_LEVEL) & inside
    body = _grown(_eroded(body, 1), 1)  # opened: a region, not a misaligned edge's line
    mark = written(aligned) | (body & inside)
    if int(mark.sum()) < PRODUCT_MARK_PIXELS * (n / 256) ** 2:
        return None
    backdrop = _backdrop(kept, inside)
    if backdrop.sum() < PRODUCT_BACKDROP * inside.sum():
        return None
    margin = max(1, round(PRODUCT_MARGIN * n / 256))
    near_mark = _grown(mark, margin)
    edge = inside & ~_eroded(inside, margin)
    return not bool((near_mark & backdrop).any() or (mark & edge).any())


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` grown by `radius` px each way (beyond the picture counting as outside the mask)."""
    return ~_eroded(np.pad(~mask, radius, constant_values=True), radius)[radius:-radius, radius:-radius]


def _backdrop(luma: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The plain backdrop: within BACKDROP levels of the median of the overlap's outer ring and
    connected to it, when BACKDROP_RING of the ring is that plain (otherwise none)."""
    ring = inside & ~_eroded(inside, 1)
    backdrop = np.zeros(luma.shape, dtype=bool)
    if not ring.any():
        return backdrop
    near = (np.abs(luma - float(np.median(luma[ring]))) <= BACKDROP) & inside
    if near[ring].mean() < BACKDROP_RING:
        return backdrop
    for coordinates in regions(near):
        if ring[coordinates[:, 0], coordinates[:, 1]].any():
            backdrop[coordinates[:, 0], coordinates[:, 1]] = True
    return backdrop


def largest_mark(mask: np.ndarray) -> np.ndarray | None:
    """The (row, column) pixels of the largest mark: a group of written pixels whose
    `MARK_BLOCK` px blocks (at 256 px) touch one another or lie on one row at most `MARK_GAP`
    blocks apart, the letters of a word together, that is not a line (under `MARK_LINE` px
    across: the seam of padding or a crop, resampled, or one edge's highlight); None when there
    is none."""
    n = mask.shape[0]
    block = max(2, round(MARK_BLOCK * n / 256))
    thinnest = MARK_LINE * n / 256
    cells = n // block
    within = mask[: cells * block, : cells * block]
    pixels = np.argwhere(within)
    group_of = np.full((cells, cells), -1)
    for label, group in enumerate(regions(_side_by_side(np.asarray(tiles(within, block).any(axis=2)), MARK_GAP))):
        group_of[group[:, 0], group[:, 1]] = label
    labels = group_of[pixels[:, 0] // block, pixels[:, 1] // block]
    best: np.ndarray | None = None
    for label in np.argsort(-np.bincount(labels, minlength=1), kind="stable"):  # the most pixels first
        members = pixels[labels == label]
        if len(members) and min(np.ptp(members, axis=0)) + 1 >= thinnest:
            best = members
            break
    return best


def named_mark(mask: np.ndarray) -> np.ndarray | None:
    """The largest mark of `mask` (what `written` gave), when it is one to name: over MARK_SHARE
    of the patch, or a word (`_reads_as_word`); else None."""
    found = largest_mark(mask)
    if found is None or (len(found) < MARK_SHARE * mask.size and not _reads_as_word(found, mask)):
        return None
    return found


def _reads_as_word(mark: np.ndarray, mask: np.ndarray) -> bool:
    """Whether a mark's (row, column) pixels read as a line of text: a row WORD_ROW times as
    long as high, holding WORD_ALONE of the pixels written in the whole patch (a tone edit's
    clips are scattered groups)."""
    height, width = np.ptp(mark, axis=0) + 1
    return width >= WORD_ROW * height and len(mark) >= WORD_ALONE * int(mask.sum())


def _side_by_side(occupied: np.ndarray, gap: int) -> np.ndarray:
    """`occupied` blocks with the gaps of up to `gap` blocks along a row filled: a word's letters
    lie side by side on a line, with a letter's spacing between them (a faint word is written in
    pieces, each letter's strokes apart)."""
    cells = occupied.shape[1]
    index = np.arange(cells)
    before = np.maximum.accumulate(np.where(occupied, index, -cells - gap), axis=1)
    after = np.minimum.accumulate(np.where(occupied, index, 2 * cells + gap)[:, ::-1], axis=1)[:, ::-1]
    return occupied | (after - before - 1 <= gap)


def _local_residue(
    query: np.ndarray, kept: np.ndarray, gradients: tuple[np.ndarray, np.ndarray], tile: int
) -> np.ndarray:
    """What per-tile fits of the query by the kept picture's five terms leave (module docstring).
    In float64: each pixel's residue is compared with a limit, and float32 products differ by
    the CPU's kernels in the last digits that such a comparison can read."""
    n, k = query.shape[0], query.shape[0] // tile
    wider = padded(kept.astype(np.float64))
    image = np.empty((n, n, _TERMS), dtype=np.float64)
    image[..., 0], image[..., 1] = kept, 1.0
    image[..., 2], image[..., 3] = gradients
    image[..., 4] = wider[2:, 1:-1] + wider[:-2, 1:-1] + wider[1:-1, 2:] + wider[1:-1, :-2] - 4 * wider[1:-1, 1:-1]
    # (tiles, pixels, terms) and (tiles, pixels): one least-squares problem per tile, batched.
    terms = image.reshape(k, tile, k, tile, _TERMS).swapaxes(1, 2).reshape(k * k, tile * tile, _TERMS)
    values = tiles(query.astype(np.float64), tile).reshape(k * k, -1)
    weighted = terms
    for second in (False, True):
        normal = np.matmul(weighted.transpose(0, 2, 1), terms)
        # A ridge in proportion to each term's own scale keeps a flat tile's equations solvable.
        normal += _RIDGE * (normal * np.eye(_TERMS) + 1e-3)
        moments = np.matmul(weighted.transpose(0, 2, 1), values[..., None])
        solved = np.linalg.solve(normal, moments)
        residue = values - np.matmul(terms, solved)[..., 0]
        if not second:
            miss = np.abs(residue)
            typical = odd_medians(miss) * 1.5 + 1.0  # (the upper middle value of an even count)
            weighted = terms * (miss < MARK_REFIT * typical)[..., None]
    return residue.reshape(k, k, tile, tile).swapaxes(1, 2).reshape(query.shape)


def _smoothed(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` px over the first two axes (separable, edges repeated)."""
    radius = max(1, int(3 * sigma))
    weights = exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    n, m = values.shape[:2]
    wide = np.pad(values, [(radius, radius)] * 2 + [(0, 0)] * (values.ndim - 2), mode="edge")
    rows = sum(weight * wide[i : i + n, :] for i, weight in enumerate(weights))
    return np.asarray(sum(weight * rows[:, i : i + m] for i, weight in enumerate(weights)))


def _gradients(kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept picture's gradients across and down (central differences, edges repeated)."""
    wider = padded(kept)
    return (wider[1:-1, 2:] - wider[1:-1, :-2]) / 2, (wider[2:, 1:-1] - wider[:-2, 1:-1]) / 2


def _eroded(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels whose whole (2 radius + 1) square lies in `mask`, beyond the picture counting as
    outside, so the patch's own border is an edge too. (A summed-area table: one pass whatever
    the radius.)"""
    wide = np.pad(mask.astype(np.int32), radius)
    table = np.zeros((wide.shape[0] + 1, wide.shape[1] + 1), dtype=np.int32)
    table[1:, 1:] = wide.cumsum(axis=0).cumsum(axis=1)
    k = 2 * radius + 1
    n, m = mask.shape
    window = table[k:k + n, k:k + m] - table[:n, k:k + m] - table[k:k + n, :m] + table[:n, :m]  # fmt: skip
    return window == k * k
