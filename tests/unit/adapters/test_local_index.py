"""The in-process index against a brute-force oracle, plus its update and removal rules."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from dupcheck.adapters.local_index import LocalHashIndex, entity_key
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import HashPart, HashRecord, HashValue


def _record(entity_id: str, hex_hash: str) -> HashRecord:
    return HashRecord(entity_id, "sku", "u", HashValue.from_hex(hex_hash), "test-v1")


def _random_hexes(rng: np.random.Generator, n: int, bits: int) -> list[str]:
    return [rng.bytes(bits // 8).hex() for _ in range(n)]


@pytest.mark.parametrize("bits", [64, 256])
def test_search_matches_brute_force(bits: int) -> None:
    rng = np.random.default_rng(bits)
    hexes = _random_hexes(rng, 3000, bits)
    index = LocalHashIndex(bits)
    index.upsert_many(_record(f"e{i}", h) for i, h in enumerate(hexes))
    values = [HashValue.from_hex(h) for h in hexes]
    for _ in range(20):
        query = HashValue.from_hex(_random_hexes(rng, 1, bits)[0])
        expected = sorted((query - v, i) for i, v in enumerate(values))[:10]
        hits = index.search([query], 10)
        assert [h.distance for h in hits] == [d for d, _ in expected]
        assert {h.entity_id for h in hits if h.distance < expected[-1][0]} == {
            f"e{i}" for d, i in expected if d < expected[-1][0]
        }


def test_near_duplicate_ranks_first_with_exact_distance() -> None:
    index = LocalHashIndex(64)
    index.upsert_many(_record(f"e{i}", f"{i:016x}") for i in range(1, 500))
    index.upsert(_record("target", "ffffffffffff0000"))
    hits = index.search([HashValue.from_hex("ffffffffffff0007")], 3)
    assert hits[0].entity_id == "target"
    assert hits[0].distance == 3


def test_several_query_hashes_keep_each_records_smallest_distance() -> None:
    index = LocalHashIndex(64)
    index.upsert(_record("a", "00000000000000ff"))
    index.upsert(_record("b", "ff00000000000000"))
    queries = [HashValue.from_hex("00000000000000ff"), HashValue.from_hex("ff00000000000001")]
    hits = {h.entity_id: h.distance for h in index.search(queries, 5)}
    assert hits == {"a": 0, "b": 1}


def test_upsert_replaces_and_remove_deletes() -> None:
    index = LocalHashIndex(64)
    index.upsert(_record("a", "0000000000000000"))
    index.upsert(_record("b", "ffffffffffffffff"))
    index.upsert(_record("a", "ffffffffffffff00"))
    assert index.count() == 2
    hits = index.search([HashValue.from_hex("ffffffffffffffff")], 2)
    assert [(h.entity_id, h.distance) for h in hits] == [("b", 0), ("a", 8)]
    index.remove("b")
    index.remove("b")  # replaying a removal is harmless
    index.remove("never-there")
    assert index.count() == 1
    assert [h.entity_id for h in index.search([HashValue.from_hex("ff" * 8)], 5)] == ["a"]


def test_last_write_wins_within_one_batch() -> None:
    index = LocalHashIndex(64)
    index.upsert_many([_record("a", "00" * 8), _record("a", "ff" * 8)])
    assert index.count() == 1
    assert index.search([HashValue.from_hex("ff" * 8)], 1)[0].distance == 0


def test_max_distance_filters_and_k_limits() -> None:
    index = LocalHashIndex(64)
    index.upsert_many(_record(f"e{d}", f"{(1 << d) - 1:016x}") for d in range(0, 40))
    hits = index.search([HashValue.from_hex("00" * 8)], 100, max_distance=5)
    assert [h.distance for h in hits] == [0, 1, 2, 3, 4, 5]
    assert len(index.search([HashValue.from_hex("00" * 8)], 3)) == 3
    assert index.search([HashValue.from_hex("00" * 8)], 0) == []


def test_empty_index_and_wrong_sizes() -> None:
    index = LocalHashIndex(64)
    assert index.search([HashValue.from_hex("00" * 8)], 5) == []
    with pytest.raises(ValueError, match="64 bits"):
        index.upsert(_record("a", "00" * 4))
    with pytest.raises(ValueError, match="multiple of 64"):
        LocalHashIndex(48)


def test_ids_resolve_through_the_store_when_given() -> None:
    names = {entity_key("alpha"): "alpha"}
    index = LocalHashIndex(64, resolve_ids=lambda keys: {k: names[k] for k in keys if k in names})
    index.load([(entity_key("alpha"), "00" * 8), (entity_key("ghost"), "01" + "00" * 7)])
    assert index.count() == 2
    hits = index.search([HashValue.from_hex("00" * 8)], 5)
    assert [h.entity_id for h in hits] == ["alpha"]  # a key the store no longer knows is dropped


def test_grows_past_its_initial_capacity() -> None:
    index = LocalHashIndex(64, capacity=4)
    index.upsert_many(_record(f"e{i}", f"{i:016x}") for i in range(100))
    index.upsert(_record("late", f"{12345:016x}"))
    assert index.count() == 101
    assert index.search([HashValue.from_hex(f"{12345:016x}")], 1)[0].entity_id == "late"


def _flipped(code: bytes, count: int, rng: np.random.Generator) -> str:
    bits = np.unpackbits(np.frombuffer(code, dtype=np.uint8))
    bits[rng.choice(bits.size, count, replace=False)] ^= 1
    return np.packbits(bits).tobytes().hex()


def test_several_query_hashes_give_the_k_nearest_by_best_distance() -> None:
    rng = np.random.default_rng(11)
    hexes = _random_hexes(rng, 2000, 128)
    queries = [HashValue.from_hex(h) for h in _random_hexes(rng, 4, 128)]
    # Near neighbours of different query hashes, at distances 0-19.
    hexes += [_flipped(queries[i % 4].data, i % 20, rng) for i in range(60)]
    index = LocalHashIndex(128)
    index.upsert_many(_record(f"e{i}", h) for i, h in enumerate(hexes))
    best = {f"e{i}": min(q - HashValue.from_hex(h) for q in queries) for i, h in enumerate(hexes)}
    expected = sorted(best.items(), key=lambda item: (item[1], item[0]))[:32]

    hits = index.search([*queries, queries[0]], 32)  # a repeated hash (a symmetric picture) changes nothing

    assert [h.distance for h in hits] == [d for _, d in expected]
    boundary = expected[-1][1]
    assert {h.entity_id for h in hits if h.distance < boundary} == {e for e, d in expected if d < boundary}
    assert all(best[h.entity_id] == h.distance for h in hits)
    assert [h.distance for h in index.search(queries, 32, max_distance=5)] == [d for _, d in expected if d <= 5]


@pytest.mark.parametrize("radius", [0, 1, 7, 8, 12, 15, 16, 23])  # every remainder shape of radius = 8a + b
def test_within_finds_exactly_the_hashes_inside_the_radius(radius: int) -> None:
    rng = np.random.default_rng(radius)
    queries = [HashValue.from_hex(h) for h in _random_hexes(rng, 3, 128)]
    hexes = _random_hexes(rng, 5000, 128) + [_flipped(queries[i % 3].data, i % 30, rng) for i in range(90)]
    index = LocalHashIndex(128)
    index.upsert_many(_record(f"e{i}", h) for i, h in enumerate(hexes))
    best = {f"e{i}": min(q - HashValue.from_hex(h) for q in queries) for i, h in enumerate(hexes)}

    hits = index.within(queries, radius)

    assert {h.entity_id: h.distance for h in hits} == {e: d for e, d in best.items() if d <= radius}
    assert len(hits) == len({h.entity_id for h in hits})  # each once, though found through several substrings
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def _brute_pairs(codes: np.ndarray, queries: np.ndarray, radius: int) -> dict[tuple[int, int], int]:
    """(query row, code row) -> whole distance, for pairs with a half within the radius."""
    xor = queries[:, None, :] ^ codes[None, :, :]
    halves = np.stack([np.bitwise_count(xor[..., :8]).sum(-1), np.bitwise_count(xor[..., 8:]).sum(-1)], -1)
    rows, cols = np.nonzero(halves.min(-1) <= radius)
    whole = np.bitwise_count(xor).sum(-1)
    return {(int(r), int(c)): int(whole[r, c]) for r, c in zip(rows, cols, strict=True)}


# Every remainder shape of radius = 4a + b over a half's 4 substrings (the tighter pigeonhole
# probes the first b + 1 tables at a flips, the others at a - 1), and both ways of comparing.
@pytest.mark.parametrize(
    ("radius", "in_table_order"), [(0, True), (3, False), (4, True), (7, True), (7, False), (9, False), (11, True)]
)
def test_pairs_within_is_within_for_every_query_at_once(
    monkeypatch: pytest.MonkeyPatch, radius: int, in_table_order: bool
) -> None:
    from dupcheck.adapters import local_index

    rng = np.random.default_rng(5)
    # A clustered catalog: groups of near-identical codes (and exact repeats: the same picture
    # uploaded many times), among random ones.
    centres = rng.integers(0, 256, (20, 16), dtype=np.uint8)
    members = []
    for i in range(600):
        code = centres[i % 20].copy()
        for bit in rng.choice(128, size=int(rng.integers(0, 10)), replace=False):
            code[bit // 8] ^= 1 << (bit % 8)
        members.append(code)
    random_codes = rng.integers(0, 256, (2000, 16), dtype=np.uint8)
    codes = np.concatenate([random_codes, np.stack(members), np.repeat(centres[:1], 50, 0)])
    queries = np.concatenate([codes[::7], rng.integers(0, 256, (50, 16), dtype=np.uint8)])
    index = LocalHashIndex(128)
    index.load_codes(np.arange(len(codes)) * 10, codes)  # keys need not be positions
    # Small chunks: the splitting and merging of candidates is what is under test.
    monkeypatch.setattr(local_index, "PAIRS_PER_CHUNK", 700)
    monkeypatch.setattr(local_index, "_FEW_QUERIES", 0 if in_table_order else 10**9)  # both ways of comparing

    found: dict[tuple[int, int], int] = {}
    for rows, keys, distances in index.pairs_within(queries, radius, parts=2):
        for row, key, distance in zip(rows.tolist(), keys.tolist(), distances.tolist(), strict=True):
            assert (row, key // 10) not in found  # each pair once
            found[(row, key // 10)] = distance

    assert found == _brute_pairs(codes, queries, radius)

    capped: dict[int, list[tuple[int, int]]] = {}
    for rows, keys, distances in index.pairs_within(queries, radius, parts=2, nearest=3):
        for row, key, distance in zip(rows.tolist(), keys.tolist(), distances.tolist(), strict=True):
            capped.setdefault(row, []).append((distance, key // 10))
    expected: dict[int, list[tuple[int, int]]] = {}
    for (row, col), distance in sorted(found.items(), key=lambda item: (item[0][0], item[1], item[0][1])):
        expected.setdefault(row, []).append((distance, col))
    assert capped == {row: pairs[:3] for row, pairs in expected.items()}  # the nearest, ties by position


def test_pairs_within_refuses_queries_of_another_width() -> None:
    index = LocalHashIndex(128)
    index.load_codes(np.arange(1), np.zeros((1, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="queries"):
        next(index.pairs_within(np.zeros((1, 8), dtype=np.uint8), 3))
    with pytest.raises(ValueError, match="parts"):
        next(index.pairs_within(np.zeros((1, 16), dtype=np.uint8), 3, parts=3))


def test_within_follows_writes() -> None:
    index = LocalHashIndex(128)
    base = "00" * 16
    index.upsert_many([_record("a", base), _record("b", "ff" * 16)])
    assert [h.entity_id for h in index.within([HashValue.from_hex(base)], 3)] == ["a"]
    index.upsert(_record("b", "00" * 15 + "03"))  # moves inside the radius
    index.remove("a")
    assert [(h.entity_id, h.distance) for h in index.within([HashValue.from_hex(base)], 3)] == [("b", 2)]


def test_within_refuses_a_radius_the_tables_cannot_answer_exactly() -> None:
    index = LocalHashIndex(128)
    with pytest.raises(ValueError, match="radius"):
        index.within([HashValue.from_hex("00" * 16)], 24)


def test_an_index_expecting_a_load_refuses_to_search_until_loaded() -> None:
    index = LocalHashIndex(64, resolve_ids=lambda keys: {k: f"E{k}" for k in keys})
    index.expect_load()
    assert not index.ready
    with pytest.raises(IndexUnavailable):
        index.search([HashValue.from_hex("00" * 8)], 5)
    with pytest.raises(IndexUnavailable):
        index.within([HashValue.from_hex("00" * 8)], 4)
    index.load([(7, "00" * 8)], version=3)
    assert index.ready and index.source_version == 3
    assert [hit.entity_id for hit in index.search([HashValue.from_hex("00" * 8)], 5)] == ["E7"]


HALVES = (HashPart("whole", 0, 64), HashPart("trimmed", 64, 64))


def test_each_part_adds_its_nearest_not_found_before_at_their_whole_distance() -> None:
    rng = np.random.default_rng(7)
    hexes = _random_hexes(rng, 2000, 128)
    hexes[9] = hexes[9][:16] + hexes[8][:16]  # e9's trimmed half is e8's whole half
    index = LocalHashIndex(128, parts=HALVES)
    index.upsert_many(_record(f"e{i}", h) for i, h in enumerate(hexes))
    # Updates and removals keep each part where its record is (e1999 moves into e7's place).
    index.upsert(_record("e5", hexes[6]))
    index.remove("e7")
    values = {f"e{i}": HashValue.from_hex(h) for i, h in enumerate(hexes) if i != 7}
    values["e5"] = HashValue.from_hex(hexes[6])
    query = HashValue.from_hex(_random_hexes(rng, 1, 128)[0])
    part = HashValue.from_hex(hexes[6][:16])  # e5 and e6's whole half, exactly
    other = HashValue.from_hex(hexes[8][:16])  # e8's whole half and e9's trimmed one
    last = HashValue.from_hex(hexes[1999][16:])  # e1999's trimmed half, now at another position
    hits = index.search([query], 10, part_hashes=[part, other, last], part_k=3)
    whole, by_whole_half, by_trimmed_half = hits[:10], hits[10:13], hits[13:]
    assert [h.distance for h in whole] == sorted(query - v for v in values.values())[:10]
    assert {h.entity_id for h in by_whole_half} == {"e5", "e6", "e8"}  # at distance 0 on the whole half
    # The trimmed half adds its nearest not found before: e9 and e1999 at 0, then the next.
    found = {h.entity_id for h in whole + by_whole_half}
    on_trimmed = {e: min(v.parts(2)[1] - h for h in (part, other, last)) for e, v in values.items() if e not in found}
    assert [h.entity_id for h in by_trimmed_half][:2] in (["e9", "e1999"], ["e1999", "e9"])
    assert [on_trimmed[h.entity_id] for h in by_trimmed_half] == sorted(on_trimmed.values())[:3]
    assert len({h.entity_id for h in hits}) == len(hits) == 16
    assert all(h.distance == query - values[h.entity_id] for h in hits)


def test_without_parts_a_search_answers_the_whole_hash_alone_and_parts_are_checked() -> None:
    index = LocalHashIndex(128)
    index.upsert_many(_record(f"e{i}", f"{i:032x}") for i in range(50))
    query = [HashValue.from_hex("00" * 16)]
    part = [HashValue.from_hex("00" * 8)]
    assert index.search(query, 5, part_hashes=part, part_k=5) == index.search(query, 5)
    for wrong in ((HashPart("word", 32, 32),), (HashPart("whole", 0, 64), HashPart("whole", 64, 64)),
                  (HashPart("past the hash", 64, 128),)):  # fmt: skip
        with pytest.raises(ValueError):
            LocalHashIndex(128, parts=wrong)
    halves = LocalHashIndex(128, parts=HALVES)
    halves.upsert(_record("a", "00" * 16))
    with pytest.raises(ValueError, match="64 bits"):
        halves.search(query, 5, part_hashes=query, part_k=1)  # 128 bits where the parts have 64


def test_a_followed_store_fills_every_part_from_its_load_and_its_change_log(tmp_path: Path) -> None:
    """The load (`index_codes`) and the follower (`catch_up`) write codes the way upserts do."""
    store = SqliteRecordStore(tmp_path / "records.sqlite3")
    # Whole halves of few bits, trimmed halves of many: a trimmed half asked about is far from
    # every whole half, so only the trimmed part's search adds its record.
    store.put_many([_record(f"e{i}", f"{i:016x}{~i & (2**64 - 1):016x}") for i in range(20)])
    index = LocalHashIndex(128, parts=HALVES, resolve_ids=store.ids_for_keys)
    index.follow(store, {"test-v1"})
    index.catch_up()  # loads
    store.put_many([_record("late", f"{20:016x}" + "ab" * 8)])
    assert index.catch_up() == 1
    query = [HashValue.from_hex("00" * 8 + "ff" * 8)]  # e0's hash: e0 is the whole hash's nearest

    def by_trimmed_half(part_hash: str) -> str:
        """What the trimmed half's search adds (after the whole hash's and the whole half's one)."""
        hits = index.search(query, 1, part_hashes=[HashValue.from_hex(part_hash)], part_k=1)
        assert len(hits) == 3
        return hits[-1].entity_id

    assert by_trimmed_half(f"{~7 & (2**64 - 1):016x}") == "e7"  # loaded
    assert by_trimmed_half("ab" * 8) == "late"  # followed


def test_a_bulk_load_keeps_every_distinct_key_and_the_last_code_of_a_repeated_one() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (500, 16), dtype=np.uint8)
    names = {k: f"E{k}" for k in range(600)}
    index = LocalHashIndex(128, parts=HALVES, resolve_ids=lambda keys: {k: names[k] for k in keys if k in names})
    index.load_codes(np.arange(500), codes)
    assert index.count() == 500
    # The parts' copies are the loaded codes' too: a query on a code's half finds it.
    for half in (codes[123, :8], codes[321, 8:]):
        hits = index.search([HashValue.from_hex("00" * 16)], 1, part_hashes=[HashValue(half.tobytes())], part_k=1)
        assert {"E123", "E321"} & {hit.entity_id for hit in hits}
    repeated = np.array([10, 11, 10, 12, 11])
    index.load_codes(repeated, codes[:5])  # a load replaces the contents; the later code of a key wins
    assert index.count() == 3
    for key, row in ((10, 2), (11, 4), (12, 3)):
        hit = index.search([HashValue(codes[row].tobytes())], 1)[0]
        assert (hit.entity_id, hit.distance) == (f"E{key}", 0)


def test_every_thread_that_searches_runs_faiss_on_one_openmp_thread() -> None:
    """OpenMP keeps its thread count per thread: the server's request threads each search with
    one, not only the thread that searched first (two searches at once then contended)."""
    import faiss

    index = LocalHashIndex(128, parts=HALVES)
    index.upsert_many(_record(f"e{i}", f"{i:032x}") for i in range(100))
    index.search([HashValue.from_hex("00" * 16)], 5)  # the first search, in this thread
    seen: list[int] = []

    def search_in_a_new_thread() -> None:
        faiss.omp_set_num_threads(3)  # whatever the thread starts with
        index.search([HashValue.from_hex("00" * 16)], 5, part_hashes=[HashValue.from_hex("00" * 8)], part_k=2)
        seen.append(faiss.omp_get_max_threads())

    for _ in range(2):
        thread = threading.Thread(target=search_in_a_new_thread)
        thread.start()
        thread.join()
    assert seen == [1, 1]
