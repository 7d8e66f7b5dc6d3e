"""Evaluate a hash pipeline on a benchmark folder: recall, ranking and false duplicates per kind.

    python -m dupcheck evaluate --catalog DIR --queries DIR --truth FILE --out DIR [--algo NAME] [--top 5]
        [--edits FILE] [--relatives FILE]

Every image in `--catalog` is registered (entity_id = sku = file stem, image_url = file URI) and
every query listed in `--truth` (CSV `query,expected,kind`; `expected` empty: no duplicate
exists) is searched, both through the same `DupcheckService` the API uses, on a throw-away
embedded store. Two optional files the benchmark builder writes beside the truth file are read
when present (or named): `edits.jsonl`, every query's known edits, against which the edits the
matches name are scored (naming.py); `relatives.csv` (`query,relatives`: catalog ids of the same
product in another picture, `;`-separated), which splits held-out pictures into those with and
without a relative in the catalog. Writes to `--out`:

    report.json     {"summary", "per_kind", "rows"}: one row per query with its top matches
    report.md       the summary and per-kind tables
    distances.png   top-1 distance of true pairs vs negative queries
    threshold.png   duplicate precision / recall if a threshold were put on the top-1 distance

Files that fail to decode (catalog or query) and queries missing from `--queries` are counted
and named in the summary; a failed query has no matches (a positive one counts as a miss). The
last stdout line is the summary as one line of JSON.

Metrics are in metrics.py and naming.py, the report files in report.py.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.core.errors import DupcheckError
from dupcheck.core.models import DEFAULT_MARKS
from dupcheck_tools.evaluation.metrics import per_kind, summarise
from dupcheck_tools.evaluation.naming import naming, read_edits
from dupcheck_tools.evaluation.report import write_reports

TRUTH_COLUMNS = ("query", "expected", "kind")
EDITS_FILE, RELATIVES_FILE = "edits.jsonl", "relatives.csv"  # beside the truth file, when the benchmark has them
SOURCE_COLUMN = "source"  # optional: the picture a query was made from (all-pairs groups by it)


class UsageError(Exception):
    pass


def read_truth(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in TRUTH_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: truth CSV lacks column(s) {', '.join(missing)}")
            columns = TRUTH_COLUMNS + ((SOURCE_COLUMN,) if SOURCE_COLUMN in (reader.fieldnames or []) else ())
            rows = [{c: (row.get(c) or "").strip() for c in columns} for row in reader]
    except OSError as exc:
        raise UsageError(f"cannot read truth file: {exc}") from exc
    rows = [r for r in rows if r["query"]]
    if not rows:
        raise UsageError(f"{path}: no queries")
    return rows


def read_relatives(path: Path) -> dict[str, list[str]]:
    """relatives.csv: {query: [catalog ids of the same product in another picture]}."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return {
                row["query"]: [r for r in (row.get("relatives") or "").split(";") if r]
                for row in csv.DictReader(fh)
                if row.get("query")
            }
    except (OSError, KeyError) as exc:
        raise UsageError(f"cannot read relatives file {path}: {exc}") from exc


def _beside(truth_path: Path, given: Path | None, name: str) -> Path | None:
    """An optional benchmark file: as given (it must exist), else beside the truth file if there."""
    if given is not None:
        if not given.is_file():
            raise UsageError(f"not a file: {given}")
        return given
    found = truth_path.parent / name
    return found if found.is_file() else None


def list_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def progress(items: Sequence[Any], desc: str) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True)


def close_service(service: Any) -> None:
    """Close what an evaluation's throw-away service opened: its fetcher's pool, its store."""
    for part in (service.parts.fetcher, service.parts.store):
        close = getattr(part, "close", None)
        if callable(close):
            close()


def evaluate(
    catalog: Path,
    queries: Path,
    truth: Sequence[Mapping[str, Any]],
    *,
    algo: str | None,
    top: int,
    data_dir: Path,
    marks: str = DEFAULT_MARKS.value,
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Index the catalog, run the queries (a mark on the product read as `marks` says); returns
    (facts for the summary, rows, hash bits)."""
    from dupcheck.bootstrap import build_service
    from dupcheck.core.fingerprint.hashing import DEFAULT_ALGO, get_pipeline
    from dupcheck.core.settings import Settings

    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    service = build_service(Settings.from_env({}, data_dir=data_dir, marks=marks), pipeline=pipeline)
    try:
        catalog_failed: list[dict[str, str]] = []
        indexed: set[str] = set()
        started = time.perf_counter()
        for path in progress(list_files(catalog), "index"):
            if path.stem in indexed:
                catalog_failed.append({"file": path.name, "error": f"entity_id {path.stem!r} already indexed"})
                continue
            try:
                service.registrar.register_bytes(
                    entity_id=path.stem, sku=path.stem, image_url=path.resolve().as_uri(), data=path.read_bytes()
                )
                indexed.add(path.stem)
            except DupcheckError as exc:
                catalog_failed.append({"file": path.name, "error": f"{exc.code}: {exc.message}"})
        index_seconds = time.perf_counter() - started

        rows: list[dict[str, Any]] = []
        query_failed: list[dict[str, str]] = []
        started = time.perf_counter()
        for item in progress(list(truth), "query"):
            row: dict[str, Any] = {
                "query": item["query"], "expected": item["expected"], "kind": item["kind"],
                "is_duplicate": False, "top": [], "error": None,
            }  # fmt: skip
            if "relatives" in item:
                row["relatives"] = item["relatives"]
            path = queries / item["query"]
            try:
                result = service.lookups.find_similar_bytes(path.read_bytes(), top)
                row["is_duplicate"] = result.is_duplicate
                row["top"] = [
                    [m.entity_id, m.distance, m.verdict, m.match_percent, m.to_dict()["edits"]] for m in result.matches
                ]
            except OSError as exc:
                row["error"] = f"unreadable: {exc.strerror or exc}"
            except DupcheckError as exc:
                row["error"] = f"{exc.code}: {exc.message}"
            if row["error"]:
                query_failed.append({"file": item["query"], "error": row["error"]})
            rows.append(row)
        query_seconds = time.perf_counter() - started
    finally:
        close_service(service)

    expected_missing = sorted({r["expected"] for r in rows if r["expected"] and r["expected"] not in indexed})
    facts = {
        "algo": pipeline.algo,
        "top": top,
        "catalog_images": len(indexed),
        "catalog_failed": len(catalog_failed),
        "catalog_failed_files": catalog_failed,
        "query_failed": len(query_failed),
        "query_failed_files": query_failed,
        "expected_not_in_catalog": expected_missing,
        "index_seconds": round(index_seconds, 3),
        "query_seconds": round(query_seconds, 3),
    }
    return facts, rows, pipeline.distance_bits


def run_evaluation(
    catalog: Path,
    queries: Path,
    truth_path: Path,
    out: Path,
    *,
    algo: str | None = None,
    top: int = 5,
    edits: Path | None = None,
    relatives: Path | None = None,
    marks: str = DEFAULT_MARKS.value,
) -> dict[str, Any]:
    """Evaluate on a throw-away embedded store (`marks`: the setting a mark on the product is read
    by), write the report files to `out`, return the summary. Raises UsageError for inputs that
    cannot be evaluated."""
    import tempfile

    from dupcheck.core.fingerprint.hashing import PIPELINES

    truth: list[dict[str, Any]] = list(read_truth(truth_path))
    edits_path = _beside(truth_path, edits, EDITS_FILE)
    known_edits = None
    if edits_path is not None:  # read first: a bad file is a usage error, not a failure after the run
        try:
            known_edits = read_edits(edits_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot read edits file {edits_path}: {exc}") from exc
    relatives_path = _beside(truth_path, relatives, RELATIVES_FILE)
    if relatives_path is not None:
        known = read_relatives(relatives_path)
        for item in truth:
            if item["kind"] == "distinct":
                item["relatives"] = known.get(item["query"], [])
    if not queries.is_dir():
        raise UsageError(f"not a folder: {queries}")
    if algo is not None and algo not in PIPELINES:
        raise UsageError(f"unknown hash pipeline {algo!r}; known: {', '.join(PIPELINES)}")
    if not 1 <= top <= 100:
        raise UsageError("--top must be between 1 and 100")
    with tempfile.TemporaryDirectory(prefix="dupcheck-eval-") as data_dir:
        facts, rows, bits = evaluate(catalog, queries, truth, algo=algo, top=top, data_dir=Path(data_dir),
                                     marks=marks)  # fmt: skip
    summary = {**facts, "marks": marks, **summarise(rows)}
    if known_edits is not None:
        summary["edit_naming"] = naming(rows, known_edits)
    write_reports(out, summary, per_kind(rows), rows, bits)
    return summary
