"""The worker pool that outlives its processes (dupcheck_tools/worker_pool.py): a job that kills
its worker every time fails alone, with WorkerDied, after its second death; every other job,
including those that were beside it, gets its result; processes that cannot start fail every
job rather than restarting forever."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import pytest

from dupcheck_tools.worker_pool import FRUITLESS, RestartingPool, WorkerDied
from support.pool_jobs import POISON, cannot_start, squares

SPAWN = multiprocessing.get_context("spawn")


def pool_of(workers: int, **kwargs: object) -> RestartingPool:
    return RestartingPool(partial(ProcessPoolExecutor, max_workers=workers, mp_context=SPAWN), **kwargs)  # type: ignore[arg-type]


def test_the_job_that_kills_its_worker_fails_alone_after_two_deaths_and_the_others_finish() -> None:
    pool = pool_of(2)
    jobs = [[n, n + 1] for n in range(0, 40, 2)]
    jobs[5] = [10, POISON]  # dies beside other jobs, then alone
    futures = [pool.submit(squares, job) for job in jobs]
    pool.shutdown(wait=True)  # waits for the jobs run again too
    for job, future in zip(jobs, futures, strict=True):
        if POISON in job:
            with pytest.raises(WorkerDied, match="died 2 times"):
                future.result()
        else:
            assert future.result() == [n * n for n in job]
    assert pool.restarts == 2  # once beside others, once alone: no innocent job died twice


def test_one_by_one_the_item_that_kills_is_told_from_the_others_of_its_job() -> None:
    died: list[list[int]] = []

    def on_died(items: list[int], error: WorkerDied) -> list[int]:
        died.append(items)
        return [0] * len(items)

    pool = pool_of(1, one_by_one=True, on_died=on_died)
    first = pool.submit(squares, [2, POISON, 3, 4])
    second = pool.submit(squares, [5, 6])
    pool.shutdown(wait=True)
    assert first.result() == [4, 0, 9, 16]  # only the poison's place is the died result
    assert second.result() == [25, 36]
    assert died == [[POISON]]


def test_processes_that_cannot_start_fail_every_job_instead_of_restarting_forever() -> None:
    pool = RestartingPool(partial(ProcessPoolExecutor, max_workers=1, mp_context=SPAWN, initializer=cannot_start))
    futures = [pool.submit(squares, [n]) for n in range(3)]
    pool.shutdown(wait=True)
    for future in futures:
        with pytest.raises(WorkerDied):
            future.result()
    assert pool.restarts <= FRUITLESS  # then it stops starting processes
    with pytest.raises(RuntimeError):
        pool.submit(squares, [1])  # shut down
