"""The verification views, compact: what a record stores of its picture, in at most MAX_BYTES.

A record's two views (the whole and the border-trimmed picture: luma 32x32, CIELAB a*, b*
16x16) are 3,072 bytes raw, 4 KB as base64: most of a record, and what every store and every
query moves. This codec keeps them to at most policy.MAX_BYTES (their sizes: docs/lab/benchmarks.md,
"Record size") with a bounded error per pixel, in numpy alone, so a query decodes its 32
candidates in well under a millisecond (docs/lab/evaluation.md, "Compact records"):

* each plane is quantised in steps (luma by STEPS[q][0] levels, a*/b* by STEPS[q][1] units), so
  no pixel is off by more than half a step: verification counts pixels that differ by more
  than 20 luma levels or 12 a*b* units, and a bounded error keeps a stored view from adding
  such pixels (a JPEG-like transform code, tried first, was smaller at the same mean error but
  left ringing of 40 levels at a product's edges and lost 0.7 points of duplicate recall);
* each value is predicted from its left, upper and upper-left neighbours (x - left - up +
  upleft, modulo 256) and the residuals, mostly near zero, are deflated; decoding is two
  cumulative sums, the same for every record, so a batch decodes in a few array operations;
* a picture without a border to trim has two identical views: the second is not stored;
* rate control: the finest step of STEPS whose output fits MAX_BYTES is used, and its index is
  the first byte, so decoding needs nothing but the bytes.

Layout: [step index][views: 1 or 2] raw deflate(luma residuals (views x 32 x 32 bytes), then
a*, b* residuals (views x 2 x 16 x 16 bytes)).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from dupcheck.core.limits.policy import CHROMA_GRID, LUMA_GRID, MAX_BYTES, VIEWS

# (luma step, a*b* step), finest first: rate control takes the first that fits. A format, not a
# choice: a record names its step by its index here.
STEPS = (
    (4.0, 2.0), (6.0, 3.0), (8.0, 4.0), (10.0, 5.0), (12.0, 6.0), (16.0, 8.0), (24.0, 12.0), (32.0, 16.0),
)  # fmt: skip
CHROMA_OFFSET = 128.0  # a*, b* are within [-128, 127]: shifted to be non-negative before quantising
_LEVEL = 9  # deflate level: the input is ~3 KB, so the best level costs ~0.1 ms
_LUMA_BYTES = LUMA_GRID * LUMA_GRID
_CHROMA_BYTES = 2 * CHROMA_GRID * CHROMA_GRID


class CodecError(ValueError):
    """The bytes are not what `encode` writes."""


def _residuals(levels: np.ndarray) -> np.ndarray:
    """uint8 levels -> x - left - up + upleft, modulo 256 (uint8 arithmetic wraps). In-place
    subtractions of shifted slices: np.diff with `prepend` gives the same bytes at twice the cost."""
    across = levels.copy()
    across[..., 1:] -= levels[..., :-1]
    residuals = across.copy()
    residuals[..., 1:, :] -= across[..., :-1, :]
    return residuals


def _levels(residuals: np.ndarray) -> np.ndarray:
    """The inverse of _residuals: two cumulative sums, modulo 256."""
    return np.cumsum(np.cumsum(residuals, axis=-2, dtype=np.uint8), axis=-1, dtype=np.uint8)


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, _LEVEL, wbits=-15)  # raw: no header, no checksum


def encode(luma: np.ndarray, chroma: np.ndarray) -> bytes:
    """luma (2, 32, 32) in [0, 255], chroma (2, 2, 16, 16) in [-128, 127] -> at most MAX_BYTES."""
    views = 1 if np.array_equal(luma[0], luma[1]) and np.array_equal(chroma[0], chroma[1]) else VIEWS
    for index, (luma_step, chroma_step) in enumerate(STEPS):
        luma_levels = np.clip(np.floor(luma[:views] / luma_step + 0.5), 0, 255).astype(np.uint8)
        chroma_levels = np.floor((chroma[:views] + CHROMA_OFFSET) / chroma_step + 0.5)
        chroma_levels = np.clip(chroma_levels, 0, 255).astype(np.uint8)
        body = _residuals(luma_levels).tobytes() + _residuals(chroma_levels).tobytes()
        data = bytes([index, views]) + _deflate(body)
        if len(data) <= MAX_BYTES:
            break
    return data  # the coarsest step is larger than MAX_BYTES only for noise no picture has


def decode_many(encoded: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Encodings -> luma (n, 2, 32, 32) and chroma (n, 2, 2, 16, 16), float32. Raises
    CodecError for bytes that `encode` did not write."""
    luma, chroma, steps = _inflate(encoded, with_chroma=True)
    count = len(encoded)
    chroma_levels = _levels(chroma.reshape(count, VIEWS, 2, CHROMA_GRID, CHROMA_GRID))
    chroma_out = chroma_levels * steps[:, 1, None, None, None, None] - CHROMA_OFFSET
    return _luma(luma, steps), chroma_out.astype(np.float32)


def decode_luma_many(encoded: Sequence[bytes]) -> np.ndarray:
    """Encodings -> luma (n, 2, 32, 32), float32, as decode_many gives it: without inflating or
    summing the colour (the views' hashes need luma alone, for every record of a catalog)."""
    luma, _, steps = _inflate(encoded, with_chroma=False)
    return _luma(luma, steps)


def _inflate(encoded: Sequence[bytes], *, with_chroma: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The residual bytes of each encoding ((n, 2, 1024) luma, (n, 2, 512) chroma when asked for)
    and its (luma, chroma) steps."""
    count = len(encoded)
    luma = np.empty((count, VIEWS, _LUMA_BYTES), dtype=np.uint8)
    chroma = np.empty((count, VIEWS, _CHROMA_BYTES) if with_chroma else (0, VIEWS, _CHROMA_BYTES), dtype=np.uint8)
    steps = np.empty((count, 2), dtype=np.float32)
    for row, data in enumerate(encoded):
        if len(data) < 2 or data[0] >= len(STEPS) or data[1] not in (1, VIEWS):
            raise CodecError("not encoded views")
        views = data[1]
        expected = views * (_LUMA_BYTES + _CHROMA_BYTES)
        split = views * _LUMA_BYTES
        try:  # bounded: bytes from an imported file must not inflate to more than a record's views
            body = zlib.decompressobj(-15).decompress(data[2:], expected + 1 if with_chroma else split)
        except zlib.error as exc:
            raise CodecError(f"not encoded views: {exc}") from exc
        if len(body) != (expected if with_chroma else split):
            raise CodecError(f"{len(body)} bytes of residuals for {views} views")
        luma[row, :views] = np.frombuffer(body, np.uint8, split).reshape(views, _LUMA_BYTES)
        if with_chroma:
            chroma[row, :views] = np.frombuffer(body, np.uint8, offset=split).reshape(views, _CHROMA_BYTES)
        if views == 1:
            luma[row, 1] = luma[row, 0]
            if with_chroma:
                chroma[row, 1] = chroma[row, 0]
        steps[row] = STEPS[data[0]]
    return luma, chroma, steps


def _luma(residuals: np.ndarray, steps: np.ndarray) -> np.ndarray:
    levels = _levels(residuals.reshape(len(residuals), VIEWS, LUMA_GRID, LUMA_GRID))
    return np.minimum(levels * steps[:, 0, None, None, None], 255.0).astype(np.float32)


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """What `encode` wrote -> luma (2, 32, 32) and chroma (2, 2, 16, 16), float32."""
    luma, chroma = decode_many([data])
    return luma[0], chroma[0]
