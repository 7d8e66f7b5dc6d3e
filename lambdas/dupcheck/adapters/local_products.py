"""ProductIndex of the embedded mode: the vectors in `products.sqlite3`, searched in process.

The file is the durable home (a row per entity: its int8 vector, or NULL once removed, and a
sequence number every write advances); the search runs over numpy arrays loaded from it on first
use and kept up to date by reading the rows written since (one indexed query before each search),
so a vector another process wrote (backfill, `python -m dupcheck add`, an import) is found by the
server at its next query.

The search, exact where it can be and never a full float scan: each vector's signs about the
catalog's mean, 256 bits, are scanned with faiss's Hamming k-NN kernel (the one the hash index
runs, adapters/local_index.py), and the RERANK nearest by those bits are scored exactly by their
int8 dot product. The bits are a sign random projection of the vector's direction (the vectors are
already a random projection of the network's features), so Hamming distance tracks the angle;
below RERANK vectors every one is scored. At 1M vectors a query takes ~5 ms on one core where the
exact int8 scan took 30 and faiss's float scan 110 (docs/lab/benchmarks.md, "Similar products"). Why
not a graph (faiss HNSW): building one for 1M vectors took 5 minutes of both cores, it cannot
remove a vector, and at the same time per query it found fewer of the true 5 nearest.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dupcheck.adapters.local_index import faiss_one_thread
from dupcheck.adapters.sqlite_files import SqliteBookkeeping
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL, ProductHit, ProductVector, similarity_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    key INTEGER PRIMARY KEY,            -- stable per entity: the in-memory index's id for it
    entity_id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    vector BLOB,                        -- NULL: removed (kept, so other processes' indexes learn of it)
    seq INTEGER NOT NULL                -- advanced by every write: what an index has applied
);
CREATE INDEX IF NOT EXISTS products_by_seq ON products (seq);
"""
_BATCH = 900  # bound parameters per statement, under SQLite's default limit of 999
# Candidates scored exactly after the Hamming scan: enough to find most of the true 5 nearest
# among thousands of near ties (docs/lab/similar-products.md).
RERANK = 1024
RECENTRE_GROWTH = 2  # the signs are taken about the mean of the vectors loaded; again when they double
LOAD_SLICE = 50_000  # rows read at a time


class LocalProductIndex(SqliteBookkeeping):
    what = "the local product index"

    def __init__(self, path: Path | str, model: str = PRODUCT_MODEL) -> None:
        super().__init__(path, _SCHEMA)
        self.model = model
        self._lock = threading.Lock()
        self._seq = 0
        self._size = 0
        self._keys = np.zeros(0, dtype=np.int64)  # position -> key
        self._vectors = np.zeros((0, DIMENSIONS), dtype=np.int8)
        self._codes = np.zeros((0, DIMENSIONS // 8), dtype=np.uint8)
        # key -> position (-1: none). Keys are the table's rowids, 1.. in order of first write, so
        # an array is 4 bytes a record where a dict of ints was ~100.
        self._position = np.full(0, -1, dtype=np.int32)
        self._centre = np.zeros(DIMENSIONS, dtype=np.float32)
        self._centred_at = 0

    # -- writes ---------------------------------------------------------------------------------

    def put_many(self, vectors: Mapping[str, ProductVector]) -> int:
        rows = [(entity_id, v.model, v.data) for entity_id, v in vectors.items()]
        if not rows:
            return 0
        with self._transaction() as conn:
            seq = self._next_seq(conn)
            conn.executemany(
                "INSERT INTO products (entity_id, model, vector, seq) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (entity_id) DO UPDATE SET model = excluded.model, vector = excluded.vector, "
                "seq = excluded.seq",
                [(entity_id, model, data, seq + i) for i, (entity_id, model, data) in enumerate(rows)],
            )
        return len(rows)

    def remove(self, entity_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE products SET vector = NULL, seq = ? WHERE entity_id = ? AND vector IS NOT NULL",
                (self._next_seq(conn), entity_id),
            )

    @staticmethod
    def _next_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM products").fetchone()[0])

    # -- reads ----------------------------------------------------------------------------------

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(entity_ids))
        found: set[str] = set()
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            sql = (f"SELECT entity_id FROM products WHERE vector IS NOT NULL AND model = ? "
                   f"AND entity_id IN ({','.join('?' * len(chunk))})")  # fmt: skip
            found.update(row[0] for row in self._query(sql, [self.model, *chunk]))
        return set(ids) - found

    def count(self) -> int:
        with self._lock:
            self._catch_up()
            return self._size

    def search(self, vector: ProductVector, k: int) -> list[ProductHit]:
        if k <= 0 or vector.model != self.model:
            return []
        query = vector.values()
        with self._lock:
            self._catch_up()
            size = self._size
            if size == 0:
                return []
            if size <= max(RERANK, 8 * k):
                candidates = np.arange(size)
            else:
                code = np.packbits(query.astype(np.float32) > self._centre)[None]
                _, found = faiss_one_thread().knn_hamming(code, self._codes[:size], max(RERANK, 8 * k))
                candidates = found[0][found[0] >= 0]
            dots = self._vectors[candidates].astype(np.int32) @ query.astype(np.int32)
            order = np.argsort(-dots, kind="stable")[:k]
            keys = self._keys[candidates[order]].tolist()
            scores = dots[order].tolist()
        ids = dict(self._query(
            f"SELECT key, entity_id FROM products WHERE key IN ({','.join('?' * len(keys))})", keys
        ))  # fmt: skip
        hits = [ProductHit(ids[key], similarity_of(dot)) for key, dot in zip(keys, scores, strict=True) if key in ids]
        return sorted(hits, key=lambda hit: (-hit.similarity, hit.entity_id))

    @property
    def nbytes(self) -> int:
        """What its arrays hold in memory (the vectors, their bits, ids and positions)."""
        return sum(a.nbytes for a in (self._keys, self._vectors, self._codes, self._position))

    def warm(self) -> None:
        """Load the vectors now (the local server does, in the background, so the first query does not)."""
        with self._lock:
            self._catch_up()

    # -- the in-memory arrays (under self._lock) --------------------------------------------------

    def _catch_up(self) -> None:
        """Apply every row written since the last call (all of them the first time), a slice of
        rows at a time: a load of 1M reads ~300 MB, never all of it as Python objects at once."""
        if self._seq == 0:  # the first load: room for them all, not a doubling past them
            (count,) = self._query(
                "SELECT COUNT(*) FROM products WHERE vector IS NOT NULL AND model = ?", (self.model,)
            )[0]
            self._reserve(int(count))
        while rows := self._query(
            "SELECT key, model, vector, seq FROM products WHERE seq > ? ORDER BY seq LIMIT ?", (self._seq, LOAD_SLICE)
        ):
            self._apply(rows)
            self._seq = int(rows[-1][3])

    def _apply(self, rows: list[tuple]) -> None:
        adds: dict[int, bytes] = {}
        for key, model, data, _ in rows:
            if data is not None and model == self.model and len(data) == DIMENSIONS:
                adds[key] = data
            else:
                adds.pop(key, None)
                self._drop(key)
        for key in list(adds):
            if (position := self._position_of(key)) >= 0:  # replaced: written in place
                self._vectors[position] = np.frombuffer(adds.pop(key), dtype=np.int8)
                self._codes[position] = np.packbits(self._vectors[position].astype(np.float32) > self._centre)
        if adds:
            keys = np.fromiter(adds, dtype=np.int64, count=len(adds))
            self._append(keys, np.frombuffer(b"".join(adds.values()), dtype=np.int8).reshape(-1, DIMENSIONS))

    def _position_of(self, key: int) -> int:
        return int(self._position[key]) if key < len(self._position) else -1

    def _reserve(self, capacity: int) -> None:
        if capacity > len(self._keys):
            self._keys = np.resize(self._keys, capacity)
            self._vectors = np.resize(self._vectors, (capacity, DIMENSIONS))
            self._codes = np.resize(self._codes, (capacity, DIMENSIONS // 8))

    def _append(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        start, end = self._size, self._size + len(keys)
        if end > len(self._keys):
            self._reserve(max(end, 2 * len(self._keys), 1024))
        self._keys[start:end] = keys
        self._vectors[start:end] = vectors
        if (largest := int(keys.max())) >= len(self._position):
            grown = np.full(max(largest + 1, 2 * len(self._position)), -1, dtype=np.int32)
            grown[: len(self._position)] = self._position
            self._position = grown
        self._position[keys] = np.arange(start, end, dtype=np.int32)
        self._size = end
        if end >= RECENTRE_GROWTH * max(self._centred_at, 1):
            self._recentre()
        else:
            self._codes[start:end] = np.packbits(vectors.astype(np.float32) > self._centre, axis=1)

    def _drop(self, key: int) -> None:
        position = self._position_of(key)
        if position < 0:
            return
        self._position[key] = -1
        last = self._size - 1
        if position != last:  # the last one moves into the hole
            moved = int(self._keys[last])
            self._keys[position] = moved
            self._vectors[position] = self._vectors[last]
            self._codes[position] = self._codes[last]
            self._position[moved] = position
        self._size = last

    def _recentre(self) -> None:
        vectors = self._vectors[: self._size]
        self._centre = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        for start in range(0, self._size, 65_536):  # in slices: no float copy of them all at once
            part = vectors[start : start + 65_536].astype(np.float32)
            self._codes[start : start + len(part)] = np.packbits(part > self._centre, axis=1)
        self._centred_at = self._size
