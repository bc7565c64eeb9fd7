"""Killing a forecast leaves no worker behind (docs/scaling.md, "Stopping a run").

A real ``python -m cli forecast --workers 2`` is started, and once its worker processes exist
the parent gets SIGTERM or SIGKILL; within a few seconds none of its children may be left.
Linux only: processes are found by scanning /proc for their parent pid.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salesim.simulator import runner
from salesim.simulator.demo_history import default_truth
from salesim.simulator.model import save

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds processes through Linux's /proc"
)


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, parent pid)`` of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]  # the name may hold spaces
    return state, int(ppid)


def _children(parent: int) -> set[int]:
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None and st[1] == parent:
            out.add(int(name))
    return out


def _workers(parent: int) -> set[int]:
    """The pool's worker processes (not multiprocessing's resource tracker)."""
    return {p for p in _children(parent) if b"spawn_main" in _cmdline(p)}


def _alive(pids: set[int]) -> set[int]:
    """Those not gone and not zombies (a dead child whose new parent has not reaped it)."""
    return {p for p in pids if (st := _stat(p)) is not None and st[0] != "Z"}


def _wait_for(condition, timeout: float, every: float = 0.1):
    """The condition's first true value within ``timeout`` seconds (else its last)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(every)
    return condition()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save(
        default_truth(dt.date(2026, 6, 30), reps=3), tmp_path_factory.mktemp("shutdown") / "m.toml"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_a_forecast_leaves_no_worker(model, sig):
    # The SimPy engine needs no compiling, and a million trials keep it busy far longer
    # than the test waits.
    cmd = [
        sys.executable,
        "-m",
        "salesim",
        "forecast",
        str(model),
        "--reps",
        "3",
        "--trials",
        "1000000",
        "--seed",
        "1",
        "--engine",
        "simpy",
        "--workers",
        "2",
        "--quiet",
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: set[int] = set()
    try:
        # Two workers (and multiprocessing's resource tracker) once the pool is up.
        # Generous bounds: a loaded 2-core CI machine is slow to start and to reap processes;
        # the test asserts that the workers die, not how fast.
        assert _wait_for(lambda: len(_workers(proc.pid)) == 2, 60), "no workers appeared"
        time.sleep(0.5)  # busy with their first chunks
        kids = _children(proc.pid)  # the workers and multiprocessing's tracker
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        assert _wait_for(lambda: not _alive(kids), 30), (
            f"children outlived their parent: {sorted(_alive(kids))}"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(kids | _children(proc.pid)):  # survivors of a failed test
            os.kill(pid, signal.SIGKILL)


def test_an_exception_in_the_parent_stops_the_workers():
    """Leaving a pool on an exception (Ctrl-C, or SIGTERM made SystemExit) does not wait for
    the chunks in flight: the workers are terminated."""
    seen: set[int] = set()

    def interrupt(signum, frame):
        seen.update(_workers(os.getpid()))
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), runner.ProcessExecutor(2) as ex:
            signal.alarm(3)  # workers up and sleeping by then
            for _ in ex.map(_sleep, [60.0] * 4):
                pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len(seen) == 2
    assert _wait_for(lambda: not _alive(seen), 5)
    assert time.monotonic() - start < 15  # not the 60 s of the chunks


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
