"""Evaluate a hash pipeline on a benchmark folder: recall, ranking and false duplicates per kind.

    python -m dupcheck evaluate --catalog DIR --queries DIR --truth FILE --out DIR [--algo NAME] [--top 5]

Every image in `--catalog` is registered (entity_id = sku = file stem, image_url = file URI) and
every query listed in `--truth` (CSV `query,expected,kind`; `expected` empty: no duplicate
exists) is searched, both through the same `DupcheckService` the API uses, on a throw-away
embedded store. Writes to `--out`:

    report.json     {"summary", "per_kind", "rows"}: one row per query with its top matches
    report.md       the summary and per-kind tables
    distances.png   top-1 distance of true pairs vs negative queries
    threshold.png   duplicate precision / recall if a threshold were put on the top-1 distance

Files that fail to decode (catalog or query) and queries missing from `--queries` are counted
and named in the summary; a failed query has no matches (a positive one counts as a miss). The
last stdout line is the summary as one line of JSON.

Metrics (positive rows: `expected` set; negative rows: `expected` empty):
  recall@1        the top match is the expected entity
  MRR             mean of 1/rank of the expected entity among the returned matches (0 if absent)
  NDCG@5          binary relevance, one relevant id: 1/log2(rank+1) if rank <= 5, else 0
  duplicate recall     the top match is the expected entity AND its verdict is "duplicate"
  duplicate precision  among queries the service calls a duplicate (is_duplicate), the share
                       whose first duplicate match is the expected entity (negatives: wrong)
  false-duplicate rate (negative rows) the share called a duplicate
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.core.errors import DupcheckError

EXIT_OK, EXIT_USAGE = 0, 2
NDCG_K = 5
TRUTH_COLUMNS = ("query", "expected", "kind")
Row = Mapping[str, Any]


# -- metrics: pure functions of result rows ------------------------------------------------------
#
# A row is {"query", "expected", "kind", "is_duplicate", "top": [[entity_id, distance, verdict], ...]}
# (as written to report.json). `expected` is "" (or None) for negative queries.


def is_positive(row: Row) -> bool:
    return bool(row.get("expected"))


def rank_of(row: Row) -> int | None:
    """1-based rank of the expected entity among the row's matches; None if absent or negative."""
    if not is_positive(row):
        return None
    for position, match in enumerate(row.get("top") or [], start=1):
        if match[0] == row["expected"]:
            return position
    return None


def top1(row: Row) -> list[Any] | None:
    top = row.get("top") or []
    return list(top[0]) if top else None


def hit_at_1(row: Row) -> bool:
    return rank_of(row) == 1


def reciprocal_rank(row: Row) -> float:
    rank = rank_of(row)
    return 1.0 / rank if rank else 0.0


def ndcg(row: Row, k: int = NDCG_K) -> float:
    """Binary relevance with exactly one relevant id, so the ideal DCG is 1."""
    rank = rank_of(row)
    return 1.0 / math.log2(rank + 1) if rank and rank <= k else 0.0


def duplicate_hit(row: Row) -> bool:
    """Top-1 is the expected entity and the service called it a duplicate."""
    first = top1(row)
    return hit_at_1(row) and first is not None and first[2] == "duplicate"


def first_duplicate(row: Row) -> str | None:
    for match in row.get("top") or []:
        if match[2] == "duplicate":
            return str(match[0])
    return None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def positive_metrics(rows: Sequence[Row]) -> dict[str, Any]:
    pos = [r for r in rows if is_positive(r)]
    return {
        "n": len(pos),
        "recall_at_1": _mean([float(hit_at_1(r)) for r in pos]),
        "mrr": _mean([reciprocal_rank(r) for r in pos]),
        "ndcg_at_5": _mean([ndcg(r) for r in pos]),
        "duplicate_recall": _mean([float(duplicate_hit(r)) for r in pos]),
    }


def negative_metrics(rows: Sequence[Row]) -> dict[str, Any]:
    neg = [r for r in rows if not is_positive(r)]
    return {"n": len(neg), "false_duplicate_rate": _mean([float(bool(r["is_duplicate"])) for r in neg])}


def duplicate_precision(rows: Sequence[Row]) -> float | None:
    """Among rows called a duplicate, the share whose first duplicate match is the expected id."""
    called = [r for r in rows if r["is_duplicate"]]
    right = [r for r in called if is_positive(r) and first_duplicate(r) == r["expected"]]
    return len(right) / len(called) if called else None


def per_kind(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Metrics per kind: positive ones for rows with `expected`, negative ones for the others."""
    kinds: dict[str, list[Row]] = {}
    for row in rows:
        kinds.setdefault(str(row.get("kind") or ""), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for kind, group in sorted(kinds.items()):
        n_pos = sum(1 for r in group if is_positive(r))
        entry: dict[str, Any] = {"type": "positive" if n_pos == len(group) else "negative" if not n_pos else "mixed"}
        entry["n"] = len(group)
        if n_pos:
            entry.update({k: v for k, v in positive_metrics(group).items() if k != "n"})
        if n_pos < len(group):
            entry.update({k: v for k, v in negative_metrics(group).items() if k != "n"})
        out[kind] = entry
    return out


def summarise(rows: Sequence[Row]) -> dict[str, Any]:
    """The headline metrics over all rows (see the module docstring)."""
    kinds = per_kind(rows)
    pos = positive_metrics(rows)
    worst_kind, worst = None, None
    for kind, entry in kinds.items():
        value = entry.get("recall_at_1")
        if value is not None and (worst is None or value < worst):
            worst_kind, worst = kind, value

    def fdr(kind: str) -> float | None:
        return kinds[kind].get("false_duplicate_rate") if kind in kinds else None

    return {
        "queries": len(rows),
        "positives": pos["n"],
        "negatives": len(rows) - pos["n"],
        "recall_at_1": pos["recall_at_1"],
        "mrr": pos["mrr"],
        "ndcg_at_5": pos["ndcg_at_5"],
        "worst_kind": worst_kind,
        "worst_kind_recall_at_1": worst,
        "duplicate_recall": pos["duplicate_recall"],
        "duplicate_precision": duplicate_precision(rows),
        "false_duplicate_rate": negative_metrics(rows)["false_duplicate_rate"],
        "distinct_false_duplicate_rate": fdr("distinct"),
        "colour_variant_false_duplicate_rate": fdr("colour_variant"),
    }


def threshold_curve(
    rows: Sequence[Row], max_distance: int | None = None
) -> list[tuple[int, float | None, float | None]]:
    """(t, precision, recall) if "duplicate" meant "top-1 distance <= t", for t in 0..max distance.

    A call is right when the top-1 is the expected entity; recall is over positive rows.
    """
    distances = [int(first[1]) for r in rows if (first := top1(r)) is not None]
    if max_distance is None:
        max_distance = max(distances, default=0)
    n_pos = sum(1 for r in rows if is_positive(r))
    curve = []
    for t in range(max_distance + 1):
        called = [r for r in rows if (first := top1(r)) is not None and first[1] <= t]
        right = sum(1 for r in called if hit_at_1(r))
        curve.append((t, right / len(called) if called else None, right / n_pos if n_pos else None))
    return curve


# -- inputs --------------------------------------------------------------------------------------


class UsageError(Exception):
    pass


def read_truth(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in TRUTH_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: truth CSV lacks column(s) {', '.join(missing)}")
            rows = [{c: (row.get(c) or "").strip() for c in TRUTH_COLUMNS} for row in reader]
    except OSError as exc:
        raise UsageError(f"cannot read truth file: {exc}") from exc
    rows = [r for r in rows if r["query"]]
    if not rows:
        raise UsageError(f"{path}: no queries")
    return rows


def list_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _progress(items: Sequence[Any], desc: str) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True)


# -- the run -------------------------------------------------------------------------------------


def evaluate(
    catalog: Path, queries: Path, truth: Sequence[Mapping[str, str]], *, algo: str | None, top: int, data_dir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Index the catalog, run the queries; returns (facts for the summary, rows, hash bits)."""
    from dupcheck.bootstrap import build_service
    from dupcheck.core.hashing import DEFAULT_ALGO, get_pipeline
    from dupcheck.core.settings import Settings

    pipeline = get_pipeline(algo or DEFAULT_ALGO)
    service = build_service(Settings.from_env({}, data_dir=data_dir), pipeline=pipeline)
    try:
        catalog_failed: list[dict[str, str]] = []
        indexed: set[str] = set()
        started = time.perf_counter()
        for path in _progress(list_files(catalog), "index"):
            if path.stem in indexed:
                catalog_failed.append({"file": path.name, "error": f"entity_id {path.stem!r} already indexed"})
                continue
            try:
                service.register_bytes(
                    entity_id=path.stem, sku=path.stem, image_url=path.resolve().as_uri(), data=path.read_bytes()
                )
                indexed.add(path.stem)
            except DupcheckError as exc:
                catalog_failed.append({"file": path.name, "error": f"{exc.code}: {exc.message}"})
        index_seconds = time.perf_counter() - started

        rows: list[dict[str, Any]] = []
        query_failed: list[dict[str, str]] = []
        started = time.perf_counter()
        for item in _progress(list(truth), "query"):
            row: dict[str, Any] = {
                "query": item["query"], "expected": item["expected"], "kind": item["kind"],
                "is_duplicate": False, "top": [], "error": None,
            }  # fmt: skip
            path = queries / item["query"]
            try:
                result = service.find_similar_bytes(path.read_bytes(), top)
                row["is_duplicate"] = result.is_duplicate
                row["top"] = [[m.entity_id, m.distance, m.verdict] for m in result.matches]
            except OSError as exc:
                row["error"] = f"unreadable: {exc.strerror or exc}"
            except DupcheckError as exc:
                row["error"] = f"{exc.code}: {exc.message}"
            if row["error"]:
                query_failed.append({"file": item["query"], "error": row["error"]})
            rows.append(row)
        query_seconds = time.perf_counter() - started
    finally:
        for part in (service.fetcher, service.store):
            close = getattr(part, "close", None)
            if callable(close):
                close()

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
    return facts, rows, pipeline.bits


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(summary: Mapping[str, Any], kinds: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [
        f"# dupcheck evaluation: {summary.get('algo', '')}",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in (
        "catalog_images", "queries", "positives", "negatives", "recall_at_1", "mrr", "ndcg_at_5",
        "worst_kind", "worst_kind_recall_at_1", "duplicate_recall", "duplicate_precision",
        "distinct_false_duplicate_rate", "colour_variant_false_duplicate_rate", "catalog_failed", "query_failed",
    ):  # fmt: skip
        if key in summary:
            lines.append(f"| {key} | {_fmt(summary[key])} |")
    for label, entries in (
        ("catalog", summary.get("catalog_failed_files")),
        ("query", summary.get("query_failed_files")),
    ):
        if entries:
            lines += ["", f"Failed {label} files:", ""] + [f"- `{e['file']}`: {e['error']}" for e in entries]
    positive = {k: v for k, v in kinds.items() if "recall_at_1" in v}
    negative = {k: v for k, v in kinds.items() if "false_duplicate_rate" in v}
    if positive:
        lines += ["", "## Positive kinds (a duplicate exists)", "",
                  "| kind | n | recall@1 | MRR | NDCG@5 | duplicate recall |", "|---|---|---|---|---|---|"]  # fmt: skip
        for kind, e in positive.items():
            cells = [e["n"], e["recall_at_1"], e["mrr"], e["ndcg_at_5"], e["duplicate_recall"]]
            lines.append(f"| {kind} | " + " | ".join(_fmt(c) for c in cells) + " |")
    if negative:
        lines += [
            "",
            "## Negative kinds (no duplicate exists)",
            "",
            "| kind | n | false-duplicate rate |",
            "|---|---|---|",
        ]
        for kind, e in negative.items():
            lines.append(f"| {kind} | {e['n']} | {_fmt(e['false_duplicate_rate'])} |")
    lines += ["", "![top-1 distances](distances.png)", "", "![threshold sweep](threshold.png)", ""]
    return "\n".join(lines)


def plot_distances(rows: Sequence[Row], path: Path, bits: int) -> None:
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state, no display needed

    series: dict[str, list[int]] = {"true pairs (top-1 = expected)": []}
    for row in rows:
        first = top1(row)
        if first is None:
            continue
        if hit_at_1(row):
            series["true pairs (top-1 = expected)"].append(int(first[1]))
        elif not is_positive(row):
            series.setdefault(f"{row.get('kind') or 'negative'} (top-1)", []).append(int(first[1]))
    top_seen = max((d for values in series.values() for d in values), default=0)
    bins = list(range(0, min(bits, top_seen + 2) + 1))
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for label, values in series.items():
        if values:
            ax.hist(values, bins=bins, histtype="step", linewidth=1.8, label=f"{label}, n={len(values)}")
    ax.set_xlabel("Hamming distance of the top-1 match")
    ax.set_ylabel("queries")
    ax.set_title("Top-1 distance: true pairs vs queries with no duplicate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def plot_threshold(rows: Sequence[Row], path: Path) -> None:
    from matplotlib.figure import Figure

    curve = threshold_curve(rows)
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ts = [t for t, _, _ in curve]
    ax.plot(ts, [p if p is not None else math.nan for _, p, _ in curve], marker=".", label="duplicate precision")
    ax.plot(ts, [r if r is not None else math.nan for _, _, r in curve], marker=".", label="duplicate recall")
    ax.set_xlabel("threshold on the top-1 distance (duplicate if distance <= t)")
    ax.set_ylabel("fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Precision / recall vs a top-1 distance threshold")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def write_reports(
    out: Path, summary: dict[str, Any], kinds: dict[str, Any], rows: list[dict[str, Any]], bits: int
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = {"summary": summary, "per_kind": kinds, "rows": rows}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(summary, kinds), encoding="utf-8")
    plot_distances(rows, out / "distances.png", bits)
    plot_threshold(rows, out / "threshold.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, required=True, help="folder of catalog images (entity_id = stem)")
    parser.add_argument("--queries", type=Path, required=True, help="folder holding the query files named in --truth")
    parser.add_argument("--truth", type=Path, required=True, help="CSV query,expected,kind")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.json, report.md and plots")
    parser.add_argument("--algo", default=None, help="hash pipeline (default: the service's default)")
    parser.add_argument("--top", type=int, default=5, help="matches per query (default 5)")


def run(args: argparse.Namespace) -> int:
    try:
        truth = read_truth(args.truth)
        if not args.queries.is_dir():
            raise UsageError(f"not a folder: {args.queries}")
        from dupcheck.core.hashing import PIPELINES

        if args.algo is not None and args.algo not in PIPELINES:
            raise UsageError(f"unknown hash pipeline {args.algo!r}; known: {', '.join(PIPELINES)}")
        if not 1 <= args.top <= 100:
            raise UsageError("--top must be between 1 and 100")
        with tempfile.TemporaryDirectory(prefix="dupcheck-eval-") as data_dir:
            facts, rows, bits = evaluate(
                args.catalog, args.queries, truth, algo=args.algo, top=args.top, data_dir=Path(data_dir)
            )
    except UsageError as exc:
        print(json.dumps({"error": {"code": "invalid_request", "message": str(exc)}}), file=sys.stderr)
        return EXIT_USAGE
    summary = {**facts, **summarise(rows)}
    kinds = per_kind(rows)
    write_reports(args.out, summary, kinds, rows, bits)
    for label, key in (("catalog", "catalog_failed_files"), ("query", "query_failed_files")):
        for entry in summary[key]:
            print(f"warning: {label} file {entry['file']} failed: {entry['error']}", file=sys.stderr)
    if summary["expected_not_in_catalog"]:
        print(f"warning: expected ids not in the catalog: {summary['expected_not_in_catalog']}", file=sys.stderr)
    print(f"wrote {args.out / 'report.json'}, report.md, distances.png, threshold.png")
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return EXIT_OK
