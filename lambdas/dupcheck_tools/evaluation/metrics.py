"""Detection metrics: pure functions of result rows (as written to report.json).

A row is {"query", "expected", "kind", "is_duplicate", "top": [[entity_id, distance, verdict,
match_percent, edits], ...]} (the last two may be absent), and for a held-out picture whose
product the catalog holds in another picture (benchmark's relatives.csv), "relatives": [ids];
`expected` is "" (or None) for negative queries.

  recall@1        the top match is the expected entity
  MRR             mean of 1/rank of the expected entity among the returned matches (0 if absent)
  NDCG@5          binary relevance, one relevant id: 1/log2(rank+1) if rank <= 5, else 0
  duplicate recall     the top match is the expected entity AND its verdict is "duplicate"
  duplicate precision  among queries the service calls a duplicate (is_duplicate), the share
                       whose first duplicate match is the expected entity (negatives: wrong)
  false-duplicate rate (negative rows) the share called a duplicate
  top verdicts    (negative rows) the share whose first match is a duplicate, similar or different
                  (or that has no match); held-out pictures apart by whether a relative is indexed
  match-percent violations  rows whose matches are not in non-increasing match_percent order, or
                  where a duplicate does not score above every other verdict
  match percent by verdict  the spread of match_percent of every listed match, per verdict
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

NDCG_K = 5
Row = Mapping[str, Any]


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


VERDICTS = ("duplicate", "similar", "different")
NO_RELATIVE, WITH_RELATIVE = "distinct, no relative", "distinct, with a relative"


def top_verdicts(rows: Sequence[Row]) -> dict[str, float] | None:
    """n, and the shares of rows whose first match has each verdict ("none": no match at all)."""
    if not rows:
        return None
    firsts = [first[2] if (first := top1(r)) is not None else "none" for r in rows]
    return {"n": len(firsts), **{v: firsts.count(v) / len(firsts) for v in (*VERDICTS, "none")}}


def negative_groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Negative rows by kind; held-out pictures also by whether the catalog holds a relative
    (the same product in another picture), when the benchmark says."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if is_positive(r):
            continue
        groups.setdefault(str(r.get("kind") or ""), []).append(r)
        if r.get("kind") == "distinct" and "relatives" in r:
            groups.setdefault(WITH_RELATIVE if r["relatives"] else NO_RELATIVE, []).append(r)
    return groups


def percent_violations(row: Row) -> bool:
    """The row's matches are not in non-increasing match_percent order, or a duplicate does not
    score above every other verdict."""
    listed = [m for m in row.get("top") or [] if len(m) > 3]
    percents = [float(m[3]) for m in listed]
    if any(later > earlier for earlier, later in zip(percents, percents[1:], strict=False)):
        return True
    duplicates = [float(m[3]) for m in listed if m[2] == "duplicate"]
    others = [float(m[3]) for m in listed if m[2] != "duplicate"]
    return bool(duplicates and others and min(duplicates) <= max(others))


def percent_by_verdict(rows: Sequence[Row]) -> dict[str, dict[str, float] | None]:
    """min, 5th percentile, median, 95th percentile and max of match_percent per verdict, over
    every listed match."""
    out: dict[str, dict[str, float] | None] = {}
    for verdict in VERDICTS:
        values = sorted(float(m[3]) for r in rows for m in r.get("top") or [] if len(m) > 3 and m[2] == verdict)
        if not values:
            out[verdict] = None
            continue

        def at(share: float, values: list[float] = values) -> float:
            return values[min(len(values) - 1, int(share * len(values)))]

        out[verdict] = {"n": len(values), "min": values[0], "p5": at(0.05), "median": at(0.5), "p95": at(0.95),
                        "max": values[-1]}  # fmt: skip
    return out


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
            entry["top_verdicts"] = top_verdicts([r for r in group if not is_positive(r)])
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

    negatives = {kind: top_verdicts(group) for kind, group in negative_groups(rows).items()}

    def share(kind: str, verdict: str) -> float | None:
        found = negatives.get(kind)
        return found[verdict] if found else None

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
        "no_relative_top_different": share(NO_RELATIVE, "different"),
        "colour_variant_top_similar": share("colour_variant", "similar"),
        "top_verdicts": negatives,
        "match_percent_violations": sum(percent_violations(r) for r in rows),
        "match_percent_by_verdict": percent_by_verdict(rows),
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
