"""Verdicts and match percentages: what a match means, and how alike the two pictures are.

Three verdicts, each claiming only what was shown (docs/api.md, "Verdicts"):

* `duplicate`: the same photograph, edited or not: the same-photograph test found the catalog
  picture's fine detail in the query, in place, and one edit of the whole picture explains its
  colours (photograph.py); a record kept without its picture, on its views alone (judge.py);
* `similar`: the same photograph in another colour: its detail is the catalog picture's, but a
  region of it was recoloured (a colour variant a shop made from one photo). Only the test can
  show it, so nothing else is called similar;
* `different`: anything else, however alike: another photograph of the same product, another
  product shot the same way, a picture that merely hashes close.

`match_percent` is a score on one scale for every query, banded by verdict so that a list
ordered by it has every duplicate first: duplicates score 90-100 (100 where nothing differs),
similar pictures 60-89.9, different ones below 60. Within a band the score says how much of the
picture agrees once aligned (a duplicate: the share the same-photograph test finds explained,
then the views' `agreement`) or, for others, how alike they look (`likeness`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dupcheck.core.limits.policy import BANDS, HASH_WEIGHT, LAYOUT_BITS, TOP, VIEWS_IN_DUPLICATE
from dupcheck.core.matching.alignment import Evidence
from dupcheck.core.models import Edit, Marks, Verdict


@dataclass(frozen=True, slots=True)
class Judgement:
    """A candidate's verdict. `distance` is the hash distance, out of the pipeline's
    `distance_bits`; `score` the match percentage, unrounded (banded by verdict: higher is a
    better match, and orders a result); `edits` what the query changed, as far as verification
    shows it (None where nothing was lined up)."""

    distance: int
    verdict: Verdict
    score: float
    edits: tuple[Edit, ...] | None = None
    reverse: bool = False  # the edits turn the query into the catalog picture (it is the copy)
    judged: bool = True  # False: nothing lined the pair up (not among those aligned): no verdict to give
    # Whether what was added lies on the product (marks.on_product; None: nothing added, or
    # undecided), read only where a shop's `marks` asks (under_marks): a look the default never pays for.
    on_product: Callable[[], bool | None] | None = field(default=None, compare=False, repr=False)


def under_marks(judgement: Judgement, marks: Marks) -> Judgement:
    """The judgement as the shop's `marks` setting reads a mark on the product (core/models.py
    MARKS_RULES): where it makes another product, a duplicate whose mark lies on the product is
    `similar`, its mark named as another print, at the same place in the similar band. Where the
    pictures cannot tell (no plain backdrop says where the product ends), it stays a duplicate and
    its mark is named as either."""
    if marks.rule.mark_is_copy or judgement.verdict is not Verdict.DUPLICATE or judgement.on_product is None:
        return judgement
    lies_on_product = judgement.on_product()
    if lies_on_product is None:
        return replace(judgement, edits=renamed(judgement.edits, "marked"))
    if not lies_on_product:
        return judgement
    low, high = BANDS[Verdict.DUPLICATE]
    edits = renamed(judgement.edits, "printed")
    alike = (judgement.score - low) / (high - low)
    return replace(judgement, verdict=Verdict.SIMILAR, score=banded(Verdict.SIMILAR, alike), edits=edits)


def renamed(edits: tuple[Edit, ...] | None, name: str) -> tuple[Edit, ...] | None:
    """The edits with the mark added on top (`overlay`) named `name`, at the same place."""
    return None if edits is None else tuple(replace(e, name=name) if e.name == "overlay" else e for e in edits)


def agreement(evidence: Evidence) -> float:
    """How much of two pictures that are the same agrees, 0-1: the aligned correlation, times
    the share of low frequencies that kept their sign, times the share of pixels that do not
    differ (in luma or colour) once aligned. 1 for a copy that changed nothing."""
    structure = max(0.0, min(1.0, evidence.similarity)) * (1.0 - evidence.layout_off / LAYOUT_BITS)
    return structure * (1.0 - min(1.0, evidence.luma_off + evidence.colour_off))


def likeness(evidence: Evidence | None, distance: int, bits: int) -> float:
    """How alike two pictures that are not the same are, 0-1: the aligned correlation (0 when
    nothing was verified) and, at half its weight, how close the hashes are (1 at distance 0, 0
    at half the bits). Together they put the picture a query was made from first more often than
    either alone (docs/lab/evaluation.md)."""
    correlation = 0.0 if evidence is None else max(0.0, min(1.0, evidence.similarity))
    hashes = max(0.0, 1.0 - 2.0 * distance / bits)
    return (correlation + HASH_WEIGHT * hashes) / (1.0 + HASH_WEIGHT)


def score(
    verdict: Verdict, evidence: Evidence | None, distance: int, bits: int, *, identical: bool = False,
    differing: float | None = None,
) -> float:  # fmt: skip
    """The match percentage, unrounded: the verdict's band, and within it, for a duplicate (1 for
    `identical`: the query's working copy is the record's, pixel for pixel), the share of the
    subject that one edit of the whole picture explains (`differing`: the test's share it leaves
    unexplained, a mark on either picture), the views' agreement counting VIEWS_IN_DUPLICATE of
    itself; where the test compared no colours (None), the agreement alone; 100 only where
    nothing differs. Any other picture: its likeness."""
    if verdict is Verdict.DUPLICATE and identical:
        return banded(verdict, 1.0)
    if verdict is Verdict.DUPLICATE and evidence is not None:
        agreed = agreement(evidence)
        if differing is not None:
            agreed = (1.0 - min(1.0, differing)) * (1.0 - VIEWS_IN_DUPLICATE * (1.0 - agreed))
        # 100 is kept for a copy in which nothing differs: any other stays TOP below it.
        low, high = BANDS[verdict]
        return high if agreed >= 1.0 else low + (high - TOP - low) * max(0.0, agreed)
    return banded(verdict, likeness(evidence, distance, bits))


def banded(verdict: Verdict, alike: float) -> float:
    """`alike` (0-1) placed in the verdict's band."""
    low, high = BANDS[verdict]
    top = high if verdict is Verdict.DUPLICATE else high - TOP
    return low + (top - low) * max(0.0, min(1.0, alike))


def match_percent(value: float) -> float:
    """A score as the API shows it: one decimal (rounding keeps the order: never up a band)."""
    return round(value, 1)


def verdict_for(distance: int, *, duplicate_max: int, similar_max: int) -> Verdict:
    """The baseline's verdict, on hash distance alone."""
    if distance <= duplicate_max:
        return Verdict.DUPLICATE
    if distance <= similar_max:
        return Verdict.SIMILAR
    return Verdict.DIFFERENT
