"""Hostile input and slow clients against a local server: issue 31's table, replayed.

Starts `python -m dupcheck serve` in its own process (a fresh data dir) and a loopback image and
catalog host, then runs one probe per row of the table (and its smaller items), each bounded in
time, while the server's RSS (with its child processes) is sampled every 0.1 s. Prints each
probe's verdict and what it measured, then the server's idle, peak and final RSS and the probes
that failed (JSON, last line). Exit 1 when any failed.

    .venv/bin/python scripts/bench/stress_bench.py [--lambdas DIR] [--only slowloris,webp,...]

`--lambdas` runs the same probes against another checkout's code (a worktree of the baseline).
Only loopback addresses are used: the clients of the slow-client probes bind 127.0.x.y source
addresses (all this machine's) so the server sees many clients. The whole run takes about two
minutes; each probe gives up after its own time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import psutil
from PIL import Image

from scripts.helpers.loopback import ImageServer

ROOT = Path(__file__).resolve().parents[2]
CEILING_MB = 300  # one request's memory over idle (docs/api.md, images)
SIDE = 6324  # just under the 40 MP pixel limit


# -- the loopback host of images and catalogs ---------------------------------------------------------


class Host(ImageServer):
    """Images and catalogs on 127.0.0.1 (scripts/helpers/loopback.py): `put` a path's body, with
    a delay of its own; `count` the GETs of paths under a prefix."""

    def put(self, path: str, body: bytes, delay: float = 0.0) -> str:
        self.delays[path] = delay
        return self.add(path, body)

    def count(self, prefix: str) -> int:
        return sum(n for path, n in self.counts().items() if path.startswith(prefix))


# -- the server under test ----------------------------------------------------------------------------


class Server:
    def __init__(self, lambdas: Path, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUPCHECK_")}  # the defaults, as shipped
        env.update(PYTHONPATH=str(lambdas.resolve()), DUPCHECK_DATA_DIR=str(data_dir), DUPCHECK_PORT="0",
                   DUPCHECK_ALLOW_LOOPBACK_URLS="true", DUPCHECK_LOG_LEVEL="WARNING")  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "serve"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"serving on (http://\S+)", line)
        if not found:
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = found.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.data_dir = data_dir
        self.samples: list[tuple[float, float]] = []
        self.idle_mb = 0.0  # once warm, before the probes
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def rss_mb(self) -> float:
        try:
            parent = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 2**20
        except psutil.Error:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append((time.monotonic(), self.rss_mb()))

    def peak_since(self, moment: float) -> float:
        return max((mb for at, mb in self.samples if at >= moment), default=self.rss_mb())

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait(10)


def call(url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None,
         timeout: float = 30) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)
    except (OSError, TimeoutError) as exc:
        return 0, str(exc).encode(), {}


def as_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {}


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    rng = np.random.default_rng(seed)
    grid = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    return saved(grid, "JPEG", quality=90)


def wait_job(server: Server, job: dict, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = as_json(call(f"{server.url}/imports/{job['job_id']}")[1])
        if current.get("status") in ("done", "failed", "cancelled"):
            return current
        time.sleep(0.1)
    return as_json(call(f"{server.url}/imports/{job['job_id']}")[1])


def submit(server: Server, body: bytes, content_type: str = "text/csv") -> tuple[int, dict]:
    status, answer, _ = call(f"{server.url}/imports", "POST", body, content_type, timeout=120)
    return status, as_json(answer)


def failures(server: Server, job: dict) -> list[dict]:
    return as_json(call(f"{server.url}/imports/{job.get('job_id')}/failures?limit=1000")[1]).get("failures", [])


def connect_from(server: Server, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))


def health_times(server: Server, seconds: float) -> list[float]:
    """/health, once every 0.25 s for `seconds`: each answer's seconds (inf for none or an error)."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        status, _, _ = call(f"{server.url}/health", timeout=5)
        times.append(time.monotonic() - started if status == 200 else float("inf"))
        time.sleep(0.25)
    return times


def trickle(sockets: list[socket.socket], stop: threading.Event, every: float) -> None:
    request = b"POST /find_similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\nX-Slow: " + b"a" * 10_000
    for position in range(len(request)):
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.sendall(request[position : position + 1])
        if stop.wait(every):
            return


# -- the probes: (passed, what was measured) ----------------------------------------------------------

Probe = Callable[[Server, Host], tuple[bool, str]]


def slow_clients(sources: Callable[[int], str]) -> Probe:
    def probe(server: Server, host: Host) -> tuple[bool, str]:
        sockets = []
        for i in range(120):
            with contextlib.suppress(OSError):
                sockets.append(connect_from(server, sources(i)))
        stop = threading.Event()
        threading.Thread(target=trickle, args=(sockets, stop, 1.0), daemon=True).start()
        try:
            times = health_times(server, 20)
        finally:
            stop.set()
            for sock in sockets:
                sock.close()
        worst = max(times)
        late = sum(t > 2 for t in times)
        return late == 0, f"/health {len(times)} times in 20 s, worst {worst:.2f} s, {late} over 2 s or unanswered"

    return probe


def gzip_long_line(server: Server, host: Host) -> tuple[bool, str]:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as packed:
        packed.write(b"entity_id,image_url\nA1," + host.base_url.encode() + b"/g/")
        block = b"x" * 2**20
        for _ in range(300):
            packed.write(block)
        packed.write(b".jpg\nA2," + host.put("/g/2.jpg", picture(2)).encode() + b"\n")
    data = out.getvalue()
    started, idle = time.monotonic(), server.rss_mb()
    status, job = submit(server, data, "application/gzip")
    done = wait_job(server, job, 120) if status == 202 else {}
    extra = server.peak_since(started) - idle
    listed = [(f.get("row"), f.get("code")) for f in failures(server, done)] if done else []
    ok = status == 202 and done.get("status") == "done" and done.get("done") == 1 and extra <= CEILING_MB
    return ok, (f"{len(data) // 1024} KB gzip, one 300 MB line: {status}, job {done.get('status')}, failures {listed}; "
                f"server +{extra:.0f} MB")  # fmt: skip


def webp_bomb(server: Server, host: Host) -> tuple[bool, str]:
    bomb = saved(Image.new("RGB", (6300, 6300), (200, 30, 30)), "WEBP", lossless=True)
    started, idle = time.monotonic(), server.rss_mb()
    status, body, _ = call(f"{server.url}/find_similar", "POST", bomb, "image/webp", timeout=120)
    one = server.peak_since(started) - idle
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: call(f"{server.url}/find_similar", "POST", bomb, "image/webp",
                                                timeout=120)[0], range(8)))  # fmt: skip
    eight = server.peak_since(started) - idle
    ok = one <= CEILING_MB and eight <= CEILING_MB and 500 not in statuses and status != 500
    return ok, (f"{len(bomb)} B 6300x6300 WebP: {status} {as_json(body).get('error', {}).get('code', '')}, "
                f"+{one:.0f} MB; 8 at once {sorted(set(statuses))}, +{eight:.0f} MB")  # fmt: skip


def header_of_nul(server: Server, host: Host) -> tuple[bool, str]:
    catalog = gzip.compress(b"\x00" * (30 * 2**20) + b",image_url\nA1,http://h.test/a.jpg\n")
    status, answer = submit(server, catalog, "application/gzip")
    answer_bytes = len(json.dumps(answer))
    url = host.put("/nul.csv.gz", catalog)
    _, job = submit(server, json.dumps({"catalog_url": url}).encode(), "application/json")
    done = wait_job(server, job, 60)
    status_bytes = len(call(f"{server.url}/imports/{job.get('job_id')}")[1])
    listed = len(call(f"{server.url}/imports?limit=100")[1])
    ok = status == 422 and answer_bytes < 2000 and done.get("status") == "failed" and status_bytes < 4000
    ok = ok and listed < 100_000
    return ok, (f"30 MB header of NUL: upload {status} ({answer_bytes} B answer); by URL job {done.get('status')}, "
                f"GET /imports/{{id}} {status_bytes} B, GET /imports {listed} B")  # fmt: skip


def unparsable_urls(server: Server, host: Host) -> tuple[bool, str]:
    good = host.put("/u/good.jpg", picture(5))
    seen = []
    ok = True
    for n, bad in enumerate(("http://[127.0.0.1]/a.jpg", "http://[::1/a.jpg")):
        status, job = submit(server, f"entity_id,image_url\nB{n},{bad}\nG{n},{good}\n".encode())
        first = wait_job(server, job) if status == 202 else {}
        status2, job2 = submit(server, f"entity_id,image_url\nH{n},{good}\nC{n},{bad}\n".encode())
        second = wait_job(server, job2) if status2 == 202 else {}
        codes = [f.get("code") for f in failures(server, first) + failures(server, second)]
        seen.append(f"{bad}: {status}/{first.get('status')}, {status2}/{second.get('status')} {codes}")
        listed = len(codes) == 2 and all(c and c != "internal_error" for c in codes)
        ok = ok and first.get("done") == 1 and second.get("done") == 1 and listed
    return ok, "; ".join(seen)


def one_pixel_strips(server: Server, host: Host) -> tuple[bool, str]:
    seen, ok = [], True
    for size in ((100_000, 1), (1, 100_000)):
        data = saved(Image.new("L", size, 100), "PNG")
        statuses = [call(f"{server.url}/find_similar", "POST", data, "image/png")[0],
                    call(f"{server.url}/items/strip-{size[0]}?image_url={quote(host.base_url)}/s.png", "PUT", data,
                         "image/png")[0],
                    call(f"{server.url}/images", "POST", data, "image/png")[0]]  # fmt: skip
        seen.append(f"{size[0]}x{size[1]} ({len(data)} B): {statuses}")
        ok = ok and statuses == [200, 201, 201]
    return ok, "; ".join(seen)


def same_id_twice(server: Server, host: Host) -> tuple[bool, str]:
    early = host.put("/d/early.jpg", picture(11), delay=1.0)
    late = host.put("/d/late.jpg", picture(12))
    status, job = submit(server, f"entity_id,sku,image_url\nDUP,OLD,{early}\nDUP,NEW,{late}\n".encode())
    done = wait_job(server, job)
    item = as_json(call(f"{server.url}/items/DUP")[1])
    listed = [(f.get("row"), f.get("code")) for f in failures(server, done)]
    ok = item.get("image_url") == late and done.get("replaced") == 1 and listed == [(1, "replaced")]
    return ok, f"kept {item.get('sku')}; job done {done.get('done')}, replaced {done.get('replaced')}, listed {listed}"


def cancel(server: Server, host: Host) -> tuple[bool, str]:
    rows = "".join(f"C{i},{host.put(f'/c/{i}.jpg', picture(100 + i))}\n" for i in range(80))
    host.hold()
    try:
        status, job = submit(server, ("entity_id,image_url\n" + rows).encode())
        deadline = time.monotonic() + 20
        while host.count("/c/") < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        call(f"{server.url}/imports/{job.get('job_id')}", "DELETE")
        at_cancel = host.count("/c/")
    finally:
        host.release()
    time.sleep(3)
    after = host.count("/c/")
    done = as_json(call(f"{server.url}/imports/{job.get('job_id')}")[1])
    listed = as_json(call(f"{server.url}/items?limit=100")[1]).get("items", [])
    stored = sum(1 for item in listed if str(item.get("entity_id", "")).startswith("C"))
    # docs/api.md: no download starts after DELETE answers; the rows still downloading then are
    # dropped, not counted; the job's counts are what was stored.
    ok = after == at_cancel and done.get("done") == stored and done.get("status") == "cancelled"
    return ok, (f"{at_cancel} downloads when DELETE answered, {after} in all; job done {done.get('done')}, "
                f"{stored} stored, after_cancel {done.get('after_cancel')} ({done.get('status')})")  # fmt: skip


def kept_pictures(server: Server, host: Host) -> tuple[bool, str]:
    status, _, _ = call(f"{server.url}/images", "POST", b"BM<html><script>alert(document.cookie)</script>",
                        "image/bmp")  # fmt: skip
    kept_status, kept, _ = call(f"{server.url}/images", "POST", picture(21), "image/jpeg")
    _, _, headers = call(as_json(kept).get("image_url", server.url))
    nosniff = headers.get("X-Content-Type-Options") == "nosniff"
    policy = headers.get("Content-Security-Policy", "")
    ok = 400 <= status < 500 and kept_status == 201 and nosniff and "default-src 'none'" in policy
    return ok, f"BM<html>: {status}; a picture: {kept_status}, nosniff {nosniff}, CSP {policy!r}"


def formula_cells(server: Server, host: Host) -> tuple[bool, str]:
    data = picture(31, (400, 400))
    ids = ["=HYPERLINK(A1)", "@SUM(A1)", "+1", "-1"]
    for entity_id in ids:
        call(f"{server.url}/items/{quote(entity_id)}?sku={quote(entity_id)}", "PUT", data, "image/jpeg")
    out = server.data_dir / "duplicates"
    env = {**os.environ, "PYTHONPATH": os.environ.get("STRESS_LAMBDAS", ""), "DUPCHECK_DATA_DIR": str(server.data_dir)}
    subprocess.run([sys.executable, "-m", "dupcheck", "duplicates", "--out", str(out)], env=env,
                   capture_output=True, timeout=300)  # fmt: skip
    with contextlib.suppress(OSError), (out / "duplicates.csv").open(newline="") as fh:
        cells = [(r["entity_id"], r["sku"]) for r in csv.DictReader(fh) if r["entity_id"].lstrip("'") in ids]
        raw = [cell for pair in cells for cell in pair]
        ok = len(raw) == 2 * len(ids) and all(cell.startswith("'") for cell in raw)
        return ok, f"duplicates.csv cells: {raw}"
    return False, "no duplicates.csv"


def memory_after(server: Server, host: Host) -> tuple[bool, str]:
    axis = np.linspace(0, 1, SIDE, dtype=np.float32)
    grey = Image.fromarray((np.outer(axis, 1 - axis) * 4 * 255).clip(0, 255).astype(np.uint8))
    rgb = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))
    pictures = [saved(Image.merge("RGBA", (*rgb.split(), grey)), "PNG", compress_level=1),
                saved(rgb, "JPEG", quality=85, progressive=True, subsampling=0),
                saved(rgb.convert("CMYK"), "TIFF", compression="tiff_adobe_deflate")]  # fmt: skip
    before = server.rss_mb()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: call(f"{server.url}/find_similar", "POST", pictures[i % 3],
                                                "application/octet-stream", timeout=180)[0], range(24)))  # fmt: skip
    peak = server.peak_since(started)
    time.sleep(3)
    after = server.rss_mb()
    ok = after - server.idle_mb < 150 and 500 not in statuses
    return ok, (f"24 requests of 40 MP (8 at once): {sorted(set(statuses))}; RSS {before:.0f} -> peak {peak:.0f} -> "
                f"{after:.0f} MB 3 s later (idle at the start: {server.idle_mb:.0f} MB)")  # fmt: skip


def smaller(server: Server, host: Host) -> tuple[bool, str]:
    good = host.put("/s/good.jpg", picture(41))
    items = {"items": [{"entity_id": "LONGURL", "image_url": good + "?" + "x" * 3000},
                       {"entity_id": "PORT", "image_url": "http://h.test:99999/a.jpg"},
                       {"entity_id": "S-OK", "image_url": good}]}  # fmt: skip
    status, job = submit(server, json.dumps(items).encode(), "application/json")
    done = wait_job(server, job) if status == 202 else {}
    codes = [f.get("code") for f in failures(server, done)]
    spaces = call(f"{server.url}/items", "POST", json.dumps({"entity_id": "   ", "image_url": good}).encode(),
                  "application/json")[0]  # fmt: skip
    ok = status == 202 and done.get("done") == 1 and codes == ["invalid_image_url"] * 2 and spaces == 400
    return ok, (f"a 3,000-character URL and a port out of range in items: {status}, row codes {codes}; "
                f"an id of spaces: {spaces}")  # fmt: skip


PROBES: dict[str, tuple[str, Probe]] = {
    "slowloris": ("1: 120 trickling half-sent requests from one address",
                  slow_clients(lambda i: "127.0.0.9")),
    "slowloris-spread": ("1: 120 trickling half-sent requests from 120 addresses",
                         slow_clients(lambda i: f"127.0.{1 + i // 200}.{10 + i % 200}")),
    "gzip-line": ("2: a gzip catalog holding one 300 MB line", gzip_long_line),
    "webp": ("3: a 1.6 KB 6300x6300 WebP, once and 8 at once", webp_bomb),
    "nul-header": ("4: a catalog header of 30 MB of NUL bytes", header_of_nul),
    "bad-urls": ("5: rows with http://[127.0.0.1]/a.jpg and http://[::1/a.jpg", unparsable_urls),
    "strips": ("6: 100000x1 and 1x100000 PNGs on the image routes", one_pixel_strips),
    "same-id": ("7: the same id twice, the earlier host slower", same_id_twice),
    "cancel": ("8: cancel while 8 downloads are held", cancel),
    "kept": ("9: POST /images of BM<html>, and how a kept picture is served", kept_pictures),
    "formulas": ("10: ids and SKUs like =HYPERLINK() in duplicates.csv", formula_cells),
    "memory-after": ("11: RSS 3 s after 24 requests of 40 MP, against idle", memory_after),
    "smaller": ("smaller: a long URL and a port out of range in items, an id of spaces", smaller),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to run")
    parser.add_argument("--only", default="", help="comma-separated probe names (default: all)")
    args = parser.parse_args()
    os.environ["STRESS_LAMBDAS"] = str(args.lambdas.resolve())
    chosen = [name for name in PROBES if not args.only or name in args.only.split(",")]
    host = Host()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dupcheck-stress-") as folder:
        server = Server(args.lambdas, Path(folder))
        try:
            call(f"{server.url}/find_similar", "POST", picture(1), "image/jpeg")  # warm: every import
            time.sleep(1)
            idle = server.idle_mb = server.rss_mb()
            started = time.monotonic()
            for name in chosen:
                title, probe = PROBES[name]
                began = time.monotonic()
                try:
                    passed, measured = probe(server, host)
                except Exception as exc:  # noqa: BLE001 - a probe that breaks is a failed probe
                    passed, measured = False, f"{type(exc).__name__}: {exc}"
                if server.proc.poll() is not None:
                    passed, measured = False, measured + f" (the server exited: {server.proc.returncode})"
                if not passed:
                    failed.append(name)
                verdict = "ok  " if passed else "FAIL"
                print(f"{verdict} {name:17} {time.monotonic() - began:5.1f} s  {title}: {measured}", flush=True)
                if server.proc.poll() is not None:
                    break
            peak = server.peak_since(started)
            end = server.rss_mb()
        finally:
            server.stop()
    print(json.dumps({"code": str(args.lambdas), "idle_mb": round(idle), "peak_mb": round(peak), "end_mb": round(end),
                      "probes": len(chosen), "failed": failed}))  # fmt: skip
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
