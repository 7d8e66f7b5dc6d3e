"""Views that differ in one pasted block: a caption band, a sticker or a badge over a copy.

A shop's band across the picture covers a tenth of it or more, so the aligned views differ
there past the share a look needs (policy.looked_near), and its mass pulls the views' one luma
fit off everywhere else too. A copy's views then agree wherever the block is not: what
`outside_block` measures, with a fit the block cannot pull (the pixels it misses most left out,
round after round), the block left out and the rest compared on its own. Another photograph in
the same pose differs all over, not in one block, so this lets through what only the
same-photograph test can tell, and that test (photograph.py) decides.
"""

from __future__ import annotations

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
from dupcheck.core.matching.alignment import Evidence
from dupcheck.core.pictures.arrays import centre_weight, neighbourhood, padded, regions, shifts


def outside_block(evidence: Evidence) -> Evidence | None:
    """`evidence` measured again without the block its differing pixels form, when they form
    one (`_block`): their largest group's, or else its pieces' (`_pieces`). Its similarity and
    luma off are the rest's, after the rest's own gain and offset; None where there is no such
    block."""
    alignment = evidence.alignment
    if alignment is None:
        return None
    # In float64: sums over a few hundred pixels, the same last digits on every CPU's kernels.
    mine, theirs = alignment.mine.astype(np.float64), alignment.theirs.astype(np.float64)
    around = np.stack(list(shifts(padded(theirs))))  # the nine one-pixel shifts, fitted alike
    fitted = np.ones(mine.shape, dtype=bool)
    for _ in range(PASTED_ROUNDS):
        off = _differs(mine, theirs, around, fitted)
        if off.all():
            return None
        fitted = ~off
    if not off.any():
        return None
    block = _block(off, regions(off)[0])
    if block is None:
        pieces = _pieces(off, (alignment.rows[1], alignment.cols[1]))
        block = None if pieces is None else _block(off, pieces)
    if block is None:
        return None
    rest = ~block
    mine_c, theirs_c = mine[rest] - mine[rest].mean(), theirs[rest] - theirs[rest].mean()
    norms = float(np.sqrt((mine_c * mine_c).sum() * (theirs_c * theirs_c).sum()))
    similarity = float((mine_c * theirs_c).sum()) / max(norms, 1e-9)
    weight = centre_weight(off.shape[0])
    luma_off = float((weight * (_differs(mine, theirs, around, rest) & rest)).sum() / weight[rest].sum())
    return Evidence(similarity, luma_off, evidence.colour_off, evidence.layout_off, evidence.colour_seen,
                    evidence.colour_missing, alignment)  # fmt: skip


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
