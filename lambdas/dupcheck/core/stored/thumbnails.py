"""The picture kept beside a record, for the same-photograph test (photograph.py).

The views a record stores (views.py) are enough to find and align a copy, not to tell one
photograph from another taken the same way: that takes the photograph's fine detail, which
exists at a few hundred pixels, not at the views' 32. So the picture itself is kept, at
policy.KEPT_SIDE px on its longer side, beside the record (a ThumbnailStore, core/ports.py: the
data dir locally, S3 on AWS), never in it: the record stays compact for the index.

The stored form: a header naming the hash of the record it was made for and the picture's trim
box (in its own pixels), then the picture as a JPEG (policy.KEPT_QUALITY), whose comment holds
the chroma step of the JPEG it was made from, when it was one (what that encoding may have done
to a faint colour: one_edit.py). A picture left by
another version of the record (a write that raced this one's) names another hash, and is not
read as this one's. `dualphash128-v4` records kept their 160 px working copy the same way under
another magic: they are read too, and compared at what they hold.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from dupcheck.core.limits.policy import FINE_CHROMA_STEP, KEPT_QUALITY, KEPT_SIDE, WORK_SIDE
from dupcheck.core.models import HashValue
from dupcheck.core.pictures.pixels import luma
from dupcheck.core.stored.views import Probe, Views

_MAGIC = b"DLK2"
_MAGIC_V4 = b"DLK1"  # a dualphash128-v4 record's 160 px working copy
_HEADER = struct.Struct(">4sB16s4H")  # magic, hash length, hash (padded), trim box
_SOURCE_STEP = b"chroma_step="  # the kept JPEG's comment: its source JPEG's chroma step
# The longest side a stored picture is read at: a format's bound on what decoding one may take,
# not the size new ones are made at (KEPT_SIDE), so records kept at another KEPT_SIDE are still
# compared, at what they hold (photograph.native_side).
READ_SIDE = 1024


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A record's kept picture (RGB, made at KEPT_SIDE px, read up to READ_SIDE) and its trim box (top, bottom, left,
    right, in its pixels), with the hash of the record it was made for: a picture left by
    another version of the record is not read as this one's. `source_step`: the chroma step of
    the JPEG it was made from (None: another format, or a picture kept before it was noted)."""

    hash: HashValue
    rgb: np.ndarray
    box: tuple[int, int, int, int]
    source_step: int | None = None
    _grey: Image.Image | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def colours_kept(self) -> bool:
        """Whether its source kept faint colours: not a JPEG coarser than FINE_CHROMA_STEP (a
        picture kept without the note is read as before it was kept)."""
        return self.source_step is None or self.source_step <= FINE_CHROMA_STEP

    def grey(self) -> Image.Image:
        """The luma (mode F), which the same-photograph test warps: made once, when first asked."""
        if self._grey is None:
            object.__setattr__(self, "_grey", Image.fromarray(luma(self.rgb, np.float32), mode="F"))
        assert self._grey is not None
        return self._grey

    @classmethod
    def decode(cls, data: bytes) -> Thumbnail | None:
        """What `thumbnail_bytes` wrote (or a v4 record's working copy), or None for bytes that
        are not one."""
        header = _header(data)
        if header is None:
            return None
        made_for, (top, bottom, left, right) = header
        try:
            with Image.open(io.BytesIO(data[_HEADER.size :])) as image:
                if max(image.size) > READ_SIDE:
                    return None
                rgb = np.asarray(image.convert("RGB"))
                comment = image.info.get("comment", b"")
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        if not (0 <= top < bottom <= rgb.shape[0] and 0 <= left < right <= rgb.shape[1]):
            return None
        step = comment[len(_SOURCE_STEP) :] if isinstance(comment, bytes) and comment.startswith(_SOURCE_STEP) else b""
        return cls(made_for, rgb, (top, bottom, left, right), int(step) if step.isdigit() else None)

    @staticmethod
    def layout(data: bytes) -> tuple[HashValue, tuple[int, int], tuple[int, int, int, int]] | None:
        """The hash it was made for, its size (height, width) and its trim box, read from the
        header and the JPEG's own header (its pixels are not decoded), or None for bytes that are
        not a kept picture."""
        header = _header(data)
        if header is None:
            return None
        try:
            with Image.open(io.BytesIO(data[_HEADER.size :])) as image:
                width, height = image.size
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        top, bottom, left, right = header[1]
        if not (0 <= top < bottom <= height and 0 <= left < right <= width) or max(width, height) > READ_SIDE:
            return None
        return header[0], (height, width), header[1]

    @staticmethod
    def made_for(data: bytes) -> HashValue | None:
        """The hash of the record the bytes were kept for, read from the header alone (without
        decoding the picture: whether a candidate keeps a picture is asked far more often than
        its picture is looked at), or None for bytes that are not a kept picture."""
        header = _header(data)
        return None if header is None else header[0]


def _header(data: bytes) -> tuple[HashValue, tuple[int, int, int, int]] | None:
    """The hash and trim box a kept picture's header names, or None for bytes that are not one."""
    if len(data) <= _HEADER.size:
        return None
    magic, length, digest, top, bottom, left, right = _HEADER.unpack_from(data)
    if magic not in (_MAGIC, _MAGIC_V4) or not 0 < length <= 16:
        return None
    return HashValue(digest[:length]), (top, bottom, left, right)


def thumbnail_bytes(
    hash_value: HashValue,
    picture: Image.Image,
    box: tuple[int, int, int, int],
    shape: tuple[int, ...],
    source_step: int | None = None,
) -> bytes:
    """A record's kept picture as stored: `picture` (RGB, as decoded) at KEPT_SIDE px as a JPEG,
    after a header naming the record's hash and its trim box: `box` is the working copy's (of
    `shape`: its height and width), scaled to the kept picture; `source_step`, the chroma step of
    the JPEG the picture was decoded from, in the JPEG's comment."""
    kept = picture.copy()
    kept.thumbnail((KEPT_SIDE, KEPT_SIDE), Image.Resampling.LANCZOS)
    if kept.mode != "RGB":
        kept = kept.convert("RGB")
    sy, sx = kept.height / shape[0], kept.width / shape[1]
    top, bottom, left, right = box
    scaled = (
        min(kept.height - 1, round(top * sy)),
        max(min(kept.height, round(bottom * sy)), min(kept.height - 1, round(top * sy)) + 1),
        min(kept.width - 1, round(left * sx)),
        max(min(kept.width, round(right * sx)), min(kept.width - 1, round(left * sx)) + 1),
    )
    buffer = io.BytesIO()
    note = {} if source_step is None else {"comment": _SOURCE_STEP + str(source_step).encode()}
    kept.save(buffer, "JPEG", quality=KEPT_QUALITY, **note)
    digest = hash_value.data
    return _HEADER.pack(_MAGIC, len(digest), digest.ljust(16, b"\0"), *scaled) + buffer.getvalue()


def probe_of_kept(views: Views, kept: Thumbnail) -> Probe:
    """A stored picture as a query, from its kept picture: the probe a new upload of it would
    make (its working copy made from the kept picture, which is also its detail)."""
    working = Image.fromarray(kept.rgb)
    working.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    sy, sx = working.height / kept.rgb.shape[0], working.width / kept.rgb.shape[1]
    top, bottom, left, right = kept.box
    box = (round(top * sy), max(round(bottom * sy), round(top * sy) + 1),
           round(left * sx), max(round(right * sx), round(left * sx) + 1))  # fmt: skip
    # (A kept picture is a JPEG at KEPT_QUALITY, a step within FINE_CHROMA_STEP: whether its
    # colours were kept is for the JPEG it was made from to say.)
    return Probe(np.asarray(working), views, box, detail=kept.rgb, colours_kept=kept.colours_kept)


def own_picture(hash_value: HashValue, probe: Probe) -> bytes:
    """A query's picture kept as a record of it would keep it (`thumbnail_bytes`), from the
    picture its probe holds: what a check the other way round looks at."""
    if probe.source is not None:
        picture = probe.source
    else:
        picture = Image.fromarray(probe.detail if probe.detail is not None else probe.picture())
    shape = probe.picture().shape
    box = probe.box if probe.box is not None else (0, shape[0], 0, shape[1])
    return thumbnail_bytes(hash_value, picture, box, shape, None if probe.colours_kept else FINE_CHROMA_STEP + 1)
