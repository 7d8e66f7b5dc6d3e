"""Distance -> match percentage and verdict.

The verdict comes from named thresholds, never from rank: the nearest image of a catalog is
always "closest", but only a small distance makes it a duplicate.
"""

from __future__ import annotations

from dupcheck.core.models import Verdict

VERDICT_RANK = {Verdict.DUPLICATE: 0, Verdict.SIMILAR: 1, Verdict.DIFFERENT: 2}


def match_percent(distance: int, bits: int) -> float:
    """`100 * (1 - d / bits)`, one decimal, as the API documents."""
    if bits <= 0 or not 0 <= distance <= bits:
        raise ValueError(f"distance {distance} out of range for {bits} bits")
    return round(100.0 * (1.0 - distance / bits), 1)


def verdict_for(distance: int, *, duplicate_max: int, similar_max: int) -> Verdict:
    if distance <= duplicate_max:
        return Verdict.DUPLICATE
    if distance <= similar_max:
        return Verdict.SIMILAR
    return Verdict.DIFFERENT
