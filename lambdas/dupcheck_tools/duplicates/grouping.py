"""From duplicate pairs to groups: each group is a record to keep and the records the service
calls the same picture as that record.

Pure functions of what verification found (pairs of work-file positions) and what the records
say of themselves (`Listing`): no store, no pipeline, so the rules are tested on their own.

Grouping rule (GROUP_RULE): every record of a group was called the same picture as the group's
kept record, directly (checked against it, either way). Groups grow from the closest pairs first
(fewest bits apart, then the highest match percentage); two groups join only when the record
kept of the two is a duplicate of every record of the other. A pair the service called the same
picture that does not meet the rule is not lost: it is listed under the group of each of its
records as `related` (a record that looks the same as one of the group's records, not as the one
kept). Why not connected components (the first version): one wrong link between groups of a and
b records put a x b wrong pairs into the report, and a person deleting a group's "duplicates"
would delete them all; the rule keeps a wrong link to the pair itself (docs/lab/evaluation.md,
"Catalog-wide duplicates", measures both).

Keep rule (KEEP_RULE): the oldest product, by its entity_id: the smallest first, digits compared
as numbers (`item-9` before `item-10`), then as text. In a catalog the first upload is usually the
original the others were copied from, and shops number their products as they create them
(Magento's entity_id counts up). Not `updated_at`, the first version's rule: that is when dupcheck
wrote the record, which a backfill's concurrent downloads order by chance, so the same catalog
backfilled twice could keep another record. Records do not store the picture's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dupcheck.core.matching.edits import inverse, summary
from dupcheck.core.matching.verdicts import match_percent
from dupcheck.core.models import Edit
from dupcheck_tools.duplicates.workfile import Found, Listing

KEEP_RULE = (
    "the oldest record by its id: the smallest entity_id, digits compared as numbers "
    "(shops number their products as they create them)"
)
_DIGITS = re.compile(r"([0-9]+)")
GROUP_RULE = (
    "each group is the record to keep and every record the service called the same picture as it; "
    "records called the same picture as another record of a group but not as the one kept are listed "
    "under the group as related, not in it"
)


@dataclass(frozen=True, slots=True)
class Pair:
    """Two records the service calls the same picture. `a` comes before `b` in their group's
    order; `distance` and `match_percent` are the closer of the two directions' judgements
    (each record was checked against the catalog); `edits` what turns `a` into `b`, as `b`'s
    check against `a` names them (core/matching/edits.py: as if `b` were uploaded after `a`), or,
    where only `a`'s check called them the same picture, its edits read backwards; None when they
    cannot be (`edits.inverse`: grayscale, text or a badge)."""

    a: str
    b: str
    distance: int
    match_percent: float
    edits: tuple[Edit, ...] | None

    def to_dict(self) -> dict[str, object]:
        return {
            "a": self.a, "b": self.b, "verdict": "duplicate", "match_percent": self.match_percent,
            "distance": self.distance, "edit": self.edit_summary,
            "edits": None if self.edits is None else [edit.to_dict() for edit in self.edits],
        }  # fmt: skip

    @property
    def edit_summary(self) -> str | None:
        """The edits in one line, as a match's `edit_summary`: "mirrored and cropped (8% off ...)"."""
        return summary(self.edits, same_picture=True)

    def in_words(self) -> str:
        """ "The same picture (97% match): mirrored and cropped (...)." as the web app says it."""
        edits = self.edit_summary
        return f"The same picture ({round(self.match_percent)}% match){f': {edits}' if edits else ''}."


@dataclass(frozen=True, slots=True)
class Group:
    """Records holding one picture: `items` in keep order (the first is the one to keep), each
    a duplicate of the first. `pairs`: every pair of them the service called the same picture;
    `related`: pairs of one of them (`a`) and a record outside the group (`b`) the service called
    the same picture, which the grouping rule kept out (`b` is not a duplicate of the kept one)."""

    items: tuple[Listing, ...]
    pairs: tuple[Pair, ...] = field(default=())
    related: tuple[Pair, ...] = field(default=())

    @property
    def keep(self) -> Listing:
        return self.items[0]

    def to_dict(self) -> dict[str, object]:
        return {
            "items": [item.entity_id for item in self.items],
            "keep": self.keep.entity_id,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "related": [pair.to_dict() for pair in self.related],
        }


def keep_order(listing: Listing) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key of KEEP_RULE: the entity_id's runs of digits as numbers and the rest as text
    (`E9` < `E10` < `F1`), then the id itself (`E01` < `E1`, the same number)."""
    runs = (part for part in _DIGITS.split(listing.entity_id) if part)
    return tuple((0, int(part)) if _DIGITS.fullmatch(part) else (1, part) for part in runs), listing.entity_id


@dataclass(slots=True)
class _Link:
    """Both directions of one pair: the closer distance and the higher score of the two, and
    what each direction named ((query, candidate): edits; `()` for one that named nothing)."""

    distance: int
    score: float
    named: dict[tuple[int, int], tuple[Edit, ...]] = field(default_factory=dict)


def group_duplicates(found: Iterable[Found], listings: Mapping[int, Listing], distance_bits: int) -> list[Group]:
    """Groups by GROUP_RULE of the pairs found (a record is never paired with itself), largest
    group first, then by the id kept. Both directions of a pair make one `Pair`."""
    links: dict[tuple[int, int], _Link] = {}
    for item in found:
        if item.query == item.candidate:
            continue
        ends = (min(item.query, item.candidate), max(item.query, item.candidate))
        link = links.setdefault(ends, _Link(distance_bits, 0.0))
        link.distance, link.score = min(link.distance, item.distance), max(link.score, item.score)
        link.named[(item.query, item.candidate)] = item.edits or ()
    linked_records = sorted({p for ends in links for p in ends}, key=lambda p: keep_order(listings[p]))
    rank = {p: i for i, p in enumerate(linked_records)}
    linked: dict[int, set[int]] = {}
    for one, other in links:
        linked.setdefault(one, set()).add(other)
        linked.setdefault(other, set()).add(one)

    # Each record starts alone; a group is its kept record (the first by rank) and its members.
    kept_of = {p: p for p in rank}
    members = {p: [p] for p in rank}

    def closeness(ends: tuple[int, int]) -> tuple[int, float, list[int]]:
        return links[ends].distance, -links[ends].score, sorted(rank[p] for p in ends)

    for one, other in sorted(links, key=closeness):
        first, second = kept_of[one], kept_of[other]
        if first == second:
            continue
        if rank[second] < rank[first]:
            first, second = second, first
        # Joined, the group keeps `first`: every record of the other group must be its duplicate.
        if all(p in linked[first] for p in members[second]):
            for p in members.pop(second):
                kept_of[p] = first
                members[first].append(p)

    def pair(one: int, other: int) -> Pair:
        """The pair with `one` first: what turns it into `other`, as `other`'s check named it, or
        `one`'s read backwards."""
        link = links[(min(one, other), max(one, other))]
        if (other, one) in link.named:
            edits: tuple[Edit, ...] | None = link.named[(other, one)]
        else:
            edits = inverse(link.named[(one, other)])
        return Pair(listings[one].entity_id, listings[other].entity_id, link.distance, match_percent(link.score), edits)

    groups = []
    for positions in members.values():
        if len(positions) < 2:
            continue
        positions.sort(key=rank.__getitem__)
        inside = set(positions)
        # From each record's own links (a group of a thousand copies is not a million lookups).
        pairs = [pair(one, other) for one in positions
                 for other in sorted(linked[one] & inside, key=rank.__getitem__)
                 if rank[other] > rank[one]]  # fmt: skip
        related = [pair(one, other) for one in positions
                   for other in sorted(linked[one] - inside, key=rank.__getitem__)]  # fmt: skip
        groups.append(Group(tuple(listings[p] for p in positions), tuple(pairs), tuple(related)))
    groups.sort(key=lambda group: (-len(group.items), keep_order(group.keep)))
    return groups
