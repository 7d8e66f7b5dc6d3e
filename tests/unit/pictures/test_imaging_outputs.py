"""The decoder's output for ordinary pictures is pinned: the matching engine hashes exactly these
pixels, so any change to them changes every fingerprint (and every stored record's meaning).

GOLDEN holds a digest of what `decode_image` returned for each generated picture on main at
4ab9ffe, before the decoder's memory bounds (issue 31); the pictures cover every format and mode
a catalog sends, at sizes kept as they are and at sizes box-reduced, turned by EXIF and
transparent. A digest that changes means fingerprints change: re-index, never re-pin silently.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from dupcheck.core.pictures.imaging import decode_image
from dupcheck_tools.samples import product_image


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def normal_images() -> Iterator[tuple[str, bytes, int | None]]:
    """(name, bytes, draft_size): every format and mode a catalog sends, at sizes kept as they are
    and at sizes reduced, some turned by EXIF, some transparent."""
    exif = Image.Exif()
    exif[0x0112] = 6
    for size in ((640, 480), (2300, 2100)):
        rgb = product_image(sum(size), size)
        grey = rgb.convert("L")
        alpha = grey.point(lambda v: 255 - v // 2)
        rgba = Image.merge("RGBA", (*rgb.split(), alpha))
        yield f"jpeg-{size}", _saved(rgb, "JPEG", quality=90), 256
        yield f"jpeg-full-{size}", _saved(rgb, "JPEG", quality=90), None
        yield f"jpeg-progressive-{size}", _saved(rgb, "JPEG", quality=85, progressive=True), 256
        yield f"jpeg-exif-{size}", _saved(rgb, "JPEG", quality=90, exif=exif), 256
        yield f"jpeg-grey-{size}", _saved(grey, "JPEG", quality=90), 256
        yield f"jpeg-cmyk-{size}", _saved(rgb.convert("CMYK"), "JPEG", quality=90), 256
        yield f"png-rgb-{size}", _saved(rgb, "PNG"), 256
        yield f"png-rgba-{size}", _saved(rgba, "PNG"), 256
        yield f"png-la-{size}", _saved(Image.merge("LA", (grey, alpha)), "PNG"), 256
        yield f"png-p-{size}", _saved(rgb.quantize(64), "PNG"), 256
        yield f"png-p-transparent-{size}", _saved(rgb.quantize(64), "PNG", transparency=0), 256
        yield f"png-16-{size}", _saved(Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257), "PNG"), 256
        yield f"png-1-{size}", _saved(grey.convert("1"), "PNG"), 256
        yield f"png-exif-{size}", _saved(rgb, "PNG", exif=exif), 256
        yield f"webp-{size}", _saved(rgb, "WEBP", quality=80), 256
        yield f"webp-lossless-rgba-{size}", _saved(rgba, "WEBP", lossless=True), 256
        yield f"gif-{size}", _saved(rgb.quantize(128), "GIF"), 256
        yield f"bmp-{size}", _saved(rgb, "BMP"), 256
        yield f"bmp-p-{size}", _saved(rgb.quantize(32), "BMP"), 256
        yield f"tiff-{size}", _saved(rgb, "TIFF", compression="tiff_adobe_deflate"), 256
        yield f"tiff-cmyk-{size}", _saved(rgb.convert("CMYK"), "TIFF"), 256
        yield f"tiff-float-{size}", _saved(Image.fromarray(np.asarray(grey, dtype=np.float32) / 100), "TIFF"), 256


def digest(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode} {image.size}".encode() + image.tobytes()).hexdigest()[:16]


GOLDEN = {
    "jpeg-(640, 480)": "bc759090ccbb037b",
    "jpeg-full-(640, 480)": "bc759090ccbb037b",
    "jpeg-progressive-(640, 480)": "0d5d2ab4baf082cc",
    "jpeg-exif-(640, 480)": "7ab7ce0ed0a8a284",
    "jpeg-grey-(640, 480)": "98f1e56120cce9de",
    "jpeg-cmyk-(640, 480)": "2a428293240a5d27",
    "png-rgb-(640, 480)": "308bc1b7e01ad766",
    "png-rgba-(640, 480)": "3789c31d41a29e19",
    "png-la-(640, 480)": "f200f4ecc6aa7aa7",
    "png-p-(640, 480)": "0d504940565c9d8f",
    "png-p-transparent-(640, 480)": "0d504940565c9d8f",
    "png-16-(640, 480)": "a03583ba89893b28",
    "png-1-(640, 480)": "f3a02d8857264d18",
    "png-exif-(640, 480)": "7c9a76d76cbbf662",
    "webp-(640, 480)": "5df72f904e98f639",
    "webp-lossless-rgba-(640, 480)": "3789c31d41a29e19",
    "gif-(640, 480)": "22982201cd80a4d8",
    "bmp-(640, 480)": "308bc1b7e01ad766",
    "bmp-p-(640, 480)": "1284f35ee061253a",
    "tiff-(640, 480)": "308bc1b7e01ad766",
    "tiff-cmyk-(640, 480)": "308bc1b7e01ad766",
    "tiff-float-(640, 480)": "af0e130a8badf42d",
    "jpeg-(2300, 2100)": "2fe8522cdb2823c1",
    "jpeg-full-(2300, 2100)": "90ceeb021f629cf8",
    "jpeg-progressive-(2300, 2100)": "251933134e5c4ddb",
    "jpeg-exif-(2300, 2100)": "87271a4788aedfe1",
    "jpeg-grey-(2300, 2100)": "42f1c7bb573b5cdc",
    "jpeg-cmyk-(2300, 2100)": "b2d4300285848da5",
    "png-rgb-(2300, 2100)": "7811b08018145545",
    "png-rgba-(2300, 2100)": "941cd70015270fd5",
    "png-la-(2300, 2100)": "ee03fa806bc9164f",
    "png-p-(2300, 2100)": "aa95ceabe1f05329",
    "png-p-transparent-(2300, 2100)": "006322cc04fff479",
    "png-16-(2300, 2100)": "11a8fb262c4ae6ee",
    "png-1-(2300, 2100)": "6d427415a08da5c5",
    "png-exif-(2300, 2100)": "4ac54ed568cdcd5c",
    "webp-(2300, 2100)": "ee017c5f3c37d38e",
    "webp-lossless-rgba-(2300, 2100)": "941cd70015270fd5",
    "gif-(2300, 2100)": "caa8384faf7263c3",
    "bmp-(2300, 2100)": "7811b08018145545",
    "bmp-p-(2300, 2100)": "cc3bb31acb28aff3",
    "tiff-(2300, 2100)": "7811b08018145545",
    "tiff-cmyk-(2300, 2100)": "b3b7ed38a9515b31",
    "tiff-float-(2300, 2100)": "8874806baf9eee13",
}


@pytest.fixture(scope="module")
def decoded() -> dict[str, str]:
    return {
        name: digest(decode_image(data, max_pixels=40_000_000, draft_size=draft))
        for name, data, draft in normal_images()
    }


def test_every_ordinary_picture_decodes_to_the_same_pixels_as_before(decoded: dict[str, str]) -> None:
    assert set(decoded) == set(GOLDEN)
    changed = sorted(name for name in GOLDEN if decoded[name] != GOLDEN[name])
    assert changed == []
