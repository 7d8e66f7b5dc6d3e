"""The decoder: every supported format and mode to RGB, and clear errors for everything else."""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from dupcheck.core.errors import ImageTooLarge, InvalidImage, ServerBusy, UnsupportedImage
from dupcheck.core.pictures import imaging
from dupcheck.core.pictures.imaging import decode_image, sniff_format
from dupcheck_tools.samples import encode, product_image

LIMIT = 40_000_000


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_supported_format_decodes_to_rgb(fmt: str) -> None:
    data = _saved(product_image(1, (64, 48)), fmt)
    assert sniff_format(data) == fmt
    image = decode_image(data, max_pixels=LIMIT)
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_transparency_is_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    image = decode_image(_saved(rgba, "PNG"), max_pixels=LIMIT)
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 255)


def test_palette_with_transparency_is_flattened_on_white() -> None:
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.putpixel((1, 1), 1)
    data = _saved(palette, "PNG", transparency=0)
    image = decode_image(data, max_pixels=LIMIT)
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (200, 10, 10)


def test_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), (0, 200, 0)), Image.new("RGB", (6, 6), (200, 0, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    r, g, _ = decode_image(buffer.getvalue(), max_pixels=LIMIT).getpixel((3, 3))
    assert g > 150 and r < 50


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (10, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(_saved(image, "JPEG", exif=exif), max_pixels=LIMIT)
    assert decoded.size == (20, 40)


def test_cmyk_jpeg_decodes() -> None:
    data = _saved(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG")
    r, g, b = decode_image(data, max_pixels=LIMIT).getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_sixteen_bit_png_keeps_its_range() -> None:
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024).astype(np.uint16)
    data = _saved(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    decoded = np.asarray(decode_image(data, max_pixels=LIMIT).convert("L"))
    assert decoded.min() == 0
    assert decoded.max() >= 250  # not clipped to white, not crushed to black


@pytest.mark.parametrize("mode", ["L", "LA", "I;16", "I", "F", "P", "RGB", "RGBA", "CMYK", "1"])
def test_a_large_picture_is_reduced_before_conversion_in_every_mode(mode: str) -> None:
    """Left half dark, right half light, 2500 x 2100 px: reduced by 2 (its longest side is over
    2 x REDUCED_SIDE), and the halves survive the reduction and the conversion to RGB."""
    width, height = 2500, 2100
    field = np.zeros((height, width), dtype=np.float32)
    field[:, width // 2 :] = 1.0
    if mode in ("I;16", "I", "F"):
        scale, dtype = {"I;16": (60000, np.uint16), "I": (60000, np.int32), "F": (3.0, np.float32)}[mode]
        picture = Image.fromarray((field * scale).astype(dtype))
    else:
        grey = Image.fromarray((field * 200 + 20).astype(np.uint8), "L")
        picture = grey.convert(mode) if mode != "LA" else Image.merge("LA", (grey, Image.new("L", grey.size, 255)))
    assert picture.mode == mode
    decoded = decode_image(_saved(picture, "TIFF" if mode in ("I", "F", "CMYK") else "PNG"), max_pixels=LIMIT)
    assert decoded.mode == "RGB" and decoded.size == (width // 2, height // 2)
    left, right = np.asarray(decoded.convert("L"), dtype=float)[:, [10, -10]].mean(axis=0)
    assert right - left > 100, (left, right)


def test_a_reduced_picture_keeps_its_exif_orientation() -> None:
    image = Image.new("RGB", (2400, 1200), (10, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(_saved(image, "PNG", exif=exif), max_pixels=LIMIT)
    assert decoded.size == (600, 1200)  # reduced by 2, then turned upright


def test_a_transparent_large_picture_is_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (2200, 2200), (255, 0, 0, 0))  # invisible red
    rgba.paste((0, 0, 255, 255), (0, 0, 1100, 2200))  # opaque blue left half
    r, g, b = decode_image(_saved(rgba, "PNG"), max_pixels=LIMIT).getpixel((1000, 500))
    assert (r, g, b) == (255, 255, 255)
    assert decode_image(_saved(rgba, "PNG"), max_pixels=LIMIT).getpixel((10, 10)) == (0, 0, 255)


def test_jpeg_draft_decodes_smaller_but_not_below_the_draft_size() -> None:
    data = encode(product_image(3, (1024, 768)))
    small = decode_image(data, max_pixels=LIMIT, draft_size=256)
    assert 256 <= min(small.size) < 768


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.7", b"\x00" * 64],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        decode_image(data, max_pixels=LIMIT)


def test_truncated_jpeg_is_invalid() -> None:
    data = encode(product_image(4, (256, 256)))
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_corrupt_png_is_invalid() -> None:
    data = bytearray(_saved(product_image(5, (64, 64)), "PNG"))
    data[60:120] = b"\x00" * 60
    with pytest.raises(InvalidImage):
        decode_image(bytes(data), max_pixels=LIMIT)


def test_png_signature_only_is_invalid() -> None:
    with pytest.raises(InvalidImage):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"garbage", max_pixels=LIMIT)


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG declaring a huge 1-bit image: the classic decompression bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 64)  # a few rows is enough for the header
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _bomb_png(30_000, 30_000)
    assert len(data) < 2_000
    with pytest.raises(ImageTooLarge, match="900000000 pixels"):
        decode_image(data, max_pixels=LIMIT)


def test_pixel_limit_is_configurable() -> None:
    data = encode(product_image(6, (200, 100)))
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=19_999)
    assert decode_image(data, max_pixels=20_000).size == (200, 100)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_mutated_files_decode_or_fail_with_a_domain_error(fmt: str) -> None:
    """Random corruption (seeded) must never escape as anything but a DupcheckError."""
    import random

    from dupcheck.core.errors import DupcheckError

    rng = random.Random(fmt)
    seed_bytes = _saved(product_image(3, (96, 64)), fmt)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(seed_bytes)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.6:
                data[pos] = rng.randrange(256)
            elif roll < 0.8:
                del data[pos : pos + rng.randint(1, 50)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 20))
        try:
            assert decode_image(bytes(data), max_pixels=LIMIT).mode == "RGB"
            outcomes["decoded"] += 1
        except DupcheckError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0  # the corruption really reached the decoder


# -- memory bounded by design (issue 31) --------------------------------------------------------


@pytest.fixture
def budget() -> Iterator[None]:
    """Tests that reconfigure the process's decoding budget get the default one back."""
    saved = imaging.BUDGET
    yield
    imaging.BUDGET = saved


def test_a_tiny_webp_of_40_megapixels_is_refused_before_decoding() -> None:
    """A 1.6 KB lossless WebP of 6300 x 6300 px: libwebp's decoder would hold two canvases and a
    copy beside the picture (+610 MB); it is refused from its header."""
    data = _saved(Image.new("RGB", (6300, 6300), (200, 30, 30)), "WEBP", lossless=True)
    assert len(data) < 2_000
    with pytest.raises(ImageTooLarge, match=r"6300x6300 WEBP .* would take about \d+ MB"):
        decode_image(data, max_pixels=LIMIT)


def test_a_webp_the_budget_holds_still_decodes() -> None:
    data = _saved(product_image(7, (3000, 2000)), "WEBP", quality=80)
    assert decode_image(data, max_pixels=LIMIT).size == (1500, 1000)


@pytest.mark.parametrize("size", [(100_000, 1), (1, 100_000), (5000, 3), (3, 5000)])
def test_a_thin_strip_is_reduced_without_losing_its_short_side(size: tuple[int, int]) -> None:
    """A side shorter than the reduction factor is reduced to one pixel, never to none (which
    was a 500 on every image route for 100000 x 1, and invalid_image for 1 x 100000)."""
    data = _saved(Image.new("L", size, 90), "PNG")
    assert len(data) < 1_000
    decoded = decode_image(data, max_pixels=LIMIT)
    factor = max(size) // imaging.REDUCED_SIDE
    assert decoded.mode == "RGB"
    assert decoded.size == tuple(side // min(factor, side) for side in size)
    assert decoded.getpixel((0, 0)) == (90, 90, 90)


def test_a_progressive_jpeg_costs_its_coefficients_whatever_the_draft() -> None:
    """libjpeg keeps every coefficient of a progressive (or multi-scan) JPEG: 2 bytes each, at the
    stored size, while a baseline one decodes straight to its draft."""
    picture = product_image(8, (2000, 1600))
    for progressive, subsampling in ((False, 2), (True, 2), (True, 0)):
        data = _saved(picture, "JPEG", quality=90, progressive=progressive, subsampling=subsampling)
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (256, 256))
        cost = imaging.decode_cost(image, data, (2000, 1600))
        drafted = image.width * image.height * 4 + imaging._reduction_bytes(image.width, image.height, image.mode)
        if not progressive:
            assert imaging._jpeg_scans(data) == 1
            assert cost == drafted
        else:  # 4:2:0 keeps 1.5 coefficients a pixel, 4:4:4 three
            share = 1.5 if subsampling == 2 else 3.0
            assert cost == drafted + int(2000 * 1600 * share * 2)
            assert imaging._jpeg_scans(data) > 1


def test_a_baseline_jpeg_of_several_scans_is_costed_like_a_progressive_one() -> None:
    """A baseline JPEG whose components come in separate scans needs the same whole-picture
    coefficient buffer: the scans are counted past the header (an EXIF thumbnail's do not count)."""
    thumb = _saved(product_image(9, (64, 64)), "JPEG")
    data = _saved(product_image(9, (400, 300)), "JPEG", exif=b"Exif\x00\x00" + thumb)
    assert imaging._jpeg_scans(data) == 1
    sos = data.rindex(b"\xff\xda")  # the picture's scan, after the thumbnail's
    twice = data[:-2] + data[sos:]  # a second scan after the first (what matters is the count)
    assert imaging._jpeg_scans(twice) == 2


def test_a_tiff_costs_its_largest_strip() -> None:
    grey = Image.new("L", (3000, 2000), 128)
    striped = Image.open(io.BytesIO(_saved(grey, "TIFF", compression="tiff_adobe_deflate")))
    whole = Image.open(io.BytesIO(_saved(grey, "TIFF", compression="tiff_adobe_deflate", strip_size=2**30)))
    picture = 3000 * 2000
    reduction = imaging._reduction_bytes(3000, 2000, "L")
    assert imaging.decode_cost(whole, b"", whole.size) == picture + reduction + picture  # one strip: read whole
    assert imaging.decode_cost(striped, b"", striped.size) < picture * 2 + reduction


def test_an_image_over_the_decode_limit_is_refused_and_the_limit_is_a_setting(budget: None) -> None:
    data = _saved(product_image(10, (1200, 1000)), "PNG")
    image = Image.open(io.BytesIO(data))
    cost = imaging.decode_cost(image, data, image.size)
    assert cost == 1200 * 1000 * 4 * 2  # the picture and its RGB copy
    imaging.configure(max_decode_bytes=cost - 1, total_bytes=cost, wait_s=1)
    with pytest.raises(ImageTooLarge, match=f"would take about {cost // imaging.MB} MB; one image may take at most"):
        decode_image(data, max_pixels=LIMIT)
    imaging.configure(max_decode_bytes=cost, total_bytes=cost, wait_s=1)
    assert decode_image(data, max_pixels=LIMIT).size == (1200, 1000)


def test_decodes_beyond_the_budget_wait_and_a_request_is_told_to_come_back() -> None:
    budget = imaging.DecodeBudget(max_decode_bytes=60, total_bytes=100, wait_s=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with budget.admitted(60):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    with budget.admitted(40):  # fits beside it
        assert budget.in_use == 100
    with pytest.raises(ServerBusy) as refused, budget.admitted(50):
        pass
    assert refused.value.status == 503 and refused.value.retry_after_s > 0

    admitted_at: list[float] = []

    def patient_decode() -> None:
        with imaging.patient(), budget.admitted(50):  # background work waits past wait_s
            admitted_at.append(time.monotonic())

    waiter = threading.Thread(target=patient_decode)
    waiter.start()
    time.sleep(0.5)
    assert admitted_at == []  # still waiting, past the request's 0.2 s
    released = time.monotonic()
    release.set()
    waiter.join(5)
    holder.join(5)
    assert admitted_at and admitted_at[0] >= released
    assert budget.in_use == 0


def test_the_memory_of_large_decodes_is_given_back_once_none_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(imaging, "give_back_memory", lambda: trims.append(1))
    budget = imaging.DecodeBudget(max_decode_bytes=imaging.TRIM_AFTER_BYTES, total_bytes=2 * imaging.TRIM_AFTER_BYTES,
                                  wait_s=1)  # fmt: skip
    with budget.admitted(imaging.MB):
        pass
    assert trims == []  # small pictures: nothing worth a trim
    with budget.admitted(imaging.TRIM_AFTER_BYTES):
        with budget.admitted(imaging.MB):
            pass
        assert trims == []  # a decode still runs
    assert trims == [1]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP", "BMP", "PNG", "GIF"])
def test_a_corrupt_header_is_costed_or_refused_never_a_crash(fmt: str) -> None:
    """The cost is read off the header before decoding: any header, however corrupt (a sampling
    factor of 0, a tag of the wrong type), decodes or is refused with a domain error."""
    import random

    from dupcheck.core.errors import DupcheckError

    options: dict[str, object] = {"progressive": True} if fmt == "JPEG" else {}
    seed_bytes = _saved(product_image(11, (80, 60)), fmt, **options)
    rng = random.Random(f"header-{fmt}")
    for _ in range(300):
        data = bytearray(seed_bytes)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(min(len(data), 200))] = rng.randrange(256)
        with contextlib.suppress(DupcheckError):  # refused: fine; anything else fails the test
            decode_image(bytes(data), max_pixels=LIMIT)


def test_a_jpeg_s_chroma_step_is_kept_with_the_picture() -> None:
    """What the same-photograph test reads to know how far the encoding may have moved a faint
    colour: the step a block's mean colour was rounded to, larger the lower the quality; none
    for a lossless format or a grey JPEG, and kept through the reduction of a large picture."""
    picture = product_image(1, (64, 48))
    fine = decode_image(_saved(picture, "JPEG", quality=90), max_pixels=LIMIT).info[imaging.CHROMA_STEP]
    coarse = decode_image(_saved(picture, "JPEG", quality=25), max_pixels=LIMIT).info[imaging.CHROMA_STEP]
    assert fine <= 5 < 30 <= coarse
    large = decode_image(_saved(picture.resize((2400, 1800)), "JPEG", quality=90), max_pixels=LIMIT)
    assert large.size == (1200, 900) and large.info[imaging.CHROMA_STEP] == fine
    assert imaging.CHROMA_STEP not in decode_image(_saved(picture, "PNG"), max_pixels=LIMIT).info
    assert imaging.CHROMA_STEP not in decode_image(_saved(picture.convert("L"), "JPEG"), max_pixels=LIMIT).info
