"""How a pipeline's candidates are judged, as the pipeline declares it (its `judging`).

A pipeline (core/fingerprint/hashing.py) only makes fingerprints; it names one of these, and judge.py's
`judge_candidates`, the matching engine's one entry point, judges its candidates that way:

* `ByDistance`: on hash distance alone (the baseline, PHash64);
* `Verified`: the candidates' stored views aligned with the query's and, where a record keeps
  its picture, the same-photograph test (the default, AlignedDualPHash).

Plain values: fingerprinting imports this module and nothing of judging itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dupcheck.core.limits.policy import Policy


@dataclass(frozen=True, slots=True)
class ByDistance:
    """Verdicts by hash distance: a duplicate within `duplicate_max` bits, similar within
    `similar_max`, out of `bits`."""

    duplicate_max: int
    similar_max: int
    bits: int


@dataclass(frozen=True, slots=True)
class Verified:
    """Verdicts by verification under `policy`. The record names say how a record's views are
    stored (`compact`: views_codec's form; `raw`: the older raw bytes) and which keep their
    picture beside them (`keeps`)."""

    policy: Policy
    bits: int  # what a judged distance (the closest half of any query hash) is out of
    compact: tuple[str, ...]
    raw: str
    keeps: frozenset[str]


Judging = ByDistance | Verified


class Judged(Protocol):
    """What the judge reads of a pipeline: how it declares its candidates judged."""

    @property
    def judging(self) -> Judging: ...
