#!/usr/bin/env python3
"""The same answers under another CPU's kernels: a generated set judged twice, compared.

numpy and OpenBLAS pick their SIMD kernels by the CPU (AVX-512, AVX2, SSE; NEON on arm64), and
a product or a sum taken by another kernel differs in its last digits. A verdict, an edit named
or a match percentage must not. This asks the same generated benchmark (make_benchmark.py
--synthetic: every kind of edit of each generated picture, held-out pictures and colour
variants) of the service under the machine's own kernels and under the narrowest ones this
machine can be held to (numpy's dispatched targets disabled, OpenBLAS's oldest core type), and
compares each query's matches: the same pictures in the same order, the same verdicts and edits,
match percentages within 0.1.

    python scripts/same_answers.py check --out DIR [--pictures 10]     # make, answer twice, compare
    python scripts/same_answers.py answer --set DIR --out FILE          # this process's kernels
    python scripts/same_answers.py compare A.json B.json                # or two evaluation reports
    env $(python scripts/same_answers.py env) COMMAND                   # COMMAND under the narrow kernels

`answer` on another machine (an arm64 one, or under qemu-user) and `compare` with this one's
answers is the same check across architectures (docs/deploy.md, "The same answer on arm64").
Exit status: 0 the same, 1 a difference (each printed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PERCENT_TOLERANCE = 0.1  # a match percentage is shown to one decimal


def narrow_environment(machine: str | None = None) -> dict[str, str]:
    """The variables that hold numpy and OpenBLAS to their narrowest kernels on this machine:
    every target numpy dispatches to at run time off (its baseline stays: it is compiled in), and
    OpenBLAS's oldest core type of the architecture."""
    from numpy._core._multiarray_umath import __cpu_dispatch__  # the targets this numpy can switch off

    machine = machine or platform.machine()
    core = {"x86_64": "Nehalem", "AMD64": "Nehalem", "aarch64": "ARMV8", "arm64": "ARMV8"}.get(machine)
    out = {"NPY_DISABLE_CPU_FEATURES": ",".join(__cpu_dispatch__)}
    if core is not None:
        out["OPENBLAS_CORETYPE"] = core
    return out


def make_set(out: Path, pictures: int) -> Path:
    """The generated benchmark (its catalog, queries and truth) in `out`."""
    subprocess.run(
        [sys.executable, str(HERE / "make_benchmark.py"), "--synthetic", str(pictures), "--out", str(out),
         "--per-image", "18", "--quiet"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return out


def answer(benchmark: Path, out: Path) -> None:
    """Each query's matches, as `evaluate` reports them, in `out` (JSON: query -> matches)."""
    with tempfile.TemporaryDirectory(prefix="same-answers-") as work:
        subprocess.run(
            [sys.executable, "-m", "dupcheck", "evaluate", "--catalog", str(benchmark / "catalog"),
             "--queries", str(benchmark / "queries"), "--truth", str(benchmark / "truth.csv"), "--out", work],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        answers = answers_of(json.loads((Path(work) / "report.json").read_text()))
    out.write_text(json.dumps(answers, indent=1, sort_keys=True))


def answers_of(data: dict) -> dict:
    """An `answer` file's answers, or an evaluation report's (its rows) as the same: query ->
    its matches and its error."""
    if "rows" not in data:
        return data
    return {row["query"]: {"matches": row["top"], "error": row["error"]} for row in data["rows"]}


def tally(first: dict, second: dict) -> dict:
    """How two sides' answers to the same queries differ: queries whose matches or verdicts
    differ (or their order), whose edits differ with those the same, and the matches whose
    percentages differ (and by how much at most)."""
    verdicts = edits = moved = 0
    gap = 0.0
    for query in set(first) & set(second):
        a, b = first[query]["matches"], second[query]["matches"]
        if len(a) != len(b) or any(x[:3] != y[:3] for x, y in zip(a, b, strict=False)):
            verdicts += 1
            continue
        edits += any(x[4] != y[4] for x, y in zip(a, b, strict=True))
        gaps = [abs(x[3] - y[3]) for x, y in zip(a, b, strict=True)]
        moved += sum(g > 0 for g in gaps)
        gap = max([gap, *gaps])
    return {
        "verdicts_or_order": verdicts,
        "edits": edits,
        "percentages_moved": moved,
        "largest_percentage_gap": round(gap, 2),
    }


def differences(first: dict, second: dict) -> list[str]:
    """What differs between two `answer` files, a line each (nothing: the same answers)."""
    out = [f"{query}: answered by one side only" for query in sorted(set(first) ^ set(second))]
    for query in sorted(set(first) & set(second)):
        a, b = first[query], second[query]
        if a["error"] != b["error"] or len(a["matches"]) != len(b["matches"]):
            out.append(f"{query}: {a} != {b}")
            continue
        for rank, (x, y) in enumerate(zip(a["matches"], b["matches"], strict=True), start=1):
            entity_x, distance_x, verdict_x, percent_x, edits_x = x
            entity_y, distance_y, verdict_y, percent_y, edits_y = y
            same = (entity_x, distance_x, verdict_x, edits_x) == (entity_y, distance_y, verdict_y, edits_y)
            if not same or abs(percent_x - percent_y) > PERCENT_TOLERANCE:
                out.append(f"{query} match {rank}: {x} != {y}")
    return out


def check(out: Path, pictures: int) -> int:
    """Make the set, answer it under both kernel sets (side by side), compare."""
    benchmark = make_set(out / "set", pictures)
    runs = {"default": {}, "narrow": narrow_environment()}
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "answer", "--set", str(benchmark), "--out", str(out / f"{name}.json")],
            env={**os.environ, **extra},
        )
        for name, extra in runs.items()
    }
    if any(proc.wait() != 0 for proc in procs.values()):
        print("same_answers: an answering run failed", file=sys.stderr)
        return 2
    return compare(out / "default.json", out / "narrow.json")


def compare(first: Path, second: Path) -> int:
    """Print each difference (percentages beyond PERCENT_TOLERANCE), then a JSON line: the
    queries, the differences and their `tally`. `answer` files or evaluation reports."""
    a, b = (answers_of(json.loads(path.read_text())) for path in (first, second))
    found = differences(a, b)
    for line in found:
        print(line)
    print(json.dumps({"queries": len(a), "differences": len(found), **tally(a, b)}))
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="make the set, answer it under both kernel sets, compare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pictures", type=int, default=10, help="generated pictures (18 edited copies of each)")
    p = sub.add_parser("answer", help="answer a set under this process's kernels")
    p.add_argument("--set", type=Path, required=True, help="a make_benchmark.py folder")
    p.add_argument("--out", type=Path, required=True)
    sub.add_parser("env", help="print the narrow kernels' variables as NAME=VALUE words (for env)")
    p = sub.add_parser("compare", help="compare two answer files or two evaluation reports")
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.out, args.pictures)
    if args.command == "env":
        print(" ".join(f"{name}={value}" for name, value in narrow_environment().items()))
        return 0
    if args.command == "answer":
        answer(args.set, args.out)
        return 0
    return compare(args.first, args.second)


if __name__ == "__main__":
    raise SystemExit(main())
