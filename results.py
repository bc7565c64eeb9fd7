"""What ``salesim.forecast``, ``compare``, ``capacity`` and ``deals`` return: frozen objects
around the document each computes.

Each is made where it is computed (scenarios/forecast.py, compare.py, capacity.py, deals.py)
and reads
as a read-only mapping of its document (``fc["revenue"]``). Every result answers the same
four ways: ``to_dict()`` is the ``--json`` contract (a fresh copy each call), ``tables()``
the polars frames ``--out`` writes (tables.py; ``output_tables()`` names their money and
fraction columns, for the writers), ``to_text()`` the terminal table (report.py) and
``plot()`` a matplotlib ``Figure`` (plots.py). The
backtest's and the dashboard's results (``scenarios.backtest.BacktestResult``,
``scenarios.dashboard.Dashboard``) answer the same four.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.figure import Figure

    from salesim.plots import Currency
    from salesim.tables import Table


class Tabular:
    """``tables()``, the polars frames ``--out`` writes (money to cents), from the result's
    ``output_tables()``: one definition for every result object."""

    def output_tables(self) -> dict[str, Table]:
        raise NotImplementedError

    def tables(self) -> dict[str, pl.DataFrame]:
        from salesim import tables

        return tables.frames(self.output_tables())


@dataclasses.dataclass(frozen=True)
class Document(Tabular, Mapping[str, Any]):
    """A result's JSON document, read-only."""

    document: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "document", MappingProxyType(dict(self.document)))

    def __getitem__(self, key: str) -> Any:
        return self.document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)

    def to_dict(self) -> dict:
        """The ``--json`` document (a copy: changing it changes nothing here)."""
        return copy.deepcopy(dict(self.document))

    @property
    def trials(self) -> int:
        return self.document["trials"]

    @property
    def seed(self) -> int:
        return self.document["seed"]

    @property
    def engine(self) -> str:
        return self.document["engine"]

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self.document.get("notes", ()))


@dataclasses.dataclass(frozen=True)
class Forecast(Document):
    """The quarter forecast (``salesim forecast``): revenue bands, P(quota), weekly bands,
    the open/new pipeline split, wins and per-rep attainment (scenarios/forecast.py)."""

    @property
    def revenue(self) -> dict:
        return dict(self.document["revenue"])

    @property
    def p_quota(self) -> float | None:
        return self.document["p_quota"]

    def output_tables(self) -> dict[str, Table]:
        from salesim import tables

        return tables.forecast_tables(self.to_dict())

    def to_text(self) -> str:
        from salesim import report

        return report.forecast_text(self.to_dict())

    def plot(self, currency: Currency | None = None) -> Figure:
        """Fan chart of cumulative revenue beside the histogram of quarter revenue."""
        from salesim import plots

        return plots.forecast_figure(self.to_dict(), currency)


@dataclasses.dataclass(frozen=True)
class Comparison(Document):
    """Strategies against the baseline, paired by common random numbers
    (``salesim compare``; scenarios/compare.py)."""

    @property
    def best(self) -> str | None:
        return self.document["best"]

    @property
    def strategies(self) -> list[dict]:
        return copy.deepcopy(self.document["strategies"])

    def output_tables(self) -> dict[str, Table]:
        from salesim import tables

        return tables.compare_tables(self.to_dict())

    def to_text(self) -> str:
        from salesim import report

        return report.compare_text(self.to_dict())

    def plot(self, currency: Currency | None = None) -> Figure:
        """Tornado chart: per-trial uplift P10–P90, the mean uplift with its interval."""
        from salesim import plots

        return plots.compare_figure(self.to_dict(), currency)


@dataclasses.dataclass(frozen=True)
class CapacityAnswer(Document):
    """The fewest extra reps, or the starting pipeline coverage, that reach a target with a
    confidence (``salesim capacity``; scenarios/capacity.py). ``start``: the horizon's
    first day (the quarter the chart names)."""

    start: dt.date | None = None

    @property
    def reachable(self) -> bool:
        return self.document["reachable"]

    @property
    def p_target(self) -> float | None:
        return self.document["p_target"]

    def output_tables(self) -> dict[str, Table]:
        from salesim import tables

        return tables.capacity_tables(self.to_dict())

    def to_text(self) -> str:
        from salesim import report

        return report.capacity_text(self.to_dict())

    def plot(self, currency: Currency | None = None) -> Figure:
        """P(target) against the candidates, with the confidence line and the answer."""
        from salesim import plots

        return plots.capacity_figure(self.to_dict(), self.start, currency)


@dataclasses.dataclass(frozen=True)
class DealsView(Document):
    """Every open deal with its P(win) from the forecast's own run, P(win this quarter),
    expected value in the quarter and risk flags, sorted by what moves the quarter most
    (``salesim deals``; scenarios/deals.py)."""

    @property
    def deals(self) -> list[dict]:
        return copy.deepcopy(self.document["deals"])

    def output_tables(self) -> dict[str, Table]:
        from salesim import tables

        return tables.deals_tables(self.to_dict())

    def to_text(self) -> str:
        from salesim import report

        return report.deals_text(self.to_dict())

    def plot(self, currency: Currency | None = None) -> Figure:
        """The deals that move the quarter most: expected value in the quarter beside amount."""
        from salesim import plots

        return plots.deals_figure(self.to_dict(), currency)
