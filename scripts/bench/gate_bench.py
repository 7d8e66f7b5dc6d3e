"""The duplicate gate as a shop's backend meets it, served by `python -m dupcheck serve`.

Two measurements on one server over a catalog of bench photos (`index-dir`), on loopback:

* **cost**: per picture, a `find_similar` of it (`POST /find_similar`, the upload) and a write of it
  through the gate (`PUT /items/{id}?image_url=...`, the same upload: `warn` stores it, then it is
  deleted; `reject` of a copy of a catalog photo: refused), alternated picture by picture and
  round by round, so the machine's drift hits each alike. Per kind, the median over the pictures
  of each picture's median, and the write's over the find's (the issue's target: <= 1.2x).
* **race**: rounds of WRITERS clients writing one new picture at the same moment, by each way in
  (POST /items, PUT with an address, an upload the service keeps), with `reject`: how many records
  each round stored (the guarantee: exactly one), and each refusal naming the stored one.

    .venv/bin/python scripts/bench/gate_bench.py [--catalog 200] [--pictures 40] [--rounds 2]
        [--race-rounds 20] [--json-out FILE]

Photos: ../shared/bench/images beside the checkout (`--images`). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from scripts.bench.served_alternated import cropped, free_port
from scripts.helpers.loopback import ImageServer, numbered
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
IMAGES = BENCH_IMAGES
WRITERS = 8


def call(url: str, method: str = "GET", body: bytes | None = None, content_type: str = "image/jpeg") -> tuple[
        int, Any, float]:  # fmt: skip
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    elapsed = (time.perf_counter() - started) * 1000
    return status, json.loads(raw) if raw else None, elapsed


def start(data: Path, catalog: Path) -> tuple[subprocess.Popen[bytes], str]:
    subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog),
                    "--no-progress"], check=True, capture_output=True)  # fmt: skip
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                    "DUPCHECK_ALLOW_LOOPBACK_URLS": "true"})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if call(f"{base}/health")[1]["index_ready"]:
                return process, base
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


def cost(base: str, pictures: list[bytes], copies: list[bytes], rounds: int) -> dict[str, Any]:
    """Per kind, each picture's median time over the rounds; then their median and the ratio."""
    times: dict[str, list[list[float]]] = {k: [[] for _ in pictures] for k in ("find", "warn")}
    times |= {k: [[] for _ in copies] for k in ("find_copy", "reject_copy")}
    for round_ in range(rounds):
        order = range(len(pictures)) if round_ % 2 == 0 else reversed(range(len(pictures)))
        for i in order:
            steps = [("find", lambda i=i: call(f"{base}/find_similar", "POST", pictures[i])),
                     ("warn", lambda i=i: call(f"{base}/items/gate-{i}?on_duplicate=warn&image_url=https://shop.test/"
                                               f"{i}.jpg", "PUT", pictures[i]))]  # fmt: skip
            for kind, step in steps if round_ % 2 == 0 else steps[::-1]:
                status, body, ms = step()
                assert status in (200, 201), (kind, status, body)
                times[kind][i].append(ms)
            call(f"{base}/items/gate-{i}", "DELETE")
        for i in range(len(copies)):
            steps = [("find_copy", lambda i=i: call(f"{base}/find_similar", "POST", copies[i])),
                     ("reject_copy", lambda i=i: call(f"{base}/items/copy-{i}?on_duplicate=reject&image_url="
                                                      f"https://shop.test/c{i}.jpg", "PUT", copies[i]))]  # fmt: skip
            for kind, step in steps if round_ % 2 == 0 else steps[::-1]:
                status, body, ms = step()
                assert status in (200, 409), (kind, status, body)
                times[kind][i].append(ms)
    medians = {kind: statistics.median(statistics.median(t) for t in per) for kind, per in times.items()}
    return {
        **{f"{kind}_median_ms": round(ms, 1) for kind, ms in medians.items()},
        "warn_over_find": round(medians["warn"] / medians["find"], 3),
        "reject_copy_over_find_copy": round(medians["reject_copy"] / medians["find_copy"], 3),
    }


def Pictures(pictures: list[bytes]) -> ImageServer:  # noqa: N802
    """The shop's image host, on loopback: GET /<n>.jpg answers picture n."""
    return ImageServer(numbered(pictures, "/"))


def write(base: str, way: str, entity_id: str, data: bytes, url: str) -> tuple[int, Any, float]:
    """One write of the race: POST /items of the picture's address, PUT of the upload with an
    address, or PUT of the upload alone (the service keeps its picture)."""
    if way == "post":
        item = json.dumps({"entity_id": entity_id, "image_url": url}).encode()
        return call(f"{base}/items?on_duplicate=reject", "POST", item, "application/json")
    address = f"&image_url={url}" if way == "put_with_address" else ""
    return call(f"{base}/items/{entity_id}?on_duplicate=reject{address}", "PUT", data)


def at_once(calls: list[Any]) -> list[Any]:
    """The calls on threads of their own, released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def race(base: str, pictures: list[bytes], rounds: int) -> dict[str, Any]:
    """Rounds of WRITERS writes of one picture at once, each way in; records stored per round."""
    host = Pictures(pictures)
    stored: dict[str, list[int]] = {}
    misnamed = 0
    for way in ("post", "put_with_address", "upload_kept"):
        for round_ in range(rounds):
            data = pictures[round_ % len(pictures)]
            prefix = f"race-{way}-{round_}-"
            url = f"{host.base_url}/{round_ % len(pictures)}.jpg"
            answers = at_once([partial(write, base, way, f"{prefix}{i}", data, url) for i in range(WRITERS)])
            kept = [f"{prefix}{i}" for i in range(WRITERS) if answers[i][0] == 201]
            stored.setdefault(way, []).append(len(kept))
            named = [a[1]["error"]["message"] for a in answers if a[0] == 409]
            misnamed += sum(1 for message in named if not kept or kept[0] not in message)
            for entity_id in kept:  # the next round writes the same picture again
                call(f"{base}/items/{entity_id}", "DELETE")
    host.close()
    return {"writers": WRITERS, "stored_per_round": stored,
            "rounds_not_one": sum(1 for v in stored.values() for n in v if n != 1),
            "refusals_not_naming_the_stored": misnamed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=IMAGES)
    parser.add_argument("--catalog", type=int, default=200)
    parser.add_argument("--pictures", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--race-rounds", type=int, default=20)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    catalog, new = files[::2][: args.catalog], files[1::2][: args.pictures]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "catalog"
        folder.mkdir()
        for path in catalog:
            (folder / path.name).write_bytes(path.read_bytes())
        process, base = start(Path(work) / "data", folder)
        try:
            pictures = [p.read_bytes() for p in new]
            copies = [cropped(p.read_bytes()) for p in catalog[: args.pictures]]
            out = {"catalog": len(catalog), "pictures": len(pictures), "rounds": args.rounds,
                   "cost": cost(base, pictures, copies, args.rounds),
                   "race": race(base, pictures, args.race_rounds)}  # fmt: skip
        finally:
            process.kill()
            process.wait()
    print(json.dumps(out, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
