"""The docs' layout holds (issue 32): the user guides at docs/ top level stay short enough to read,
the experiment history lives under docs/lab/, and every relative link in README.md and
docs/**/*.md reaches a file that exists and, with a `#anchor`, a heading that exists in it (by
GitHub's rule for a heading's anchor).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
# Reference pages, not read start to end: not counted (evaluation.md: what each benchmark part holds
# and what still goes wrong; configuration.md: every command and setting). Every other top-level
# page is a user guide.
ASIDE = {"api.md", "architecture.md", "configuration.md", "evaluation.md"}
GUIDES_MAX_LINES = 1200
README_MAX_WORDS = 1500  # the two commands, a screenshot, the API table and where to read more (issue 69)
LAB_MAX_WORDS = 10_000  # what was tried, the figure, kept or dropped and why; the rest is git history

FENCE = re.compile(r"^ *```.*?^ *```[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced blocks and code spans: a link or heading shown as code is neither."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text as shown (no code ticks, emphasis or link targets),
    lowercase, every character but letters, digits, spaces, `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(doc: Path) -> list[str]:
    """The relative links of one markdown file that lead nowhere, each with why."""
    broken = []
    for target in LINK.findall(prose(doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def test_the_user_guides_together_stay_under_1200_lines() -> None:
    guides = [doc for doc in sorted(DOCS.glob("*.md")) if doc.name not in ASIDE]
    lines = {doc.name: len(doc.read_text(encoding="utf-8").splitlines()) for doc in guides}
    assert "results.md" in lines, "docs/results.md answers how accurate, how fast, what it costs"
    assert sum(lines.values()) <= GUIDES_MAX_LINES, (
        f"the user guides at docs/ top level total {sum(lines.values())} lines ({lines}), more than "
        f"{GUIDES_MAX_LINES}: shorten them, or move experiment history to docs/lab/"
    )


def words(path: Path) -> int:
    """Words as `wc -w` counts them: runs of characters between white space, tables and code included."""
    return len(path.read_text(encoding="utf-8").split())


def test_the_readme_stays_a_first_page() -> None:
    count = words(ROOT / "README.md")
    assert count <= README_MAX_WORDS, (
        f"README.md has {count} words, more than {README_MAX_WORDS}: move the detail to the doc it belongs in"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for must in ("make run", "make test", "docs/results.md", "](docs/img/", "| method and path |"):
        assert must in readme, f"README.md lost {must!r}"


API_ROUTE = re.compile(r"`(GET|POST|PUT|DELETE|PATCH) (/[^\s`?]*)")
PARAMETER = re.compile(r"\{[^}]*\}")


def readme_api_table() -> list[str]:
    """The first cells of README.md's API table (the one headed `| method and path |`)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| method and path | what it does |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split(" | ")[0])
    return rows


def test_the_readme_api_table_lists_every_route_of_the_contract() -> None:
    """Every method and path of docs/openapi.json (the routers' contract, `make openapi`) is in
    README's API table, `{parameter}` names aside; and the table names the gate's and the check
    job's query parameters."""
    listed = {
        (method, PARAMETER.sub("{}", path)) for cell in readme_api_table() for method, path in API_ROUTE.findall(cell)
    }
    contract = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))
    routes = {(method.upper(), PARAMETER.sub("{}", path)) for path, operations in contract["paths"].items()
              for method in operations if method in {"get", "put", "post", "delete", "patch"}}  # fmt: skip
    assert len(routes) >= 25, "docs/openapi.json lost its routes"
    missing = sorted(f"{method} {path}" for method, path in routes - listed)
    assert not missing, f"README.md's API table does not list {missing}"
    table = "\n".join(readme_api_table())
    for must in ("on_duplicate=", "mode=check"):
        assert must in table, f"README.md's API table never names {must}"


def test_the_route_table_reader_finds_a_missing_route() -> None:
    cells = ["| `GET /items/{entity_id}` / `DELETE /items/{entity_id}`", "| `POST /imports?mode=check`"]
    found = {(m, PARAMETER.sub("{}", p)) for cell in cells for m, p in API_ROUTE.findall(cell)}
    assert found == {("GET", "/items/{}"), ("DELETE", "/items/{}"), ("POST", "/imports")}


def test_the_lab_notebooks_stay_a_summary() -> None:
    counts = {doc.name: words(doc) for doc in sorted((DOCS / "lab").glob("*.md"))}
    assert "evaluation.md" in counts and "benchmarks.md" in counts, counts
    assert sum(counts.values()) <= LAB_MAX_WORDS, (
        f"docs/lab has {sum(counts.values())} words ({counts}), more than {LAB_MAX_WORDS}: a line or two an "
        "experiment (what was tried, the figure, kept or dropped and why); the rest is in git history"
    )


def test_words_are_counted_as_wc_counts_them(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n| a | b |\n|---|---|\n\n```sh\nmake run\n```\n")
    assert words(doc) == 12


def test_every_relative_link_in_the_docs_leads_somewhere() -> None:
    broken = {str(doc.relative_to(ROOT)): found for doc in markdown_files() if (found := broken_links(doc))}
    assert not broken, broken
    # A checker that stopped finding links would pass vacuously: README and the guides link a lot.
    assert sum(len(LINK.findall(prose(doc.read_text(encoding="utf-8")))) for doc in markdown_files()) >= 30


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        (
            "Precision on catalogs nobody tuned on (`dualphash128-v5`, issue 30)",
            "precision-on-catalogs-nobody-tuned-on-dualphash128-v5-issue-30",
        ),
        ("Backfill (`scripts/bench/backfill_bench.py`)", "backfill-scriptsbenchbackfill_benchpy"),
        ("Memory (bounded queues)", "memory-bounded-queues"),
        ("The local server's guard", "the-local-servers-guard"),
        ("**How fast**", "how-fast"),
    ],
)
def test_a_heading_s_anchor_is_github_s(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


@pytest.mark.parametrize(
    "link",
    [
        "[gone](no-such-file.md)",
        "[gone](lab/no-such-file.md#anything)",
        "[no heading](api.md#no-such-heading)",
        "[no heading here](#no-such-heading)",
        "![no picture](img/no-such-picture.png)",
    ],
)
def test_a_broken_link_is_caught(tmp_path: Path, link: str) -> None:
    (tmp_path / "api.md").write_text("# API\n\n## Verdicts\n")
    (tmp_path / "img").mkdir()
    doc = tmp_path / "guide.md"
    doc.write_text(f"# Guide\n\nSee {link}, [the verdicts](api.md#verdicts) and [this guide](#guide).\n")
    assert len(broken_links(doc)) == 1, broken_links(doc)


def test_links_and_headings_shown_as_code_are_neither(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\n```sh\n# not a heading\necho [x](gone.md)\n```\n\n`[y](gone.md)` and [z](#guide)\n")
    assert broken_links(doc) == []
    assert anchors(doc) == {"guide"}
