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

from dupcheck.core.limits.policy import LUMA_TOLERANCE, PASTED_ALONE, PASTED_BLOCK, PASTED_ROUNDS, PASTED_STRIP
from dupcheck.core.matching.alignment import Evidence
from dupcheck.core.pictures.arrays import centre_weight, padded, regions, shifts


def outside_block(evidence: Evidence) -> Evidence | None:
    """`evidence` measured again without the block its differing pixels form, when they form
    one: the bounding box of their largest group (and a pixel around it), a strip (PASTED_STRIP
    across) of at most PASTED_BLOCK of the view, holding PASTED_ALONE of them. Its similarity
    and luma off are the rest's, after the rest's own gain and offset; None where there is no
    such block."""
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
    largest = regions(off)[0]
    (top, left), (bottom, right) = largest.min(axis=0), largest.max(axis=0)
    if min(bottom - top, right - left) + 1 > PASTED_STRIP * off.shape[0]:
        return None  # as deep as it is wide: a region of another subject, not a band or a sticker
    block = np.zeros(off.shape, dtype=bool)
    block[max(0, top - 1) : bottom + 2, max(0, left - 1) : right + 2] = True
    if block.mean() > PASTED_BLOCK or off[block].sum() < PASTED_ALONE * off.sum():
        return None
    rest = ~block
    mine_c, theirs_c = mine[rest] - mine[rest].mean(), theirs[rest] - theirs[rest].mean()
    norms = float(np.sqrt((mine_c * mine_c).sum() * (theirs_c * theirs_c).sum()))
    similarity = float((mine_c * theirs_c).sum()) / max(norms, 1e-9)
    weight = centre_weight(off.shape[0])
    luma_off = float((weight * (_differs(mine, theirs, around, rest) & rest)).sum() / weight[rest].sum())
    return Evidence(similarity, luma_off, evidence.colour_off, evidence.layout_off, evidence.colour_seen,
                    evidence.colour_missing, alignment)  # fmt: skip


def _differs(mine: np.ndarray, theirs: np.ndarray, around: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """The pixels where `mine` differs from `theirs` by over LUMA_TOLERANCE, after the gain and
    offset fitted over `fitted`, within a pixel's shift (`around`: theirs's nine shifts; an edge
    resampled is not a difference)."""
    x, y = theirs[fitted], mine[fitted]
    spread = float(((x - x.mean()) ** 2).sum())
    gain = float(((x - x.mean()) * (y - y.mean())).sum()) / max(spread, 1e-9)
    return np.abs(mine - (gain * (around - x.mean()) + y.mean())).min(axis=0) > LUMA_TOLERANCE
