"""`python -m dupcheck evaluate`: metrics on hand-made rows, and a run through the real service."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import ImageOps

from dupcheck_tools.cli import main
from dupcheck_tools.evaluation.metrics import (
    NO_RELATIVE,
    WITH_RELATIVE,
    duplicate_precision,
    ndcg,
    per_kind,
    percent_by_verdict,
    percent_violations,
    rank_of,
    reciprocal_rank,
    summarise,
    threshold_curve,
)
from dupcheck_tools.evaluation.naming import naming
from dupcheck_tools.samples import encode, product_image
from support.benchmarks import three_products

SIZE = (200, 160)


def row(query: str, expected: str, kind: str, top: list[list], is_duplicate: bool | None = None) -> dict:
    if is_duplicate is None:
        is_duplicate = any(m[2] == "duplicate" for m in top)
    return {"query": query, "expected": expected, "kind": kind, "is_duplicate": is_duplicate, "top": top}


# r1: hit at rank 1, called duplicate           -> RR 1,   NDCG 1,            dup-hit, right duplicate
# r2: expected at rank 2, a wrong duplicate first -> RR 1/2, NDCG 1/log2(3),   wrong duplicate
# r3: expected at rank 6 (beyond NDCG@5)        -> RR 1/6, NDCG 0,            not called
# r4: hit at rank 1 but only "similar"          -> RR 1,   NDCG 1,            not a duplicate hit
ROWS = [
    row("r1", "A", "resize", [["A", 0, "duplicate"], ["B", 20, "different"]]),
    row("r2", "A", "crop", [["B", 3, "duplicate"], ["A", 5, "similar"]]),
    row(
        "r3",
        "C",
        "crop",
        [["B", 12, "similar"]] + [[x, 14 + i, "different"] for i, x in enumerate("DEFG")] + [["C", 19, "different"]],
    ),
    row("r4", "A", "resize", [["A", 6, "similar"], ["C", 16, "different"]]),
    row("n1", "", "distinct", [["A", 2, "duplicate"]]),
    row("n2", "", "distinct", [["B", 20, "different"]]),
    row("n3", "", "colour_variant", [["C", 4, "duplicate"]]),
]


def test_ranks_and_per_row_scores() -> None:
    assert [rank_of(r) for r in ROWS] == [1, 2, 6, 1, None, None, None]
    assert [reciprocal_rank(r) for r in ROWS[:4]] == pytest.approx([1.0, 0.5, 1 / 6, 1.0])
    assert [ndcg(r) for r in ROWS[:4]] == pytest.approx([1.0, 1 / math.log2(3), 0.0, 1.0])


def test_summary_computed_by_hand() -> None:
    s = summarise(ROWS)
    assert (s["queries"], s["positives"], s["negatives"]) == (7, 4, 3)
    assert s["recall_at_1"] == pytest.approx(2 / 4)
    assert s["mrr"] == pytest.approx((1 + 0.5 + 1 / 6 + 1) / 4)
    assert s["ndcg_at_5"] == pytest.approx((1 + 1 / math.log2(3) + 0 + 1) / 4)
    assert s["duplicate_recall"] == pytest.approx(1 / 4)  # r4's top-1 is right but only "similar"
    # Called duplicate: r1 (right), r2 (wrong id first), n1 and n3 (negatives): 1 of 4.
    assert s["duplicate_precision"] == pytest.approx(1 / 4)
    assert s["worst_kind"] == "crop" and s["worst_kind_recall_at_1"] == 0.0
    assert s["distinct_false_duplicate_rate"] == pytest.approx(1 / 2)
    assert s["colour_variant_false_duplicate_rate"] == 1.0


def test_per_kind_tables() -> None:
    kinds = per_kind(ROWS)
    assert set(kinds) == {"resize", "crop", "distinct", "colour_variant"}
    assert kinds["resize"] == {
        "type": "positive", "n": 2, "recall_at_1": 1.0, "mrr": 1.0, "ndcg_at_5": 1.0, "duplicate_recall": 0.5,
    }  # fmt: skip
    assert kinds["crop"]["recall_at_1"] == 0.0 and kinds["crop"]["mrr"] == pytest.approx((0.5 + 1 / 6) / 2)
    assert kinds["distinct"] == {
        "type": "negative", "n": 2, "false_duplicate_rate": 0.5,
        "top_verdicts": {"n": 2, "duplicate": 0.5, "similar": 0.0, "different": 0.5, "none": 0.0},
    }  # fmt: skip
    assert "recall_at_1" not in kinds["distinct"] and "false_duplicate_rate" not in kinds["crop"]


def test_precision_undefined_without_duplicates_and_absent_kinds_are_null() -> None:
    rows = [row("q", "A", "resize", [["A", 9, "similar"]]), row("n", "", "distinct", [])]
    assert duplicate_precision(rows) is None
    s = summarise(rows)
    assert s["colour_variant_false_duplicate_rate"] is None and s["distinct_false_duplicate_rate"] == 0.0
    assert s["duplicate_recall"] == 0.0 and s["recall_at_1"] == 1.0


def test_first_verdicts_of_negatives_apart_by_whether_a_relative_is_indexed() -> None:
    rows = [
        {**row("h1", "", "distinct", [["A", 9, "similar", 85.0]]), "relatives": ["A"]},
        {**row("h2", "", "distinct", [["B", 20, "different", 30.0]]), "relatives": []},
        {**row("h3", "", "distinct", [["C", 2, "duplicate", 97.0]]), "relatives": []},
        row("v1", "", "colour_variant", [["D", 1, "similar", 88.0]]),
        row("v2", "", "colour_variant", []),
    ]
    s = summarise(rows)
    assert s["top_verdicts"][WITH_RELATIVE] == {"n": 1, "duplicate": 0.0, "similar": 1.0, "different": 0.0, "none": 0.0}
    assert s["top_verdicts"][NO_RELATIVE]["n"] == 2 and s["no_relative_top_different"] == 0.5
    assert s["top_verdicts"]["distinct"]["n"] == 3
    assert s["colour_variant_top_similar"] == 0.5  # v2 has no match at all: not similar
    assert s["top_verdicts"]["colour_variant"]["none"] == 0.5
    # Without relatives.csv nothing is split.
    plain = summarise([{k: v for k, v in r.items() if k != "relatives"} for r in rows])
    assert NO_RELATIVE not in plain["top_verdicts"] and plain["no_relative_top_different"] is None


@pytest.mark.parametrize(
    ("top", "violates"),
    [
        ([["A", 0, "duplicate", 99.5], ["B", 2, "similar", 88.0], ["C", 20, "different", 30.0]], False),
        ([["A", 0, "duplicate", 99.5], ["B", 2, "duplicate", 99.5]], False),  # ties are in order
        ([["A", 0, "similar", 80.0], ["B", 2, "similar", 81.0]], True),  # out of order
        ([["A", 0, "duplicate", 90.0], ["B", 2, "similar", 90.0]], True),  # a duplicate not above a similar
        ([["A", 0, "different", 95.0], ["B", 2, "duplicate", 91.0]], True),
        ([["A", 0, "duplicate"], ["B", 2, "similar"]], False),  # rows of old reports have no percentages
    ],
)
def test_match_percent_violations(top: list[list], violates: bool) -> None:
    assert percent_violations(row("q", "A", "resize", top)) is violates
    assert summarise([row("q", "A", "resize", top)])["match_percent_violations"] == int(violates)


def test_match_percent_by_verdict_over_every_listed_match() -> None:
    rows = [
        row("a", "A", "resize", [["A", 0, "duplicate", 100.0], ["B", 4, "similar", 70.0]]),
        row("b", "A", "resize", [["A", 0, "duplicate", 96.0], ["C", 30, "different", 20.0]]),
    ]
    spread = percent_by_verdict(rows)
    assert spread["duplicate"] == {"n": 2, "min": 96.0, "p5": 96.0, "median": 100.0, "p95": 100.0, "max": 100.0}
    assert spread["similar"]["n"] == 1 and spread["different"]["max"] == 20.0


def test_edit_naming_against_the_known_edits() -> None:
    crop = {"edit": "crop", "left": 0.1, "right": 0.0, "top": 0.05, "bottom": 0.0}
    known = {
        "c1": [crop, {"edit": "encode", "format": "jpeg", "quality": 80}],
        "c2": [{**crop, "left": 0.2}],
        "m1": [{"edit": "mirror"}],
        "p1": [{"edit": "pad", "left": 0.1, "right": 0.1, "top": 0.0, "bottom": 0.0}],
        "r1": [{"edit": "resize", "scale": 0.5}],
        "w1": [{"edit": "mirror"}],
        "s1": [{"edit": "mirror"}],
        "g1": [{"edit": "grayscale", "visible": False}],
        "g2": [{"edit": "grayscale", "visible": False}],
    }
    named_crop = {"edit": "cropped", "left": 0.11, "right": 0.0, "top": 0.04, "bottom": 0.01}
    rows = [
        row("c1", "A", "crop", [["A", 0, "duplicate", 99.0, [named_crop]]]),  # named, right
        row("c2", "A", "crop", [["A", 0, "duplicate", 99.0, [named_crop, {"edit": "mirrored"}]]]),  # wrong, spurious
        row("m1", "A", "mirror", [["A", 0, "duplicate", 99.0, []]]),  # not named
        row("p1", "A", "pad", [["A", 0, "duplicate", 99.0, [{"edit": "framed", "left": 0.1}]]]),  # one family
        row("r1", "A", "resize", [["A", 0, "duplicate", 99.0, [{"edit": "brightness", "change": 0.1}]]]),
        row("w1", "A", "mirror", [["B", 0, "duplicate", 99.0, [{"edit": "mirrored"}]]]),  # the wrong picture
        row("s1", "A", "mirror", [["A", 0, "similar", 85.0, [{"edit": "mirrored"}]]]),  # not called a duplicate
        row("g1", "A", "grayscale", [["A", 0, "duplicate", 99.0, []]]),  # nothing visible to name
        row("g2", "A", "grayscale", [["A", 0, "duplicate", 99.0, [{"edit": "grayscale"}]]]),  # named, not seen
    ]
    got = naming(rows, known)
    assert got["crop"] == {"queries": 2, "named": 1.0, "right": 0.5, "spurious": 0.5}
    assert got["mirror"] == {"queries": 1, "named": 0.0, "right": None, "spurious": 0.0}
    assert got["pad"]["named"] == 1.0 and got["pad"]["spurious"] == 0.0
    assert got["resize"] == {"queries": 1, "named": None, "right": None, "spurious": 1.0}
    assert got["grayscale"] == {"queries": 2, "named": None, "right": None, "spurious": 0.5}
    assert got["all"]["queries"] == 7 and got["all"]["named"] == pytest.approx(3 / 4)


def test_threshold_curve() -> None:
    # top-1 distances: r1 0 (right), r2 3 (wrong), r3 12 (wrong), r4 6 (right), n1 2, n2 20, n3 4.
    curve = {t: (p, r) for t, p, r in threshold_curve(ROWS)}
    assert max(curve) == 20
    assert curve[0] == (1.0, 0.25)
    assert curve[2] == (0.5, 0.25)  # r1 right, n1 wrong
    assert curve[6] == pytest.approx((2 / 5, 0.5))  # r1, n1, r2, n3, r4
    assert curve[20] == pytest.approx((2 / 7, 0.5))


# -- end to end ----------------------------------------------------------------------------------


def test_evaluate_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog, queries, out = tmp_path / "catalog", tmp_path / "queries", tmp_path / "out"
    catalog.mkdir()
    queries.mkdir()
    originals = {f"P{i}": product_image(700 + i, SIZE) for i in range(6)}
    for name, image in originals.items():
        (catalog / f"{name}.jpg").write_bytes(encode(image))
    (catalog / "broken.jpg").write_bytes(encode(product_image(1, SIZE))[:300])  # truncated JPEG
    truth = []
    for i, (w, h) in enumerate([(100, 80), (400, 320), (150, 120), (260, 208)]):
        name = f"P{i}__resize.jpg"
        (queries / name).write_bytes(encode(originals[f"P{i}"].resize((w, h)), "JPEG", quality=70))
        truth.append((name, f"P{i}", "resize"))
    (queries / "P4__png.png").write_bytes(encode(originals["P4"], "PNG"))
    truth.append(("P4__png.png", "P4", "png"))
    for seed in (900, 901):
        (queries / f"D{seed}.jpg").write_bytes(encode(product_image(seed, SIZE)))
        truth.append((f"D{seed}.jpg", "", "distinct"))
    (queries / "P5__mirror.jpg").write_bytes(encode(ImageOps.mirror(originals["P5"])))
    truth.append(("P5__mirror.jpg", "P5", "mirror"))
    truth.append(("missing.jpg", "P5", "resize"))  # listed but absent: reported, counted as a miss
    with (tmp_path / "truth.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("query", "expected", "kind"), *truth])
    # The benchmark builder's two optional files, found beside the truth file.
    known = {"P5__mirror.jpg": [{"edit": "mirror"}], "P0__resize.jpg": [{"edit": "resize", "scale": 0.4}]}
    lines = [json.dumps({"query": query, "edits": steps}) + "\n" for query, steps in known.items()]
    (tmp_path / "edits.jsonl").write_text("".join(lines))
    (tmp_path / "relatives.csv").write_text("query,relatives\nD900.jpg,P1;P2\n")

    code = main([
        "evaluate", "--catalog", str(catalog), "--queries", str(queries),
        "--truth", str(tmp_path / "truth.csv"), "--out", str(out),
    ])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    for name in ("report.json", "report.md", "distances.png", "threshold.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "distances.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = json.loads(stdout.strip().splitlines()[-1])
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"summary", "per_kind", "rows"} and report["summary"] == summary
    assert {"recall_at_1", "worst_kind_recall_at_1", "duplicate_recall", "duplicate_precision",
            "distinct_false_duplicate_rate", "colour_variant_false_duplicate_rate"} <= set(summary)  # fmt: skip
    assert summary["catalog_images"] == 6
    assert summary["catalog_failed"] == 1 and summary["catalog_failed_files"][0]["file"] == "broken.jpg"
    assert summary["query_failed"] == 1 and summary["query_failed_files"][0]["file"] == "missing.jpg"
    assert summary["colour_variant_false_duplicate_rate"] is None  # no such kind here

    rows = {r["query"]: r for r in report["rows"]}
    assert len(report["rows"]) == len(truth) == 9
    for name, expected, _kind in [t for t in truth if t[1] and t[0] != "missing.jpg"]:  # copies are found first
        assert rows[name]["top"][0][0] == expected, rows[name]
        assert len(rows[name]["top"]) == 5 and rows[name]["top"][0][2] in {"duplicate", "similar", "different"}
    assert rows["missing.jpg"]["top"] == [] and rows["missing.jpg"]["error"]
    assert summary["positives"] == 7 and summary["negatives"] == 2
    assert summary["recall_at_1"] == pytest.approx(6 / 7)  # the missing query is a miss
    assert report["per_kind"]["distinct"]["n"] == 2 and report["per_kind"]["resize"]["n"] == 5
    # Each match: [id, distance, verdict, match_percent, edits]; the list best first by percentage.
    assert summary["match_percent_violations"] == 0
    first = rows["P5__mirror.jpg"]["top"][0]
    assert first[2] == "duplicate" and {"edit": "mirrored"} in first[4]
    assert summary["edit_naming"]["mirror"] == {"queries": 1, "named": 1.0, "right": 1.0, "spurious": 0.0}
    assert rows["D900.jpg"]["relatives"] == ["P1", "P2"] and rows["D901.jpg"]["relatives"] == []
    assert summary["top_verdicts"][NO_RELATIVE]["n"] == 1 and summary["top_verdicts"][WITH_RELATIVE]["n"] == 1

    md = (out / "report.md").read_text()
    assert "| resize | 5 |" in md and "| distinct | 2 |" in md and "broken.jpg" in md
    assert "| mirror | 1 | 1.000 | 1.000 | 0.000 |" in md and f"| {NO_RELATIVE} | 1 |" in md


def test_evaluate_refuses_a_named_edits_file_that_is_missing_or_not_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "truth.csv").write_text("query,expected,kind\na.jpg,A,resize\n")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    for edits in (tmp_path / "absent.jsonl", tmp_path / "bad.jsonl"):
        code = main([
            "evaluate", "--catalog", str(tmp_path), "--queries", str(tmp_path), "--truth", str(tmp_path / "truth.csv"),
            "--out", str(tmp_path / "out"), "--edits", str(edits),
        ])  # fmt: skip
        assert code == 2
        assert edits.name in json.loads(capsys.readouterr().err)["error"]["message"]
    assert not (tmp_path / "out").exists()  # refused before anything was indexed


def test_evaluate_rejects_a_truth_file_without_its_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "truth.csv").write_text("file,match\na.jpg,A\n")
    code = main([
        "evaluate", "--catalog", str(tmp_path), "--queries", str(tmp_path),
        "--truth", str(tmp_path / "truth.csv"), "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    assert code == 2
    assert "query" in json.loads(capsys.readouterr().err)["error"]["message"]
    assert not (tmp_path / "out").exists()


# -- catalog-wide duplicates: pair precision and recall ------------------------------------------


def _group(*ids: str, related: tuple[tuple[str, str], ...] = ()) -> object:
    from dupcheck_tools.duplicates.grouping import Group, Pair
    from dupcheck_tools.duplicates.workfile import Listing

    items = tuple(Listing(i, "", "", "") for i in ids)
    return Group(items, tuple(Pair(ids[0], other, 2, 96.9, ()) for other in ids[1:]),
                 tuple(Pair(a, b, 9, 93.0, ()) for a, b in related))  # fmt: skip


def test_pair_precision_and_recall_count_pairs_of_records_in_one_group() -> None:
    from dupcheck_tools.evaluation.duplicates import score

    # Sources: o1 has two copies, o2 one; v is o1's colour variant (its own source), h a held-out
    # picture with an edited copy (a true pair outside the catalog's originals).
    source_of = {"o1": "o1", "o1__a": "o1", "o1__b": "o1", "o2": "o2", "o2__a": "o2", "v": "v", "h": "h", "h__e": "h"}
    kind_of = {"o1": "original", "o1__a": "mirror", "o1__b": "crop_large", "o2": "original", "o2__a": "jpeg",
               "v": "colour_variant", "h": "distinct", "h__e": "distinct"}  # fmt: skip
    # Found: o1 with one copy and, wrongly, its colour variant; o2 with its copy; h's pair missed.
    # o1__b was called the same picture as o1__a only: related to o1's group (right), and o2__a
    # as o1__a (wrong), listed under both groups: counted once.
    groups = [_group("o1", "o1__a", "v", related=(("o1__a", "o1__b"), ("o1__a", "o2__a"))),
              _group("o2", "o2__a", related=(("o2__a", "o1__a"),))]  # fmt: skip

    result = score(groups, source_of, kind_of, {"v": "o1"})  # type: ignore[arg-type]

    assert result["true_pairs"] == 3 + 1 + 1  # o1 x3, o2 x2, h x2
    assert (result["grouped_pairs"], result["grouped_pairs_right"]) == (3 + 1, 2)
    assert result["pair_precision"] == 2 / 4 and result["pair_recall"] == 2 / 5
    assert result["linked_pairs"] == 3 and result["linked_pair_precision"] == 2 / 3
    assert (result["related_pairs"], result["related_pairs_right"]) == (2, 1)
    # What a person acts on: o1-o1__a, o1-v (the one wrong call), o2-o2__a. The per-pair calls:
    # the 3 listed and the 2 related (o1__a-o1__b right, o1__a-o2__a wrong).
    assert result["kept_pairs"] == 3 and result["kept_pair_precision"] == 2 / 3
    assert result["called_pairs"] == 5 and result["called_pair_precision"] == 3 / 5
    assert result["colour_variants_grouped_with_sibling"] == 1
    assert result["colour_variants_grouped_with_sibling_ids"] == ["v"]
    assert result["per_kind"] == {
        "crop_large": {"n": 1, "grouped_with_original": 0, "recall": 0.0, "original_kept": None},
        "jpeg": {"n": 1, "grouped_with_original": 1, "recall": 1.0, "original_kept": 1.0},
        "mirror": {"n": 1, "grouped_with_original": 1, "recall": 1.0, "original_kept": 1.0},
    }


def test_a_group_holding_an_original_is_scored_on_whether_it_keeps_it_and_its_pairs_on_their_edits() -> None:
    from dupcheck.core.models import Edit
    from dupcheck_tools.duplicates.grouping import Group, Pair
    from dupcheck_tools.duplicates.workfile import Listing
    from dupcheck_tools.evaluation.duplicates import score

    source_of = {"o1": "o1", "o1__a": "o1", "o2": "o2", "o2__a": "o2", "o2__b": "o2", "h": "h", "h__e": "h"}
    kind_of = {"o1": "original", "o1__a": "crop_large", "o2": "original", "o2__a": "mirror", "o2__b": "badge",
               "h": "distinct", "h__e": "distinct"}  # fmt: skip
    crop = {"edit": "cropped", "left": 0.1, "right": 0.0, "top": 0.0, "bottom": 0.0}
    steps = {"o1__a": [{"edit": "crop", "left": 0.1, "right": 0.0, "top": 0.0, "bottom": 0.0}],
             "o2__a": [{"edit": "mirror"}], "o2__b": [{"edit": "badge", "corner": "top left"}]}  # fmt: skip

    def group(*ids: str, edits: dict[tuple[str, str], list[dict[str, object]] | None]) -> Group:
        pairs = tuple(Pair(a, b, 2, 97.0, None if e is None else tuple(Edit.of_dict(x) for x in e))
                      for (a, b), e in edits.items())  # fmt: skip
        return Group(tuple(Listing(i, "", "", "") for i in ids), pairs)

    groups = [
        group("o1", "o1__a", edits={("o1", "o1__a"): [crop]}),  # kept right, the crop named right
        # o2's mirrored copy kept (registered first, say): the pair with the badge reads copy first.
        group("o2__a", "o2", "o2__b", edits={("o2__a", "o2"): [{"edit": "mirrored"}],
                                             ("o2__a", "o2__b"): [{"edit": "mirrored"}],
                                             ("o2", "o2__b"): [{"edit": "overlay", "where": "bottom right"}]}),
        group("h", "h__e", edits={("h", "h__e"): []}),  # no original in it: not counted
    ]  # fmt: skip
    result = score(groups, source_of, kind_of, {}, ["pictures", "registered", "registered"], steps)
    assert (result["groups_with_original"], result["original_kept"], result["original_kept_share"]) == (2, 1, 0.5)
    assert result["original_kept_by"] == {"pictures": {"groups": 1, "original_kept": 1},
                                          "registered": {"groups": 1, "original_kept": 0}}  # fmt: skip
    # o1-o1__a, o2__a-o2 (the copy first), o2-o2__b: three pairs of an original and its copy.
    edits = result["pair_edits"]
    assert edits["pairs"] == 3 and edits["original_first"] == 2 / 3
    # Of the three steps, the crop and the badge are named (the mirror is not: its pair reads the
    # copy first); the badge's corner is wrong.
    assert edits["named"] == 2 / 3 and edits["right"] == 1 / 2 and edits["spurious"] == 0.0
    assert (
        result["per_kind"]["mirror"]["original_kept"] == 0.0
        and result["per_kind"]["crop_large"]["original_kept"] == 1.0
    )


def test_pairs_listed_as_one_picture_are_scored_as_one() -> None:
    from dupcheck_tools.evaluation.duplicates import same_pictures, score

    # v is labelled o1's colour variant but is o1's very photo; h is a held-out picture that is
    # o2's photo on another background, and h2 h's own copy; o3 stays a picture of its own.
    source_of = {"o1": "o1", "v": "v", "o2": "o2", "h": "h", "h__e": "h", "o3": "o3", "w": "w"}
    kind_of = {"o1": "original", "v": "colour_variant", "o2": "original", "h": "distinct",
               "h__e": "distinct", "o3": "original", "w": "colour_variant"}  # fmt: skip
    siblings = {"v": "o1", "w": "o3"}
    groups = [_group("o1", "v"), _group("o2", "h", "h__e"), _group("o3", "w")]

    labelled = score(groups, source_of, kind_of, siblings)  # type: ignore[arg-type]
    assert (labelled["grouped_pairs"], labelled["grouped_pairs_right"]) == (1 + 3 + 1, 1)
    assert labelled["colour_variants_grouped_with_sibling_ids"] == ["v", "w"]

    # h's copy goes with h: one picture of o2, h and h__e.
    one_source_of, one_sibling_of = same_pictures(source_of, siblings, {frozenset(("v", "o1")), frozenset(("h", "o2"))})
    assert one_source_of["v"] == one_source_of["o1"] and one_source_of["h__e"] == one_source_of["o2"]
    assert one_sibling_of == {"w": "o3"}  # v is o1's picture now, no longer a variant of it
    as_one = score(groups, one_source_of, kind_of, one_sibling_of)  # type: ignore[arg-type]
    assert (as_one["grouped_pairs"], as_one["grouped_pairs_right"]) == (5, 4)  # only o3 and w are wrong
    assert as_one["true_pairs"] == 1 + 3
    assert as_one["colour_variants_grouped_with_sibling_ids"] == ["w"]
    chained, _ = same_pictures({"a": "a", "b": "b", "c": "c"}, {}, {frozenset(("c", "b")), frozenset(("b", "a"))})
    assert len(set(chained.values())) == 1


def test_one_copy_per_picture_keeps_every_edit_kind() -> None:
    from dupcheck_tools.evaluation.duplicates import choose_copies

    kinds = ["resize", "mirror", "crop_large"]
    # Each picture has the same two kinds first by name: picking by name alone would never
    # choose the third.
    rows = [{"query": f"p{i}__{kind}.jpg", "expected": f"p{i}", "kind": kind, "source": f"p{i}"}
            for i in range(6) for kind in kinds]  # fmt: skip
    chosen = choose_copies(rows, 1)
    assert len(chosen) == 6 and len({r["expected"] for r in chosen}) == 6
    assert {r["kind"]: sum(1 for c in chosen if c["kind"] == r["kind"]) for r in chosen} == dict.fromkeys(kinds, 2)
    assert len(choose_copies(rows, None)) == 18 and len(choose_copies(rows, 2)) == 12


def keep_order_of(entity_id: str) -> object:
    from dupcheck_tools.duplicates.grouping import keep_order
    from dupcheck_tools.duplicates.workfile import Listing

    return keep_order(Listing(entity_id, "", "", ""))


def test_catalog_wide_evaluation_runs_the_report_on_a_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_products(tmp_path)
    catalog, queries = tmp_path / "catalog", tmp_path / "queries"

    code = main(["evaluate-duplicates", "--catalog", str(catalog), "--queries", str(queries),
                 "--truth", str(tmp_path / "truth.csv"), "--out", str(tmp_path / "out")])  # fmt: skip

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert (summary["records"], summary["true_pairs"]) == (7, 3)
    assert summary["pair_precision"] == 1.0 and summary["pair_recall"] == 1.0  # resized copies are found
    # Each copy's id sorts before its original's: each group keeps its original all the same.
    assert (summary["groups_with_original"], summary["original_kept"]) == (3, 3)
    report = json.loads((tmp_path / "out" / "report" / "duplicates.json").read_text())
    with (tmp_path / "out" / "ids.csv").open(newline="") as fh:
        ids = {row["entity_id"]: row for row in csv.DictReader(fh)}
    assert {ids[group["keep"]]["kind"] for group in report["groups"]} == {"original"}
    assert all(keep_order_of(copy) < keep_order_of(group["keep"]) for group in report["groups"]
               for copy in group["items"][1:])  # fmt: skip
    assert "pair recall" in (tmp_path / "out" / "duplicates-evaluation.md").read_text()

    (tmp_path / "old.csv").write_text("query,expected,kind\np0__resize.jpg,p0,resize\n")
    code = main(["evaluate-duplicates", "--catalog", str(catalog), "--queries", str(queries),
                 "--truth", str(tmp_path / "old.csv"), "--out", str(tmp_path / "out2")])  # fmt: skip
    assert code == 2 and "source" in capsys.readouterr().err


def test_catalog_wide_evaluation_scores_listed_pairs_as_one_picture_beside_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, queries = tmp_path / "catalog", tmp_path / "queries"
    catalog.mkdir()
    queries.mkdir()
    pictures = [product_image(900 + i, SIZE) for i in range(2)]
    for i, picture in enumerate(pictures):
        (catalog / f"p{i}.jpg").write_bytes(encode(picture))
    # A held-out picture that is p0's photo again: the data says another picture.
    (queries / "h__distinct.jpg").write_bytes(encode(pictures[0].resize((150, 120))))
    (tmp_path / "truth.csv").write_text("query,expected,kind,source\nh__distinct.jpg,,distinct,h\n")
    (tmp_path / "same.csv").write_text("a,b\np0,h\n")

    code = main(["evaluate-duplicates", "--catalog", str(catalog), "--queries", str(queries),
                 "--truth", str(tmp_path / "truth.csv"), "--out", str(tmp_path / "out"),
                 "--same", str(tmp_path / "same.csv")])  # fmt: skip

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert (summary["grouped_pairs"], summary["grouped_pairs_right"], summary["true_pairs"]) == (1, 0, 0)
    assert summary["pair_precision"] == 0.0  # as labelled: a wrong pair, and it stays reported
    one = summary["with_same"]
    assert (one["grouped_pairs_right"], one["true_pairs"]) == (1, 1)
    assert one["pair_precision"] == 1.0 and one["pair_recall"] == 1.0
    assert summary["same_pictures"] == [["h", "p0"]]
    assert "with the --same pairs one picture (h = p0)" in (tmp_path / "out" / "duplicates-evaluation.md").read_text()
