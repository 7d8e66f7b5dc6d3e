"""`python -m dupcheck import` into SQLite, timed as a user runs it, against a baseline commit.

Each run is the whole command in its own process (interpreter start-up included) into a fresh
data dir: records/s by the wall clock, and the CPU it used (user + sys of the process and of
any process it waited for, from wait4), per record. The machine is shared, so the baseline
(the same command from `--baseline`'s code, `git archive` into the scratch folder) runs in the
same session, alternated with this checkout's, the order flipped each round; the figures are
medians and the ratio is of medians. Also: the user share of that CPU, peak RSS, and the data
dir's size after the import. `--reimport` also times a second import of the same file
into the store the first one built: the idempotent path (every record `unchanged`).
`--thumbnails` gives every line a thumbnail, as a `dualphash128-v4` store's export carries one
(real ones: photos of ../shared/bench/images fingerprinted, cycled, each header naming its line's
hash; `hash_algo` set to v4).

    .venv/bin/python scripts/bench/records_import_bench.py --records FILE.jsonl [--lines 1000000]
        [--rounds 3] [--baseline main] [--reimport] [--thumbnails] [--work DIR]

Without `--records`, a file is made as scripts/bench/scale_bench.py makes its own (500 real
photos of ../shared/bench/images fingerprinted, then filler with real views).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# As a user runs it: with the bytecode Python caches (an environment that forbids writing it
# compiles every module at every start, ~1.3 s of CPU here).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def run_import(lambdas: Path, data: Path, records: Path, work: Path) -> dict[str, float]:
    """One `python -m dupcheck import` with `lambdas` first on the path: wall, CPU, its summary."""
    env = {**ENV, "PYTHONPATH": str(lambdas)}
    command = [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "import", str(records), "--no-progress",
               "--failures", str(work / "failures.csv")]  # fmt: skip
    started = time.perf_counter()
    with open(work / "stdout", "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)  # the child's rusage, with what it waited for
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    summary = json.loads((work / "stdout").read_text().strip().splitlines()[-1])
    if process.returncode != 0 or summary["failed"]:
        raise RuntimeError(f"import failed ({process.returncode}): {summary}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "user_s": usage.ru_utime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "summary": summary}  # fmt: skip


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def code_of(ref: str, into: Path) -> Path:
    """`ref`'s lambdas/ folder, unpacked into `into` (the checkout itself is left alone)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "lambdas"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "lambdas"


def line_count(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for _ in file)


def make_records(path: Path, lines: int) -> None:
    from scripts.bench.scale_bench import IMAGES, REAL, real_records, write_records

    write_records(path, real_records(sorted(IMAGES.glob("*.jpg"))[:REAL]), lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, help="a records file (default: one is made)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="import this many lines of it (its head)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="the commit to compare with (default main)")
    parser.add_argument("--reimport", action="store_true", help="also time importing the same file again")
    parser.add_argument("--thumbnails", action="store_true", help="every line with a thumbnail, as a v4 export")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        records = work / "records.jsonl"
        if args.records is None:
            make_records(records, args.lines)
        elif line_count(args.records) > args.lines:
            with args.records.open("rb") as source, records.open("wb") as out:
                out.writelines(line for _, line in zip(range(args.lines), source, strict=False))
        else:
            records = args.records
        if args.thumbnails:
            from scripts.bench.scale_bench import with_thumbnails

            with_thumbnails(records, work / "with-thumbnails.jsonl")
            records = work / "with-thumbnails.jsonl"
        lines = line_count(records)
        variants = {"baseline": code_of(args.baseline, work / "baseline"), "this": ROOT / "lambdas"}
        for lambdas in variants.values():  # compiles each variant's bytecode before any is timed
            subprocess.run([sys.executable, "-m", "dupcheck", "import", "--help"], check=True,
                           env={**ENV, "PYTHONPATH": str(lambdas)}, capture_output=True)  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in order:
                data = work / f"data-{name}"
                run = run_import(variants[name], data, records, work)
                row = {"variant": name, "round": round_ + 1, "records_per_s": round(lines / run["wall_s"]),
                       "cpu_us_per_record": round(run["cpu_s"] / lines * 1e6, 1),
                       "user_us_per_record": round(run["user_s"] / lines * 1e6, 1),
                       "peak_rss_mb": round(run["peak_rss_mb"]),
                       "data_dir_mb": round(directory_bytes(data) / 2**20, 1)}  # fmt: skip
                if args.reimport:
                    again = run_import(variants[name], data, records, work)
                    assert again["summary"]["unchanged"] == again["summary"]["lines"], again["summary"]
                    row["reimport_records_per_s"] = round(lines / again["wall_s"])
                    row["reimport_cpu_us_per_record"] = round(again["cpu_s"] / lines * 1e6, 1)
                runs[name].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                shutil.rmtree(data)
        result: dict[str, object] = {"lines": lines, "rounds": args.rounds, "baseline": args.baseline}
        for name, rows in runs.items():
            result[name] = {key: statistics.median(float(r[key]) for r in rows)  # type: ignore[arg-type]
                            for key in rows[0] if key not in ("variant", "round")}  # fmt: skip
        base, this = result["baseline"], result["this"]
        assert isinstance(base, dict) and isinstance(this, dict)
        result["records_per_s_ratio"] = round(this["records_per_s"] / base["records_per_s"], 2)
        result["cpu_per_record_ratio"] = round(this["cpu_us_per_record"] / base["cpu_us_per_record"], 2)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
