"""Hash value object, record round-trips, results as the API carries them."""

from __future__ import annotations

import pytest

from dupcheck.core.models import Edit, FindResult, HashRecord, HashValue, Match, Verdict


def test_hash_hex_round_trip_and_distance() -> None:
    a = HashValue.from_hex("c3d1000000000000")
    b = HashValue.from_hex("c3d1000000000003")
    assert str(a) == "c3d1000000000000"
    assert a.bits == 64
    assert a - b == 2
    assert b - a == 2
    assert a - a == 0
    assert HashValue.from_hex("ff" * 8) - HashValue.from_hex("00" * 8) == 64


def test_hash_rejects_bad_hex_and_mixed_lengths() -> None:
    with pytest.raises(ValueError, match="not a hex hash"):
        HashValue.from_hex("xyz")
    with pytest.raises(ValueError, match="lengths differ"):
        _ = HashValue.from_hex("00" * 8) - HashValue.from_hex("00" * 32)


def test_record_round_trips_through_dict() -> None:
    hash_value = HashValue.from_hex("ab" * 8)
    record = HashRecord("A1", "MH01", "https://x/a.jpg", hash_value, "phash64-v1", features={"c": b"x\x00yz"})
    again = HashRecord.from_dict(record.to_dict())
    assert again == record
    assert record.to_dict()["features"] == {"c": "eAB5eg=="}  # JSON carries features as base64
    assert again.hash.hex == "ab" * 8


def test_find_result_is_duplicate_only_with_a_duplicate_verdict() -> None:
    similar = Match("A", "s", "u", 8, 87.5, Verdict.SIMILAR)
    duplicate = Match("B", "s", "u", 1, 98.4, Verdict.DUPLICATE, (Edit("mirrored"),), "mirrored")
    query = HashValue.from_hex("00")
    assert not FindResult(query, "phash64-v1", [similar]).is_duplicate
    body = FindResult(query, "phash64-v1", [duplicate, similar], image_url="https://q").to_dict()
    assert body["is_duplicate"] is True
    assert body["query"] == {"image_url": "https://q", "hash": "00", "algorithm": "phash64-v1"}
    assert [m["entity_id"] for m in body["matches"]] == ["B", "A"]


def test_a_match_carries_its_edits_as_objects_and_one_line() -> None:
    cropped = Edit("cropped", {"left": 0.12, "right": 0.0, "top": 0.05, "bottom": 0.0})
    body = Match("B", "s", "u", 1, 98.4, Verdict.DUPLICATE, (cropped, Edit("mirrored")), "cropped ... and mirrored")
    assert body.to_dict()["edits"] == [
        {"edit": "cropped", "left": 0.12, "right": 0.0, "top": 0.05, "bottom": 0.0},
        {"edit": "mirrored"},
    ]
    assert body.to_dict()["edit_summary"] == "cropped ... and mirrored"
    unknown = Match("C", "s", "u", 30, 20.0, Verdict.DIFFERENT).to_dict()
    assert unknown["edits"] is None and unknown["edit_summary"] is None  # nothing lined up: nothing to say
