"""HashIndex in process: exact Hamming search over every hash, for the embedded mode and tools.

Memory is what limits an in-process index, so each record costs its hash bytes (16 for the
default pipeline's 128 bits) plus an 8-byte key: 240 MB for 10M records. Entity ids are not
held here: each id maps to a 64-bit key (`entity_key`), and the ids of the few hits are
resolved through `resolve_ids` (the SQLite store in embedded mode) or, without one, a small
dict kept here.

Two searches, both exact:
* `search`, the k nearest to any of a query's hashes (the pipeline asks for the 32 nearest to
  its 4 hashes): faiss's Hamming k-NN kernel (`knn_hamming`, what `IndexBinaryFlat` runs, one
  thread) over the packed codes, per query hash, merged by best distance. The k nearest of a
  catalog of unrelated pictures sit at 35-45 bits of 128, where no sublinear structure beats a
  scan (docs/benchmarks.md, "index");
* `within`, every hash within a small radius (near duplicates, the catalog-wide self-join):
  multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012). The codes are cut into 16-bit
  substrings with one table each; a code within distance r of the query agrees with it to
  within r // 8 bits on at least one of the 8 substrings (pigeonhole; `candidates` uses the
  tighter form), so probing each table at the values that close finds every such code, and only
  those candidates are compared. The tables (4 bytes per record per substring) are built on
  first use and dropped by any write.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import cache
from types import ModuleType
from typing import Protocol, runtime_checkable

import numpy as np

from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import HashRecord, HashValue, IndexHit

ResolveIds = Callable[[Sequence[int]], dict[int, str]]

_GROWTH = 1.5
SUBSTRING_BITS = 16
# `within` probes each substring table at every value within this many bits of the query's:
# radius up to (MAX_FLIPS + 1) * substrings - 1 (23 for 128-bit codes). Beyond, scanning is cheaper.
MAX_FLIPS = 2


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
        self._width = bits // 8
        self._keys = np.empty(capacity, dtype=np.int64)
        self._codes = np.empty((capacity, self._width), dtype=np.uint8)
        self._size = 0
        self._resolve_ids = resolve_ids
        self._names: dict[int, str] = {}
        self._tables: _RadiusTables | None = None
        # False from `expect_load` until `load` has run: a server answers while its index loads.
        self._ready = True
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
        codes = self._pack([h for _, h in rows])
        with self._lock:
            if self._resolve_ids is None:
                self._names.update((int(k), eid) for k, (eid, _) in zip(keys, rows, strict=True))
            self._add(keys, codes)
        return len(rows)

    @property
    def ready(self) -> bool:
        return self._ready

    def expect_load(self) -> None:
        """Mark the index as loading: searches raise IndexUnavailable until `load` completes."""
        self._ready = False

    def load(self, rows: Iterable[tuple[int, str]], version: int | None = None) -> int:
        """Bulk load (key, hex hash) rows, for start-up from the store; replaces the contents.
        `version`: the store's change-log version read before the rows (see source_version)."""
        keys: list[int] = []
        hexes: list[str] = []
        for key, hex_hash in rows:
            keys.append(key)
            hexes.append(hex_hash)
        codes = self._pack(hexes)
        with self._lock:
            self._size = 0
            self._names.clear()
            self._add(np.asarray(keys, dtype=np.int64), codes)
            self.source_version = version
            self._ready = True
        return len(keys)

    def upsert_rows(self, rows: Iterable[tuple[int, str]]) -> None:
        """Upsert (key, hex hash) rows of records whose ids the store resolves."""
        pairs = list(rows)
        if pairs:
            codes = self._pack([h for _, h in pairs])
            with self._lock:
                self._add(np.asarray([k for k, _ in pairs], dtype=np.int64), codes)

    def remove_key(self, key: int) -> None:
        with self._lock:
            positions = np.flatnonzero(self._keys[: self._size] == key)
            for position in positions[::-1]:
                last = self._size - 1
                self._keys[position] = self._keys[last]
                self._codes[position] = self._codes[last]
                self._size = last
            self._names.pop(key, None)
            if positions.size:
                self._tables = None

    def remove(self, entity_id: str) -> None:
        self.remove_key(entity_key(entity_id))

    def search(self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None) -> list[IndexHit]:
        queries = self._queries(hashes)
        if k <= 0 or not len(queries):
            return []
        with self._lock:
            size = self._size
            if size == 0:
                return []
            found, positions = _faiss().knn_hamming(queries, self._codes[:size], min(k, size))
            best, distances = _best_by_position(found.ravel(), positions.ravel(), k)
            keys = self._keys[best].tolist()
        return self._hits(keys, distances.tolist(), max_distance)

    def count(self) -> int:
        return self._size

    # -- radius search ------------------------------------------------------------------------

    def within(self, hashes: Sequence[HashValue], radius: int) -> list[IndexHit]:
        """Every hash within `radius` bits of any of `hashes` (each at its best distance),
        nearest first: exact, through the substring tables (built on first use)."""
        substrings = self.bits // SUBSTRING_BITS
        flips = radius // substrings
        if not 0 <= flips <= MAX_FLIPS:
            raise ValueError(f"radius must be between 0 and {(MAX_FLIPS + 1) * substrings - 1}, not {radius}")
        queries = self._queries(hashes)
        if not len(queries):
            return []
        with self._lock:
            size = self._size
            if size == 0:
                return []
            if self._tables is None:
                self._tables = _RadiusTables(self._codes[:size])
            # A code near several queries, or found through several substrings, comes back more
            # than once: measuring every copy costs less than deduplicating thousands first.
            candidates = self._tables.candidates(queries, radius)
            distances = _distances(self._codes, candidates, queries)
            inside = distances <= radius
            candidates, distances = candidates[inside], distances[inside]
            order = np.lexsort((candidates, distances))
            _, first = np.unique(candidates[order], return_index=True)
            best = order[np.sort(first)]  # each code once, at its best distance, nearest first
            keys = self._keys[candidates[best]].tolist()
            found = distances[best].tolist()
        return self._hits(keys, found, None)

    # -- internals ---------------------------------------------------------------------------

    def _queries(self, hashes: Sequence[HashValue]) -> np.ndarray:
        """The distinct query hashes, packed (a symmetric picture mirrors to itself; np.unique
        over rows costs more than the search of a small catalog). Refused while loading."""
        if not self._ready:
            raise IndexUnavailable("the index is still loading its records: try again in a few seconds")
        return self._pack(list(dict.fromkeys(h.hex for h in hashes)))

    def _hits(self, keys: list[int], distances: list[int], max_distance: int | None) -> list[IndexHit]:
        names = self._names_for(keys)
        return [
            IndexHit(entity_id=names[key], distance=int(d))
            for key, d in zip(keys, distances, strict=True)
            if key in names and (max_distance is None or d <= max_distance)
        ]

    def _pack(self, hex_hashes: Sequence[str]) -> np.ndarray:
        raw = bytes.fromhex("".join(hex_hashes))
        if len(raw) != len(hex_hashes) * self._width:
            raise ValueError(f"every hash must have {self.bits} bits")
        return np.frombuffer(raw, dtype=np.uint8).reshape(len(hex_hashes), self._width)

    def _add(self, keys: np.ndarray, codes: np.ndarray) -> None:
        self._tables = None
        size = self._size
        existing = np.flatnonzero(np.isin(self._keys[:size], keys)) if size else np.empty(0, np.intp)
        if existing.size:
            # Update in place: last write for a key wins, as in the store.
            latest = {int(k): i for i, k in enumerate(keys.tolist())}
            for position in existing:
                self._codes[position] = codes[latest[int(self._keys[position])]]
            fresh_mask = ~np.isin(keys, self._keys[existing])
            keys, codes = keys[fresh_mask], codes[fresh_mask]
        if keys.size:
            # Within one batch the last occurrence of a key wins.
            _, last_first = np.unique(keys[::-1], return_index=True)
            keep = np.sort(keys.size - 1 - last_first)
            keys, codes = keys[keep], codes[keep]
            self._reserve(size + keys.size)
            self._keys[size : size + keys.size] = keys
            self._codes[size : size + keys.size] = codes
            self._size = size + keys.size

    def _reserve(self, needed: int) -> None:
        capacity = len(self._keys)
        if needed <= capacity:
            return
        # A bulk load allocates exactly; growth by appends over-allocates to stay amortised.
        capacity = needed if self._size == 0 else max(needed, int(capacity * _GROWTH))
        keys = np.empty(capacity, dtype=np.int64)
        codes = np.empty((capacity, self._width), dtype=np.uint8)
        keys[: self._size] = self._keys[: self._size]
        codes[: self._size] = self._codes[: self._size]
        self._keys, self._codes = keys, codes

    def _names_for(self, keys: list[int]) -> dict[int, str]:
        if self._resolve_ids is None:
            return {key: self._names[key] for key in keys if key in self._names}
        return self._resolve_ids(keys)


@cache
def _faiss() -> ModuleType:
    """faiss, on first search: the SQLite store imports this module for `entity_key` alone."""
    import faiss

    # A query is a few milliseconds of one core: more threads only contend with the server's.
    faiss.omp_set_num_threads(1)
    return faiss


def _best_by_position(distances: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest distinct positions of several queries' k-NN lists, each at its best
    distance, nearest first, ties by position. Exact: a position in the merged top k is in the
    top k of the query it is nearest to."""
    valid = positions >= 0  # faiss pads with -1 when a catalog has fewer than k codes
    distances, positions = distances[valid], positions[valid]
    order = np.lexsort((positions, distances))
    _, first = np.unique(positions[order], return_index=True)
    best = order[np.sort(first)][:k]
    return positions[best], distances[best]


def _distances(codes: np.ndarray, positions: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The Hamming distance of each code at `positions` to the nearest of `queries`. Per 64-bit
    word over contiguous columns: broadcasting over the code's 16 bytes costs 50x more."""
    words = np.take(codes.view(np.uint64), positions, axis=0)  # (n, width / 8)
    query_words = queries.view(np.uint64)  # (q, width / 8)
    nearest = np.full(len(positions), 1 << 30, dtype=np.int64)
    for query in query_words:
        distance = np.zeros(len(positions), dtype=np.int64)
        for column, word in enumerate(query):
            distance += np.bitwise_count(words[:, column] ^ word)
        np.minimum(nearest, distance, out=nearest)
    return nearest


@cache
def _flip_masks(flips: int) -> np.ndarray:
    """Every 16-bit mask with at most `flips` bits set."""
    masks = [0]
    for count in range(1, flips + 1):
        masks += [sum(1 << bit for bit in bits) for bits in itertools.combinations(range(SUBSTRING_BITS), count)]
    return np.array(masks, dtype=np.uint32)


class _RadiusTables:
    """One table per 16-bit substring of the codes: the row positions sorted by that substring's
    value (`order`) and where each value's run starts (`starts`, 65,537 offsets)."""

    def __init__(self, codes: np.ndarray) -> None:
        substrings = codes.view(">u2")  # (n, width / 2): big-endian 16-bit words, the hex order
        self.order: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        for column in range(substrings.shape[1]):
            values = substrings[:, column]
            order = np.argsort(values, kind="stable").astype(np.uint32)
            self.order.append(order)
            self.starts.append(np.searchsorted(values[order], np.arange((1 << SUBSTRING_BITS) + 1)).astype(np.int64))

    def candidates(self, queries: np.ndarray, radius: int) -> np.ndarray:
        """Positions of every code that may be within `radius` of a query; a position may repeat
        (the caller measures them all).

        With radius = a * m + b over m substrings (0 <= b < m), a code within the radius is within
        a bits of the query on one of the first b + 1 substrings or within a - 1 on one of the
        others (else its distance would be at least (b + 1)(a + 1) + (m - b - 1) a = r + 1):
        Norouzi et al.'s tighter pigeonhole, which probes radius 8 over 8 tables at 24 values
        instead of 136."""
        substrings = len(self.order)
        most, first_tables = divmod(radius, substrings)
        words = queries.view(">u2").astype(np.uint32)  # (q, substrings)
        found = []
        for column, (order, starts) in enumerate(zip(self.order, self.starts, strict=True)):
            flips = most if column <= first_tables else most - 1
            if flips < 0:
                continue
            probes = (words[:, column, None] ^ _flip_masks(flips)[None, :]).ravel()
            low = starts[probes]
            counts = starts[probes + 1] - low
            total = int(counts.sum())
            if total:
                # The runs [low, low + count) concatenated without a loop: element g of run j is
                # low_j + (g - where run j begins in the concatenation).
                begins = np.cumsum(counts) - counts
                found.append(order[np.repeat(low - begins, counts) + np.arange(total)])
        return np.concatenate(found) if found else np.empty(0, dtype=np.uint32)
