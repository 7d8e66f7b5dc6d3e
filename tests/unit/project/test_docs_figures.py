"""No figure typed twice (issue 76): a number a reader takes as a current measurement exists in one
generated place, docs/results.md (or a `<!-- generated: ... -->` block `make results` writes, such
as evaluation.md's per-kind table); the guides cite it instead of repeating it, so it cannot drift.

The rule, for the prose of docs/*.md (docs/results.md is the generated page itself):

- **What looks like a measurement**: a figure with a decimal point and a unit (`97.4%`, `48.6 s`,
  `15.3 KB`, `1.29 GB`), a rate (`25,339 records/s`, `20.6 answers a second`), a ratio (`1.5x`) or
  a dollar amount (`$282`). Round figures with a unit (`10 MB`, `15 minutes`, `5%`, `top 1-100`) are
  what limits, settings and defaults look like, and are not flagged; nor are counts, ports, dates,
  versions and commit hashes, which carry no such unit.
- **Fine where it stands**:
  - it is in docs/results.md as written there (the same figure, cited: link the section);
  - it is inside a `<!-- generated: ... -->` block (written from docs/results/ by `make results`),
    a fenced block or a code span (commands, settings, output);
  - it is dated: its sentence, or the paragraph that introduces its table, names the commit that
    measured it (`at e10d841`) or cites the lab notebook's entry for it (`docs/lab/...`): a
    historical figure. docs/lab/*.md is the lab notebook: every figure there is history beside its
    commit (a lab entry names the commit it measured), and is not checked;
  - it is a limit, a default or a target: `limit`, `at most`, `up to`, `target` or `default` comes
    shortly before it in its sentence (`Lambda's 6 MB request limit ... about 4.5 MB of image`);
  - a list price or a price's input (`$0.20 per million`, `$0.128/h`, `x $0.40/M`): AWS's figure,
    not ours;
  - it is inside a `<!-- figures: WHY -->` ... `<!-- /figures -->` region, WHY saying why these
    are not measurements a reader takes as current (arithmetic on list prices whose totals are a
    results record, estimates on paper). Kept few: FIGURE_REGIONS_MAX;
  - it is listed in KNOWN (flagged figures left for now, each with why).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
RESULTS_MD = DOCS / "results.md"
FIGURE_REGIONS_MAX = 6

FENCE = re.compile(r"^ *```.*?^ *```[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
GENERATED = re.compile(r"<!-- generated: .*?<!-- /generated -->", re.S)
REGION = re.compile(r"<!-- figures: (?P<why>[^>]*?) -->.*?<!-- /figures -->", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
NUMBER = r"\d[\d,]*(?:\.\d+)?"
UNIT = r"(?:%|ms\b|s\b|seconds?\b|minutes?\b|min\b|hours?\b|[KMGT]i?B\b|B\b|MP\b)"
RATE = (
    r"(?:(?:records|pictures|images|rows|checks|answers)/s\b|(?:answers|records|pictures|rows|checks|images) a second)"
)
PRICE_AFTER = re.compile(r"\s?(?:per\b|/(?:h|GB|M|GB-s)\b|a GB-|/ \$[\d.]+ per\b)")
MEASUREMENT = re.compile(rf"\$\s?{NUMBER}|\b\d[\d,]*\.\d+\s?{UNIT}|\b{NUMBER}\s?{RATE}|\b\d[\d,]*(?:\.\d+)?x(?![\w-])")
LAB = re.compile(r"\(lab/|docs/lab/|\]\(lab/")
SETTING_BEFORE = re.compile(r"\b(?:limit|limits|at most|up to|target|default)\b", re.I)
# Figures the rule flags that stay for now, each with why (issue 76: date each with its lab entry's
# commit or cite results.md, then drop it here). A new figure never goes here without a reason.
KNOWN = {
    ("api.md", "1.1 KB"): "the compact views' size of dualphash128-v3, docs/lab/evaluation.md's Compact records",
    ("evaluation.md", "0.016%"): "a property of the data (two files of one photograph), not of the code",
    ("evaluation.md", "1.5%"): "a property of the data (a tee's neckline), not of the code",
    ("architecture.md", "15.3 KB"): "kept pictures' size, cost_inputs.py at be2ebb9 as deploy.md's Cost dates it",
    ("architecture.md", "19.9 KB"): "kept pictures' size, cost_inputs.py at be2ebb9 as deploy.md's Cost dates it",
    ("architecture.md", "1.3 KB"): "a record's size, as deploy.md's Cost dates it (1,348 B at be2ebb9)",
    ("architecture.md", "3.7%"): "SQLite page-size experiment, docs/lab/benchmarks.md",
    ("architecture.md", "1.04x"): "SQLite page-size experiment, docs/lab/benchmarks.md",
    ("architecture.md", "1.4x"): "SQLite page-size experiment, docs/lab/benchmarks.md",
    ("architecture.md", "0.8 s"): "the 1M index load, docs/lab/benchmarks.md",
    ("architecture.md", "0.6 s"): "a memory trim's cost, an experiment of issue 67",
    ("architecture.md", "0.5 s"): "the follower's poll interval: a setting",
    ("architecture.md", "99.6 MB"): "a body held once against four times, an experiment of issue 67",
    ("architecture.md", "8.4 GB"): "records import experiment, docs/lab/benchmarks.md (25,707 against 19,852)",
    ("architecture.md", "1.3 GB"): "records import experiment, docs/lab/benchmarks.md",
    ("architecture.md", "6.6 GB"): "records import experiment, docs/lab/benchmarks.md",
    ("architecture.md", "1.29x"): "records import experiment, docs/lab/benchmarks.md",
}
# A size in a sentence about the Lambda bundle is the size docs/results/bundles.json records (issue 86:
# deploy.md gave 75.2 MiB, an older build's, where results.md and `make synth` said 76.4 MiB). Sizes
# such a sentence gives of something else, each with why:
BUNDLES = DOCS / "results" / "bundles.json"
BUNDLE = re.compile(r"\bbundle|\bcode asset|\bLambda code\b", re.I)
SIZE = re.compile(r"\b\d[\d,]*\.\d+\s?(?:MiB|MB)\b")
DIFFERENCE_AFTER = re.compile(r"\s+(?:larger|smaller|more|less)\b")  # "0.4 MB larger": not a size
NOT_THE_BUNDLE = {("architecture.md", "81.7 MiB"): "an OpenCV wheel's size at fd18b7f, said beside the bundle's"}
# A commit hash: 7-40 hex digits with a letter and a digit, or any after the word "commit".
COMMIT = re.compile(r"\b(?:(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}|(?<=commit )[0-9a-f]{7,40})\b")
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z*(\[`])")


def normal(figure: str) -> str:
    return figure.replace(" ", "")


def paragraphs(text: str) -> Iterator[tuple[str, bool]]:
    """(sentence or table row, dated) for the checked prose of a page."""
    text = COMMENT.sub("", REGION.sub("", GENERATED.sub("", FENCE.sub("", text))))
    previous_dated = False
    for paragraph in re.split(r"\n\s*\n", text):
        if not paragraph.strip():
            continue  # a fenced block's place: a table after a recipe keeps the recipe's introduction
        if paragraph.lstrip().startswith("|"):
            dated = previous_dated or bool(COMMIT.search(paragraph))
            for row in paragraph.splitlines():
                yield row, dated
            continue
        sentences = SENTENCE_END.split(" ".join(paragraph.split()))
        for sentence in sentences:
            yield sentence, dated_sentence(sentence)
        previous_dated = bool(sentences) and dated_sentence(sentences[-1])


def dated_sentence(sentence: str) -> bool:
    return bool(COMMIT.search(sentence) or LAB.search(sentence))


def undated_figures(text: str, results: str, page: str = "") -> list[str]:
    """The measurement-like figures of `text` that results.md does not hold and nothing excuses."""
    known = normal(results)
    found = []
    for sentence, dated in paragraphs(text):
        if dated:
            continue
        prose = LINK_TARGET.sub("]()", CODE_SPAN.sub("``", sentence))
        for match in MEASUREMENT.finditer(prose):
            figure = match.group(0)
            if figure.startswith("$") and PRICE_AFTER.match(prose, match.end()):
                continue  # a list price
            if figure.startswith("$") and re.search(r"x\s*$", prose[: match.start()]):
                continue  # a price in an arithmetic: `... x $0.40/M`
            if normal(figure) in known or (page, figure) in KNOWN:
                continue
            if SETTING_BEFORE.search(prose[max(0, match.start() - 80) : match.start()]):
                continue
            found.append(f"{figure!r} in: {sentence[:160]}")
    return found


def guides() -> list[Path]:
    return [doc for doc in sorted(DOCS.glob("*.md")) if doc != RESULTS_MD]


def test_no_guide_repeats_a_measurement_results_md_does_not_hold() -> None:
    results = RESULTS_MD.read_text(encoding="utf-8")
    found = {
        doc.name: figures
        for doc in guides()
        if (figures := undated_figures(doc.read_text(encoding="utf-8"), results, doc.name))
    }
    assert not found, (
        "figures that look like measurements but are not in docs/results.md (cite its section, generate "
        "them there from a record, date them with their commit, or see this test's docstring): "
        + "\n".join(f"{name}: {figure}" for name, figures in found.items() for figure in figures)
    )


def test_the_exceptions_still_stand() -> None:
    """A KNOWN figure that left its page is dropped from KNOWN, so the list only shrinks."""
    texts = {doc.name: doc.read_text(encoding="utf-8") for doc in guides()}
    gone = sorted(key for key in KNOWN if key[1] not in texts[key[0]])
    assert not gone, f"no longer in the docs, drop from KNOWN: {gone}"


def test_regions_of_figures_say_why_and_stay_few() -> None:
    regions = [(doc.name, m["why"]) for doc in guides() for m in REGION.finditer(doc.read_text(encoding="utf-8"))]
    assert all(len(why.split()) >= 4 for _, why in regions), regions
    assert len(regions) <= FIGURE_REGIONS_MAX, regions


def test_what_counts_as_a_measurement() -> None:
    results = "| the edits made, named | 97.5% | 98.0% | 97.2% |\n25,706 records/s; 100,000 records in 40.0 s; $281"
    flagged = [
        "Edits named, all kinds: dev 97.4%, lockbox 98.1%, fresh 97.2%.",  # 97.4% and 98.1% are not the page's
        "The 1M import runs at 25,339 records/s.",
        "About $282 a month at 10M records.",
        "The report at 100k records takes 48.6 s.",
        "A new product's check takes 1.7x v4's.",
    ]
    assert [len(undated_figures(text, results)) for text in flagged] == [2, 1, 1, 1, 1]
    fine = [
        "Edits named: 97.5%, 98.0% and 97.2% ([results.md](results.md#each-part)).",  # the page's own
        "The top 1-100 closest, default 5; a 10 MB limit; 1,000 items; port 8000; 15 minutes; 5% of a side.",
        "Turned-padded copies: 98.9% at e10d841.",  # dated
        "Lambda $0.20 per million requests, $0.128/h a node, 300,000 x $0.40/M.",  # list prices
        "```sh\nbench --expect 97.4%\n```\n\n`DUPCHECK_TIMEOUT=2.5 s`",  # code
        "<!-- generated: t -->\n| a | 97.4% |\n<!-- /generated -->",
        "<!-- figures: arithmetic on list prices, totals recorded -->\n$186.88 + $4.88\n<!-- /figures -->",
        "Measured at 6e3886c:\n\n| figure | measured |\n|---|---|\n| cold import | 2.06 s |",  # a dated table
        "Version 3.12.1 on 2026-11-23, commit 3dfe87d.",
    ]
    assert [undated_figures(text, results) for text in fine] == [[] for _ in fine]


def units(text: str) -> Iterator[str]:
    """Every sentence and table row of a page, generated blocks included (their figures are read too)."""
    text = COMMENT.sub("", FENCE.sub("", text))
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.lstrip().startswith("|"):
            yield from paragraph.splitlines()
        else:
            yield from SENTENCE_END.split(" ".join(paragraph.split()))


def wrong_bundle_sizes(text: str, recorded: set[str], page: str = "") -> list[str]:
    """The sizes `text` gives in sentences about the bundle that are not the recorded ones."""
    found = []
    for unit in units(text):
        if not BUNDLE.search(unit):
            continue
        for match in SIZE.finditer(CODE_SPAN.sub("``", unit)):
            figure = match.group(0)
            if figure in recorded or (page, figure) in NOT_THE_BUNDLE:
                continue
            if DIFFERENCE_AFTER.match(CODE_SPAN.sub("``", unit), match.end()):
                continue
            found.append(f"{figure!r} in: {unit[:160]}")
    return found


def recorded_bundles() -> set[str]:
    return {f"{size:.1f} MiB" for size in json.loads(BUNDLES.read_text(encoding="utf-8"))["output"].values()}


def test_every_bundle_size_the_docs_give_is_the_recorded_one() -> None:
    """deploy.md takes its sizes from a generated block (`make results`), results.md from the same record."""
    recorded = recorded_bundles()
    found = {doc.name: sizes for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
             if (sizes := wrong_bundle_sizes(doc.read_text(encoding="utf-8"), recorded, doc.name))}  # fmt: skip
    assert not found, (
        "a bundle size other than docs/results/bundles.json's (cite results.md#what-it-costs, or let `make "
        "results` write it): " + "; ".join(f"{name}: {sizes}" for name, sizes in found.items())
    )
    assert all(size in (DOCS / "deploy.md").read_text(encoding="utf-8") for size in recorded)
    assert all(key[1] in (DOCS / key[0]).read_text(encoding="utf-8") for key in NOT_THE_BUNDLE)


def test_a_bundle_size_of_another_build_is_caught() -> None:
    recorded = {"76.4 MiB", "152.9 MiB"}
    assert wrong_bundle_sizes("| bundle, unzipped | arm64 **78.9 MB** (75.2 MiB) |", recorded) == [
        "'78.9 MB' in: | bundle, unzipped | arm64 **78.9 MB** (75.2 MiB) |",
        "'75.2 MiB' in: | bundle, unzipped | arm64 **78.9 MB** (75.2 MiB) |",
    ]
    fine = [
        "The Lambda code deployed, unzipped: 76.4 MiB, 152.9 MiB, under Lambda's 250 MiB.",
        "<!-- generated: bundles -->\nThe bundle: 76.4 MiB.\n<!-- /generated -->",
        "At 6e3886c the x86_64 bundle was 0.4 MB larger, one without bytecode 1.4 MB smaller.",
        "A thumbnail is 15.3 KB; a record 1.3 KB.",  # not the bundle
    ]
    assert [wrong_bundle_sizes(text, recorded) for text in fine] == [[] for _ in fine]
    assert wrong_bundle_sizes("<!-- generated: b -->\nThe bundle: 75.2 MiB.\n<!-- /generated -->", recorded)
