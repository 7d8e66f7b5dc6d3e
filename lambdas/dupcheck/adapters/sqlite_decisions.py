"""DuplicateDecisions on SQLite: the embedded mode's decisions on duplicate groups, in
`decisions.sqlite3` under the data dir (a file of its own, as scans and import jobs have).

A decision is one row (its fields as JSON), one row per record it names (what `involving` looks
up), and one row per record it removed, the copy an undo puts back. `add` writes them in one
transaction; `take_back` marks the decision undone only if it is not yet, and takes its copies,
in one IMMEDIATE transaction: of two undos at once, one gets them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from dupcheck.adapters.sqlite_files import SqliteBookkeeping
from dupcheck.core.models import Decision, HashRecord, RemovedCopy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    undone_at   TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_recent ON decisions (created_at, decision_id);
CREATE TABLE IF NOT EXISTS decision_members (
    decision_id TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    PRIMARY KEY (entity_id, decision_id)
);
CREATE TABLE IF NOT EXISTS decision_copies (
    decision_id TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    record      TEXT NOT NULL,
    thumbnail   BLOB NOT NULL,
    PRIMARY KEY (decision_id, entity_id)
);
"""


class SqliteDuplicateDecisions(SqliteBookkeeping):
    what = "the local decisions store"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)

    def add(self, decision: Decision, removed: Sequence[RemovedCopy]) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO decisions (decision_id, created_at, undone_at, body) VALUES (?, ?, ?, ?)",
                (decision.decision_id, decision.created_at, decision.undone_at, json.dumps(decision.to_dict())),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO decision_members (decision_id, entity_id) VALUES (?, ?)",
                [(decision.decision_id, member) for member in decision.members],
            )
            conn.executemany(
                "INSERT INTO decision_copies (decision_id, entity_id, record, thumbnail) VALUES (?, ?, ?, ?)",
                [(decision.decision_id, c.record.entity_id, json.dumps(c.record.to_dict()), c.thumbnail)
                 for c in removed],
            )  # fmt: skip

    def get(self, decision_id: str) -> Decision | None:
        rows = self._query("SELECT body, undone_at FROM decisions WHERE decision_id = ?", (decision_id,))
        return _decision(rows[0]) if rows else None

    def page(self, limit: int, after: str | None = None) -> tuple[list[Decision], str | None]:
        if after is None:
            rows = self._query(
                "SELECT body, undone_at FROM decisions ORDER BY created_at DESC, decision_id DESC LIMIT ?", (limit + 1,)
            )
        else:
            rows = self._query(
                """SELECT d.body, d.undone_at FROM decisions d, decisions last WHERE last.decision_id = ?
                   AND (d.created_at, d.decision_id) < (last.created_at, last.decision_id)
                   ORDER BY d.created_at DESC, d.decision_id DESC LIMIT ?""",
                (after, limit + 1),
            )
        decisions = [_decision(row) for row in rows[:limit]]
        return decisions, decisions[-1].decision_id if len(rows) > limit else None

    def involving(self, entity_id: str) -> list[Decision]:
        rows = self._query(
            """SELECT d.body, d.undone_at FROM decision_members m JOIN decisions d USING (decision_id)
               WHERE m.entity_id = ? AND d.undone_at IS NULL ORDER BY d.created_at DESC, d.decision_id DESC""",
            (entity_id,),
        )
        return [_decision(row) for row in rows]

    def take_back(self, decision_id: str, at: str) -> tuple[Decision, list[RemovedCopy]] | None:
        with self._transaction() as conn:
            marked = conn.execute(
                "UPDATE decisions SET undone_at = ? WHERE decision_id = ? AND undone_at IS NULL", (at, decision_id)
            )
            if marked.rowcount == 0:
                return None
            row = conn.execute("SELECT body, undone_at FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
            copies = conn.execute(
                "SELECT record, thumbnail FROM decision_copies WHERE decision_id = ? ORDER BY entity_id", (decision_id,)
            ).fetchall()
            conn.execute("DELETE FROM decision_copies WHERE decision_id = ?", (decision_id,))
        return _decision(row), [RemovedCopy(HashRecord.from_dict(json.loads(r)), bytes(t)) for r, t in copies]

    def withdraw(self, decision_id: str) -> None:
        """Forget a decision whose removal could not happen (its kept record went meanwhile)."""
        with self._transaction() as conn:
            for table in ("decisions", "decision_members", "decision_copies"):
                conn.execute(f"DELETE FROM {table} WHERE decision_id = ?", (decision_id,))


def _decision(row: sqlite3.Row | tuple) -> Decision:
    body, undone_at = row
    return Decision.from_dict({**json.loads(body), "undone_at": undone_at})
