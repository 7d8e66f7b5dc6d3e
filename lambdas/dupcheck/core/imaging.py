"""Untrusted image bytes -> one decoded, normalised RGB image, or a clear error.

The format is decided from the bytes (magic numbers), never from a header or file name, and
the pixel count is checked before any pixel is decoded, so a decompression bomb costs nothing.
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
        raise UnsupportedImage(
            f"not a supported image (expected one of {', '.join(SUPPORTED_FORMATS)})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImage(f"{fmt} image has no pixels")
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
                )
            if fmt == "JPEG" and draft_size:
                image.draft("RGB", (draft_size, draft_size))  # type: ignore[attr-defined]
            image.load()  # first frame only for GIF/WebP/TIFF
            image = _apply_orientation(image)
            return _to_rgb(image)
    except (ImageTooLarge, InvalidImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image rejected as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"{fmt} data is corrupt or truncated: {exc}") from exc


def _apply_orientation(image: Image.Image) -> Image.Image:
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
