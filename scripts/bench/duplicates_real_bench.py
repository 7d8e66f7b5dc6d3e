"""The catalog-wide duplicate report over real pictures only, this version beside a baseline's.

    .venv/bin/python scripts/bench/duplicates_real_bench.py --baseline V4_CHECKOUT/lambdas
        [--copies 3] [--work bench-out/dups-real]

The records are what a shop's catalog holds, no filler: every photo of ../shared/bench (less the
share make_benchmark.py holds out, which stay as photos with no copy), `--copies` edited copies of
each (make_benchmark.py's kinds: crops, tone edits, text, badges, turns, thumbnails...; balanced)
and the colour variants. Each version runs its own `python -m dupcheck evaluate-duplicates` on
them, as a user of that version would: every picture fingerprinted into a new store, then the
report (`duplicates`, one verification process per CPU), then scored against the truth. Measured
per version, one after the other on the same machine: the report's seconds and its phases, the
candidate pairs it judged, what it found (pair precision and recall, the originals kept), and the
whole command's CPU seconds with its verification processes' (the fingerprinting included). The
ratio to the baseline is the figure; seconds move with the machine. A copy of a photo is a
candidate of every other copy of it, so the pairs grow with the square of `--copies`: issue 75's
20,000 pictures (33 copies a photo) would be about 560 pairs a photo, against 6 at 3 copies.

Prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scripts.helpers.measuring import run_measured
from scripts.helpers.places import SHARED_BENCH, bench_out

ROOT = Path(__file__).resolve().parents[2]


def benchmark(work: Path, copies: int) -> Path:
    """make_benchmark.py over every bench photo, with the colour variants (built once)."""
    bench = work / f"bench-{copies}"
    if not (bench / "truth.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_benchmark.py"), "--originals",
                        str(SHARED_BENCH / "images"), "--out", str(bench), "--per-image", str(copies), "--quiet",
                        "--colour-variants", str(SHARED_BENCH / "colour_variants.csv"),
                        str(SHARED_BENCH / "colour_variants")], check=True)  # fmt: skip
    return bench


# `python -m dupcheck evaluate-duplicates ...` with the report's own summary (its phases and the
# candidate pairs it judged, which the command does not print) written beside its results.
RUN = """
import json, sys
from pathlib import Path
import dupcheck_tools.evaluation.duplicates as evaluation
from dupcheck_tools.cli import main

found = evaluation.find_duplicates

def kept(*args, **kwargs):
    summary = found(*args, **kwargs)
    Path(sys.argv[-1], "report-summary.json").write_text(json.dumps(summary.to_dict()))
    return summary

evaluation.find_duplicates = kept
raise SystemExit(main(sys.argv[1:]))
"""


def measure(lambdas: Path, bench: Path, out: Path) -> dict[str, Any]:
    """One version's evaluate-duplicates on the benchmark (`lambdas`: the version's code)."""
    env = {**os.environ, "PYTHONPATH": str(lambdas)}
    out.mkdir(parents=True, exist_ok=True)
    found = run_measured([sys.executable, "-c", RUN, "evaluate-duplicates", "--catalog", str(bench / "catalog"),
                          "--queries", str(bench / "queries"), "--truth", str(bench / "truth.csv"),
                          "--out", str(out)], env)  # fmt: skip
    summary = json.loads((out / "report-summary.json").read_text())
    seconds = float(summary["elapsed_s"])
    pairs = int(summary["candidates"])
    return {
        "algo": found["algo"], "records": summary["records"], "index_s": found["index_seconds"],
        "report_s": seconds, "phases_s": summary["phases_s"], "command_cpu_s": found["cpu_s"],
        "candidate_pairs": pairs, "pairs_per_s": round(pairs / seconds, 1), "groups": summary["groups"],
        "pair_precision": found["pair_precision"], "pair_recall": found["pair_recall"],
        "groups_with_original": found.get("groups_with_original"), "original_kept": found.get("original_kept"),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's lambdas/ folder (v4: ea88de7)")
    parser.add_argument("--copies", type=int, default=3, help="edited copies of each photo (default 3)")
    parser.add_argument("--work", type=Path, default=bench_out("dups-real"), help="work folder")
    args = parser.parse_args()
    bench = benchmark(args.work, args.copies)
    this = measure(ROOT / "lambdas", bench, args.work / "this")
    print(f"this version: {this['report_s']} s, {this['candidate_pairs']} pairs", file=sys.stderr)
    baseline = measure(args.baseline.resolve(), bench, args.work / "baseline")
    print(f"baseline: {baseline['report_s']} s, {baseline['candidate_pairs']} pairs", file=sys.stderr)
    print(json.dumps({
        "copies_per_photo": args.copies, "this": this, "baseline": baseline,
        "report_s_over_baseline": round(this["report_s"] / baseline["report_s"], 2),
        "pairs_per_s_over_baseline": round(this["pairs_per_s"] / baseline["pairs_per_s"], 2),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
