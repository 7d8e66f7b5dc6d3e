"""Backfill throughput and memory, against a loopback image server, in one run.

    .venv/bin/python scripts/bench/backfill_bench.py [--images 1200] [--serial 200] [--latency-ms 50]
        [--runs 3] [--throughput-only] [--gated] [--rows 1000000] [--baseline-lambdas DIR]

1. Throughput: N ~1 MP JPEGs (the >= 0.7 MP photos of ../shared/bench/images when present,
   else generated 1200x900 product shots), each at its own URL on a ThreadingHTTPServer that
   runs in a separate process and answers every request `--latency-ms` late (a CDN far away),
   are backfilled by `python -m dupcheck backfill --target local` (a subprocess, exactly as a
   user runs it) into a fresh SQLite store. The baseline is the obvious serial loop (`requests`
   session + `PIL.Image.open` + `imagehash.phash`) over the first `--serial` URLs, measured in
   the same run against the same server, alternated with the backfill `--runs` times; the
   medians are reported. `--baseline-lambdas DIR` (another commit's `lambdas/`, e.g. from
   `git archive main lambdas | tar -x -C DIR/..`) adds a backfill with that code to every run,
   right after this one's, and reports this one's rate as a ratio to it run by run. `--gated`
   measures the rate with `--on-duplicate allow` (nothing checked), then the same runs once
   more with the gate's default (`warn`: every row checked against the catalog) as `gated`.
2. Memory: peak RSS (the backfill process plus its hashing processes, sampled with psutil)
   of (a) real backfills of small and large catalogs whose URLs all return a tiny JPEG, to show
   RSS does not grow with rows, and (b) a `--dry-run` of a `--rows`-row catalog (reader, store
   look-ups in batches and the bounded queues; no downloads).

Prints one JSON object (the figures in docs/lab/benchmarks.md, backfill) as the last line.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.helpers.loopback import ImageServer, in_child, numbered
from scripts.helpers.measuring import run_measured
from scripts.helpers.places import BENCH_IMAGES

SHARED_IMAGES = BENCH_IMAGES
ROOT = Path(__file__).resolve().parents[2]


# -- image server (a process of its own, so it does not share the GIL with the measured code) ---------


def _host(folder: str, latency: float) -> ImageServer:
    """/i/<n>.jpg: image n of the folder (modulo its count); /tiny/<n>.jpg: a tiny picture; every
    answer `latency` seconds late, like a CDN far away."""
    from dupcheck_tools.samples import encode, product_image

    pictures = numbered([f.read_bytes() for f in sorted(Path(folder).glob("*.jpg"))], "/i/")
    tiny = numbered([encode(product_image(7, (64, 64)))], "/tiny/")
    return ImageServer(lambda path: pictures(path) or tiny(path), delay=latency)


def start_server(folder: Path, latency: float = 0.0) -> tuple[multiprocessing.Process, str]:
    return in_child(_host, str(folder), latency)


# -- inputs -----------------------------------------------------------------------------------------


def prepare_images(folder: Path, count: int) -> dict[str, Any]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    chosen: list[Path] = []
    if SHARED_IMAGES.is_dir():
        for path in sorted(SHARED_IMAGES.glob("*.jpg")):
            with Image.open(path) as im:
                if im.size[0] * im.size[1] >= 700_000:
                    chosen.append(path)
            if len(chosen) >= count:
                break
    source = "shared" if chosen else "generated"
    pixels, sizes = [], []
    if chosen:
        for i, path in enumerate(chosen):
            (folder / f"{i:05d}.jpg").write_bytes(path.read_bytes())
    else:
        from dupcheck_tools.samples import encode, product_image

        for i in range(min(count, 200)):
            (folder / f"{i:05d}.jpg").write_bytes(encode(product_image(i, (1200, 900))))
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as im:
            pixels.append(im.size[0] * im.size[1])
        sizes.append(path.stat().st_size)
    return {
        "source": f"{os.path.relpath(SHARED_IMAGES, ROOT)} (>= 0.7 MP)" if source == "shared" else "generated 1200x900",
        "distinct_images": len(pixels),
        "mean_megapixels": round(sum(pixels) / len(pixels) / 1e6, 2),
        "mean_kb": round(sum(sizes) / len(sizes) / 1024, 1),
    }


def write_catalog(path: Path, base: str, rows: int, kind: str = "i") -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("entity_id,sku,image_url\n")
        for i in range(rows):
            out.write(f"E{i:07d},SKU-{i},{base}/{kind}/{i}.jpg\n")


# -- measurements -----------------------------------------------------------------------------------


def serial_loop(base: str, count: int) -> dict[str, Any]:
    import imagehash
    import requests
    from PIL import Image

    session = requests.Session()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        response = session.get(f"{base}/i/{i}.jpg", timeout=30)
        response.raise_for_status()
        imagehash.phash(Image.open(io.BytesIO(response.content)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "images": count,
        "elapsed_s": round(elapsed, 2),
        "images_per_s": round(count / elapsed, 1),
        "cpu_ms_per_image": round(cpu / count * 1000, 2),
    }


def run_backfill(
    catalog: Path, data_dir: Path, extra: list[str] | None = None, lambdas: Path | None = None
) -> dict[str, Any]:
    """`python -m dupcheck backfill` as a user runs it; with `lambdas`, that folder's code."""
    env = dict(os.environ, DUPCHECK_ALLOW_LOOPBACK_URLS="true", DUPCHECK_DATA_DIR=str(data_dir))
    if lambdas is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(lambdas), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "dupcheck", "backfill", "--catalog", str(catalog), "--no-progress", *(extra or [])]
    return run_measured(cmd, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200, help="catalog rows for the throughput run")
    parser.add_argument("--serial", type=int, default=200, help="images for the serial baseline")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the image server answers this late")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (serial loop, then backfill); medians")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the dry-run memory catalog")
    parser.add_argument("--tiny-rows", type=int, nargs=2, default=(2_000, 20_000),
                        help="rows of the small and large tiny-image catalogs")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="backfill --workers (default: its own)")
    parser.add_argument("--extra", default="", help="extra backfill arguments, e.g. '--per-host 16'")
    parser.add_argument("--throughput-only", action="store_true", help="skip the memory runs")
    parser.add_argument("--gated", action="store_true",
                        help="the rate with --on-duplicate allow, then as is (the gate's warn) as 'gated'")  # fmt: skip
    parser.add_argument("--baseline-lambdas", type=Path, default=None,
                        help="another commit's lambdas/: its backfill runs beside this one's in every run")  # fmt: skip
    args = parser.parse_args()

    import psutil

    report: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "latency_ms": args.latency_ms}
    with tempfile.TemporaryDirectory(prefix="dupcheck-bench-") as tmp:
        work = Path(tmp)
        report["images"] = prepare_images(work / "images", args.images)
        server, base = start_server(work / "images", args.latency_ms / 1000.0)
        try:
            serial_loop(base, 5)  # warm-up (imports, connection)
            catalog = work / "catalog.csv"
            write_catalog(catalog, base, args.images)
            flags = [*(["--workers", str(args.workers)] if args.workers else []), *args.extra.split()]
            report["command"] = "python -m dupcheck backfill --catalog CATALOG --no-progress " + " ".join(flags)
            if args.gated:
                report["command_allow"] = f"{report['command']} --on-duplicate allow".replace("  ", " ")
            rate_flags = [*flags, "--on-duplicate", "allow"] if args.gated else flags
            runs = _throughput(base, catalog, work, rate_flags, args, "store")
            report["runs"] = runs
            report["median"] = _medians(runs)
            if args.gated:
                gated = _throughput(base, catalog, work, flags, args, "gated-store")
                report["gated"] = {**_medians(gated), "done": gated[-1]["done"], "failed": gated[-1]["failed"],
                                   "on_duplicate": "warn", "runs": len(gated)}  # fmt: skip
            # Re-run: everything is unchanged, nothing is downloaded.
            rerun = run_backfill(catalog, work / "store-0", flags)
            report["rerun_unchanged"] = {k: rerun[k] for k in ("done", "skipped", "failed", "elapsed_s", "wall_s")}

            if args.throughput_only:
                return _finish(report)
            memory: dict[str, Any] = {}
            for rows in args.tiny_rows:
                tiny = work / f"tiny-{rows}.csv"
                write_catalog(tiny, base, rows, kind="tiny")
                r = run_backfill(tiny, work / f"tiny-store-{rows}", flags)
                memory[f"real_{rows}_rows"] = {
                    k: r[k] for k in ("done", "failed", "images_per_s", "peak_rss_mb_total", "peak_rss_mb_main")
                }
            big = work / "big.csv"
            write_catalog(big, base, args.rows, kind="tiny")
            r = run_backfill(big, work / "dry-store", ["--dry-run"])
            memory[f"dry_run_{args.rows}_rows"] = {
                "catalog_mb": round(big.stat().st_size / 2**20, 1),
                **{k: r[k] for k in ("rows", "would_fetch", "elapsed_s", "peak_rss_mb_main")},
            }
            report["memory"] = memory
        finally:
            server.terminate()
            server.join(5)
    report["machine_memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    return _finish(report)


def _throughput(base: str, catalog: Path, work: Path, flags: list[str], args: argparse.Namespace,
                store: str) -> list[dict[str, Any]]:  # fmt: skip
    """`--runs` backfills of `catalog` with `flags`, each after a serial loop (and beside the
    baseline's backfill, when given): alternated, so that both see the same machine, which drifts."""
    runs = []
    for i in range(args.runs):
        serial = serial_loop(base, args.serial)
        if args.baseline_lambdas is not None and i % 2:  # the two take turns at going first
            base_run = run_backfill(catalog, work / f"base-{store}-{i}", flags, args.baseline_lambdas)
        run = run_backfill(catalog, work / f"{store}-{i}", flags)
        if args.baseline_lambdas is not None and not i % 2:
            base_run = run_backfill(catalog, work / f"base-{store}-{i}", flags, args.baseline_lambdas)
        runs.append(
            {
                "serial_images_per_s": serial["images_per_s"],
                "backfill_images_per_s": run["images_per_s"],
                "backfill_images_per_s_wall": round(run["done"] / run["wall_s"], 1),
                "speedup_vs_serial": round(run["images_per_s"] / serial["images_per_s"], 2),
                "speedup_vs_serial_wall": round(run["done"] / run["wall_s"] / serial["images_per_s"], 2),
                # CPU per image (backfill + its hashing processes; the image server apart):
                # what the cores cap the rate at, whatever else the machine is running.
                "backfill_cpu_ms_per_image": round(run["cpu_s"] / max(1, run["done"]) * 1000, 2),
                "serial_cpu_ms_per_image": serial["cpu_ms_per_image"],
                "done": run["done"],
                "failed": run["failed"],
            }
        )
        if args.baseline_lambdas is not None:
            runs[-1].update(
                baseline_images_per_s=base_run["images_per_s"],
                baseline_cpu_ms_per_image=round(base_run["cpu_s"] / max(1, base_run["done"]) * 1000, 2),
                ratio_to_baseline=round(run["images_per_s"] / base_run["images_per_s"], 3),
                baseline_failed=base_run["failed"],
            )
        print(json.dumps(runs[-1]), file=sys.stderr)
    return runs


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(r[key] for r in runs)
        for key in runs[0]
        if key not in ("done", "failed", "baseline_failed")
    }


def _finish(report: dict[str, Any]) -> int:
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
