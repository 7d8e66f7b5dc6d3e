"""Catalog-wide duplicate groups: every duplicate already in the catalog, in a report a person reads.

    python -m dupcheck duplicates [--out DIR] [--target local|dynamodb] [--resume]

What `python -m dupcheck duplicates` and the notebook run, in four steps:

1. read: the store is read once (a parallel scan on DynamoDB). Each record of the pipeline
   gets the query hashes its picture would get (`HashPipeline.stored_query_codes`); records of
   another pipeline are counted, not compared (`reindex` upgrades them). Everything kept goes
   to the work file (workfile.py), the run's own copy.
2. pair: candidates come from the in-process index, a self-join at a radius
   (`LocalHashIndex.pairs_within`, multi-index hashing): each record's query hashes against
   every stored hash, by the pipeline's judged distance (the closer half for the default), up
   to `radius` bits; each record keeps its `candidate_pool` nearest others, as many as the
   service judges for a query. Never all N^2 pairs. Identical hashes (one picture uploaded many
   times, a placeholder) are joined once. The far band adds each record's nearest candidate
   within `far_radius` of its stored or padded-back hash (large crops, rotations: FAR_RADIUS).
3. verify: each record with candidates is judged against them exactly as find_similar judges
   a query (core/matching's `judge_candidates`), from its stored views and, for a pipeline that
   keeps one beside each record, its kept picture (the query's picture, and the same-photograph
   test of its candidates; copied into the work file for the records with candidates only), in a
   process pool (workers.py); each judged record and its duplicates are saved together, so
   `--resume` goes on from there. A process killed from outside is replaced and its records
   judged again, each alone; a record whose process dies twice is left unjudged, named in the
   report (`not_verified`) with the reason, and the run goes on (worker_pool.py). Every pair
   called a duplicate is judged both ways (a record
   whose candidates lack the one that found it judges it after): what each check names tells
   which record is the original, and what turns it into the other.
4. group: each group is the record to keep (the original, where the pictures show it:
   originals.py) and the records the service called the same picture as it (either direction: a
   record checked against the catalog), grown from the closest pairs first; a pair that does not
   meet that rule is listed beside its groups as related (grouping.py). Written as
   duplicates.json, duplicates.csv and report.html (report.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from dupcheck.adapters.local_index import LocalHashIndex, concatenated_runs, distinct_rows
from dupcheck.core.fingerprint.hashing import HashPipeline, get_pipeline
from dupcheck.core.models import DEFAULT_MARKS, Marks, utc_now
from dupcheck.core.ports import RecordStore, ThumbnailStore
from dupcheck_tools.duplicates.grouping import GROUP_RULE, KEEP_RULE, Group, group_duplicates, registered_order
from dupcheck_tools.duplicates.originals import Looks, looks_of
from dupcheck_tools.duplicates.report import groups_html, report_document, write_reports
from dupcheck_tools.duplicates.workers import (
    Job,
    NotVerified,
    codes_in_worker,
    index_distances,
    init_worker,
    judge,
    judge_in_worker,
    not_verified,
    query_codes,
)
from dupcheck_tools.duplicates.workfile import FORMAT, WORK_NAME, Found, WorkFile
from dupcheck_tools.exit_codes import ExitCode
from dupcheck_tools.worker_pool import RestartingPool, WorkerDied

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

__all__ = [
    "DEFAULT_RADIUS", "GROUP_RULE", "KEEP_RULE", "PHASES", "DuplicatesSummary", "Group", "ProgressListener", "Stop",
    "UsageError", "find_duplicates",
]  # fmt: skip

# Candidates are the records whose judged distance (bits of the pipeline's distance_bits) to a
# record's query hashes is at most this. 7 is the largest radius the substring tables answer
# with one flipped bit per substring (multi-index hashing with 4 substrings per 64-bit half:
# 17 probes a table); radius 8 probes one table of each half at two bits (137 probes: 2.8x the
# probes of 7), 11 all four (8x). docs/lab/evaluation.md ("Catalog-wide duplicates") measures
# what a larger one finds; docs/lab/benchmarks.md what it costs.
DEFAULT_RADIUS = 7
# The far band: copies whose closer half moved further than the radius (large crops, rotations,
# combinations: docs/lab/evaluation.md, "Catalog-wide duplicates") are found by a second join at this
# radius, of the stored and padded-back hashes only (the mirrored one found little for its
# cost), and each record keeps one of them: its nearest, when the whole hash is within
# FAR_WHOLE_MAX bits. Half distances are even (each half is cut at its median), so 10 finds what
# 11 does, for fewer probes. The rest of the far band is look-alikes and chance, too many to
# judge all; a chance pair's other half is as far as two unrelated pictures' (~32 bits), a
# copy's nearer (docs/lab/evaluation.md, "Catalog-wide duplicates").
FAR_RADIUS = 10
FAR_WHOLE_MAX = 34
FAR_PER_RECORD = 1
# The far join costs 6x the radius-7 join's probes, each of which compares N / 65,536 codes: 5-9 s
# more at 100k (the report 48.6 s against 45.1 without it: docs/lab/benchmarks.md), a half hour more at 1M. By
# default it runs up to this many records compared; above, only when asked (`far_radius`).
FAR_BAND_UP_TO = 250_000
READ_BATCH = 1000  # records per batch: query hashes are computed and written a batch at a time
THUMBNAIL_BATCH = 500  # thumbnails per read of the thumbnail store (one request each on S3, in parallel)
JOB_SIZE = 64  # query records per verification job
IN_PROCESS_BELOW = 200  # fewer records to judge than this: no processes to start
IN_PROCESS_JOB = 4  # query records per job judged in this process (what a stop waits for at most)
NAMED = 10  # records not verified named in the run's message (the report lists them all)


PHASES = ("read", "pair", "thumbnails", "verify", "report")  # in the order a run goes through them
# Told as a run goes: (phase, done, total), total None where not known. It may raise Stop.
ProgressListener = Callable[[str, int, int | None], None]


class UsageError(Exception):
    """A run that cannot start as asked (--resume of another run); nothing was changed."""


class Stop(Exception):
    """Raised by a progress listener to stop the run as Ctrl-C would: what was judged is kept,
    and a run with `resume` goes on from there (a server shutting down, a Lambda out of time)."""


@dataclass
class DuplicatesSummary:
    pipeline: str
    radius: int
    out: str
    far_radius: int = 0  # the far band's radius, 0 when it did not run (FAR_RADIUS)
    records: int = 0
    compared: int = 0
    candidates: int = 0
    judged: int = 0  # records judged against their candidates
    judged_back: int = 0  # pairs judged the other way round after (the record found was not the finder's candidate)
    groups: int = 0
    duplicates: int = 0  # records in a group but not the one kept
    pairs: int = 0
    related: int = 0  # duplicate pairs listed beside the groups: not a duplicate of the record kept
    skipped: dict[str, Any] = field(default_factory=dict)
    # Records left unjudged (their process died twice on them): {} when none, else records, entity_ids, message.
    not_verified: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    phases_s: dict[str, float] = field(default_factory=dict)  # read, pair, verify, report
    resumed: bool = False
    interrupted: bool = False
    files: list[str] = field(default_factory=list)
    message: str = ""
    report: dict[str, Any] | None = field(default=None, repr=False)  # duplicates.json, for the notebook
    found: list[Group] = field(default_factory=list, repr=False)  # the groups, with each record's fields

    def groups_html(self, first: int = 10) -> str:
        """The first groups as HTML, pictures and all: what the notebook shows inline."""
        return groups_html(self.found[:first], styled=True)

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.FAILED if self.skipped.get("records") or self.not_verified else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("report", "found")}


def find_duplicates(
    store: RecordStore,
    out: Path,
    *,
    source: str,
    pipeline: HashPipeline | None = None,
    radius: int = DEFAULT_RADIUS,
    far_radius: int | None = None,
    workers: int = 0,
    segments: int = 4,
    resume: bool = False,
    progress: bool = False,
    thumbnails: ThumbnailStore | None = None,
    on_progress: ProgressListener | None = None,
    niceness: int = 0,
    marks: Marks = DEFAULT_MARKS,
) -> DuplicatesSummary:
    """Find every group of duplicates in `store` and write the report files to `out`.

    `source` names the store (a resume must be of the same one); `far_radius`, the far band's
    (FAR_RADIUS): None, FAR_RADIUS up to FAR_BAND_UP_TO records compared and none above; 0, none;
    `workers` 0 = one process per
    CPU; `segments` = parallel scan segments where the store has them; `thumbnails`, where the
    records' thumbnails are kept (None: none, and verification is by the views alone). Ctrl-C or
    SIGTERM (KeyboardInterrupt) stops at the next job, keeping what was judged: run again with
    `resume`. `on_progress` is told each phase's progress (`progress` shows it on stderr) and may
    stop the run the same way (`Stop`); `niceness` lowers the worker processes' CPU priority (a
    server's scan: its requests come first). `marks`: what a mark on the product means (under
    `product`, two records that differ by a print are not a group).
    """
    pipeline = pipeline or get_pipeline()
    started = time.perf_counter()
    summary = DuplicatesSummary(pipeline=pipeline.algo, radius=radius, out=str(out))
    try:  # the index refuses a radius it cannot answer exactly
        LocalHashIndex(pipeline.index_bits).check_radius(radius, _parts(pipeline))
        if far_radius:
            LocalHashIndex(pipeline.index_bits).check_radius(far_radius, _parts(pipeline))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    identity = {"source": source, "pipeline": pipeline.algo, "radius": radius, "far_radius": far_radius,
                "marks": marks.value}  # fmt: skip
    work = _open_work(out, identity, resume)
    phase = _Phases(summary.phases_s)
    processes = _Processes(workers if workers > 0 else (os.cpu_count() or 1), pipeline.algo, work.path, niceness,
                           marks)  # fmt: skip
    bars = _Bars(progress, on_progress)
    finished = False
    try:
        read = work.read_summary()
        summary.resumed = read is not None
        if read is None:
            work.restart_read()
            read = _read(store, work, pipeline, segments, processes, bars)
            work.finish_read(read)
        summary.records, summary.compared = read["records"], read["compared"]
        summary.skipped = _skipped(read)
        phase.done("read")
        if far_radius is None:
            far_radius = FAR_RADIUS if summary.compared <= FAR_BAND_UP_TO else 0
        summary.far_radius = far_radius if far_radius > radius else 0
        paired = work.candidates()  # a resumed run's pairs, kept once found (the step grows with N^2)
        if paired is None:
            paired = _candidates(work, pipeline, radius, bars, summary.far_radius)
            work.save_candidates(*paired)
        owners, candidates, distances = paired
        summary.candidates = len(candidates)
        phase.done("pair")
        if thumbnails is not None and pipeline.keeps_thumbnails and not work.thumbnails_copied():
            _copy_thumbnails(work, thumbnails, pipeline, np.union1d(owners, candidates), bars)
        else:  # none to copy: the step is told done, so the steps a listener counts are always the same
            bars("thumbnails", summary.compared, "rec", initial=summary.compared).close()
        phase.done("thumbnails")
        summary.judged = _verify(work, pipeline, owners, candidates, distances, processes, bars, marks)
        summary.not_verified = _not_verified(work)
        summary.judged_back = _judge_back(work, pipeline, owners, candidates, marks)
        phase.done("verify")
        found = list(work.found())
        in_pairs = {f.query for f in found} | {f.candidate for f in found}
        listings = work.listings(in_pairs)
        looks = _looks(work, pipeline, in_pairs)
        groups = group_duplicates(found, listings, pipeline.distance_bits, looks)
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        document = report_document(
            {"pipeline": pipeline.algo, "marks": marks.value, "records": summary.records, "compared": summary.compared,
             "radius": radius, "far_radius": summary.far_radius, "skipped": summary.skipped,
             **({"not_verified": summary.not_verified} if summary.not_verified else {}),
             "generated_at": utc_now(), "elapsed_s": summary.elapsed_s},
            groups,
        )  # fmt: skip
        report_bar = bars("report", summary.compared, "rec")
        summary.files = [str(path) for path in write_reports(out, document, groups)]
        report_bar.update(summary.compared)  # written: every step ends at the records compared
        report_bar.close()
        summary.report, summary.found = document, groups
        phase.done("report")
        finished = True
    except (KeyboardInterrupt, Stop):
        work.close()
        summary.interrupted = True
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        summary.message = f"interrupted: run again with --resume to go on from {out / WORK_NAME}"
        return summary
    except BaseException:
        work.close()  # kept: --resume goes on from what was saved
        raise
    finally:
        # Whatever stopped the run, no worker process outlives it; a run stopped early kills them
        # rather than waiting for jobs whose results it will not save (a server stopping).
        processes.close(now=not finished)
    work.remove()
    summary.groups = len(groups)
    summary.duplicates = sum(len(g.items) - 1 for g in groups)
    summary.pairs = sum(len(g.pairs) for g in groups)
    summary.related = len({frozenset((p.a, p.b)) for g in groups for p in g.related})  # listed under both groups
    beside = f" ({summary.related} related pairs listed beside them)" if summary.related else ""
    warnings = [m for m in (summary.skipped.get("message"), summary.not_verified.get("message")) if m]
    summary.message = " ".join(warnings) or f"{summary.groups} groups of duplicates in {out}{beside}"
    return summary


class _Phases:
    """Seconds each step took (the summary's `phases_s`; logged with -v)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into, self.started = into, time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = round(now - self.started, 3)
        log.info("duplicates: %s took %.1f s", name, now - self.started)
        self.started = now


def _parts(pipeline: HashPipeline) -> int:
    """How many parts the indexed hash has, of which the judged distance is the closest's."""
    return pipeline.index_bits // pipeline.distance_bits


_BEFORE = {"marks": Marks.PHOTO.value}  # what a work file written before a fact was recorded ran with


def _open_work(out: Path, identity: dict[str, Any], resume: bool) -> WorkFile:
    work = WorkFile(out / WORK_NAME)
    if resume:
        found = work.identity()
        if found is not None and {k: found.get(k, _BEFORE.get(k)) for k in identity} != identity:
            work.close()
            raise UsageError(
                f"{out / WORK_NAME} belongs to another run ({found}); run without --resume to start a new one"
            )
        if found is not None and found.get("format") == FORMAT:
            return work
    work.start(identity)
    return work


# -- 1. read --------------------------------------------------------------------------------------


def _read(
    store: RecordStore, work: WorkFile, pipeline: HashPipeline, segments: int, processes: _Processes, bars: _Bars
) -> dict[str, Any]:
    """Copy every record the pipeline can compare into the work file, counting the others. The
    query hashes of a batch are computed in the worker processes while the next one is read."""
    other: dict[str, int] = {}
    unusable = records = 0
    bar = bars("read", store.approximate_count(), "rec")
    scanned = store.scan(segments)
    batches = iter(lambda: list(islice(scanned, READ_BATCH)), [])
    try:
        first = next(batches, [])
        jobs = ((batch, [(r.hash.data, r.hash_algo, r.features) for r in batch if r.hash_algo in pipeline.reads])
                for batch in chain([first], batches))  # fmt: skip
        # A catalog of one batch is done before a process would have started.
        results = processes.map(
            partial(query_codes, pipeline), codes_in_worker, jobs, use_pool=len(first) == READ_BATCH,
            payload=itemgetter(1), what="query hashing process",
        )  # fmt: skip
        for (batch, _), (codes, usable) in results:
            mine = [record for record in batch if record.hash_algo in pipeline.reads]
            for record in batch:
                if record.hash_algo not in pipeline.reads:
                    other[record.hash_algo] = other.get(record.hash_algo, 0) + 1
            work.add_records([r for r, ok in zip(mine, usable.tolist(), strict=True) if ok], codes[usable])
            unusable += int((~usable).sum())
            records += len(batch)
            bar.update(len(batch))
        bar.total = records  # the store's count was an estimate: the step ends at what was read
        bar.update(0)
    finally:
        close = getattr(scanned, "close", None)
        if callable(close):
            close()  # stops a parallel scan's threads
        bar.close()
    return {"records": records, "compared": work.count(), "other_pipelines": other, "unusable": unusable}


def _not_verified(work: WorkFile) -> dict[str, Any]:
    """The records verification could not judge: how many, their entity_ids, and why."""
    reasons = work.not_verified()
    if not reasons:
        return {}
    listings = work.listings(reasons)
    ids = [listings[p].entity_id for p in sorted(reasons)]
    why = "; ".join(sorted(set(reasons.values())))
    count = "1 record was" if len(ids) == 1 else f"{len(ids)} records were"
    named = ", ".join(ids[:NAMED]) + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")
    return {"records": len(ids), "entity_ids": ids, "reason": why, "message": f"{count} not verified ({named}): {why}"}


def _skipped(read: dict[str, Any]) -> dict[str, Any]:
    """What was read but not compared, and what to do about it."""
    other, unusable = read["other_pipelines"], read["unusable"]
    count = sum(other.values()) + unusable
    if not count:
        return {"records": 0}
    reasons = []
    if other:
        listed = ", ".join(f"{n} of {algo}" for algo, n in sorted(other.items()))
        reasons.append(f"{sum(other.values())} hashed by another pipeline ({listed}): `python -m dupcheck reindex` "
                       "re-hashes them with the current one")  # fmt: skip
    if unusable:
        reasons.append(f"{unusable} without readable verification views: `python -m dupcheck reindex --force` "
                       "or re-adding them stores them again")  # fmt: skip
    message = f"{count} of {read['records']} records were not compared: " + "; ".join(reasons)
    return {"records": count, "other_pipelines": other, "unusable": unusable, "message": message}


# -- 2. pair --------------------------------------------------------------------------------------


def _candidates(
    work: WorkFile, pipeline: HashPipeline, radius: int, bars: _Bars, far_radius: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owners, candidates, distances), sorted by owner, then index distance, then position:
    each record's `candidate_pool` nearest other records whose judged distance to one of its
    query hashes is within `radius`, and, with `far_radius`, its nearest one within that of its
    stored or padded-back hash whose whole hash is within FAR_WHOLE_MAX (the far band, above);
    the distance is the index's (the whole hash, the nearest of the record's query hashes), as
    search reports it to the service."""
    width = pipeline.index_bits // 8
    codes, queries = work.codes(width)
    count = len(codes)
    empty = np.empty(0, dtype=np.int64)
    if count < 2:  # nothing to pair: the step is told done all the same
        bars("pair", count, "rec", initial=count).close()
        return empty, empty, empty
    nearest = pipeline.candidate_pool(1)
    # One entry per distinct hash: a thousand copies of a placeholder are one probe, not a million pairs.
    distinct, members, member_starts = distinct_rows(codes.view("<u8"))
    tie_order = _oldest_first(work, members, member_starts, nearest + 1)
    distinct = distinct.view(np.uint8)
    # Joined: the stored hash and the mirrored and padded query hashes. The padded mirrored one
    # (the last) finds no copy the others miss at radius 7 (docs/lab/evaluation.md, "Catalog-wide
    # duplicates") and would cost a sixth of the join; the distance a candidate is judged at counts it.
    joined = np.concatenate([codes[:, None], queries[:, :2]], axis=1)
    per_record = joined.shape[1]
    unique_rows, rows_by_value, value_starts = distinct_rows(joined.reshape(-1, width).view("<u8"))
    row_of = np.empty(len(rows_by_value), dtype=np.int64)
    row_of[rows_by_value] = np.repeat(np.arange(len(unique_rows)), np.diff(value_starts))
    unique_rows = unique_rows.view(np.uint8)
    # The far band joins the stored and padded-back hashes (0 and 2 of `joined`) at far_radius.
    far_rows = np.zeros(len(unique_rows), dtype=bool)
    if far_radius > radius:
        far = [h for h in _FAR_HASHES if h < per_record]  # a pipeline without query hashes joins its own
        far_rows[row_of.reshape(count, per_record)[:, far].ravel()] = True

    index = LocalHashIndex(pipeline.index_bits)
    index.load_codes(np.arange(len(distinct)), distinct)
    hit_rows, hit_codes, hit_distances = [], [], []
    # Counted in records, as every step is: the share of the distinct hashes joined, of the records.
    bar = bars("pair", count, "rec")

    def joined_rows(n: int) -> None:
        bar.update(count * n // len(unique_rows) - bar.n)

    done = 0
    for chosen, at in ((~far_rows, radius), (far_rows, far_radius)):
        rows = np.flatnonzero(chosen)
        if not len(rows):
            continue
        for found_rows, found_codes, found_distances in index.pairs_within(
            unique_rows[rows], at, _parts(pipeline), nearest=nearest + 1
        ):
            hit_rows.append(rows[found_rows])
            hit_codes.append(found_codes)
            hit_distances.append(found_distances)
            if len(found_rows):
                joined_rows(done + int(found_rows[-1]) + 1)
        done += len(rows)
        joined_rows(done)
    bar.close()
    rows_hit, codes_hit, distances_hit = (
        np.concatenate(parts or [empty]) for parts in (hit_rows, hit_codes, hit_distances)
    )
    if far_rows.any():  # two joins: a row is in one only, and a stable sort keeps its hits nearest first
        by_row = np.argsort(rows_hit, kind="stable")
        rows_hit, codes_hit, distances_hit = rows_hit[by_row], codes_hit[by_row], distances_hit[by_row]
    hit_starts = np.searchsorted(rows_hit, np.arange(len(unique_rows) + 1))
    every_query = np.concatenate([codes[:, None], queries], axis=1).view("<u8")  # (n, hashes, words)
    joined_words = joined.view("<u8")
    code_words = codes.view("<u8")

    owners_out, candidates_out, distances_out = [], [], []
    # Each record expands to at most (nearest + 1)^2 candidates per query hash: chunks bound it.
    step = max(1, 2_000_000 // (per_record * (nearest + 1) ** 2))
    for first in range(0, count, step):
        owners = np.arange(first, min(count, first + step))
        query_rows = row_of[first * per_record : (first + len(owners)) * per_record]
        owner_of_row = np.repeat(owners, per_record)
        owner, code, distance = _expand(owner_of_row, hit_starts[query_rows], hit_starts[query_rows + 1],
                                        codes_hit, distances_hit)  # fmt: skip
        owner, code, distance = _nearest_per_owner(owner, code, distance, nearest + 1)
        # The records holding each code, a few at most: all hold the same hash, so the first
        # by position stand for the others (as the index breaks ties).
        sizes = np.minimum(member_starts[code + 1] - member_starts[code], nearest + 1)
        owner, candidate, distance = _expand(owner, member_starts[code], member_starts[code] + sizes, members, distance,
                                             with_positions=True)  # fmt: skip
        others = candidate != owner
        owner, candidate = owner[others], candidate[others]
        # The distance search would report: the nearest of all the record's query hashes.
        distance = np.bitwise_count(every_query[owner] ^ code_words[candidate][:, None]).sum(axis=2).min(axis=1)
        distance = distance.astype(np.int64)
        if far_radius > radius:
            owner, candidate, distance = _with_far_band(
                owner, candidate, distance,
                _judged_distance(joined_words[owner], code_words[candidate], _parts(pipeline)) > radius, tie_order,
            )  # fmt: skip
        owner, candidate, distance = _nearest_per_owner(owner, candidate, distance, nearest, tie_order)
        owners_out.append(owner)
        candidates_out.append(candidate)
        distances_out.append(distance)
    return np.concatenate(owners_out), np.concatenate(candidates_out), np.concatenate(distances_out)


_FAR_HASHES = (0, 2)  # of the joined hashes: the stored one and the padded-back query hash


def _judged_distance(queries: np.ndarray, codes: np.ndarray, parts: int) -> np.ndarray:
    """The judged distance of each pair: of (n, hashes, words) query words and (n, words) code
    words, the fewest bits any query hash's part (a half for the default pipeline) is from the
    code's same part."""
    bits = np.bitwise_count(queries ^ codes[:, None])
    per_part = bits.reshape(*bits.shape[:2], parts, bits.shape[2] // parts).sum(axis=3)
    return per_part.min(axis=(1, 2)).astype(np.int64)


def _with_far_band(
    owner: np.ndarray, candidate: np.ndarray, distance: np.ndarray, far: np.ndarray, tie_order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs within the radius (not `far`), and of the far ones each owner's FAR_PER_RECORD
    nearest whose whole hash is within FAR_WHOLE_MAX bits (unsorted)."""
    kept = far & (distance <= FAR_WHOLE_MAX)
    far_owner, far_candidate, far_distance = _nearest_per_owner(
        owner[kept], candidate[kept], distance[kept], FAR_PER_RECORD, tie_order
    )
    return (np.concatenate([owner[~far], far_owner]), np.concatenate([candidate[~far], far_candidate]),
            np.concatenate([distance[~far], far_distance]))  # fmt: skip


def _oldest_first(work: WorkFile, members: np.ndarray, starts: np.ndarray, shown: int) -> np.ndarray:
    """Reorder, in place, the records of each hash held by more than `shown` records (one
    picture uploaded many times: a placeholder) in keep order (where the pictures cannot tell: the
    earliest registered, then the id), and return the order candidates at one distance are kept
    in (by position, but those records' positions dealt out in keep order). Only the first
    `shown` of them stand for the hash as candidates; the oldest is then every copy's candidate,
    the record a group of them keeps (grouping.py: each record of a group is the kept one's
    duplicate); by position, each copy would be paired with the same few others and no group of
    them could hold them all."""
    tie_order = np.arange(len(members))
    for run in np.flatnonzero(np.diff(starts) > shown).tolist():
        held = members[starts[run] : starts[run + 1]]
        listings = work.listings(held.tolist())
        oldest = sorted(held.tolist(), key=lambda p: registered_order(listings[p]))
        tie_order[oldest] = np.sort(held)
        members[starts[run] : starts[run + 1]] = oldest
    return tie_order


def _expand(
    keys: np.ndarray, low: np.ndarray, high: np.ndarray, values: np.ndarray, distances: np.ndarray,
    *, with_positions: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """For each key, the entries values[low:high] (with distances[low:high], or, when
    `with_positions`, the key's own distance for each)."""
    counts = high - low
    repeated = np.repeat(keys, counts)
    offsets = concatenated_runs(low, counts)
    if with_positions:
        return repeated, values[offsets], np.repeat(distances, counts)
    return repeated, values[offsets], distances[offsets]


def _nearest_per_owner(
    owner: np.ndarray, other: np.ndarray, distance: np.ndarray, keep: int, tie_order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (owner, other) once at its smallest distance, and only the `keep` nearest others
    of each owner (ties by `other`, or by `tie_order[other]`), sorted by owner, distance, then
    that tie order."""
    if not len(owner):
        return owner, other, distance
    order = np.lexsort((distance, other, owner))
    owner, other, distance = owner[order], other[order], distance[order]
    first = np.r_[True, (owner[1:] != owner[:-1]) | (other[1:] != other[:-1])]
    owner, other, distance = owner[first], other[first], distance[first]
    order = np.lexsort((other if tie_order is None else tie_order[other], distance, owner))
    owner, other, distance = owner[order], other[order], distance[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    rank = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    kept = rank < keep
    return owner[kept], other[kept], distance[kept]


def _copy_thumbnails(
    work: WorkFile, thumbnails: ThumbnailStore, pipeline: HashPipeline, positions: np.ndarray, bars: _Bars
) -> None:
    """The thumbnails of the records with candidates (of the pipeline's own records: older ones
    were made without), into the work file, where verification reads them."""
    copied = work.with_thumbnails()
    todo = [p for p in positions.tolist() if p not in copied]
    # Counted over every record compared: those without candidates need none, done from the start.
    compared = work.count()
    bar = bars("thumbnails", compared, "rec", initial=compared - len(todo))
    try:
        for chunk in _batched(todo, THUMBNAIL_BATCH):
            ids = {pos: entity_id for pos, (entity_id, algo) in work.algos(chunk).items() if algo == pipeline.algo}
            found = thumbnails.get_many(list(ids.values())) if ids else {}
            work.add_thumbnails({pos: found[entity_id] for pos, entity_id in ids.items() if entity_id in found})
            bar.update(len(chunk))
    finally:
        bar.close()
    work.finish_thumbnails()


# -- 3. verify ------------------------------------------------------------------------------------


def _verify(
    work: WorkFile, pipeline: HashPipeline, owners: np.ndarray, candidates: np.ndarray, distances: np.ndarray,
    processes: _Processes, bars: _Bars, marks: Marks,
) -> int:  # fmt: skip
    """Judge every record that has candidates and is not judged yet against all of them, with
    their kept pictures; save each job's result. Returns how many were judged.

    A record whose candidates already called it a duplicate is judged all the same, and its
    candidates given the same-photograph test: each direction of a pair names its own edits,
    which tell which record is the original (originals.py) and what the report says turns the
    one kept into the other. (The first version skipped them, for about half the tests: a pair is a
    duplicate when either direction says so; but the second direction, judged by its views alone,
    named no watermark or badge where find_similar named one, and no edit at all when skipped.)"""
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(owners)] if len(owners) else starts
    done = work.judged()
    todo = [(int(owners[s]), s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
            if int(owners[s]) not in done]  # fmt: skip

    use_pool = len(todo) >= IN_PROCESS_BELOW
    # Judged here, a job is a few records: a stop (the progress listener) is seen within them.
    size = JOB_SIZE if use_pool else min(JOB_SIZE, IN_PROCESS_JOB)

    def jobs() -> Iterator[Job]:
        for chunk in _batched(todo, size):
            yield [(owner, list(zip(candidates[s:e].tolist(), distances[s:e].tolist(), strict=True)))
                   for owner, s, e in chunk]  # fmt: skip

    # Counted over every record compared, as every step is: those without candidates (nothing to
    # judge) and those a resumed run judged before are done from the start.
    compared = work.count()
    bar = bars("verify", compared, "rec", initial=compared - len(todo))
    judged = 0
    try:
        # Judged here (a small catalog: one job), the bar moves record by record, not job by job.
        judged_here = [0]

        def one_judged() -> None:
            judged_here[0] += 1
            bar.update(1)

        local = partial(judge_here, pipeline, work, on_record=one_judged, marks=marks)
        for job, result in processes.map(local, judge_in_worker, jobs(), use_pool=use_pool, on_died=not_verified):
            judged_now: Sequence[Found | NotVerified] = (
                result  # a worker's result holds a NotVerified in a record's place
            )
            found = [item for item in judged_now if isinstance(item, Found)]
            failed = {item.query: item.reason for item in judged_now if isinstance(item, NotVerified)}
            work.save([q for q, _ in job], found, failed)
            bar.update(len(job) - judged_here[0])
            judged_here[0] = 0
            judged += len(job) - len(failed)
    finally:
        bar.close()
    return judged


def _judge_back(
    work: WorkFile, pipeline: HashPipeline, owners: np.ndarray, candidates: np.ndarray, marks: Marks
) -> int:
    """Judge each duplicate pair the other way round where the record found did not have its
    finder among its candidates (the far band keeps each record's nearest; a pool keeps its
    `candidate_pool`): the record as the query, the finder its one candidate. It adds no pair (a
    pair is a duplicate when either direction says so), only the other direction's edits. Judged
    here (a few pairs) and saved at once when done; a run stopped before goes over them again.
    Returns how many were judged."""
    if work.judged_back():
        return 0
    found = {(f.query, f.candidate) for f in work.found()}
    starts = np.searchsorted(owners, np.arange(work.count() + 1)) if len(owners) else None
    back: dict[int, list[int]] = {}
    for query, candidate in sorted(found):
        if (candidate, query) in found:
            continue
        theirs = candidates[starts[candidate] : starts[candidate + 1]] if starts is not None else candidates[:0]
        if query not in theirs.tolist():  # judged by it already: not the same picture that way
            back.setdefault(candidate, []).append(query)
    more: list[Found] = []
    for owner, finders in back.items():
        distances = index_distances(pipeline, work, owner, finders)
        more += judge(pipeline, work, [(owner, list(zip(finders, distances, strict=True)))], marks)
    work.save_judged_back(more)
    return sum(len(finders) for finders in back.values())


def _looks(work: WorkFile, pipeline: HashPipeline, positions: Iterable[int]) -> dict[int, Looks]:
    """What each record's own picture shows (originals.Looks), a batch at a time."""
    found = {}
    for chunk in _batched(sorted(positions), THUMBNAIL_BATCH):
        records = work.records(chunk)
        found.update(looks_of(pipeline, ((p, records[p][0]) for p in chunk), work.thumbnails(chunk)))
    return found


def judge_here(
    pipeline: HashPipeline, work: WorkFile, job: Job, on_record: Callable[[], None] | None = None,
    marks: Marks = DEFAULT_MARKS,
) -> list[Found]:  # fmt: skip
    """`judge` in this process (the name tests replace to interrupt a run). With `on_record`, a
    record at a time, told after each."""
    if on_record is None:
        return judge(pipeline, work, job, marks)
    found: list[Found] = []
    for one in job:
        found += judge(pipeline, work, [one], marks)
        on_record()
    return found


_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class _Processes:
    """The run's worker processes, for one step's jobs at a time (the read's query hashes, then
    verification): `map` starts them for work worth their start-up, yields each job with its
    result, in order, a few jobs ahead, and stops them once the step's jobs are done: idle
    through the pairing (minutes at 1M records), each would keep the memory of its last jobs
    beside the pairing's own (docs/architecture.md, "Worker processes")."""

    def __init__(self, count: int, algo: str, work_path: Path, niceness: int = 0, marks: Marks = DEFAULT_MARKS) -> None:
        self.count, self.algo, self.work_path, self.niceness, self.marks = count, algo, work_path, niceness, marks
        self._pool: RestartingPool | None = None
        self._saved: dict[str, str | None] = {}  # the environment's BLAS settings while the pool lives

    def map(
        self, here: Callable[[Any], R], there: Callable[[Any], R], jobs: Iterable[T], *, use_pool: bool,
        payload: Callable[[T], Any] = lambda job: job, on_died: Callable[[Any, WorkerDied], Any] | None = None,
        what: str = "verification process",
    ) -> Iterator[tuple[T, R]]:  # fmt: skip
        """Each job with the result of `here` (this process) or `there` (a worker: a module
        function) called on the job's `payload`, what is sent to the worker. A process killed from
        outside is replaced and its jobs run again (worker_pool.py). With `on_died`, payloads and
        results are lists (verification's records): a job run again is split into its items, and
        an item whose process died twice, alone, has `on_died(items, error)` for its result.
        Without, a job whose process died twice is done here (the read's: query hashes of stored
        views, a little numpy, not what would need more memory than there is)."""
        if not use_pool or self.count <= 1:
            for job in jobs:
                yield job, here(payload(job))
            return
        pool = self._start(on_died, what)

        def result(job: T, future: Future[R]) -> R:
            try:
                return future.result()
            except WorkerDied:
                if on_died is not None:  # the processes cannot start: the run fails, saying so
                    raise
                log.warning("duplicates: a job whose worker died twice is done in this process")
                return here(payload(job))

        running: deque[tuple[T, Future[R]]] = deque()
        for job in jobs:
            running.append((job, pool.submit(there, payload(job))))
            if len(running) >= 2 * self.count:  # a few ahead keeps every process busy
                done, future = running.popleft()
                yield done, result(done, future)
        while running:
            done, future = running.popleft()
            yield done, result(done, future)
        self.close()

    def _start(self, on_died: Callable[[Any, WorkerDied], Any] | None, what: str) -> RestartingPool:
        # One BLAS thread a process: the pool is already a process per core, and BLAS threads on
        # top (the look-alike check's and the second look's small products) contend with the
        # other processes for the same cores, and the report runs slower (docs/architecture.md).
        # Processes start as jobs come and read these when their numpy loads (this one's is
        # loaded): they stay set while the pool lives.
        self.close()
        self._saved = {name: os.environ.get(name) for name in _BLAS_THREADS}
        os.environ.update(dict.fromkeys(_BLAS_THREADS, "1"))
        self._pool = RestartingPool(partial(
            ProcessPoolExecutor, max_workers=self.count, mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker, initargs=(self.algo, self.work_path, self.niceness, self.marks),
        ), what=what, one_by_one=on_died is not None, on_died=on_died)  # fmt: skip
        return self._pool

    def close(self, *, now: bool = False) -> None:
        """Stop the processes: after their running jobs, or `now`, killing them."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True, kill=now)
            self._pool = None
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _Bars:
    """Each phase's progress: a bar on stderr when shown, and the run's listener when it has one."""

    def __init__(self, show: bool, listener: ProgressListener | None) -> None:
        self.show, self.listener = show, listener

    def __call__(self, phase: str, total: int | None, unit: str, initial: int = 0) -> _Bar:
        return _Bar(phase, self.listener, total=total, initial=initial, unit=unit, desc=phase, disable=not self.show,
                    dynamic_ncols=True)  # fmt: skip


class _Bar(tqdm):  # type: ignore[type-arg]
    """A tqdm bar that counts whether shown or not (a hidden tqdm counts nothing), and tells the
    listener each count."""

    def __init__(self, phase: str, listener: ProgressListener | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase, self.listener = phase, listener
        self._tell()

    def update(self, n: float | None = 1) -> bool | None:
        if self.disable:
            self.n += n or 0
            shown = None
        else:
            shown = super().update(n)
        self._tell()
        return shown

    def _tell(self) -> None:
        if self.listener is not None:
            self.listener(self.phase, int(self.n), None if self.total is None else int(self.total))


def _batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
