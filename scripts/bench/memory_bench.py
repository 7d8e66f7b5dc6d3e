"""Peak memory of one request at the pixel limit, for every format and mode a request may carry.

Each case is a picture just under the default pixel cap (40 MP: 6324 x 6324) in one format and
mode, smooth enough to stay small (a bomb's shape: a few KB to a few MB), sent through the
service's `find_similar_bytes` in a fresh process: what a request costs, decode to verdict.
Formats whose every file of that size is over the 20 MB upload limit (BMP's uncompressed modes)
are measured at the largest size the limit lets through. Reported: the answer (`ok`, or the
413 of a picture whose decoding would cost more than DUPCHECK_MAX_DECODE_MB), the cost the
decoder's model predicts from the header (core/pictures/imaging.py, `decode_cost`), and the request's own
peak: the process's high-water mark after the request minus its RSS once ready.

    .venv/bin/python scripts/bench/memory_bench.py [--lambdas DIR] [--cases png-rgba webp-lossy ...]

`--lambdas` runs the same measurement against other code (a worktree of the baseline commit);
code without the model prints "-" for it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SIDE = 6324  # 6324^2 = 39,992,976 pixels: under the default 40,000,000 cap
MAX_BYTES = 20 * 2**20  # the default upload limit
TARGET_MB = 300

MEASURE = """
import io, re, sys, tempfile
from pathlib import Path
from PIL import Image
from dupcheck.bootstrap import build_service
from dupcheck.core.errors import DupcheckError
from dupcheck.core.settings import Settings

def mb(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024

service = build_service(Settings.from_env({}, data_dir=tempfile.mkdtemp()))
lookups = getattr(service, "lookups", service)  # a baseline older than the composed service is its own
lookups.find_similar_bytes(Path(sys.argv[2]).read_bytes(), 5)  # warm-up: every import, every cache
data = Path(sys.argv[1]).read_bytes()
try:
    from dupcheck.core.pictures import imaging
    image = Image.open(io.BytesIO(data))
    stored = image.size
    if image.format == "JPEG":
        image.draft("RGB", (256, 256))
    model = str(imaging.decode_cost(image, data, stored) // imaging.MB)
except (ImportError, AttributeError):
    model = "-"
del image
ready = mb("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # forget the peak so far
try:
    lookups.find_similar_bytes(data, 5)
    answer = "ok"
except DupcheckError as exc:
    answer = exc.code
print(ready, mb("VmHWM"), len(data), model, answer)
"""


def smooth(side: int) -> np.ndarray:
    """A smooth, photo-like field in [0, 1], in 256 steps: it compresses small."""
    axis = np.linspace(0.0, 1.0, side, dtype=np.float32)
    return np.round((np.outer(axis, 1 - axis) * 4).clip(0, 1) * 255) / 255


def grey(side: int = SIDE) -> Image.Image:
    return Image.fromarray((smooth(side) * 255).astype(np.uint8), "L")


def rgb(side: int = SIDE) -> Image.Image:
    g = grey(side)
    return Image.merge("RGB", (g, g.transpose(Image.Transpose.FLIP_LEFT_RIGHT), g))


def rgba(side: int = SIDE) -> Image.Image:
    return Image.merge("RGBA", (*rgb(side).split(), grey(side)))


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png16(channels: int) -> bytes:
    """A 16-bit RGB or RGBA PNG (Pillow writes 16 bits for grey only)."""
    field = (smooth(SIDE) * 65535).astype(">u2")
    planes = [field, field[:, ::-1], field, field][:channels]
    pixels = np.stack(planes, axis=-1)
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(SIDE))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", SIDE, SIDE, 16, 2 if channels == 3 else 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def rle_bmp(rle4: bool, side: int = SIDE) -> bytes:
    """A run-length coded BMP (RLE8, or RLE4), runs of 255 pixels: 40 MP in a third of a MB."""
    row, left = b"", side
    while left:
        run = min(255, left)
        row += bytes([run, 0x11 if rle4 else 1])
        left -= run
    pixels = (row + b"\x00\x00") * side + b"\x00\x01"
    colours = 16 if rle4 else 256
    palette = b"".join(bytes([i, i, i, 0]) for i in range(colours))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 4 if rle4 else 8, 2 if rle4 else 1, len(pixels), 2835, 2835,
                       colours, 0)  # fmt: skip
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def under_limit(bytes_per_pixel: int) -> int:
    """The side of the largest square an uncompressed format fits under the upload limit."""
    return int((MAX_BYTES / bytes_per_pixel) ** 0.5) - 8


def webp_side() -> int:
    """The largest square WebP the default decode limit admits (16 bytes a pixel: module docstring)."""
    return int(((240 - 24) * 2**20 / 16) ** 0.5)  # 24 MB: what reducing it adds


CASES: dict[str, Callable[[], bytes]] = {
    "png-L": lambda: saved(grey(), "PNG"),
    "png-LA": lambda: saved(Image.merge("LA", (grey(), grey())), "PNG"),
    "png-I;16": lambda: saved(Image.fromarray((smooth(SIDE) * 65535).astype(np.uint16)), "PNG"),
    "png-1": lambda: saved(grey().convert("1"), "PNG"),
    "png-P": lambda: saved(rgb().quantize(64), "PNG"),
    "png-RGB": lambda: saved(rgb(), "PNG"),
    "png-RGBA": lambda: saved(rgba(), "PNG"),
    "png-RGB-16bit": lambda: png16(3),
    "png-RGBA-16bit": lambda: png16(4),
    "jpeg-RGB": lambda: saved(rgb(), "JPEG", quality=85),
    "jpeg-L": lambda: saved(grey(), "JPEG", quality=85),
    "jpeg-CMYK": lambda: saved(rgb().convert("CMYK"), "JPEG", quality=85),
    "jpeg-RGB-progressive": lambda: saved(rgb(), "JPEG", quality=85, progressive=True),
    "jpeg-RGB-progressive-444": lambda: saved(rgb(), "JPEG", quality=85, progressive=True, subsampling=0),
    "jpeg-CMYK-progressive": lambda: saved(rgb().convert("CMYK"), "JPEG", quality=85, progressive=True),
    "webp-RGB": lambda: saved(rgb(), "WEBP", quality=80),
    "webp-RGBA-lossless": lambda: saved(rgba(), "WEBP", lossless=True),
    "webp-RGB-at-its-limit": lambda: saved(rgb(webp_side()), "WEBP", quality=80),
    "webp-RGBA-lossless-at-its-limit": lambda: saved(rgba(webp_side()), "WEBP", lossless=True),
    "gif-P": lambda: saved(rgb().quantize(64), "GIF"),
    "bmp-1": lambda: saved(grey().convert("1"), "BMP"),
    "bmp-P-RLE8": lambda: rle_bmp(rle4=False),
    "bmp-P-RLE4": lambda: rle_bmp(rle4=True),
    "bmp-RGB-at-the-byte-limit": lambda: saved(rgb(under_limit(3)), "BMP"),
    "bmp-RGBA-at-the-byte-limit": lambda: saved(rgba(under_limit(4)), "BMP"),
    "tiff-RGB": lambda: saved(rgb(), "TIFF", compression="tiff_adobe_deflate"),
    "tiff-RGB-one-strip": lambda: saved(rgb(), "TIFF", compression="tiff_adobe_deflate", strip_size=2**31),
    "tiff-RGB-jpeg": lambda: saved(rgb(), "TIFF", compression="jpeg"),
    "tiff-CMYK": lambda: saved(rgb().convert("CMYK"), "TIFF", compression="tiff_adobe_deflate"),
    "tiff-I": lambda: saved(Image.fromarray((smooth(SIDE) * 1_000_000).astype(np.int32)), "TIFF",
                            compression="tiff_adobe_deflate"),
    "tiff-F": lambda: saved(Image.fromarray((smooth(SIDE) * 3.5).astype(np.float32)), "TIFF",
                            compression="tiff_adobe_deflate"),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to measure")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.lambdas.resolve())}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.jpg"
        rgb(400).save(warm, "JPEG")
        for name in args.cases:
            data = CASES[name]()
            size = Image.open(io.BytesIO(data)).size
            path = Path(tmp) / "image"
            path.write_bytes(data)
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, str(path), str(warm)],
                check=True, capture_output=True, text=True, env=env, cwd=tmp,
            ).stdout.split()  # fmt: skip
            ready, peak, answer = float(out[0]), float(out[1]), out[4]
            row = {"case": name, "size": f"{size[0]}x{size[1]}", "file_kb": round(len(data) / 1024), "model_mb": out[3],
                   "answer": answer, "ready_mb": round(ready), "request_mb": round(peak - ready)}  # fmt: skip
            rows.append(row)
            print(f"{name:34} {row['size']:>9} {row['file_kb']:8} KB  model {row['model_mb']:>4} MB  {answer:15} "
                  f"request {row['request_mb']:5} MB", flush=True)  # fmt: skip
    worst = max(r["request_mb"] for r in rows)
    print(json.dumps({"code": str(args.lambdas), "pixels": SIDE * SIDE, "rows": rows, "worst_request_mb": worst,
                      "target_mb": TARGET_MB}))  # fmt: skip


if __name__ == "__main__":
    main()
