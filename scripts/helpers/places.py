"""Where the benchmarks find their photos and keep their work: never a path of one machine.

The photos are `../shared/bench` beside the checkout (the folder the tests and docs/results.md
name), found from this file's place: from /src/dupcheck it is /src/shared/bench, from a git
worktree the worktree's parent's. A benchmark's work folders go under `bench-out/` in the
checkout (ignored by git) unless given; everything else a benchmark writes goes to a temporary
folder. A benchmark imports it:

    from scripts.helpers.places import BENCH_IMAGES, bench_out
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_BENCH = ROOT.parent / "shared" / "bench"
BENCH_IMAGES = SHARED_BENCH / "images"
BENCH_OUT = ROOT / "bench-out"


def bench_out(name: str) -> Path:
    """A benchmark's work folder under the checkout's ignored bench-out/ (not made here)."""
    return BENCH_OUT / name
