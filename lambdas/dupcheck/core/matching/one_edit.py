"""Does one edit of the whole picture explain its colours? If not, the product was recoloured.

A copy's tone and colour edits act on the whole picture alike: brightness and contrast move every
pixel's luma along one line, saturation and grayscale scale every pixel's tint (its offset from
the grey of its own luma) by one factor, and a chain of them is again such an edit, clipped at
black and white. A shop that makes its red hoodie's photo from the black one's changes the
hoodie and leaves the skin, the trousers and the background as they were: no one edit of the
whole picture explains both. What is left unexplained is either something added on top (a
badge, text: it replaces the photograph's detail and brings an outline of its own) or a region
of the photograph in another colour (its outline is the photograph's, and its detail too unless
the part was made again: another render of one template).

`unexplained(query, kept, inside, query_detail, kept_detail)` measures the share of the
photographed subject in recoloured regions, and in added ones, at policy.COLOUR_SIDE px (JPEG
keeps colour at half resolution, and a region, not a pixel, is what a recolour is). The subject
is the overlap less a plain studio backdrop: a recolour changes the product, and a backdrop is
the same in every shot taken against it, so a zip or a cap's crown recoloured is a small share
of a picture that is mostly white, but not of the product:

1. the edit is fitted to the pair: the luma line through matching quantiles (a tone edit keeps
   every pixel's rank, so no alignment is needed), then the line and the tint factor together by
   least squares over the channels the edit keeps clear of a clip, the outliers left out, then
   the tint factor as the median ratio of the strongly tinted channels (a recoloured product is
   the minority its median leaves out);
2. each pixel's luma and tint are compared with the edit's prediction (clipped pixel by pixel,
   then averaged per cell, as an edit clips), a pixel of slack for the alignment; either picture
   may be the edited one, so each is predicted from the other and the direction that explains
   more counts. A clip excuses only what it reaches: where the edit has to clip a cell that the
   other picture shows unclipped (a garment's edge blending into a white backdrop, read as a
   brightening that whitened the backdrop), even a thin line of cells is unexplained;
3. the solid regions left over are told apart: the photograph's own detail inside (the
   band-pass the same-photograph test correlates) lined up means recoloured. Otherwise (detail
   of the query's own, or none that can say: plain in both, or flatter in the query, a plain
   badge, a dark part made darker) the outline tells: something added on top brings an outline
   of its own, on whichever picture it lies (the catalog's copy asked about with its original
   shows it the other way round), a part in another colour keeps the photograph's in both (its
   edges in the same places and directions), whatever its detail, as another render of one
   template has; a region of fewer than policy.MIN_JUDGED pixels (a thumbnail's) counts as
   neither.

A faint recolour (a part's tint halved or deepened) can stay within step 2's slack. Where the
query's encoding kept its colours (`faint`: a fine JPEG, a kept picture), a region whose tint
moved by a share of itself is also unexplained when its tint ratio to the kept picture's is not
the skin's: one edit scales every tint alike, a face's with the product's (`_faint_regions`).
Where the product is most of what is tinted, the fitted edit follows it when it was recoloured;
the tints are then measured against the skin's factor instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from dupcheck.core.limits.policy import (
    ADDED_DETAIL,
    BACKDROP,
    BACKDROP_RING,
    CLIP_SLACK,
    CLIPPED,
    COLOUR_SIDE,
    DETAIL,
    DETAIL_TILE,
    EDGE,
    FAINT_FLOOR,
    FAINT_RATIO,
    FAINT_SIGMAS,
    FAINT_TINT,
    FAINT_TURN,
    MIN_FITTED,
    MIN_JUDGED,
    MIN_REGION,
    MIN_SUBJECT,
    NEW_OUTLINE,
    OUTLINE_TURN,
    RECOLOURED,
    SHARED_TILE,
    SOLID,
    STRONG_TINT,
    TINT_SLACK,
    TONE_QUANTILES,
    TONE_SLACK,
)
from dupcheck.core.pictures.arrays import neighbourhood, neighbours, padded, regions, shifts, tiles
from dupcheck.core.pictures.pixels import luma, skin_coloured

_QUANTILES = np.linspace(*TONE_QUANTILES)
Edges = tuple[np.ndarray, np.ndarray]  # (strength, direction) of a picture's colour gradient: `_edges`


@dataclass(frozen=True, slots=True)
class Unexplained:
    """What one edit of the whole picture leaves unexplained, in cells of about COLOUR_SIDE:
    `recoloured` and `added`, the shares of the subject (the overlap less a plain backdrop) in
    regions of the photograph in another colour and in regions added on top; `added_cells`,
    where those are (what edits.py names); `lined_up`, the share of `recoloured` in regions whose
    own detail lines up with the photograph's (the rest were told by their outline);
    `saturation`, the one edit's tint factor over its luma gain (1: the colours as a tone edit
    leaves them, 0: grey; None: too little colour to read it), and `tone`, its luma line (gain,
    offset; None: too few cells to fit it): what edits.py names; `on_kept`, the share of `added`
    in regions whose outline only the catalog picture has: a mark on it, not on the query;
    `differing`, the share of the subject in every cell one edit leaves unexplained, whatever it
    is and however small its region (a mark the views blur, another record's print beside it)."""

    recoloured: float
    added: float
    added_cells: np.ndarray
    lined_up: float = 0.0
    saturation: float | None = None
    tone: tuple[float, float] | None = None
    on_kept: float = 0.0
    differing: float = 0.0


def unexplained(
    query: np.ndarray,
    kept: np.ndarray,
    inside: np.ndarray,
    query_detail: np.ndarray,
    kept_detail: np.ndarray,
    faint: bool = False,
    cell: int = 1,
) -> Unexplained:
    """What one edit of the whole picture leaves unexplained of the pair. `query`, `kept`:
    (3, n, n) sRGB levels, aligned, `inside` where they overlap; the details: their band-pass
    luma at n x n. Compared in cells of about COLOUR_SIDE to a side; a channel clipped in any
    pixel of a cell has lost its level there (a brightened highlight's), and is left out.
    `faint`: the query's encoding kept its colours, so a faint recolour can show. `cell`: the
    least cell side, in compared pixels (where the query holds few pixels of its own per compared
    one: a thumbnail's colours are true only over a few of its JPEG's colour samples)."""
    n = query.shape[-1]
    k = max(1, round(n / COLOUR_SIDE), cell)
    usable = _pooled_all(inside, k)
    nothing = Unexplained(0.0, 0.0, np.zeros(usable.shape, bool))
    if usable.sum() < MIN_FITTED:
        return nothing
    mine, theirs = _pooled(query, k), _pooled(kept, k)
    lost = _pooled_any((query <= 2) | (query >= 253) | (kept <= 2) | (kept >= 253), k)
    usable = usable[: mine.shape[-1], : mine.shape[-1]]
    # The subject's cells, no fewer than MIN_SUBJECT of the overlap's: a share of a few cells is noise.
    total = max(float((usable & ~_backdrop(theirs, usable)).sum()), MIN_SUBJECT * float(usable.sum()))
    # The query an edit of the catalog picture, then (only if that leaves something) the other way;
    # the way that leaves less counts, its faint regions included. A faint recolour is looked for
    # only in a way whose plain test leaves under a recolour's share (RECOLOURED) of the subject.
    faint_below = RECOLOURED * total if faint else None
    fit = _fitted(mine, theirs, usable, lost)
    saturation = fit.factor / max(fit.gain, 1e-6) if fit.from_colour else None
    off = _off_one_edit(mine, theirs, usable, lost, kept, k, faint_below, fit)
    if off.any():
        other = _off_one_edit(theirs, mine, usable, lost, query, k, faint_below)
        off = min(off, other, key=lambda o: int(o.sum()))
    if not off.any():
        return replace(nothing, saturation=saturation, tone=(fit.gain, fit.offset))
    differing = min(float(off.sum()) / total, 1.0)
    query_edges, kept_edges = _edges(mine), _edges(theirs)
    found = {True: 0.0, False: 0.0}
    lined_up = on_kept = 0.0
    added = np.zeros(off.shape, bool)
    for coordinates in regions(off):
        if len(coordinates) / total < MIN_REGION:
            break  # (largest first)
        region = np.zeros(off.shape, bool)
        region[coordinates[:, 0], coordinates[:, 1]] = True
        pixels = _at_detail(region, k, inside)
        if pixels.sum() < MIN_JUDGED:
            continue  # too few pixels to say what is inside: no evidence either way
        share = float(region.sum()) / total
        shared = _detail_shared(pixels, query_detail, kept_detail)
        if shared:
            lined_up += share
        if not shared:  # detail of the query's own, or none that says: the outline tells
            by_query, by_kept = _outlines_brought(region, usable, query_edges, kept_edges)
            shared = not (by_query or by_kept)
            if by_kept and not by_query:
                on_kept += share
        found[shared] += share
        if not shared:
            added |= region
    # (A region may reach beyond the subject: past the backdrop's edge, a shadow.)
    return Unexplained(
        min(found[True], 1.0), min(found[False], 1.0), added, min(lined_up, 1.0), saturation, (fit.gain, fit.offset),
        min(on_kept, 1.0), differing,
    )  # fmt: skip


class Fit(NamedTuple):
    """One edit of the whole picture: each channel c of luma L becomes gain L + offset +
    factor (c - L); `from_colour`: the factor was read from strongly tinted channels (else the
    picture holds too little colour to say)."""

    gain: float
    offset: float
    factor: float
    from_colour: bool


def _fitted(mine: np.ndarray, theirs: np.ndarray, usable: np.ndarray, lost: np.ndarray) -> Fit:
    """The one edit of the whole picture that takes `theirs` (3, n, n cells) to `mine`, fitted
    on the `usable` cells by least squares over the channels it keeps clear of a clip (`lost`
    ones left out), the outliers left out; then the tint factor as the median ratio of the
    strongly tinted channels (a recoloured product is the minority it leaves out), where there
    are MIN_FITTED of them."""
    their_luma = luma(np.moveaxis(theirs, 0, -1), np.float64)
    my_luma = luma(np.moveaxis(mine, 0, -1), np.float64)
    tint = theirs - their_luma[None]
    levels = np.broadcast_to(their_luma, theirs.shape)
    gain, offset = quantile_line(my_luma, their_luma, usable)
    factor = 1.0
    clear = usable[None] & ~lost & (theirs > CLIPPED) & (theirs < 255 - CLIPPED)
    for _ in range(3):
        guess = gain * levels + offset + factor * tint
        chosen = clear & (guess > CLIPPED) & (guess < 255 - CLIPPED) & (np.abs(mine - guess) < 2 * TONE_SLACK)
        if chosen.sum() < MIN_FITTED:
            break
        design = np.stack([levels[chosen], np.ones(int(chosen.sum())), tint[chosen]], axis=1)
        (gain, offset, factor), *_ = np.linalg.lstsq(design, mine[chosen], rcond=None)
    their_edit = gain * levels + offset
    strong = clear & (np.abs(tint) >= STRONG_TINT) & (mine > CLIPPED) & (mine < 255 - CLIPPED)
    from_colour = bool(strong.sum() >= MIN_FITTED)
    if from_colour:
        factor = float(np.median((mine - their_edit)[strong] / tint[strong]))
    return Fit(float(gain), float(offset), min(max(float(factor), 0.0), 2.5), from_colour)


def _off_one_edit(
    mine: np.ndarray,
    theirs: np.ndarray,
    usable: np.ndarray,
    lost: np.ndarray,
    their_pixels: np.ndarray,
    k: int,
    faint_below: float | None = None,
    fit: Fit | None = None,
) -> np.ndarray:
    """The cells `mine` leaves unexplained as one edit of the whole of `theirs`
    (`_unexplained_cells`: solid regions, and where that edit needs a clip the picture lacks):
    the edit (`_fitted`, or `fit` where made already) applied to `their_pixels` (`theirs` before
    its k x k cells were averaged), clipped and averaged; luma off by more than TONE_SLACK or
    tint by more than TINT_SLACK (CLIP_SLACK more where the prediction clips or a channel is
    `lost` to a clip), a pixel of shift allowed. `faint_below` (cells; None: no faint test): when
    it leaves fewer, also the regions recoloured faintly (`_faint_regions`)."""
    gain, offset, factor, _ = _fitted(mine, theirs, usable, lost) if fit is None else fit
    my_luma = luma(np.moveaxis(mine, 0, -1), np.float64)
    their_luma = luma(np.moveaxis(theirs, 0, -1), np.float64)
    tint = theirs - their_luma[None]
    clipped = (gain * their_luma + offset)[None] + factor * tint
    clipped = (clipped < 0) | (clipped > 255)
    allowance = np.where(clipped | lost, CLIP_SLACK, 0.0).max(axis=0)
    # (float32: a 256 px patch's pixels, a tenth of a level is all a comparison to 10 can use.)
    pixels = their_pixels.astype(np.float32)
    pixel_luma = luma(np.moveaxis(pixels, 0, -1), np.float32)
    shown_luma, shown_tint = _shown(pixels, pixel_luma, gain, offset, factor, k)
    my_tint = mine - my_luma[None]
    off, moved = _compared(
        my_luma, my_tint, shown_luma, shown_tint, None if faint_below is None else shown_tint, allowance
    )
    plain = _unexplained_cells(off, np.asarray(clipped.any(axis=0)), usable)
    if faint_below is None or plain.sum() >= faint_below:
        return plain  # (a pair whose colours one edit plainly misses needs no faint search)
    unclipped = usable & (allowance == 0)  # the cells where no clip changes a tint's ratio
    skin, ratio = _skin(my_tint, tint, theirs, unclipped)
    # Where the product is most of what is tinted, the fitted edit follows a recoloured product,
    # and the skin is what it leaves out: when the skin's own tint factor (read in its solid
    # regions: a face, an arm; a line of cells along the overlap's edge is where a pixel of shift
    # moves a tint most) is as far from the fitted one as a faint recolour's (FAINT_RATIO), the
    # tints are measured against the skin's.
    solid_skin = _solid(skin)
    if solid_skin.sum() >= MIN_REGION * usable.sum():
        skin_factor = float(np.median(ratio[solid_skin]))
        if abs(skin_factor - factor) > FAINT_RATIO * abs(skin_factor):
            _, skin_tint = _shown(pixels, pixel_luma, gain, offset, skin_factor, k)
            _, moved = _compared(my_luma, my_tint, shown_luma, shown_tint, skin_tint, allowance)
    candidates = _solid(moved & usable & ~off)
    if not candidates.any():
        return plain
    faint_found = _faint_regions(candidates, skin, ratio, usable, _hue_turn(my_tint, tint, unclipped))
    if not faint_found.any():
        return plain
    return _unexplained_cells(off | faint_found, np.asarray(clipped.any(axis=0)), usable)


def _compared(
    my_luma: np.ndarray,
    my_tint: np.ndarray,
    shown_luma: np.ndarray,
    shown_tint: np.ndarray,
    faint_tint: np.ndarray | None,
    allowance: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The cells off the edit's prediction (`shown_luma`, `shown_tint`) by more than TONE_SLACK
    or TINT_SLACK at every shift of a pixel (`allowance` more where a clip is); and those off,
    or whose tint moved from `faint_tint` by FAINT_TINT of itself and a level (all True when
    `faint_tint` is None)."""
    off = np.ones(my_luma.shape, bool)
    moved = np.ones(my_luma.shape, bool)
    reference = shown_tint if faint_tint is None else faint_tint
    for luma_at, tint_at, faint_at, slack_at in zip(
        shifts(padded(shown_luma)),
        shifts(padded(shown_tint)),
        shifts(padded(reference)),
        shifts(padded(allowance)),
        strict=True,
    ):
        luma_off = np.abs(my_luma - luma_at) - slack_at > TONE_SLACK
        tint_off = np.abs(my_tint - tint_at).max(axis=0) - slack_at > TINT_SLACK
        off &= luma_off | tint_off
        if faint_tint is not None:
            gap = np.abs(my_tint - faint_at).max(axis=0) - slack_at
            strength = np.maximum(np.abs(my_tint).max(axis=0), np.abs(faint_at).max(axis=0))
            moved &= luma_off | tint_off | (gap > FAINT_TINT * strength + FAINT_FLOOR)
    return off, moved


def _shown(
    pixels: np.ndarray, pixel_luma: np.ndarray, gain: float, offset: float, factor: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The edit (luma line `gain`, `offset`; tint `factor`) applied to `pixels` (float32, with
    their luma), clipped pixel by pixel and averaged in k x k cells: each cell's luma and tint."""
    each = np.float32(factor) * pixels + (np.float32(gain - factor) * pixel_luma + np.float32(offset))[None]
    shown = _pooled(np.clip(each, 0, 255, out=each), k)
    shown_luma = luma(np.moveaxis(shown, 0, -1), np.float64)
    return shown_luma, shown - shown_luma[None]


def _skin(
    my_tint: np.ndarray, tint: np.ndarray, theirs: np.ndarray, unclipped: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The tinted cells of skin colour (in the picture predicted from, `theirs`), and every
    cell's tint ratio to that picture's, NaN where untinted (`unclipped`: the usable cells where
    no clip changes a ratio). (Tinted in either picture: a part faded below STRONG_TINT in the
    one it is predicted from still says how far it was faded.)"""
    tinted = unclipped & (np.maximum(np.abs(tint), np.abs(my_tint)).max(axis=0) >= STRONG_TINT)
    ratio = (my_tint * tint).sum(axis=0) / np.maximum((tint * tint).sum(axis=0), 1e-9)
    return tinted & skin_coloured(theirs[0], theirs[1], theirs[2]), np.where(tinted, ratio, np.nan)


def _hue_turn(my_tint: np.ndarray, tint: np.ndarray, unclipped: np.ndarray) -> np.ndarray:
    """Each cell's tint turned from the kept picture's, in degrees; NaN where either is untinted."""
    mine_n, theirs_n = np.sqrt((my_tint * my_tint).sum(axis=0)), np.sqrt((tint * tint).sum(axis=0))
    both = unclipped & (np.abs(my_tint).max(axis=0) >= STRONG_TINT) & (np.abs(tint).max(axis=0) >= STRONG_TINT)
    cos = (my_tint * tint).sum(axis=0) / np.maximum(mine_n * theirs_n, 1e-9)
    return np.where(both, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), np.nan)


def _faint_regions(
    moved: np.ndarray, skin: np.ndarray, ratio: np.ndarray, usable: np.ndarray, turn: np.ndarray
) -> np.ndarray:
    """The regions of `moved` (solid) recoloured faintly: their tinted cells' tint `ratio` (NaN:
    untinted) to the kept picture's (the median) lies FAINT_RATIO from the `skin`'s, and
    FAINT_SIGMAS of the skin's own spread (a robust deviation); or their tint `turn`ed
    (the median, where both are tinted) by FAINT_TURN degrees. One edit scales every tint by
    one factor, skin's as the product's, and turns none."""
    found = np.zeros(moved.shape, bool)
    tinted = ~np.isnan(ratio)
    turned = ~np.isnan(turn)
    least = MIN_REGION * usable.sum()
    for coordinates in regions(moved):
        if len(coordinates) < least:
            break  # (largest first)
        region = np.zeros(moved.shape, bool)
        region[coordinates[:, 0], coordinates[:, 1]] = True
        if (turned & region).sum() >= least and float(np.median(turn[turned & region])) > FAINT_TURN:
            found |= region
            continue
        inside, reference = tinted & region, skin & ~region
        if inside.sum() < least or reference.sum() < least:
            continue
        skin_ratio = float(np.median(ratio[reference]))
        spread = 1.4826 * float(np.median(np.abs(ratio[reference] - skin_ratio)))  # a robust deviation
        apart = abs(float(np.median(ratio[inside])) - skin_ratio)
        if apart > max(FAINT_RATIO * abs(skin_ratio), FAINT_SIGMAS * spread):
            found |= region
    return found


def quantile_line(mine: np.ndarray, theirs: np.ndarray, usable: np.ndarray) -> tuple[float, float]:
    """mine = g theirs + o through matching quantiles of the two lumas, the median of the slopes
    between them (Theil-Sen), the quantiles near a clip left out; (1, 0) when too few are left."""
    # (Quantiles of a few thousand pixels say as much as of all of them, for a fraction of the sort.)
    step = max(1, int(np.sqrt(usable.size / 4096)))
    usable, theirs, mine = usable[::step, ::step], theirs[::step, ::step], mine[::step, ::step]
    keep = usable & (theirs > CLIPPED) & (theirs < 255 - CLIPPED)
    if keep.sum() < MIN_FITTED:
        return 1.0, 0.0
    x, y = np.percentile(theirs[keep], _QUANTILES), np.percentile(mine[keep], _QUANTILES)
    ok = (y > CLIPPED) & (y < 255 - CLIPPED)
    x, y = x[ok], y[ok]
    if len(x) < 4 or float(x.max() - x.min()) < 20.0:
        return 1.0, 0.0
    i, j = np.triu_indices(len(x), 1)
    apart = x[j] - x[i] > 4.0
    if not apart.any():
        return 1.0, 0.0
    gain = float(np.median((y[j] - y[i])[apart] / (x[j] - x[i])[apart]))
    return gain, float(np.median(y - gain * x))


def _at_detail(region: np.ndarray, k: int, inside: np.ndarray) -> np.ndarray:
    """A region of cells as the pixels it covers at the detail's resolution, within the overlap."""
    n = inside.shape[0]
    full = np.kron(region, np.ones((k, k), bool))
    return np.pad(full, ((0, n - full.shape[0]), (0, n - full.shape[1]))) & inside


def _detail_shared(pixels: np.ndarray, query_detail: np.ndarray, kept_detail: np.ndarray) -> bool | None:
    """Whether the photograph's detail lines up in these pixels: True recoloured, False replaced;
    None when the detail cannot say. A recolour changes a part's colour, not its texture: where
    the kept picture is plain and the query is not, something was printed on top. Where the
    kept picture has detail, judged as the same-photograph test judges a pair, by the median of
    tiles' correlations: a recolour changes the contrast of the part's edges with its neighbours
    (a zip against its jacket), which would outweigh the texture everywhere else in one
    correlation of the region. Detail that does not line up is a print's own only if the query
    has as much of it (in the median tile): a region it shows flatter brought none (a dark part
    made darker keeps too little of its grain above JPEG's noise, a plain badge has none), and
    cannot say."""
    if float(kept_detail[pixels].std()) <= DETAIL:
        return False if float(query_detail[pixels].std()) > ADDED_DETAIL * DETAIL else None
    tile = DETAIL_TILE if pixels.shape[0] >= 128 else DETAIL_TILE // 2
    correlations, energies = _tile_details(pixels, query_detail, kept_detail, tile)
    if correlations.size == 0:  # no tile mostly inside: the region's pixels as one
        correlations, energies = _tile_details(pixels, query_detail, kept_detail, pixels.shape[0], least=1)
    if correlations.size == 0:
        return False
    if float(np.median(correlations)) >= SHARED_TILE:
        return True
    return False if float(np.median(energies)) >= 1.0 else None


def _tile_details(
    pixels: np.ndarray, query: np.ndarray, kept: np.ndarray, tile: int, least: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """In each tile that holds at least `least` of the region's pixels (half a tile unless given)
    and detail in the kept picture: the two details' correlation over those pixels, and the
    query's detail energy there over the kept picture's."""
    cut = [tiles(a, tile).reshape(-1, tile * tile) for a in (pixels, query, kept)]
    weight, mine, theirs = cut[0].astype(np.float64), cut[1], cut[2]
    count = weight.sum(axis=1)
    held = count >= (tile * tile // 2 if least is None else least)
    weight, mine, theirs, count = weight[held], mine[held], theirs[held], count[held]
    mine = (mine - (mine * weight).sum(axis=1, keepdims=True) / count[:, None]) * weight
    theirs = (theirs - (theirs * weight).sum(axis=1, keepdims=True) / count[:, None]) * weight
    energy = (theirs * theirs).sum(axis=1)
    detailed = energy > DETAIL * DETAIL * count
    own = (mine * mine).sum(axis=1)
    products, norms = (mine * theirs).sum(axis=1), np.sqrt(energy * own)
    return (products / np.maximum(norms, 1e-9))[detailed], (own / np.maximum(energy, 1e-9))[detailed]


def _backdrop(rgb: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The cells of a plain studio backdrop: within BACKDROP levels (every channel) of the median
    colour of the overlap's outer ring and connected to it, when at least BACKDROP_RING of the
    ring has that colour (a scene's edge, or a crop into the product, has no one colour: none)."""
    ring = usable & ~neighbourhood(usable, np.logical_and, fill=False)
    none = np.zeros(usable.shape, bool)
    if ring.sum() < MIN_FITTED:
        return none
    colour = np.median(rgb[:, ring], axis=1)
    near = (np.abs(rgb - colour[:, None, None]).max(axis=0) <= BACKDROP) & usable
    if near[ring].mean() < BACKDROP_RING:
        return none
    backdrop = none.copy()
    for coordinates in regions(near):
        if ring[coordinates[:, 0], coordinates[:, 1]].any():
            backdrop[coordinates[:, 0], coordinates[:, 1]] = True
    return backdrop


def _unexplained_cells(off: np.ndarray, clipped: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The cells one edit leaves unexplained: solid regions, and any cell where the edit needs a
    clip the picture does not show (predicted per pixel, a clip leaves no line of misalignment)."""
    off = off & usable
    return _solid(off) | (off & clipped)


def _solid(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` with at least SOLID of their 3x3 neighbourhood in it: a region, not
    an edge's last pixel of misalignment."""
    return mask & (neighbours(mask) >= SOLID)


def _outlines_brought(
    region: np.ndarray, usable: np.ndarray, query_edges: Edges, kept_edges: Edges
) -> tuple[bool, bool]:
    """Whether the query, and whether the catalog picture, brought an outline of its own round a
    region: of its edges on the cells either side of the region's boundary, more than NEW_OUTLINE
    are not the other picture's, in the same direction (within OUTLINE_TURN degrees). Something
    added on top brings an outline of its own, which the photograph has there only by chance, and
    in a busy scene, with edges everywhere, rarely in the same direction; whichever picture holds
    it (a badge on the query, or on the catalog's copy asked about with its original). A part in
    another colour (a shop's recolour, another render of one template, a print filling a part)
    keeps the photograph's outline in both, whatever its detail: neither brought one. A picture
    without an edge round the region brought none."""
    band = ((region & _grown(~region)) | (_grown(region) & ~region)) & usable
    return not _edges_shared(band, query_edges, kept_edges), not _edges_shared(band, kept_edges, query_edges)


def _edges_shared(band: np.ndarray, own: Edges, other: Edges) -> bool:
    """Whether `own` edges within `band` are, at least 1 - NEW_OUTLINE of them, `other`'s too, in
    the same direction (none: nothing brought)."""
    (own_strength, own_angle), (other_strength, other_angle) = own, other
    outline = band & (own_strength > EDGE)
    if not outline.any():
        return True
    along = np.abs(np.cos(own_angle - other_angle)) >= np.cos(np.radians(OUTLINE_TURN))
    shared = outline & (other_strength > EDGE) & along
    return float(shared.sum()) >= (1.0 - NEW_OUTLINE) * float(outline.sum())


def _edges(rgb: np.ndarray) -> Edges:
    """The colour gradient at each pixel (central differences): its strength, levels per pixel
    (the structure tensor's largest eigenvalue over the three channels, a grey edge's luma step),
    and the direction it points across the edge (radians). Colour, not luma: a part recoloured at
    the luma of its neighbours keeps an edge of hue."""
    down, across = np.zeros_like(rgb), np.zeros_like(rgb)
    down[:, 1:-1] = (rgb[:, 2:] - rgb[:, :-2]) / 2
    across[:, :, 1:-1] = (rgb[:, :, 2:] - rgb[:, :, :-2]) / 2
    dd, aa, da = ((a * b).mean(axis=0) for a, b in ((down, down), (across, across), (down, across)))
    spread = np.hypot((dd - aa) / 2, da)
    return np.sqrt(np.maximum((dd + aa) / 2 + spread, 0.0)), 0.5 * np.arctan2(2 * da, dd - aa)


def _grown(mask: np.ndarray) -> np.ndarray:
    return neighbourhood(mask, np.logical_or, fill=False)


def _pooled(values: np.ndarray, k: int) -> np.ndarray:
    """k x k means over the last two axes (the side cut to a multiple of k). Below 8 a side,
    summed slice by slice (`_cells`), a row's k pixels and then the cell's k rows: numpy's `mean`
    adds them in that order too (the same bits) but three times slower; from 8 its sums go by
    pairs, and it is asked itself."""
    if k == 1:
        return values.astype(np.float64)
    if k >= 8:
        n = values.shape[-1] // k
        cut = values[..., : n * k, : n * k]
        return cut.reshape(*values.shape[:-2], n, k, n, k).mean(axis=(-3, -1), dtype=np.float64)
    return _cells(values, k, np.add, np.float64) / (k * k)


def _pooled_any(mask: np.ndarray, k: int) -> np.ndarray:
    """A pooled cell where any of the pixels it covers is (over the last two axes)."""
    return mask if k == 1 else _cells(mask, k, np.logical_or)


def _pooled_all(mask: np.ndarray, k: int) -> np.ndarray:
    """A pooled pixel set where all the pixels it covers are."""
    return mask if k == 1 else _cells(mask, k, np.logical_and)


def _cells(values: np.ndarray, k: int, combine: np.ufunc, dtype: type | None = None) -> np.ndarray:
    """Each k x k cell of the last two axes (the side cut to a multiple of k) combined by
    `combine` (in `dtype`, else the values' own), one strided slice after another: along a row
    first, then the cell's rows. numpy's reductions over a reshape take several times longer."""
    n = values.shape[-1] // k
    cut = values[..., : n * k, : n * k]
    rows = cut[..., 0::k].astype(dtype or values.dtype)
    for i in range(1, k):
        combine(rows, cut[..., i::k], out=rows)
    cells = rows[..., 0::k, :].copy()
    for i in range(1, k):
        combine(cells, rows[..., i::k, :], out=cells)
    return cells
