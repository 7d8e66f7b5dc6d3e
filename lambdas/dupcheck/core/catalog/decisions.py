"""What a person decided about the duplicate report's groups: settled groups stay settled.

Two decisions, each on one record (`item`) and the records of its group it is about (`others`):
* keep: `item` stays; the others are removed from the catalog (after the page's confirmation),
  or left where they are and marked resolved (two SKUs that may share a picture, a back office
  that removes them itself);
* not_duplicate: `item` and each of the others are different pictures (a colour variant called
  the same picture): the pairs are remembered as reviewed.

A decision is stored (`DuplicateDecisions`: SQLite locally, a DynamoDB table on AWS), listed,
exported as CSV for the shop's back office, and undone: a removed record comes back whole from the
copy kept beside the decision (its record and thumbnail; the picture its record names is held for
the decision, so it is still there; its product vector is made again from it), unless the id was
registered again since.

Every record a decision names must be in the catalog when it is made (404 naming those that are
not). A keep decision that removes the others removes them only while its own record is still in
the catalog, in one step of the store (`CatalogRecords.remove_keeping`): of two opposite keeps at
once, the second finds its record gone, removes nothing and is forgotten (409). It reads the
records it removes (and keeps their copies) under the ids' locks, and removes each only while it
is as read: a record registered again meanwhile by another process or Lambda is not removed, the
decision removes nothing and is forgotten (409 naming it), so no undo brings back the old one.
Later reports are read through the decisions (`annotate`): a group whose pairs are all settled is
no longer open, a pair marked not duplicate is shown `reviewed`, and neither counts as a new
duplicate; a find_similar match of a pair marked not duplicate carries `reviewed` too.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import Conflict, DupcheckError, InvalidRequest, NotFound, RecordsChanged
from dupcheck.core.ids import id_problem
from dupcheck.core.models import Decision, DecisionKind, Entry, HashRecord, RemovedCopy, is_hex_id, utc_now
from dupcheck.core.ports import DuplicateDecisions
from dupcheck.core.spreadsheet import safe_row

# The records one decision names besides its item: a group as the page shows it. A report's
# groups are a picture's copies (two to a few; a placeholder uploaded a thousand times is the
# exception, settled 99 at a time); it also bounds the copies kept for an undo (DynamoDB's 400 KB
# item limit is per copy here, a record and its thumbnail are a few KB) and makes a removal one
# DynamoDB transaction (100 actions: the kept record's check and 99 conditional deletes).
MAX_OTHERS = 99
DEFAULT_PAGE = 50
MAX_PAGE = 500
EXPORT_PAGE = 500  # decisions read per page while the CSV export is written
CSV_COLUMNS = (
    "decision_id",
    "decided_at",
    "decision",
    "item",
    "item_sku",
    "other",
    "other_sku",
    "outcome",
    "undone_at",
)


class InvalidDecision(DupcheckError):
    """A well-formed decision that cannot be: it names its item among the others, or removes
    records it is not keeping others for."""

    status, code = 422, "invalid_decision"


@dataclass(frozen=True, slots=True)
class Undone:
    """An undone decision and what came back: `restored` (removed records put back) and `left_out`
    (removed records whose id holds a record again, registered since: that one stays)."""

    decision: Decision
    restored: tuple[str, ...]
    left_out: tuple[str, ...]


@dataclass
class DecisionService:
    decisions: DuplicateDecisions
    catalog: DupcheckService
    clock: Callable[[], str] = utc_now
    new_id: Callable[[], str] = field(default=lambda: time_ordered_id())
    pictures: KeptImageLifecycle | None = None  # the kept images (None: the catalog service's, if any)

    def decide(self, kind: DecisionKind, item: str, others: Sequence[str], *, remove_others: bool = False) -> Decision:
        """Record a decision (module docstring); with `remove_others` (keep only) the others are
        removed, their copies (and the kept images they name) kept first so that an undo can put
        them back whole, and only while `item` is still in the catalog and each other is as its
        copy (read under the ids' locks: `CatalogRecords.remove_keeping`)."""
        item, others = _check_members(item, others)
        if remove_others and kind is not DecisionKind.KEEP:
            raise InvalidDecision("remove_others goes with decision keep: not_duplicate removes nothing")
        if not remove_others:
            records = self.catalog.parts.store.get_many(list((item, *others)))
            decision = self._made(kind, item, others, records, removed=())
            self.decisions.add(decision, [])
            return decision
        made: list[Decision] = []

        def keep_copies(records: Mapping[str, HashRecord]) -> None:
            # The pictures, the decision and the copies first: a failure while removing leaves records
            # the decision says it removed, which an undo skips (their id holds a record), never one it
            # cannot bring back whole.
            decision = self._made(kind, item, others, records, removed=others)
            removed = [records[other] for other in others]
            thumbnails = self.catalog.parts.thumbnails
            kept = thumbnails.get_many(list(decision.removed)) if thumbnails is not None else {}
            if (pictures := self._pictures()) is not None:
                pictures.pin([r.image_url for r in removed], decision_holder(decision.decision_id))
            self.decisions.add(decision, [RemovedCopy(r, kept.get(r.entity_id, b"")) for r in removed])
            made.append(decision)

        try:
            self.catalog.records.remove_keeping(item, others, first=keep_copies)
        except RecordsChanged as exc:
            self._forget(made)
            raise RecordsChanged(
                f"{', '.join(map(repr, exc.entity_ids))} changed since the decision read "
                f"{'it' if len(exc.entity_ids) == 1 else 'them'} (registered again meanwhile): nothing was removed "
                "and the decision was not kept; look at the group again", exc.entity_ids,
            ) from exc  # fmt: skip
        except Conflict:  # the record to keep went meanwhile (an opposite decision): this one never was
            self._forget(made)
            raise
        return made[0]

    def _made(self, kind: DecisionKind, item: str, others: tuple[str, ...], records: Mapping[str, HashRecord],
              removed: tuple[str, ...]) -> Decision:  # fmt: skip
        """The decision, once every record it names is in the catalog (else 404 naming those that are not)."""
        if item not in records:
            raise NotFound(f"no item with entity_id {item!r}: the record decided on is not in the catalog")
        if missing := [other for other in others if other not in records]:
            raise NotFound(f"others names records that are not in the catalog: {', '.join(map(repr, missing))}")
        return Decision(
            decision_id=self.new_id(), kind=kind, item=item, others=others, created_at=self.clock(),
            removed=removed, skus={i: r.sku for i, r in records.items()},
        )  # fmt: skip

    def _forget(self, made: Sequence[Decision]) -> None:
        """A decision that removed nothing after all: not kept, and its pictures let go."""
        for decision in made:
            self.decisions.withdraw(decision.decision_id)
            if (pictures := self._pictures()) is not None:
                pictures.unpin(decision_holder(decision.decision_id))

    def get(self, decision_id: str) -> Decision:
        found = self.decisions.get(_check_decision_id(decision_id))
        if found is None:
            raise NotFound(f"no decision with decision_id {decision_id!r}")
        return found

    def recent(self, limit: int | None = None, cursor: str | None = None) -> tuple[list[Decision], str | None]:
        limit = DEFAULT_PAGE if limit is None else limit
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        if cursor is not None and not is_hex_id(cursor):
            raise InvalidRequest("cursor is not one this service gave out: use next_cursor of the previous page")
        return self.decisions.page(limit, cursor)

    def undo(self, decision_id: str) -> Undone:
        """Mark the decision undone; put back the records it removed whose id is free."""
        taken = self.decisions.take_back(_check_decision_id(decision_id), self.clock())
        if taken is None:
            if self.get(decision_id).undone_at is not None:  # NotFound when there is none
                raise Conflict(f"decision {decision_id} was undone already")
            raise NotFound(f"no decision with decision_id {decision_id!r}")
        decision, copies = taken
        restored, left_out = [], []
        records = self.catalog.records
        present = self.catalog.parts.store.get_many([copy.record.entity_id for copy in copies]) if copies else {}
        for copy in copies:
            if copy.record.entity_id in present:
                left_out.append(copy.record.entity_id)
                continue
            records.save(Entry(copy.record, copy.thumbnail, records.product_vector_of(copy.record)))
            restored.append(copy.record.entity_id)
        pictures = self._pictures()
        if pictures is not None:  # the restored records name them now; those left out go with nothing
            pictures.unpin(decision_holder(decision.decision_id))
        return Undone(decision, tuple(restored), tuple(left_out))

    def _pictures(self) -> KeptImageLifecycle | None:
        return self.pictures if self.pictures is not None else self.catalog.parts.kept

    def every(self) -> Iterator[Decision]:
        """Every decision, newest first, a page at a time."""
        after: str | None = None
        while True:
            page, after = self.decisions.page(EXPORT_PAGE, after)
            yield from page
            if after is None:
                return

    def export_csv(self) -> str:
        """Every decision as CSV for the back office: a row per record a decision is about
        (CSV_COLUMNS), each text cell spreadsheet-safe (core/spreadsheet.py)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for d in self.every():
            item_sku, undone_at = d.skus.get(d.item, ""), d.undone_at or ""
            for other in d.others:
                writer.writerow(safe_row((d.decision_id, d.created_at, d.kind.value, d.item, item_sku, other,
                                          d.skus.get(other, ""), d.outcome(other), undone_at)))  # fmt: skip
        return buffer.getvalue()

    def annotate(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """The report as read through the decisions (module docstring): each group says which of
        its records are settled and by which decision, whether it is still `open`, and each pair
        whether it was marked not duplicate (`reviewed`); the report counts its open groups."""
        return annotate(report, [d for d in self.every() if d.active])


def annotate(report: Mapping[str, Any], decisions: Iterable[Decision]) -> dict[str, Any]:
    """`DecisionService.annotate`, of the decisions given, newest first (pure)."""
    by_member: dict[str, list[Decision]] = {}
    for decision in decisions:
        for member in decision.members:
            by_member.setdefault(member, []).append(decision)

    def deciding(a: str, b: str) -> Decision | None:
        """The newest decision settling (a, b) (decisions come newest first)."""
        return next((d for d in by_member.get(a, ()) if d.covers(a, b)), None)

    groups = []
    for group in report.get("groups") or []:
        items = list(group.get("items") or [])
        keep = group.get("keep") or (items[0] if items else None)
        settled: dict[str, dict[str, str]] = {}
        for other in items:
            if other != keep and keep is not None and (d := deciding(keep, other)) is not None:
                settled[other] = {"decision_id": d.decision_id, "decision": d.kind.value, "item": d.item,
                                  "outcome": d.outcome(other)}  # fmt: skip
        pairs = [{**pair, "reviewed": _reviewed(deciding(pair["a"], pair["b"]))} for pair in group.get("pairs") or []]
        read = {**group, "pairs": pairs, "settled": settled, "open": len(settled) < len(items) - 1,
                "decisions": sorted({s["decision_id"] for s in settled.values()})}  # fmt: skip
        if "related" in group:
            read["related"] = [{**p, "reviewed": _reviewed(deciding(p["a"], p["b"]))} for p in group["related"] or []]
        groups.append(read)
    return {**report, "groups": groups, "open_groups": sum(1 for g in groups if g["open"])}


def _reviewed(decision: Decision | None) -> bool:
    return decision is not None and decision.kind is DecisionKind.NOT_DUPLICATE


def decision_holder(decision_id: str) -> str:
    """The name a decision holds the kept images of the records it removed under."""
    return f"decision:{decision_id}"


def time_ordered_id() -> str:
    """32 hex digits, the first 16 the clock's nanoseconds: decisions of one millisecond are listed
    in the order they were made (the stores order by created_at, then decision_id)."""
    return f"{time.time_ns():016x}{uuid.uuid4().hex[:16]}"


def _check_members(item: str, others: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    for entity_id in (item, *others):
        if (problem := id_problem(entity_id)) is not None:
            raise InvalidRequest(f"{problem}: {entity_id!r}" if isinstance(entity_id, str) else problem)
    if not others:
        raise InvalidRequest("others must name at least one record besides item")
    if len(others) > MAX_OTHERS:
        raise InvalidRequest(f"others names {len(others)} records: at most {MAX_OTHERS} a decision")
    if item in others:
        raise InvalidDecision(f"others must not name item {item!r} itself")
    if len(set(others)) != len(others):
        raise InvalidRequest("others names a record twice")
    return item, tuple(others)


def _check_decision_id(decision_id: str) -> str:
    if not is_hex_id(decision_id):
        raise NotFound(f"no decision with decision_id {decision_id!r}")
    return decision_id
