"""Untrusted image bytes -> one decoded, normalised RGB image, or a clear error.

The format is decided from the bytes (magic numbers), never from a header or file name, and
the pixel count is checked before any pixel is decoded, so a decompression bomb costs nothing.

Memory is bounded by design, for every format and mode. Before a pixel is decoded, the header
says what the decoder will allocate (`decode_cost`: the decoded picture at the size it decodes
to, plus what that format's decoder holds besides: a progressive or multi-scan JPEG's
coefficients, libwebp's two canvases and a copy, a TIFF strip or tile, a BMP run-length
buffer). A picture that would cost more than `max_decode_bytes` is refused (413), so one
request stays under one ceiling whatever the format; the decodes running at once are admitted
against a budget (`DecodeBudget`: a request that does not fit waits, then 503 `server_busy`),
so concurrent heavy requests queue instead of all decoding at once; and once the last heavy
decode ends the freed memory is handed back to the system (glibc's malloc_trim), so a burst
does not leave the process at its peak. docs/lab/benchmarks.md measures each format.

No pipeline looks at more than a few hundred pixels (pHash 32 px of a >= 256 px JPEG draft,
the default a 160 px working copy), so a picture whose longest side is at least 2 x
REDUCED_SIDE is box-reduced right after decoding, band by band, before any conversion copies
it: the decoded picture is the only full-size copy.

A JPEG's chroma quantisation step for a block's mean colour is kept in the decoded picture's
`info` (`CHROMA_STEP`): how far the encoding may have moved a faint colour, which the
same-photograph test reads (core/matching/one_edit.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dupcheck.core.errors import ImageTooLarge, InvalidImage, ServerBusy, UnsupportedImage
from dupcheck.core.pictures.budget import MemoryBudget

log = logging.getLogger(__name__)

# Pillow's own bomb check is global state; dupcheck applies its configurable limit itself.
Image.MAX_IMAGE_PIXELS = None

MB = 2**20
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
BACKGROUND = (255, 255, 255)  # transparency is flattened on white, like a product page
REDUCED_SIDE = 1024  # a decoded picture larger than twice this is box-reduced to at least this
REDUCE_BAND_ROWS = 32  # output rows reduced at a time: bands of a few MB
_ORIENTATION = 0x0112  # EXIF tag
CHROMA_STEP = "dupcheck.chroma_step"  # decoded picture's info: a JPEG's chroma DC quantisation step

# What one decode may cost (decode_cost), what all decodes at once may cost, and how long a
# request waits for room before it is told to come back (503): the defaults of the settings
# max_decode_mb, decode_budget_mb and decode_wait_s, which bootstrap applies (`configure`).
MAX_DECODE_BYTES = 240 * MB
DECODE_BUDGET_BYTES = 480 * MB
DECODE_WAIT_S = 10.0
TRIM_AFTER_BYTES = 64 * MB  # decodes this large since the last trim: give the memory back when idle

# Bytes a pixel takes in Pillow's memory by mode: 1-bit, grey and palette pictures one byte,
# 16-bit grey two, every other mode four (RGB is stored as RGBX, LA as LXXA).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# What a decoder holds beside the picture, in bytes per decoded pixel. libwebp's animation
# decoder (Pillow's only WebP path) keeps two RGBA canvases and hands Pillow a copy of one;
# Pillow's BMP run-length decoder builds the picture in a bytearray, then copies it.
_HIGH_DEPTH = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_WEBP_EXTRA = 12
_BMP_RLE_EXTRA = 2
_JPEG_COEFFICIENT_BYTES = 2  # a DCT coefficient: libjpeg's JCOEF
_JPEG_SOS = b"\xff\xda"


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name the magic bytes announce, or None for anything unsupported."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def decode_image(data: bytes, *, max_pixels: int, draft_size: int | None = None) -> Image.Image:
    """Decode `data` into an RGB image with EXIF orientation applied.

    `draft_size` lets JPEG decode at a reduced DCT scale (no smaller than that many pixels on
    the short side): several times faster, and used identically at index and query time.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImage(f"not a supported image (expected one of {', '.join(SUPPORTED_FORMATS)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImage(f"{fmt} image has no pixels")
            if width * height > max_pixels:
                raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
            if fmt == "JPEG" and draft_size:
                image.draft("RGB", (draft_size, draft_size))  # type: ignore[attr-defined]
            cost = decode_cost(image, data, (width, height))
            if cost > BUDGET.max_decode_bytes:
                raise ImageTooLarge(
                    f"decoding this {width}x{height} {fmt} ({image.mode}) would take about {cost // MB} MB; "
                    f"one image may take at most {BUDGET.max_decode_bytes // MB} MB (docs/api.md, images)"
                )
            with BUDGET.admitted(cost):
                image.load()  # first frame only for GIF/WebP/TIFF
                step = _chroma_step(image)
                image = _to_rgb(_apply_orientation(_reduced(image)))
            if step is not None:
                image.info[CHROMA_STEP] = step
            return image
    except (ImageTooLarge, InvalidImage, ServerBusy):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image rejected as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"{fmt} data is corrupt or truncated: {exc}") from exc


def _chroma_step(image: Image.Image) -> int | None:
    """A JPEG's quantisation step for a block's mean colour (the first entry of its second table),
    None for other formats and grey JPEGs: a block's colour is rounded to a multiple of it (its
    eighth in levels), so a faint tint moves by up to half that."""
    tables = getattr(image, "quantization", None)
    if not tables or 1 not in tables:
        return None
    return int(tables[1][0])


def decode_cost(image: Image.Image, data: bytes, stored: tuple[int, int]) -> int:
    """Bytes the decoder will hold at its peak for an opened, not yet loaded `image` (after any
    JPEG draft; `stored` is its size in the file): the picture itself plus what its format's
    decoder keeps beside it (module docstring). docs/lab/benchmarks.md compares it with measured peaks."""
    pixels = stored[0] * stored[1]
    picture = image.width * image.height * _BYTES_PER_PIXEL.get(image.mode, 4)
    picture += _reduction_bytes(image.width, image.height, image.mode)
    fmt = image.format
    if fmt == "JPEG" and (image.info.get("progressive") or _jpeg_scans(data) > 1):
        # Progressive and multi-scan JPEGs keep every component's coefficients, whatever the draft.
        layers = getattr(image, "layer", None) or [(None, 1, 1, 0)] * len(image.getbands())
        h_max = max(1, *(h for _, h, _, _ in layers))  # a hostile header may say 0
        v_max = max(1, *(v for _, _, v, _ in layers))
        share = sum(h * v for _, h, v, _ in layers) / (h_max * v_max)
        return picture + int(pixels * share * _JPEG_COEFFICIENT_BYTES)
    if fmt == "WEBP":
        return picture + pixels * _WEBP_EXTRA
    tiles = getattr(image, "tile", None)  # an opened file's decoder
    if fmt == "BMP" and tiles and tiles[0][0] == "bmp_rle":
        return picture + pixels * _BMP_RLE_EXTRA
    if fmt == "TIFF":
        return picture + _tiff_chunk_bytes(image, stored)
    return picture


def _reduction_bytes(width: int, height: int, mode: str) -> int:
    """What reducing a picture of this size adds (`_reduced`): a band and its converted copy, the
    reduced picture and its RGB copy, 4 bytes a pixel at most; and for 16-bit and 32-bit modes
    the float copies that scale the reduced picture to 8 bits (`_high_depth_to_l`)."""
    per_pixel = 16 if mode in _HIGH_DEPTH else 0
    factor = max(width, height) // REDUCED_SIDE
    if factor < 2:  # kept as it is: its RGB copy
        return width * height * (4 + per_pixel)
    reduced = (width // min(factor, width)) * (height // min(factor, height))
    band = width * min(height, factor * REDUCE_BAND_ROWS) * 4
    return 2 * band + reduced * (2 * 4 + per_pixel)


def _jpeg_scans(data: bytes) -> int:
    """How many scans (SOS markers) a JPEG holds: the header's segments are walked to the first
    one, and the rest is counted (entropy-coded data never holds FF DA: a coded FF is stuffed)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return 1
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            return 1 + data.count(_JPEG_SOS, pos + 2 + length)
        pos += 2 + length
    return 1


def _tiff_chunk_bytes(image: Image.Image, stored: tuple[int, int]) -> int:
    """libtiff reads a strip or a tile whole, in its stored samples (a JPEG-compressed YCbCr one
    as RGBA: 4 bytes a pixel)."""
    tags = getattr(image, "tag_v2", {})
    width, height = stored
    tile_width, tile_height = _tag(tags, 322), _tag(tags, 323)
    rows = min(height, _tag(tags, 278) or height)
    chunk = tile_width * tile_height if tile_width and tile_height else width * rows
    bits = tags.get(258)
    bits_per_pixel = sum(_number(b) for b in bits) if isinstance(bits, tuple) else _number(bits) or 8
    as_rgba = _tag(tags, 262) == 6 and _tag(tags, 259) in (6, 7)  # YCbCr, JPEG: Pillow has libtiff give RGBA
    return chunk * (4 if as_rgba else -(-bits_per_pixel // 8))


def _tag(tags: Any, key: int) -> int:
    """A TIFF tag's number (its first when a hostile file gives several), 0 when absent or not one."""
    value = tags.get(key)
    return _number(value[0] if isinstance(value, tuple) and value else value)


def _number(value: Any) -> int:
    return max(0, int(value)) if isinstance(value, int | float) else 0


class DecodeBudget(MemoryBudget):
    """The decodes running at once, admitted against a budget of bytes (module docstring;
    core/pictures/budget.py). Background work (imports, backfill) waits as long as it takes (`patient`).
    When the last decode ends after heavy ones, the memory they freed is handed back to the system."""

    def __init__(self, *, max_decode_bytes: int, total_bytes: int, wait_s: float) -> None:
        # the largest decode must fit alone
        super().__init__(total_bytes=max(total_bytes, max_decode_bytes), wait_s=wait_s,
                         holding="decoding other large images")  # fmt: skip
        self.max_decode_bytes = max_decode_bytes
        self._since_trim = 0
        self._trim_lock = threading.Lock()

    @contextmanager
    def admitted(self, cost: int, *, patient: bool | None = None) -> Iterator[None]:
        with super().admitted(cost, patient=_PATIENT.get() if patient is None else patient):
            yield

    def released(self, cost: int, *, idle: bool) -> None:
        with self._trim_lock:
            self._since_trim += cost
            trim = idle and self._since_trim >= TRIM_AFTER_BYTES
            if trim:
                self._since_trim = 0
        if trim:
            give_back_memory()


_PATIENT: ContextVar[bool] = ContextVar("dupcheck_patient_decodes", default=False)


@contextmanager
def patient() -> Iterator[None]:
    """Decodes in this block wait for room as long as it takes (background work: a row of an
    import must not fail because requests were decoding)."""
    token = _PATIENT.set(True)
    try:
        yield
    finally:
        _PATIENT.reset(token)


BUDGET = DecodeBudget(max_decode_bytes=MAX_DECODE_BYTES, total_bytes=DECODE_BUDGET_BYTES, wait_s=DECODE_WAIT_S)


def configure(*, max_decode_bytes: int, total_bytes: int, wait_s: float) -> None:
    """Apply the settings to this process's decodes (bootstrap does, for every service built)."""
    global BUDGET
    if (BUDGET.max_decode_bytes, BUDGET.total_bytes, BUDGET.wait_s) != (max_decode_bytes, total_bytes, wait_s):
        BUDGET = DecodeBudget(max_decode_bytes=max_decode_bytes, total_bytes=total_bytes, wait_s=wait_s)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc, else None (musl and macOS return freed memory themselves)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "gnu_get_libc_version") else None


_GLIBC = _glibc()
_M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
MMAP_THRESHOLD_BYTES = 8 * MB
if _GLIBC is not None:
    # glibc maps a block of at least its threshold on its own and unmaps it when freed, but
    # raises the threshold to the size of each such block freed (up to 32 MB): after the first
    # large picture, Pillow's 16 MB blocks come from the heap, where the freed ones stay. A fixed
    # threshold keeps large blocks mapped (a picture's memory goes back when it is freed) and
    # leaves the small allocations of ordinary pictures (a 1000 x 1000 picture is 4 MB) in the heap.
    _GLIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim): what large decodes left
    in the heap's arenas, one per thread that allocated, would otherwise stay with the process."""
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)


def _reduced(image: Image.Image) -> Image.Image:
    """A large picture box-reduced by an integer factor (its EXIF orientation kept), else itself.

    Each side is reduced by the factor, or to one pixel where it is shorter than the factor (a
    100000 x 1 strip). Band by band: Pillow converts an RGBA picture to premultiplied alpha
    before reducing it, and a palette one must become RGB first, each a full-size copy; a band's
    copy is a few MB."""
    factor = max(image.size) // REDUCED_SIDE
    if factor < 2:
        return image
    orientation = _exif_orientation(image)
    x_factor, y_factor = min(factor, image.width), min(factor, image.height)
    width, height = image.width // x_factor, image.height // y_factor
    rows = y_factor * REDUCE_BAND_ROWS
    reduced: Image.Image | None = None
    for top in range(0, height * y_factor, rows):
        band = image.crop((0, top, width * x_factor, min(top + rows, height * y_factor)))
        if band.mode in ("1", "P"):  # reducing these would pick pixels instead of averaging them
            band = band.convert("RGBA" if "transparency" in image.info else "RGB" if band.mode == "P" else "L")
        if band.mode.startswith("I;16"):  # reduce() has no 16-bit modes; a box resize is the same mean
            small = band.resize((width, band.height // y_factor), Image.Resampling.BOX)
        else:
            small = band.reduce((x_factor, y_factor))
        if reduced is None:
            reduced = Image.new(small.mode, (width, height))
        reduced.paste(small, (0, top // y_factor))
    if reduced is None:  # unreachable: height >= 1 gives one band at least
        raise InvalidImage("image has no pixels")
    if orientation not in (None, 1):
        exif = Image.Exif()
        exif[_ORIENTATION] = orientation
        reduced.info["exif"] = exif.tobytes()
    return reduced


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(_ORIENTATION)
    except Exception:  # a broken EXIF block must not cost the image
        return None
    return value if isinstance(value, int) else None


def _apply_orientation(image: Image.Image) -> Image.Image:
    # Most pictures are stored upright: returned as they are (exif_transpose would copy them).
    if _exif_orientation(image) in (None, 1):
        return image
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # a broken EXIF block must not cost the image; keep it as stored
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_depth_to_l(image)
        mode = "L"
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit and float images: scale the full range to 8 bits instead of clipping at 255."""
    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
    if image.mode == "F":
        top = max(float(pixels.max(initial=1.0)), 1.0)
    scaled = np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")
