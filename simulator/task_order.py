"""Results of submitted tasks, in task order, with a bounded number in flight.

Shared by the process executor (simulator/runner.py) and the dask one
(simulator/dask_executor.py); a module of its own so that the runner, which imports the dask
executor when asked for, is not imported back by it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator


def in_order(
    submit: Callable, tasks: Iterable, ahead: int, result: Callable = lambda future: future.result()
) -> Iterator:
    """``result(submit(task))`` for every task, in task order, with at most ``ahead`` tasks
    submitted and not yet collected: tasks are drawn from the iterable only as results are
    taken, so neither the tasks nor their results pile up however many there are."""
    pending: deque = deque()
    for task in tasks:
        pending.append(submit(task))
        if len(pending) >= ahead:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())
