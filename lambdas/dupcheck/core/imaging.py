"""Untrusted image bytes -> one decoded, normalised RGB image, or a clear error.

The format is decided from the bytes (magic numbers), never from a header or file name, and
the pixel count is checked before any pixel is decoded, so a decompression bomb costs nothing.

Memory is bounded for every mode: no pipeline looks at more than a few hundred pixels (pHash
32 px of a >= 256 px JPEG draft, the default a 160 px working copy), so a picture whose longest
side is at least 2 x REDUCED_SIDE is box-reduced right after decoding, before any conversion
copies it. A 40 MP request then peaks at the decoded picture plus small copies: at most 160 MB
for 4-byte modes (RGBA, CMYK, I, F), not the 1 GB a float copy of a 16-bit image cost
(docs/benchmarks.md, memory).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dupcheck.core.errors import ImageTooLarge, InvalidImage, UnsupportedImage

# Pillow's own bomb check is global state; dupcheck applies its configurable limit itself.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
BACKGROUND = (255, 255, 255)  # transparency is flattened on white, like a product page
REDUCED_SIDE = 1024  # a decoded picture larger than twice this is box-reduced to at least this
REDUCE_BAND_ROWS = 128  # output rows reduced at a time: bands of a few MB
_ORIENTATION = 0x0112  # EXIF tag


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
            image.load()  # first frame only for GIF/WebP/TIFF
            image = _apply_orientation(_reduced(image))
            return _to_rgb(image)
    except (ImageTooLarge, InvalidImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image rejected as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"{fmt} data is corrupt or truncated: {exc}") from exc


def _reduced(image: Image.Image) -> Image.Image:
    """A large picture box-reduced by an integer factor (its EXIF orientation kept), else itself.

    Band by band: Pillow converts an RGBA picture to premultiplied alpha before reducing it, and
    a palette one must become RGB first, each a full-size copy; a band's copy is a few MB."""
    factor = max(image.size) // REDUCED_SIDE
    if factor < 2:
        return image
    orientation = _exif_orientation(image)
    width, height = image.width // factor, image.height // factor
    rows = factor * REDUCE_BAND_ROWS
    reduced: Image.Image | None = None
    for top in range(0, height * factor, rows):
        band = image.crop((0, top, width * factor, min(top + rows, height * factor)))
        if band.mode in ("1", "P"):  # reducing these would pick pixels instead of averaging them
            band = band.convert("RGBA" if "transparency" in image.info else "RGB" if band.mode == "P" else "L")
        if band.mode.startswith("I;16"):  # reduce() has no 16-bit modes; a box resize is the same mean
            small = band.resize((width, band.height // factor), Image.Resampling.BOX)
        else:
            small = band.reduce(factor)
        if reduced is None:
            reduced = Image.new(small.mode, (width, height))
        reduced.paste(small, (0, top // factor))
    assert reduced is not None
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
