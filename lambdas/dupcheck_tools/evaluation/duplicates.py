"""Catalog-wide duplicates on a labelled benchmark: pair precision and pair recall of the report.

    python -m dupcheck evaluate-duplicates --catalog DIR --queries DIR --truth FILE --out DIR \
        [--copies N] [--radius R] [--far-radius R] [--siblings CSV] [--same CSV]

The benchmark folders of `evaluate` (scripts/make_benchmark.py) become one catalog: every
catalog picture, up to `--copies` of its edited copies (each picture's copies chosen so the
edit kinds stay balanced: with 1 copy, every kind is still there), and every negative query
(held-out pictures and colour variants, as-is and lightly edited). Each picture is registered
through the service (entity_id = file stem; a copy's is its original's and `__kind`, so the keep
rule, the smallest id, keeps the original),
then `python -m dupcheck duplicates` runs on that store, and its groups are scored against the
truth's `source` column (the picture each file was made from; files of one source are copies of
each other, and a colour variant is its own source):

  pair precision   of the pairs of records the report puts in one group, the share that are
                   copies of one picture
  pair recall      of the pairs of records that are copies of one picture, the share the
                   report puts in one group
  kept pairs       the share right of the pairs a group asks a person to act on: the record kept
                   and each other record (a wrong call is one wrong kept pair: grouping.py)
  called pairs     the share right of every pair the service called the same picture (in the
                   groups and beside them): the per-pair calls kept pairs are compared with
  linked pairs     the share right of the pairs the report lists in its groups (each verified
                   directly)
  related pairs    the pairs listed beside the groups (verified, but not a duplicate of the
                   record kept: the grouping rule kept them out), and the share of them right
  colour variants grouped with their sibling (`--siblings`: variant,sibling stems; default
  colour_variant_siblings.csv beside the truth file): the same product in another colour is
  another SKU, never a duplicate
  per kind         of the edited copies of each kind, the share grouped with their original

With `--same` (CSV a,b, as `evaluate --all-pairs --same`: pictures argued to be one picture that
the data labels two, e.g. one photo reused under another colour's SKU), pair precision, pair
recall and the colour variants grouped with their sibling are given twice: as the data labels
them, and with each listed pair one picture (`with_same`). The first is never dropped.

Writes duplicates-evaluation.json and .md to `--out` (and the report itself under
`--out/report`); the last stdout line is the summary as JSON.
"""

from __future__ import annotations

import csv
import itertools
import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.core.errors import DupcheckError
from dupcheck_tools.duplicates import DEFAULT_RADIUS, Group, find_duplicates
from dupcheck_tools.evaluation import UsageError, list_files, progress

NEGATIVE_KINDS = ("distinct", "colour_variant")
SIBLINGS_NAME = "colour_variant_siblings.csv"  # what make_benchmark.py writes beside truth.csv
# What is scored again with the --same pairs each one picture (per kind is the copies' own originals).
WITH_SAME = ("true_pairs", "grouped_pairs", "grouped_pairs_right", "pair_precision", "pair_recall",
             "linked_pair_precision", "kept_pair_precision", "called_pair_precision",
             "colour_variants_grouped_with_sibling",
             "colour_variants_grouped_with_sibling_ids")  # fmt: skip


def read_sources(path: Path) -> list[dict[str, str]]:
    """Truth rows with the `source` column make_benchmark.py writes."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("query", "expected", "kind", "source") if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: truth CSV lacks column(s) {', '.join(missing)} "
                                 "(scripts/make_benchmark.py writes `source`)")  # fmt: skip
            return [{k: (row.get(k) or "").strip() for k in ("query", "expected", "kind", "source")} for row in reader]
    except OSError as exc:
        raise UsageError(f"cannot read truth file: {exc}") from exc


def choose_copies(rows: Sequence[Mapping[str, str]], copies: int | None) -> list[Mapping[str, str]]:
    """Up to `copies` positive rows per expected picture (all when None), each picture taking
    the kinds used least so far (then by name), so every kind stays about equally present."""
    by_picture: dict[str, list[Mapping[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["query"]):
        if row["expected"]:
            by_picture.setdefault(row["expected"], []).append(row)
    if copies is None:
        return [row for picture in sorted(by_picture) for row in by_picture[picture]]
    used: Counter[str] = Counter()
    chosen = []
    for picture in sorted(by_picture):
        options = list(by_picture[picture])
        for _ in range(min(copies, len(options))):
            row = min(options, key=lambda r: (used[r["kind"]], r["query"]))
            options.remove(row)
            used[row["kind"]] += 1
            chosen.append(row)
    return chosen


def read_siblings(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return {row["variant"].strip(): row["sibling"].strip() for row in csv.DictReader(fh)}


def same_pictures(source_of: Mapping[str, str], siblings: Mapping[str, str],
                  same: set[frozenset[str]]) -> tuple[dict[str, str], dict[str, str]]:  # fmt: skip
    """The labels with each listed pair of pictures one picture: every record's source, and the
    variant-to-sibling map, in terms of one picture of each set the pairs join (its least id;
    pairs chain). A variant listed as the same picture as its sibling is no longer a variant."""
    one: dict[str, str] = {}

    def find(picture: str) -> str:
        while one.get(picture, picture) != picture:
            picture = one[picture]
        return picture

    for pair in sorted(same, key=sorted):
        a, b = sorted(find(picture) for picture in (min(pair), max(pair)))
        if a != b:
            one[b] = a
    sources = {entity: find(source) for entity, source in source_of.items()}
    variants = {find(v): find(s) for v, s in siblings.items() if find(v) != find(s)}
    return sources, variants


def score(
    groups: Sequence[Group], source_of: Mapping[str, str], kind_of: Mapping[str, str], siblings: Mapping[str, str]
) -> dict[str, Any]:
    """Pair precision and recall of `groups` against each record's source (pure)."""
    group_of = {item.entity_id: number for number, group in enumerate(groups) for item in group.items}
    predicted = sum(len(g.items) * (len(g.items) - 1) // 2 for g in groups)
    right = sum(1 for g in groups for a, b in itertools.combinations(g.items, 2)
                if source_of[a.entity_id] == source_of[b.entity_id])  # fmt: skip
    sources = Counter(source_of.values())
    true_pairs = sum(n * (n - 1) // 2 for n in sources.values())
    listed = [(p.a, p.b) for g in groups for p in g.pairs]
    listed_right = sum(1 for a, b in listed if source_of[a] == source_of[b])
    # A related pair is listed under both its groups: once here.
    related = {tuple(sorted((p.a, p.b))) for g in groups for p in g.related}
    related_right = sum(1 for a, b in related if source_of[a] == source_of[b])
    kept = [(g.keep.entity_id, item.entity_id) for g in groups for item in g.items[1:]]
    kept_right = sum(1 for a, b in kept if source_of[a] == source_of[b])
    called = {tuple(sorted(pair)) for pair in listed} | related
    called_right = sum(1 for a, b in called if source_of[a] == source_of[b])
    variants = [entity for entity, kind in kind_of.items() if kind == "colour_variant"]
    with_sibling = [
        entity for entity in variants
        if (sibling := siblings.get(source_of[entity])) is not None and entity in group_of
        and group_of.get(sibling) == group_of[entity]
    ]  # fmt: skip
    per_kind: dict[str, dict[str, Any]] = {}
    for entity, kind in sorted(kind_of.items()):
        if kind in ("original", *NEGATIVE_KINDS):
            continue
        original = source_of[entity]
        entry = per_kind.setdefault(kind, {"n": 0, "grouped_with_original": 0})
        entry["n"] += 1
        entry["grouped_with_original"] += int(entity in group_of and group_of.get(original) == group_of[entity])
    for entry in per_kind.values():
        entry["recall"] = entry["grouped_with_original"] / entry["n"]
    return {
        "records": len(source_of),
        "groups": len(groups),
        "true_pairs": true_pairs,
        "grouped_pairs": predicted,
        "grouped_pairs_right": right,
        "pair_precision": right / predicted if predicted else None,
        "pair_recall": right / true_pairs if true_pairs else None,
        "linked_pairs": len(listed),
        "linked_pair_precision": listed_right / len(listed) if listed else None,
        "related_pairs": len(related),
        "related_pairs_right": related_right,
        "kept_pairs": len(kept),
        "kept_pair_precision": kept_right / len(kept) if kept else None,
        "called_pairs": len(called),
        "called_pair_precision": called_right / len(called) if called else None,
        "colour_variants": len(variants),
        "colour_variants_grouped_with_sibling": len(with_sibling),
        "colour_variants_grouped_with_sibling_ids": sorted(with_sibling),
        "per_kind": per_kind,
    }


def run_duplicate_evaluation(
    catalog: Path, queries: Path, truth_path: Path, out: Path, *, copies: int | None = None,
    radius: int = DEFAULT_RADIUS, far_radius: int | None = None, siblings: Path | None = None,
    same: Path | None = None, algo: str | None = None, workers: int = 0,
) -> dict[str, Any]:  # fmt: skip
    from dupcheck.bootstrap import build_service
    from dupcheck.core.hashing import DEFAULT_ALGO, PIPELINES, get_pipeline
    from dupcheck.core.settings import Settings
    from dupcheck_tools.evaluation.all_pairs import read_same

    rows = read_sources(truth_path)
    listed = read_same(same) if same is not None else None
    if algo is not None and algo not in PIPELINES:
        raise UsageError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}")
    if copies is not None and copies < 0:
        raise UsageError("--copies must be >= 0")
    if not queries.is_dir():
        raise UsageError(f"not a folder: {queries}")
    chosen = choose_copies(rows, copies) + [r for r in rows if r["kind"] in NEGATIVE_KINDS]
    source_of: dict[str, str] = {}
    kind_of: dict[str, str] = {}
    files: list[tuple[str, Path]] = []
    for path in list_files(catalog):
        source_of[path.stem], kind_of[path.stem] = path.stem, "original"
        files.append((path.stem, path))
    for row in chosen:
        entity = Path(row["query"]).stem
        if entity in source_of:
            raise UsageError(f"{row['query']}: its id {entity!r} is already in the catalog")
        source_of[entity], kind_of[entity] = row["source"] or entity, row["kind"]
        files.append((entity, queries / row["query"]))
    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    failed: list[dict[str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dupcheck-eval-dups-") as data_dir:
        service = build_service(Settings.from_env({}, data_dir=Path(data_dir)), pipeline=pipeline)
        try:
            for entity, path in progress(files, "index"):
                try:
                    service.register_bytes(entity_id=entity, sku=entity, image_url=path.resolve().as_uri(),
                                           data=path.read_bytes())  # fmt: skip
                except (OSError, DupcheckError) as exc:
                    failed.append({"file": str(path), "error": str(exc)})
                    del source_of[entity], kind_of[entity]
            index_seconds = time.perf_counter() - started
            summary = find_duplicates(service.store, out / "report", source=f"evaluation:{data_dir}",
                                      pipeline=pipeline, radius=radius, far_radius=far_radius, workers=workers,
                                      progress=True, thumbnails=service.thumbnails)  # fmt: skip
        finally:
            close = getattr(service.store, "close", None)
            if callable(close):
                close()
    assert summary.report is not None
    groups = _groups_of(summary.report)
    sibling_of = read_siblings(siblings or truth_path.parent / SIBLINGS_NAME)
    result = {
        "algo": pipeline.algo, "radius": radius, "far_radius": summary.far_radius, "copies_per_picture": copies,
        **score(groups, source_of, kind_of, sibling_of),
        "failed_files": failed, "index_seconds": round(index_seconds, 1), "duplicates_seconds": summary.elapsed_s,
    }  # fmt: skip
    if listed is not None:
        one_source_of, one_sibling_of = same_pictures(source_of, sibling_of, listed)
        as_one = score(groups, one_source_of, kind_of, one_sibling_of)
        result["same_pictures"] = sorted(sorted(pair) for pair in listed)
        result["with_same"] = {key: as_one[key] for key in WITH_SAME}
    out.mkdir(parents=True, exist_ok=True)
    (out / "duplicates-evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "duplicates-evaluation.md").write_text(render_markdown(result))
    return result


def _groups_of(report: Mapping[str, Any]) -> list[Group]:
    """The report's groups, as score() takes them (only ids and pairs matter to it)."""
    from dupcheck_tools.duplicates.grouping import Pair
    from dupcheck_tools.duplicates.workfile import Listing

    return [
        Group(
            tuple(Listing(entity, "", "", "") for entity in group["items"]),
            tuple(Pair(p["a"], p["b"], p["distance"], p["match_percent"], None) for p in group["pairs"]),
            tuple(Pair(p["a"], p["b"], p["distance"], p["match_percent"], None) for p in group.get("related", [])),
        )
        for group in report["groups"]
    ]


def render_markdown(result: Mapping[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.2f}%"

    lines = [
        f"# Catalog-wide duplicates: {result['algo']}, radius {result['radius']}, far band {result['far_radius']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| records | {result['records']} |",
        f"| pair precision (grouped pairs) | {pct(result['pair_precision'])} "
        f"({result['grouped_pairs_right']} of {result['grouped_pairs']}) |",
        f"| pair recall (grouped pairs) | {pct(result['pair_recall'])} "
        f"({result['grouped_pairs_right']} of {result['true_pairs']}) |",
        f"| linked pair precision | {pct(result['linked_pair_precision'])} (of {result['linked_pairs']}) |",
        f"| kept pair precision (the kept record and each other) | {pct(result['kept_pair_precision'])} "
        f"(of {result['kept_pairs']}) |",
        f"| per-pair calls' precision (in and beside the groups) | {pct(result['called_pair_precision'])} "
        f"(of {result['called_pairs']}) |",
        f"| related pairs (beside the groups), right | {result['related_pairs_right']} of {result['related_pairs']} |",
        f"| colour variants grouped with their sibling | {result['colour_variants_grouped_with_sibling']} of "
        f"{result['colour_variants']} |",
    ]
    if "with_same" in result:
        one = result["with_same"]
        listed = ", ".join(" = ".join(pair) for pair in result["same_pictures"])
        lines += [
            f"| with the --same pairs one picture ({listed}): pair precision | {pct(one['pair_precision'])} "
            f"({one['grouped_pairs_right']} of {one['grouped_pairs']}) |",
            f"| ... pair recall | {pct(one['pair_recall'])} ({one['grouped_pairs_right']} of {one['true_pairs']}) |",
            f"| ... colour variants grouped with their sibling | {one['colour_variants_grouped_with_sibling']} |",
        ]
    lines += [
        "",
        "| kind | copies | grouped with their original |",
        "|---|---|---|",
    ]
    for kind, entry in sorted(result["per_kind"].items()):
        lines.append(f"| {kind} | {entry['n']} | {pct(entry['recall'])} |")
    return "\n".join(lines) + "\n"
