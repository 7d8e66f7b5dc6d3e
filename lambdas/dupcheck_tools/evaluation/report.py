"""The evaluation's report files: report.json, report.md and the two plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck_tools.evaluation.metrics import Row, hit_at_1, is_positive, threshold_curve, top1


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
        "distinct_false_duplicate_rate", "colour_variant_false_duplicate_rate", "no_relative_top_different",
        "colour_variant_top_similar", "match_percent_violations", "catalog_failed", "query_failed",
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
    lines += _verdict_tables(summary)
    lines += ["", "![top-1 distances](distances.png)", "", "![threshold sweep](threshold.png)", ""]
    return "\n".join(lines)


def _verdict_tables(summary: Mapping[str, Any]) -> list[str]:
    """The first match's verdict per negative group, match_percent per verdict, edit naming."""
    lines: list[str] = []
    if summary.get("top_verdicts"):
        lines += ["", "## First match's verdict, queries with no duplicate", "",
                  "| group | n | duplicate | similar | different | no match |", "|" + "---|" * 6]  # fmt: skip
        for group, shares in summary["top_verdicts"].items():
            if shares:
                cells = [shares["n"], shares["duplicate"], shares["similar"], shares["different"], shares["none"]]
                lines.append(f"| {group} | " + " | ".join(_fmt(c) for c in cells) + " |")
    spread = {k: v for k, v in (summary.get("match_percent_by_verdict") or {}).items() if v}
    if spread:
        lines += ["", "## match_percent by verdict (every listed match)", "",
                  "| verdict | n | min | 5% | median | 95% | max |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for verdict, s in spread.items():
            cells = [s["n"], s["min"], s["p5"], s["median"], s["p95"], s["max"]]
            lines.append(f"| {verdict} | " + " | ".join(str(c) for c in cells) + " |")
    if summary.get("edit_naming"):
        lines += ["", "## Edits named (first match the right picture, called duplicate)", "",
                  "| kind | queries | named | parameters right | spurious |", "|---|---|---|---|---|"]  # fmt: skip
        for kind, n in summary["edit_naming"].items():
            cells = [n["queries"], n["named"], n["right"], n["spurious"]]
            lines.append(f"| {kind} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


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
