"""The local server gives memory back (dupcheck_tools/local/memory.py): malloc_trim once the
server goes idle after work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dupcheck.core.pictures import imaging
from dupcheck_tools.local import memory
from dupcheck_tools.local.memory import IdleTrim

on_glibc = pytest.mark.skipif(imaging._GLIBC is None, reason="glibc's malloc_trim is what is tested")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    monkeypatch.setattr(memory, "give_back_memory", lambda: calls.append(1.0))
    return calls


def test_the_trim_runs_once_each_time_the_server_goes_idle_after_work(trims: list[float]) -> None:
    clock = Clock()
    trim = IdleTrim(idle_s=2.0, clock=clock)

    def tick(work_done: int, *, busy: bool) -> None:  # and wait for the trim it may start
        trim.tick(work_done, busy=busy)
        if trim.worker is not None:
            trim.worker.join(timeout=10)

    tick(0, busy=False)
    clock.now += 10
    tick(0, busy=False)
    assert trims == []  # no work yet: nothing to give back
    tick(5, busy=True)
    clock.now += 10
    tick(9, busy=True)  # a long load: never while it runs
    assert trims == []
    clock.now += 1
    tick(9, busy=False)
    assert trims == []  # idle for less than idle_s
    clock.now += 1.5
    tick(9, busy=False)
    assert len(trims) == 1
    clock.now += 30
    tick(9, busy=False)
    assert len(trims) == 1  # once per idle spell
    tick(10, busy=False)  # a request came and went between two ticks
    clock.now += 2.5
    tick(10, busy=False)
    assert len(trims) == 2


@on_glibc
def test_malloc_trim_gives_back_free_memory_that_free_keeps() -> None:
    """100 MB of 4 KB blocks freed under one still in use: glibc keeps them (it returns only the
    top of a heap); give_back_memory(), what the idle trim calls, gives them back."""
    script = textwrap.dedent("""
        import ctypes, re
        from pathlib import Path
        from dupcheck.core.pictures.imaging import _GLIBC as libc, give_back_memory
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        def rss():
            return int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024
        blocks = [libc.malloc(4096) for _ in range(25_600)]
        for block in blocks:
            ctypes.memset(block, 1, 4096)
        pin = libc.malloc(4096)  # above them all: the heap's top stays in use
        for block in blocks:
            libc.free(block)
        freed = rss()
        give_back_memory()
        print(freed, rss())
    """)
    freed, trimmed = map(int, subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                                              text=True).stdout.split())  # fmt: skip
    assert freed - trimmed >= 80, (freed, trimmed)
