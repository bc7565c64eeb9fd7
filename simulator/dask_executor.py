"""Run the runner's chunks of trials on a ``dask.distributed`` cluster (docs/scaling.md).

An executor is what ``simulator.runner.run`` maps its chunk function over. This one submits
each chunk as a task to a cluster's scheduler and yields the results in chunk order, so the
numbers are the same as a local run with the same seed: every chunk carries its own
``SeedSequence`` and the cluster only decides *where* it runs.

dask and distributed are an optional extra (``pip install "salesim[dask]"``); they are
imported only when a ``DaskExecutor`` is made.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator

from .errors import InputError
from .task_order import in_order

SCHEDULER_ENV = "SALESIM_SCHEDULER"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError(
            "the dask executor needs dask and distributed, which are not installed",
            column="--executor",
            expected='pip install "salesim[dask]"',
        ) from None
    return distributed


class DaskExecutor:
    """Chunks as tasks on a cluster: the one at ``address`` (``tcp://host:8786``), or a
    ``LocalCluster`` of ``workers`` single-threaded worker processes when no address is
    given (nor ``SALESIM_SCHEDULER``).

    At most ``in_flight`` chunks (default: four per worker thread) are submitted ahead of the
    one being collected, so a million-trial run holds only a few chunks in memory at once.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        in_flight: int | None = None,
        timeout: float = 30.0,
    ):
        distributed = _distributed()
        address = address or os.environ.get(SCHEDULER_ENV) or None
        self.address = address
        self._cluster = None
        try:
            if address is None:
                self._cluster = distributed.LocalCluster(
                    n_workers=max(1, workers or os.cpu_count() or 1),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",
                )  # not every interface
                self._client = distributed.Client(self._cluster, timeout=timeout)
            else:
                self._client = distributed.Client(address, timeout=timeout)
        except OSError as exc:
            self.close()
            raise InputError(
                f"cannot reach the dask scheduler at {address!r}: {exc}",
                column="--scheduler",
                expected="a running scheduler, e.g. tcp://host:8786",
            ) from None
        threads = sum(self._client.nthreads().values()) or 1
        self.workers = threads
        self.in_flight = in_flight or 4 * threads

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        """``fn(task)`` for every task, on the cluster; results in task order."""
        return in_order(
            lambda task: self._client.submit(fn, task, pure=False), tasks, self.in_flight, _result
        )

    def close(self) -> None:
        client, cluster = getattr(self, "_client", None), self._cluster
        if client is not None:
            client.close()
            self._client = None
        if cluster is not None:
            cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _result(future):
    try:
        return future.result()
    finally:
        future.release()
