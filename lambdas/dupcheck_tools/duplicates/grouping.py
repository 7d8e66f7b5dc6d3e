"""From duplicate pairs to groups: each group is a record to keep and the records the service
calls the same picture as that record.

Pure functions of what verification found (pairs of work-file positions, each direction's
edits) and what the records say of themselves (`Listing`, and `Looks`: originals.py): no store,
no pipeline, so the rules are tested on their own.

Grouping rule (GROUP_RULE): every record of a group was called the same picture as the group's
kept record, directly (checked against it, either way). Groups grow from the closest pairs first
(fewest bits apart, then the highest match percentage); two groups join only when the record
the joined group would keep is a duplicate of every other record of it. A pair the service
called the same picture that does not meet the rule is not lost: it is listed under the group of
each of its records as `related` (a record that looks the same as one of the group's records,
not as the one kept). Why not connected components (the first version): one wrong link between groups of a and
b records put a x b wrong pairs into the report, and a person deleting a group's "duplicates"
would delete them all; the rule keeps a wrong link to the pair itself (docs/lab/evaluation.md,
"Catalog-wide duplicates", measures both).

Keep rule (KEEP_RULE): the original, the record the others are edits of, where the pictures show
it (originals.py: the others cropped from it, padded, framed, grayscale, with text or a badge
added, or smaller); else the earliest registered (`updated_at`), then the smallest entity_id
(digits compared as numbers: `item-9` before `item-10`). So a joined group keeps, of its records
none of the others is shown to be the original of (the pictures tell none of these from another),
the earliest registered: a record kept is never one the pictures show to be a copy of a record of
its group, and one kept so far gives way when the record it is an edit of joins. Only evidence
between records of the joined group counts: a wrong call linking a record of another picture
brings its evidence no further than that pair. The first version kept the smallest id
(shops number products as they create them): an import of copies under ids that sort first
(`copy-1` before `magento_0003`) kept every copy and named each edit backwards. `updated_at` is
when dupcheck last wrote the record: a backfill writes in the order its downloads finish, so
where the pictures do not tell, a catalog backfilled twice may keep another record.

Each pair's edits say what turns its first record (`a`: the one kept, or of two others the one the
pictures show to be the original) into the other, as the other's check against it names them,
like a match of find_similar; when only the first's check called them the same picture, its
edits read backwards (`edits.inverse`: a crop as padding, a turn turned back).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dupcheck.core.matching.edits import inverse, summary
from dupcheck.core.matching.verdicts import match_percent
from dupcheck.core.models import Edit, moment_of
from dupcheck_tools.duplicates.originals import Copied, Looks, which_original
from dupcheck_tools.duplicates.workfile import Found, Listing

KEEP_RULE = (
    "the original: the record the others are edits of, where the pictures show it (the others cropped from it, "
    "padded or framed, in grayscale, with text or a badge added, or smaller); where they do not, the earliest "
    "registered, then the smallest entity_id (digits compared as numbers)"
)
_DIGITS = re.compile(r"([0-9]+)")
GROUP_RULE = (
    "each group is the record to keep and every record the service called the same picture as it; "
    "records called the same picture as another record of a group but not as the one kept are listed "
    "under the group as related, not in it"
)
# How a group's record to keep was chosen over the others (`Group.keep_by`): the pictures showed
# every other record to be an edit; else the registration or the id decided for at least one of
# them (the first of these that did).
KEPT_BY = ("pictures", "registered", "id")
_NAMED = 4  # records named in a group's reason before "and N more"


@dataclass(frozen=True, slots=True)
class Pair:
    """Two records the service calls the same picture. `a` is the one kept, or of two others the
    one the pictures show to be the original (else the first in the group's order); `distance`
    and `match_percent` are the closer of the two directions' judgements (each record was checked
    against the catalog); `edits` what turns `a` into `b`, as `b`'s check against `a` names them
    (core/matching/edits.py: as if `b` were uploaded after `a`), or, where only `a`'s check called
    them the same picture, its edits read backwards; None when they cannot be (`edits.inverse`)."""

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
class Over:
    """Why the record kept is kept over one other record of its group (`item`): `by` one of
    KEPT_BY; for "pictures", `how` the other is an edit ("cropped", ...) and `of` the record it is
    an edit of (the one kept, or another of the group)."""

    item: str
    by: str
    how: tuple[str, ...] = ()
    of: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    """Records holding one picture: `items` in keep order (the first is the one to keep), each
    a duplicate of the first. `pairs`: every pair of them the service called the same picture;
    `related`: pairs of one of them (`a`) and a record outside the group (`b`) the service called
    the same picture, which the grouping rule kept out (`b` is not a duplicate of the kept one);
    `over`: why the first is kept over each other record."""

    items: tuple[Listing, ...]
    pairs: tuple[Pair, ...] = field(default=())
    related: tuple[Pair, ...] = field(default=())
    over: tuple[Over, ...] = field(default=())

    @property
    def keep(self) -> Listing:
        return self.items[0]

    @property
    def keep_by(self) -> str:
        """What chose the record kept (KEPT_BY): "pictures" only when it did for every other record."""
        decided = {over.by for over in self.over}
        return next((by for by in KEPT_BY[1:] if by in decided), "pictures")

    @property
    def keep_reason(self) -> str:
        """Why the first record is the one to keep, in words: "the original: the others are edits
        of it (copy-1 cropped, copy-2 in grayscale)"; "registered first: the pictures do not tell
        which is the original"."""
        return keep_reason(self.keep.entity_id, self.over)

    def to_dict(self) -> dict[str, object]:
        return {
            "items": [item.entity_id for item in self.items],
            "keep": self.keep.entity_id,
            "keep_by": self.keep_by,
            "keep_reason": self.keep_reason,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "related": [pair.to_dict() for pair in self.related],
        }


def keep_reason(keep: str, over: Sequence[Over]) -> str:
    """The reason the record `keep` is kept over the others (`over`), in a sentence's words."""
    by: dict[str, list[Over]] = {}
    for item in over:
        by.setdefault(item.by, []).append(item)
    edits = by.get("pictures", [])
    direct = [o for o in edits if o.of == keep]
    parts = []
    if direct and len(direct) == len(over):
        parts.append(f"the original: the others are edits of it ({_listed([f'{o.item} {_how(o)}' for o in direct])})")
    elif direct:
        parts.append(f"the original of {_listed([f'{o.item} ({_how(o)})' for o in direct])}")
    # Edits of another record of the group (which the one kept is no edit of).
    if others := [f"{o.item} is {o.of} {_how(o)}" for o in edits if o.of != keep]:
        parts.append(_listed(others))
    if "registered" in by:
        ids = _listed([o.item for o in by["registered"]])
        parts.append("registered first: the pictures do not tell which is the original" if len(by) == 1
                     else f"registered before {ids}, which the pictures do not tell from it")  # fmt: skip
    if "id" in by:
        ids = _listed([o.item for o in by["id"]])
        parts.append(f"the smallest id: registered at the same moment as {ids}, and the pictures do not tell which "
                     "is the original")  # fmt: skip
    return "; ".join(parts)


def _how(over: Over) -> str:
    return " and ".join(over.how)


def _listed(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c", "a, b, c, d and 7 more" """
    if len(items) > _NAMED + 1:
        items = [*items[:_NAMED], f"{len(items) - _NAMED} more"]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


IdOrder = tuple[tuple[tuple[int, int | str], ...], str]
Registered = tuple[datetime, IdOrder]


def keep_order(listing: Listing) -> IdOrder:
    """Sort key of ids: the entity_id's runs of digits as numbers and the rest as text (`E9` <
    `E10` < `F1`), then the id itself (`E01` < `E1`, the same number)."""
    runs = (part for part in _DIGITS.split(listing.entity_id) if part)
    return tuple((0, int(part)) if _DIGITS.fullmatch(part) else (1, part) for part in runs), listing.entity_id


_NEVER = datetime.max.replace(tzinfo=UTC)  # an `updated_at` that cannot be read: registered last


def registered_order(listing: Listing) -> Registered:
    """Sort key of KEEP_RULE where the pictures do not tell: the earliest registered (its
    `updated_at` as a moment), then `keep_order`."""
    try:
        moment = moment_of(listing.updated_at)
    except ValueError:
        moment = _NEVER
    return moment, keep_order(listing)


@dataclass(slots=True)
class _Link:
    """Both directions of one pair: the closer distance and the higher score of the two, what
    each direction named ((query, candidate): edits; `()` for one that named nothing), and which
    of the two the pictures show to be the original."""

    distance: int
    score: float
    named: dict[tuple[int, int], tuple[Edit, ...]] = field(default_factory=dict)
    checks: Counter[tuple[int, int]] = field(default_factory=Counter)  # how many checks named each way
    copied: Copied | None = None

    @property
    def agreed_copy(self) -> int | None:
        """The record both checks of the pair named the copy: each found it as (copy, original),
        so one of them read it the other way round (core/matching/judge.py reads which picture is
        the copy where the pictures show it). None when they did not both find it, or disagree."""
        if len(self.checks) != 1:
            return None
        (copy, _), count = next(iter(self.checks.items()))
        return copy if count >= 2 else None


def group_duplicates(
    found: Iterable[Found],
    listings: Mapping[int, Listing],
    distance_bits: int,
    looks: Mapping[int, Looks] | None = None,
) -> list[Group]:
    """Groups by GROUP_RULE of the pairs found (a record is never paired with itself), largest
    group first, then by the id kept; each keeps by KEEP_RULE (`looks`: what each record's own
    picture shows, originals.py). Both directions of a pair make one `Pair`."""
    links: dict[tuple[int, int], _Link] = {}
    for item in found:
        if item.query == item.candidate:
            continue
        ends = (min(item.query, item.candidate), max(item.query, item.candidate))
        link = links.setdefault(ends, _Link(distance_bits, 0.0))
        link.distance, link.score = min(link.distance, item.distance), max(link.score, item.score)
        # Both checks may name the pair one way round (one read it back): the fuller naming is
        # kept, whichever was saved first.
        way, edits = (item.query, item.candidate), item.edits or ()
        if way not in link.named or _fuller(edits, link.named[way]):
            link.named[way] = edits
        link.checks[way] += 1
    for (one, other), link in links.items():
        link.copied = which_original(
            one,
            other,
            link.named.get((other, one)),
            link.named.get((one, other)),
            looks or {},
            agreed_copy=link.agreed_copy,
        )
    registered = {p: registered_order(listings[p]) for ends in links for p in ends}
    linked: dict[int, set[int]] = {}
    for one, other in links:
        linked.setdefault(one, set()).add(other)
        linked.setdefault(other, set()).add(one)

    # The records the pictures show each record to be an edit of.
    originals_of: dict[int, set[int]] = {}
    for link in links.values():
        if link.copied is not None:
            originals_of.setdefault(link.copied.copy, set()).add(link.copied.original)

    # Each record starts alone. A group (named by one of its records) has its records, the one
    # kept, and those of its records no other of them is shown to be the original of.
    group_of = {p: p for p in registered}
    members = {p: [p] for p in registered}
    kept = {p: p for p in registered}
    uncopied = {p: {p} for p in registered}

    def closeness(ends: tuple[int, int]) -> tuple[int, float, list[Registered]]:
        return links[ends].distance, -links[ends].score, sorted(registered[p] for p in ends)

    for one, other in sorted(links, key=closeness):
        first, second = group_of[one], group_of[other]
        if first == second:
            continue
        joined = members[first] + members[second]
        inside = set(joined)
        # Joined, the group keeps by KEEP_RULE: of its records no other is shown to be the
        # original of, the earliest registered (among those, the pictures tell none from another).
        # They join only when every other record of the two groups is a duplicate of it.
        free = {p for p in uncopied[first] | uncopied[second] if not originals_of.get(p, set()) & inside}
        keep = min(free or inside, key=registered.__getitem__)
        if len(linked[keep]) < len(joined) - 1 or not inside - {keep} <= linked[keep]:
            continue
        for p in members.pop(second):
            group_of[p] = first
        members[first], kept[first], uncopied[first] = joined, keep, free
        del kept[second], uncopied[second]

    groups = [
        _group(kept[name], positions, links, linked, listings, registered, originals_of)
        for name, positions in members.items()
        if len(positions) > 1
    ]
    groups.sort(key=lambda group: (-len(group.items), keep_order(group.keep)))
    return groups


def _fuller(edits: Sequence[Edit], than: Sequence[Edit]) -> bool:
    """Whether `edits` name more than `than` (the same count: the first by their text)."""
    return (len(edits), repr([e.to_dict() for e in edits])) > (len(than), repr([e.to_dict() for e in than]))


def _group(
    keep: int, positions: Sequence[int], links: Mapping[tuple[int, int], _Link], linked: Mapping[int, set[int]],
    listings: Mapping[int, Listing], registered: Mapping[int, Registered], originals_of: Mapping[int, set[int]],
) -> Group:  # fmt: skip
    """The group of `positions` keeping `keep`: its records (the one kept, then by registration),
    its pairs, the related pairs beside it, and why `keep` is kept over each other record."""
    order = [keep, *sorted((p for p in positions if p != keep), key=registered.__getitem__)]
    place = {p: i for i, p in enumerate(order)}

    def ends(one: int, other: int) -> tuple[int, int]:
        """A pair's records, the first: the one kept, the original the pictures show, else the earlier."""
        if one == keep or one in originals_of.get(other, ()):
            return one, other
        if other == keep or other in originals_of.get(one, ()):
            return other, one
        return (one, other) if place[one] < place[other] else (other, one)

    # From each record's own links (a group of a thousand copies is not a million lookups).
    pairs = [_pair(links, listings, *ends(one, other)) for one in order
             for other in sorted(linked[one] & place.keys(), key=place.__getitem__)
             if place[other] > place[one]]  # fmt: skip
    related = [_pair(links, listings, one, other) for one in order
               for other in sorted(linked[one] - place.keys(), key=registered.__getitem__)]  # fmt: skip
    over = []
    for other in order[1:]:
        entity_id = listings[other].entity_id
        # An edit of the one kept, or of another record of the group, the pictures show; else
        # registered after the one kept, or at the same moment under a larger id.
        sources = sorted(originals_of.get(other, set()) & place.keys(), key=place.__getitem__)
        if sources:
            copied = links[(min(sources[0], other), max(sources[0], other))].copied
            assert copied is not None
            over.append(Over(entity_id, "pictures", copied.how, listings[sources[0]].entity_id))
        else:
            over.append(Over(entity_id, "registered" if registered[keep][0] < registered[other][0] else "id"))
    return Group(tuple(listings[p] for p in order), tuple(pairs), tuple(related), tuple(over))


def _pair(links: Mapping[tuple[int, int], _Link], listings: Mapping[int, Listing], one: int, other: int) -> Pair:
    """The pair with `one` first: what turns it into `other`, as `other`'s check named it, or
    `one`'s read backwards."""
    link = links[(min(one, other), max(one, other))]
    if (other, one) in link.named:
        edits: tuple[Edit, ...] | None = link.named[(other, one)]
    else:
        edits = inverse(link.named[(one, other)])
    return Pair(listings[one].entity_id, listings[other].entity_id, link.distance, match_percent(link.score), edits)
