"""The duplicate report's work in this process or in a pool of them: the query hashes of the
records read, and the verification of candidate pairs.

A job is a batch of query records, each with its candidates (work-file positions and index
distances, nearest first). Each query record becomes the query the service would make of its
picture (`HashPipeline.stored_query`) and is judged against its candidates by `judge`, with the
judging find_similar uses (`judge_candidates`, a mark on the product read as the run's `marks`
says); only the duplicates come back, or, for a record
whose process died twice while judging it alone, `NotVerified` (`not_verified`, the pool's
on_died). A worker needs the
pipeline and the work file, which it opens read-only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from dupcheck.core.fingerprint.hashing import HashPipeline, get_pipeline
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.models import DEFAULT_MARKS, HashRecord, HashValue, Marks, Verdict
from dupcheck_tools.duplicates.workfile import Found, WorkFile
from dupcheck_tools.worker_pool import WorkerDied
from dupcheck_tools.worker_process import start_worker

# (query position, [(candidate position, index distance)])
Job = Sequence[tuple[int, Sequence[tuple[int, int]]]]

NOT_VERIFIED = (
    "its verification process died twice while judging it, the second time alone (killed from outside: most "
    "likely out of memory); its pairs with records that called it a duplicate are in the report, the others are "
    "not: run the scan again when more memory is free"
)


@dataclass(frozen=True, slots=True)
class NotVerified:
    """A query record of a job left unjudged, and why: what a job's result holds in its place."""

    query: int
    reason: str


def not_verified(job: Job, _: WorkerDied) -> list[NotVerified]:
    """The result of a job (one record, split from its job by the pool) whose process died twice on it."""
    return [NotVerified(query, NOT_VERIFIED) for query, *_ in job]


_state: tuple[HashPipeline, WorkFile, Marks] | None = None


def init_worker(algo: str, work_path: Path, niceness: int = 0, marks: Marks = DEFAULT_MARKS) -> None:
    """Runs once per worker process; `niceness` lowers its CPU priority (a server's scan)."""
    global _state
    start_worker()
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    _state = get_pipeline(algo), WorkFile(work_path, read_only=True), marks


def judge_in_worker(job: Job) -> list[Found]:
    assert _state is not None, "init_worker did not run"
    pipeline, work, marks = _state
    return judge(pipeline, work, job, marks)


# What the query hashes of a record need: its hash, hash_algo and features. Sent to a worker
# as plain tuples: pickling whole records cost the reading process more than the rest of a read.
Hashable = tuple[bytes, str, Mapping[str, bytes]]


def codes_in_worker(batch: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    assert _state is not None, "init_worker did not run"
    return query_codes(_state[0], batch)


def query_codes(pipeline: HashPipeline, batch: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """stored_query_codes of the records (as `Hashable` tuples) of `batch`."""
    return pipeline.stored_query_codes(
        [HashRecord("", "", "", HashValue(data), algo, features=features) for data, algo, features in batch]
    )


def _kept(thumbnails: Mapping[str, bytes], entity_ids: Sequence[str]) -> dict[str, bytes]:
    return {i: thumbnails[i] for i in entity_ids if i in thumbnails}


def judge(pipeline: HashPipeline, work: WorkFile, job: Job, marks: Marks = DEFAULT_MARKS) -> list[Found]:
    """The duplicates each query record of `job` finds among its candidates, a mark on the
    product read as `marks` says (under `product`, another print is not a duplicate)."""
    positions = {q for q, _ in job} | {c for _, candidates in job for c, _ in candidates}
    records = work.records(positions)
    kept = work.thumbnails(positions)
    by_id = {records[p][0].entity_id: data for p, data in kept.items()}
    width = pipeline.index_bits // 8
    found = []
    for position, candidates in job:
        record, packed = records[position]
        query = pipeline.stored_query(record, _hashes(packed, width), kept.get(position, b""))
        if query is None:  # the read kept only records that make a query
            continue
        # The same-photograph test compares the query's picture with the candidates' kept ones:
        # a record without its own has no picture to compare, and is judged by its views alone
        # (as the service judges a candidate without one).
        thumbnails = partial(_kept, by_id) if position in kept else None
        judged = judge_candidates(
            pipeline, query, [(records[c][0], distance) for c, distance in candidates], thumbnails, marks
        )
        for (candidate, _), judgement in zip(candidates, judged, strict=True):
            if judgement.verdict is Verdict.DUPLICATE:
                # Found the other way round (the candidate is the copy): as the candidate's own
                # check would find it, its edits turning this record into the candidate.
                asked, other = (candidate, position) if judgement.reverse else (position, candidate)
                found.append(Found(asked, other, judgement.distance, judgement.score, judgement.edits))
    return found


def index_distances(pipeline: HashPipeline, work: WorkFile, query: int, candidates: Sequence[int]) -> list[int]:
    """The distance the index would report for each candidate of `query` (work-file positions):
    the bits between the candidate's stored hash and the nearest of the query's hashes (its
    stored one and its query hashes), as the pairing measures it."""
    records = work.records([query, *candidates])
    width = pipeline.index_bits // 8
    stored, packed = records[query]
    mine = [stored.hash.data, *(h.data for h in _hashes(packed, width))]
    return [min(_bits(code, records[c][0].hash.data) for code in mine) for c in candidates]


def _hashes(packed: bytes, width: int) -> tuple[HashValue, ...]:
    return tuple(HashValue(packed[i : i + width]) for i in range(0, len(packed), width))


def _bits(one: bytes, other: bytes) -> int:
    return (int.from_bytes(one, "big") ^ int.from_bytes(other, "big")).bit_count()
