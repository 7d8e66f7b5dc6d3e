"""The local server gives memory back (dupcheck_tools/local/memory.py): malloc_trim once a
spell of work is over: the requests stopped, or no picture decoded for a while."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

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


class Ticks:
    """The server's maintenance pass, once a second, over an IdleTrim: what ran since the last
    pass, and whether a request or a decode is running now."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.trim = IdleTrim(idle_s=2.0, clock=self.clock)
        self.requests = self.pictures = 0

    def __call__(self, seconds: float = 1.0, *, requests: int = 0, pictures: int = 0, answering: bool = False,
                 decoding: bool = False) -> None:  # fmt: skip
        self.clock.now += seconds
        self.requests += requests
        self.pictures += pictures
        self.trim.tick(requests=self.requests, answering=answering, pictures=self.pictures, decoding=decoding)
        if self.trim.worker is not None:
            self.trim.worker.join(timeout=10)  # the trim it may have started


def test_the_trim_runs_once_each_time_the_requests_stop(trims: list[float]) -> None:
    tick = Ticks()
    tick(0)
    tick(10)
    assert trims == []  # no work yet: nothing to give back
    tick(requests=5, answering=True)
    tick(10, requests=4, answering=True)  # a long load: never while it runs
    assert trims == []
    tick()
    assert trims == []  # idle for less than idle_s
    tick(1.5)
    assert len(trims) == 1
    tick(30)
    assert len(trims) == 1  # once per idle spell
    tick(requests=1)  # a request came and went between two ticks
    tick(2.5)
    assert len(trims) == 2


def test_after_pictures_the_trim_runs_while_light_requests_go_on_and_never_while_one_decodes(
    trims: list[float],
) -> None:
    """The web app polls a running import or scan every second: the server is never idle, but
    what a burst of uploads left is given back once no picture has been decoded for 2 s."""
    tick = Ticks()
    for _ in range(10):  # uploads, and the page polling
        tick(requests=3, answering=True, pictures=2, decoding=True)
    tick(requests=1, answering=True)
    assert trims == []  # the last decode 1 s ago
    tick(requests=1, answering=True)
    assert len(trims) == 1  # 2 s after it, a poll being answered meanwhile
    for _ in range(30):
        tick(requests=1, answering=True)
    assert len(trims) == 1  # polls alone: never again while they go on
    tick(3)
    assert len(trims) == 2  # once they stop: what the polls left
    for _ in range(10):  # a long import decoding, no request
        tick(pictures=1, decoding=True)
    assert len(trims) == 2  # its memory is in use: never while it decodes
    tick(pictures=1)  # its job ended
    tick()
    assert len(trims) == 2
    tick()
    assert len(trims) == 3


def test_the_decodes_before_the_server_started_are_not_its_work(trims: list[float]) -> None:
    clock = Clock()
    trim = IdleTrim(idle_s=2.0, clock=clock, pictures=7)  # the process decoded 7 pictures before
    for _ in range(5):
        clock.now += 1
        trim.tick(requests=0, answering=False, pictures=7, decoding=False)
    assert trims == [] and trim.worker is None


def test_a_trim_still_running_is_not_started_again(trims: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """malloc_trim may take most of a second: a second one is not started beside it."""
    release = threading.Event()
    monkeypatch.setattr(memory, "give_back_memory", lambda: (release.wait(10), trims.append(1.0)))
    clock = Clock()
    trim = IdleTrim(idle_s=2.0, clock=clock)
    trim.tick(requests=0, answering=False, pictures=1, decoding=False)
    clock.now += 3
    trim.tick(requests=0, answering=False, pictures=1, decoding=False)
    first = trim.worker
    assert first is not None and first.is_alive()
    trim.tick(requests=0, answering=False, pictures=2, decoding=False)
    clock.now += 3
    trim.tick(requests=0, answering=False, pictures=2, decoding=False)
    assert trim.worker is first  # the first still runs: none started beside it
    release.set()
    first.join(timeout=10)
    trim.tick(requests=0, answering=False, pictures=2, decoding=False)
    assert trim.worker is not first  # then the work it missed is given back
    trim.worker.join(timeout=10)
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
