"""HashIndex in process: an exact Hamming scan over every hash, for the embedded mode and tests.

Memory is what limits an in-process index, so each record costs 8 bytes of key plus its hash
bits (16 bytes for a 64-bit hash): entity ids are not held here. Each id maps to a 64-bit key
(`entity_key`), and the ids of the few hits are resolved through `resolve_ids` (the SQLite store
in embedded mode) or, without one, a small dict kept here.

Search is numpy XOR + popcount in blocks, then a threshold that widens until k hits are
inside it: no full sort (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from dupcheck.core.models import HashRecord, HashValue, IndexHit

ResolveIds = Callable[[Sequence[int]], dict[int, str]]

_GROWTH = 1.5
_BLOCK = 1 << 18  # rows scanned per block: keeps the XOR scratch buffer at 2 MB per word


def entity_key(entity_id: str) -> int:
    """A stable signed 64-bit key for an entity id (collision odds ~3e-6 at 10M ids)."""
    return int.from_bytes(hashlib.blake2b(entity_id.encode(), digest_size=8).digest(), "big", signed=True)


@runtime_checkable
class KeyedHashRows(Protocol):
    """A store that keeps each record's `entity_key` (SQLite): the index loads (key, hash) rows
    from it at start, without entity ids, and resolves the ids of its few hits through it. Its
    change log lets the index follow other processes' writes (dupcheck_tools/local/sync.py)."""

    def index_rows(self, hash_algos: Collection[str]) -> Iterator[tuple[int, str]]: ...

    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]: ...

    def latest_change(self) -> int: ...

    def changes_since(self, seq: int, limit: int = ...) -> tuple[list[tuple[int, str]], int]: ...

    def index_rows_for(self, entity_ids: Sequence[str], hash_algos: Collection[str]) -> dict[str, tuple[int, str]]: ...


class LocalHashIndex:
    def __init__(self, bits: int, *, resolve_ids: ResolveIds | None = None, capacity: int = 1024) -> None:
        if bits <= 0 or bits % 64:
            raise ValueError(f"hash bits must be a positive multiple of 64, not {bits}")
        self.bits = bits
        self._words = bits // 64
        self._keys = np.empty(capacity, dtype=np.int64)
        self._hashes = np.empty((capacity, self._words), dtype=np.uint64)
        self._size = 0
        self._resolve_ids = resolve_ids
        self._names: dict[int, str] = {}
        # The store's change-log version the contents reflect (load's `version`), for a follower.
        self.source_version: int | None = None
        # Readers run in parallel server threads; a write swaps or grows arrays under them.
        self._lock = threading.RLock()

    # -- HashIndex port ----------------------------------------------------------------------

    def upsert(self, record: HashRecord) -> None:
        self.upsert_many([record])

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        rows = [(record.entity_id, record.hash.hex) for record in records]
        if not rows:
            return 0
        keys = np.fromiter((entity_key(eid) for eid, _ in rows), dtype=np.int64, count=len(rows))
        hashes = self._pack([h for _, h in rows])
        with self._lock:
            if self._resolve_ids is None:
                self._names.update((int(k), eid) for k, (eid, _) in zip(keys, rows, strict=True))
            self._add(keys, hashes)
        return len(rows)

    def load(self, rows: Iterable[tuple[int, str]], version: int | None = None) -> int:
        """Bulk load (key, hex hash) rows, for start-up from the store; replaces the contents.
        `version`: the store's change-log version read before the rows (see source_version)."""
        keys: list[int] = []
        hexes: list[str] = []
        for key, hex_hash in rows:
            keys.append(key)
            hexes.append(hex_hash)
        with self._lock:
            self._size = 0
            self._names.clear()
            self._add(np.asarray(keys, dtype=np.int64), self._pack(hexes))
            self.source_version = version
        return len(keys)

    def upsert_rows(self, rows: Iterable[tuple[int, str]]) -> None:
        """Upsert (key, hex hash) rows of records whose ids the store resolves."""
        pairs = list(rows)
        if pairs:
            with self._lock:
                self._add(np.asarray([k for k, _ in pairs], dtype=np.int64), self._pack([h for _, h in pairs]))

    def remove_key(self, key: int) -> None:
        with self._lock:
            positions = np.flatnonzero(self._keys[: self._size] == key)
            for position in positions[::-1]:
                last = self._size - 1
                self._keys[position] = self._keys[last]
                self._hashes[position] = self._hashes[last]
                self._size = last
            self._names.pop(key, None)

    def remove(self, entity_id: str) -> None:
        self.remove_key(entity_key(entity_id))

    def search(
        self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None
    ) -> list[IndexHit]:
        if k <= 0 or not hashes:
            return []
        queries = self._pack([h.hex for h in hashes])
        with self._lock:
            size = self._size
            if size == 0:
                return []
            distances = self._distances(queries, size)
            positions = _nearest(distances, k, self.bits if max_distance is None else max_distance)
            keys = self._keys[positions].tolist()
            found = distances[positions].tolist()
        names = self._names_for(keys)
        return [
            IndexHit(entity_id=names[key], distance=int(d))
            for key, d in zip(keys, found, strict=True)
            if key in names
        ]

    def count(self) -> int:
        return self._size

    # -- internals ---------------------------------------------------------------------------

    def _pack(self, hex_hashes: Sequence[str]) -> np.ndarray:
        raw = bytes.fromhex("".join(hex_hashes))
        if len(raw) != len(hex_hashes) * self._words * 8:
            raise ValueError(f"every hash must have {self.bits} bits")
        # Big-endian words keep the bit order of the hex string; popcount does not care.
        return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hex_hashes), self._words)

    def _add(self, keys: np.ndarray, hashes: np.ndarray) -> None:
        size = self._size
        existing = np.flatnonzero(np.isin(self._keys[:size], keys)) if size else np.empty(0, np.intp)
        if existing.size:
            # Update in place: last write for a key wins, as in the store.
            latest = {int(k): i for i, k in enumerate(keys.tolist())}
            for position in existing:
                self._hashes[position] = hashes[latest[int(self._keys[position])]]
            fresh_mask = ~np.isin(keys, self._keys[existing])
            keys, hashes = keys[fresh_mask], hashes[fresh_mask]
        if keys.size:
            # Within one batch the last occurrence of a key wins.
            _, last_first = np.unique(keys[::-1], return_index=True)
            keep = np.sort(keys.size - 1 - last_first)
            keys, hashes = keys[keep], hashes[keep]
            self._reserve(size + keys.size)
            self._keys[size : size + keys.size] = keys
            self._hashes[size : size + keys.size] = hashes
            self._size = size + keys.size

    def _reserve(self, needed: int) -> None:
        capacity = len(self._keys)
        if needed <= capacity:
            return
        capacity = max(needed, int(capacity * _GROWTH))
        keys = np.empty(capacity, dtype=np.int64)
        hashes = np.empty((capacity, self._words), dtype=np.uint64)
        keys[: self._size] = self._keys[: self._size]
        hashes[: self._size] = self._hashes[: self._size]
        self._keys, self._hashes = keys, hashes

    def _distances(self, queries: np.ndarray, size: int) -> np.ndarray:
        """Per row, the smallest Hamming distance to any query hash."""
        dtype = np.uint8 if self.bits < 256 else np.uint16
        best = np.full(size, self.bits, dtype=dtype)
        scratch = np.empty((min(size, _BLOCK), self._words), dtype=np.uint64)
        for start in range(0, size, _BLOCK):
            stop = min(start + _BLOCK, size)
            block = self._hashes[start:stop]
            xor = scratch[: stop - start]
            for query in queries:
                np.bitwise_xor(block, query, out=xor)
                counts = np.bitwise_count(xor)
                dist = counts[:, 0] if self._words == 1 else counts.sum(axis=1, dtype=dtype)
                np.minimum(best[start:stop], dist, out=best[start:stop], casting="unsafe")
        return best

    def _names_for(self, keys: list[int]) -> dict[int, str]:
        if self._resolve_ids is None:
            return {key: self._names[key] for key in keys if key in self._names}
        return self._resolve_ids(keys)


def _nearest(distances: np.ndarray, k: int, max_distance: int) -> np.ndarray:
    """Positions of the k smallest distances (<= max_distance), nearest first, ties by position.

    Widens a distance threshold until k rows fall inside it, so only those few are sorted.
    """
    threshold = min(4, max_distance)
    while True:
        inside = np.flatnonzero(distances <= threshold)
        if inside.size >= k or threshold >= max_distance:
            break
        threshold = min(max_distance, threshold * 2 if threshold else 1)
    order = np.argsort(distances[inside], kind="stable")[:k]
    return inside[order]
