"""HashIndex in process: exact Hamming search over every hash, for the embedded mode and tools.

Memory is what limits an in-process index, so each record costs its hash bytes (16 for the
default pipeline's 128 bits) plus an 8-byte key, and a copy of each part searched on its own (8
bytes a half): 400 MB for 10M records of the default pipeline. Entity ids are not held here: each
id maps to a 64-bit key (`entity_key`), and the ids of the few hits are resolved through
`resolve_ids` (the SQLite store in embedded mode) or, without one, a small dict kept here.

Two searches, both exact:
* `search`, the k nearest to any of a query's hashes (the pipeline asks for the 32 nearest to
  its 4 hashes): faiss's Hamming k-NN kernel (`knn_hamming`, what `IndexBinaryFlat` runs, one
  thread) over the packed codes, per query hash, merged by best distance. The k nearest of a
  catalog of unrelated pictures sit at 35-45 bits of 128, where no sublinear structure beats a
  scan (docs/lab/benchmarks.md, "index"). An index built with `parts` (the pipeline's
  `index_parts`) also keeps each part of the codes contiguous (8 more bytes a record for each
  64-bit half), so a search can add, part after part, the records whose part is nearest to its
  `part_hashes`, by the same kernel;
* `within`, every hash within a small radius (near duplicates), and `pairs_within`, the same
  for many query hashes at once (the catalog-wide self-join of the duplicate report):
  multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012). The codes are cut into 16-bit
  substrings with one table each; a code within distance r of the query agrees with it to
  within r // 8 bits on at least one of the 8 substrings (pigeonhole; both use its tighter form,
  `_flips_per_table`), so probing each table at the values that close finds every such code,
  and only those candidates are compared. `pairs_within`'s distance can be a part's (`parts=2`:
  the closer of two halves, the default pipeline's judged distance): the pigeonhole then runs
  over that part's substrings. The tables (4 bytes per record per substring) are built on first
  use and dropped by any write.

LocalHashRows holds the records and makes every write to them (loads, upserts, removals, the
store's change log followed); LocalHashIndex, built on it, is the index and its searches.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import cache
from types import ModuleType
from typing import Protocol, runtime_checkable

import numpy as np

from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import HashPart, HashRecord, HashValue, IndexHit, check_parts

ResolveIds = Callable[[Sequence[int]], dict[int, str]]
log = logging.getLogger(__name__)

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
    """A store that keeps each record's `entity_key` (SQLite): the index loads every (key, hash)
    from it at start in one bulk read (`index_codes`: the keys and the packed hashes), without
    entity ids, and resolves the ids of its few hits through it. Its change log lets the index
    follow other processes' writes (`LocalHashIndex.catch_up`)."""

    def index_codes(self, hash_algos: Collection[str], bits: int) -> tuple[np.ndarray, np.ndarray]: ...

    def ids_for_keys(self, keys: Sequence[int]) -> dict[int, str]: ...

    def latest_change(self) -> int: ...

    def changes_since(self, seq: int, limit: int = ...) -> tuple[list[tuple[int, str]], int]: ...

    def index_rows_for(self, entity_ids: Sequence[str], hash_algos: Collection[str]) -> dict[str, tuple[int, str]]: ...


class LocalHashRows:
    """The index's records and every write to them: keys and packed codes in growable arrays, bulk
    loads, upserts, removals and keeping in step with a store's change log (LocalHashIndex searches them)."""

    def __init__(
        self, bits: int, *, parts: Sequence[HashPart] = (), resolve_ids: ResolveIds | None = None,
        capacity: int = 1024,
    ) -> None:  # fmt: skip
        if bits <= 0 or bits % 64:
            raise ValueError(f"hash bits must be a positive multiple of 64, not {bits}")
        self.parts = check_parts(parts, bits)
        if any(part.start % 64 or part.bits % 64 for part in self.parts):
            raise ValueError(f"each part must be whole 64-bit words of the hash: {self.parts}")
        self.bits = bits
        self._width = bits // 8
        self._keys = np.empty(capacity, dtype=np.int64)
        self._codes = np.empty((capacity, self._width), dtype=np.uint8)
        # Each part of the codes, contiguous for the k-NN kernel.
        self._part_codes = [np.empty((capacity, part.bits // 8), dtype=np.uint8) for part in self.parts]
        self._size = 0
        self._resolve_ids = resolve_ids
        self._names: dict[int, str] = {}
        self._tables: _RadiusTables | None = None
        # False from `expect_load` until `load` has run: a server answers while its index loads.
        self._ready = True
        # The store's change-log version the contents reflect (load's `version`, then its follower's):
        # writes logged after it may not be searchable yet (core/catalog/gate.py reads them beside it).
        self.source_version: int | None = None
        # Readers run in parallel server threads; a write swaps or grows arrays under them.
        self._lock = threading.RLock()
        self._followed: tuple[KeyedHashRows, frozenset[str]] | None = None  # `follow`'s store
        self._catching_up = threading.Lock()  # one catch-up at a time: the follower's or a check's

    # -- writes (HashIndex port) -------------------------------------------------------------

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
        return self.load_codes(np.asarray(keys, dtype=np.int64), self._pack(hexes), version)

    def load_codes(self, keys: np.ndarray, codes: np.ndarray, version: int | None = None) -> int:
        """Bulk load keys (int64) and their packed hashes ((n, bits / 8) uint8); replaces the
        contents. For a tool that holds its records by position: the keys can be positions."""
        if codes.shape != (len(keys), self._width):
            raise ValueError(f"every hash must have {self.bits} bits")
        with self._lock:
            self._size = 0
            self._names.clear()
            self._add(np.asarray(keys, dtype=np.int64), np.asarray(codes, dtype=np.uint8))
            self.source_version = version
            self._ready = True
        return len(keys)

    # -- following the store's change log ----------------------------------------------------------

    def follow(self, store: KeyedHashRows, hash_algos: Collection[str]) -> None:
        """Keep in step with `store` (its records of these pipelines) through its change log:
        `catch_up` applies what other writers logged since `source_version`."""
        self._followed = (store, frozenset(hash_algos))

    def catch_up(self) -> int:
        """Apply every change the followed store logged after `source_version`, each id as it now is
        in the store (upserted when it holds a record of the index's pipelines, else removed);
        load or reload the whole index first when it is not loaded or fell behind the log's oldest
        entry. How many ids were applied (0 without a followed store). Called by the server's
        follower every half second and by the duplicate gate before it reads the writes an index
        may not show yet (core/catalog/gate.py), so those are only what came in the last moment."""
        if self._followed is None:
            return 0
        store, algos = self._followed
        applied = 0
        with self._catching_up:
            if not self._ready or self.source_version is None:
                self._reload(store, algos)
            while True:
                version = self.source_version or 0
                changes, oldest = store.changes_since(version)
                if oldest > version + 1:  # the log moved past us: some changes are gone
                    log.warning("the index fell behind the store's change log: reloading it")
                    self._reload(store, algos)
                    return applied
                if not changes:
                    return applied
                ids = list(dict.fromkeys(entity_id for _, entity_id in changes))
                current = store.index_rows_for(ids, algos)
                self.upsert_rows(current.values())
                for entity_id in ids:
                    if entity_id not in current:
                        self.remove_key(entity_key(entity_id))
                self.source_version = changes[-1][0]
                applied += len(ids)

    def _reload(self, store: KeyedHashRows, algos: Collection[str]) -> None:
        version = store.latest_change()  # before the rows: a change in between is replayed
        keys, codes = store.index_codes(algos, self.bits)
        self.load_codes(keys, codes, version=version)

    # -- rows by key ----------------------------------------------------------------------------

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
                for part_codes in self._part_codes:
                    part_codes[position] = part_codes[last]
                self._size = last
            self._names.pop(key, None)
            if positions.size:
                self._tables = None

    def remove(self, entity_id: str) -> None:
        self.remove_key(entity_key(entity_id))

    def count(self) -> int:
        return self._size

    # -- the arrays ----------------------------------------------------------------------------

    def _pack(self, hex_hashes: Sequence[str], bits: int | None = None) -> np.ndarray:
        """The hashes as rows of bytes; each must have `bits` (the index's unless given)."""
        bits = self.bits if bits is None else bits
        raw = bytes.fromhex("".join(hex_hashes))
        if len(raw) * 8 != len(hex_hashes) * bits:
            raise ValueError(f"every hash must have {bits} bits")
        return np.frombuffer(raw, dtype=np.uint8).reshape(len(hex_hashes), bits // 8)

    def _add(self, keys: np.ndarray, codes: np.ndarray) -> None:
        self._tables = None
        size = self._size
        existing = np.flatnonzero(np.isin(self._keys[:size], keys)) if size else np.empty(0, np.intp)
        if existing.size:
            # Update in place: last write for a key wins, as in the store.
            latest = {int(k): i for i, k in enumerate(keys.tolist())}
            for position in existing:
                self._codes[position] = codes[latest[int(self._keys[position])]]
            self._copy_parts(existing)
            fresh_mask = ~np.isin(keys, self._keys[existing])
            keys, codes = keys[fresh_mask], codes[fresh_mask]
        if keys.size:
            # Within one batch the last occurrence of a key wins. A store's keys are distinct: a
            # sort tells so (a bulk load of 1M keys: 0.05 s, against 0.35 s for np.unique's).
            ordered = np.sort(keys)
            if np.any(ordered[1:] == ordered[:-1]):
                _, last_first = np.unique(keys[::-1], return_index=True)
                keep = np.sort(keys.size - 1 - last_first)
                keys, codes = keys[keep], codes[keep]
            self._reserve(size + keys.size)
            self._keys[size : size + keys.size] = keys
            self._codes[size : size + keys.size] = codes
            self._copy_parts(slice(size, size + keys.size))
            self._size = size + keys.size

    def _copy_parts(self, positions: np.ndarray | slice) -> None:
        """Each part of the codes at `positions`, into its contiguous copy."""
        for part, part_codes in zip(self.parts, self._part_codes, strict=True):
            part_codes[positions] = self._codes[positions, part.start // 8 : part.end // 8]

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
        part_codes = [np.empty((capacity, part.bits // 8), dtype=np.uint8) for part in self.parts]
        for grown, held in zip(part_codes, self._part_codes, strict=True):
            grown[: self._size] = held[: self._size]
        self._keys, self._codes, self._part_codes = keys, codes, part_codes


class LocalHashIndex(LocalHashRows):
    """The searches over LocalHashRows' codes (see the module docstring): the k nearest (`search`),
    and every code within a radius (`within`, `pairs_within`) through the substring tables."""

    # -- k nearest (HashIndex port) -----------------------------------------------------------

    def search(
        self,
        hashes: Sequence[HashValue],
        k: int,
        max_distance: int | None = None,
        part_hashes: Sequence[HashValue] = (),
        part_k: int = 0,
    ) -> list[IndexHit]:
        queries = self._queries(hashes)
        if k <= 0 or not len(queries):
            return []
        with self._lock:
            size = self._size
            if size == 0:
                return []
            found, positions = faiss_one_thread().knn_hamming(queries, self._codes[:size], min(k, size))
            best, distances = _best_by_position(found.ravel(), positions.ravel(), k)
            if part_hashes and part_k > 0 and self.parts:
                # Part after part, each adds its part_k nearest not found before it.
                packed = self._pack(list(dict.fromkeys(h.hex for h in part_hashes)), self.parts[0].bits)
                for part_codes in self._part_codes:
                    more = _nearest_on(packed, part_codes[:size], part_k + len(best))
                    more = more[~np.isin(more, best)][:part_k]
                    best = np.concatenate([best, more])
                    distances = np.concatenate([distances, _distances(self._codes, more, queries)])
            keys = self._keys[best].tolist()
        return self._hits(keys, distances.tolist(), max_distance)

    # -- radius search ------------------------------------------------------------------------

    def within(self, hashes: Sequence[HashValue], radius: int) -> list[IndexHit]:
        """Every hash within `radius` bits of any of `hashes` (each at its best distance),
        nearest first: exact, through the substring tables (built on first use)."""
        self.check_radius(radius)
        queries = self._queries(hashes)
        if not len(queries):
            return []
        with self._lock:
            tables, keys = self._tables_for(radius, 1)
            if tables is None:
                return []
            # A code near several queries, or found through several substrings, comes back more
            # than once: measuring every copy costs less than deduplicating thousands first.
            candidates = tables.candidates(queries, radius)
            distances = _distances(self._codes, candidates, queries)
            inside = distances <= radius
            positions, distances = _best_by_position(distances[inside], candidates[inside])
            found_keys = keys[positions].tolist()
        return self._hits(found_keys, distances.tolist(), None)

    def pairs_within(
        self, queries: np.ndarray, radius: int, parts: int = 1, nearest: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`within` for many query hashes at once: every (query row, key, distance) where the
        indexed hash is within `radius` bits of the query hash (`queries`: (n, bits / 8) packed
        bytes) on some part, in chunks of query rows, each pair once, `distance` over the whole
        hash (as `search` reports it); with `nearest`, only that many per query row, the
        nearest (ties by position). A query that is in the index finds itself. The catalog-wide
        self-join of the duplicate report; iterating it holds the index's codes as they were
        when it started, and a few million candidate pairs at a time."""
        if queries.ndim != 2 or queries.shape[1] != self._width:
            raise ValueError(f"queries must be (n, {self._width}) packed {self.bits}-bit hashes")
        with self._lock:
            tables, keys = self._tables_for(radius, parts)
        if tables is None:
            return
        packed = np.ascontiguousarray(queries, dtype=np.uint8)
        for rows, positions, distances in tables.pairs(packed, radius, parts, nearest):
            yield rows, keys[positions], distances

    # -- internals ---------------------------------------------------------------------------

    def _queries(self, hashes: Sequence[HashValue]) -> np.ndarray:
        """The distinct query hashes, packed (a symmetric picture mirrors to itself; np.unique
        over rows costs more than the search of a small catalog). Refused while loading."""
        if not self._ready:
            raise IndexUnavailable("the index is still loading its records: try again in a few seconds")
        return self._pack(list(dict.fromkeys(h.hex for h in hashes)))

    def check_radius(self, radius: int, parts: int = 1) -> None:
        """Raise ValueError unless `within` and `pairs_within` answer this radius and split
        exactly: up to MAX_FLIPS bits per substring (23 bits of 128 as a whole, 11 per half)."""
        substrings = self.bits // SUBSTRING_BITS
        if parts < 1 or substrings % parts:
            raise ValueError(f"a {self.bits}-bit hash does not split into {parts} parts of whole substrings")
        if not 0 <= radius // (substrings // parts) <= MAX_FLIPS:
            limit = (MAX_FLIPS + 1) * (substrings // parts) - 1
            raise ValueError(f"radius must be between 0 and {limit}, not {radius}")

    def _tables_for(self, radius: int, parts: int) -> tuple[_RadiusTables | None, np.ndarray]:
        """The substring tables (built on first use) and the keys by position, under the lock;
        no tables for an empty index."""
        self.check_radius(radius, parts)
        size = self._size
        if size == 0:
            return None, self._keys[:0]
        if self._tables is None:
            self._tables = _RadiusTables(self._codes[:size])
        return self._tables, self._keys[:size]

    def _hits(self, keys: list[int], distances: list[int], max_distance: int | None) -> list[IndexHit]:
        names = self._names_for(keys)
        return [
            IndexHit(entity_id=names[key], distance=int(d))
            for key, d in zip(keys, distances, strict=True)
            if key in names and (max_distance is None or d <= max_distance)
        ]

    def _names_for(self, keys: list[int]) -> dict[int, str]:
        if self._resolve_ids is None:
            return {key: self._names[key] for key in keys if key in self._names}
        return self._resolve_ids(keys)


_THREAD = threading.local()


def faiss_one_thread() -> ModuleType:
    """faiss, on first search (the SQLite store imports this module for `entity_key` alone),
    held to one OpenMP thread in the calling thread: a query is a few milliseconds of one core,
    and more threads only contend with the server's. OpenMP keeps that setting per thread, so
    each thread that searches sets it once (set in the first one alone, the server's other
    threads searched with a thread per core: two searches at once took 10x as long)."""
    faiss = _faiss_module()
    if not getattr(_THREAD, "one_omp_thread", False):
        faiss.omp_set_num_threads(1)
        _THREAD.one_omp_thread = True
    return faiss


@cache
def _faiss_module() -> ModuleType:
    import faiss

    return faiss


def _nearest_on(queries: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k codes nearest to any of `queries` (one part's copy and hashes)."""
    found, positions = faiss_one_thread().knn_hamming(queries, codes, min(k, len(codes)))
    return _best_by_position(found.ravel(), positions.ravel(), k)[0]


def _best_by_position(
    distances: np.ndarray, positions: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k (default: all) nearest distinct positions of several queries' hits, each at its
    best distance, nearest first, ties by position. Exact for k-NN lists: a position in the
    merged top k is in the top k of the query it is nearest to."""
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


def _flips_per_table(radius: int, tables: int) -> list[int]:
    """How many flipped bits to probe each of `tables` substring tables at, so that every code
    within `radius` of a query is found; -1: that table need not be probed.

    With radius = a * m + b over m substrings (0 <= b < m), a code within the radius is within
    a bits of the query on one of the first b + 1 substrings or within a - 1 on one of the
    others (else its distance would be at least (b + 1)(a + 1) + (m - b - 1) a = r + 1):
    Norouzi et al.'s tighter pigeonhole, which probes radius 8 over 8 tables at 24 values
    instead of 136."""
    most, first_tables = divmod(radius, tables)
    return [most if table <= first_tables else most - 1 for table in range(tables)]


def concatenated_runs(low: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The offsets of the runs [low, low + count) concatenated, without a loop: element g of run
    j is low_j + (g - where run j begins in the concatenation)."""
    begins = np.cumsum(counts) - counts
    return np.repeat(low - begins, counts) + np.arange(int(counts.sum()))


@cache
def _flip_masks(flips: int) -> np.ndarray:
    """Every 16-bit mask with at most `flips` bits set."""
    masks = [0]
    for count in range(1, flips + 1):
        masks += [sum(1 << bit for bit in bits) for bits in itertools.combinations(range(SUBSTRING_BITS), count)]
    return np.array(masks, dtype=np.int64)


# Candidate pairs a table's probes hold in memory at once (each costs ~40 bytes while it is
# checked, in each of the threads): bounds `pairs`' memory whatever the catalog's size.
PAIRS_PER_CHUNK = 2_000_000


class _RadiusTables:
    """One table per 16-bit substring of the codes: the row positions sorted by that substring's
    value (`order`) and where each value's run starts (`starts`, 65,537 offsets); and the codes
    as 64-bit words, to compare the candidates the tables find."""

    def __init__(self, codes: np.ndarray) -> None:
        codes = np.ascontiguousarray(codes)
        substrings = codes.view(">u2")  # (n, width / 2): big-endian 16-bit words, the hex order
        self.words = codes.view("<u8")  # (n, width / 8): only compared by XOR and popcount
        self.size = len(codes)
        self.order: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        for column in range(substrings.shape[1]):
            values = substrings[:, column]
            order = np.argsort(values, kind="stable").astype(np.uint32)  # 4 bytes a record a table
            self.order.append(order)
            self.starts.append(np.searchsorted(values[order], np.arange((1 << SUBSTRING_BITS) + 1)).astype(np.int64))
        # For many queries (a self-join): each table's part of the codes, in the table's order, so
        # a probe's candidates are compared from one contiguous run (8 bytes a record a table).
        self._in_order: dict[tuple[int, int], np.ndarray] = {}

    def candidates(self, queries: np.ndarray, radius: int) -> np.ndarray:
        """Positions of every code that may be within `radius` of a query (the whole hash); a
        position may repeat (the caller measures them all)."""
        words = queries.view(">u2").astype(np.int64)  # (q, substrings)
        found = []
        flips_of = _flips_per_table(radius, len(self.order))
        for column, (order, starts) in enumerate(zip(self.order, self.starts, strict=True)):
            if flips_of[column] < 0:
                continue
            probes = (words[:, column, None] ^ _flip_masks(flips_of[column])[None, :]).ravel()
            low = starts[probes]
            counts = starts[probes + 1] - low
            if counts.any():
                found.append(order[concatenated_runs(low, counts)])
        return np.concatenate(found) if found else np.empty(0, dtype=np.uint32)

    def pairs(
        self, queries: np.ndarray, radius: int, parts: int, nearest: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(query rows, positions, distances) of every code within `radius` of a query on some
        part, in chunks of query rows, each pair once, at its whole distance; with `nearest`,
        only that many per query row (the nearest, ties by position). Each of the part's s
        tables is probed at every value as close as `_flips_per_table` (r over s) says, so every
        code within r on that part is found. Each distinct value of
        a part is probed once, however many query rows share it. Memory stays within a few
        PAIRS_PER_CHUNK candidates however the codes cluster."""
        columns = len(self.order) // parts
        words = self.words.shape[1] // parts
        query_words = queries.view("<u8")
        found = _Found(nearest)
        flips_of = _flips_per_table(radius, columns)
        # Each table is probed on its own: numpy leaves the GIL for its loops, so threads share
        # the cores (the batch tools' self-join; a server's `within` is one small job). A part at
        # a time, each table's pairs merged as it finishes: memory holds one part's values and
        # a thread's worth of results, not every table's at once.
        threads = min(columns, os.cpu_count() or 1) if len(queries) > _FEW_QUERIES else 1
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pairs") as pool:
            for part in range(parts):
                span = range(part * words, (part + 1) * words)
                distinct = distinct_rows(query_words[:, span.start : span.stop])
                many = len(distinct[0]) > _FEW_QUERIES
                # Handed over as a set nothing else holds: as_completed lets go of each finished
                # table's result once it is merged.
                for done in as_completed({
                    pool.submit(
                        self._column_pairs, query_words, radius, flips_of[column - part * columns], nearest, distinct,
                        column, column - part * columns, span,
                        [self._word_in_order(column, w) for w in span] if many else None,
                    )
                    for column in range(part * columns, (part + 1) * columns)
                    if flips_of[column - part * columns] >= 0
                }):  # fmt: skip
                    found.add(*done.result())
                del distinct
        rows, positions, distances = found.result()
        row_starts = np.searchsorted(rows, np.arange(0, len(queries) + PAIRS_PER_CHUNK, PAIRS_PER_CHUNK))
        for low, high in zip(row_starts[:-1].tolist(), row_starts[1:].tolist(), strict=True):
            if high > low:
                yield rows[low:high], positions[low:high], distances[low:high]

    def _column_pairs(
        self, query_words: np.ndarray, radius: int, flips: int, nearest: int | None,
        distinct: tuple[np.ndarray, np.ndarray, np.ndarray], column: int, substring: int, span: range,
        in_order: list[np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The pairs one table finds: each distinct value of the table's part (`distinct`, from
        distinct_rows) probed at every mask of `flips` bits, its candidates compared on the part."""
        values, rows_by_value, value_starts = distinct
        substrings = np.ascontiguousarray(values).view(">u2")[:, substring].astype(np.int64)
        value_words = [np.ascontiguousarray(values[:, i]) for i in range(len(span))]
        order = self.order[column]
        found = _Found(nearest)
        # Each probe finds size / 65,536 codes when they spread evenly: chunks of probes sized
        # for that, and _probe splits a chunk further where they do not.
        step = max(1, int(PAIRS_PER_CHUNK / max(1.0, self.size / (1 << SUBSTRING_BITS))))
        for mask in _flip_masks(flips):
            for first in range(0, len(values), step):
                for begin, counts, offsets in self._probe(substrings[first : first + step] ^ mask, column):
                    # The part's distance, candidate by candidate, a 64-bit word at a time.
                    close: np.ndarray | None = None
                    for i, word in enumerate(span):
                        mine = np.repeat(value_words[i][first + begin : first + begin + len(counts)], counts)
                        theirs = in_order[i][offsets] if in_order is not None else self.words[order[offsets], word]
                        bits = np.bitwise_count(np.bitwise_xor(mine, theirs, out=mine))
                        close = bits if close is None else close + bits
                    hit = np.flatnonzero(close <= radius)  # type: ignore[operator]
                    if not len(hit):
                        continue
                    value = first + begin + np.searchsorted(np.cumsum(counts), hit, side="right")
                    rows, position = _expand_rows(rows_by_value, value_starts, value, order[offsets[hit]])
                    distance = np.bitwise_count(query_words[rows] ^ self.words[position]).sum(axis=1)
                    found.add(rows, position, distance.astype(np.int64))
        return found.result()

    def _word_in_order(self, column: int, word: int) -> np.ndarray:
        """One 64-bit word of every code, in table `column`'s order (built on first use)."""
        key = (column, word)
        if key not in self._in_order:
            self._in_order[key] = np.ascontiguousarray(self.words[self.order[column], word])
        return self._in_order[key]

    def _probe(self, probes: np.ndarray, column: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first probe, candidates of each probe, their offsets in the table's order) for every
        code whose substring `column` has a probe's value; in batches of consecutive probes of
        about PAIRS_PER_CHUNK candidates (a batch holds at least one probe, so one value shared
        by more codes than that is one batch)."""
        starts = self.starts[column]
        low = starts[probes]
        counts = starts[probes + 1] - low
        ends = np.cumsum(counts)
        begin = 0
        while begin < len(probes):
            done = int(ends[begin - 1]) if begin else 0
            end = max(begin + 1, int(np.searchsorted(ends, done + PAIRS_PER_CHUNK, side="right")))
            batch_counts = counts[begin:end]
            total = int(ends[end - 1]) - done
            if total:
                yield begin, batch_counts, concatenated_runs(low[begin:end], batch_counts)
            begin = end


_FEW_QUERIES = 1000  # below this, candidates are compared where they lie (no copies in table order)


def distinct_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of (n, w) uint64 `words`, the row numbers grouped by distinct row, and
    where each group starts: distinct row j is held by rows_by_value[starts[j]:starts[j + 1]]."""
    order = np.lexsort(words.T[::-1]) if words.shape[1] > 1 else np.argsort(words[:, 0], kind="stable")
    ordered = words[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    return ordered[starts], order, np.r_[starts, len(order)]


def _expand_rows(
    rows_by_value: np.ndarray, value_starts: np.ndarray, values: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(query row, position) for every query row holding each value found at a position."""
    low, high = value_starts[values], value_starts[values + 1]
    counts = high - low
    return rows_by_value[concatenated_runs(low, counts)], np.repeat(positions, counts)


class _Found:
    """Pairs found for a chunk of query rows: duplicates (the same pair through another
    substring, mask or part) dropped, and only the `nearest` per row kept, whenever they
    outgrow PAIRS_PER_CHUNK, so a dense cluster of codes cannot hold every pair at once."""

    def __init__(self, nearest: int | None) -> None:
        self.nearest = nearest
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0

    def add(self, rows: np.ndarray, positions: np.ndarray, distances: np.ndarray) -> None:
        if len(rows):
            self.parts.append((rows, positions, distances))
            self.size += len(rows)
            if self.size > PAIRS_PER_CHUNK:
                self.parts = [self.result()]
                self.size = len(self.parts[0][0])

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        rows, positions, distances = (np.concatenate(column) for column in zip(*self.parts, strict=True))
        order = np.lexsort((positions, distances, rows))  # by row, then nearest, then position
        rows, positions, distances = rows[order], positions[order], distances[order]
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (positions[1:] != positions[:-1])
        rows, positions, distances = rows[keep], positions[keep], distances[keep]
        if self.nearest is not None:
            row_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            rank = np.arange(len(rows)) - np.repeat(row_starts, np.diff(np.r_[row_starts, len(rows)]))
            keep = rank < self.nearest
            rows, positions, distances = rows[keep], positions[keep], distances[keep]
        return rows, positions, distances
