"""scripts/bench/duplicates_real_bench.py: a version's duplicate report measured on a benchmark."""

from __future__ import annotations

from pathlib import Path

from support.benchmarks import three_products
from support.scripts import load_script

ROOT = Path(__file__).resolve().parents[3]


def test_a_versions_report_is_measured_with_the_pairs_it_judged(tmp_path: Path) -> None:
    """The run goes through the version's own evaluate-duplicates (a subprocess on its code) and
    reads the report's summary, which that command does not print: if the wrapper stopped
    catching it, the pairs judged and the phases would be missing."""
    bench = load_script("bench/duplicates_real_bench.py")
    three_products(tmp_path)

    measured = bench.measure(ROOT / "lambdas", tmp_path, tmp_path / "out")

    assert measured["records"] == 7
    assert measured["candidate_pairs"] >= 3, "each copy is its original's candidate"
    assert measured["groups"] == 3 and measured["pair_recall"] == 1.0
    assert {"read", "pair", "verify"} <= set(measured["phases_s"])
    assert measured["pairs_per_s"] == round(measured["candidate_pairs"] / measured["report_s"], 1)
