"""Which executor runs the chunks of trials: the choice behind ``--executor`` and
``--scheduler`` (docs/scaling.md), made here so a script and the CLI choose alike.

Numbers never depend on it: every chunk has its own seed (runner.py).
"""

from __future__ import annotations

import os
import re

from .errors import InputError

# What dask.distributed.Client takes as an address: [protocol://]host:port, IPv6 in brackets.
_SCHEDULER = re.compile(
    r"(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
    r":(\d{1,5})"
)


def scheduler_address(text: str) -> str:
    """A dask scheduler's address as written (stripped), or an InputError naming it."""
    m = _SCHEDULER.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(1)) <= 65535:
        raise InputError(
            f"cannot read the scheduler address {text!r}",
            column="--scheduler",
            expected="[tcp://]host:port such as tcp://scheduler:8786",
        )
    return text.strip()


def make_executor(
    name: str | None = None, scheduler: str | None = None, workers: int | None = None
):
    """The executor named (``serial``, ``processes``, ``dask``), or a dask one for a
    ``scheduler`` address; None when neither is given (the runner then chooses: serial
    for one worker, else processes). The caller closes it (it is a context manager) and
    scopes it with ``runner.using_executor``."""
    from . import runner

    if scheduler:
        scheduler = scheduler_address(scheduler)
    if scheduler and name not in (None, "dask"):
        raise InputError(
            f"--scheduler needs the dask executor, not {name!r}",
            column="--scheduler",
            expected="--executor dask or no --executor",
        )
    if scheduler or name == "dask":
        from .dask_executor import DaskExecutor

        return DaskExecutor(scheduler, workers)
    if name is not None:
        return runner.EXECUTORS[name](workers or os.cpu_count() or 1)
    return None
