"""`evaluate --all-pairs`: precision at catalog scale, counted by hand and through the real service."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from dupcheck_tools.cli import main
from dupcheck_tools.evaluation.all_pairs import tally
from dupcheck_tools.samples import encode, product_image

SIZE = (200, 160)


def test_tally_counts_false_calls_pairs_and_true_pairs_by_hand() -> None:
    # A1 and A2 are copies of picture A; B, C, D are other pictures.
    source_of = {"A1": "A", "A2": "A", "B": "B", "C": "C", "D": "D"}
    calls = {
        "A1": ["A2", "B"],  # right, then wrong
        "A2": [],  # misses its copy A1
        "B": ["A1", "C"],  # wrong twice: B-A1 again (same pair), B-C
        "C": ["D"],  # wrong, but C-D is listed as the same picture
        "D": [],
    }
    judged = {"A1": {"A2", "B", "C"}, "A2": {"B"}, "B": {"A1", "C", "D"}, "C": {"D", "B"}, "D": {"C"}}
    summary, details = tally(calls, judged, source_of, {frozenset(("C", "D"))})
    # A known pair names pictures: a copy of one called a duplicate of the other is known too.
    grown, _ = tally({**calls, "C2": ["D"]}, {**judged, "C2": {"D"}}, {**source_of, "C2": "C"}, {frozenset("CD")})
    assert (grown["known_same_picture_pairs"], grown["false_duplicate_calls"]) == (2, 3)
    assert summary["judged_pairs"] == 10
    assert summary["false_duplicate_calls"] == 3  # A1->B, B->A1, B->C
    assert summary["false_duplicate_pairs"] == 2  # {A1, B}, {B, C}
    assert summary["queries_with_a_false_duplicate"] == 2  # A1 and B
    assert summary["false_calls_per_judged_pair"] == pytest.approx(3 / 10)
    assert summary["known_same_picture_pairs"] == 1
    assert (summary["pictures"], summary["distinct_pictures"]) == (5, 4)
    assert (summary["true_pairs"], summary["true_pairs_called_duplicate"]) == (2, 1)
    assert details["false_pairs"] == [
        {"a": "A1", "b": "B", "called_by": ["A1", "B"]},
        {"a": "B", "b": "C", "called_by": ["B"]},
    ]
    assert details["known_same_picture"] == [{"a": "C", "b": "D", "called_by": ["C"]}]
    # A2 never judged A1: the copy was not among its candidates, which the entry says.
    assert details["missed_true_pairs"] == [{"query": "A2", "copy": "A1", "judged": False}]


@pytest.fixture()
def bench(tmp_path: Path) -> Path:
    """Six generated products, two resized copies of P0 and one of P1 (as a benchmark's queries),
    and a held-out picture with an edited copy of it."""
    catalog, queries = tmp_path / "catalog", tmp_path / "queries"
    catalog.mkdir()
    queries.mkdir()
    originals = {f"P{i}": product_image(800 + i, SIZE) for i in range(6)}
    for name, image in originals.items():
        (catalog / f"{name}.jpg").write_bytes(encode(image))
    rows = [("query", "expected", "kind", "source")]
    for name, source, size in (("P0__resize", "P0", (150, 120)), ("P0__thumb", "P0", (100, 80)),
                               ("P1__resize", "P1", (300, 240))):  # fmt: skip
        (queries / f"{name}.jpg").write_bytes(encode(originals[source].resize(size), "JPEG", quality=80))
        rows.append((f"{name}.jpg", source, "resize", source))
    held = product_image(950, SIZE)
    (queries / "H__distinct.jpg").write_bytes(encode(held))
    (queries / "H__distinct_resize.jpg").write_bytes(encode(held.resize((160, 128))))
    rows += [("H__distinct.jpg", "", "distinct", "H"), ("H__distinct_resize.jpg", "", "distinct", "H")]
    with (tmp_path / "truth.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["evaluate", "--all-pairs", *argv])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else {}


def test_all_pairs_of_a_catalog_through_the_service(bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = bench / "out"
    code, summary = run(capsys, "--catalog", str(bench / "catalog"), "--out", str(out))
    assert code == 0
    report = json.loads((out / "all_pairs.json").read_text())
    assert report["summary"] == summary
    assert (summary["pictures"], summary["distinct_pictures"]) == (6, 6)
    # Every query judges every other item of a 6-item catalog (the pool is 32 candidates).
    assert summary["judged_pairs"] == 6 * 5 and summary["candidates_per_query"] == 32
    assert summary["false_duplicate_calls"] == summary["false_duplicate_pairs"] == 0
    assert summary["true_pairs"] == 0 and summary["true_pair_recall"] is None
    assert "| judged candidate pairs | 30 |" in (out / "all_pairs.md").read_text()


def test_a_catalog_grown_with_the_benchmark_queries(bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = bench / "grown"
    code, summary = run(capsys, "--catalog", str(bench / "catalog"), "--queries", str(bench / "queries"),
                        "--truth", str(bench / "truth.csv"), "--out", str(out))  # fmt: skip
    assert code == 0
    assert (summary["pictures"], summary["distinct_pictures"]) == (11, 7)
    # Ordered pairs of copies: P0 and its two copies (6), P1 and its copy (2), H and its copy (2).
    assert summary["true_pairs"] == 10
    assert summary["true_pairs_called_duplicate"] == 10, json.loads((out / "all_pairs.json").read_text())
    assert summary["false_duplicate_calls"] == 0
    assert summary["judged_pairs"] == 11 * 10


def test_a_known_same_picture_is_listed_not_counted(bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # P5's file replaced by a copy of P4: the two are now one picture under two ids.
    (bench / "catalog" / "P5.jpg").write_bytes(encode(product_image(804, SIZE).resize((180, 144))))
    code, summary = run(capsys, "--catalog", str(bench / "catalog"), "--out", str(bench / "a"))
    assert code == 0 and summary["false_duplicate_pairs"] == 1 and summary["false_duplicate_calls"] == 2
    (bench / "same.csv").write_text("a,b\nP4,P5\n")
    code, summary = run(capsys, "--catalog", str(bench / "catalog"), "--same", str(bench / "same.csv"),
                        "--out", str(bench / "b"))  # fmt: skip
    assert code == 0 and summary["false_duplicate_pairs"] == 0 and summary["known_same_picture_pairs"] == 1
    assert json.loads((bench / "b" / "all_pairs.json").read_text())["known_same_picture"][0]["a"] == "P4"


def test_leaving_each_picture_out_asks_it_as_a_new_product_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left out, each query is judged without its own record, which is back for every later
    query (each still judges every other item)."""
    catalog, queries = tmp_path / "catalog", tmp_path / "queries"
    catalog.mkdir()
    queries.mkdir()
    for i in range(6):
        (catalog / f"P{i}.jpg").write_bytes(encode(product_image(800 + i, SIZE)))
    turned = product_image(800, SIZE).rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    (queries / "P0__rotate.jpg").write_bytes(encode(turned))
    (tmp_path / "truth.csv").write_text("query,expected,kind,source\nP0__rotate.jpg,P0,rotate,P0\n")
    grown = ["--catalog", str(catalog), "--queries", str(queries), "--truth", str(tmp_path / "truth.csv")]
    missed = {}
    for mode, flags in (("with itself", []), ("left out", ["--leave-one-out"])):
        code, summary = run(capsys, *grown, "--out", str(tmp_path / mode), *flags)
        assert code == 0 and summary["leave_one_out"] == bool(flags)
        assert summary["judged_pairs"] == 7 * 6 and summary["false_duplicate_calls"] == 0
        report = json.loads((tmp_path / mode / "all_pairs.json").read_text())
        missed[mode] = {(m["query"], m["copy"]) for m in report["missed_true_pairs"]}
    # The same-photograph test maps the turn at 256 px from the upright start, so the turned copy
    # is found either way; what leaving out changes is which records each query is judged against.
    assert ("P0", "P0__rotate") not in missed["with itself"] | missed["left out"]
    assert "left out (--leave-one-out)" in (tmp_path / "left out" / "all_pairs.md").read_text()


def test_usage_errors(bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = str(bench / "catalog")
    assert main(["evaluate", "--all-pairs", "--catalog", catalog, "--queries", str(bench / "queries"),
                 "--out", str(bench / "o")]) == 2  # fmt: skip
    assert "together" in json.loads(capsys.readouterr().err)["error"]["message"]
    # A negative query without a source cannot be grouped with its picture's other copies.
    (bench / "old.csv").write_text("query,expected,kind\nH__distinct.jpg,,distinct\n")
    assert main(["evaluate", "--all-pairs", "--catalog", catalog, "--queries", str(bench / "queries"),
                 "--truth", str(bench / "old.csv"), "--out", str(bench / "o")]) == 2  # fmt: skip
    assert "source" in json.loads(capsys.readouterr().err)["error"]["message"]
    assert main(["evaluate", "--catalog", catalog, "--out", str(bench / "o")]) == 2  # per-query needs the truth
    capsys.readouterr()
    (bench / "bad.csv").write_text("x,y\n1,2\n")
    assert main(["evaluate", "--all-pairs", "--catalog", catalog, "--same", str(bench / "bad.csv"),
                 "--out", str(bench / "o")]) == 2  # fmt: skip
    assert "a,b" in json.loads(capsys.readouterr().err)["error"]["message"]
    assert main(["evaluate", "--catalog", catalog, "--queries", str(bench / "queries"), "--truth",
                 str(bench / "truth.csv"), "--leave-one-out", "--out", str(bench / "o")]) == 2  # fmt: skip
    assert "--leave-one-out only with --all-pairs" in json.loads(capsys.readouterr().err)["error"]["message"]
    assert not (bench / "o").exists()
