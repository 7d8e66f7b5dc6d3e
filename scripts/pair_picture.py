#!/usr/bin/env python3
"""Two pictures side by side as the default pipeline judges them, the look-alike check's view below.

    python scripts/pair_picture.py QUERY CANDIDATE --out docs/img/lookalike-pair.png [--title TEXT]

CANDIDATE is registered (its record and thumbnail, as the service makes them) and QUERY judged
against it. Top: the two pictures. Below: the query's 64x64 patch at the views' alignment, the
candidate's thumbnail mapped onto it by the check (core/matching/photograph.py), the difference of the
two, and the numbers: the views' evidence, the check's measures and limits, and the verdict
without and with the check. For the docs: the hardest pair of an evaluation, looked at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dupcheck.core.hashing import AlignedDualPHash, get_pipeline
from dupcheck.core.matching.alignment import verify
from dupcheck.core.matching.photograph import LookalikeCheck
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Views
from dupcheck.core.models import HashRecord

HEIGHT = 300  # the pictures' height in the figure
ZOOM = 3  # the 64x64 patches, enlarged
MAX_PIXELS = 40_000_000


def render(query: Path, candidate: Path, title: str) -> Image.Image:
    pipeline = get_pipeline()
    assert isinstance(pipeline, AlignedDualPHash)
    stored = pipeline.fingerprint_bytes(candidate.read_bytes(), max_pixels=MAX_PIXELS, for_query=False)
    record = HashRecord(candidate.stem, candidate.stem, "", stored.hash, stored.algo, features=dict(stored.features))
    probe = pipeline.fingerprint_bytes(query.read_bytes(), max_pixels=MAX_PIXELS)
    distance = min(h - record.hash for h in probe.search_hashes)
    candidates = [(record, distance)]
    views_alone = pipeline.judge(probe, candidates)[0].verdict.value
    with_check = pipeline.judge(probe, candidates, lambda ids: dict.fromkeys(ids, stored.thumbnail))[0].verdict.value
    tier = pipeline.policy.tier(distance)
    views = Views.decode(stored.features["views"])
    assert views is not None
    evidence = verify(probe.probe, [views], [tier])[0]
    thumbnail = Thumbnail.decode(stored.thumbnail)
    assert evidence is not None and evidence.alignment is not None and thumbnail is not None
    check = LookalikeCheck(probe.probe, pipeline.policy.lookalike, lambda _: thumbnail)
    aligned = check.aligned(thumbnail, evidence.alignment)
    detail = check.examine(thumbnail, evidence.alignment)
    assert aligned is not None and detail is not None

    pictures = [_scaled(Image.open(path).convert("RGB")) for path in (query, candidate)]
    q, w = aligned.query, aligned.warped
    inside = aligned.inside
    fitted = np.polyval(np.polyfit(w[inside], q[inside], 1), w) if inside.sum() > 2 else w
    difference = np.where(inside, 128 + (q - fitted), 255)
    patches = [_patch(q), _patch(np.where(inside, w, 255)), _patch(difference)]
    limits = pipeline.policy.lookalike
    lines = [
        title,
        f"query {query.name}  |  candidate {candidate.name}  |  hash distance {distance} of 64 (closer half)",
        f"views: correlation {evidence.similarity:.3f}, luma off {evidence.luma_off:.1%}, colour off "
        f"{evidence.colour_off:.1%}, colour missing {evidence.colour_missing:.2%}: "
        f"{'pass' if tier.passes(evidence) else 'fail'}",
        f"check: structure {detail.structure:.3f} (>= {limits.min_structure}), detail missing {detail.missing:.3f} "
        f"(<= {limits.max_missing}), recoloured {detail.recoloured:.4f} (<= {limits.max_recoloured}), "
        f"overlap {detail.overlap:.2f}",
        f"check in colour: retinted {detail.retinted:.4f} (<= {limits.max_retinted}), repainted "
        f"{detail.repainted:.4f} (<= {limits.max_repainted})",
        f"verdict: {views_alone} on the views alone, {with_check} with the look-alike check",
        "below: query patch 64x64 | candidate thumbnail mapped onto it | difference (grey = none)",
    ]
    font = ImageFont.load_default(size=14)
    width = max(sum(p.width for p in pictures) + 30, 3 * 64 * ZOOM + 40, 900)
    height = HEIGHT + 20 + 64 * ZOOM + 20 + 20 * len(lines) + 20
    figure = Image.new("RGB", (width, height), "white")
    x = 10
    for picture in pictures:
        figure.paste(picture, (x, 10))
        x += picture.width + 10
    for i, patch in enumerate(patches):
        figure.paste(patch, (10 + i * (64 * ZOOM + 10), HEIGHT + 20))
    draw = ImageDraw.Draw(figure)
    for i, line in enumerate(lines):
        draw.text((10, HEIGHT + 30 + 64 * ZOOM + i * 20), line, fill="black", font=font)
    return figure


def _scaled(picture: Image.Image) -> Image.Image:
    return picture.resize((max(1, round(picture.width * HEIGHT / picture.height)), HEIGHT), Image.Resampling.LANCZOS)


def _patch(values: np.ndarray) -> Image.Image:
    patch = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")
    return patch.resize((64 * ZOOM, 64 * ZOOM), Image.Resampling.NEAREST).convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", type=Path, help="the picture searched with")
    parser.add_argument("candidate", type=Path, help="the catalog picture it is judged against")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default="", help="a first line for the figure")
    args = parser.parse_args(argv)
    render(args.query, args.candidate, args.title).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
