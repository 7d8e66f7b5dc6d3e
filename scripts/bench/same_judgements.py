"""Do two commits judge the same queries identically? Every verdict, match percentage and edit,
and every candidate's verification evidence, compared exactly.

A speed change to verification must leave what it decides as it was: this indexes hash_bench.py's
photos with each commit's code (its `lambdas/` first on the path, in its own process, thumbnails
kept as the service keeps them), judges the same 700 queries (the 100 held-out photos as new
products, and six edits of the 100 indexed ones: a 9% crop, turned 4 degrees, turned -3 degrees
with `expand`, brightened 1.2 and turned 5 degrees, brightened 1.3, hue turned) and writes, per
query, the candidates' ids, each judgement (verdict, score, edits) and what `verify` returned
for each candidate (similarity, luma and colour off, layout, colour seen and missing, and the
alignment: angle, windows, views). The files are compared as text: floats are written with
every digit, so a difference in the last bit shows.

    git archive <commit> lambdas | tar -x -C /tmp/hb-<commit>
    .venv/bin/python scripts/bench/same_judgements.py main=/tmp/hb-main/lambdas head=lambdas \\
        [--images ../shared/bench/images] [--out /tmp/same-judgements]
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

from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES
EDITS = ("crop", "turn4", "turn-3-expand", "bright-turn", "bright", "hue")


def _edited(data: bytes, kind: str) -> bytes:
    from PIL import Image, ImageEnhance

    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    bicubic = Image.Resampling.BICUBIC
    if kind == "crop":  # hash_bench.cropped_copy's 9% off each side
        image = image.crop((width * 9 // 100, height * 9 // 100, width * 91 // 100, height * 91 // 100))
    elif kind == "turn4":
        image = image.rotate(4, resample=bicubic, fillcolor=(255, 255, 255))
    elif kind == "turn-3-expand":
        image = image.rotate(-3, resample=bicubic, expand=True, fillcolor=(255, 255, 255))
    elif kind == "bright-turn":
        image = ImageEnhance.Brightness(image).enhance(1.2).rotate(5, resample=bicubic, fillcolor=(250, 250, 250))
    elif kind == "bright":
        image = ImageEnhance.Brightness(image).enhance(1.3)
    elif kind == "hue":
        hue, saturation, value = image.convert("HSV").split()
        image = Image.merge("HSV", (hue.point(lambda level: (level + 40) % 256), saturation, value)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def worker(images: Path, out: Path) -> None:
    """One commit's judgements of every query, as JSON lines in `out`."""
    from PIL import Image

    from dupcheck.adapters.local_index import LocalHashIndex
    from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
    from dupcheck.core.fingerprint import hashing
    from dupcheck.core.matching import judge
    from dupcheck.core.models import HashRecord
    from scripts.bench.verify_alternated import judge_of

    thumbnails = SqliteThumbnails(Path(tempfile.mkdtemp(prefix="same-judgements-")) / "thumbnails.sqlite3")
    files = [p for p in sorted(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    photos = [p.read_bytes() for p in files if Image.open(p).size[0] * Image.open(p).size[1] >= 700_000][:200]
    pipeline = hashing.get_pipeline()
    index = LocalHashIndex(getattr(pipeline, "index_bits", None) or pipeline.bits)
    records = {}
    for i, data in enumerate(photos[::2]):
        fp = pipeline.fingerprint_bytes(data, max_pixels=40_000_000, for_query=False)
        records[f"E{i}"] = HashRecord(f"E{i}", "", "", fp.hash, fp.algo, features=dict(fp.features))
        index.upsert(records[f"E{i}"])
        thumbnails.put_many({f"E{i}": fp.thumbnail})
    queries = [("new", i, data) for i, data in enumerate(photos[1::2])]
    queries += [(kind, i, _edited(data, kind)) for kind in EDITS for i, data in enumerate(photos[::2])]
    returned: list[list] = []
    verify = judge.verify

    def kept(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        found = verify(*args, **kwargs)
        returned.append([None if e is None else _evidence(e) for e in found])
        return found

    judge.verify = kept  # what verification returned, beside what the pipeline made of it
    pool = pipeline.candidate_pool(5)
    judged_by = judge_of(pipeline)
    with out.open("w") as lines:
        for kind, i, data in queries:
            query = pipeline.fingerprint_bytes(data, max_pixels=40_000_000)
            hits = index.search(query.search_hashes, pool)
            returned.clear()
            judged = judged_by(query, [(records[h.entity_id], h.distance) for h in hits], thumbnails.get_many)
            row = {
                "kind": kind, "i": i, "ids": [h.entity_id for h in hits],
                "judgements": [[str(j.verdict), repr(j.score), repr(j.edits)] for j in judged],
                "evidence": returned[:],
            }  # fmt: skip
            lines.write(json.dumps(row) + "\n")


def _evidence(e) -> list:  # noqa: ANN001
    a = e.alignment
    where = None if a is None else [a.angle, a.rows, a.cols, a.candidate_view, a.mirrored, a.query_box, a.query_trimmed]
    return [repr(e.similarity), repr(e.luma_off), repr(e.colour_off), e.layout_off, e.colour_seen,
            repr(e.colour_missing), repr(where)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="*", help="NAME=LAMBDAS_DIR, two of them")
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "same-judgements")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.images, args.worker)
        return
    if len(args.commits) != 2 or any("=" not in c for c in args.commits):
        parser.error("give two NAME=LAMBDAS_DIR")
    args.out.mkdir(parents=True, exist_ok=True)
    outputs = []
    for spec in args.commits:
        name, lambdas = spec.split("=", 1)
        outputs.append(args.out / f"{name}.jsonl")
        env = {**os.environ, "PYTHONPATH": str(Path(lambdas).resolve())}
        command = [sys.executable, __file__, "--worker", str(outputs[-1].resolve())]
        subprocess.run([*command, "--images", str(args.images.resolve())], check=True, env=env, cwd="/")
    first, second = (path.read_text().splitlines() for path in outputs)
    differ = [f"{json.loads(a)['kind']} {json.loads(a)['i']}" for a, b in zip(first, second, strict=True) if a != b]
    judged = sum(len(json.loads(line)["judgements"]) for line in first)
    evidence = sum(sum(e is not None for e in found) for line in first for found in json.loads(line)["evidence"])
    compared = f"{len(first)} queries, {judged} judgements, {evidence} verification evidences compared"
    print(f"{compared}: {len(differ)} differ")
    for query in differ[:20]:
        print("differs:", query)
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
