#!/usr/bin/env python3
"""A fresh part: product photos from another store's sample data, for figures no limit saw.

    npm pack @vendure/create@3.7.3          # the package, from the npm registry
    python scripts/fresh_photos.py --tarball vendure-create-3.7.3.tgz --out fresh-originals

writes

    out/vendure_NNNN.jpg   each of the package's 54 sample product photos (electronics,
                           furniture, plants, sports goods: Unsplash photos, their file names
                           credit the photographers), upright, at most 1024 px a side, JPEG 90,
                           as ../shared/bench/images holds its originals
    out/sources.csv        file,asset: which photo each file is

The development photos (../shared/bench) are split into a part every limit was chosen on and a
lockbox that has been looked at since (docs/evaluation.md). These photos come from a source
neither holds: the Vendure demo store's sample data, shot in a studio style the development
photos do not have (soft backdrops, scenes). Feed the folder to make_benchmark.py, make_stress.py
and make_recolours.py as `--originals` / `--catalog`. The tarball is checked against the one
these figures were made from, so the same files come out on any machine with the same Pillow.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
import tarfile
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps

PACKAGE_SHA256 = "89f0a9ce225c44b7f9fc07a85bca655f98c48bbb7f3aa06ae0e9c04ce5db0af7"  # @vendure/create 3.7.3
IMAGES = PurePosixPath("package/assets/images")
SIDE = 1024
QUALITY = 90


def photos(tarball: Path) -> list[tuple[str, bytes]]:
    """(asset name, bytes) of each sample photo in the package, by name."""
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != PACKAGE_SHA256:
        raise SystemExit(f"{tarball}: sha256 {digest}, not the pinned package's {PACKAGE_SHA256}")
    found = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if member.isfile() and path.parent == IMAGES and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                handle = archive.extractfile(member)
                assert handle is not None
                found.append((path.name, handle.read()))
    return sorted(found)


def original(data: bytes) -> bytes:
    """The photo as the development set keeps its originals: upright, at most SIDE px, JPEG QUALITY."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, required=True, help="vendure-create-3.7.3.tgz (npm pack)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, (asset, data) in enumerate(photos(args.tarball), start=1):
        name = f"vendure_{number:04d}.jpg"
        (args.out / name).write_bytes(original(data))
        rows.append((name, asset))
    with (args.out / "sources.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "asset"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} photos to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
