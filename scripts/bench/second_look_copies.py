"""How often the duplicate report's second look refutes a copy, and how often a colour variant.

The catalog-wide benchmark (docs/evaluation.md, "Catalog-wide duplicates") has 28-29 copies of
each kind of edit, so a second-look test can pass all of them and still refute copies of
pictures it never saw. Here every photo of ../shared/bench/images (or every `--every`th) is
edited by each whole-picture edit below, at the ends of make_benchmark's ranges, saved as a JPEG
(quality 70, as a shop's re-upload), and looked at against its original as the report looks at
a pair the service called duplicate (`second_look`, the original's thumbnail); every colour
variant of ../shared/bench/colour_variants.csv likewise against its sibling. A copy refuted is a
duplicate the report leaves out; a variant refuted is a wrong pair it avoids. Each count is split
by the step that refuted it (second_look.py: 3, a part recoloured; 4, a part retinted), and each
refuted name carries its step-4 measure.

    .venv/bin/python scripts/bench/second_look_copies.py [--every 3] [--images DIR]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance

from dupcheck.core.hashing import get_pipeline
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Views
from dupcheck_tools.duplicates.second_look import MIN_SHARE, SHARED_OUTLINE, Look, second_look

BENCH = Path(__file__).resolve().parents[3] / "shared" / "bench"
EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "saturation 0.4": lambda picture: ImageEnhance.Color(picture).enhance(0.4),
    "saturation 1.5": lambda picture: ImageEnhance.Color(picture).enhance(1.5),
    "saturation 1.8": lambda picture: ImageEnhance.Color(picture).enhance(1.8),
    "brightness 0.7": lambda picture: ImageEnhance.Brightness(picture).enhance(0.7),
    "brightness 1.3": lambda picture: ImageEnhance.Brightness(picture).enhance(1.3),
    "contrast 0.7": lambda picture: ImageEnhance.Contrast(picture).enhance(0.7),
    "contrast 1.3": lambda picture: ImageEnhance.Contrast(picture).enhance(1.3),
    "jpeg 40": lambda picture: picture,
}


@dataclasses.dataclass
class Counts:
    looked: int = 0
    refuted: int = 0
    by_part_recoloured: int = 0  # second_look.py's step 3
    by_tint: int = 0  # step 4
    names: list[str] = dataclasses.field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=BENCH / "images")
    parser.add_argument("--variants", type=Path, default=BENCH / "colour_variants.csv")
    parser.add_argument("--every", type=int, default=1, help="every n-th photo (default all)")
    args = parser.parse_args()
    pipeline = get_pipeline()

    def look(query: Image.Image, original: Image.Image) -> Look | None:
        probe = pipeline.fingerprint(query).probe
        stored = pipeline.fingerprint(original, for_query=False)
        thumbnail, views = Thumbnail.decode(stored.thumbnail), Views.decode(stored.features["views"])
        if probe is None or thumbnail is None or views is None:
            return None
        return second_look(pipeline, probe, views, thumbnail, 0)

    def saved(picture: Image.Image, quality: int) -> Image.Image:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    counts: dict[str, Counts] = {}

    def count(kind: str, name: str, found: Look | None) -> None:
        row = counts.setdefault(kind, Counts())
        if found is None:
            return
        row.looked += 1
        if found.recoloured:
            row.refuted += 1
            row.names.append(f"{name} ({found.tinted:.3f})")
            if found.share >= MIN_SHARE and found.outline >= SHARED_OUTLINE:  # step 3, else step 4
                row.by_part_recoloured += 1
            else:
                row.by_tint += 1

    photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[:: args.every]
    for path in photos:
        original = Image.open(path).convert("RGB")
        for kind, edit in EDITS.items():
            count(kind, path.name, look(saved(edit(original), 40 if kind == "jpeg 40" else 70), original))
    with args.variants.open() as file:
        for row in csv.DictReader(file):
            variant = Image.open(args.variants.parent / "colour_variants" / row["variant"]).convert("RGB")
            sibling = Image.open(args.images / row["sibling"]).convert("RGB")
            count("colour variant against its sibling", row["variant"], look(variant, sibling))
    print(json.dumps({kind: dataclasses.asdict(row) for kind, row in counts.items()}, indent=2))


if __name__ == "__main__":
    main()
