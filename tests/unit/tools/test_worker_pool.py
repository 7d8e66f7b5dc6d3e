"""The worker pool that outlives its processes (dupcheck_tools/worker_pool.py): a job that kills
its worker every time fails alone, with WorkerDied, after its second death; every other job,
including those that were beside it, gets its result; processes that cannot start fail every
job rather than restarting forever."""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import psutil
import pytest

from dupcheck_tools.worker_pool import FRUITLESS, RestartingPool, WorkerDied
from dupcheck_tools.worker_process import start_worker
from support.pool_jobs import POISON, cannot_start, pid_after, squares

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
    assert not multiprocessing.active_children()  # the broken pools' other processes were waited for


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


def test_a_worker_leaves_sigterm_and_sigint_to_the_server_and_finishes_its_job() -> None:
    """systemd's stop and a terminal's Ctrl-C signal the whole process group: a pool process must
    not die of them (the server decides when it leaves), so its job ends and no pool restarts."""
    pool = RestartingPool(partial(ProcessPoolExecutor, max_workers=1, mp_context=SPAWN, initializer=start_worker))
    started = pool.submit(pid_after, [0.0]).result()  # the process is up, its initializer run
    running = pool.submit(pid_after, [1.0])
    (worker,) = [p for p in psutil.Process().children() if p.pid == started[0]]
    worker.send_signal(signal.SIGTERM)
    worker.send_signal(signal.SIGINT)
    assert running.result() == started  # the same process finished the job
    pool.shutdown(wait=True)
    assert pool.restarts == 0
