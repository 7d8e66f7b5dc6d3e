"""No file of the project names one machine's folders (issue 76): the benchmarks find the photos
at `../shared/bench` beside the checkout through one helper (scripts/helpers/places.py), and keep
their work under the checkout's ignored bench-out/ or in a temporary folder; the docs' recipes
do the same."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.scripts import load_script

ROOT = Path(__file__).resolve().parents[3]
# Every tracked file under these: the code, the docs, the notebooks and the build.
CHECKED = ("scripts", "docs", "README.md", "infra", "notebooks", "Makefile", "tests")
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/work/")


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--", *CHECKED], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def test_no_file_names_an_absolute_work_path() -> None:
    files = tracked_files()
    assert any(path.name == "deploy.md" for path in files) and len(files) > 100, "git ls-files found too little"
    found = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                  if MACHINE_PATH.search(line)]  # fmt: skip
    assert not found, f"an absolute /work/ path (use ../shared beside the checkout, bench-out/ or a temp dir): {found}"


def test_the_pattern_finds_an_absolute_path_only() -> None:
    assert MACHINE_PATH.search('SHARED = Path("/work/shared/bench/images")')
    assert MACHINE_PATH.search("debootstrap bookworm /work/arm64root")
    assert not MACHINE_PATH.search("../shared/bench/images and bench-out/work/dups")


def test_the_benchmarks_find_the_photos_beside_the_checkout() -> None:
    places = load_script("helpers/places.py")
    shared = ROOT.parent / "shared" / "bench"
    assert shared == places.SHARED_BENCH
    assert places.BENCH_IMAGES == places.SHARED_BENCH / "images"
    assert places.bench_out("dups") == ROOT / "bench-out" / "dups"
    assert "/bench-out/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    # One helper: no benchmark spells the shared folder's place itself.
    spelled = [path.name for path in sorted((ROOT / "scripts" / "bench").glob("*.py"))
               if path.name != "places.py"
               and re.search(r'"shared"\s*/\s*"bench"', path.read_text(encoding="utf-8"))]  # fmt: skip
    assert not spelled, spelled
