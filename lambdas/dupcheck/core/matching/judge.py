"""A query's candidates judged: each one's verdict, match percentage and edits.

The index found the candidates by hash distance; here each becomes a `Judgement`:

1. the distance that counts is the closest half of any of the query's hashes (`_closest_halves`);
2. the first `policy.screened` candidates' stored views are read (views.py), and each gets its
   tier by distance (policy.py: `near` up to `close_distance`, `far` beyond);
3. a record made with a thumbnail beside it must also pass the look-alike check on it
   (photograph.py), which then lets a far candidate pass the wider `far_looked` tier too;
4. `verify` (alignment.py) aligns the `policy.verified` most alike and says what still differs;
5. the evidence becomes a verdict and a match percentage (verdicts.py), and a duplicate's or a
   similar match's edits are named (edits.py).

The baseline pipeline, which verifies nothing, judges by distance alone (`by_distance`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from dupcheck.core.matching.alignment import Evidence, Target, verify
from dupcheck.core.matching.edits import border_shares, name_edits
from dupcheck.core.matching.photograph import LookalikeCheck
from dupcheck.core.matching.policy import Policy
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.verdicts import Judgement, banded, is_similar, score, verdict_for, verdict_of
from dupcheck.core.matching.views import Probe, Views
from dupcheck.core.models import Fingerprint, HashRecord, Verdict

ThumbnailSource = Callable[[Sequence[str]], Mapping[str, bytes]]  # entity ids -> their thumbnails


class Judging(Protocol):
    """What `judge_candidates` reads of the pipeline it judges for (core/hashing.py's AlignedDualPHash)."""

    algo: str  # its own records keep a thumbnail: only they get the look-alike check
    distance_bits: int  # what a judged distance is out of
    policy: Policy

    def stored_views(self, records: Sequence[HashRecord]) -> list[Views | None]: ...


def judge_candidates(
    pipeline: Judging,
    query: Fingerprint,
    candidates: Sequence[tuple[HashRecord, int]],
    thumbnails: ThumbnailSource | None = None,
) -> list[Judgement]:
    """A judgement per (record, index distance), in the same order. `thumbnails` reads the
    thumbnails of the candidates the look-alike check looks at (by entity_id)."""
    policy = pipeline.policy
    closest = _closest_halves(query, [record for record, _ in candidates])
    stored = {
        i: views
        for i, views in enumerate(pipeline.stored_views([record for record, _ in candidates[: policy.screened]]))
        if views is not None
    }
    tiers = [policy.tier(distance) for _, distance in candidates]
    targets: list[Target] = list(tiers)
    if thumbnails is not None and isinstance(query.probe, Probe):
        # Records made with a thumbnail beside them pass only if it agrees too (asked by the
        # turning and the verdict alike, and only of candidates whose views pass).
        records = [record for record, _ in candidates]
        check = LookalikeCheck(query.probe, policy.lookalike, lambda i: _thumbnail(records[i], thumbnails))
        targets = [
            check.target(i, tier, policy.far_looked if tier is policy.far else None)
            if record.hash_algo == pipeline.algo
            else tier
            for i, (tier, record) in enumerate(zip(tiers, records, strict=True))
        ]
    evidence: dict[int, Evidence] = {}
    if stored and isinstance(query.probe, Probe):
        # Colour beyond the targets' verdicts reaches the caller only in a `similar` match's edits.
        found = verify(
            query.probe, list(stored.values()), [targets[i] for i in stored], policy.verified, colour_shown=is_similar
        )
        evidence = {i: e for i, e in zip(stored, found, strict=True) if e is not None}
    out = []
    for i, distance in enumerate(closest):
        seen = evidence.get(i)
        lined_up = seen is not None and tiers[i].passes(seen)  # before the look-alike check
        verdict = verdict_of(seen, seen is not None and targets[i].passes(seen), distance, lined_up)
        edits = None
        if seen is not None and verdict is not Verdict.DIFFERENT:
            assert isinstance(query.probe, Probe)  # evidence comes from it
            edits = name_edits(
                seen, stored[i], border_shares(query.probe.picture(), query.probe.box),
                same_picture=verdict is Verdict.DUPLICATE,
            )  # fmt: skip
        out.append(Judgement(distance, verdict, score(verdict, seen, distance, pipeline.distance_bits), edits))
    return out


def by_distance(
    candidates: Sequence[tuple[HashRecord, int]], *, duplicate_max: int, similar_max: int, bits: int
) -> list[Judgement]:
    """The baseline's judgements, on hash distance alone: the verdict by `verdict_for`, the
    score by how close the distance lies within its verdict's range (1 at its closest)."""
    ranges = {
        Verdict.DUPLICATE: (duplicate_max, -1),
        Verdict.SIMILAR: (similar_max, duplicate_max),
        Verdict.DIFFERENT: (bits, similar_max),
    }
    out = []
    for _, distance in candidates:
        verdict = verdict_for(distance, duplicate_max=duplicate_max, similar_max=similar_max)
        farthest, before = ranges[verdict]
        out.append(Judgement(distance, verdict, banded(verdict, (farthest + 1 - distance) / (farthest - before))))
    return out


def _closest_halves(query: Fingerprint, candidates: Sequence[HashRecord]) -> list[int]:
    """Per candidate, the bits (of 64) between it and the closest half of any query hash. The
    query's halves are cut once, not once per candidate (32 candidates x 4 hashes: 0.5 ms)."""
    mine = [q.parts(2) for q in query.search_hashes]
    out = []
    for candidate in candidates:
        stored = candidate.hash.parts(2)
        out.append(min(part - half for halves in mine for part, half in zip(stored, halves, strict=True)))
    return out


def _thumbnail(record: HashRecord, thumbnails: ThumbnailSource) -> Thumbnail | None:
    """The record's thumbnail, or None when there is none (or one made for another version of the
    record, left by a write that raced this one's)."""
    data = thumbnails([record.entity_id]).get(record.entity_id)
    thumbnail = Thumbnail.decode(data) if data else None
    return thumbnail if thumbnail is not None and thumbnail.hash == record.hash else None
