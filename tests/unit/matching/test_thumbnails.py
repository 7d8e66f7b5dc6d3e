"""A record's thumbnail as stored (core/matching/thumbnails.py): the round trip and what is refused."""

from __future__ import annotations

import numpy as np

from dupcheck.core.matching.thumbnails import Thumbnail, thumbnail_bytes
from dupcheck.core.models import HashValue
from support.garments import garment


def test_thumbnail_round_trip_and_refusals() -> None:
    picture = garment("zip").resize((128, 160))
    hash_value = HashValue(bytes(range(16)))
    data = thumbnail_bytes(hash_value, picture, (3, 150, 10, 120))
    assert len(data) < 8_000  # a few KB: beside the record, not in it
    thumbnail = Thumbnail.decode(data)
    assert thumbnail is not None and thumbnail.hash == hash_value and thumbnail.box == (3, 150, 10, 120)
    assert thumbnail.rgb.shape == (160, 128, 3)
    assert np.abs(thumbnail.rgb.astype(int) - np.asarray(picture).astype(int)).mean() < 3  # JPEG, close
    assert Thumbnail.decode(b"") is None
    assert Thumbnail.decode(b"not a thumbnail at all, just some bytes") is None
    assert Thumbnail.decode(data[:40]) is None  # the header and a cut JPEG
    assert Thumbnail.decode(b"XXXX" + data[4:]) is None  # another magic
    assert Thumbnail.decode(thumbnail_bytes(hash_value, picture, (0, 161, 0, 128))) is None  # box off the picture
