"""Views that differ in one pasted block: a caption band, a sticker or a badge over a copy.

A shop's band across the picture covers a tenth of it or more, so the aligned views differ
there past the share a look needs (policy.looked_near), and its mass pulls the views' one luma
fit off everywhere else too. A copy's views then agree wherever the block is not: what
`outside_block` measures, with a fit the block cannot pull (the pixels it misses most left out,
round after round), the block left out and the rest compared on its own. Another photograph in
the same pose differs all over, not in one block, so this lets through what only the
same-photograph test can tell, and that test (photograph.py) decides. Where the pictures hold
no detail for it (a flat cover), a block that runs across the whole picture from edge to edge
is an overlay by where it lies: no print or title crosses the picture's edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dupcheck.core.limits.policy import (
    LUMA_TOLERANCE,
    PASTED_ALONE,
    PASTED_BLOCK,
    PASTED_GAP,
    PASTED_ROUNDS,
    PASTED_STRIP,
    WHOLE_WINDOW,
)
from dupcheck.core.matching.alignment import Alignment, Evidence
from dupcheck.core.pictures.arrays import centre_weight, neighbourhood, padded, regions, shifts


@dataclass(frozen=True, slots=True)
class Pasted:
    """Views that differ in one pasted block: `rest`, the evidence measured without it;
    `across`, whether the block runs across the whole picture, edge to edge (`_across`): a
    caption band, an overlay wherever it lies (docs/architecture.md, "Request path");
    `on_query`, whether the query holds it (else the catalog picture does)."""

    rest: Evidence
    across: bool
    on_query: bool


def outside_block(evidence: Evidence) -> Pasted | None:
    """`evidence` measured again without the block its differing pixels form, when they form
    one (`_block`): their largest group's, or else its pieces' (`_pieces`), on the query, or,
    lined up whole to whole, on the catalog picture (`_left_out`). Its similarity and luma off
    are the rest's, after the rest's own gain and offset, and so is its colour off; None where
    there is no such block."""
    alignment = evidence.alignment
    if alignment is None:
        return None
    # In float64: sums over a few hundred pixels, the same last digits on every CPU's kernels.
    mine, theirs = alignment.mine.astype(np.float64), alignment.theirs.astype(np.float64)
    window = (alignment.rows[1], alignment.cols[1])
    on_query = True
    found = _left_out(mine, theirs, window)
    upright_whole = not (alignment.candidate_trimmed or alignment.query_trimmed or alignment.angle)
    if found is None and upright_whole and min(window) >= WHOLE_WINDOW:
        # On the catalog picture only whole to whole (`judge._Look._whole_to_whole`).
        on_query, found = False, _left_out(theirs, mine, window)
    if found is None:
        return None
    block, rest_off, differing = found
    rest = ~block
    mine_c, theirs_c = mine[rest] - mine[rest].mean(), theirs[rest] - theirs[rest].mean()
    norms = float(np.sqrt((mine_c * mine_c).sum() * (theirs_c * theirs_c).sum()))
    similarity = float((mine_c * theirs_c).sum()) / max(norms, 1e-9)
    weight = centre_weight(block.shape[0])
    luma_off = float((weight * (rest_off & rest)).sum() / weight[rest].sum())
    colour_off = float((weight * (alignment.colour_off & rest)).sum() / weight[rest].sum())
    rest_evidence = Evidence(similarity, luma_off, colour_off, evidence.layout_off, evidence.colour_seen,
                             evidence.colour_missing, alignment)  # fmt: skip
    return Pasted(rest_evidence, _across(block, differing & block, alignment, on_query=on_query), on_query)


def _left_out(
    held: np.ndarray, other: np.ndarray, window: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The block where `held` differs from `other` fitted to it (its pixels the fit leaves out
    most, round after round), as a mask, the pixels that still differ once the fit leaves the
    block out, and those that differed before; None where there is none. Fitted from `other`
    to `held`: a block only `other` holds (a band on the catalog's copy) draws that fit's gain
    towards none, where its own pixels predict nothing, and is found the other way round."""
    around = np.stack(list(shifts(padded(other))))  # the nine one-pixel shifts, fitted alike
    fitted = np.ones(held.shape, dtype=bool)
    for _ in range(PASTED_ROUNDS):
        off = _differs(held, other, around, fitted)
        if off.all():
            return None
        fitted = ~off
    if not off.any():
        return None
    block = _block(off, regions(off)[0])
    if block is None:
        pieces = _pieces(off, window)
        block = None if pieces is None else _block(off, pieces)
    if block is None:
        return None
    return block, _differs(held, other, around, ~block), off


def _across(block: np.ndarray, differing: np.ndarray, alignment: Alignment, *, on_query: bool) -> bool:
    """Whether `block` (a mask of the view, a pixel round what differs) crosses the view from edge
    to edge along its longer side with the picture on both sides of what differs in it
    (`differing`; not a strip along an edge: padding), the window whole that way, on a view of
    the whole picture that holds it: the query's reaching the picture's edges there, or the
    catalog picture's whole view."""
    top, bottom, left, right = alignment.query_box
    rows, cols = np.flatnonzero(block.any(axis=1)), np.flatnonzero(block.any(axis=0))
    horizontal = cols[-1] - cols[0] >= rows[-1] - rows[0]
    ends = (cols[0], cols[-1]) if horizontal else (rows[0], rows[-1])
    sides = np.flatnonzero(differing.any(axis=1 if horizontal else 0))  # across its short side
    edges, window = ((left, right), alignment.cols) if horizontal else ((top, bottom), alignment.rows)
    last = block.shape[0] - 1
    whole = edges[0] <= 1 - WHOLE_WINDOW and edges[1] >= WHOLE_WINDOW if on_query else not alignment.candidate_trimmed
    inside = sides[0] > 0 and sides[-1] < last
    return window[1] >= WHOLE_WINDOW and ends == (0, last) and inside and whole


def _block(off: np.ndarray, group: np.ndarray) -> np.ndarray | None:
    """The bounding box of `group` (its (row, column) pixels) and a pixel around it, as a mask,
    when it is a pasted block's: a strip (PASTED_STRIP across) of at most PASTED_BLOCK of the
    view, holding PASTED_ALONE of the pixels that differ (`off`)."""
    (top, left), (bottom, right) = group.min(axis=0), group.max(axis=0)
    if min(bottom - top, right - left) + 1 > PASTED_STRIP * off.shape[0]:
        return None  # as deep as it is wide: a region of another subject, not a band or a sticker
    block = np.zeros(off.shape, dtype=bool)
    block[max(0, top - 1) : bottom + 2, max(0, left - 1) : right + 2] = True
    if block.mean() > PASTED_BLOCK or off[block].sum() < PASTED_ALONE * off.sum():
        return None
    return block


def _pieces(off: np.ndarray, window: tuple[float, float]) -> np.ndarray | None:
    """The differing pixels of a block laid over what it partly matches (a band over a flat
    cover matches the cover here and there, a see-through band or sticker the print it
    crosses): the group of pieces up to 2 PASTED_GAP px apart that holds the most of them, for
    `_block` to judge as it judges one region, where the views line up whole along it
    (`window`: the share of the candidate's view lined up down and across). A crop lined up
    with a part differs in the strip it cut: not a block. None where there is no such group,
    or no strip of rows or columns as narrow as a block's holds PASTED_ALONE of the pixels
    (`_block` would refuse any group)."""
    widest = int(PASTED_STRIP * off.shape[0]) + 2  # a block's strip and the pixel around it
    total = int(off.sum())
    if all(_most_in_a_strip(counts, widest) < PASTED_ALONE * total for counts in (off.sum(axis=1), off.sum(axis=0))):
        return None
    joined = off
    for _ in range(PASTED_GAP):
        joined = neighbourhood(joined, np.maximum, fill=False)
    group = max(regions(joined), key=lambda found: int(off[found[:, 0], found[:, 1]].sum()))
    group = group[off[group[:, 0], group[:, 1]]]
    (top, left), (bottom, right) = group.min(axis=0), group.max(axis=0)
    across = right - left >= bottom - top
    return group if window[1 if across else 0] >= WHOLE_WINDOW else None


def _most_in_a_strip(counts: np.ndarray, width: int) -> int:
    """The most of `counts` (per row or per column) that `width` consecutive ones hold."""
    running = np.concatenate([[0], np.cumsum(counts)])
    return int((running[width:] - running[:-width]).max()) if len(counts) > width else int(running[-1])


def _differs(mine: np.ndarray, theirs: np.ndarray, around: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """The pixels where `mine` differs from `theirs` by over LUMA_TOLERANCE, after the gain and
    offset fitted over `fitted`, within a pixel's shift (`around`: theirs's nine shifts; an edge
    resampled is not a difference)."""
    x, y = theirs[fitted], mine[fitted]
    spread = float(((x - x.mean()) ** 2).sum())
    gain = float(((x - x.mean()) * (y - y.mean())).sum()) / max(spread, 1e-9)
    return np.abs(mine - (gain * (around - x.mean()) + y.mean())).min(axis=0) > LUMA_TOLERANCE
