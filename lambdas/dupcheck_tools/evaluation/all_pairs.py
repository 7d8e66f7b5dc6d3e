"""Precision at catalog scale: every catalog picture queried against the catalog it is in.

    python -m dupcheck evaluate --all-pairs --catalog DIR --out DIR [--queries DIR --truth FILE] [--same CSV]
        [--leave-one-out]

The per-query evaluation asks few negatives (held-out pictures, colour variants); a shop's
catalog is thousands of look-alikes, each judged against the 32 candidates closest to it. Here
every picture is registered, then searched with its own bytes through the same service the API
uses, and every other item it calls `duplicate` is counted:

* a **false call** is a duplicate verdict for an item made from another picture; a **false pair**
  is an unordered pair of pictures with a false call either way;
* **judged pairs** are the (query, candidate) pairs that got a verdict, the query's own record
  left out: the false calls per judged pair is the rate that scales to a bigger catalog, where
  each query judges as many candidates, only closer look-alikes;
* **true pairs** (when the catalog holds copies of one picture): ordered pairs of copies of the
  same picture, and the share called duplicate, so precision is measured beside recall.

Which items are copies of one picture: with `--queries` and `--truth`, the catalog grows with
every query file of the per-query benchmark (its copies, held-out pictures and colour variants),
each belonging to the picture of the truth's `source` column (scripts/make_benchmark.py writes
it). `--same` (CSV `a,b`) names pairs of pictures known to be the same one (catalog items, or
the sources a grown catalog's copies were made from): their calls, and their copies', are
listed apart and not counted as false. Writes `all_pairs.json` (summary, every false pair and
every missed true pair) and `all_pairs.md` to `--out`; the summary is returned.

`--leave-one-out` queries each picture against the catalog without its own record (removed for
its query, then saved back as it was), as a new product's picture is asked about. Otherwise the
query's own record passes at once, and verification never turns the query (it turns only when
no candidate passes upright): a look-alike that only a turn lines up, which a new product's
query would be called a duplicate of, is never seen.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dupcheck.core.errors import DupcheckError
from dupcheck.core.models import Verdict
from dupcheck_tools.evaluation import UsageError, close_service, list_files, progress, read_truth


@dataclass(frozen=True, slots=True)
class Picture:
    """One catalog item: its file, its entity id, and the picture it was made from."""

    path: Path
    entity_id: str
    source: str


def catalog_pictures(
    files: Sequence[Path], truth: Sequence[Mapping[str, str]] = (), queries: Path | None = None
) -> list[Picture]:
    """The catalog's files (each its own picture), grown with the truth's query files when given
    (each the picture of its `source`; a positive query's source defaults to its `expected`)."""
    pictures = [Picture(path, path.stem, path.stem) for path in files]
    for row in truth:
        source = row.get("source") or row.get("expected") or ""
        if not source:
            raise UsageError(
                f"truth row {row['query']!r} names no source picture: rebuild the benchmark with "
                "scripts/make_benchmark.py, which writes a source column (the same seed writes the same files)"
            )
        assert queries is not None
        path = queries / row["query"]
        pictures.append(Picture(path, path.stem, source))
    seen: set[str] = set()
    for picture in pictures:
        if picture.entity_id in seen:
            raise UsageError(f"two catalog files would both be entity {picture.entity_id!r}")
        seen.add(picture.entity_id)
    return pictures


def all_pairs_evaluation(
    catalog: Path,
    out: Path,
    *,
    queries: Path | None = None,
    truth: Path | None = None,
    same: Path | None = None,
    algo: str | None = None,
    leave_one_out: bool = False,
) -> dict[str, Any]:
    """`evaluate --all-pairs`: check the inputs, run, write the report files, return the summary."""
    from dupcheck.core.fingerprint.hashing import PIPELINES

    if algo is not None and algo not in PIPELINES:
        raise UsageError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}")
    rows: list[dict[str, str]] = []
    if truth is not None and queries is not None:
        if not queries.is_dir():
            raise UsageError(f"not a folder: {queries}")
        rows = read_truth(truth)
    pictures = catalog_pictures(list_files(catalog), rows, queries)
    same_pictures = read_same(same) if same is not None else None
    return run_all_pairs(pictures, out, algo=algo, same=same_pictures, leave_one_out=leave_one_out)


def read_same(path: Path) -> set[frozenset[str]]:
    """Pairs of entity ids known to be the same picture (CSV with columns a,b)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"a", "b"} <= set(reader.fieldnames or []):
                raise UsageError(f"{path}: the same-picture CSV needs columns a,b")
            return {frozenset((row["a"].strip(), row["b"].strip())) for row in reader if row["a"] and row["b"]}
    except OSError as exc:
        raise UsageError(f"cannot read the same-picture file: {exc}") from exc


def run_all_pairs(
    pictures: Sequence[Picture],
    out: Path,
    *,
    algo: str | None = None,
    same: set[frozenset[str]] | None = None,
    leave_one_out: bool = False,
) -> dict[str, Any]:
    """Register every picture on a throw-away store, query each with its own bytes (without its
    own record, `leave_one_out`), count; write all_pairs.json and all_pairs.md to `out` and
    return the summary."""
    from dupcheck.bootstrap import build_service
    from dupcheck.core.fingerprint.hashing import DEFAULT_ALGO, get_pipeline
    from dupcheck.core.settings import Settings

    same = same or set()
    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    source_of = {p.entity_id: p.source for p in pictures}
    calls: dict[str, list[str]] = {}  # query -> the other items it called duplicate
    judged: dict[str, set[str]] = {}  # query -> the other items it judged
    failed: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="dupcheck-all-pairs-") as data_dir:
        service = build_service(Settings.from_env({}, data_dir=Path(data_dir)), pipeline=pipeline)
        try:
            started = time.perf_counter()
            indexed, entries = [], {}
            for picture in progress(pictures, "index"):
                try:
                    entry = service.records.entry_for(
                        entity_id=picture.entity_id, sku=picture.entity_id,
                        image_url=picture.path.resolve().as_uri(), data=picture.path.read_bytes(),
                    )  # fmt: skip
                    service.records.save(entry)
                    indexed.append(picture)
                    if leave_one_out:
                        entries[picture.entity_id] = entry
                except (OSError, DupcheckError) as exc:
                    failed.append({"file": picture.path.name, "error": str(exc)})
            index_seconds = time.perf_counter() - started
            # Every candidate a query judges comes back with its verdict: `top` is the pool.
            pool = pipeline.candidate_pool(service.parts.default_top)
            started = time.perf_counter()
            for picture in progress(indexed, "query"):
                if leave_one_out:
                    service.records.remove(picture.entity_id)
                try:
                    result = service.lookups.find_similar_bytes(picture.path.read_bytes(), pool)
                finally:
                    if leave_one_out:
                        service.records.save(entries[picture.entity_id])
                others = [m for m in result.matches if m.entity_id != picture.entity_id]
                judged[picture.entity_id] = {m.entity_id for m in others}
                calls[picture.entity_id] = [m.entity_id for m in others if m.verdict is Verdict.DUPLICATE]
            query_seconds = time.perf_counter() - started
        finally:
            close_service(service)
    summary, details = tally(calls, judged, source_of, same)
    summary.update(
        algo=pipeline.algo, candidates_per_query=pool, leave_one_out=leave_one_out, failed=len(failed),
        failed_files=failed,
        index_seconds=round(index_seconds, 3), query_seconds=round(query_seconds, 3),
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "all_pairs.json").write_text(json.dumps({"summary": summary, **details}, indent=2) + "\n", "utf-8")
    (out / "all_pairs.md").write_text(render_markdown(summary, details), "utf-8")
    return summary


def tally(
    calls: Mapping[str, Sequence[str]],
    judged: Mapping[str, set[str]],
    source_of: Mapping[str, str],
    same: set[frozenset[str]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counts of the module docstring from each query's duplicate calls and judged items."""
    false_calls: dict[frozenset[str], list[str]] = {}  # pair -> the queries that made the call
    known: dict[frozenset[str], list[str]] = {}
    for query, called in calls.items():
        for other in called:
            if source_of[other] == source_of[query]:
                continue
            pair = frozenset((query, other))
            pictures = frozenset((source_of[query], source_of[other]))  # copies of a known pair too
            (known if pictures in same else false_calls).setdefault(pair, []).append(query)
    members: dict[str, list[str]] = {}
    for entity_id in calls:
        members.setdefault(source_of[entity_id], []).append(entity_id)
    true_pairs = [(q, c) for group in members.values() for q in group for c in group if q != c]
    missed = [(q, c) for q, c in true_pairs if c not in calls[q]]
    judged_pairs = sum(len(items) for items in judged.values())
    n_false_calls = sum(len(queries) for queries in false_calls.values())
    summary: dict[str, Any] = {
        "pictures": len(calls),
        "distinct_pictures": len(members),
        "judged_pairs": judged_pairs,
        "false_duplicate_calls": n_false_calls,
        "false_duplicate_pairs": len(false_calls),
        "queries_with_a_false_duplicate": len({q for queries in false_calls.values() for q in queries}),
        "false_calls_per_judged_pair": n_false_calls / judged_pairs if judged_pairs else None,
        "known_same_picture_pairs": len(known),
        "true_pairs": len(true_pairs),
        "true_pairs_called_duplicate": len(true_pairs) - len(missed),
        "true_pair_recall": (len(true_pairs) - len(missed)) / len(true_pairs) if true_pairs else None,
    }
    details = {
        "false_pairs": [_pair_entry(pair, queries) for pair, queries in sorted(false_calls.items(), key=_order)],
        "known_same_picture": [_pair_entry(pair, queries) for pair, queries in sorted(known.items(), key=_order)],
        "missed_true_pairs": [{"query": q, "copy": c, "judged": c in judged[q]} for q, c in sorted(missed)],
    }
    return summary, details


def _order(item: tuple[frozenset[str], list[str]]) -> list[str]:
    return sorted(item[0])


def _pair_entry(pair: frozenset[str], queries: list[str]) -> dict[str, Any]:
    a, b = sorted(pair)
    return {"a": a, "b": b, "called_by": sorted(queries)}


def render_markdown(summary: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    rate = summary["false_calls_per_judged_pair"]
    recall = summary["true_pair_recall"]
    own_record = "left out (--leave-one-out)" if summary["leave_one_out"] else "in the catalog"
    lines = [
        f"# dupcheck all-pairs precision: {summary['algo']}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| catalog items (distinct pictures) | {summary['pictures']:,} ({summary['distinct_pictures']:,}) |",
        f"| each query's own record | {own_record} |",
        f"| judged candidate pairs | {summary['judged_pairs']:,} |",
        f"| false duplicate pairs | {summary['false_duplicate_pairs']} |",
        f"| false duplicate calls (queries with one) | {summary['false_duplicate_calls']}"
        f" ({summary['queries_with_a_false_duplicate']}) |",
        f"| false calls per judged pair | {'–' if rate is None else f'{rate:.2e}'} |",
        f"| known same-picture pairs called duplicate (not counted) | {summary['known_same_picture_pairs']} |",
        f"| true pairs called duplicate | {summary['true_pairs_called_duplicate']:,} of {summary['true_pairs']:,}"
        f" ({'–' if recall is None else f'{recall:.2%}'}) |",
    ]
    for title, key in (("False duplicate pairs", "false_pairs"), ("Known same-picture pairs", "known_same_picture")):
        if details[key]:
            lines += ["", f"## {title}", "", "| a | b | called by |", "|---|---|---|"]
            lines += [f"| {e['a']} | {e['b']} | {', '.join(e['called_by'])} |" for e in details[key]]
    return "\n".join(lines) + "\n"
