"""The same answers under the narrowest kernels this machine has (scripts/same_answers.py).

numpy and OpenBLAS choose SIMD kernels by the CPU; the service must answer alike on every one.
Here a generated benchmark is judged under this machine's kernels and under the narrowest ones,
side by side, and every query's matches compared (`make test` also runs the matching unit tests
a second time under the narrow kernels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.scripts import SCRIPTS, load_script

same_answers = load_script("same_answers.py")


def test_the_narrow_environment_switches_the_kernels_off() -> None:
    """What the check runs under really is narrower: numpy dispatches to none of its targets and
    OpenBLAS reports the core type asked for (numpy 2.4 ignores the names AVX2 or FMA3 there)."""
    narrow = same_answers.narrow_environment()
    probe = (
        "import json, threadpoolctl\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as f, __cpu_dispatch__ as d\n"
        "print(json.dumps({'on': [k for k in d if f[k]], 'blas': threadpoolctl.threadpool_info()[0]['architecture']}))"
    )
    got = json.loads(
        subprocess.run(
            [sys.executable, "-W", "error::ImportWarning", "-c", probe],
            env={**os.environ, **narrow}, check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    assert got["on"] == []
    if "OPENBLAS_CORETYPE" in narrow:
        assert got["blas"].lower() == narrow["OPENBLAS_CORETYPE"].lower()


FILTERS = """
import hashlib, numpy as np
from dupcheck.core.matching.affine import _blur
from dupcheck.core.matching.marks import _smoothed
from dupcheck.core.matching.one_edit import _pooled
from dupcheck.core.matching.photograph import band
rng = np.random.default_rng(7)
out = []
for n in (64, 120, 256):
    picture = rng.normal(120, 40, (n, n))
    out += [band(picture), _blur(picture, 1.0), _smoothed(picture, 1.5), _pooled(picture[None], 4), _pooled(picture, 9)]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def test_the_detail_band_and_the_blurs_are_the_same_bits_under_the_narrow_kernels() -> None:
    """The filters the same-photograph test and the marks read (the band's difference of
    Gaussians, Lucas-Kanade's blur, the marks' smoothing, the colour cells' means) give the same
    bits whatever numpy dispatches to: their Gaussians' few values come from the C library's
    `exp` (numpy's float64 `exp` under AVX-512 differs from its narrowest in the last digit)."""

    def digest(env: dict[str, str]) -> str:
        done = subprocess.run([sys.executable, "-c", FILTERS], env={**os.environ, **env}, check=True,
                              capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip()

    assert digest({}) == digest(same_answers.narrow_environment())


def _answer(entity: str, verdict: str, percent: float, edits: list | None = None) -> list:
    return [entity, 3, verdict, percent, edits]


def test_differences_name_a_verdict_an_edit_an_order_and_a_percentage_past_a_tenth() -> None:
    first = {
        "q": {
            "error": None,
            "matches": [_answer("a", "duplicate", 99.2, [{"edit": "cropped"}]), _answer("b", "different", 40.0)],
        }
    }
    same = json.loads(json.dumps(first))
    same["q"]["matches"][0][3] = 99.25  # within a tenth
    assert same_answers.differences(first, same) == []
    for change in (
        lambda m: m[0].__setitem__(2, "similar"),
        lambda m: m[0].__setitem__(4, [{"edit": "cropped"}, {"edit": "overlay"}]),
        lambda m: m.reverse(),
        lambda m: m[1].__setitem__(3, 40.2),
    ):
        other = json.loads(json.dumps(first))
        change(other["q"]["matches"])
        assert len(same_answers.differences(first, other)) >= 1


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two evaluations of ~190 queries, side by side
def test_a_generated_benchmark_gets_the_same_answers_under_the_narrow_kernels(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "same_answers.py"), "check", "--out", str(tmp_path), "--pictures", "10"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["queries"] >= 150  # every kind of edit of each picture, held-out pictures and variants
    assert done.returncode == 0, done.stdout
    assert summary["differences"] == 0
