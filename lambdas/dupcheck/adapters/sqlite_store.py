"""RecordStore on SQLite: the embedded mode's durable store, one file under DUPCHECK_DATA_DIR.

WAL journaling lets many server threads read while one writes; each thread has its own
connection because sqlite3 connections must not be shared across threads. Each row also keeps
`id_key`, the 64-bit key the in-process index refers to records by.

`kept_image` is the name of the kept image a row's image_url addresses (core/catalog/kept_images.py),
NULL for the rest, indexed for those alone: whether a record still uses a kept image is one
lookup. A file made before the column has it added and filled when it is opened.

`kept_pins` holds kept images for what names them outside the records (core/catalog/kept_images.py's
KeptImagePins: a decision's copy, an import job's catalog); `uses_kept_image` counts both.
The gate's claims live in this file too (adapters/sqlite_claims.py): a record and its claim's
commit are one transaction.

`features` is one BLOB (`pack_features`: the compact views, ~600 bytes); rows written before
v3 hold a JSON object of base64 text there, which is still read.

Other processes write to the same file (the command line's `add`, `backfill`, `import` while a
server runs): triggers note every changed entity_id in `changes`, a log the server's index
follows (dupcheck_tools/local/sync.py) without reloading everything. The log keeps the last
CHANGES_KEPT entries; a reader that fell further behind reloads. What that index reads (every key
and hash in bulk, the log, ids by key) is SqliteIndexRows, the class SqliteRecordStore is built on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from functools import lru_cache
from itertools import islice
from pathlib import Path

import numpy as np

from dupcheck.adapters.local_index import entity_key
from dupcheck.adapters.sqlite_files import PAGE_SIZE, SqliteFile, connect
from dupcheck.core.catalog.kept_images import kept_name
from dupcheck.core.errors import RecordsChanged, StoreUnavailable
from dupcheck.core.models import HashRecord, HashValue, PutCounts, features_from_text, written_after

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    entity_id  TEXT PRIMARY KEY,
    id_key     INTEGER NOT NULL UNIQUE,
    sku        TEXT NOT NULL,
    image_url  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    hash_algo  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    features   BLOB NOT NULL DEFAULT x'',
    kept_image TEXT
);
CREATE TABLE IF NOT EXISTS changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_id TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_inserted AFTER INSERT ON records
    BEGIN INSERT INTO changes (entity_id) VALUES (new.entity_id); END;
CREATE TRIGGER IF NOT EXISTS records_updated AFTER UPDATE ON records
    BEGIN INSERT INTO changes (entity_id) VALUES (new.entity_id); END;
CREATE TRIGGER IF NOT EXISTS records_deleted AFTER DELETE ON records
    BEGIN INSERT INTO changes (entity_id) VALUES (old.entity_id); END;
CREATE TABLE IF NOT EXISTS kept_pins (
    name   TEXT NOT NULL,
    holder TEXT NOT NULL,
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kept_pins_by_holder ON kept_pins (holder);
"""
_COLUMNS = "entity_id, sku, image_url, hash, hash_algo, updated_at, features"
_COMPARED = ("sku", "image_url", "hash", "hash_algo", "updated_at", "features")  # all but the key
_AS_READ = "hash = ? AND updated_at = ? AND image_url = ? AND sku = ?"  # a record as a removal read it
_UPSERT = (
    f"INSERT INTO records (id_key, {_COLUMNS}, kept_image) VALUES {{rows}} ON CONFLICT(entity_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in (*_COMPARED, "kept_image"))
)
_KEPT_INDEX = "CREATE INDEX IF NOT EXISTS records_by_kept_image ON records (kept_image) WHERE kept_image IS NOT NULL"
# put_newest's compare-on-write: the update happens only when the stored row differs and is not
# the later one (evaluated only on a conflict, the cheap comparison first).
_UNLESS_SAME_OR_NEWER = (
    f" WHERE ({', '.join(f'records.{name}' for name in _COMPARED)})"
    f" IS NOT ({', '.join(f'excluded.{name}' for name in _COMPARED)})"
    " AND NOT written_after(records.updated_at, excluded.updated_at)"
)
# Rows per INSERT: as many as the connection's SQLite binds in one statement (32,766 parameters
# since 3.32; 999 in older builds), at most 4,000: fewer, larger statements for a bulk import,
# and no "too many SQL variables" on an SQLite built with a lower limit (docs/lab/benchmarks.md,
# "Import of a records file": no faster than 500 rows on a quiet machine).
_MAX_ROWS_PER_INSERT = 4000
_BATCH = 900  # stays under SQLite's default limit of 999 bound parameters per statement
_CODES_PER_READ = 100_000  # rowids per read of index_codes: two strings of ~5 MB at a time
# A bulk writer's page cache (SQLite's default is 2 MB): at 1M records the two indexes (~60 MB;
# the id_key one takes inserts at random places) stay in memory, and a transaction's pages are
# written to the WAL once at its commit instead of spilling. Halves the import's system time.
BULK_CACHE_KB = 128 * 1024
CHANGES_KEPT = 100_000  # the change log's length: minutes of the fastest bulk import
_PRUNE = f"DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - {CHANGES_KEPT}"


class SqliteIndexRows(SqliteFile):
    """What the in-process index reads from the records file (KeyedHashRows): every key and packed
    hash in bulk, the change log it follows, the ids of its hits; SqliteRecordStore is built on it."""

    def index_codes(self, hash_algos: Collection[str], bits: int) -> tuple[np.ndarray, np.ndarray]:
        """The id_key (int64) and packed hash ((n, bits / 8) uint8) of every record of these
        pipelines: what the index loads at start. SQLite concatenates each range of rows' keys
        and hashes into two strings (`group_concat`), parsed by numpy: no Python object per
        record (1M records: 0.8 s, against 2 s row by row). One read transaction: a snapshot."""
        algos = sorted(hash_algos)
        chars = bits // 4
        sql = (
            "SELECT count(*), sum(length(hash) != ?), group_concat(id_key, ','), group_concat(hash, '') FROM records "
            f"WHERE rowid > ? AND rowid <= ? AND hash_algo IN ({_marks(algos)})"
        )
        keys: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            last = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM records").fetchone()[0])
            for start in range(0, last, _CODES_PER_READ):
                count, wrong, joined_keys, joined_hashes = conn.execute(
                    sql, [chars, start, start + _CODES_PER_READ, *algos]
                ).fetchone()
                if not count:
                    continue
                if wrong:
                    raise ValueError(f"every hash must have {bits} bits: {wrong} stored hashes do not")
                keys.append(np.fromstring(joined_keys, dtype=np.int64, sep=","))  # text: not deprecated
                if len(keys[-1]) != count:
                    raise ValueError(f"unreadable id_key among rowids {start + 1}-{start + _CODES_PER_READ}")
                codes.append(np.frombuffer(bytes.fromhex(joined_hashes), dtype=np.uint8).reshape(count, bits // 8))
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        if not keys:
            return np.empty(0, dtype=np.int64), np.empty((0, bits // 8), dtype=np.uint8)
        return np.concatenate(keys), np.concatenate(codes)

    def latest_change(self) -> int:
        """The change log's newest entry (0 for none): the store's version, for a follower."""
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM changes", ())[0][0])

    def changes_since(self, seq: int, limit: int = 10_000) -> tuple[list[tuple[int, str]], int]:
        """The (seq, entity_id) changes after `seq`, oldest first, and the oldest entry kept: a
        reader whose `seq` is older than that has missed changes and must reload."""
        rows = self._query("SELECT seq, entity_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        oldest = int(self._query("SELECT COALESCE(MIN(seq), 0) FROM changes", ())[0][0])
        return [(int(s), str(e)) for s, e in rows], oldest

    def index_rows_for(self, entity_ids: Sequence[str], hash_algos: Collection[str]) -> dict[str, tuple[int, str]]:
        """(id_key, hex hash) of those of `entity_ids` that hold a record of these pipelines."""
        found: dict[str, tuple[int, str]] = {}
        ids = list(dict.fromkeys(entity_ids))
        algos = sorted(hash_algos)
        for start in range(0, len(ids), _BATCH - len(algos)):
            chunk = ids[start : start + _BATCH - len(algos)]
            rows = self._query(
                f"SELECT entity_id, id_key, hash FROM records "
                f"WHERE hash_algo IN ({_marks(algos)}) AND entity_id IN ({_marks(chunk)})",
                [*algos, *chunk],
            )
            found.update((entity_id, (key, hex_hash)) for entity_id, key, hex_hash in rows)
        return found

    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for start in range(0, len(keys), _BATCH):
            chunk = list(keys[start : start + _BATCH])
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT id_key, entity_id FROM records WHERE id_key IN ({marks})", chunk)
            found.update(rows)
        return found

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc


class SqliteRecordStore(SqliteIndexRows):
    page_size = PAGE_SIZE  # a record is ~1.3 KB: why 16 KiB pages, adapters/sqlite_files.py
    what = "local store"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)
        with self._write_lock:
            conn = self._conn()
            if "kept_image" not in {row[1] for row in conn.execute("PRAGMA table_info(records)")}:
                conn.execute("BEGIN IMMEDIATE")  # a file made before the column: add it, fill it
                conn.execute("ALTER TABLE records ADD COLUMN kept_image TEXT")
                conn.execute("UPDATE records SET kept_image = kept_name(image_url) WHERE image_url LIKE '%/images/%'")
                conn.execute("COMMIT")
            conn.execute(_KEPT_INDEX)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # SQLite's lower() folds ASCII only; searches fold case as HashRecord.mentions does.
        conn.create_function("casefold", 1, _casefold, deterministic=True)
        conn.create_function("written_after", 2, written_after, deterministic=True)
        conn.create_function("kept_name", 1, _kept_name, deterministic=True)

    # -- RecordStore port --------------------------------------------------------------------

    def get(self, entity_id: str) -> HashRecord | None:
        return self.get_many([entity_id]).get(entity_id)

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]:
        found: dict[str, HashRecord] = {}
        ids = list(dict.fromkeys(entity_ids))
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE entity_id IN ({marks})", chunk)
            found.update((row[0], _record(row)) for row in rows)
        return found

    def put(self, record: HashRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Iterable[HashRecord]) -> int:
        written = 0
        iterator = iter(records)
        while batch := list(islice(iterator, 500)):
            written += self._upsert(batch, overwrite=True).written
        return written

    def put_newest(
        self,
        records: Sequence[HashRecord],
        *,
        overwrite: bool = False,
        before_commit: Callable[[], object] | None = None,
    ) -> PutCounts:
        """The bulk path (`import`): one transaction of multi-row UPSERTs that compare on write,
        on a connection whose page cache holds a large import's working set."""
        self._conn().execute(f"PRAGMA cache_size = -{BULK_CACHE_KB}")
        return self._upsert(records, overwrite=overwrite, before_commit=before_commit)

    def _upsert(
        self, records: Sequence[HashRecord], *, overwrite: bool, before_commit: Callable[[], object] | None = None
    ) -> PutCounts:
        """No read before the write, and no RETURNING: a statement's row count says how many it
        wrote (each returned row would hand the GIL back and forth, and a parsing thread then
        waits a switch interval for it: half the import's speed). Only when some were left alone
        are the stored `updated_at`s read, to tell `kept_newer` (a later stamp) from `unchanged`.
        A statement never holds an id twice, so each id's later record meets its earlier one."""
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                counts = self.write_rows(conn, records, overwrite=overwrite)
                if before_commit is not None:
                    before_commit()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _unavailable(exc) from exc
            except BaseException:  # before_commit failed (or an interrupt): nothing was written
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return counts

    def write_rows(self, conn: sqlite3.Connection, records: Sequence[HashRecord], *, overwrite: bool) -> PutCounts:
        """`_upsert`'s statements, inside a transaction the caller holds on `conn` (under the
        writers' lock): a claim's commit writes its record this way (adapters/sqlite_claims.py)."""
        written = unchanged = kept_newer = 0
        for run in _distinct_runs(records, _rows_per_insert(conn)):
            sql = _UPSERT.format(rows=",".join([_ROW_MARKS] * len(run)))
            sql += "" if overwrite else _UNLESS_SAME_OR_NEWER
            wrote = conn.execute(sql, [value for record in run for value in _row(record)]).rowcount
            written += wrote
            if wrote < len(run):
                stamps = dict(conn.execute(
                    f"SELECT entity_id, updated_at FROM records WHERE entity_id IN ({_marks(run)})",
                    [record.entity_id for record in run],
                ).fetchall())  # fmt: skip
                newer = sum(1 for record in run if written_after(stamps[record.entity_id], record.updated_at))
                kept_newer, unchanged = kept_newer + newer, unchanged + len(run) - wrote - newer
        conn.execute(_PRUNE)
        return PutCounts(written, unchanged, kept_newer)

    def delete(self, entity_id: str) -> bool:
        with self._write_lock:
            try:
                cursor = self._conn().execute("DELETE FROM records WHERE entity_id = ?", (entity_id,))
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc
        return cursor.rowcount > 0

    def get_many_consistent(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]:
        return self.get_many(entity_ids)  # one file: every read sees every commit

    def delete_keeping(self, records: Sequence[HashRecord], keep: str) -> list[str] | None:
        """Delete these records in one transaction, each only while it is as read and only while
        the record `keep` exists (KeepingDeletes: a keep decision's removal; a writer in another
        process, which the service's locks do not hold back, may have registered one again)."""
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("SELECT 1 FROM records WHERE entity_id = ?", (keep,)).fetchone() is None:
                    conn.execute("ROLLBACK")
                    return None
                deleted, changed = [], []
                for r in {r.entity_id: r for r in records}.values():
                    if conn.execute(f"DELETE FROM records WHERE entity_id = ? AND {_AS_READ}",
                                    (r.entity_id, r.hash.hex, r.updated_at, r.image_url, r.sku)).rowcount:  # fmt: skip
                        deleted.append(r.entity_id)
                    elif conn.execute("SELECT 1 FROM records WHERE entity_id = ?", (r.entity_id,)).fetchone():
                        changed.append(r.entity_id)
                if changed:
                    conn.execute("ROLLBACK")
                    raise RecordsChanged(f"changed since they were read: {', '.join(map(repr, changed))}", changed)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _unavailable(exc) from exc
        return deleted

    def scan(self, segments: int = 1) -> Iterator[HashRecord]:
        # Keyset pages: no read transaction stays open while the caller works on a page. One
        # file, one reader: `segments` has nothing to parallelise here. On a connection of its
        # own that reads without the memory map: a scan touches every page once, and mapped,
        # each page it read stayed in the process's resident set (the 1M duplicate report's
        # process tree went from 1.6 to 3.1 GB when the map came in); copied through SQLite's
        # page cache, the scan holds a few pages at a time, as fast.
        with closing(connect(self.path)) as conn:
            conn.execute("PRAGMA mmap_size = 0")
            after = ""
            while True:
                try:
                    rows = conn.execute(
                        f"SELECT {_COLUMNS} FROM records WHERE entity_id > ? ORDER BY entity_id LIMIT 1000", (after,)
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise _unavailable(exc) from exc
                if not rows:
                    return
                yield from (_record(row) for row in rows)
                after = rows[-1][0]

    def page(self, after: str | None, limit: int, query: str | None = None) -> tuple[list[HashRecord], str | None]:
        # Keyset pagination in entity_id order; one row more than asked says whether any is left.
        where, params = "entity_id > ?", [after or ""]
        if query:
            where += " AND (instr(casefold(entity_id), ?) > 0 OR instr(casefold(sku), ?) > 0)"
            params += [query.casefold()] * 2
        rows = self._query(f"SELECT {_COLUMNS} FROM records WHERE {where} ORDER BY entity_id LIMIT ?",
                           [*params, limit + 1])  # fmt: skip
        records = [_record(row) for row in rows[:limit]]
        return records, records[-1].entity_id if len(rows) > limit else None

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM records", ())[0][0])

    def uses_kept_image(self, name: str, *, just_changed: str = "") -> bool:
        """Whether any record's image_url names the kept image `name`, or a pin holds it
        (KeptImageUses: exact here, so `just_changed` needs no second look)."""
        return bool(self._query("SELECT 1 FROM records WHERE kept_image = ? UNION ALL "
                                "SELECT 1 FROM kept_pins WHERE name = ? LIMIT 1", (name, name)))  # fmt: skip

    def pin_kept(self, names: Collection[str], holder: str) -> None:
        """KeptImagePins: hold these kept images for `holder` (idempotent)."""
        self._write("INSERT OR IGNORE INTO kept_pins (name, holder) VALUES (?, ?)", [(n, holder) for n in names])

    def unpin_kept(self, holder: str) -> None:
        self._write("DELETE FROM kept_pins WHERE holder = ?", [(holder,)])

    def pin_holders(self, prefix: str) -> set[str]:
        rows = self._query("SELECT DISTINCT holder FROM kept_pins WHERE holder >= ? AND holder < ?",
                           (prefix, prefix + "\U0010ffff"))  # fmt: skip
        return {str(row[0]) for row in rows}

    def _write(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._transaction() as conn:
            conn.executemany(sql, rows)

    def approximate_count(self) -> int:
        return self.count()  # exact and cheap: the primary key's b-tree


def _row(record: HashRecord) -> tuple:
    return (
        entity_key(record.entity_id),
        record.entity_id,
        record.sku,
        record.image_url,
        record.hash.hex,
        record.hash_algo,
        record.updated_at,
        pack_features(record.features),
        _kept_name(record.image_url),
    )


_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"  # one _row


def _rows_per_insert(conn: sqlite3.Connection) -> int:
    parameters = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(_MAX_ROWS_PER_INSERT, parameters // _ROW_MARKS.count("?")))


def _distinct_runs(records: Iterable[HashRecord], size: int) -> Iterator[list[HashRecord]]:
    """`records` in order, cut into runs of at most `size` with no entity_id twice in a run."""
    run: list[HashRecord] = []
    ids: set[str] = set()
    for record in records:
        if len(run) == size or record.entity_id in ids:
            yield run
            run, ids = [], set()
        run.append(record)
        ids.add(record.entity_id)
    if run:
        yield run


def _record(row: Sequence) -> HashRecord:
    entity_id, sku, image_url, hash_hex, hash_algo, updated_at, features = row
    return HashRecord(
        entity_id=entity_id,
        sku=sku,
        image_url=image_url,
        hash=HashValue.from_hex(hash_hex),
        hash_algo=hash_algo,
        updated_at=updated_at,
        features=unpack_features(features),
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def pack_features(features: Mapping[str, bytes]) -> bytes:
    """name length (1 byte), name (UTF-8), value length (4 bytes), value; per feature."""
    items = sorted(features.items())
    return b"".join([_packed_name(name) + len(value).to_bytes(4, "big") + value for name, value in items])


@lru_cache(maxsize=64)  # a pipeline's few feature names: half of a bulk import's packing time
def _packed_name(name: str) -> bytes:
    encoded = name.encode()
    return len(encoded).to_bytes(1, "big") + encoded


def unpack_features(stored: bytes | str) -> dict[str, bytes]:
    if isinstance(stored, str):  # a row written before v3: JSON of base64 text
        return features_from_text(json.loads(stored))
    features, at = {}, 0
    while at < len(stored):
        size = stored[at]
        name = stored[at + 1 : at + 1 + size].decode()
        at += 1 + size
        length = int.from_bytes(stored[at : at + 4], "big")
        features[name] = stored[at + 4 : at + 4 + length]
        at += 4 + length
    return features


def _kept_name(image_url: str | None) -> str | None:
    # The cheap test first: a bulk import's rows rarely name a kept image.
    return kept_name(image_url) if image_url and "/images/" in image_url else None


def _casefold(text: str | None) -> str:
    return (text or "").casefold()


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    if isinstance(exc, sqlite3.IntegrityError) and "id_key" in str(exc):
        # Two distinct ids share a 64-bit key: astronomically rare, but never silently merged.
        return StoreUnavailable(f"entity_id key collision, record not stored: {exc}")
    return StoreUnavailable(f"local store failed: {exc}")
