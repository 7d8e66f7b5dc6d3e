"""WriteClaims on SQLite (core/catalog/gate.py): the gate's claims in the records' own file.

A claim is a row of `claims`, with the picture its writer claimed with (the record's fields and
its thumbnail) while it is pending; its commit and its record's write are one IMMEDIATE
transaction, so a record is never stored past a fenced claim, and a crash between them leaves the
claim pending (and the record unwritten). Every process that writes the file (the server, the
command line, a backfill) reads and writes the same rows; SQLite serialises the writes, and a
read after a commit sees it.

The writes an index may not show yet are read from the change log (adapters/sqlite_store.py): the
records changed after the version the reader's index reflects (`FollowsStore`), whoever wrote
them, gated or not. Committed claims are kept a while only so that a fence can tell "too late"
from "gone".

A claim names its writer (host, pid, the process's start time): a pending claim whose writer no
longer runs on this machine stores nothing, so it is fenced (beaten, as expired) and left out of
what a check reads: when a process opens the claims, by the local server's housekeeping, and by
the first check that reads it. A writer killed between its claim and its commit holds nobody up
and is never named.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dupcheck.adapters.sqlite_store import SqliteRecordStore, pack_features, unpack_features
from dupcheck.core.catalog.gate import EXPIRED
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import Claim, Claimed, ClaimState, Entry, HashRecord, HashValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    claim_id    TEXT PRIMARY KEY,
    entity_id   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    yields      INTEGER NOT NULL,
    lease_until REAL NOT NULL,
    owner       TEXT NOT NULL,
    state       TEXT NOT NULL,
    beaten_by   TEXT NOT NULL DEFAULT '',
    settled_at  REAL,
    sku         TEXT NOT NULL DEFAULT '',
    image_url   TEXT NOT NULL DEFAULT '',
    hash_algo   TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL DEFAULT '',
    features    BLOB,
    thumbnail   BLOB
);
CREATE INDEX IF NOT EXISTS claims_pending ON claims (state) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS claims_settled ON claims (settled_at) WHERE settled_at IS NOT NULL;
"""
# A settled claim is kept this long: a fence that comes later learns it was committed, not gone.
SETTLED_KEPT_S = 3600.0
# The most changed records a check reads beside its index: an index further behind (a process
# whose index follows no log) is reloaded by its follower; past this the read would cost more
# than the check.
MAX_UNINDEXED = 50_000
_PENDING = ClaimState.PENDING.value
T = TypeVar("T")


class SqliteClaims:
    """The gate's claims beside `store`'s records, in its file (module docstring)."""

    def __init__(self, store: SqliteRecordStore, *, clock: object = time.time) -> None:
        self.store = store
        self.clock = clock
        self.owner = _this_process()
        with store._write_lock:
            store._conn().executescript(_SCHEMA)
        self.clear_gone()  # what writers killed before this process started left

    @property
    def path(self) -> Path:
        return self.store.path

    # -- WriteClaims ---------------------------------------------------------------------------

    def open(self, claim: Claim, entry: Entry) -> None:
        record = entry.record
        now = self._now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO claims (claim_id, entity_id, hash, yields, lease_until, owner, state, sku, image_url, "
                "hash_algo, updated_at, features, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (claim.claim_id, claim.entity_id, claim.hash.hex, int(claim.yields), claim.lease_until, self.owner,
                 _PENDING, record.sku, record.image_url, record.hash_algo, record.updated_at,
                 pack_features(record.features), entry.thumbnail),
            )  # fmt: skip
            # Old settled claims, and pending ones abandoned long ago, go as new ones come.
            conn.execute("DELETE FROM claims WHERE settled_at < ? OR (state = ? AND lease_until < ?)",
                         (now - SETTLED_KEPT_S, _PENDING, now - SETTLED_KEPT_S))  # fmt: skip

        self._transaction(write)

    def live(self, indexed_through: int | None) -> list[Claim]:
        conn = self.store._conn()
        try:
            conn.execute("BEGIN")  # one snapshot: the claims and the log as of the same moment
            try:
                pending = conn.execute(
                    "SELECT claim_id, entity_id, hash, yields, lease_until, owner FROM claims WHERE state = ?",
                    (_PENDING,),
                ).fetchall()
                written = [] if indexed_through is None else conn.execute(
                    "SELECT entity_id, hash FROM records WHERE entity_id IN "
                    "(SELECT entity_id FROM changes WHERE seq > ? LIMIT ?)", (indexed_through, MAX_UNINDEXED),
                ).fetchall()  # fmt: skip
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store failed reading the gate's claims: {exc}") from exc
        gone = [row[0] for row in pending if _gone(row[5])]
        cleared = self._clear(gone)  # a gone writer's claim is read no more (one committed meanwhile is)
        claims = [
            Claim(claim_id, entity_id, HashValue.from_hex(hash_hex), bool(yields),
                  0.0 if claim_id in gone else float(lease_until))
            for claim_id, entity_id, hash_hex, yields, lease_until, _ in pending if claim_id not in cleared
        ]  # fmt: skip
        claims += [Claim(f"record:{entity_id}", entity_id, HashValue.from_hex(hash_hex), yields=False, lease_until=0.0,
                         state=ClaimState.COMMITTED) for entity_id, hash_hex in written]  # fmt: skip
        return claims

    def entries(self, claims: Sequence[Claim]) -> dict[str, Claimed]:
        if not claims:
            return {}
        conn = self.store._conn()
        ids = [c.claim_id for c in claims]
        try:
            conn.execute("BEGIN")  # one snapshot: a claim committed meanwhile is in one table or the other
            try:
                rows = conn.execute(
                    "SELECT claim_id, entity_id, sku, image_url, hash, hash_algo, updated_at, features, thumbnail "
                    f"FROM claims WHERE state = ? AND claim_id IN ({','.join('?' * len(ids))})", [_PENDING, *ids],
                ).fetchall()  # fmt: skip
                found = {row[0]: Claimed(_entry(row[1:]), committed=False) for row in rows}
                settled = [c for c in claims if c.claim_id not in found]
                stored = self.store.get_many([c.entity_id for c in settled]) if settled else {}
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store failed reading the gate's claims: {exc}") from exc
        for claim in settled:
            record = stored.get(claim.entity_id)
            if record is not None and record.hash == claim.hash:
                found[claim.claim_id] = Claimed(Entry(record), committed=True)
        return found

    def fence(self, claim: Claim, beaten_by: str, now: float) -> ClaimState:
        claim_id = claim.claim_id

        def write(conn: sqlite3.Connection) -> ClaimState:
            row = conn.execute("SELECT state, yields, lease_until, owner FROM claims WHERE claim_id = ?",
                               (claim_id,)).fetchone()  # fmt: skip
            if row is None:
                return ClaimState.WITHDRAWN  # settled long ago, or never there: it stores nothing now
            state, yields, lease_until, owner = row
            if state != _PENDING:
                return ClaimState(state)
            expired = float(lease_until) < now or _gone(owner)
            if not (yields or expired):
                return ClaimState.PENDING  # a claim that does not give way, within its lease
            conn.execute("UPDATE claims SET state = ?, beaten_by = ?, settled_at = ?, features = NULL, "
                         "thumbnail = NULL WHERE claim_id = ?",
                         (ClaimState.BEATEN.value, EXPIRED if expired else beaten_by, now, claim_id))  # fmt: skip
            return ClaimState.BEATEN

        return self._transaction(write)

    def states(self, claims: Sequence[Claim]) -> dict[str, ClaimState]:
        if not claims:
            return {}
        ids = [c.claim_id for c in claims]
        marks = ",".join("?" * len(ids))
        rows = dict(self.store._query(f"SELECT claim_id, state FROM claims WHERE claim_id IN ({marks})", ids))
        return {
            c.claim_id: ClaimState(rows[c.claim_id]) if c.claim_id in rows else ClaimState.WITHDRAWN for c in claims
        }

    def withdraw(self, claim_id: str) -> None:
        settled = (ClaimState.WITHDRAWN.value, self._now(), claim_id, _PENDING)
        self._transaction(lambda conn: conn.execute(
            "UPDATE claims SET state = ?, settled_at = ?, features = NULL, thumbnail = NULL "
            "WHERE claim_id = ? AND state = ?", settled))  # fmt: skip

    def commit(self, writes: Sequence[tuple[HashRecord, Claim | None]]) -> list[str | None]:
        now = self._now()

        def write(conn: sqlite3.Connection) -> list[str | None]:
            beaten: list[str | None] = []
            records = []
            for record, claim in writes:
                if claim is not None:
                    done = conn.execute(
                        "UPDATE claims SET state = ?, settled_at = ?, features = NULL, thumbnail = NULL "
                        "WHERE claim_id = ? AND state = ?", (ClaimState.COMMITTED.value, now, claim.claim_id, _PENDING),
                    ).rowcount  # fmt: skip
                    if not done:
                        row = conn.execute("SELECT beaten_by FROM claims WHERE claim_id = ?",
                                           (claim.claim_id,)).fetchone()  # fmt: skip
                        beaten.append(str(row[0]) if row and row[0] else EXPIRED)
                        continue
                beaten.append(None)
                records.append(record)
            self.store.write_rows(conn, records, overwrite=True)
            return beaten

        return self._transaction(write)

    def clear_gone(self) -> int:
        """Fence every pending claim whose writer no longer runs (killed between its claim and its
        commit): it stores nothing, and no check reads it again. How many."""
        rows = self.store._query("SELECT claim_id, owner FROM claims WHERE state = ?", (_PENDING,))
        return len(self._clear([claim_id for claim_id, owner in rows if _gone(owner)]))

    # -- pieces --------------------------------------------------------------------------------

    def _clear(self, claim_ids: Sequence[str]) -> set[str]:
        """Move these pending claims of gone writers to beaten (as expired); the ids moved."""
        if not claim_ids:
            return set()
        now = self._now()

        def write(conn: sqlite3.Connection) -> set[str]:
            return {claim_id for claim_id in claim_ids if conn.execute(
                "UPDATE claims SET state = ?, beaten_by = ?, settled_at = ?, features = NULL, thumbnail = NULL "
                "WHERE claim_id = ? AND state = ?", (ClaimState.BEATEN.value, EXPIRED, now, claim_id, _PENDING),
            ).rowcount}  # fmt: skip

        return self._transaction(write)

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one IMMEDIATE transaction on the records' file (its writers' lock)."""
        with self.store._transaction() as conn:
            return work(conn)

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]


def _entry(row: Sequence[Any]) -> Entry:
    """A pending claim's picture from its row (entity_id, sku, image_url, hash, hash_algo, updated_at,
    features, thumbnail)."""
    entity_id, sku, image_url, hash_hex, hash_algo, updated_at, features, thumbnail = row
    record = HashRecord(entity_id, sku, image_url, HashValue.from_hex(hash_hex), hash_algo, updated_at,
                        unpack_features(features or b""))  # fmt: skip
    return Entry(record, thumbnail or b"")


def _start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (Linux's /proc): with the pid, a name
    no later process has. None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid()) or ''}"


def _gone(owner: str) -> bool:
    """Whether the claim's writer was a process of this machine that no longer runs (other
    machines' and unknown writers are left to their lease)."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or not started:
        return False
    return _start_time(int(pid)) != started
