"""A check job (`POST /imports?mode=check`) on the local server: rows checked per second.

`python -m dupcheck serve` runs in its own process, with its defaults (8 downloads at once), over
a catalog of `--catalog` records moved in with `python -m dupcheck import` (the first `--real`
are real photographs of ../shared/bench/images, with their kept pictures; the rest filler:
random hashes with a real record's views, as scripts/bench/scale_bench.py builds them). The
job's `--rows` pictures come from a loopback picture host in this process that answers every
request `--delay` seconds late (50 ms: a shop's image host seen from elsewhere): a fifth are
edited copies of catalog photographs (5% cropped, brighter: duplicates), the rest photographs
not in the catalog. Measured: rows per second from the job's start to its end (the job's own
`started_at`/`finished_at`), how many rows it called duplicates, and the server's CPU seconds
for the job (/proc: user + system, every thread): rows per CPU second says what the job needs
of a machine whatever else runs on it (the load average is printed beside).

    .venv/bin/python scripts/bench/check_job_bench.py [--rows 500] [--catalog 10000] [--delay 0.05]

Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from scripts.helpers.loopback import ImageServer
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
SHARED = BENCH_IMAGES
UPDATED_AT = "2026-01-01T00:00:00.000Z"


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def edited_copy(data: bytes) -> bytes:
    """A re-upload of a catalog photograph: 5% cropped off each side, 10% brighter, recompressed."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    crop = image.crop((width // 20, height // 20, width - width // 20, height - height // 20))
    return jpeg(ImageEnhance.Brightness(crop).enhance(1.1))


def write_catalog(path: Path, files: list[Path], total: int) -> None:
    """The real records (with their kept pictures) first, then filler up to `total`."""
    from dupcheck.core.catalog.records import build_entry
    from dupcheck.core.fingerprint.hashing import get_pipeline

    pipeline = get_pipeline()
    rng = np.random.default_rng(1)
    with path.open("w") as out:
        real = []
        for file in files:
            entry = build_entry(pipeline, file.read_bytes(), entity_id=f"real-{file.stem}", sku=file.stem.upper(),
                                image_url=f"https://cdn.shop.example/{file.name}", max_pixels=40_000_000)  # fmt: skip
            line = entry.record.to_dict()
            real.append(line)
            out.write(json.dumps({**line, "thumbnail": base64.b64encode(entry.thumbnail).decode()}) + "\n")
        width = len(bytes.fromhex(str(real[0]["hash"])))
        codes = rng.integers(0, 256, (total - len(real), width), dtype=np.uint8)
        for offset, code in enumerate(codes):
            i = len(real) + offset
            out.write(json.dumps({"entity_id": f"fill-{i:08d}", "sku": "", "hash": code.tobytes().hex(),
                                  "image_url": f"https://cdn.shop.example/fill/{i:08d}.jpg", "updated_at": UPDATED_AT,
                                  "hash_algo": real[0]["hash_algo"], "features": real[i % len(real)]["features"]})
                      + "\n")  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call(url: str, method: str = "GET", body: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--catalog", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    files = sorted(SHARED.glob("*.jpg"))
    copies = args.rows // 5
    if len(files) < args.rows:
        raise SystemExit(f"{SHARED} has {len(files)} photographs; --rows needs at least {args.rows}")
    catalog_files, new_files = files[:copies], files[copies : copies + args.rows - copies]
    pictures = {f"/copy/{i}.jpg": edited_copy(f.read_bytes()) for i, f in enumerate(catalog_files)}
    pictures.update({f"/new/{i}.jpg": f.read_bytes() for i, f in enumerate(new_files)})
    host = ImageServer(delay=args.delay)
    for path, body in pictures.items():
        host.add(path, body)
    base = host.base_url

    with tempfile.TemporaryDirectory() as work:
        data, records = Path(work) / "data", Path(work) / "catalog.jsonl"
        write_catalog(records, catalog_files, args.catalog)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "lambdas"), "DUPCHECK_ALLOW_LOOPBACK_URLS": "true"}
        subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "import", str(records),
                        "--no-progress"], check=True, env=env, capture_output=True)  # fmt: skip
        port = 18000 + os.getpid() % 1000
        command = [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 300
            while True:
                try:
                    if call(f"{url}/health").get("index_ready"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not become ready in 300 s")
                time.sleep(0.2)
            rows = "".join(f"R{i},,{base}{path}\n" for i, path in enumerate(pictures))
            cpu_before = cpu_seconds(server.pid)
            job = call(f"{url}/imports?mode=check", "POST", ("entity_id,sku,image_url\n" + rows).encode())
            while (job := call(job["status_url"]))["status"] not in ("done", "failed", "cancelled"):
                time.sleep(0.5)
            cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(30)
    seconds = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    print(json.dumps({
        "rows": job["rows"], "catalog": args.catalog, "delay_s": args.delay, "status": job["status"],
        "checked": job["done"], "failed": job["failed"], "duplicates": job["duplicates"], "copies_in_rows": copies,
        "seconds": round(seconds, 1), "rows_per_s": round(job["rows"] / seconds, 1), "cpu_s": round(cpu, 1),
        "rows_per_cpu_s": round(job["rows"] / cpu, 1), "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
