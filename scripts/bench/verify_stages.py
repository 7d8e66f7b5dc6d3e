"""Where a new product's check goes: the judging's stages, timed query by query.

verify_alternated.py's set-up (its `judging`: 100 held-out photos judged against 100 indexed,
with their kept pictures), on one core and one BLAS thread as the service runs, each query a
fresh probe, `--rounds` times. The stages are timed by wrapping them (wall clock, inclusive):

    stored views      the candidates' views decoded (views.stored_views, as judge.py calls it)
    coarse alignment  every coarse window of every candidate, upright and turned (_coarse_scores)
    fine judgement    the most alike refined and measured, upright and turned (_judge_aligned)
    query turned      the query's views at each angle the turning tries (Probe._views_at, query_views)
    turning           the turning as a whole: its turned views, alignments and judgements, and
                      the looks its turns ask for (_turned_in_order)
    look              the same-photograph test, wherever it is asked (SamePhotograph.look)
    retrimmed, border the query trimmed otherwise, its borders' turn (Probe.retrimmed, border_turn)

Stages overlap (the turning holds its own share of the others): they say where the time is, not
a sum. Per query, the round with the median time; then the stages' mean over the queries around
the median (the middle 40%: what the median check does) and over all, in ms, with the angles
rendered and the looks made per query.

    .venv/bin/python scripts/bench/verify_stages.py [--rounds 3] [--images ../shared/bench/images]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dupcheck.bootstrap import one_blas_thread
from dupcheck.core.matching import alignment, judge, photograph
from dupcheck.core.stored import views
from scripts.bench.verify_alternated import SHARED, judging

ROOT = Path(__file__).resolve().parents[2]

spent: Counter[str] = Counter()  # ms by stage, for the query being judged
counted: Counter[str] = Counter()


def _timed(owner: Any, name: str, stage: str | None, count: str | None = None) -> None:
    """Replace `owner.name` (a module's function or a class's method) by one that adds its time
    to `spent[stage]` (when given) and 1 to `counted[count]` (when given). The callers look the
    name up when they call it."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if stage:
                spent[stage] += (time.perf_counter() - started) * 1000.0
            if count:
                counted[count] += 1

    setattr(owner, name, timed)


def _timed_generator(owner: Any, name: str, stage: str) -> None:
    """As `_timed`, for a generator function: the time spent making each item it yields."""
    original: Callable[..., Iterator[Any]] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = original(*args, **kwargs)
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                spent[stage] += (time.perf_counter() - started) * 1000.0
            yield item

    setattr(owner, name, timed)


def instrument() -> None:
    _timed(judge, "stored_views", "stored views")
    _timed(alignment, "_coarse_scores", "coarse alignment")
    _timed(alignment, "_judge_aligned", "fine judgement")
    _timed(views.Probe, "_views_at", "query turned", count="angles rendered")
    _timed(views, "query_views", "query turned")
    _timed_generator(alignment, "_turned_in_order", "turning")
    _timed(photograph.SamePhotograph, "look", "look")
    _timed(photograph, "examine", None, count="looks made")
    _timed(views.Probe, "retrimmed", "retrimmed")
    _timed(views.Probe, "border_turn", "border")
    _timed(judge, "_closest_halves", "hash halves")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=Path, default=SHARED)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    one_blas_thread()
    probe, judge_query, queries = judging(args.images)
    instrument()
    photos = queries["new"]
    for data in photos[:5]:  # warm caches before timing
        judge_query(probe(data))
    rounds: list[list[tuple[float, dict[str, float]]]] = [[] for _ in photos]
    for _ in range(args.rounds):
        for i, data in enumerate(photos):
            query = probe(data)
            spent.clear()
            counted.clear()
            started = time.perf_counter()
            judge_query(query)
            total = (time.perf_counter() - started) * 1000.0
            rounds[i].append((total, {**spent, **{k: float(v) for k, v in counted.items()}}))
    chosen = [sorted(r, key=lambda one: one[0])[len(r) // 2] for r in rounds]  # each query's median round
    chosen.sort(key=lambda one: one[0])
    middle = chosen[len(chosen) * 3 // 10 : len(chosen) * 7 // 10]
    stages = sorted({stage for _, found in chosen for stage in found})

    def means(group: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
        out = {"check": round(statistics.mean(total for total, _ in group), 2)}
        out |= {stage: round(statistics.mean(found.get(stage, 0.0) for _, found in group), 2) for stage in stages}
        return out

    result = {
        "queries": len(chosen),
        "rounds": args.rounds,
        "median_ms": round(statistics.median(total for total, _ in chosen), 2),
        "around_the_median": means(middle),
        "all": means(chosen),
    }
    for name in ("around_the_median", "all"):
        print(f"{name}: " + ", ".join(f"{stage} {value}" for stage, value in result[name].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
