"""docs/results.md, written from the evaluation's and the benchmarks' own outputs (docs/results/).

    make results                                      # docs/results.md from docs/results/*.json
    .venv/bin/python scripts/results.py --check       # exit 1 if docs/results.md is not what they give
    .venv/bin/python scripts/results.py --record evaluation-dev --from out-dev/report.json

Each file in docs/results/ is one run of one tool: {"name", "part", "data", "command", "commit",
"source", "output"}. `output` is what the tool wrote, in its own schema (`evaluate`'s report.json
without its rows, all_pairs.json's summary, a benchmark's JSON line or `--json-out` file); `commit`
is the code that measured it and `source` how the figures came ("measured", or "transcribed from
docs at ..." for the figures carried over from the prose they used to live in). `--record` puts a
new run's output in place of the old one: the commit from git (`-dirty` when lambdas/ or scripts/
has uncommitted changes), the part, data and command kept unless given again; then the page is
written. Under every table, the files its figures came from, each with its commit and command.
The per-kind table of docs/evaluation.md (between its `<!-- generated: ... -->` and
`<!-- /generated -->` lines) is written from the same evaluation runs, and docs/deploy.md's
bundle sizes from the same `bundles` run, so a figure a reader takes as current is typed nowhere.
A served check against v4 (verify_alternated.py's summaries of served uploads, recorded as
served-new, served-copy, served-turned and served-again) gets its own table, first under "How
fast", once all four are recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
EVALUATION = ROOT / "docs" / "evaluation.md"
DEPLOY = ROOT / "docs" / "deploy.md"
BLOCK_START, BLOCK_END = "<!-- generated: ", "<!-- /generated -->"
PARTS = ("dev", "lockbox", "fresh")
# Per-query rows and per-pair lists: the report folder keeps them, docs/results/ only the summary.
BULKY = ("rows", "false_pairs", "known_same_picture", "missed_true_pairs")
QUERY_KINDS = {"new": "a new product (not in the catalog)", "copy": "a copy (a 9% crop)",
               "turned": "a copy turned 4 degrees", "again": "a catalog photo's own file sent again"}  # fmt: skip

Record = Mapping[str, Any]


class ResultsError(Exception):
    """A results file that is missing or unreadable, or a run that cannot be recorded."""


def load(folder: Path) -> dict[str, Record]:
    """Every results file of the folder, by name (its file name without .json)."""
    records = {}
    for path in sorted(folder.glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ResultsError(f"{path}: not JSON ({exc})") from exc
    return records


def get(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]...; None where any step is missing."""
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if value in (0, 1):
        return f"{value * 100:.0f}%"
    return f"{value * 100:.{digits}f}%"


def number(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if float(value).is_integer() and digits == 0 else f"{value:,.{digits}f}"
    return text + unit


def memory_soak(soak: Record) -> list[str]:
    """memory_soak_bench.py's rounds (a run before its rounds counts as one): the tree's peak, and
    what it held over idle after each round."""
    rounds = soak.get("per_round") or [soak]

    def mb(value: float | None) -> str:
        return number(value, " MB", 0)

    def each(key: str) -> str:
        values = [mb(one.get(key)) for one in rounds]
        return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]

    settle = number(soak.get("settle_s"), " s", 0)
    seconds = {key: number(soak.get(key), " s", 0) for key in ("duration_s", "import_every_s")}
    share = f", {pct(soak['large_share'], 0)} of the uploads 12 MP" if soak.get("large_share") else ""
    loops = f", {soak['busy_loops']} busy loops beside it" if soak.get("busy_loops") else ""
    loops += "; similar products on" if soak.get("products") else ""
    times = f"{len(rounds)} rounds back to back" if len(rounds) > 1 else "once"
    return [f"After a load ({soak.get('clients')} clients for {seconds['duration_s']}{share}, an import every "
            f"{seconds['import_every_s']}, a duplicate scan{loops}), {times}: the server and its worker processes "
            f"at most {mb(soak.get('peak_mb'))}, and {each('after_minus_idle_mb')} over their idle "
            f"{mb(soak.get('idle_mb'))} {settle} after the last job ended (PSS: {each('after_minus_idle_pss_mb')} "
            f"over {mb(soak.get('idle_pss_mb'))}); {settle} after the clients stopped (the scan may "
            f"still run): {each('clients_after_mb')}."]  # fmt: skip


def pair(first: float | None, second: float | None, unit: str, digits: int = 1) -> str:
    """ "a / b unit", or one dash when the run measured neither."""
    if first is None and second is None:
        return "–"
    return f"{number(first, digits=digits)} / {number(second, digits=digits)} {unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]  # fmt: skip


class Page:
    """The results files, looked up by name; every file a table uses is listed under it."""

    def __init__(self, records: Mapping[str, Record]) -> None:
        self.records = records
        self.used: list[str] = []
        self.listed: set[str] = set()  # files a table above has listed already

    def __call__(self, name: str) -> Record:
        if name not in self.records:
            raise ResultsError(f"docs/results/{name}.json is missing: record the run (scripts/results.py --record)")
        if name not in self.used:
            self.used.append(name)
        return self.records[name]

    def sources(self) -> list[str]:
        """'Measured by' lines for the files used since the last call (one line for those listed
        above already), then forget them."""
        lines = ["", "From:"]
        if above := [name for name in self.used if name in self.listed]:
            lines.append(f"- {', '.join(f'`{name}.json`' for name in above)}: listed above")
        for name in (name for name in self.used if name not in self.listed):
            record = self.records[name]
            part = f"{record['part']}, " if record.get("part") else ""
            lines.append(
                f"- `{name}.json`: {part}{record['commit']}, `{record['command']}` on {record['data']}; "
                f"{record['source']}"
            )
        self.listed.update(self.used)
        self.used = []
        return lines


def weakest_kind(output: Record) -> str:
    kinds = {k: v["duplicate_recall"] for k, v in (output.get("per_kind") or {}).items()
             if v.get("duplicate_recall") is not None}  # fmt: skip
    if not kinds:
        return "–"
    kind = min(kinds, key=lambda k: (kinds[k], k))
    return f"{pct(kinds[kind])} ({kind.replace('_', ' ')})"


def false_pairs(output: Record) -> str:
    pairs, known = get(output, "summary", "false_duplicate_pairs"), get(output, "summary", "known_same_picture_pairs")
    text = number(pairs, digits=0)
    if not known:
        return text
    return f"{text} (and {'1 pair' if known == 1 else f'{known} pairs'} of one picture under two ids)"


def with_same(output: Record, key: str) -> str:
    """A duplicate report's share, and beside it the share with the known same pictures as one."""
    text = pct(output.get(key), 2)
    same = get(output, "with_same", key)
    return f"{text} ({pct(same, 2)} with the known same pictures as one)" if same is not None else text


def originals_kept(output: Record) -> str:
    """Groups holding an original that keep it, of how many, and how many the pictures chose."""
    share, groups = output.get("original_kept_share"), output.get("groups_with_original")
    if share is None:
        return pct(None)
    chosen = get(output, "original_kept_by", "pictures", "groups") or 0
    return f"{pct(share, 2)} ({output.get('original_kept')} of {groups}; {chosen} chosen by the pictures)"


def telling_originals_kept(output: Record) -> str:
    """Of the groups whose copy shows which record is the original (a crop, padding, a frame,
    text or a badge, a smaller or grey copy), those that keep the original."""
    share, groups = output.get("telling_original_kept_share"), output.get("telling_groups")
    if share is None or not groups:
        return pct(None)
    return f"{pct(share)} ({round(share * groups)} of {groups})"


def pair_edits_named(output: Record) -> str:
    """Of the grouped pairs of an original and its copy, the edits made named, original to copy."""
    named = get(output, "pair_edits", "named")
    return pct(named) if named is None else f"{pct(named)} (of {get(output, 'pair_edits', 'pairs')} pairs)"


def of(output: Record, key: str, n: int | None) -> str:
    return f"{pct(get(output, 'summary', key))} of {number(n, digits=0)}"


def share(*path: str, digits: int = 1) -> Callable[[Record], str]:
    """A cell: the share at output.summary[path...]."""
    return lambda output: pct(get(output, "summary", *path), digits)


def unrelated_different(output: Record) -> str:
    """New pictures with no relative in the catalog, first match `different`; for a part without
    a product list (no relatives known), over all its new pictures, said so."""
    share_of_unrelated = get(output, "summary", "no_relative_top_different")
    if share_of_unrelated is not None:
        return pct(share_of_unrelated)
    verdicts = get(output, "summary", "top_verdicts") or {}
    every = verdicts.get("distinct")
    if every is None or any(key.startswith("distinct, ") for key in verdicts):
        return pct(None)
    return f"{pct(every.get('different'))} (all {every.get('n')} new pictures: no product list to tell relatives)"


def kernels(output: Record) -> str:
    """Answers under the narrowest kernels against the machine's (same_answers.py compare)."""
    return (
        f"{output.get('verdicts_or_order')} of {number(output.get('queries'), digits=0)} queries; "
        f"{output.get('percentages_moved')} percentages, by at most {output.get('largest_percentage_gap')}"
    )


def accuracy(page: Page) -> list[str]:
    def row(label: str, stem: str, cell: Callable[[Record], str]) -> list[str]:
        return [label, *(cell(page(f"{stem}-{part}")["output"]) for part in PARTS)]

    lines = ["## How accurate", "", *VERDICTS, "", "### Each part", ""]
    rows = [
        row("copies called `duplicate`", "evaluation", share("duplicate_recall", digits=2)),
        row("`duplicate` calls that are right", "evaluation", share("duplicate_precision", digits=2)),
        row("the kind of edit found least", "evaluation", weakest_kind),
        row("colour variants called `duplicate`", "evaluation", share("colour_variant_false_duplicate_rate")),
        row("colour variants, first match `similar`", "evaluation", share("top_verdicts", "colour_variant", "similar")),
        row("unrelated new pictures, first match `different`", "evaluation", unrelated_different),
        row("the edits made, named", "evaluation", share("edit_naming", "all", "named")),
        row("copies with an edit named that was not made", "evaluation", share("edit_naming", "all", "spurious")),
        row("under the narrowest SIMD kernels: verdicts or order moved; match percentages moved", "kernels", kernels),
    ]
    lines += table(["", *PARTS], rows) + page.sources()
    lines += ["", "### One pair, one judgement", "", *PAIRS, ""] + pairs(page)
    lines += ["", "### Look-alikes and the catalog-wide report", "", *LOOKALIKES, ""]
    rows = [
        row("other photos called `duplicate`, every photo against all the others", "all-pairs", false_pairs),
        row("the same with a grey copy of every photo added: pairs called `duplicate`", "grey-lookalikes", false_pairs),
        row(
            "duplicate report: grouped pairs that are one picture",
            "duplicates",
            lambda o: with_same(o, "pair_precision"),
        ),
        row("duplicate report: pairs of one picture grouped", "duplicates", lambda o: with_same(o, "pair_recall")),
        row("duplicate report: groups holding an original that keep it", "duplicates", originals_kept),
        row("duplicate report: the edits made, named from the original to its copy", "duplicates", pair_edits_named),
        row(
            "duplicate report, each copy registered before its original: groups whose copy shows which is the "
            "original (crop, padding, frame, text or badge, smaller, grey) that keep it",
            "duplicates-first",
            telling_originals_kept,
        ),
    ]
    lines += table(["", *PARTS], rows) + page.sources()
    lines += ["", "### The hardest copies and variants", "", *HARDEST, ""]
    rows = [
        row(
            "copies with two to four edits at once, called `duplicate`",
            "combos",
            lambda o: of(o, "duplicate_recall", get(o, "summary", "positives")),
        ),
        row(
            "faint recolours called `duplicate`",
            "faint-recolours",
            lambda o: of(o, "colour_variant_false_duplicate_rate", get(o, "per_kind", "colour_variant", "n")),
        ),
    ]
    lines += table(["", *PARTS], rows) + page.sources()
    lines += ["", "### Another print on one mockup", "", *PRINTS, ""] + prints(page)
    return lines + ["", *MARKS_PRODUCT, ""] + marks_product(page)


def weakest(entries: Mapping[str, Record], key: str = "duplicate") -> str:
    """A cell: the entry (a kind of copy) with the least `key` (called `duplicate`), and its share."""
    found = {name: e for name, e in entries.items() if e.get(key) is not None}
    if not found:
        return pct(None)
    name = min(found, key=lambda k: (found[k][key], k))
    return f"{name.replace('_', ' ').replace(' | ', ' / ')} {pct(found[name][key])}"


def pairs(page: Page) -> list[str]:
    """The pairs benchmark's table (make_pairs.py, evaluate-pairs: pairs.json): each part's figures."""

    def row(label: str, cell: Callable[[Record], str]) -> list[str]:
        return [label, *(cell(get(page(f"pairs-{part}")["output"], "summary") or {}) for part in PARTS)]

    def counted(key: str, count: str = "n", *, of_what: str = "duplicate") -> Callable[[Record], str]:
        return lambda o: f"{pct(get(o, key, of_what))} of {number(get(o, key, count), digits=0)}"

    def least(key: str, by: str) -> Callable[[Record], str]:
        return lambda o: f"{counted(key)(o)} (least: {weakest(get(o, key, by) or {})})"

    rows = [
        row("the original asked about, one copy of it stored: called `duplicate` (the kind of copy found least)",
            least("original_after_copy", "by_kind")),
        row("a copy asked about, another kind of copy stored: called `duplicate` (the pair of kinds, stored / "
            "asked, found least)", least("copy_against_copy", "by_pair")),
        row("a pair asked both ways: one verdict", counted("both_ways", "pairs", of_what="agree")),
        row("two crops from different sides (4-20% of a side each): called `duplicate`; one verdict both ways",
            lambda o: f"{counted('two_crops')(o)}; {pct(get(o, 'two_crops', 'agree'))}"),
        row("a photograph stored three times: its records in the top 5, called `duplicate`", counted("thrice")),
        row("an original found after its copy: the catalog picture named the copy (the kind of copy named least); "
            "the same pairs the other way, the copy asked: itself named the copy",
            lambda o: f"{counted('named_right_way', of_what='share')(o)} "
                      f"(least: {weakest(get(o, 'named_right_way', 'by_kind') or {}, 'share')}); "
                      f"{counted('copy_named', of_what='share')(o)}"),
    ]  # fmt: skip
    return table(["", *PARTS], rows) + page.sources()


PRINT_PARTS = ("dev", "lockbox")  # (make_prints.py builds from a part's photos: fresh has too few tops)
OVERLAYS = ("caption_band", "chest_badge", "flat_text", "flat_logo")
LOOSE_OVERLAYS = ("backdrop_watermark", "edge_badge", "translucent_logo")  # off the product, or see-through
COVER_OVERLAYS = ("cover_sticker", "cover_caption")


def kinds_share(output: Record, kinds: Sequence[str], key: str) -> str:
    """A cell: `key` (a rate of each kind's queries) over the kinds' queries together, and their count."""
    entries = [get(output, "per_kind", kind) for kind in kinds]
    entries = [e for e in entries if e]
    n = sum(e["n"] for e in entries)
    if not n or any(e.get(key) is None for e in entries):
        return pct(None)
    return f"{pct(sum(e[key] * e['n'] for e in entries) / n)} of {n}"


def prints(page: Page) -> list[str]:
    """The print-variant benchmark's table (make_prints.py): each part's figures."""
    outputs = [page(f"prints-{part}")["output"] for part in PRINT_PARTS]
    paired = [page(f"prints-pairs-{part}")["output"] for part in PRINT_PARTS]

    def row(label: str, kinds: Sequence[str], key: str, named: Sequence[str] | None = None) -> list[str]:
        """`named`: the kinds as prints_pairs.py names them, whose pairs asked both ways end each cell."""
        return [label, *(kinds_share(output, kinds, key) + (both_ways(pairs, named) if named else "")
                         for output, pairs in zip(outputs, paired, strict=True))]  # fmt: skip

    def first_similar(kind: str) -> Callable[[Record], str]:
        return lambda output: pct(get(output, "per_kind", kind, "top_verdicts", "similar"))

    def variants(label: str, kind: str, named: Sequence[str] | None = None) -> list[str]:
        cells = [f"{kinds_share(o, [kind], 'false_duplicate_rate')}; first match `similar` {first_similar(kind)(o)}"
                 for o in outputs]  # fmt: skip
        if named is not None:
            cells = [cell + both_ways(pairs, named) for cell, pairs in zip(cells, paired, strict=True)]
        return [label, *cells]

    rows = [
        variants("another print on the same photo, called `duplicate`", "print_variant", ("p2", "p3")),
        variants("a cover of the same template with other words, called `duplicate`", "template_variant",
                 ("c2", "c3")),
        row("a copy with a flat caption, badge, text or logo on the chest, called `duplicate`", OVERLAYS,
            "duplicate_recall", OVERLAYS),
        row("a cover with a sticker or a caption band, called `duplicate`", COVER_OVERLAYS, "duplicate_recall",
            ("sticker", "caption")),
        row("a copy with a see-through watermark across the picture, a badge in a corner or a see-through logo, "
            "called `duplicate`", LOOSE_OVERLAYS, "duplicate_recall", LOOSE_OVERLAYS),
    ]  # fmt: skip
    # The same families where the shop says a mark on the product is another product.
    outputs = [page(f"prints-product-{part}")["output"] for part in PRINT_PARTS]
    rows += [
        variants("`marks=product`: another print called `duplicate`", "print_variant"),
        row("`marks=product`: a caption band across the picture, called `duplicate`", ["caption_band"],
            "duplicate_recall"),
        row("`marks=product`: a flat badge, text or logo on the chest, called `duplicate`",
            ["chest_badge", "flat_text", "flat_logo"], "duplicate_recall"),
        row("`marks=product`: a see-through watermark across the backdrop, called `duplicate`",
            ["backdrop_watermark"], "duplicate_recall"),
        row("`marks=product`: a badge flush with a corner, called `duplicate`", ["edge_badge"], "duplicate_recall"),
        row("`marks=product`: a logo on the chest the cloth shows through, called `duplicate`",
            ["translucent_logo"], "duplicate_recall"),
    ]  # fmt: skip
    return table(["", *PRINT_PARTS], rows) + page.sources()


def both_ways(output: Record, kinds: Sequence[str]) -> str:
    """A cell's tail: the kinds' pairs asked both ways round (prints_pairs.py's names: a query's
    last name part), the share with one verdict, and the original asked called `duplicate`."""
    summary = get(output, "summary") or {}

    def mean(key: str, names: Sequence[str], value: str, count: str) -> tuple[float | None, int]:
        entries = [e for e in (get(summary, key, "by_kind", name) for name in names) if e and e.get(value) is not None]
        n = sum(e[count] for e in entries)
        return (sum(e[value] * e[count] for e in entries) / n if n else None), n

    agree, n = mean("both_ways", [" / ".join(sorted((kind, "original"))) for kind in kinds], "agree", "pairs")
    back, _ = mean("original_after_copy", kinds, "duplicate", "n")
    return f"; both ways {pct(agree)} of {n} (the original asked: `duplicate` {pct(back)})" if n else ""


def marks_product(page: Page) -> list[str]:
    """The evaluation's text and badge copies of every part, asked with `marks=product` beside the
    default (`photo`)."""
    default = [page(f"evaluation-{part}")["output"] for part in PARTS]
    asked = [page(f"evaluation-product-{part}")["output"] for part in PARTS]
    rows = [[f"{kind} copies called `duplicate`",
             *(f"{kinds_share(d, [kind], 'duplicate_recall')} / {pct(get(p, 'per_kind', kind, 'duplicate_recall'))}"
               for d, p in zip(default, asked, strict=True))] for kind in ("badge", "watermark")]  # fmt: skip
    rows.append(["every copy called `duplicate`",
                 *(f"{pct(get(d, 'summary', 'duplicate_recall'))} / {pct(get(p, 'summary', 'duplicate_recall'))}"
                   for d, p in zip(default, asked, strict=True))])  # fmt: skip
    return table(["`photo` / `product`", *PARTS], rows) + page.sources()


def against(page: Page, stem: str) -> list[str]:
    """One row per kind of query (STEM-new, STEM-copy, STEM-turned: verify_alternated.py's summaries),
    each version's median / 90th percentile, and each version's median over the first one's."""
    runs = [page(f"{stem}-{kind}")["output"] for kind in QUERY_KINDS]
    names = list(dict.fromkeys(name for run in runs for name in run["results"]))
    rows = []
    for run in runs:
        results, first = run["results"], run["results"].get(names[0], {})
        cells = [pair(get(results, n, "median_ms"), get(results, n, "p90_ms"), "ms") for n in names]
        ratios = [f"{results[n]['median_ms'] / first['median_ms']:.2f}x" if n in results and first else "–"
                  for n in names[1:]]  # fmt: skip
        rows.append([QUERY_KINDS.get(run["kind"], run["kind"]), *cells, *ratios])
    header = ["query", *(f"{n}: median / 90th percentile" for n in names),
              *(f"{n}'s median over {names[0]}'s" for n in names[1:])]  # fmt: skip
    return table(header, rows) + page.sources()


def speed(page: Page) -> list[str]:
    # The served check against v4 (served-new, -copy, -turned, -again): what a user waits for.
    lines = ["## How fast", "", *SERVED_AGAINST, "", *against(page, "served")]

    lines += ["", "### Served, on one machine", "", *SERVED, ""]
    serve = page("serve")["output"]
    rows = [
        [
            "200 generated pictures",
            pair(serve.get("find_by_url_p50_ms"), None, "ms"),
            pair(serve.get("find_upload_p50_ms"), None, "ms"),
            "–",
        ]
    ]
    for size in page("scale")["output"]:
        rows.append([
            f"{size['records']:,} records",
            pair(size.get("find_by_url_p50_ms"), size.get("find_by_url_p99_ms"), "ms"),
            pair(size.get("find_upload_p50_ms"), size.get("find_upload_p99_ms"), "ms"),
            pair(size.get("start_first_answer_s"), size.get("start_ready_s"), "s", 2),
        ])  # fmt: skip
    lines += table(["catalog", "by URL: median / slowest 1%", "upload: median / slowest 1%",
                    "first answer / index ready, after start"], rows)  # fmt: skip
    clients, seconds = serve.get("load_clients"), number(serve.get("load_seconds"), " s", 0)
    lines += ["", f"Under load ({clients} clients at once for {seconds}): "
              f"{number(serve.get('load_requests_per_s'))} answers a second, {serve.get('load_errors')} failed; "
              f"the server's memory at most {number(serve.get('rss_max_mb'), ' MB', 0)}."]  # fmt: skip
    soak = page("memory-soak")["output"]
    lines += ["", *memory_soak(soak)]

    gate = page("gate")["output"]
    paid, race = gate["cost"], gate["race"]
    rounds = sum(len(stored) for stored in race["stored_per_round"].values())
    lines += ["", f"**The duplicate gate**, served over {gate['catalog']} photos (medians of {gate['pictures']} "
              f"pictures): storing a new picture with `warn` takes {number(paid['warn_over_find'], 'x', 2)} a "
              f"`find_similar` of it ({pair(paid['warn_median_ms'], paid['find_median_ms'], 'ms')}), refusing "
              f"a copy with `reject` {number(paid['reject_copy_over_find_copy'], 'x', 2)} "
              f"({pair(paid['reject_copy_median_ms'], paid['find_copy_median_ms'], 'ms')}). {race['writers']} writes "
              f"of one picture at once with `reject`, {rounds} rounds over 3 ways in (`POST /items`, an upload "
              f"with an address, an upload kept): {rounds - race['rounds_not_one']} rounds stored exactly one, "
              f"{race['refusals_not_naming_the_stored']} refusals did not name it."]  # fmt: skip
    lines += page.sources()

    lines += ["", "### Bulk work, on the same machine", ""]
    backfill = page("backfill")["output"]
    imported = page("records-import")["output"]
    with_pictures = page("records-import-thumbnails")["output"]
    report = page("duplicates-report")["output"]
    checked = page("check-job")["output"]
    sizes = sorted(report.values(), key=lambda r: r["records"])
    rows = [
        [f"backfill, pictures from a host that answers {number(backfill.get('latency_ms'), ' ms', 0)} late",
         f"{number(get(backfill, 'median', 'backfill_images_per_s'))} pictures/s "
         f"({number(get(backfill, 'median', 'speedup_vs_serial'))}x a plain download-and-hash loop); with the "
         f"duplicate gate's default `warn`, each row checked: "
         f"{number(get(backfill, 'gated', 'backfill_images_per_s'))} pictures/s "
         f"({number(get(backfill, 'gated', 'backfill_cpu_ms_per_image'), ' ms', 0)} of CPU a picture)"],
        [f"import of a records file of {number(imported.get('lines'), digits=0)} records",
         f"{number(get(imported, 'this', 'records_per_s'), digits=0)} records/s"],
        [f"the same, {number(with_pictures.get('lines'), digits=0)} records each with its kept picture",
         f"{number(get(with_pictures, 'this', 'records_per_s'), digits=0)} records/s (bound by writing the pictures)"],
        [f"a check-only job (`POST /imports?mode=check`) of {checked['checked'] + checked['failed']} rows from a host "
         f"{number(checked['delay_s'] * 1000, ' ms', 0)} late, over {checked['catalog']:,} records",
         f"{number(checked['rows_per_s'])} rows/s ({number(checked['rows_per_cpu_s'])} a CPU second; "
         f"{checked['duplicates']} called duplicates of the {checked['copies_in_rows']} copies among them)"],
        ["the catalog-wide duplicate report",
         "; ".join(f"{r['records']:,} records in {number(r['report_s_median'], ' s')} (the dev benchmark's "
                   f"pictures, then filler)" for r in sizes) + "; " + real_report(page("duplicates-real")["output"])],
    ]  # fmt: skip
    return lines + table(["job", "rate"], rows) + page.sources()


def real_report(real: Record) -> str:
    """The duplicate report over real pictures only, beside v4's on the same pictures."""
    this, v4 = real["this"], real["baseline"]

    def found(run: Record) -> str:
        kept = run.get("original_kept")  # (v4's evaluate-duplicates did not count them)
        originals = "" if kept is None else f", the original kept in {kept} of {run['groups_with_original']} groups"
        return f"pair precision {pct(run['pair_precision'])}, recall {pct(run['pair_recall'])}{originals}"

    return (f"{this['records']:,} real pictures only (the bench's photos, {real['copies_per_photo']} edited copies "
            f"of each, the colour variants) in {number(this['report_s'], ' s')}: {this['candidate_pairs']:,} "
            f"candidate pairs, {number(this['pairs_per_s'])} a second ({found(this)}); v4 on the same pictures "
            f"{number(v4['report_s'], ' s')}, {v4['candidate_pairs']:,} pairs, {number(v4['pairs_per_s'])} a second "
            f"({found(v4)}): {number(real['report_s_over_baseline'], 'x', 2)} v4's time")  # fmt: skip


CHECK_ITEMS = {
    "api_gateway": "API Gateway REST",
    "lambda_requests": "Lambda requests",
    "lambda_duration": "Lambda duration, arm64",
    "snapstart_restores": "SnapStart restores",
    "dynamodb_reads": "DynamoDB reads",
    "s3_kept_picture_reads": "S3 kept-picture reads",
    "xray": "X-Ray",
    "logs": "CloudWatch Logs",
}


def cost(page: Page) -> list[str]:
    prices = page("cost")["output"]
    inputs = prices["inputs"]
    rows = [[f"{c['records']:,} records", f"${c['fixed_per_month_usd']:,} ({c['node']} nodes)",
             f"${c['per_million_checks_usd']:,}"] for c in prices["catalogs"]]  # fmt: skip
    lines = ["## What it costs", "", *COST.format(region=prices["region"]).splitlines(), ""]
    lines += table(["catalog", f"fixed per month ({prices['profile']} profile)", "per million checks"], rows)
    checks = prices["per_million_checks"]
    lines += ["", "A million checks, item by item:", ""]
    lines += table(["item", "per million checks"], [[CHECK_ITEMS[k], f"${v:.2f}"] for k, v in checks.items()])
    cpu, gated, kept = inputs["find_cpu_ms"], inputs["gated_write"], inputs["thumbnail_bytes"]
    bundles = page("bundles")["output"]
    lines += ["", f"Measured on the {inputs['pictures']} pictures of the bench: a record's DynamoDB item "
              f"{inputs['dynamodb_item_bytes']['median']:,.0f} bytes (median; {inputs['write_units']['median']} write "
              f"units); a kept picture {kept['mean'] / 1000:.1f} KB on average; a write through the gate "
              f"{gated['write_units']['median']:.0f} write units (median) and "
              f"{gated['strongly_consistent_read_units']} strongly consistent reads, with `allow` "
              f"{gated['allow_write_units']['median']:.0f}; a check's CPU on one core "
              f"{number(cpu['copy']['median'], ' ms')} for a copy, {number(cpu['new_product']['median'], ' ms')} for a "
              "new product (median).",
              "",
              f"The `dev` profile: about ${prices['dev_profile_per_month_usd']} a month. Loading a catalog "
              f"through an import: about ${prices['import_per_million_rows_usd']} per million rows. On one machine "
              "dupcheck costs the machine: no account, no fee. The Lambda code deployed, unzipped: "
              f"{number(bundles['dupcheck'], ' MiB')} (every function but the similar-products ones), "
              f"{number(bundles['products'], ' MiB')} (those, with onnxruntime and the model), under "
              "Lambda's 250 MiB."]  # fmt: skip
    return lines + page.sources()


def render(records: Mapping[str, Record]) -> str:
    page = Page(records)
    lines = [*INTRO, "", *accuracy(page), "", *speed(page), "", *cost(page)]
    return "\n".join(lines) + "\n"


def bundle_sizes(records: Mapping[str, Record]) -> str:
    """docs/deploy.md's sizes of the Lambda code assets: the recorded `make synth` run's, the same
    figures results.md's cost section gives, so the guide cannot quote an older build."""
    page = Page(records)
    run = page("bundles")
    bundles = run["output"]
    text = (f"As last recorded (`make synth` at {run['commit']}, arm64, unzipped): "
            f"{number(bundles['dupcheck'], ' MiB')} for every function but the similar-products ones, "
            f"{number(bundles['products'], ' MiB')} for those (with onnxruntime and the model).")  # fmt: skip
    return textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False) + "\n"


KIND_LABELS = {"combo": "combo (two to four of these)", "crop_large": "crop large (10-15% a side)",
               "rotate": "rotate (1-5 degrees)", "jpeg": "JPEG", "webp": "WebP"}  # fmt: skip


def by_kind(records: Mapping[str, Record]) -> str:
    """docs/evaluation.md's per-kind table: each part's copies called `duplicate` and edits named,
    by kind of edit, from the evaluation runs results.md's first table uses."""
    page = Page(records)
    runs = {part: page(f"evaluation-{part}")["output"] for part in PARTS}
    kinds = sorted({kind for run in runs.values() for kind, row in run["per_kind"].items()
                    if row.get("type") == "positive"})  # fmt: skip

    def named(run: Record, kind: str) -> float | None:
        return get(run, "summary", "edit_naming", kind, "named")

    rows = [[KIND_LABELS.get(kind, kind.replace("_", " ")),
             *(pct(get(runs[part], "per_kind", kind, "duplicate_recall")) for part in PARTS),
             *(pct(named(runs[part], kind)) if named(runs[part], kind) is not None else "(nothing to name)"
               for part in PARTS)] for kind in kinds]  # fmt: skip
    averages, right = [], []
    for part in PARTS:
        shares = [named(runs[part], kind) for kind in kinds if named(runs[part], kind) is not None]
        averages.append(f"{part} {pct(sum(shares) / len(shares)) if shares else pct(None)}")
        right.append(pct(get(runs[part], "summary", "edit_naming", "all", "right")))
    header = ["kind of edit", "copies called duplicate: dev", *PARTS[1:], "edits named: dev", *PARTS[1:]]
    lines = table(header, rows)
    lines += ["", f"Averaged over the kinds with a visible edit: {', '.join(averages)} named; with its parameters "
              f"right too (a crop within 3 points a side, a turn within 1.5 degrees, a tone change's direction, "
              f"a badge's corner): {', '.join(right)} of those named."]  # fmt: skip
    relatives = [f"{part} {pct(share)}" for part in PARTS
                 if (share := get(runs[part], "summary", "top_verdicts", "distinct, with a relative", "similar"))
                 is not None]  # fmt: skip
    lines += ["", f"A new photo of a product the catalog shows in another photo has `similar` as its first match: "
              f"{', '.join(relatives)} (a part without a product list cannot tell); another shot is not the same "
              "photograph."]  # fmt: skip
    return "\n".join(lines + page.sources()) + "\n"


def splice(text: str, name: str, block: str, *, padded: bool = True) -> str:
    """`text` with the lines between `<!-- generated: NAME ... -->` and `<!-- /generated -->` replaced by
    `block` (`padded`: between blank lines, as a table needs; else a paragraph's lines as they are)."""
    start = text.find(BLOCK_START + name)
    end = text.find(BLOCK_END, start)
    if start < 0 or end < 0:
        raise ResultsError(f"no {BLOCK_START}{name} ... --> ... {BLOCK_END} block to write")
    head = text.index("\n", start) + 1
    pad = "\n" if padded else ""
    return text[:head] + pad + block + pad + text[end:]


def git_commit() -> str:
    """HEAD's short hash, `-dirty` when the measured code (lambdas/, scripts/) has changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    head = git("rev-parse", "--short=7", "HEAD")
    return f"{head}-dirty" if git("status", "--porcelain", "--", "lambdas", "scripts") else head


def tool_output(text: str) -> Any:
    """A tool's JSON: a whole file, or the last line of what a benchmark printed."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError as exc:
        raise ResultsError(f"neither the file nor its last line is JSON ({exc})") from exc


def record(folder: Path, name: str, text: str, *, part: str | None = None, data: str | None = None,
           command: str | None = None, commit: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Store a run's output as docs/results/NAME.json; what is not given is kept from the old file."""
    output = tool_output(text)
    if output is None:
        raise ResultsError("the run's output is empty")
    if isinstance(output, dict):
        output = {k: v for k, v in output.items() if k not in BULKY}
    path = folder / f"{name}.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    new: dict[str, Any] = {"name": name, "part": part or old.get("part"), "data": data or old.get("data"),
                           "command": command or old.get("command"), "commit": commit or git_commit(),
                           "source": f"measured, recorded {date.today().isoformat()}", "output": output}  # fmt: skip
    for key in ("data", "command"):
        if not new[key]:
            raise ResultsError(f"{path.name} is new: give --{key}")
    if not new["part"]:
        del new["part"]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return new


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results files (default docs/results)")
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write (default docs/results.md)")
    parser.add_argument("--evaluation", type=Path, help="the page whose per-kind table to write "
                        "(default: docs/evaluation.md when --out is docs/results.md, else none)")  # fmt: skip
    parser.add_argument("--deploy", type=Path, help="the page whose bundle sizes to write "
                        "(default: docs/deploy.md when --out is docs/results.md, else none)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the page is not up to date")
    parser.add_argument("--record", metavar="NAME", help="store a run's output as RESULTS/NAME.json, then write")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="FILE",
        help="the run's output: report.json, all_pairs.json, a benchmark's saved stdout (- : stdin)",
    )
    parser.add_argument("--part", choices=PARTS, help="the benchmark part it measured")
    parser.add_argument("--data", help="the pictures it measured, in a few words")
    parser.add_argument("--command", help="the command that made the output")
    parser.add_argument("--commit", help="the code that measured it (default: git's HEAD)")
    args = parser.parse_args(argv)
    try:
        if args.record:
            if args.source is None:
                parser.error("--record needs --from FILE")
            text = sys.stdin.read() if str(args.source) == "-" else args.source.read_text(encoding="utf-8")
            record(args.results, args.record, text, part=args.part, data=args.data, command=args.command,
                   commit=args.commit)  # fmt: skip
        records = load(args.results)
        pages = {args.out: render(records)}
        evaluation = args.evaluation or (EVALUATION if args.out.resolve() == PAGE else None)
        if evaluation is not None:
            pages[evaluation] = splice(evaluation.read_text(encoding="utf-8"), "by-kind", by_kind(records))
        deploy = args.deploy or (DEPLOY if args.out.resolve() == PAGE else None)
        if deploy is not None:
            pages[deploy] = splice(deploy.read_text(encoding="utf-8"), "bundles", bundle_sizes(records), padded=False)
    except (ResultsError, OSError) as exc:
        print(f"results: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [str(path) for path, page in pages.items()
                 if not path.is_file() or path.read_text(encoding="utf-8") != page]  # fmt: skip
        if stale:
            print(f"results: {', '.join(stale)} not what {args.results} gives: run `make results`", file=sys.stderr)
            return 1
        return 0
    for path, page in pages.items():
        path.write_text(page, encoding="utf-8")
    return 0


INTRO = [
    "# Results: how accurate, how fast, what it costs",
    "",
    "<!-- Written by `make results` (scripts/results.py) from docs/results/*.json: record a run there, never edit "
    "this page. -->",
    "",
    "For the people who run a catalog. Under every table, the run each figure came from: the "
    "code (a commit), the command and the pictures. What each part of the benchmark holds and what still goes "
    "wrong: [evaluation.md](evaluation.md); what was tried and dropped: [lab/evaluation.md](lab/evaluation.md) "
    "and [lab/benchmarks.md](lab/benchmarks.md).",
]
VERDICTS = [
    "For a new picture, dupcheck lists the closest catalog pictures, each with a verdict:",
    "",
    (
        "- **duplicate**: the same photograph, edited or not (resized, recompressed, cropped up to about 15% "
        "a side, mirrored, turned a few degrees, brighter or darker, grayscale, framed, with text or a "
        "badge added)."
    ),
    (
        "- **similar**: the same photograph with part of it in another colour: a colour variant a shop made "
        "from one photo, usually another SKU."
    ),
    (
        "- **different**: anything else, however alike: another photo of the same product, another product "
        "shot the same way."
    ),
    "",
    (
        "The photos of `../shared/bench` come in two parts: **dev**, on which every limit was chosen, and the "
        "**lockbox**, on which none was; the **fresh** part is another store's sample photos, added once "
        "every limit had been chosen "
        "([evaluation.md](evaluation.md#the-pictures-a-part-to-tune-on-a-part-left-alone-a-part-from-elsewhere)). "
        "Each photo is indexed, then asked about as edited copies; held-out photos and colour variants are "
        "asked about too."
    ),
]
LOOKALIKES = [
    (
        "Every photo of a part asked about against all the others (each left out of the catalog for its own "
        "query), alone and with a grey copy of each photo beside it; and the catalog-wide duplicate report "
        "(`python -m dupcheck duplicates`) run on each part as one catalog: its photos, one edited copy of "
        "each, the held-out photos and the colour variants, each copy registered after its original under an id "
        "that sorts before it (`--copies-first`: before its original, as a shop's catalog often gets them). "
        "A grey copy of a shop's colour variant made from "
        "one photograph can be called a duplicate of its siblings: in grey the recoloured part differs in "
        "level only ([evaluation.md](evaluation.md#what-still-goes-wrong))."
    ),
]
PAIRS = [
    (
        "A shop's catalog holds the edited picture first as often as the original. `scripts/make_pairs.py` "
        "makes eight kinds of copy of every photo of a part (crops, padding, mirrored, turned, grey, text, a "
        "badge), two crops from different sides and a smaller copy, and `python -m dupcheck evaluate-pairs` "
        "asks them in every order: a copy stored and the original asked about, a copy against another kind, "
        "each pair both ways, and a catalog holding each photograph three times (the original, a smaller and "
        "a padded copy). A record the answer does not list counts as missed."
    ),
]
HARDEST = [
    (
        "Copies with several edits at once (`scripts/make_stress.py --kind combo`, three a picture), and "
        "colour variants whose part changed colour only faintly (`scripts/make_recolours.py --faint`: a tint "
        "halved, deepened or turned), which are told apart only by the skin beside them or by a turned hue."
    ),
]
MARKS_PRODUCT = [
    (
        'A shop that sells prints says `marks=product` (docs/api.md, "Marks on the product"): a mark that lies on '
        "the product, touching neither the plain backdrop nor the picture's edge, is then another product "
        "(`similar`); one across the backdrop or at the edge stays an overlay (the rows above; its limits chosen on "
        "dev). A caption band's copy is missed under either setting where its photo's sibling is called `duplicate` "
        "first. Issue 83's targets under `product`: another print `duplicate` at most 2%, first match `similar` 90%; "
        "overlays across the backdrop or the edge, and the evaluation's text and badge copies, `duplicate` 97.5% "
        "(each cell `photo`, the default, / `product`):"
    ),
]
PRINTS = [
    (
        "A print-on-demand shop prints each design on one mockup photo; a series' covers share one template "
        "with other words: each is another product. `scripts/make_prints.py` builds them from a part's photos "
        "of tops: on each, a first print in the catalog beside the plain photo, and two more prints asked about "
        "(artwork generated, its ink darkened by the cloth's shading and bent along its folds); generated "
        "covers; and copies with a flat overlay on the chest, or one off the product or see-through (a "
        "watermark at 30-60% across the picture, a badge flush with a corner, a logo at 35-60% on the chest), "
        "which stay duplicates. A copy of the printed photo whose first match is the plain one counts as "
        "missed. After each `photo` figure, the same pairs both ways round (`scripts/prints_pairs.py`, then "
        "`python -m dupcheck evaluate-pairs`: the copy asked with the picture it was made from stored, and the "
        "reverse, one record of each pair stored): the share with one verdict both ways, and the original asked "
        "called `duplicate`. Issue 74's targets: another print or cover `duplicate` at most 2%, first match "
        "`similar` 90%; issue 83's under `product`: the overlays off the product or see-through `duplicate` 97.5%."
    ),
]
SERVED_AGAINST = [
    (
        "**A served check against v4's.** Uploads to a v4 server and to this version's (and to an earlier "
        "commit's, where one is named), each with the same photos indexed, taking turns query by query in one "
        "run; per query the median of the rounds, then the median and 90th percentile over the queries."
    ),
]
SERVED = [
    (
        "`python -m dupcheck serve` on a 2-core machine, one client on a keep-alive connection, the picture "
        "fetched from a server on the same machine (no network wait). The large catalogs are real photos and "
        "filler records of real size, imported from a records file. On AWS nothing has been measured yet: "
        "what a check should take there is in [deploy.md](deploy.md#cold-start)."
    ),
]
COST = (
    "On AWS, at {region} list prices: the fixed cost is mostly the two OpenSearch nodes; a check pays API "
    "Gateway, Lambda, DynamoDB reads and X-Ray. The arithmetic: [deploy.md](deploy.md#cost)."
)


if __name__ == "__main__":
    raise SystemExit(main())
