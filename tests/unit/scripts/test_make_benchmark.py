"""scripts/make_benchmark.py: deterministic, complete and self-consistent benchmark folders."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from dupcheck_tools.cli import main as dupcheck_main
from dupcheck_tools.samples import encode, product_image
from support.scripts import load_script

SIZE = (200, 160)


@pytest.fixture(scope="module")
def mb() -> ModuleType:
    return load_script("make_benchmark.py")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 originals (one PNG) and one colour variant of o0."""
    root = tmp_path_factory.mktemp("sources")
    (root / "originals").mkdir()
    (root / "variants").mkdir()
    for i in range(6):
        image = product_image(300 + i, SIZE)
        if i == 5:
            (root / "originals" / f"o{i}.png").write_bytes(encode(image, "PNG"))
        else:
            (root / "originals" / f"o{i}.jpg").write_bytes(encode(image))
    (root / "variants" / "o0_blue.jpg").write_bytes(encode(product_image(300, SIZE, hue=0.6)))
    (root / "variants.csv").write_text("variant,sibling\no0_blue.jpg,o0.jpg\n")
    return root


def build(mb: ModuleType, sources: Path, out: Path, *extra: str) -> Path:
    argv = ["--originals", str(sources / "originals"), "--out", str(out), "--quiet",
            "--colour-variants", str(sources / "variants.csv"), str(sources / "variants"), *extra]  # fmt: skip
    assert mb.main(argv) == 0
    return out


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def truth(out: Path) -> list[dict[str, str]]:
    with (out / "truth.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def bench(mb: ModuleType, sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(mb, sources, tmp_path_factory.mktemp("bench"), "--seed", "7")


def test_same_seed_is_byte_identical_and_another_seed_differs(
    mb: ModuleType, sources: Path, bench: Path, tmp_path: Path
) -> None:
    again = build(mb, sources, tmp_path / "again", "--seed", "7")
    assert tree(again) == tree(bench)
    other = tree(build(mb, sources, tmp_path / "other", "--seed", "8"))
    first = tree(bench)
    assert other != first
    common = {k for k in first if k.startswith("queries/")} & set(other)
    changed = [k for k in common if first[k] != other[k]]
    assert changed or set(other) != set(first)
    # Transforms draw their parameters from the seed: most shared query files change.
    assert len(changed) >= len(common) // 2, (len(changed), len(common))


def test_every_claimed_kind_is_in_truth(mb: ModuleType, bench: Path) -> None:
    rows = truth(bench)
    kinds = {r["kind"] for r in rows}
    assert kinds == set(mb.ALL_KINDS)
    assert set(mb.POSITIVE_KINDS) | set(mb.NEGATIVE_KINDS) == set(mb.ALL_KINDS)
    for r in rows:
        assert bool(r["expected"]) == (r["kind"] in mb.POSITIVE_KINDS), r


def test_catalog_queries_and_truth_agree(sources: Path, bench: Path) -> None:
    rows = truth(bench)
    catalog = {p.stem: p for p in (bench / "catalog").iterdir()}
    queries = {p.name for p in (bench / "queries").iterdir()}
    names = [r["query"] for r in rows]
    assert len(names) == len(set(names)), "query names repeat"
    assert set(names) == queries, "truth and the queries folder disagree"
    for r in rows:
        if r["expected"]:
            assert r["expected"] in catalog, r
            assert r["query"].startswith(r["expected"] + "__"), r
        # The picture each query was made from (what `evaluate --all-pairs` groups copies by).
        assert r["source"] == (r["expected"] or r["query"].split("__")[0]), r
    # Catalog files are the originals, unchanged; held-out originals are not in it.
    for path in catalog.values():
        assert path.read_bytes() == (sources / "originals" / path.name).read_bytes()
    held = {r["query"].split("__")[0] for r in rows if r["kind"] == "distinct"}
    assert held and not held & set(catalog)
    assert len(catalog) + len(held) == 6
    # The colour variant is a query with no expected match, and its sibling stays indexed.
    variant_rows = [r for r in rows if r["kind"] == "colour_variant"]
    assert variant_rows and all(r["query"].startswith("o0_blue__") for r in variant_rows)
    assert "o0" in catalog
    assert (bench / "colour_variant_siblings.csv").read_text().splitlines() == ["variant,sibling", "o0_blue,o0"]
    assert len(rows) == len(catalog) * 6 + 2 * len(held) + 2
    # Each query names the picture it was made from: the catalog picture it copies, the held-out
    # picture or the variant (a held-out picture's two queries are copies of each other).
    for r in rows:
        assert r["source"] == (r["expected"] or r["query"].split("__")[0]), r
    assert {r["source"] for r in rows if r["kind"] == "colour_variant"} == {"o0_blue"}


def test_every_query_decodes_through_the_service(
    bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dupcheck_main([
        "evaluate", "--catalog", str(bench / "catalog"), "--queries", str(bench / "queries"),
        "--truth", str(bench / "truth.csv"), "--out", str(tmp_path / "report"),
    ])  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert summary["catalog_failed"] == 0 and summary["query_failed"] == 0, summary
    assert summary["catalog_images"] == len(list((bench / "catalog").iterdir()))


def test_refuses_settings_that_would_lose_data(mb: ModuleType, sources: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="per-image"):  # kinds would repeat: one query overwrites another
        build(mb, sources, tmp_path / "a", "--per-image", str(len(mb.POSITIVE_KINDS) + 1))
    out = build(mb, sources, tmp_path / "b")
    with pytest.raises(SystemExit, match="rewritten"):  # would delete its own originals
        mb.main(["--originals", str(out / "catalog"), "--out", str(out), "--quiet"])
    assert len(list((out / "catalog").iterdir())) == 5
    mb.main(["--originals", str(sources / "originals"), "--out", str(out), "--quiet"])  # no variants now
    assert not (out / "colour_variant_siblings.csv").exists()


def test_synthetic_set_needs_no_photos(mb: ModuleType, tmp_path: Path) -> None:
    """`--synthetic N` (docs/lab/evaluation.md): generated originals and colour-variant pairs, then the
    usual build; the same seed gives the same files."""
    assert mb.main(["--synthetic", "20", "--out", str(tmp_path / "a"), "--per-image", "1", "--quiet"]) == 0
    assert len(list((tmp_path / "a" / "originals").iterdir())) == 20
    with open(tmp_path / "a" / "truth.csv", newline="") as fh:
        kinds = Counter(row["kind"] for row in csv.DictReader(fh))
    assert kinds["colour_variant"] >= 2 and kinds["distinct"] >= 3 and sum(kinds.values()) > 20
    mb.main(["--synthetic", "20", "--out", str(tmp_path / "b"), "--per-image", "1", "--quiet"])
    for name in ("originals/synthetic_00005.jpg", "variants/variant_00005.jpg", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_edits_file_names_every_query_with_its_parameters(mb: ModuleType, bench: Path) -> None:
    """edits.jsonl: one line per query of truth.csv, the steps that made it, with parameters that
    say what was done (what `evaluate` checks the named edits against)."""
    lines = [json.loads(line) for line in (bench / mb.EDITS_FILE).read_text().splitlines()]
    assert [line["query"] for line in lines] == [r["query"] for r in truth(bench)]
    by_kind: dict[str, list[list[dict[str, object]]]] = {}
    for line, row in zip(lines, truth(bench), strict=True):
        by_kind.setdefault(row["kind"], []).append(line["edits"])
    for kind, logs in by_kind.items():
        for log in logs:
            steps = [step["edit"] for step in log]
            if kind in ("distinct", "colour_variant"):
                continue  # the picture as-is (no steps), or one light edit of it
            assert steps[-1] == "encode", (kind, log)
            expected = {"crop_small": "crop", "crop_large": "crop", "pad_square": "pad", "jpeg": "encode",
                        "webp": "encode"}.get(kind, kind)  # fmt: skip
            if kind != "combo":
                assert expected in steps, (kind, log)
            else:
                assert 2 <= len(steps) - 1 <= 3, log
    crops = [step for log in by_kind["crop_large"] for step in log if step["edit"] == "crop"]
    for crop in crops:
        shares = [float(crop[side]) for side in ("left", "right", "top", "bottom")]  # type: ignore[arg-type]
        assert all(0 <= share <= 0.16 for share in shares) and max(shares) >= 0.04, crop
    turns = [step for log in by_kind["rotate"] for step in log if step["edit"] == "rotate"]
    assert turns and all(1.0 <= abs(float(turn["degrees"])) <= 5.0 for turn in turns)  # type: ignore[arg-type]


def test_halves_split_the_originals_in_two(mb: ModuleType, sources: Path, tmp_path: Path) -> None:
    """--half A and --half B: disjoint, together every original; the colour variant follows its
    sibling."""
    names = sorted(p.name for p in (sources / "originals").iterdir())
    halves = {half: {n for n in names if mb.in_half(n) == half} for half in mb.HALVES}
    assert halves["A"] and halves["B"] and halves["A"] | halves["B"] == set(names)
    for half in mb.HALVES:
        out = build(mb, sources, tmp_path / half, "--half", half)
        rows = truth(out)
        used = {p.name for p in (out / "catalog").iterdir()} | {
            r["query"].split("__")[0] + Path(r["query"]).suffix for r in rows if r["kind"] == "distinct"
        }
        assert {Path(n).stem for n in used} == {Path(n).stem for n in halves[half]}
        assert any(r["kind"] == "colour_variant" for r in rows) == ("o0.jpg" in halves[half])


def test_relatives_name_the_catalog_pictures_of_a_held_out_pictures_product(
    mb: ModuleType, sources: Path, tmp_path: Path
) -> None:
    """--products file,product: relatives.csv lists, for each held-out picture's queries, the catalog
    pictures of the same product; none for a product the catalog does not hold."""
    products = tmp_path / "products.csv"
    products.write_text("file,product\no0.jpg,shirt\no1.jpg,shirt\no2.jpg,shirt\no3.jpg,cap\no4.jpg,cap\no5.png,mug\n")
    out = build(mb, sources, tmp_path / "out", "--products", str(products))
    held = {r["query"].split("__")[0] for r in truth(out) if r["kind"] == "distinct"}
    catalog = {p.stem for p in (out / "catalog").iterdir()}
    product = {"o0": "shirt", "o1": "shirt", "o2": "shirt", "o3": "cap", "o4": "cap", "o5": "mug"}
    with (out / "relatives.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["query"] for r in rows} == {r["query"] for r in truth(out) if r["kind"] == "distinct"}
    for row in rows:
        stem = row["query"].split("__")[0]
        expected = sorted(c for c in catalog if product[c] == product[stem])
        assert (row["relatives"].split(";") if row["relatives"] else []) == expected, row
    assert held
    build(mb, sources, tmp_path / "out")  # without --products, no stale relatives are left behind
    assert not (tmp_path / "out" / "relatives.csv").exists()


def test_products_of_the_development_photos_follow_the_stores_file_names() -> None:
    products = load_script("bench_products.py")
    origin = "github:magento/magento2-sample-data@5380:pub/media/catalog/product/m/h/"
    assert products.product_of("a.jpg", "magento", origin + "mh02-black_main.jpg") == products.product_of(
        "b.jpg", "magento", origin + "mh02-purple_back.jpg"
    )
    assert products.product_of("a.jpg", "magento", origin + "mh02-black_main.jpg") != products.product_of(
        "c.jpg", "magento", origin + "mh03-black_main.jpg"
    )
    banners = {products.product_of(n, "magento", origin + n) for n in ("gear-category-bags.jpg", "gear-watches.jpg")}
    assert len(banners) == 2  # banners are not one product
    solidus = "github:solidusio/solidus@1f5b:sample/db/samples/images/"
    assert products.product_of("h1", "solidus", solidus + "solidus_hoodie_black_1.png") == products.product_of(
        "h2", "solidus", solidus + "solidus_hoodie_red_2.png"
    )
    ukbench = [products.product_of("u", "ukbench", f"x:ukbench{n:05d}.jpg") for n in (120, 123, 124)]
    assert ukbench[0] == ukbench[1] != ukbench[2]  # four photos of each object
    assert products.product_of("coco_0001.jpg", "coco", "x:000000000139.jpg") == "coco:coco_0001"


def test_a_step_that_changes_nothing_a_viewer_sees_is_marked_so(mb: ModuleType) -> None:
    """Grayscale of a picture without colour leaves it as it was: the step says so, and
    `evaluate` does not ask for it to be named. Of a coloured one, it does not."""
    grey, coloured = Image.new("RGB", (64, 48), (120, 120, 120)), Image.new("RGB", (64, 48), (200, 40, 40))
    for picture, seen in ((grey, False), (coloured, True)):
        for step in (mb._grayscale, mb._saturation):
            log: list[dict[str, object]] = []
            step(picture, random.Random(3), log)
            assert log[0].get("visible", True) is seen, (step.__name__, log)
    log = []
    mb._brightness(grey, random.Random(3), log)
    assert "visible" not in log[0]  # brightening grey shows
