"""A served check against another version's: uploads to each server, alternated query by query.

What a shop's backend waits for: `POST /find_similar` with the picture in the body, answered by
`python -m dupcheck serve`. Each version's code (its `lambdas/` folder) serves a data dir of its
own with the same photos indexed (`index-dir`), one BLAS thread each, on loopback; each query
goes to every server in turn, round after round (the order of the servers and of the queries
reversed every other round), so the machine's drift hits every version alike. Per query the
median over the rounds; then, per version, the median and 90th percentile over the queries
(verify_alternated.py's summary) and each median over the first version's.

    git archive ea88de7 lambdas | tar -x -C /tmp/v4      # the baseline: v4
    .venv/bin/python scripts/bench/served_alternated.py v4=/tmp/v4/lambdas head=lambdas \\
        [--kinds new,copy,turned,again] [--rounds 3] [--catalog 200] [--queries 60] [--json-out PREFIX]

Kinds: `new`, photos the catalog does not hold; `copy`, a catalog photo with 9% cut off each
side, JPEG 70; `turned`, one turned 4 degrees on white, JPEG 85 (verify_alternated.py's); `again`,
the picture a version's catalog holds for a photo, sent again as it is (v4's `index-dir` stored
the file, later ones keep a rendition of it: each version is sent its own). With
`--json-out PREFIX`, each kind's summary is written to PREFIX-KIND.json (scripts/results.py
records them as served-KIND). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

from scripts.bench.verify_alternated import summarise
from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES
KINDS = ("new", "copy", "turned", "again")


def cropped(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    out = io.BytesIO()
    image.crop((w * 9 // 100, h * 9 // 100, w * 91 // 100, h * 91 // 100)).save(out, "JPEG", quality=70)
    return out.getvalue()


def turned(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)).save(out, "JPEG", quality=85)
    return out.getvalue()


def photos(images: Path, catalog: int, queries: int) -> tuple[list[Path], list[bytes]]:
    """The catalog's files (every other photo of at least 0.7 MP) and the new products (the others)."""
    files = [p for p in sorted(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    large = [p for p in files if Image.open(p).size[0] * Image.open(p).size[1] >= 700_000]
    return large[::2][:catalog], [p.read_bytes() for p in large[1::2][:queries]]


def _closed(sock: socket.socket) -> bool:
    """Whether the peer has closed `sock` (readable at once, with nothing to read)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One version's `python -m dupcheck serve` on its own data dir, the catalog indexed."""

    def __init__(self, lambdas: Path, catalog: Path, work: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(lambdas.resolve()), "OPENBLAS_NUM_THREADS": "1"}
        data = work / "data"
        subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog)],
                       check=True, env=self.env, capture_output=True)  # fmt: skip
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.connection.request("GET", "/health")
                response = self.connection.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.3)

    def check(self, body: bytes) -> float:
        """Milliseconds for one upload's answer (a 200, or this raises). A keep-alive connection
        the server closed while idle (the other servers indexing, say) is opened again first."""
        if self.connection.sock is None or _closed(self.connection.sock):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.connect()
        started = time.perf_counter()
        self.connection.request("POST", "/find_similar?top=5", body=body, headers={"Content-Type": "image/jpeg"})
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.status != 200:
            raise RuntimeError(f"find_similar answered {response.status}")
        return elapsed

    def held(self, entity_id: str) -> bytes:
        """The picture the catalog holds for a record: the file its image_url names, or the
        rendition this server keeps (an upload the service kept, as `index-dir` keeps one)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", f"/items/{entity_id}")
            url = urlsplit(json.loads(connection.getresponse().read())["image_url"])
            if url.scheme == "file":
                return Path(unquote(url.path)).read_bytes()
            connection.request("GET", url.path)  # on this server, whatever port the record names
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{url.path} answered {response.status}")
            return body
        finally:
            connection.close()

    def close(self) -> None:
        self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="+", help="NAME=LAMBDAS_DIR, the first the baseline")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated, of " + ", ".join(KINDS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalog", type=int, default=200)
    parser.add_argument("--queries", type=int, default=60, help="queries of each kind")
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--json-out", help="write each kind's summary to PREFIX-KIND.json")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    versions = dict(v.split("=", 1) for v in args.versions)
    catalog_files, new = photos(args.images, args.catalog, args.queries)
    kept = [p.read_bytes() for p in catalog_files[: args.queries]]
    queries = {"new": new, "copy": [cropped(d) for d in kept], "turned": [turned(d) for d in kept], "again": kept}
    held: dict[str, list[bytes]] = {}  # per version, what its catalog holds of the photos asked `again`
    with tempfile.TemporaryDirectory(prefix="served-alternated-") as tmp:
        catalog = Path(tmp) / "catalog"
        catalog.mkdir()
        for path in catalog_files:
            (catalog / path.name).write_bytes(path.read_bytes())
        servers: dict[str, Server] = {}
        try:
            for name, lambdas in versions.items():
                (Path(tmp) / name).mkdir()
                servers[name] = Server(Path(lambdas), catalog, Path(tmp) / name)
            for server in servers.values():  # warm: the first answers load the index and the code
                for body in queries["new"][:5]:
                    server.check(body)
            if "again" in kinds:
                held = {name: [server.held(p.stem) for p in catalog_files[: args.queries]]
                        for name, server in servers.items()}  # fmt: skip
            for kind in kinds:
                bodies = queries[kind]
                samples = {name: [[] for _ in bodies] for name in servers}
                for round_ in range(args.rounds):
                    order = list(range(len(bodies)))[:: -1 if round_ % 2 else 1]
                    names = list(servers)[:: -1 if round_ % 2 else 1]
                    for i in order:
                        for name in names:
                            body = held[name][i] if kind == "again" else bodies[i]
                            samples[name][i].append(servers[name].check(body))
                summary = summarise(kind, args.rounds, samples)
                first = next(iter(summary["results"].values()))
                for result in summary["results"].values():
                    result["median_to_first_median"] = round(result["median_ms"] / first["median_ms"], 2)
                    result["p90_to_first_p90"] = round(result["p90_ms"] / first["p90_ms"], 2)
                summary["queries"] = len(bodies)
                summary["catalog"] = len(catalog_files)
                print(json.dumps(summary), flush=True)
                if args.json_out:
                    Path(f"{args.json_out}-{kind}.json").write_text(json.dumps(summary, indent=1) + "\n")
        finally:
            for server in servers.values():
                server.close()


if __name__ == "__main__":
    main()
