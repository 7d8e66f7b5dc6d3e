"""The catalog-wide duplicate report at 100k and 1M records: time, peak memory, what it found.

    .venv/bin/python scripts/bench/duplicates_bench.py [--work bench-out/dups] [--sizes 100000,1000000]
        [--runs 3] [--scale bench-out/scale]

Each store holds real duplicates and filler, the way a user builds one (`python -m dupcheck
import` of records files):

* the dev benchmark's catalog-wide set (what `evaluate-duplicates --copies 1` scores: 508
  catalog photos of ../shared/bench, one edited copy each, every kind, the held-out photos and
  the colour variants, 1,386 records), fingerprinted by the default pipeline, so verification
  has real pairs to judge and the report real groups to find;
* filler up to the size: the scale benchmark's records file (scripts/bench/scale_bench.py: the
  first 500 photos of ../shared/bench, then records with random hashes and real views). Random
  hashes pair with nothing: the filler measures what pairing costs at that size, not how many
  duplicates a catalog of that size has. The 1M store is a copy of the scale benchmark's
  (`--scale`/d1m, never written to) with the dev set imported into it.

Then `python -m dupcheck duplicates` runs on each store (a subprocess, as a user runs it; peak
RSS of it and its verification processes, sampled), alternating with the baseline, `python -m
dupcheck export` of the same store: one read of every record, which the report cannot beat. The
report's own summary gives its phases (read, pair, verify, report). Medians over `--runs`.
Prints one JSON object as the last line (the figures in docs/lab/benchmarks.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from scripts.helpers.measuring import run_measured
from scripts.helpers.places import SHARED_BENCH, bench_out

ROOT = Path(__file__).resolve().parents[2]
SHARED = SHARED_BENCH


def dev_records(work: Path) -> Path:
    """The dev catalog-wide set as a records file (built once: the benchmark, then fingerprints)."""
    records = work / "dev-records.jsonl"
    if records.exists():
        return records
    bench = work / "bench"
    if not (bench / "truth.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_benchmark.py"), "--originals",
                        str(SHARED / "images"), "--out", str(bench), "--quiet", "--colour-variants",
                        str(SHARED / "colour_variants.csv"), str(SHARED / "colour_variants")], check=True)  # fmt: skip
    from dupcheck.core.catalog.records import build_entry
    from dupcheck.core.fingerprint.hashing import get_pipeline
    from dupcheck.core.models import features_to_text
    from dupcheck_tools.evaluation.duplicates import NEGATIVE_KINDS, choose_copies, read_sources

    rows = read_sources(bench / "truth.csv")
    chosen = choose_copies(rows, 1) + [r for r in rows if r["kind"] in NEGATIVE_KINDS]
    files = sorted((bench / "catalog").iterdir()) + [bench / "queries" / row["query"] for row in chosen]
    pipeline = get_pipeline()
    with records.with_suffix(".partial").open("w") as out:
        for path in files:
            url = f"https://cdn.shop.example/dev/{path.name}"
            entry = build_entry(pipeline, path.read_bytes(), entity_id=f"dev-{path.stem}", sku=path.stem,
                                image_url=url, max_pixels=40_000_000)  # fmt: skip
            line = entry.record.to_dict()
            if entry.thumbnail:  # as `export` writes it: import keeps it beside the record
                line["thumbnail"] = features_to_text({"thumbnail": entry.thumbnail})["thumbnail"]
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    records.with_suffix(".partial").replace(records)
    return records


def import_file(data: Path, file: Path) -> None:
    subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "import", str(file), "--no-progress"],
                   check=True, capture_output=True)  # fmt: skip


def build_store(work: Path, size: int, dev: Path, scale: Path) -> Path:
    data = work / f"data-{size}"
    if (data / "ready").exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    dev_count = sum(1 for _ in dev.open())
    if size >= 1_000_000 and (scale / "d1m" / "dupcheck.sqlite3").exists():
        # A copy: the scale benchmark's store is never written to.
        shutil.copyfile(scale / "d1m" / "dupcheck.sqlite3", data / "dupcheck.sqlite3")
    else:
        filler = work / f"filler-{size}.jsonl"
        with (scale / "records-1m.jsonl").open() as source, filler.open("w") as out:
            for number, line in enumerate(source):
                if number == size - dev_count:
                    break
                out.write(line)
        import_file(data, filler)
        filler.unlink()
    import_file(data, dev)
    (data / "ready").write_text("")
    return data


def measure(data: Path, work: Path, runs: int, radius: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    report_runs, export_runs = [], []
    for run in range(runs):  # alternating: both see the same share of the machine's other load
        out = work / f"out-{data.name}"
        shutil.rmtree(out, ignore_errors=True)
        extra = ["--radius", str(radius)] if radius is not None else []
        report_runs.append(run_measured([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "duplicates",
                                         "--out", str(out), "--no-progress", *extra], env))  # fmt: skip
        exported = work / f"export-{data.name}.jsonl"
        export_runs.append(run_measured([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "export",
                                         "--out", str(exported), "--no-progress"], env))  # fmt: skip
        exported.unlink(missing_ok=True)
        print(f"{data.name} run {run + 1}: report {report_runs[-1]['wall_s']} s, export {export_runs[-1]['wall_s']} s",
              file=sys.stderr)  # fmt: skip
    last = report_runs[-1]
    report_s = statistics.median(r["wall_s"] for r in report_runs)
    export_s = statistics.median(r["wall_s"] for r in export_runs)
    return {
        "records": last["records"], "groups": last["groups"], "duplicates": last["duplicates"],
        "candidates": last["candidates"], "radius": last["radius"],
        "report_s_median": report_s, "report_s_runs": [r["wall_s"] for r in report_runs],
        "report_cpu_s_median": statistics.median(r["cpu_s"] for r in report_runs),
        "phases_s_last": last["phases_s"],
        "peak_rss_mb_max": max(r["peak_rss_mb_total"] for r in report_runs),
        "export_s_median": export_s, "report_over_export": round(report_s / export_s, 2),
        "export_cpu_s_median": statistics.median(r["cpu_s"] for r in export_runs),
        "exit_codes": sorted({r["exit_code"] for r in report_runs}),
    }  # fmt: skip


def dev_groups_kept(work: Path, data: Path) -> dict[str, int]:
    """How many of the dev set's groups (its report alone) the scale run found whole."""
    from dupcheck_tools.duplicates.report import CSV_NAME

    def groups(folder: Path) -> list[set[str]]:
        found: dict[str, set[str]] = {}
        with (folder / CSV_NAME).open(newline="") as fh:
            for row in csv.DictReader(fh):
                found.setdefault(row["group"], set()).add(row["entity_id"])
        return list(found.values())

    alone = [g for g in groups(work / "out-data-dev") if all(e.startswith("dev-") for e in g)]
    at_scale = groups(work / f"out-{data.name}")
    return {"dev_groups": len(alone), "found_whole_at_scale": sum(any(g <= big for big in at_scale) for g in alone)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=bench_out("dups"), help="work folder (default bench-out/dups)")
    parser.add_argument(
        "--scale",
        type=Path,
        default=bench_out("scale"),
        help="scale_bench.py's --work folder (default bench-out/scale)",
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--radius", type=int, default=None, help="duplicates --radius (default: its default)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    dev = dev_records(args.work)
    dev_data = args.work / "data-dev"
    if not (dev_data / "ready").exists():
        import_file(dev_data, dev)
        (dev_data / "ready").write_text("")
    results: dict[str, Any] = {"dev": measure(dev_data, args.work, 1, args.radius)}
    for size in (int(s) for s in args.sizes.split(",")):
        data = build_store(args.work, size, dev, args.scale)
        results[str(size)] = {**measure(data, args.work, args.runs, args.radius), **dev_groups_kept(args.work, data)}
        print(json.dumps({str(size): results[str(size)]}), file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
