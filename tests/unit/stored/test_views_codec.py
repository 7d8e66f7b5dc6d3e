"""The compact form of the verification views (core/stored/views_codec.py): bounded error, size cap,
one stored view when both are the same, batch decoding, and damaged bytes refused."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from dupcheck.core.stored import views_codec
from dupcheck.core.stored.views_codec import CodecError, decode, decode_many, encode


def smooth_views(seed: int, same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Picture-like planes: gradients plus a few blobs (what downscaled product photos look like)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32] / 31.0
    lumas = []
    for _ in range(2):
        plane = 255 * (0.3 + 0.4 * x * rng.random() + 0.3 * y * rng.random())
        cy, cx = rng.integers(4, 28, 2)
        plane[cy - 4 : cy + 4, cx - 4 : cx + 4] = rng.uniform(0, 255)
        lumas.append(np.clip(plane, 0, 255))
    luma = np.stack(lumas).astype(np.float32)
    chroma = rng.uniform(-60, 60, (2, 2, 1, 1)) + rng.normal(0, 4, (2, 2, 16, 16))
    chroma = np.clip(chroma, -128, 127).astype(np.float32)
    if same:
        luma[1], chroma[1] = luma[0], chroma[0]
    return luma, chroma


def step_of(data: bytes) -> tuple[float, float]:
    return views_codec.STEPS[data[0]]


@pytest.mark.parametrize("seed", range(6))
def test_no_pixel_is_off_by_more_than_half_a_step(seed: int) -> None:
    luma, chroma = smooth_views(seed)
    data = encode(luma, chroma)
    decoded_luma, decoded_chroma = decode(data)
    luma_step, chroma_step = step_of(data)
    assert len(data) <= views_codec.MAX_BYTES
    assert np.abs(decoded_luma - luma).max() <= luma_step / 2 + 1e-3
    assert np.abs(decoded_chroma - chroma).max() <= chroma_step / 2 + 1e-3


def test_picture_like_views_use_the_finest_step() -> None:
    assert [encode(*smooth_views(seed))[0] for seed in range(6)] == [0] * 6


def test_the_extremes_of_each_plane_survive() -> None:
    luma = np.zeros((2, 32, 32), np.float32)
    luma[:, :, 16:] = 255
    chroma = np.full((2, 2, 16, 16), -128, np.float32)
    chroma[:, 1] = 127
    decoded_luma, decoded_chroma = decode(encode(luma, chroma))
    luma_step, chroma_step = step_of(encode(luma, chroma))
    assert decoded_luma.min() >= 0 and decoded_luma.max() <= 255
    assert np.abs(decoded_luma - luma).max() <= luma_step / 2
    assert np.abs(decoded_chroma - chroma).max() <= chroma_step / 2


def test_identical_views_are_stored_once_and_decode_as_two() -> None:
    luma, chroma = smooth_views(1, same=True)
    once = encode(luma, chroma)
    different = encode(*smooth_views(1))
    assert once[1] == 1 and different[1] == 2
    assert len(once) < len(different)
    decoded_luma, decoded_chroma = decode(once)
    assert np.array_equal(decoded_luma[0], decoded_luma[1])
    assert np.array_equal(decoded_chroma[0], decoded_chroma[1])


def test_noise_gets_the_coarsest_step() -> None:
    rng = np.random.default_rng(0)
    luma = rng.uniform(0, 255, (2, 32, 32)).astype(np.float32)
    chroma = rng.uniform(-128, 127, (2, 2, 16, 16)).astype(np.float32)
    data = encode(luma, chroma)
    # No step fits uniform noise into MAX_BYTES (no photograph is like it): the coarsest is used,
    # and still bounds the size.
    assert data[0] == len(views_codec.STEPS) - 1
    assert len(data) <= 2 * views_codec.MAX_BYTES
    decoded_luma, _ = decode(data)
    assert np.abs(decoded_luma - luma).max() <= step_of(data)[0] / 2 + 1e-3


def test_a_batch_decodes_as_each_alone() -> None:
    encoded = [encode(*smooth_views(seed, same=seed % 2 == 0)) for seed in range(5)]
    luma, chroma = decode_many(encoded)
    assert luma.shape == (5, 2, 32, 32) and chroma.shape == (5, 2, 2, 16, 16)
    for row, data in enumerate(encoded):
        alone_luma, alone_chroma = decode(data)
        assert np.array_equal(luma[row], alone_luma) and np.array_equal(chroma[row], alone_chroma)
    # Luma alone (the views' hashes of a whole catalog), without inflating the colour: the same.
    assert np.array_equal(views_codec.decode_luma_many(encoded), luma)


def raw_deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize(
    "damaged",
    [
        b"",
        b"\x00",
        bytes([len(views_codec.STEPS), 2]) + b"x" * 20,  # no such step
        bytes([0, 3]) + b"x" * 20,  # three views
        bytes([0, 2]) + b"\xff" * 40,  # not deflate
        bytes([0, 1]) + raw_deflate(b"\x00" * 100),  # too few residuals
        bytes([0, 1]) + raw_deflate(b"\x00" * 10_000_000),  # inflates far beyond a record
    ],
)
def test_damaged_bytes_are_refused(damaged: bytes) -> None:
    with pytest.raises(CodecError):
        decode(damaged)
    with pytest.raises(CodecError):
        decode_many([encode(*smooth_views(0)), damaged])
    if len(damaged) < 1000:  # the bomb's first 1,024 bytes are luma enough: no more is inflated
        with pytest.raises(CodecError):
            views_codec.decode_luma_many([damaged])
