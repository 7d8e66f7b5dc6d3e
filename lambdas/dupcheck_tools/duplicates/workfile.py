"""The duplicate report's work file: what one run read from the store, and what it has judged.

A report describes the catalog as one read of the store saw it, so the run keeps its own copy
of every record it compares (the stored fields, the packed hash and query hashes, the features)
in one SQLite file in the output folder, numbered 0..n-1 in the order read. Verification works
from this copy (its processes open it read-only), and records each judged query together with
the duplicates it found (or why it could not be judged) in one transaction, so an interrupted
run continues where it stopped (`--resume`) without reading the store or pairing again. The
thumbnails of the records with candidates
(for pipelines that keep one beside each record) are copied in too, after the pairing, so
verification reads them from here. The file is removed once the report is written; at 1M
records it holds about 1.4 GB.

The copy's header (`meta`) names the run: the store, the pipeline and the radius. A resume
against another store or other settings is refused rather than mixing two catalogs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dupcheck.adapters.sqlite_store import pack_features, unpack_features
from dupcheck.core.models import Edit, HashRecord, HashValue

WORK_NAME = "duplicates.work.sqlite3"
FORMAT = 4  # bump when the tables or what is saved change: an older work file is then not resumed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    pos        INTEGER PRIMARY KEY,
    entity_id  TEXT NOT NULL,
    sku        TEXT NOT NULL,
    image_url  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    hash_algo  TEXT NOT NULL,
    hash       BLOB NOT NULL,
    queries    BLOB NOT NULL,
    features   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS thumbnails (pos INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS judged (query INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS not_verified (query INTEGER PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (name TEXT NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL,
                                       PRIMARY KEY (name, part));
CREATE TABLE IF NOT EXISTS pairs (
    query      INTEGER NOT NULL,
    candidate  INTEGER NOT NULL,
    distance   INTEGER NOT NULL,
    score      REAL NOT NULL,
    edits      TEXT NOT NULL
);
"""
_BATCH = 900  # bound parameters per statement stay under SQLite's default limit of 999
_PART_BYTES = 64 * 1024 * 1024  # the pairs' arrays are kept in parts of this much


@dataclass(frozen=True, slots=True)
class Found:
    """A duplicate one query record's judgement found: positions in the work file, the judged
    distance (of the pipeline's distance bits), the match percentage (`Judgement.score`), and
    what turns the candidate into the query (core/matching/edits.py; None where nothing was named)."""

    query: int
    candidate: int
    distance: int
    score: float
    edits: tuple[Edit, ...] | None


@dataclass(frozen=True, slots=True)
class Listing:
    """What the report shows of a record (features and hashes stay in the work file)."""

    entity_id: str
    sku: str
    image_url: str
    updated_at: str


class WorkFile:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")  # verification processes read while we write
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        self._conn.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        self._conn.close()

    def remove(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    # -- the run it belongs to -----------------------------------------------------------------

    def identity(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        return json.loads(row[0]) if row else None

    def start(self, identity: dict[str, Any]) -> None:
        """Forget any earlier run and begin this one."""
        with self._transaction():
            for table in ("meta", "records", "thumbnails", "judged", "not_verified", "pairs", "candidates"):
                self._conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._set("identity", {**identity, "format": FORMAT})

    def _set(self, key: str, value: Any) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def _get(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- the records read --------------------------------------------------------------------

    def restart_read(self) -> None:
        """Drop what an interrupted read left: a read is resumed from its start."""
        with self._transaction():
            for table in ("records", "thumbnails", "judged", "not_verified", "pairs", "candidates"):
                self._conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._conn.execute("DELETE FROM meta WHERE key IN ('read', 'paired', 'judged_back')")

    def add_records(self, records: Sequence[HashRecord], queries: np.ndarray) -> None:
        """Append records with their query hashes ((n, hashes, bytes) packed), in read order."""
        first = self.count()
        rows = [
            (first + i, r.entity_id, r.sku, r.image_url, r.updated_at, r.hash_algo, r.hash.data,
             queries[i].tobytes(), pack_features(r.features))
            for i, r in enumerate(records)
        ]  # fmt: skip
        with self._transaction():
            self._conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def finish_read(self, summary: dict[str, Any]) -> None:
        with self._transaction():
            self._set("read", summary)

    def read_summary(self) -> dict[str, Any] | None:
        """What the read counted, once it finished (None: it did not, or never started)."""
        value = self._get("read")
        return dict(value) if value is not None else None

    def count(self) -> int:
        # Positions run 0..n-1: the largest is found in the rowid's b-tree, where COUNT(*) reads
        # the whole table (90 ms a batch at 100k records, a fifth of the read).
        return int(self._conn.execute("SELECT COALESCE(MAX(pos) + 1, 0) FROM records").fetchone()[0])

    def codes(self, hash_bytes: int) -> tuple[np.ndarray, np.ndarray]:
        """Every record's hash (n, hash_bytes) and query hashes (n, q, hash_bytes), by position."""
        hashes, queries = bytearray(), bytearray()
        for stored, extra in self._conn.execute("SELECT hash, queries FROM records ORDER BY pos"):
            hashes += stored
            queries += extra
        count = len(hashes) // hash_bytes
        codes = np.frombuffer(bytes(hashes), dtype=np.uint8).reshape(count, hash_bytes)
        per_record = len(queries) // (count * hash_bytes) if count else 0
        return codes, np.frombuffer(bytes(queries), dtype=np.uint8).reshape(count, per_record, hash_bytes)

    def records(self, positions: Iterable[int]) -> dict[int, tuple[HashRecord, bytes]]:
        """The records at `positions`, each with its packed query hashes."""
        found: dict[int, tuple[HashRecord, bytes]] = {}
        for chunk in _chunks(positions):
            rows = self._conn.execute(
                "SELECT pos, entity_id, sku, image_url, updated_at, hash_algo, hash, queries, features FROM records "
                f"WHERE pos IN ({','.join('?' * len(chunk))})",  # noqa: S608 - only placeholders
                chunk,
            )
            for pos, entity_id, sku, image_url, updated_at, algo, stored, queries, features in rows:
                record = HashRecord(
                    entity_id=entity_id, sku=sku, image_url=image_url, hash=HashValue(stored), hash_algo=algo,
                    updated_at=updated_at, features=unpack_features(features),
                )  # fmt: skip
                found[pos] = (record, queries)
        return found

    def algos(self, positions: Iterable[int]) -> dict[int, tuple[str, str]]:
        """(entity_id, hash_algo) of the records at `positions`."""
        found: dict[int, tuple[str, str]] = {}
        for chunk in _chunks(positions):
            rows = self._conn.execute(
                f"SELECT pos, entity_id, hash_algo FROM records WHERE pos IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )
            found.update((pos, (entity_id, algo)) for pos, entity_id, algo in rows)
        return found

    # -- the pairing ---------------------------------------------------------------------------

    def save_candidates(self, owners: np.ndarray, candidates: np.ndarray, distances: np.ndarray) -> None:
        """The pairing's result (int64 arrays), kept so a resumed run does not pair again; in parts
        of at most _PART_BYTES (SQLite's largest value is 1 GB)."""
        arrays = {"owners": owners, "candidates": candidates, "distances": distances}
        with self._transaction():
            self._conn.execute("DELETE FROM candidates")
            for name, array in arrays.items():
                data = np.ascontiguousarray(array, dtype="<i8").tobytes()
                self._conn.executemany("INSERT INTO candidates VALUES (?, ?, ?)", (
                    (name, part, data[at : at + _PART_BYTES])
                    for part, at in enumerate(range(0, max(len(data), 1), _PART_BYTES))))  # fmt: skip
            self._set("paired", len(owners))

    def paired(self) -> bool:
        """Whether the pairing's result is saved (without reading it)."""
        return self._get("paired") is not None

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(owners, candidates, distances) as saved, or None before the pairing finished."""
        if not self.paired():
            return None
        owners, candidates, distances = (
            np.frombuffer(b"".join(row[0] for row in self._conn.execute(
                "SELECT data FROM candidates WHERE name = ? ORDER BY part", (name,))), dtype="<i8").astype(np.int64)
            for name in ("owners", "candidates", "distances")
        )  # fmt: skip
        return owners, candidates, distances

    # -- thumbnails ----------------------------------------------------------------------------

    def add_thumbnails(self, thumbnails: dict[int, bytes]) -> None:
        with self._transaction():
            self._conn.executemany("INSERT OR REPLACE INTO thumbnails VALUES (?, ?)", thumbnails.items())

    def with_thumbnails(self) -> set[int]:
        """Positions whose thumbnails were copied (a resumed run copies the others)."""
        return {row[0] for row in self._conn.execute("SELECT pos FROM thumbnails")}

    def finish_thumbnails(self) -> None:
        with self._transaction():
            self._set("thumbnails", True)

    def thumbnails_copied(self) -> bool:
        return bool(self._get("thumbnails"))

    def thumbnails(self, positions: Iterable[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in _chunks(positions):
            rows = self._conn.execute(
                f"SELECT pos, data FROM thumbnails WHERE pos IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )
            found.update(rows)
        return found

    def listings(self, positions: Iterable[int]) -> dict[int, Listing]:
        found: dict[int, Listing] = {}
        for chunk in _chunks(positions):
            rows = self._conn.execute(
                "SELECT pos, entity_id, sku, image_url, updated_at FROM records "
                f"WHERE pos IN ({','.join('?' * len(chunk))})",  # noqa: S608 - only placeholders
                chunk,
            )
            found.update((pos, Listing(*fields)) for pos, *fields in rows)
        return found

    # -- what was judged ---------------------------------------------------------------------

    def judged(self) -> set[int]:
        return {row[0] for row in self._conn.execute("SELECT query FROM judged")}

    def save(
        self, queries: Sequence[int], found: Sequence[Found], not_verified: Mapping[int, str] | None = None
    ) -> None:
        """The judgements of `queries` and the duplicates they found, all or nothing; `not_verified`,
        those of them that could not be judged, with the reason (done all the same: a resumed run
        does not judge them again, the report names them)."""
        with self._transaction():
            self._conn.executemany("INSERT OR IGNORE INTO judged VALUES (?)", [(q,) for q in queries])
            self._conn.executemany("INSERT OR REPLACE INTO not_verified VALUES (?, ?)", (not_verified or {}).items())
            self._conn.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?)",
                [(f.query, f.candidate, f.distance, f.score, _edits_text(f.edits)) for f in found],
            )

    def not_verified(self) -> dict[int, str]:
        """The records that could not be judged (`save`), each with the reason."""
        return dict(self._conn.execute("SELECT query, reason FROM not_verified ORDER BY query"))

    def save_judged_back(self, found: Sequence[Found]) -> None:
        """The duplicates the pairs judged the other way round found (the engine's `_judge_back`),
        all at once, and that they were judged."""
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?)",
                [(f.query, f.candidate, f.distance, f.score, _edits_text(f.edits)) for f in found],
            )
            self._set("judged_back", len(found))

    def judged_back(self) -> bool:
        return self._get("judged_back") is not None

    def found(self) -> Iterator[Found]:
        for query, candidate, distance, score, edits in self._conn.execute(
            "SELECT query, candidate, distance, score, edits FROM pairs ORDER BY query, candidate"
        ):
            yield Found(query, candidate, distance, score, _edits_of(edits))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")


def _edits_text(edits: tuple[Edit, ...] | None) -> str:
    return json.dumps(None if edits is None else [edit.to_dict() for edit in edits])


def _edits_of(text: str) -> tuple[Edit, ...] | None:
    found = json.loads(text)
    return None if found is None else tuple(Edit.of_dict(item) for item in found)


def _chunks(positions: Iterable[int]) -> Iterator[list[int]]:
    batch = sorted(set(positions))
    for start in range(0, len(batch), _BATCH):
        yield batch[start : start + _BATCH]
