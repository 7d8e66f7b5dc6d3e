"""From duplicate pairs to groups: connected components, each listing the record to keep first.

Pure functions of what verification found (pairs of work-file positions) and what the records
say of themselves (`Listing`): no store, no pipeline, so the rules are tested on their own.

Keep rule: the oldest record, the one whose `updated_at` is earliest (then the smallest
entity_id): in a catalog the first upload is usually the original the others were copied from,
and records do not store the picture's size. `updated_at` is when dupcheck last wrote the
record; backfill and import keep it for unchanged rows, so it is the first hashing of the
picture unless the picture changed since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dupcheck.core.edits import summary
from dupcheck.core.models import Edit, version_of
from dupcheck.core.verdicts import match_percent
from dupcheck_tools.duplicates.workfile import Found, Listing

KEEP_RULE = "the oldest record (earliest updated_at), then the smallest entity_id"

@dataclass(frozen=True, slots=True)
class Pair:
    """Two records the service calls the same picture. `a` comes before `b` in their group's
    order; `distance` and `match_percent` are the closer of the two directions' judgements
    (each record was checked against the catalog); `edits` what turns `a` into `b`, as `b`'s
    check against `a` names them (core/edits.py: as if `b` were uploaded after `a`), None when
    only `a`'s check against `b` called them the same picture."""

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
        """"The same picture (97% match): mirrored and cropped (...)." as the web app says it."""
        edits = self.edit_summary
        return f"The same picture ({round(self.match_percent)}% match){f': {edits}' if edits else ''}."


@dataclass(frozen=True, slots=True)
class Group:
    """Records holding one picture: `items` in keep order (the first is the one to keep)."""

    items: tuple[Listing, ...]
    pairs: tuple[Pair, ...] = field(default=())

    @property
    def keep(self) -> Listing:
        return self.items[0]

    def to_dict(self) -> dict[str, object]:
        return {
            "items": [item.entity_id for item in self.items],
            "keep": self.keep.entity_id,
            "pairs": [pair.to_dict() for pair in self.pairs],
        }


def keep_order(listing: Listing) -> tuple[int, int, str]:
    """Sort key of KEEP_RULE: the earliest updated_at first (an unreadable one last)."""
    version = version_of(listing.updated_at)
    return (0, version, listing.entity_id) if version is not None else (1, 0, listing.entity_id)


def group_duplicates(found: Iterable[Found], listings: Mapping[int, Listing], distance_bits: int) -> list[Group]:
    """Connected components of the pairs found (a record is never paired with itself), largest
    group first, then by the id kept. Both directions of a pair make one `Pair`."""
    parent: dict[int, int] = {}

    def root(position: int) -> int:
        parent.setdefault(position, position)
        while parent[position] != position:
            parent[position] = parent[parent[position]]  # path halving: near-flat trees
            position = parent[position]
        return position

    merged: dict[tuple[int, int], tuple[int, float]] = {}  # the closer of the directions
    named: dict[tuple[int, int], tuple[Edit, ...] | None] = {}  # (query, candidate): what it named
    for item in found:
        if item.query == item.candidate:
            continue
        ends = (min(item.query, item.candidate), max(item.query, item.candidate))
        distance, score = merged.get(ends, (distance_bits, 0.0))
        merged[ends] = (min(distance, item.distance), max(score, item.score))
        named[(item.query, item.candidate)] = item.edits
        first, second = root(ends[0]), root(ends[1])
        if first != second:
            parent[max(first, second)] = min(first, second)

    members: dict[int, list[int]] = {}
    for position in parent:
        members.setdefault(root(position), []).append(position)
    pairs_of: dict[int, list[tuple[int, int]]] = {}
    for ends in merged:
        pairs_of.setdefault(root(ends[0]), []).append(ends)
    groups = []
    for group_root, positions in members.items():
        items = sorted((listings[p] for p in positions), key=keep_order)
        rank = {listing.entity_id: i for i, listing in enumerate(items)}
        pairs = []
        for one, other in pairs_of[group_root]:
            distance, score = merged[(one, other)]
            first, second = sorted((one, other), key=lambda position: rank[listings[position].entity_id])
            pairs.append(Pair(listings[first].entity_id, listings[second].entity_id, distance, match_percent(score),
                              named.get((second, first))))  # fmt: skip
        pairs.sort(key=lambda pair: (rank[pair.a], rank[pair.b]))
        groups.append(Group(tuple(items), tuple(pairs)))
    groups.sort(key=lambda group: (-len(group.items), keep_order(group.keep)))
    return groups
