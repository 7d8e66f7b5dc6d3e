#!/usr/bin/env python3
"""Two pictures side by side as the default pipeline judges them, the same-photograph test below.

    python scripts/pair_picture.py QUERY CANDIDATE --out docs/img/hardest-pair.png [--title TEXT]

CANDIDATE is registered (its record and kept picture, as the service makes them) and QUERY
judged against it. Top: the two pictures. Below, at the side the test compares
(core/matching/photograph.py): the query's patch at the views' alignment, the kept picture
mapped onto it, the fine detail of each (the band the test correlates), and each tile's
correlation (white 1, black 0 or less; grey: not judged). Then the numbers: the views'
evidence, the test's median tile correlation against its limit, the share recoloured, and the
verdict. For the docs: the hardest pair of an evaluation, looked at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dupcheck.core.fingerprint.hashing import AlignedDualPHash, get_pipeline
from dupcheck.core.limits.policy import DETAIL, DETAIL_TILE, RECOLOURED, SAME_PHOTOGRAPH
from dupcheck.core.matching.alignment import verify
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.matching.photograph import band, examine
from dupcheck.core.models import HashRecord
from dupcheck.core.pictures.arrays import tiles
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import Views

HEIGHT = 300  # the pictures' height in the figure
PANEL = 220  # each patch's side in the figure
MAX_PIXELS = 40_000_000


def render(query: Path, candidate: Path, title: str) -> tuple[Image.Image, list[str]]:
    """The figure, and its lines of text."""
    pipeline = get_pipeline()
    assert isinstance(pipeline, AlignedDualPHash)
    stored = pipeline.fingerprint_bytes(candidate.read_bytes(), max_pixels=MAX_PIXELS, for_query=False)
    record = HashRecord(candidate.stem, candidate.stem, "", stored.hash, stored.algo, features=dict(stored.features))
    probe = pipeline.fingerprint_bytes(query.read_bytes(), max_pixels=MAX_PIXELS)
    distance = min(h - record.hash for h in probe.search_hashes)
    (judged,) = judge_candidates(
        pipeline, probe, [(record, distance)], lambda ids: dict.fromkeys(ids, stored.thumbnail)
    )
    views = Views.decode(stored.features["views"])
    kept = Thumbnail.decode(stored.thumbnail)
    assert views is not None and kept is not None and probe.probe is not None
    looked = pipeline.policy.looked(distance)
    evidence = verify(probe.probe, [views], [looked])[0]
    assert evidence is not None and evidence.alignment is not None
    finding = examine(probe.probe, kept, evidence.alignment)
    assert finding is not None, "the patch is too small to compare"

    q, w, inside = finding.aligned.query, finding.aligned.warped, finding.aligned.inside
    query_detail, kept_detail = band(q), band(w)
    patches = [_patch(q), _patch(np.where(inside, w, 255)), _detail(query_detail), _detail(kept_detail),
               _correlations(query_detail, kept_detail, inside)]  # fmt: skip
    pictures = [_scaled(Image.open(path).convert("RGB")) for path in (query, candidate)]
    lines = [
        title,
        f"query {query.name}  |  catalog picture {candidate.name}  |  hash distance {judged.distance} of 64 "
        "(the closest half)",
        f"views (32 px): correlation {evidence.similarity:.3f}, luma off {evidence.luma_off:.1%}: "
        f"{'lined up, so tested' if looked.passes(evidence) else 'not lined up'}",
        f"same-photograph test at {finding.side} px: median tile correlation of the fine detail "
        f"{finding.shared:.3f} over {finding.tiles} tiles (the same photograph from {SAME_PHOTOGRAPH}), "
        f"recoloured {finding.recoloured:.1%} (another colour from {RECOLOURED:.1%})",
        f"verdict: {judged.verdict.value}, {judged.score:.1f}%",
        "below: query | catalog picture mapped onto it | their fine detail | each tile's correlation (white 1)",
    ]
    font = ImageFont.load_default(size=14)
    width = max(sum(p.width for p in pictures) + 30, len(patches) * (PANEL + 10) + 10)
    height = HEIGHT + 20 + PANEL + 20 + 20 * len(lines) + 20
    figure = Image.new("RGB", (width, height), "white")
    x = 10
    for picture in pictures:
        figure.paste(picture, (x, 10))
        x += picture.width + 10
    for i, patch in enumerate(patches):
        figure.paste(patch, (10 + i * (PANEL + 10), HEIGHT + 20))
    draw = ImageDraw.Draw(figure)
    for i, line in enumerate(lines):
        draw.text((10, HEIGHT + 30 + PANEL + i * 20), line, fill="black", font=font)
    return figure, lines


def _correlations(mine: np.ndarray, theirs: np.ndarray, inside: np.ndarray) -> Image.Image:
    """Each tile's correlation of the two details, as photograph.py judges it (grey: a tile
    with too little detail in the kept picture, or not wholly inside it)."""
    tile = DETAIL_TILE if mine.shape[0] >= 128 else DETAIL_TILE // 2
    a, b, covered = (tiles(values, tile) for values in (mine, theirs, inside))
    judged = (covered.mean(axis=2) > 0.9) & (b.std(axis=2) > DETAIL)
    a, b = a - a.mean(axis=2, keepdims=True), b - b.mean(axis=2, keepdims=True)
    correlation = (a * b).sum(axis=2) / np.maximum(np.sqrt((a * a).sum(axis=2) * (b * b).sum(axis=2)), 1e-9)
    shown = np.where(judged, np.clip(correlation, 0, 1) * 255, 128)
    return _patch(np.kron(shown, np.ones((tile, tile))))


def _detail(values: np.ndarray) -> Image.Image:
    spread = max(float(np.percentile(np.abs(values), 99)), 1e-6)
    return _patch(128 + 127 * np.clip(values / spread, -1, 1))


def _scaled(picture: Image.Image) -> Image.Image:
    return picture.resize((max(1, round(picture.width * HEIGHT / picture.height)), HEIGHT), Image.Resampling.LANCZOS)


def _patch(values: np.ndarray) -> Image.Image:
    patch = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")
    return patch.resize((PANEL, PANEL), Image.Resampling.NEAREST).convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", type=Path, help="the picture searched with")
    parser.add_argument("candidate", type=Path, help="the catalog picture it is judged against")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default="", help="a first line for the figure")
    args = parser.parse_args(argv)
    figure, _ = render(args.query, args.candidate, args.title)
    figure.save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
