"""What keeping the pairing's result in the duplicate report's work file costs (a resumed run,
a scan handed over between two Lambda invocations, reads it instead of pairing again).

    .venv/bin/python scripts/bench/pairs_kept_bench.py [--pairs 32000000] [--runs 3] [--work /tmp]

Saves and loads (owners, candidates, distances), int64 arrays of `--pairs` each, through
`WorkFile.save_candidates` / `candidates`, alternating with the baseline: the same arrays written
and read with numpy (`np.save` / `np.load` of one file each), the least such a copy can cost.
32M pairs is the most 1M records can have (each its full candidate pool of 32); a real catalog
pairs far fewer. Medians over `--runs`; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dupcheck_tools.duplicates.workfile import WORK_NAME, WorkFile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=tempfile.gettempdir(), help="folder for the files (default: the temp dir)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    owners = np.repeat(np.arange(args.pairs // 32 + 1, dtype=np.int64), 32)[: args.pairs]
    arrays = (owners, rng.integers(0, len(owners) // 32 + 1, args.pairs), rng.integers(0, 8, args.pairs))
    timings: dict[str, list[float]] = {"work_save": [], "work_load": [], "numpy_save": [], "numpy_load": []}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        folder = Path(tmp)
        for _ in range(args.runs):
            work = WorkFile(folder / WORK_NAME)
            work.start({"source": "bench"})
            started = time.perf_counter()
            work.save_candidates(*arrays)
            timings["work_save"].append(time.perf_counter() - started)
            started = time.perf_counter()
            loaded = work.candidates()
            timings["work_load"].append(time.perf_counter() - started)
            assert loaded is not None and all(np.array_equal(a, b) for a, b in zip(loaded, arrays, strict=True))
            work.remove()
            started = time.perf_counter()
            for name, array in zip("ocd", arrays, strict=True):
                np.save(folder / f"{name}.npy", array)
            timings["numpy_save"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for name in "ocd":
                np.load(folder / f"{name}.npy")
            timings["numpy_load"].append(time.perf_counter() - started)
    medians = {name: round(statistics.median(values), 2) for name, values in timings.items()}
    result = {"pairs": args.pairs, "runs": args.runs, "bytes": 3 * 8 * args.pairs, **medians,
              "save_vs_numpy": round(medians["work_save"] / medians["numpy_save"], 2),
              "load_vs_numpy": round(medians["work_load"] / medians["numpy_load"], 2)}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
