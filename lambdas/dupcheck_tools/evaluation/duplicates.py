"""Catalog-wide duplicates on a labelled benchmark: pair precision and pair recall of the report.

    python -m dupcheck evaluate-duplicates --catalog DIR --queries DIR --truth FILE --out DIR \
        [--copies N] [--radius R] [--far-radius R] [--siblings CSV] [--same CSV]

The benchmark folders of `evaluate` (scripts/make_benchmark.py) become one catalog: every
catalog picture, up to `--copies` of its edited copies (each picture's copies chosen so the
edit kinds stay balanced: with 1 copy, every kind is still there), and every negative query
(held-out pictures and colour variants, as-is and lightly edited). Each picture is registered
through the service as a shop's history would: the catalog pictures first, then the copies, then
the negatives (`--copies-first`: the copies first, as a catalog whose supplier's edit came before
the original). The ids tell nothing of which is the original: every record is `item-N`, the
copies numbered first (as an import's `copy-1` sorted before the `magento_0003` it copied), so
the smallest id never finds the original; ids.csv beside the results says which file each is.
Then `python -m dupcheck duplicates` runs on that store, and its groups are scored against the
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
  original kept    of the groups holding a catalog picture (an original), the share whose record
                   to keep is one; and by what chose it (`keep_by`: the pictures showed every other
                   record an edit of it, or the registration, the id or the grouping rule decided
                   for one of them at least)
  pair edits       of the grouped pairs of an original and its copy, the share that list the
                   original first (`a`), and, scored as `evaluate` scores a match's edits against
                   edits.jsonl beside the truth file (naming.py), the edits that turn the original
                   into the copy: each made edit named, its parameters right, one named not made
  per kind         of the edited copies of each kind, the share grouped with their original, and
                   of those the share whose group keeps the original

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
from dupcheck.core.models import Edit
from dupcheck_tools.duplicates import DEFAULT_RADIUS, Group, find_duplicates
from dupcheck_tools.duplicates.grouping import KEPT_BY
from dupcheck_tools.evaluation import EDITS_FILE, UsageError, list_files, progress
from dupcheck_tools.evaluation.naming import read_edits, shares, tally

NEGATIVE_KINDS = ("distinct", "colour_variant")
SIBLINGS_NAME = "colour_variant_siblings.csv"  # what make_benchmark.py writes beside truth.csv
IDS_NAME = "ids.csv"  # beside the results: each record's id, file, kind and source
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
    groups: Sequence[Group],
    source_of: Mapping[str, str],
    kind_of: Mapping[str, str],
    siblings: Mapping[str, str],
    kept_by: Sequence[str] | None = None,
    edits: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Pair precision and recall of `groups` against each record's source, whether each group
    keeps its original (`kept_by`: what chose each group's record to keep, the report's `keep_by`)
    and, with `edits` (each copy's steps by its id, edits.jsonl's), whether each pair of an
    original and its copy names the edits made (pure)."""
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
    originals = _originals_kept(groups, kind_of, kept_by)
    for entity, kind in sorted(kind_of.items()):
        if kind in per_kind and entity in group_of and group_of.get(source_of[entity]) == group_of[entity]:
            entry = per_kind[kind]
            entry["original_kept"] = entry.get("original_kept", 0) + int(groups[group_of[entity]].keep.entity_id ==
                                                                         source_of[entity])  # fmt: skip
    for entry in per_kind.values():
        entry["recall"] = entry["grouped_with_original"] / entry["n"]
        grouped = entry["grouped_with_original"]
        entry["original_kept"] = entry.get("original_kept", 0) / grouped if grouped else None
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
        **originals,
        "pair_edits": _pair_edits(groups, source_of, kind_of, edits),
        "per_kind": per_kind,
    }


# Copies that lost or gained what their original shows (a crop, padding, a frame, a badge, text, a
# smaller size, grey): which record is the original is the pictures' to tell, whatever came first.
TELLING = frozenset({"crop_small", "crop_large", "pad_square", "frame", "badge", "watermark", "thumbnail",
                     "grayscale"})  # fmt: skip


def _originals_kept(
    groups: Sequence[Group], kind_of: Mapping[str, str], kept_by: Sequence[str] | None
) -> dict[str, Any]:
    """Of the groups holding an original (a catalog picture), how many keep one: in all, and by
    what chose the record to keep."""
    holding = [i for i, g in enumerate(groups) if any(kind_of[item.entity_id] == "original" for item in g.items)]
    kept = [i for i in holding if kind_of[groups[i].keep.entity_id] == "original"]
    by: dict[str, dict[str, int]] = {}
    if kept_by is not None:
        for i in holding:
            entry = by.setdefault(kept_by[i], {"groups": 0, "original_kept": 0})
            entry["groups"] += 1
            entry["original_kept"] += int(i in kept)
    by_kind: dict[str, dict[str, int]] = {}
    for i in holding:
        for kind in {kind_of[item.entity_id] for item in groups[i].items} - {"original"}:
            entry = by_kind.setdefault(kind, {"groups": 0, "original_kept": 0})
            entry["groups"] += 1
            entry["original_kept"] += int(i in kept)
    telling = [i for i in holding if {kind_of[item.entity_id] for item in groups[i].items} - {"original"} <= TELLING]
    return {
        "groups_with_original": len(holding),
        "original_kept": len(kept),
        "original_kept_share": len(kept) / len(holding) if holding else None,
        "original_kept_by": {name: by[name] for name in KEPT_BY if name in by},
        "original_kept_by_copy_kind": {kind: by_kind[kind] for kind in sorted(by_kind)},
        # The groups whose copies lost or gained what the original shows: the pictures can tell.
        "telling_groups": len(telling),
        "telling_original_kept_share": sum(i in kept for i in telling) / len(telling) if telling else None,
    }


def _pair_edits(
    groups: Sequence[Group], source_of: Mapping[str, str], kind_of: Mapping[str, str],
    edits: Mapping[str, Sequence[Mapping[str, Any]]] | None,
) -> dict[str, Any]:  # fmt: skip
    """The grouped pairs of an original and its copy: how many, the share listing the original
    first, and (with `edits`) how the edits said to turn the original into the copy score against
    the edits made (naming.py's shares, all kinds together)."""
    pairs = [(p.a, p.b, p.edits) for g in groups for p in g.pairs
             if source_of[p.a] == source_of[p.b] and "original" in (kind_of[p.a], kind_of[p.b])]  # fmt: skip
    first = sum(1 for a, _, _ in pairs if kind_of[a] == "original")
    counts: dict[str, dict[str, int]] = {}
    for a, b, named in pairs:
        copy = b if kind_of[a] == "original" else a
        steps = (edits or {}).get(copy)
        if steps is not None:  # listed copy first or with nothing said: no edit of the original named
            said = named if kind_of[a] == "original" and named is not None else ()
            tally(counts, ("all",), steps, [edit.to_dict() for edit in said])
    return {"pairs": len(pairs), "original_first": first / len(pairs) if pairs else None,
            **shares(counts).get("all", {})}  # fmt: skip


def run_duplicate_evaluation(
    catalog: Path, queries: Path, truth_path: Path, out: Path, *, copies: int | None = None,
    radius: int = DEFAULT_RADIUS, far_radius: int | None = None, siblings: Path | None = None,
    same: Path | None = None, algo: str | None = None, workers: int = 0, copies_before: bool = False,
) -> dict[str, Any]:  # fmt: skip
    from dupcheck.bootstrap import build_service
    from dupcheck.core.fingerprint.hashing import DEFAULT_ALGO, PIPELINES, get_pipeline
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
    positives = choose_copies(rows, copies)
    chosen = positives + [r for r in rows if r["kind"] in NEGATIVE_KINDS]
    known_edits = _known_edits(truth_path)
    source_of: dict[str, str] = {}
    kind_of: dict[str, str] = {}
    steps_of: dict[str, Sequence[Mapping[str, Any]]] = {}
    files: list[tuple[str, Path]] = []  # (file stem, file), in the order registered
    for path in list_files(catalog):
        source_of[path.stem], kind_of[path.stem] = path.stem, "original"
        files.append((path.stem, path))
    for row in chosen:
        entity = Path(row["query"]).stem
        if entity in source_of:
            raise UsageError(f"{row['query']}: its id {entity!r} is already in the catalog")
        source_of[entity], kind_of[entity] = row["source"] or entity, row["kind"]
        if row["query"] in known_edits:
            steps_of[entity] = known_edits[row["query"]]
        files.append((entity, queries / row["query"]))
    # Ids numbered with the copies first: registered after their originals, under smaller ids.
    copies_first = [Path(r["query"]).stem for r in positives]
    numbered = copies_first + [stem for stem, _ in files if stem not in set(copies_first)]
    id_of = {stem: f"item-{n}" for n, stem in enumerate(numbered, start=1)}
    if copies_before:  # registered before their originals too: only the pictures can tell
        copied = set(copies_first)
        files = [f for f in files if f[0] in copied] + [f for f in files if f[0] not in copied]
    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    failed: list[dict[str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dupcheck-eval-dups-") as data_dir:
        service = build_service(Settings.from_env({}, data_dir=Path(data_dir)), pipeline=pipeline)
        try:
            for entity, path in progress(files, "index"):
                try:
                    service.registrar.register_bytes(
                        entity_id=id_of[entity], sku=entity, image_url=path.resolve().as_uri(), data=path.read_bytes()
                    )
                except (OSError, DupcheckError) as exc:
                    failed.append({"file": str(path), "error": str(exc)})
                    del source_of[entity], kind_of[entity]
            index_seconds = time.perf_counter() - started
            summary = find_duplicates(service.parts.store, out / "report", source=f"evaluation:{data_dir}",
                                      pipeline=pipeline, radius=radius, far_radius=far_radius, workers=workers,
                                      progress=True, thumbnails=service.parts.thumbnails)  # fmt: skip
        finally:
            close = getattr(service.parts.store, "close", None)
            if callable(close):
                close()
    assert summary.report is not None
    stem_of = {entity_id: stem for stem, entity_id in id_of.items()}
    groups = _groups_of(summary.report, stem_of)
    kept_by = [str(group.get("keep_by", "")) for group in summary.report["groups"]]
    sibling_of = read_siblings(siblings or truth_path.parent / SIBLINGS_NAME)
    result = {
        "algo": pipeline.algo, "radius": radius, "far_radius": summary.far_radius, "copies_per_picture": copies,
        "copies_registered": "before their originals" if copies_before else "after their originals",
        **score(groups, source_of, kind_of, sibling_of, kept_by, steps_of if known_edits else None),
        "failed_files": failed, "index_seconds": round(index_seconds, 1), "duplicates_seconds": summary.elapsed_s,
    }  # fmt: skip
    if listed is not None:
        one_source_of, one_sibling_of = same_pictures(source_of, sibling_of, listed)
        as_one = score(groups, one_source_of, kind_of, one_sibling_of)
        result["same_pictures"] = sorted(sorted(pair) for pair in listed)
        result["with_same"] = {key: as_one[key] for key in WITH_SAME}
    out.mkdir(parents=True, exist_ok=True)
    with (out / IDS_NAME).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("entity_id", "file", "kind", "source"))
        writer.writerows((id_of[stem], str(path), kind_of.get(stem, "failed"), source_of.get(stem, ""))
                         for stem, path in files)  # fmt: skip
    (out / "duplicates-evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "duplicates-evaluation.md").write_text(render_markdown(result))
    return result


def _known_edits(truth_path: Path) -> dict[str, list[dict[str, Any]]]:
    """edits.jsonl beside the truth file (each query's steps), or none."""
    path = truth_path.parent / EDITS_FILE
    if not path.is_file():
        return {}
    try:
        return read_edits(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read edits file {path}: {exc}") from exc


def _groups_of(report: Mapping[str, Any], stem_of: Mapping[str, str]) -> list[Group]:
    """The report's groups, as score() takes them (ids, pairs and their edits matter to it), each
    record by its file stem (`stem_of` its id)."""
    from dupcheck_tools.duplicates.grouping import Pair
    from dupcheck_tools.duplicates.workfile import Listing

    def pair(p: Mapping[str, Any]) -> Pair:
        edits = None if p.get("edits") is None else tuple(Edit.of_dict(e) for e in p["edits"])
        return Pair(stem_of[p["a"]], stem_of[p["b"]], p["distance"], p["match_percent"], edits)

    return [
        Group(
            tuple(Listing(stem_of[entity], "", "", "") for entity in group["items"]),
            tuple(pair(p) for p in group["pairs"]),
            tuple(pair(p) for p in group.get("related", [])),
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
        f"| groups holding an original that keep it | {pct(result['original_kept_share'])} "
        f"({result['original_kept']} of {result['groups_with_original']}) |",
    ]
    for by, entry in result["original_kept_by"].items():
        lines.append(f"| ... the record to keep chosen by {by}: keep the original | "
                     f"{entry['original_kept']} of {entry['groups']} |")  # fmt: skip
    edits = result["pair_edits"]
    lines += [
        f"| pairs of an original and its copy listing the original first | {pct(edits['original_first'])} "
        f"(of {edits['pairs']}) |",
        f"| ... the edits made, named (original to copy) | {pct(edits.get('named'))} |",
        f"| ... named with their parameters right | {pct(edits.get('right'))} |",
        f"| ... pairs naming an edit not made | {pct(edits.get('spurious'))} |",
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
        "| kind | copies | grouped with their original | of those, the original kept |",
        "|---|---|---|---|",
    ]
    for kind, entry in sorted(result["per_kind"].items()):
        lines.append(f"| {kind} | {entry['n']} | {pct(entry['recall'])} | {pct(entry['original_kept'])} |")
    return "\n".join(lines) + "\n"
