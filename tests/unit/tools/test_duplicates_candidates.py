"""Which candidate pairs the duplicate report verifies: the radius, and the far band beyond it
(dupcheck_tools.duplicates: FAR_RADIUS, FAR_WHOLE_MAX, FAR_PER_RECORD)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dupcheck_tools.duplicates as engine
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue
from dupcheck_tools.duplicates.workfile import WorkFile

HALF = 64
rng = np.random.default_rng(15)
BASE = rng.integers(0, 2, 128).astype(bool)
_next_bit = {0: 0, 1: 0}  # each record flips bits no other record flips: distances to BASE add up


def _flipped(first_half: int, second_half: int) -> np.ndarray:
    """BASE with that many bits flipped in each half, bits no other record flips."""
    bits = BASE.copy()
    for half, count in ((0, first_half), (1, second_half)):
        start = _next_bit[half]
        bits[half * HALF + start : half * HALF + start + count] ^= True
        _next_bit[half] = start + count
    return bits


def _work(tmp_path: Path, hashes: dict[str, np.ndarray], mirrored: dict[str, np.ndarray] | None = None) -> WorkFile:
    """A work file of records with these hashes; each query hash is the stored one, except the
    mirrored ones given."""
    work = WorkFile(tmp_path / "work.sqlite3")
    work.start({"source": "test"})
    names = list(hashes)
    stored = np.packbits(np.stack([hashes[n] for n in names]), axis=1)
    queries = np.repeat(stored[:, None], 3, axis=1)
    for i, name in enumerate(names):
        if mirrored and name in mirrored:
            queries[i, 0] = np.packbits(mirrored[name])
    records = [
        HashRecord(name, name, f"https://cdn.shop.example/{name}.jpg", HashValue(stored[i].tobytes()),
                   "dualphash128-v4", updated_at=f"2026-01-{i + 1:02d}T00:00:00.000Z")
        for i, name in enumerate(names)
    ]  # fmt: skip
    work.add_records(records, queries)
    return work


def _candidates_of(work: WorkFile, far_radius: int) -> dict[str, list[tuple[str, int]]]:
    owners, candidates, distances = engine._candidates(
        work, get_pipeline(), engine.DEFAULT_RADIUS, engine._Bars(False, None), far_radius
    )
    names = {p: listing.entity_id for p, listing in work.listings(range(work.count())).items()}
    found: dict[str, list[tuple[str, int]]] = {}
    for owner, candidate, distance in zip(owners.tolist(), candidates.tolist(), distances.tolist(), strict=True):
        found.setdefault(names[owner], []).append((names[candidate], distance))
    return found


@pytest.fixture
def catalog(tmp_path: Path) -> WorkFile:
    _next_bit.update({0: 0, 1: 0})
    return _work(tmp_path, {
        "original": BASE.copy(),
        "close": _flipped(4, 0),  # within the radius
        "large-crop": _flipped(10, 10),  # 10 bits on each half: beyond the radius, 20 in all
        "second-far": _flipped(8, 14),  # 8 and 14 (22 in all): in the far band, but not the nearest
        "chance": _flipped(10, 26),  # 10 on one half, the other about as far as an unrelated picture's
        "too-far": _flipped(12, 12),  # beyond the far band on both halves
    })  # fmt: skip


def test_without_the_far_band_candidates_are_within_the_radius(catalog: WorkFile) -> None:
    assert _candidates_of(catalog, 0)["original"] == [("close", 4)]


def test_the_far_band_adds_each_records_nearest_copy_beyond_the_radius(catalog: WorkFile) -> None:
    found = _candidates_of(catalog, engine.FAR_RADIUS)
    # Near candidates stay; of the far band, only the nearest whose whole hash is within
    # FAR_WHOLE_MAX: not the second one, the chance one (its other half 30 bits off) nor one past 10.
    assert found["original"] == [("close", 4), ("large-crop", 20)]
    assert "chance" not in found and "too-far" not in found  # nor the other way round
    assert found["large-crop"] == [("original", 20)] and found["second-far"] == [("original", 22)]


def test_the_far_band_keeps_more_than_one_only_when_asked(catalog: WorkFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "FAR_PER_RECORD", 2)
    assert _candidates_of(catalog, engine.FAR_RADIUS)["original"] == [("close", 4), ("large-crop", 20),
                                                                       ("second-far", 22)]  # fmt: skip


def test_the_far_band_does_not_join_the_mirrored_hash(tmp_path: Path) -> None:
    # Records whose mirrored query hash alone is near another's hash: 6 bits on a half is within
    # the radius, 10 is not, and the far band joins the mirrored hash at the radius only (it found
    # 1 of the far band's 21 copies on the dev benchmark, for a third of the far join's cost).
    _next_bit.update({0: 0, 1: 0})
    unrelated = np.random.default_rng(7).integers(0, 2, (4, 128)).astype(bool)  # ~32 bits a half apart
    near, far = unrelated[2], unrelated[3]
    work = _work(
        tmp_path, {"mirror-near": unrelated[0], "mirror-far": unrelated[1], "near": near, "far": far},
        mirrored={"mirror-near": _flipped(6, 12) ^ BASE ^ near, "mirror-far": _flipped(10, 12) ^ BASE ^ far},
    )  # fmt: skip
    found = _candidates_of(work, engine.FAR_RADIUS)
    assert found["mirror-near"] == [("near", 18)]
    assert "mirror-far" not in found


def test_a_pipeline_without_query_hashes_joins_its_stored_hash_in_the_far_band(tmp_path: Path) -> None:
    # phash64-v1: one 64-bit hash, judged whole, and no query hashes a record's views would give.
    pipeline = get_pipeline("phash64-v1")
    bits = rng.integers(0, 2, (2, 64)).astype(bool)
    bits[1] = bits[0]
    bits[1, :9] ^= True  # 9 bits apart: beyond the radius, within the far band
    work = WorkFile(tmp_path / "work.sqlite3")
    work.start({"source": "test"})
    stored = np.packbits(bits, axis=1)
    work.add_records(
        [HashRecord(name, name, "", HashValue(stored[i].tobytes()), pipeline.algo) for i, name in enumerate("ab")],
        np.zeros((2, 0, 8), dtype=np.uint8),
    )

    def candidates(far_radius: int) -> list[tuple[int, int, int]]:
        found = engine._candidates(work, pipeline, engine.DEFAULT_RADIUS, engine._Bars(False, None), far_radius)
        return list(zip(*(column.tolist() for column in found), strict=True))

    assert candidates(0) == []
    assert candidates(engine.FAR_RADIUS) == [(0, 1, 9), (1, 0, 9)]


def test_records_with_no_candidate_have_none_in_either_band(tmp_path: Path) -> None:
    unrelated = np.random.default_rng(8).integers(0, 2, (3, 128)).astype(bool)
    work = _work(tmp_path, {f"unrelated-{i}": bits for i, bits in enumerate(unrelated)})
    assert _candidates_of(work, engine.FAR_RADIUS) == {} and _candidates_of(work, 0) == {}
