"""Peak memory of one request at the pixel limit, for every image mode a request may carry.

For each mode (L, LA, I;16, I, F, P, RGB, RGBA, CMYK) an image just under the default pixel cap
(40 MP: 6324 x 6324) is encoded (PNG where PNG holds the mode, TIFF otherwise) and sent through
the service's `find_similar_bytes` in a fresh process: what a request costs, decode to verdict.
Reported: the process's RSS once the service is ready (after a warm-up query), its peak
(VmHWM) after the request, and the difference, the request's own peak.

    .venv/bin/python scripts/bench/memory_bench.py [--lambdas DIR]   # DIR: another checkout's lambdas/

`--lambdas` runs the same measurement against other code (the baseline in docs/benchmarks.md is
the commit before the bounded decode, checked out in a worktree).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SIDE = 6324  # 6324^2 = 39,992,976 pixels: under the default 40,000,000 cap
TARGET_MB = 300

MEASURE = """
import re, sys, tempfile
from pathlib import Path
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings

def rss(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024

service = build_service(Settings.from_env({}, data_dir=tempfile.mkdtemp()))
service.find_similar_bytes(Path(sys.argv[2]).read_bytes(), 5)  # warm-up: every import, every cache
ready = rss("VmRSS")
data = Path(sys.argv[1]).read_bytes()
service.find_similar_bytes(data, 5)
print(ready, rss("VmHWM"), len(data))
"""


def smooth(side: int) -> np.ndarray:
    """A smooth, photo-like field in [0, 1], in 256 steps: it compresses small (like the 77 KB PNG
    of the report), so even the 32-bit TIFFs stay under the 20 MB upload limit."""
    axis = np.linspace(0.0, 1.0, side, dtype=np.float32)
    return np.round((np.outer(axis, 1 - axis) * 4).clip(0, 1) * 255) / 255


def image(mode: str) -> tuple[bytes, str]:
    field = smooth(SIDE)
    if mode in ("I;16", "I", "F"):
        values = {"I;16": field * 65535, "I": field * 1_000_000, "F": field * 3.5}[mode]
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        picture = Image.fromarray(values.astype(dtype))  # uint16: I;16, int32: I, float32: F
    else:
        grey = Image.fromarray((field * 255).astype(np.uint8), "L")
        rgb = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))
        picture = {"L": grey, "LA": Image.merge("LA", (grey, grey)), "RGB": rgb,
                   "RGBA": Image.merge("RGBA", (*rgb.split(), grey)), "CMYK": rgb.convert("CMYK"),
                   "P": rgb.quantize(64)}[mode]  # fmt: skip
    fmt = "TIFF" if mode in ("I", "F", "CMYK") else "PNG"
    out = io.BytesIO()
    picture.save(out, fmt, **({"compression": "tiff_adobe_deflate"} if fmt == "TIFF" else {}))
    return out.getvalue(), fmt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to measure")
    parser.add_argument("--modes", nargs="*", default=["L", "LA", "I;16", "I", "F", "P", "RGB", "RGBA", "CMYK"])
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.lambdas.resolve())}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.jpg"
        Image.fromarray((smooth(400) * 255).astype(np.uint8)).convert("RGB").save(warm, "JPEG")
        for mode in args.modes:
            data, fmt = image(mode)
            path = Path(tmp) / f"image.{fmt.lower()}"
            path.write_bytes(data)
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, str(path), str(warm)],
                check=True, capture_output=True, text=True, env=env, cwd=tmp,
            ).stdout.split()  # fmt: skip
            ready, peak, size = float(out[0]), float(out[1]), int(out[2])
            rows.append({"mode": mode, "format": fmt, "file_kb": round(size / 1024), "ready_mb": round(ready),
                         "peak_mb": round(peak), "request_mb": round(peak - ready)})  # fmt: skip
            print(f"{mode:5} {fmt:4} {size / 1024:8.0f} KB  ready {ready:5.0f} MB  peak {peak:5.0f} MB  "
                  f"request {peak - ready:5.0f} MB", flush=True)  # fmt: skip
    worst = max(r["peak_mb"] for r in rows)
    print(json.dumps({"code": str(args.lambdas), "pixels": SIDE * SIDE, "rows": rows, "worst_peak_mb": worst,
                      "target_mb": TARGET_MB}))  # fmt: skip


if __name__ == "__main__":
    main()
