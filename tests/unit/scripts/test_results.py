"""docs/results.md is written by `make results` (scripts/results.py) from the runs recorded in
docs/results/: the committed page is what those files give, a changed run changes its table and
names its commit, and a new run is recorded from the tool's own output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from support.scripts import load_script

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def results() -> ModuleType:
    return load_script("results.py")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the recorded runs."""
    copy = tmp_path / "results"
    shutil.copytree(ROOT / "docs" / "results", copy)
    return copy


def row(page: str, starts: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(starts))


def test_the_committed_page_is_what_the_recorded_runs_give(results: ModuleType) -> None:
    page = results.render(results.load(ROOT / "docs" / "results"))
    assert page == (ROOT / "docs" / "results.md").read_text(encoding="utf-8"), "run `make results` and commit"
    assert results.main(["--check"]) == 0


def test_every_recorded_run_is_named_under_a_table(results: ModuleType) -> None:
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "docs" / "results").glob("*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        assert f"- `{path.name}`: " in page, f"{path.name} is recorded but no table uses it"
        assert run["commit"] and run["command"] and run["source"] and run["data"], path.name


def test_a_benchmark_whose_output_changes_changes_its_table(results: ModuleType, folder: Path) -> None:
    before = results.render(results.load(folder))
    run = json.loads((folder / "served-copy.json").read_text(encoding="utf-8"))
    head = next(name for name in run["output"]["results"] if name != "v4")
    run["output"]["results"][head].update(median_ms=41.25, p90_ms=77.5)
    run["commit"] = "abc1234"
    (folder / "served-copy.json").write_text(json.dumps(run), encoding="utf-8")
    after = results.render(results.load(folder))
    assert after != before
    copy = row(after, "| a copy (a 9% crop)")
    assert "41.2 / 77.5 ms" in copy and f"{41.25 / run['output']['results']['v4']['median_ms']:.2f}x" in copy
    assert "- `served-copy.json`: abc1234, " in after
    assert row(after, "| a new product") == row(before, "| a new product")


def test_the_check_fails_when_the_page_is_stale(results: ModuleType, folder: Path, tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    assert results.main(["--results", str(folder), "--out", str(page)]) == 0
    assert results.main(["--results", str(folder), "--out", str(page), "--check"]) == 0
    run = json.loads((folder / "evaluation-lockbox.json").read_text(encoding="utf-8"))
    run["output"]["summary"]["duplicate_recall"] = 0.9812
    (folder / "evaluation-lockbox.json").write_text(json.dumps(run), encoding="utf-8")
    assert results.main(["--results", str(folder), "--out", str(page), "--check"]) == 1
    assert results.main(["--results", str(folder), "--out", str(page)]) == 0
    dev, fresh = (json.loads((folder / f"evaluation-{part}.json").read_text(encoding="utf-8"))["output"]["summary"]
                  ["duplicate_recall"] for part in ("dev", "fresh"))  # fmt: skip
    cells = f"| {dev:.2%} | 98.12% | {fresh:.2%} |"
    assert cells in row(page.read_text(encoding="utf-8"), "| copies called `duplicate`")


def test_a_missing_run_is_named(results: ModuleType, folder: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (folder / "scale.json").unlink()
    assert results.main(["--results", str(folder), "--out", str(tmp_path / "page.md")]) == 2
    assert "scale.json is missing" in capsys.readouterr().err
    assert not (tmp_path / "page.md").exists()


def test_recording_an_evaluation_keeps_its_provenance_and_drops_the_rows(results: ModuleType, folder: Path,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    old = json.loads((folder / "evaluation-fresh.json").read_text(encoding="utf-8"))
    summary = {**old["output"]["summary"], "duplicate_recall": 0.9876}
    rows = [{"query": f"q{i}.jpg", "top": []} for i in range(500)]
    report = {"summary": summary, "per_kind": old["output"]["per_kind"], "rows": rows}
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    page = tmp_path / "results.md"
    code = results.main(["--results", str(folder), "--out", str(page), "--record", "evaluation-fresh",
                         "--from", str(tmp_path / "report.json"), "--commit", "def5678"])  # fmt: skip
    assert code == 0
    new = json.loads((folder / "evaluation-fresh.json").read_text(encoding="utf-8"))
    assert "rows" not in new["output"] and new["output"]["summary"]["duplicate_recall"] == 0.9876
    assert (new["part"], new["data"], new["command"]) == (old["part"], old["data"], old["command"])
    assert new["commit"] == "def5678" and new["source"].startswith("measured")
    text = page.read_text(encoding="utf-8")
    assert row(text, "| copies called `duplicate`").endswith("| 98.76% |")
    assert "- `evaluation-fresh.json`: fresh, def5678, " in text


def test_a_new_run_needs_its_command_and_data(results: ModuleType, folder: Path) -> None:
    with pytest.raises(results.ResultsError, match="give --data"):
        results.record(folder, "judging-served", '{"kind": "new"}', command="x", commit="abc1234")


def test_verify_alternateds_summary_is_what_the_page_reads(results: ModuleType, folder: Path) -> None:
    """The benchmark's own summary (as its --json-out writes it, or its printed last line), recorded
    and rendered: the figures reach the table."""
    bench = load_script("bench/verify_alternated.py")
    samples = {"v4": [[20.0 + i, 21.0 + i] for i in range(10)], "v5": [[30.0 + 2 * i, 31.0 + 2 * i] for i in range(10)]}
    summary = bench.summarise("turned", 2, samples)
    printed = "v4: {...}\nv5: {...}\n" + json.dumps(summary) + "\n"
    results.record(folder, "served-turned", printed, commit="0123abc")
    page = results.render(results.load(folder))
    v4, v5 = summary["results"]["v4"], summary["results"]["v5"]
    assert (v4["median_ms"], v5["median_ms"]) == (25.0, 39.5)
    turned = row(page, "| a copy turned 4 degrees")
    assert f"{v5['median_ms']:.1f} / {v5['p90_ms']:.1f} ms" in turned and "1.58x" in turned
    assert "- `served-turned.json`: 0123abc, " in page


def test_unrelated_new_pictures_fall_back_to_all_new_pictures_only_without_a_product_list(
    results: ModuleType,
) -> None:
    """A part with a product list reports the unrelated new pictures' share; one without (no
    relatives known) reports all its new pictures', saying so; with neither, a dash."""
    split = {"summary": {"no_relative_top_different": 0.9, "top_verdicts": {"distinct": {"n": 9, "different": 0.5}}}}
    assert results.unrelated_different(split) == results.pct(0.9)
    unsplit = {
        "summary": {"no_relative_top_different": None, "top_verdicts": {"distinct": {"n": 16, "different": 1.0}}}
    }
    assert results.unrelated_different(unsplit).startswith(results.pct(1.0) + " (all 16 new pictures")
    related = {"summary": {"top_verdicts": {"distinct": {"n": 9, "different": 0.5}, "distinct, with a relative": {}}}}
    assert results.unrelated_different(related) == results.pct(None)


def test_evaluation_md_s_per_kind_table_is_written_from_the_same_runs(
    results: ModuleType, folder: Path, tmp_path: Path
) -> None:
    """docs/evaluation.md's per-kind table is generated (between its `<!-- generated: by-kind` and
    `<!-- /generated -->` lines): `make results` writes it, `--check` fails when it is stale."""
    evaluation = tmp_path / "evaluation.md"
    evaluation.write_text("# E\n\n<!-- generated: by-kind -->\nold\n<!-- /generated -->\n\nafter\n", encoding="utf-8")
    page = tmp_path / "results.md"
    argv = ["--results", str(folder), "--out", str(page), "--evaluation", str(evaluation)]
    assert results.main(argv) == 0 and results.main([*argv, "--check"]) == 0
    text = evaluation.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith("<!-- /generated -->\n\nafter\n")
    assert row(text, "| watermark |").startswith("| watermark | 100% | 97.8% | 100% | 84.7% |")
    run = json.loads((folder / "evaluation-dev.json").read_text(encoding="utf-8"))
    run["output"]["summary"]["edit_naming"]["watermark"]["named"] = 0.5
    (folder / "evaluation-dev.json").write_text(json.dumps(run), encoding="utf-8")
    assert results.main([*argv, "--check"]) == 1
    assert results.main(argv) == 0
    assert row(evaluation.read_text(encoding="utf-8"), "| watermark |").startswith(
        "| watermark | 100% | 97.8% | 100% | 50"
    )
    evaluation.write_text("# no block\n", encoding="utf-8")
    assert results.main(argv) == 2


def test_deploy_md_s_bundle_sizes_are_written_from_the_recorded_build(
    results: ModuleType, folder: Path, tmp_path: Path
) -> None:
    """docs/deploy.md's bundle sizes are generated (between its `<!-- generated: bundles` and
    `<!-- /generated -->` lines) from docs/results/bundles.json, the record results.md's cost section
    reads: a new build recorded changes both, and `--check` fails while deploy.md is stale."""
    deploy = tmp_path / "deploy.md"
    deploy.write_text("# D\n\nBuilt.\n<!-- generated: bundles -->\nold\n<!-- /generated -->\nafter\n", encoding="utf-8")
    page = tmp_path / "results.md"
    argv = ["--results", str(folder), "--out", str(page), "--evaluation", str(tmp_path / "none.md"), "--deploy",
            str(deploy)]  # fmt: skip
    (tmp_path / "none.md").write_text("<!-- generated: by-kind -->\n<!-- /generated -->\n", encoding="utf-8")
    assert results.main(argv) == 0 and results.main([*argv, "--check"]) == 0
    text = deploy.read_text(encoding="utf-8")
    recorded = json.loads((folder / "bundles.json").read_text(encoding="utf-8"))
    assert "old" not in text and text.endswith("<!-- /generated -->\nafter\n")
    assert f"`make synth` at {recorded['commit']}" in text
    assert f"{recorded['output']['dupcheck']:.1f} MiB" in text and f"{recorded['output']['dupcheck']:.1f} MiB" in (
        page.read_text(encoding="utf-8")
    )
    recorded["output"]["dupcheck"] = 80.25
    (folder / "bundles.json").write_text(json.dumps(recorded), encoding="utf-8")
    assert results.main([*argv, "--check"]) == 1
    assert results.main(argv) == 0 and "80.2 MiB for every function" in deploy.read_text(encoding="utf-8")


def test_the_print_tables_overlay_row_weighs_each_kind_by_its_queries(results: ModuleType, folder: Path) -> None:
    """The flat overlays' row is one share over its four kinds' queries together, not a mean of
    their shares; a kind the run lacks leaves it out, a rate it lacks makes the cell unknown."""
    output = {"per_kind": {"caption_band": {"n": 1, "duplicate_recall": 1.0},
                           "chest_badge": {"n": 3, "duplicate_recall": 0.0}}}  # fmt: skip
    assert results.kinds_share(output, results.OVERLAYS, "duplicate_recall") == f"{results.pct(0.25)} of 4"
    output["per_kind"]["flat_text"] = {"n": 2}
    assert results.kinds_share(output, results.OVERLAYS, "duplicate_recall") == results.pct(None)
    run = json.loads((folder / "prints-lockbox.json").read_text(encoding="utf-8"))
    run["output"]["per_kind"]["print_variant"]["false_duplicate_rate"] = 0.015
    (folder / "prints-lockbox.json").write_text(json.dumps(run), encoding="utf-8")
    page = results.render(results.load(folder))
    assert row(page, "| another print on the same photo").split(" | ")[2].startswith(f"{results.pct(0.015)} of ")


def test_a_run_a_table_above_listed_is_named_once_more_in_one_line(results: ModuleType) -> None:
    """The marks table reads the evaluation's runs again: under it they are named, not described again."""
    runs = {name: {"part": "dev", "commit": "c0ffee1", "command": f"make {name}", "data": "d", "source": "s",
                   "output": {}} for name in ("a", "b", "c")}  # fmt: skip
    page = results.Page(runs)
    page("a")
    assert page.sources() == ["", "From:", "- `a.json`: dev, c0ffee1, `make a` on d; s"]
    page("b"), page("a"), page("c")
    assert page.sources() == [
        "", "From:", "- `a.json`: listed above", "- `b.json`: dev, c0ffee1, `make b` on d; s",
        "- `c.json`: dev, c0ffee1, `make c` on d; s",
    ]  # fmt: skip
