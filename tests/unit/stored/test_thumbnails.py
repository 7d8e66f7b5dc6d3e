"""A record's kept picture as stored (core/stored/thumbnails.py): the round trip and what is refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dupcheck.core.limits.policy import KEPT_SIDE
from dupcheck.core.models import HashValue
from dupcheck.core.stored import thumbnails
from dupcheck.core.stored.thumbnails import _HEADER, _MAGIC, READ_SIDE, Thumbnail, thumbnail_bytes
from support.garments import garment

HASH = HashValue(bytes(range(16)))


def test_the_kept_picture_round_trips_at_its_side_with_the_box_scaled_to_it() -> None:
    picture = garment("zip").resize((480, 600))
    # The working copy (160 x 128) trimmed to rows 3-150, columns 10-120.
    data = thumbnail_bytes(HASH, picture, (3, 150, 10, 120), (160, 128))
    assert len(data) < 40_000  # tens of KB: beside the record, not in it
    kept = Thumbnail.decode(data)
    assert kept is not None and kept.hash == HASH
    assert kept.rgb.shape == (KEPT_SIDE, round(KEPT_SIDE * 480 / 600), 3)
    assert kept.box == (7, 360, 24, 288)  # the box at 384 / 160 = 2.4 times the working copy
    expected = np.asarray(picture.resize(kept.rgb.shape[1::-1], Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(kept.rgb.astype(int) - expected).mean() < 3  # JPEG, close


def test_bytes_that_are_not_a_kept_picture_are_refused() -> None:
    picture = garment("zip").resize((240, 300))
    data = thumbnail_bytes(HASH, picture, (0, 160, 0, 128), (160, 128))
    assert Thumbnail.decode(data) is not None
    assert Thumbnail.decode(b"") is None
    assert Thumbnail.decode(b"not a thumbnail at all, just some bytes") is None
    assert Thumbnail.decode(data[:40]) is None  # the header and a cut JPEG
    assert Thumbnail.decode(b"XXXX" + data[4:]) is None  # another magic
    assert Thumbnail.made_for(b"XXXX" + data[4:]) is None and Thumbnail.made_for(data[:20]) is None
    jpeg = data[_HEADER.size :]
    off_the_picture = _HEADER.pack(_MAGIC, 16, HASH.data, 0, 301, 0, 240) + jpeg
    assert Thumbnail.decode(off_the_picture) is None
    larger = io.BytesIO()
    Image.new("RGB", (READ_SIDE + 1, 10)).save(larger, "JPEG")
    assert Thumbnail.decode(_HEADER.pack(_MAGIC, 16, HASH.data, 0, 10, 0, 10) + larger.getvalue()) is None
    assert Thumbnail.layout(_HEADER.pack(_MAGIC, 16, HASH.data, 0, 10, 0, 10) + larger.getvalue()) is None


def test_a_picture_kept_at_another_kept_side_is_still_read_at_what_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """KEPT_SIDE is the size new pictures are kept at, not what may be read: records kept before
    it changed keep their test (read up to READ_SIDE), rather than falling back to their views."""
    monkeypatch.setattr(thumbnails, "KEPT_SIDE", 2 * KEPT_SIDE)
    data = thumbnail_bytes(HASH, garment("zip").resize((800, 1000)), (0, 160, 0, 128), (160, 128))
    monkeypatch.undo()
    kept, layout = Thumbnail.decode(data), Thumbnail.layout(data)
    assert kept is not None and kept.rgb.shape[:2] == (2 * KEPT_SIDE, round(2 * KEPT_SIDE * 0.8))
    assert layout is not None and layout[1] == kept.rgb.shape[:2]


def test_the_record_a_kept_picture_was_made_for_is_read_from_its_header_alone() -> None:
    """The judge asks whether a candidate keeps a picture far more often than it looks at one:
    the header answers, whatever follows it (a picture that cannot be decoded is refused only
    when it is looked at)."""
    data = thumbnail_bytes(HASH, garment("zip").resize((240, 300)), (0, 160, 0, 128), (160, 128))
    assert Thumbnail.made_for(data) == HASH
    cut = data[: _HEADER.size + 10]
    assert Thumbnail.made_for(cut) == HASH and Thumbnail.decode(cut) is None


def test_the_source_jpeg_s_chroma_step_is_noted_with_the_kept_picture() -> None:
    """How far the catalog's own JPEG may have moved a faint colour: noted in the kept JPEG's
    comment, read back; a picture kept without the note (another format, or kept before the
    note was written) is read as one whose colours were kept."""
    picture = garment("zip").resize((240, 300))
    fine = Thumbnail.decode(thumbnail_bytes(HASH, picture, (0, 160, 0, 128), (160, 128), source_step=3))
    coarse = Thumbnail.decode(thumbnail_bytes(HASH, picture, (0, 160, 0, 128), (160, 128), source_step=34))
    unnoted = Thumbnail.decode(thumbnail_bytes(HASH, picture, (0, 160, 0, 128), (160, 128)))
    assert fine is not None and coarse is not None and unnoted is not None
    assert (fine.source_step, coarse.source_step, unnoted.source_step) == (3, 34, None)
    assert fine.colours_kept and not coarse.colours_kept and unnoted.colours_kept
