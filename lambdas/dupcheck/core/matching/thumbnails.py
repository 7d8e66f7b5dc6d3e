"""A record's thumbnail: its 160 px working copy, kept beside the record for a finer look.

The views a record stores (views.py) are enough to find and align a copy, not to tell two
different shirts on the same model apart: the look-alike check (photograph.py) looks at the
picture itself. At 160 px that is ten times a record's bytes, so it is kept beside the record
(a ThumbnailStore, core/ports.py), not in it. The stored form: a header naming the hash of the
record it was made for and the picture's trim box, then the picture as a JPEG
(policy.THUMBNAIL_QUALITY). A thumbnail left by another version of the record (a write that
raced this one's) names another hash, and is not read as this one's.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dupcheck.core.matching.policy import THUMBNAIL_QUALITY
from dupcheck.core.models import HashValue

_MAGIC = b"DLK1"
_HEADER = struct.Struct(">4sB16s4H")  # magic, hash length, hash (padded), trim box


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A record's working copy (RGB, at most 160 px) and its trim box (top, bottom, left,
    right, in its pixels), with the hash of the record it was made for: a thumbnail left by
    another version of the record is not read as this one's."""

    hash: HashValue
    rgb: np.ndarray
    box: tuple[int, int, int, int]

    @classmethod
    def decode(cls, data: bytes) -> Thumbnail | None:
        """What `encode` wrote, or None for bytes that are not a thumbnail."""
        if len(data) <= _HEADER.size:
            return None
        magic, length, digest, *box = _HEADER.unpack_from(data)
        if magic != _MAGIC or not 0 < length <= 16:
            return None
        try:
            with Image.open(io.BytesIO(data[_HEADER.size :])) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        top, bottom, left, right = box
        if not (0 <= top < bottom <= rgb.shape[0] and 0 <= left < right <= rgb.shape[1]):
            return None
        return cls(HashValue(digest[:length]), rgb, (top, bottom, left, right))


def thumbnail_bytes(hash_value: HashValue, picture: Image.Image, box: tuple[int, int, int, int]) -> bytes:
    """A record's thumbnail as stored: `picture` (its RGB working copy) as a JPEG, after a header
    naming the record's hash and the picture's trim box (what `Thumbnail.decode` reads)."""
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    digest = hash_value.data
    return _HEADER.pack(_MAGIC, len(digest), digest.ljust(16, b"\0"), *box) + buffer.getvalue()
