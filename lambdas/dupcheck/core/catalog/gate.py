"""The duplicate gate: every way into the catalog checks a new picture against it first, and of
concurrent writes of one picture, at most one passes a gate that refuses duplicates.

Every write goes through `Registrar.admit` (service.py: the API's POST and PUT, the web app, the
command line's add and backfill, the notebook, import jobs locally and on AWS), which hashes the
picture once, claims the write (`Gate.open`), looks for its duplicates on find_similar's path among the
catalog and among the writes the index does not show yet (`Gate.live`), and asks `Gate.decide`,
by the call's policy:

* `warn` (the default, DUPCHECK_ON_DUPLICATE): store it and say which duplicates it has;
* `reject`: store nothing and refuse with 409 `duplicate_image` and the matches;
* `allow`: no check (a bulk load that knows what it does), and the answer says so;
* `skip` (imports only): leave a duplicate row out of the catalog, as its outcome, not a failure.

Why claims. Two writes of one picture at the same moment each ask the index before either is in
it, and on AWS the index lags the table by seconds (the stream, then OpenSearch's refresh). So a
write first records a *claim* (`WriteClaims`: in the records' SQLite file, or a DynamoDB table),
then reads every claim still in flight and every write the index may not hold yet, and judges them
with the catalog's candidates. Of two writes that both claimed before reading, at least one reads
the other's claim; the protocol makes sure the one that sees the other never also commits past it:

* a duplicate that is stored, or a claim already committed: the write loses;
* a claim in flight that does not give way (`warn`, `allow`), or that came first (a smaller claim
  id: ids are time-ordered, any fixed order would do): the write loses to it;
* a claim in flight that gives way (`reject`, `skip`) and came later: it is *fenced* (a
  conditional update, pending -> beaten) so its commit fails, unless it committed first (the
  write then loses);
* a claim whose lease has passed (its writer died, or hung) is fenced whatever it is.

A record is written in one transaction with its claim's commit (pending -> committed), which fails
for a fenced claim. So of mutual duplicates claimed at once exactly one is stored: the first claim
among them is never fenced and loses only to one already stored. A losing write withdraws its
claim. The costs and limits are in docs/architecture.md ("One picture, one record").

An answer names only records stored and writes whose writer still runs: a claim whose lease has
passed, or (locally) whose process is gone, is never named. A refusal that lost to writes in
flight, and a `warn` once it is stored, wait for those writes (`standing`) and name the ones
stored, else those still running.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

from dupcheck.core.errors import InvalidRequest
from dupcheck.core.models import (
    ITEM_POLICIES,
    Claim,
    ClaimState,
    Entry,
    HashPart,
    HashRecord,
    HashValue,
    Match,
    OnDuplicate,
)
from dupcheck.core.ports import WriteClaims

# How long a claim's writer has from its claim to its commit: a check's look-ups and judging take
# well under a second, a busy machine's a few. Past it, a writer that sees the claim may fence it
# (its writer died between the steps: kill -9, a Lambda's timeout), so it blocks nobody for longer.
LEASE_S = 10.0
EXPIRED = "(expired)"  # `beaten_by` of a claim fenced because its lease had passed
# A write refused for writes still in flight waits this long for them (their writers commit within a
# check's time), so that its answer names the one stored; then it is checked again if none was.
SETTLE_S = 5.0
SETTLE_POLL_S = 0.02
CHECKS = 3  # a write whose duplicates in flight all lose is checked again, at most this many times
# A write not committed because the kept image it names is being deleted (the value as stored).
KEPT_GONE = "(kept picture gone)"
IN_FLIGHT = "\x00claim:"  # a pending claim's key while it is judged (no entity_id holds a NUL)


def policy_of(value: str | None, default: OnDuplicate, allowed: tuple[OnDuplicate, ...] = ITEM_POLICIES) -> OnDuplicate:
    """A request's `on_duplicate`, or the default; an unknown one is a 400 that lists the known."""
    if value is None or value == "":
        return default
    if value not in {p.value for p in allowed}:
        raise InvalidRequest(f"on_duplicate must be one of {', '.join(p.value for p in allowed)}, not {value!r}")
    return OnDuplicate(value)


def new_claim_id() -> str:
    """32 hex digits, the first 16 the clock's nanoseconds: claims are ordered as they were made."""
    return f"{time.time_ns():016x}{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True)
class Found:
    """A duplicate the check found, and where it stands: a stored record (`claim` None, or a
    committed one), or a write in flight (a pending claim)."""

    match: Match
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """What the gate decided of one write: whether it may be stored (`passed`), the duplicates the
    answer names (best first), whether it was checked at all, and the claim to commit it with."""

    passed: bool
    duplicates: list[Match] = field(default_factory=list)
    checked: bool = True
    claim: Claim | None = None
    # The duplicates that are writes in flight (pending claims), with the matches that name them, for
    # the caller that waits to name only what they store (Gate.standing): a `warn` passed (once it is
    # stored), or a write refused only for writes in flight (none of its duplicates stored yet).
    in_flight: tuple[tuple[Claim, Match], ...] = ()


@dataclass(frozen=True)
class Registration:
    """What a checked registration did: the record stored, the policy applied, whether the
    picture was checked (not with `allow`), and the duplicates found (best first)."""

    record: HashRecord
    on_duplicate: OnDuplicate
    checked: bool
    duplicates: list[Match] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClaimsNear:
    """The claims near a query, as a check judges them beside the index's candidates: a committed
    one as the record it wrote (`committed`, by entity_id), a pending one as the picture its
    writer claimed with (`pending`), under a key of its own (its entity_id may hold another record
    meanwhile), with that picture's thumbnail and record by the key."""

    committed: dict[str, tuple[HashRecord, int, Claim]] = field(default_factory=dict)
    pending: list[tuple[HashRecord, int, Claim]] = field(default_factory=list)
    thumbnails: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, HashRecord] = field(default_factory=dict)

    @staticmethod
    def holds(key: str) -> bool:
        """Whether `key` names a pending claim's picture (not a record of the store)."""
        return key.startswith(IN_FLIGHT)


@dataclass
class Gate:
    """The claims protocol (module docstring) over a `WriteClaims`; without one (a store that has
    none) a check sees only what the index holds, as before concurrency was guarded."""

    claims: WriteClaims | None = None
    lease_s: float = LEASE_S
    clock: Callable[[], float] = time.time

    def open(self, entry: Entry, policy: OnDuplicate) -> Claim | None:
        """Claim a write about to be checked (None for `allow`, which is not checked)."""
        if self.claims is None or not policy.rule.checks:
            return None
        record = entry.record
        claim = Claim(new_claim_id(), record.entity_id, record.hash, yields=not policy.rule.stores,
                      lease_until=self.clock() + self.lease_s)  # fmt: skip
        self.claims.open(claim, entry)
        return claim

    def live(self, own: Claim | None, indexed_through: int | None) -> list[Claim]:
        """The claims a check reads after its own: in flight, or committed but maybe not indexed
        (withdrawn and beaten ones left out: they store nothing)."""
        if self.claims is None:
            return []
        return [claim for claim in self.claims.live(indexed_through)
                if claim.state in (ClaimState.PENDING, ClaimState.COMMITTED)
                and (own is None or claim.claim_id != own.claim_id)]  # fmt: skip

    def claimed(self, near: Sequence[tuple[Claim, int]], reads: Collection[str]) -> ClaimsNear:
        """The claims `near` a query (each with its distance) as it judges them (`ClaimsNear`), those
        whose record a pipeline of `reads` made; one that stores nothing (withdrawn, beaten), or
        was written again since, is left out."""
        found_by_id = self.claims.entries([c for c, _ in near]) if near and self.claims is not None else {}
        claimed = ClaimsNear()
        for claim, distance in near:
            found = found_by_id.get(claim.claim_id)
            if found is None or found.entry.record.hash_algo not in reads:
                continue
            if found.committed:  # stored: judged as the record it is (its thumbnail is the store's)
                claimed.committed[claim.entity_id] = (found.entry.record, distance,
                                                      replace(claim, state=ClaimState.COMMITTED))  # fmt: skip
                continue
            key = IN_FLIGHT + claim.claim_id
            claimed.pending.append((replace(found.entry.record, entity_id=key), distance, claim))
            claimed.thumbnails[key] = found.entry.thumbnail
            claimed.records[key] = found.entry.record
        return claimed

    def split(self, own: Claim | None, live: Sequence[Claim]) -> tuple[list[Claim], list[Claim]]:
        """The live claims a write that gives way loses to if they are duplicates (committed, not
        giving way, or earlier), and those it would fence (later ones that give way, expired ones)."""
        now = self.clock()
        first = [c for c in live if not self._fenceable(own, c, now)]
        return first, [c for c in live if self._fenceable(own, c, now)]

    def decide(self, policy: OnDuplicate, own: Claim | None, found: Sequence[Found]) -> Passage:
        """The gate's answer for a write whose duplicates are `found` (best first). A write that
        gives way loses to a stored duplicate and to a claim in flight that will be stored first;
        one that does not (`warn`) passes and names them all. A loser's claim is withdrawn."""
        duplicates = [f.match for f in found]
        if policy.rule.stores:
            in_flight = tuple((f.claim, f.match) for f in found if f.claim is not None)
            return Passage(True, duplicates, claim=own, in_flight=in_flight)
        now = self.clock()
        lost = [f for f in found if self._wins_over(own, f, now)]
        if lost:
            self.withdraw(own)
            in_flight = tuple((f.claim, f.match) for f in lost if f.claim is not None)
            return Passage(False, [f.match for f in lost], in_flight=() if len(in_flight) < len(lost) else in_flight)
        return Passage(True, [], claim=own)

    def settle(self, claims: Sequence[Claim], wait_s: float, every_s: float = SETTLE_POLL_S) -> dict[str, ClaimState]:
        """Wait up to `wait_s` for these claims to leave pending (their writers commit, or lose);
        where each stands at the end."""
        if self.claims is None or not claims:
            return {}
        deadline = time.monotonic() + wait_s
        while True:
            states = self.claims.states(claims)
            if all(state is not ClaimState.PENDING for state in states.values()) or time.monotonic() >= deadline:
                return states
            time.sleep(every_s)

    def standing(self, in_flight: Sequence[tuple[Claim, Match]], wait_s: float) -> tuple[list[Match], list[Match]]:
        """Wait up to `wait_s` for these writes in flight to settle; the matches of those stored, and
        of those still in flight whose writer runs. The rest store nothing (lost, withdrawn, or their
        writer is gone), so an answer never names them."""
        if not in_flight:
            return [], []
        states = self.settle([claim for claim, _ in in_flight], wait_s)
        stored = [match for claim, match in in_flight if states.get(claim.claim_id) is ClaimState.COMMITTED]
        pending = {claim.claim_id for claim, _ in in_flight if states.get(claim.claim_id) is ClaimState.PENDING}
        running = self._running(pending)
        return stored, [match for claim, match in in_flight if claim.claim_id in running]

    def _running(self, claim_ids: set[str]) -> set[str]:
        """Of these pending claims, those whose writer runs: within its lease (locally its process
        alive too: WriteClaims.live leaves out a gone writer's claims)."""
        if not claim_ids or self.claims is None:
            return set()
        now = self.clock()
        return {c.claim_id for c in self.claims.live(None)
                if c.claim_id in claim_ids and c.state is ClaimState.PENDING and not expired(c, now)}  # fmt: skip

    def _wins_over(self, own: Claim | None, found: Found, now: float) -> bool:
        """Whether the duplicate `found` is (or will be) stored rather than the write of `own`:
        fences a later claim that gives way, or one whose lease passed."""
        other = found.claim
        if other is None or self.claims is None or not self._fenceable(own, other, now):
            return True  # stored, or it will be (unless it loses to yet another: then that one is)
        state = self.claims.fence(other, own.entity_id if own is not None else "", now)
        return state is ClaimState.COMMITTED

    @staticmethod
    def _fenceable(own: Claim | None, other: Claim, now: float) -> bool:
        """Whether a write of `own` fences `other` rather than giving way to it: a pending claim that
        gives way and came later, or one whose lease has passed."""
        if own is None or other.state is not ClaimState.PENDING:
            return False
        return expired(other, now) or (other.yields and other.claim_id > own.claim_id)

    def withdraw(self, claim: Claim | None) -> None:
        if claim is not None and self.claims is not None:
            self.claims.withdraw(claim.claim_id)


def expired(claim: Claim, now: float) -> bool:
    """A pending claim whose lease has passed: its writer died or hung; it is never named, and the
    next write that gives way fences it (locally a gone writer's claim counts as expired at once)."""
    return claim.state is ClaimState.PENDING and claim.lease_until < now


def nearest_claims(
    claims: Iterable[Claim], hashes: Sequence[HashValue], k: int, part_hashes: Sequence[HashValue] = (),
    part_k: int = 0, parts: Sequence[HashPart] = (),
) -> list[tuple[Claim, int]]:  # fmt: skip
    """What `HashIndex.search` would answer if the claims were indexed: the k nearest to any of
    `hashes` (each at its smallest distance), then, part after part of `parts`, up to `part_k`
    more whose part is nearest to one of `part_hashes`. A claim's distance is to its record's
    hash, as the index's is."""
    pool = list(claims)
    if not pool or not hashes:
        return []
    distance = {c.claim_id: min(c.hash - h for h in hashes) for c in pool}
    ranked = sorted(pool, key=lambda c: (distance[c.claim_id], c.claim_id))
    chosen, rest = ranked[:k], ranked[k:]
    for part in parts if part_hashes and part_k > 0 else ():
        on_part = {c.claim_id: min(part.of(c.hash) - h for h in part_hashes) for c in rest}
        more = sorted(rest, key=lambda c: (on_part[c.claim_id], c.claim_id))[:part_k]
        chosen += more
        rest = [c for c in rest if c not in more]
    return [(c, distance[c.claim_id]) for c in chosen]
