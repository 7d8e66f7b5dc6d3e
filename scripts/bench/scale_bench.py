"""Serving at catalog scale: the local server over N records, as a client sees it.

For each N (default 10k, 100k, 1M) a store is built the way a user would move a catalog in
(`python -m dupcheck import` of a records file), then `python -m dupcheck serve` is started on
it and measured from the outside:

* import: records/s, and the data directory's size per record;
* start: seconds from launching the server to `/health` answering, to the index being ready
  (`/health` `index_ready`), and to the first find_similar's answer (an upload sent then), with
  the bytecode Python caches compiled first, as an installed package has it;
* find_similar end to end over one keep-alive connection, p50 and p99: GET by URL (a loopback
  image server) and POST upload;
* with `--thumbnails`, every line carries a kept picture (real ones, cycled, each made for its
  line's hash, as an export carries them: `with_thumbnails`), and the
  run reports the thumbnails' file against the pictures' own bytes (`thumbnails_over_pictures`,
  the target <= 1.2) and per record;
* in the same run, in process over the same store: the service's own time for the same query
  (`find_similar_bytes`), the index search as the pipeline calls it (its query hashes,
  `candidate_pool` candidates), the same search by faiss `IndexBinaryFlat` (one thread) over
  the same codes, and `within` (every hash within the near-duplicate radius) for the queries.

The catalog is the first 500 real photos of ../shared/bench/images (fingerprinted by the default
pipeline); the rest of each store is filler: random hashes, each with the views of a real
record, so every record has the size of a real one. Queries are edited copies of catalog photos
(a 5% crop, brighter, recompressed) and photos not in the catalog. Only 127.0.0.1 is used.

    .venv/bin/python scripts/bench/scale_bench.py [--sizes 10000,100000,1000000] [--queries 40] [--thumbnails]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageEnhance

from scripts.bench.serve_bench import free_port, image_server, percentile, timed
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
IMAGES = BENCH_IMAGES

REAL = 500  # catalog photos; the others are queries for new products
UPDATED_AT = "2026-11-22T10:00:00.000000+00:00"

IN_PROCESS = """
import json, statistics, sys, time
from pathlib import Path
import faiss, numpy as np
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from scripts.helpers.places import BENCH_IMAGES
service = build_service(Settings.from_env(data_dir=Path(sys.argv[1])))
service.parts.index.wait_ready() if hasattr(service.parts.index, "wait_ready") else None
pipeline, index = service.parts.pipeline, service.parts.index
queries = [Path(p).read_bytes() for p in sys.argv[2:]]
prints = [service.lookups.fingerprint(data) for data in queries]
k = pipeline.candidate_pool(5)
flat = faiss.IndexBinaryFlat(pipeline.index_bits)
faiss.omp_set_num_threads(1)
flat.add(index._codes[: index._size])
def median_ms(run, items, reps=3):
    for item in items[:3]:
        run(item)
    samples = []
    for _ in range(reps):
        for item in items:
            started = time.perf_counter(); run(item); samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)
def codes(fp):
    return np.stack([np.frombuffer(h.data, np.uint8) for h in fp.search_hashes])
index.within([h for fp in prints[:1] for h in fp.search_hashes], 8)  # builds the tables
print(json.dumps({
    "service_ms": median_ms(lambda data: service.lookups.find_similar_bytes(data, 5), queries),
    "search_ms": median_ms(lambda fp: index.search(fp.search_hashes, k), prints),
    "faiss_flat_ms": median_ms(lambda fp: flat.search(codes(fp), k), prints),
    "within_ms": median_ms(lambda fp: index.within(fp.search_hashes, 8), prints),
    "hits_checked": k,
}))
"""


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def edited_copy(image: Image.Image) -> Image.Image:
    width, height = image.size
    crop = image.crop((width // 20, height // 20, width - width // 20, height - height // 20))
    return ImageEnhance.Brightness(crop).enhance(1.1)


def real_records(files: list[Path]) -> list[dict[str, object]]:
    from dupcheck.core.catalog.records import build_entry
    from dupcheck.core.fingerprint.hashing import get_pipeline

    pipeline = get_pipeline()
    records = []
    for path in files:
        entry = build_entry(pipeline, path.read_bytes(), entity_id=f"real-{path.stem}", sku=path.stem.upper(),
                            image_url=f"https://cdn.shop.example/media/catalog/product/{path.name}",
                            max_pixels=40_000_000)  # fmt: skip
        records.append(entry.record.to_dict())  # the index and the store's scale: thumbnails are not measured here
    return records


def write_records(path: Path, real: list[dict[str, object]], total: int) -> None:
    """The real records first, then filler up to `total` (so each store is a prefix)."""
    rng = np.random.default_rng(1)
    width = len(bytes.fromhex(str(real[0]["hash"])))
    with path.open("w") as file:
        for record in real:
            file.write(json.dumps(record, separators=(",", ":")) + "\n")
        for start in range(len(real), total, 100_000):
            count = min(100_000, total - start)
            codes = rng.integers(0, 256, (count, width), dtype=np.uint8)
            for offset in range(count):
                i = start + offset
                views = real[i % len(real)]["features"]
                line = {"entity_id": f"fill-{i:08d}", "sku": f"FILL-{i:08d}",
                        "image_url": f"https://cdn.shop.example/media/catalog/product/fill/{i:08d}.jpg",
                        "hash": codes[offset].tobytes().hex(), "hash_algo": real[0]["hash_algo"],
                        "updated_at": UPDATED_AT, "features": views}  # fmt: skip
                file.write(json.dumps(line, separators=(",", ":")) + "\n")


_THUMBNAIL = re.compile(r'"thumbnail":"([^"]*)"')


def head(source: Path, target: Path, lines: int) -> int:
    """`source`'s first `lines` lines into `target`; the bytes of the thumbnails they carry."""
    pictures = 0
    with source.open() as src, target.open("w") as out:
        for number, line in enumerate(src):
            if number == lines:
                break
            out.write(line)
            if found := _THUMBNAIL.search(line):
                pictures += len(base64.b64decode(found.group(1)))
    return pictures


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def start_server(
    data: Path, env: dict[str, str], first_query: bytes | None = None
) -> tuple[subprocess.Popen[bytes], int, dict[str, float]]:
    port = free_port()
    launched = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    answering = ready = None
    deadline = launched + 300
    while ready is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
            answering = answering or time.perf_counter() - launched
            if body.get("index_ready", response.status == 200):
                ready = time.perf_counter() - launched
        except OSError:
            pass
        if time.perf_counter() > deadline:
            server.kill()
            raise RuntimeError("the server did not become ready in 300 s")
        if ready is None:
            time.sleep(0.05)
    started = {"start_answering_s": round(answering or ready, 2), "start_ready_s": round(ready, 2)}
    if first_query is not None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status = timed(connection, "POST", "/find_similar?top=5", first_query, {"Content-Type": "image/jpeg"})[1]
        assert status == 200, status
        started["start_first_answer_s"] = round(time.perf_counter() - launched, 2)
    return server, port, started


def measure_size(size: int, records: Path, queries: list[Path], images_url: str, work: Path,
                 env: dict[str, str]) -> dict[str, object]:  # fmt: skip
    data = work / f"data-{size}"
    file = work / f"records-{size}.jsonl"
    pictures = head(records, file, size)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "import", str(file), "--no-progress"],
                   check=True, env=env, capture_output=True)  # fmt: skip
    imported_s = time.perf_counter() - started
    file.unlink()
    result: dict[str, object] = {
        "records": size,
        "import_records_per_s": round(size / imported_s),
        "data_dir_bytes_per_record": round(directory_bytes(data) / size),
        "data_dir_mb": round(directory_bytes(data) / 2**20, 1),
    }
    if pictures:  # the kept pictures' store against the pictures' own bytes
        store = sum(f.stat().st_size for f in data.glob("thumbnails.sqlite3*"))
        result.update(thumbnails_bytes_per_record=round(store / size), picture_bytes_per_record=round(pictures / size),
                      thumbnails_over_pictures=round(store / pictures, 3))  # fmt: skip
    uploads = [q.read_bytes() for q in queries]
    server, port, started_at = start_server(data, env, first_query=uploads[0])
    result.update(started_at)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in uploads[:3]:  # warm-up
            timed(connection, "POST", "/find_similar?top=5", body, {"Content-Type": "image/jpeg"})
        by_url, upload = [], []
        for _ in range(3):
            for q, body in zip(queries, uploads, strict=True):
                url = quote(f"{images_url}/q/{q.name}", safe="")
                elapsed, status = timed(connection, "GET", f"/find_similar?image_url={url}&top=5")
                assert status == 200, status
                by_url.append(elapsed)
                elapsed, status = timed(connection, "POST", "/find_similar?top=5", body, {"Content-Type": "image/jpeg"})
                assert status == 200, status
                upload.append(elapsed)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name, samples in (("find_by_url", by_url), ("find_upload", upload)):
        result[f"{name}_p50_ms"] = round(percentile(samples, 0.5), 1)
        result[f"{name}_p99_ms"] = round(percentile(samples, 0.99), 1)
    in_process = subprocess.run([sys.executable, "-c", IN_PROCESS, str(data), *map(str, queries)],
                                check=True, env=env, capture_output=True, text=True)  # fmt: skip
    result.update(json.loads(in_process.stdout.strip().splitlines()[-1]))
    shutil.rmtree(data)
    return result


def with_thumbnails(source: Path, out: Path, photos: int = 300) -> None:
    """`source`'s lines as a v4 export has them: each with a thumbnail made for its own hash."""
    from dupcheck.core.fingerprint.hashing import get_pipeline
    from dupcheck.core.stored.thumbnails import _HEADER

    pipeline = get_pipeline()
    made = [pipeline.fingerprint_bytes(path.read_bytes(), max_pixels=40_000_000, for_query=False)
            for path in sorted(IMAGES.glob("*.jpg"))[:photos]]  # fmt: skip
    pool = [(_HEADER.unpack_from(fp.thumbnail), fp.thumbnail[_HEADER.size :]) for fp in made if fp.thumbnail]
    with source.open("rb") as lines, out.open("w") as file:
        for number, line in enumerate(lines):
            record = json.loads(line)
            (magic, _, _, *box), jpeg = pool[number % len(pool)]
            digest = bytes.fromhex(record["hash"])
            thumbnail = _HEADER.pack(magic, len(digest), digest.ljust(16, b"\0"), *box) + jpeg
            record.update(hash_algo=pipeline.algo, thumbnail=base64.b64encode(thumbnail).decode("ascii"))
            file.write(json.dumps(record, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="store sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=40, help="edited copies of catalog photos")
    parser.add_argument("--new", type=int, default=10, help="photos not in the catalog, also queried")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--thumbnails", action="store_true", help="every record with its kept picture")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    files = sorted(IMAGES.glob("*.jpg"))
    if len(files) < REAL + args.new:
        sys.exit(f"needs {REAL + args.new} photos in {IMAGES}")
    # As a user runs it: with the bytecode Python caches (an environment that forbids writing it
    # compiles every module at every start, ~1 s of a server's start here), compiled before any start.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT / "lambdas"), DUPCHECK_ALLOW_LOOPBACK_URLS="true")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "lambdas")], check=True, env=env)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        real = real_records(files[:REAL])
        records = work / "records.jsonl"
        write_records(records, real, max(sizes))
        if args.thumbnails:
            plain, records = records, work / "records-thumbnails.jsonl"
            with_thumbnails(plain, records)
            plain.unlink()
        print(f"records file: {max(sizes)} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        folder = work / "queries"
        folder.mkdir()
        for i, path in enumerate(rng.sample(files[:REAL], args.queries)):
            (folder / f"copy{i:03d}.jpg").write_bytes(jpeg(edited_copy(Image.open(path))))
        for path in files[REAL : REAL + args.new]:
            (folder / f"new-{path.name}").write_bytes(path.read_bytes())
        queries = sorted(folder.iterdir())
        images, images_url = image_server(folder)
        try:
            results = []
            for size in sizes:
                results.append(measure_size(size, records, queries, images_url, work, env))
                print(json.dumps(results[-1]), file=sys.stderr)
        finally:
            images.close()
    base = results[0]
    for row in results:
        row["find_by_url_p50_vs_smallest"] = round(row["find_by_url_p50_ms"] / base["find_by_url_p50_ms"], 2)
        row["search_vs_faiss_flat"] = round(row["search_ms"] / row["faiss_flat_ms"], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
