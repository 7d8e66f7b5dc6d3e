"""All-pairs precision, before and after, from one command: the dev set, its two halves, the grown catalog.

Runs `python -m dupcheck evaluate --all-pairs` (lambdas/dupcheck_tools/evaluation/all_pairs.py)
on four catalogs, each with a baseline commit's runtime and with this checkout's, in turn:

* `full`: the dev set's originals (598 pictures, each its own);
* `halfA`, `halfB`: the same originals split in two by a hash of the file name (sha1, even /
  odd: the halves of docs/lab/evaluation.md), as symlinks in a scratch folder;
* `grown`: a per-query benchmark's catalog grown with all its query files (copies, held-out
  pictures, colour variants), grouped by the truth's `source` column (scripts/make_benchmark.py
  writes it), so the share of true pairs called duplicate is measured beside the false ones.

The baseline's runtime is `git archive`d from `--baseline`; this checkout's evaluation tool is laid
over it (the baseline may predate `--all-pairs`: the tool only registers and searches through the
service, so what is measured is the baseline's hashing and verification). Counts do not depend on
the machine's load; the seconds do (not compared). Writes all_pairs_bench.json and prints a
Markdown table.

    .venv/bin/python scripts/bench/all_pairs_bench.py --baseline main --grown bench-out/precision/full \
        --same same.csv --out /tmp/all-pairs [--images ../shared/bench/images] [--sets full,halfA,halfB,grown] \
        [--leave-one-out]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
SHARED = BENCH_IMAGES
SETS = ("full", "halfA", "halfB", "grown")
HEADER = (
    "| catalog | code | items (pictures) | judged pairs | false pairs | false calls (queries) | per judged pair "
    "| same-picture pairs (not counted) | true pairs called duplicate |\n|---|---|---|---|---|---|---|---|---|"
)
TOOL = ("dupcheck_tools/evaluation", "dupcheck_tools/cli/evaluate.py")  # laid over the baseline


def export_baseline(commit: str, into: Path) -> Path:
    """The baseline's lambdas/ with this checkout's evaluation tool over it."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "lambdas"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    for part in TOOL:
        source, target = ROOT / "lambdas" / part, into / "lambdas" / part
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return into / "lambdas"


def halves(images: Path, into: Path) -> dict[str, Path]:
    """Two disjoint halves of the originals, by the parity of the sha1 of each file name."""
    out = {name: into / name for name in ("halfA", "halfB")}
    for folder in out.values():
        folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in images.iterdir() if p.is_file()):
        half = "halfA" if int(hashlib.sha1(path.name.encode()).hexdigest(), 16) % 2 == 0 else "halfB"
        (out[half] / path.name).symlink_to(path.resolve())
    return out


def all_pairs(code: Path, args: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "dupcheck", "evaluate", "--all-pairs", *args, "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(name: str, label: str, s: dict) -> str:
    recall = "–"
    if s["true_pair_recall"] is not None:
        recall = f"{s['true_pairs_called_duplicate']:,} of {s['true_pairs']:,} ({s['true_pair_recall']:.2%})"
    return (
        f"| {name} | {label} ({s['algo']}) | {s['pictures']:,} ({s['distinct_pictures']:,}) | {s['judged_pairs']:,} "
        f"| **{s['false_duplicate_pairs']}** | {s['false_duplicate_calls']} ({s['queries_with_a_false_duplicate']}) "
        f"| {s['false_calls_per_judged_pair']:.1e} | {s['known_same_picture_pairs']} | {recall} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="commit whose runtime is 'before' (e.g. main)")
    parser.add_argument("--images", type=Path, default=SHARED, help="the dev set's originals")
    parser.add_argument("--grown", type=Path, help="a make_benchmark.py folder: catalog/, queries/, truth.csv")
    parser.add_argument("--same", type=Path, help="CSV a,b of pictures known to be the same one (listed, not counted)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"which of {','.join(SETS)} (default: all)")
    parser.add_argument("--codes", default="before,after", help="which runs (default both; 'after' alone: no baseline)")
    parser.add_argument("--leave-one-out", action="store_true", help="each picture queried without its own record")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    if unknown := set(sets) - set(SETS):
        parser.error(f"unknown sets {sorted(unknown)}")
    labels = [c for c in args.codes.split(",") if c]
    if not labels or set(labels) - {"before", "after"}:
        parser.error("--codes is before, after or both")
    if "grown" in sets and args.grown is None:
        parser.error("the grown set needs --grown")
    args.out.mkdir(parents=True, exist_ok=True)
    same = (["--same", str(args.same)] if args.same else []) + (["--leave-one-out"] if args.leave_one_out else [])
    with tempfile.TemporaryDirectory(prefix="all-pairs-bench-") as scratch:
        work = Path(scratch)
        codes = {"after": ROOT / "lambdas"}
        if "before" in labels:
            codes["before"] = export_baseline(args.baseline, work / "baseline")
        catalogs = {"full": ["--catalog", str(args.images)]}
        catalogs.update({name: ["--catalog", str(path)] for name, path in halves(args.images, work / "halves").items()})
        if args.grown is not None:
            g = args.grown
            catalogs["grown"] = ["--catalog", str(g / "catalog"), "--queries", str(g / "queries"),
                                 "--truth", str(g / "truth.csv")]  # fmt: skip
        results: dict[str, dict[str, dict]] = {}
        for i, name in enumerate(sets):
            order = [c for c in (("before", "after") if i % 2 == 0 else ("after", "before")) if c in labels]
            results[name] = {}
            for label in order:
                summary = all_pairs(codes[label], catalogs[name] + same, args.out / f"{name}-{label}")
                results[name][label] = summary
                print(f"{name} {label}: {json.dumps(summary)}", file=sys.stderr, flush=True)
    (args.out / "all_pairs_bench.json").write_text(json.dumps({"baseline": args.baseline, "sets": results}, indent=2))
    print(HEADER)
    for name in sets:
        for label in ("before", "after"):
            if label in results[name]:
                print(row(name, label, results[name][label]))


if __name__ == "__main__":
    main()
