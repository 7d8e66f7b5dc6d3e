"""scripts/make_pairs.py and `evaluate-pairs`: one pair, one judgement, measured in every order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from dupcheck_tools.cli import main
from dupcheck_tools.evaluation.pairs import summarise
from dupcheck_tools.samples import encode, product_image
from support.scripts import load_script


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    folder = tmp_path / "originals"
    folder.mkdir()
    for i in range(4):
        (folder / f"p{i}.jpg").write_bytes(encode(product_image(610 + i, (320, 260))))
    return folder


def rounds_of(out: Path) -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = {}
    with (out / "rounds.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            found.setdefault(row["round"], {"stored": [], "asked": []})[row["role"]].append(row["picture"])
    return found


def test_every_round_stores_and_asks_what_it_says(originals: Path, tmp_path: Path) -> None:
    make = load_script("make_pairs.py")
    assert make.main(["--originals", str(originals), "--out", str(tmp_path / "a")]) == 0
    assert make.main(["--originals", str(originals), "--out", str(tmp_path / "b")]) == 0
    out = tmp_path / "a"
    pictures = sorted(p.name for p in (out / "pictures").iterdir())
    assert len(pictures) == 4 * len(make.KINDS)
    # Byte for byte the same files every run (every choice seeded by the file and the kind).
    assert all((out / "pictures" / n).read_bytes() == (tmp_path / "b" / "pictures" / n).read_bytes() for n in pictures)
    rounds = rounds_of(out)
    assert set(rounds) == set(make.ROUNDS)
    for name, plan in rounds.items():
        stored = {Path(p).stem.split("__")[0] for p in plan["stored"]}
        assert stored == {f"p{i}" for i in range(4)}, name  # every photo in every round's catalog
        assert not set(plan["stored"]) & set(plan["asked"]), name  # a picture is never asked against itself
    for n in range(4):  # each photo's pair of kinds, stored one way in pairs-a and the other in pairs-b
        (a,) = [p for p in rounds["pairs-a"]["stored"] if p.startswith(f"p{n}__")]
        (b,) = [p for p in rounds["pairs-b"]["stored"] if p.startswith(f"p{n}__")]
        assert a in rounds["pairs-b"]["asked"] and b in rounds["pairs-a"]["asked"]
    thrice = [Path(p).stem.split("__")[1] for p in rounds["thrice"]["stored"]]
    assert sorted(thrice) == sorted(make.THRICE_STORED * 4)
    edits = {line["picture"]: line["edits"] for line in map(json.loads, (out / "edits.jsonl").read_text().splitlines())}
    cut = next(v for k, v in edits.items() if "__cut_side" in k)[0]
    assert cut["edit"] == "crop" and cut["top"] == cut["bottom"] == 0.0
    assert 0.04 <= max(cut["left"], cut["right"]) <= 0.2  # one side only, the two crops share >= 80% of each
    with Image.open(next((out / "pictures").glob("p0__cut_end.*"))) as end, Image.open(originals / "p0.jpg") as whole:
        assert end.width == whole.width and end.height < whole.height


def test_the_summary_reads_each_question_off_the_rows() -> None:
    def row(round_: str, photo: str, stored: str, asked: str, verdict: str | None, edited: str | None = None) -> dict:
        return {"round": round_, "photo": photo, "stored_kind": stored, "asked_kind": asked, "verdict": verdict,
                "edited": edited}  # fmt: skip

    rows = [
        row("pairs-a", "x", "crop_large", "original", "duplicate", "catalog"),
        row("pairs-b", "x", "original", "crop_large", "duplicate", "query"),
        row("pairs-a", "y", "mirror", "badge", "duplicate"),
        row("pairs-b", "y", "badge", "mirror", None),  # not listed: a verdict of its own
        row("pairs-a", "y", "mirror", "original", "duplicate", "query"),
        row("crops-a", "x", "cut_side", "cut_end", "duplicate"),
        row("crops-b", "x", "cut_end", "cut_side", "different"),
        row("thrice", "x", "original", "rotate", "duplicate"),
        row("thrice", "x", "pad_square", "rotate", None),
    ]
    summary = summarise(rows)
    assert summary["original_after_copy"] == {"n": 2, "duplicate": 1.0, "by_kind": {
        "crop_large": {"n": 1, "duplicate": 1.0}, "mirror": {"n": 1, "duplicate": 1.0}}}  # fmt: skip
    assert summary["copy_against_copy"]["n"] == 2 and summary["copy_against_copy"]["duplicate"] == 0.5
    assert summary["copy_after_original"] == {"n": 1, "duplicate": 1.0, "by_kind": {
        "crop_large": {"n": 1, "duplicate": 1.0}}}  # fmt: skip
    assert summary["both_ways"] == {"pairs": 2, "agree": 0.5, "by_kind": {
        "badge / mirror": {"pairs": 1, "agree": 0.0}, "crop_large / original": {"pairs": 1, "agree": 1.0}}}  # fmt: skip
    assert summary["two_crops"] == {"n": 2, "duplicate": 0.5, "agree": 0.0}
    assert summary["thrice"] == {"n": 2, "duplicate": 0.5}
    # Of the originals found after a copy that lost or gained (a crop, not a mirror): named the right way.
    assert summary["named_right_way"] == {"n": 1, "share": 1.0, "by_kind": {"crop_large": {"n": 1, "share": 1.0}}}
    # The same pair the other way: the crop asked after its original names itself the copy.
    assert summary["copy_named"] == {"n": 1, "share": 1.0}


def test_evaluate_pairs_end_to_end(originals: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = tmp_path / "pairs"
    assert load_script("make_pairs.py").main(["--originals", str(originals), "--out", str(bench), "--limit", "2"]) == 0
    out = tmp_path / "out"
    assert main(["evaluate-pairs", "--pairs", str(bench), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = json.loads((out / "pairs.json").read_text())
    assert report["summary"]["records_judged"] == len(report["rows"]) == summary["records_judged"] > 0
    assert summary["original_after_copy"]["n"] > 0 and summary["failed_files"] == []
    assert "| the original asked after its copy" in (out / "pairs.md").read_text()
    (bench / "rounds.csv").write_text("round,role,picture\npairs-a,stored,missing.jpg\n")
    assert main(["evaluate-pairs", "--pairs", str(bench), "--out", str(out)]) != 0  # a clear refusal
