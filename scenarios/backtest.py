"""Honest backtests: forecast past quarters from what was known at each cutoff, and score.

For each cutoff the history is cut (``History.as_of``: deals created later are gone, deals
closed later are open again), the model is calibrated on that cut alone, the open pipeline
is rebuilt as it stood, and the simulation forecasts the window that follows. The actual is
what the full history says was won in that window, in total and split into the part won
from deals open at the cutoff and the part from deals created after it. A cutoff whose history
cannot be calibrated on is left out with a note. docs/backtest.md explains the scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
import polars as pl

from salesim.calibrate.health import quarter_end, quarter_start
from salesim.calibrate.history import History, earliest
from salesim.results import Tabular
from salesim.simulator.errors import InputError
from salesim.simulator.model import Model
from salesim.simulator.spec import SimSpec
from salesim.simulator.units import as_date

if TYPE_CHECKING:
    from salesim.simulator.runner import Executor
    from salesim.tables import Table

DEFAULT_TRIALS = 2000
DEFAULT_QUARTERS = 4
NOMINAL_COVERAGE = 0.8  # P10–P90


# --- scoring ---------------------------------------------------------------------------------
def pit(samples, actual: float) -> float:
    """Where ``actual`` falls in the forecast sample: P(X < y) + ½·P(X = y).

    The mid-point convention keeps the PIT centred when the forecast has atoms (zero revenue
    with positive probability, a single deal that either closes or not).
    """
    x = np.asarray(samples, dtype=float)
    return float((np.sum(x < actual) + 0.5 * np.sum(x == actual)) / x.size)


def crps(samples, actual: float) -> float:
    """CRPS of the sample's empirical distribution: E|X − y| − ½·E|X − X'|.

    Uses the sorted-sample identity Σᵢⱼ|xᵢ − xⱼ| = 2·Σᵢ (2i − n − 1)·x₍ᵢ₎ (i = 1…n), so it
    costs a sort. Same unit as the forecast (money); equals |x − y| for a point forecast x.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    i = np.arange(1, n + 1)
    return float(np.mean(np.abs(x - actual)) - np.sum((2 * i - n - 1) * x) / n**2)


def ape(forecast: float | None, actual: float) -> float | None:
    """Absolute percentage error as a fraction; undefined (None) when the actual is 0."""
    if forecast is None or actual == 0:
        return None
    return abs(forecast - actual) / abs(actual)


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def clopper_pearson(successes: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial proportion: the Beta quantiles
    B(α/2; k, n−k+1) and B(1−α/2; k+1, n−k), with 0 at k = 0 and 1 at k = n. Exact, so it
    keeps at least its level on the few folds a backtest has, where approximations do not."""
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


PIT_BINS = 10


def pit_uniformity(pits, bins: int = PIT_BINS) -> dict:
    """Histogram of PITs in ``bins`` equal bins on [0, 1] (a PIT of 1 falls in the last) and
    Pearson's chi-square test of uniformity (``bins`` − 1 degrees of freedom). With fewer
    than about 5·bins folds the expected counts are small and the test has little power."""
    from scipy.stats import chisquare

    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(np.asarray(pits, dtype=float), bins=edges)
    test = chisquare(counts)
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "chi2": float(test.statistic),
        "p_value": float(test.pvalue),
    }


@dataclass(frozen=True)
class Part:
    """A forecast sample of one amount, summarised and scored against its actual."""

    actual: float
    p10: float
    p50: float
    p90: float
    mean: float
    pit: float
    crps: float

    @property
    def covered(self) -> bool:
        return self.p10 <= self.actual <= self.p90

    def to_dict(self) -> dict:
        return {
            "actual": self.actual,
            "p10": self.p10,
            "p50": self.p50,
            "p90": self.p90,
            "mean": self.mean,
            "pit": self.pit,
            "crps": self.crps,
            "covered": self.covered,
        }


def score(samples, actual: float) -> Part:
    """P10, P50, P90, mean, PIT and CRPS of a forecast sample against the actual."""
    x = np.asarray(samples, dtype=float)
    p10, p50, p90 = (float(q) for q in np.quantile(x, [0.1, 0.5, 0.9]))
    return Part(
        actual=float(actual),
        p10=p10,
        p50=p50,
        p90=p90,
        mean=float(x.mean()),
        pit=pit(x, actual),
        crps=crps(x, actual),
    )


def summary(parts: Iterable[Part]) -> dict:
    """Coverage (with its exact 90% interval), mean PIT and mean CRPS over folds."""
    parts = list(parts)
    hits = sum(p.covered for p in parts)
    return {
        "coverage_p10_p90": hits / len(parts),
        "coverage_interval": list(clopper_pearson(hits, len(parts))),
        "mean_pit": float(np.mean([p.pit for p in parts])),
        "crps": float(np.mean([p.crps for p in parts])),
    }


# --- folds -------------------------------------------------------------------------------------
def forecast_window(cutoff: dt.date) -> tuple[dt.date, dt.date]:
    """From the day after ``cutoff`` to the end of that day's calendar quarter.

    A quarter-end cutoff forecasts the whole next quarter; a mid-quarter cutoff forecasts
    the rest of its quarter, as a weekly forecast call does.
    """
    start = cutoff + dt.timedelta(days=1)
    return start, quarter_end(start)


def quarter_cutoffs(history: History, quarters: int) -> list[dt.date]:
    """The last ``quarters`` quarter ends whose following quarter the history fully covers."""
    if quarters < 1:
        raise InputError(f"need at least one quarter, got {quarters}", column="--quarters")
    last = history.last_date
    end = quarter_end(last)
    # the last fully observed quarter ends on or before ``last``
    q = quarter_start(last) - dt.timedelta(days=1) if end > last else end
    out = []
    for _ in range(quarters):
        cutoff = quarter_start(q) - dt.timedelta(days=1)
        out.append(cutoff)
        q = cutoff
    return sorted(out)


EVERY = ("month", "quarter")


def month_end(d: dt.date) -> dt.date:
    first_of_next = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_of_next - dt.timedelta(days=1)


def every_cutoffs(history: History, every: str, quarters: int | None = None) -> list[dt.date]:
    """Every month end (``every="month"``) or quarter end from the first on which an
    opportunity had been created, whose forecast window (``forecast_window``) ends on or
    before the history's last date. With ``quarters``, only the cutoffs whose windows lie in
    the last ``quarters`` whole quarters (``quarter_cutoffs``): 3 per quarter for months, and
    for quarters the same cutoffs as ``quarter_cutoffs`` (less any before the history).
    """
    if every not in EVERY:
        raise InputError(f"unknown period {every!r}", column="--every", expected=" or ".join(EVERY))
    period_end = month_end if every == "month" else quarter_end
    first = earliest(history.opportunities["created"])
    if first is None:
        raise InputError(
            "the history has no opportunities", file=history.source or None, column="--every"
        )
    cutoff = period_end(first)
    if quarters is not None:
        cutoff = max(cutoff, quarter_cutoffs(history, quarters)[0])  # a quarter end: a month end
    last = history.last_date
    out = []
    while forecast_window(cutoff)[1] <= last:
        out.append(cutoff)
        cutoff = period_end(cutoff + dt.timedelta(days=1))
    if not out:
        raise InputError(
            f"no {every} end leaves a forecast window that the history covers "
            f"(it runs from {first} to {last})",
            file=history.source or None,
            column="--every",
            expected=f"a history that covers a whole quarter after its first {every} end",
        )
    return out


def parse_cutoffs(text: str) -> list[dt.date]:
    """The dates of a ``--cutoffs`` text (comma-separated ISO dates)."""
    days = [
        as_date(part.strip(), what="date", column="--cutoffs")
        for part in text.split(",")
        if part.strip()
    ]
    if not days:
        raise InputError(
            "no dates given", column="--cutoffs", expected="dates such as 2026-03-31,2026-06-30"
        )
    return days


def choose_cutoffs(
    history: History,
    *,
    cutoffs: Iterable[dt.date] | None = None,
    every: str | None = None,
    quarters: int | None = None,
) -> list[dt.date]:
    """The cutoffs for the CLI's options: the given dates, ``every_cutoffs`` (optionally
    within the last ``quarters``), or the last ``quarters`` quarter ends (default 4)."""
    if cutoffs is not None:
        for name, value in (("--quarters", quarters), ("--every", every)):
            if value is not None:
                raise InputError(f"give either --cutoffs or {name}, not both", column="--cutoffs")
        return sorted(set(cutoffs))
    if every is not None:
        return every_cutoffs(history, every, quarters)
    return quarter_cutoffs(history, DEFAULT_QUARTERS if quarters is None else quarters)


@dataclass(frozen=True)
class Fold:
    """One cutoff: the forecast of the following window against what was actually won, in
    total (the flat fields) and in two parts: ``open``, won from deals open at the cutoff, and
    ``new``, won from deals created in the window."""

    cutoff: dt.date
    start: dt.date
    end: dt.date
    actual: float
    p10: float
    p50: float
    p90: float
    mean: float
    pit: float
    crps: float
    stage_weighted: float  # Σ open amount × P(win | stage), at the cutoff
    last_quarter: float | None  # won in the previous quarter, scaled to the window
    open_deals: int
    open_pipeline: float
    seed: int
    open: Part
    new: Part
    diagnostics: tuple[str, ...] = ()  # what the history known at the cutoff contradicts

    @property
    def total(self) -> Part:
        return Part(self.actual, self.p10, self.p50, self.p90, self.mean, self.pit, self.crps)

    @property
    def covered(self) -> bool:
        return self.total.covered

    def to_dict(self) -> dict:
        return {
            "cutoff": self.cutoff,
            "start": self.start,
            "end": self.end,
            "actual": self.actual,
            "p10": self.p10,
            "p50": self.p50,
            "p90": self.p90,
            "pit": self.pit,
            "mean": self.mean,
            "crps": self.crps,
            "covered": self.covered,
            "ape_p50": ape(self.p50, self.actual),
            "stage_weighted": self.stage_weighted,
            "last_quarter": self.last_quarter,
            "open_deals": self.open_deals,
            "open_pipeline": self.open_pipeline,
            "seed": self.seed,
            "open": self.open.to_dict(),
            "new": self.new.to_dict(),
            "diagnostics": list(self.diagnostics),
        }


PARTS = ("open", "new")


@dataclass(frozen=True)
class BacktestResult(Tabular):
    folds: tuple[Fold, ...]
    trials: int
    seed: int
    engine: str
    notes: tuple[str, ...] = field(default=())

    @property
    def coverage_p10_p90(self) -> float:
        return float(np.mean([f.covered for f in self.folds]))

    @property
    def coverage_se(self) -> float:
        """Binomial standard error of the coverage if it were nominal (folds independent)."""
        return math.sqrt(NOMINAL_COVERAGE * (1 - NOMINAL_COVERAGE) / len(self.folds))

    @property
    def coverage_interval(self) -> tuple[float, float]:
        """Exact 90% interval of the coverage over these folds (folds independent)."""
        return clopper_pearson(sum(f.covered for f in self.folds), len(self.folds))

    @property
    def mean_pit(self) -> float:
        return float(np.mean([f.pit for f in self.folds]))

    @property
    def pit_histogram(self) -> dict:
        return pit_uniformity([f.pit for f in self.folds])

    @property
    def parts(self) -> dict:
        """``summary`` of the open-pipeline and new-pipeline parts over folds."""
        return {name: summary(getattr(f, name) for f in self.folds) for name in PARTS}

    @property
    def crps(self) -> float:
        return float(np.mean([f.crps for f in self.folds]))

    @property
    def mape_p50(self) -> float | None:
        return _mean(ape(f.p50, f.actual) for f in self.folds)

    @property
    def baselines(self) -> dict:
        out = {}
        for name in ("stage_weighted", "last_quarter"):
            values = [getattr(f, name) for f in self.folds]
            out[name] = {
                "mape": _mean(ape(v, f.actual) for v, f in zip(values, self.folds)),
                # a point forecast's CRPS is its absolute error: comparable with ``crps``
                "crps": _mean(
                    None if v is None else abs(v - f.actual) for v, f in zip(values, self.folds)
                ),
                "values": values,
            }
        return out

    @property
    def diagnostics(self) -> list[str]:
        """What the scores say beyond chance (two standard errors, or an interval that misses
        the nominal value), then what the latest cutoff's history contradicts."""
        n, out = len(self.folds), []
        hits = sum(f.covered for f in self.folds)
        lo, hi = self.coverage_interval
        if not lo <= NOMINAL_COVERAGE <= hi:
            out.append(
                f"bands too {'narrow' if hi < NOMINAL_COVERAGE else 'wide'}: {hits} of "
                f"{n} actuals inside P10–P90 (90%: {lo:.0%}–{hi:.0%}; nominal 80%)"
            )
        se = math.sqrt(1 / 12 / n)
        for what, pits in (
            ("forecasts", [f.pit for f in self.folds]),
            ("the open pipeline's part", [f.open.pit for f in self.folds]),
            ("the new pipeline's part", [f.new.pit for f in self.folds]),
        ):
            m = float(np.mean(pits))
            if abs(m - 0.5) > 2 * se:
                out.append(
                    f"{what} ran {'low' if m > 0.5 else 'high'}: mean PIT {m:.2f} over "
                    f"{n} folds (0.50 ± {se:.2f} if unbiased)"
                )
        if self.pit_histogram["p_value"] < 0.01:
            out.append(
                f"the PITs are not uniform (chi-square p = {self.pit_histogram['p_value']:.3f})"
            )
        latest = self.folds[-1]
        out += [f"at {latest.cutoff}: {d}" for d in latest.diagnostics]
        return out

    def output_tables(self) -> dict[str, Table]:
        """The tables ``--out`` writes (tables.py): each a polars frame with its money and
        fraction columns named."""
        from salesim import report, tables

        return tables.backtest_tables(report.json_safe(self.to_dict()))

    def to_text(self) -> str:
        """The terminal rendering (report.py)."""
        from salesim import report

        return report.backtest_text(report.json_safe(self.to_dict()))

    def plot(self, currency=None):
        """A matplotlib Figure: each fold's band against the actual, and the PIT histogram."""
        from salesim import plots

        return plots.backtest_figure(self, currency)

    def to_dict(self) -> dict:
        return {
            "folds": [f.to_dict() for f in self.folds],
            "coverage_p10_p90": self.coverage_p10_p90,
            "coverage_se": self.coverage_se,
            "coverage_interval": list(self.coverage_interval),
            "crps": self.crps,
            "mape_p50": self.mape_p50,
            "mean_pit": self.mean_pit,
            "pit_histogram": self.pit_histogram,
            "parts": self.parts,
            "baselines": self.baselines,
            "trials": self.trials,
            "seed": self.seed,
            "engine": self.engine,
            "diagnostics": self.diagnostics,
            "notes": list(self.notes),
        }


# --- running -----------------------------------------------------------------------------------
Fit = Callable[[History, dt.date], Model]


def default_fit(history: History, as_of: dt.date) -> Model:
    from salesim.calibrate.fit import calibrate

    return calibrate(history, as_of)


def steady_fit(history: History, as_of: dt.date) -> Model:
    """The pooled model (``salesim backtest --steady``: no quarter effects, clock or tails)."""
    from salesim.calibrate.fit import calibrate

    return calibrate(history, as_of, calendar=False)


def fold_seed(seed: int, cutoff: dt.date) -> int:
    """A fold's seed depends on the run's seed and its own cutoff only, so adding or
    removing other cutoffs never changes a fold's numbers."""
    return int(np.random.SeedSequence([seed, cutoff.toordinal()]).generate_state(1)[0])


def fold_spec(model: Model, known: History, cutoff: dt.date) -> SimSpec:
    """The simulation of ``forecast_window(cutoff)`` from the team and open pipeline as of
    ``cutoff`` (``scenarios.baseline``)."""
    from salesim.scenarios.baseline import baseline_spec

    start, end = forecast_window(cutoff)
    spec = baseline_spec(model, history=known, as_of=cutoff, start=start)
    return dataclasses.replace(spec, days=(end - start).days + 1)


def stage_weighted(model: Model, open_deals: pl.DataFrame) -> float:
    """Σ amount × P(win | current stage), P(win | s) = Π_{k ≥ s} p_k from the model's
    stage conversions (posterior means): the classic weighted pipeline."""
    p = [s.conversion.mean for s in model.stages]
    win_from = {s.name: math.prod(p[i:]) for i, s in enumerate(model.stages)}
    if open_deals.height == 0:
        return 0.0
    weights = [win_from.get(s, 0.0) for s in open_deals["stage"].to_list()]
    return float(np.dot(open_deals["amount"].fill_null(0.0).to_numpy(), weights))


def won_between(
    history: History,
    start: dt.date,
    end: dt.date,
    *,
    created_after: dt.date | None = None,
    created_by: dt.date | None = None,
) -> float:
    """Won with a close date in [start, end], optionally only by deals created after
    ``created_after`` or on or before ``created_by``."""
    o = history.opportunities
    keep = (pl.col("status") == "won") & pl.col("closed").is_between(start, end)
    if created_after is not None:
        keep &= pl.col("created") > created_after
    if created_by is not None:
        keep &= pl.col("created") <= created_by
    return float(o.filter(keep)["amount"].sum())


def last_quarter(history: History, start: dt.date, end: dt.date) -> float | None:
    """What was won in the calendar quarter before ``start``'s, scaled by the share of a
    quarter that the window covers (1 for whole quarters); None before the history starts."""
    prev_end = quarter_start(start) - dt.timedelta(days=1)
    prev_start = quarter_start(prev_end)
    first = earliest(history.opportunities["created"])
    if first is None or prev_start < first:
        return None
    q_days = (quarter_end(start) - quarter_start(start)).days + 1
    share = ((end - start).days + 1) / q_days
    return won_between(history, prev_start, prev_end) * share


def check_window(history: History, cutoff: dt.date) -> None:
    """InputError unless the history covers ``cutoff``'s forecast window to its end."""
    start, end = forecast_window(cutoff)
    if history.last_date < end:
        latest = quarter_cutoffs(history, 1)[0]
        raise InputError(
            f"cutoff {cutoff}: the history ends on {history.last_date}, before "
            f"the forecast window {start} – {end} does",
            file=history.source or None,
            column="--cutoffs",
            expected=f"a quarter-end cutoff on or before {latest}",
        )


class UnfitCutoff(InputError):
    """The history known at a cutoff cannot be calibrated on, or its pipeline not rebuilt
    (too early: nothing created or closed yet). ``reason`` is the error behind it."""

    def __init__(self, cutoff: dt.date, reason: InputError):
        self.cutoff, self.reason = cutoff, reason
        super().__init__(
            f"cutoff {cutoff}: cannot forecast from the history known then: {reason.message}"
        )


def run_fold(
    history: History,
    cutoff: dt.date,
    *,
    trials: int,
    seed: int,
    engine: str,
    fit: Fit = default_fit,
    workers: int | None = 1,
) -> Fold:
    """Cut, calibrate, rebuild the pipeline, simulate and score one cutoff. ``UnfitCutoff``
    when the history known at the cutoff does not allow a forecast; any other error is a
    bug and propagates."""
    from salesim.simulator.runner import run

    check_window(history, cutoff)
    start, end = forecast_window(cutoff)
    try:
        known = history.as_of(cutoff)
        model = fit(known, cutoff)
        spec = fold_spec(model, known, cutoff)
    except InputError as exc:
        raise UnfitCutoff(cutoff, exc) from exc
    s = fold_seed(seed, cutoff)
    t = run(spec, trials, s, engine=engine, workers=workers).totals
    total = score(t["revenue"].to_numpy(), won_between(history, start, end))
    deals = spec.open_pipeline()
    return Fold(
        cutoff=cutoff,
        start=start,
        end=end,
        actual=total.actual,
        p10=total.p10,
        p50=total.p50,
        p90=total.p90,
        mean=total.mean,
        pit=total.pit,
        crps=total.crps,
        stage_weighted=stage_weighted(model, deals),
        last_quarter=last_quarter(history, start, end),
        open_deals=deals.height,
        open_pipeline=float(deals["amount"].sum()),
        seed=s,
        open=score(
            t["revenue_open"].to_numpy(), won_between(history, start, end, created_by=cutoff)
        ),
        new=score(
            t["revenue_new"].to_numpy(), won_between(history, start, end, created_after=cutoff)
        ),
        diagnostics=tuple(model.diagnostics),
    )


def _fold_task(task) -> Fold | str:
    """One fold, or the note that leaves it out: a note travels back from a worker process
    where the exception (built from a cutoff and a reason) would not unpickle."""
    history, cutoff, trials, seed, engine, fit, workers = task
    try:
        return run_fold(
            history, cutoff, trials=trials, seed=seed, engine=engine, fit=fit, workers=workers
        )
    except UnfitCutoff as exc:
        return f"left out: {exc}"


@contextlib.contextmanager
def fold_executor(workers: int | None, fit: Fit, folds: int) -> Iterator[Executor | None]:
    """Where the folds run: on a pool of worker processes (or the caller's executor) when
    there are several folds and several workers, else None: one after another here, each
    fold's simulation then using the workers. Every fold has its own seed, so the numbers
    are the same either way. A ``fit`` defined inside a function cannot be sent to another
    process; its folds run here."""
    from .compare import shared_executor

    if folds > 1 and workers != 1 and _picklable(fit):
        with shared_executor(workers) as pool:
            yield pool
    else:
        yield None


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def backtest(
    history: History,
    cutoffs,
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    engine: str | None = None,
    fit: Fit = default_fit,
    workers: int | None = 1,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Backtest every cutoff (sorted, de-duplicated). ``fit(history_cut, cutoff)`` calibrates
    a model; pass another to separate engine error from calibration error (e.g. the truth
    of demo history). A cutoff whose window runs past the history is an InputError before
    any fold runs; a cutoff that cannot be forecast from the history known then
    (``UnfitCutoff``) is left out with a note, and only if every cutoff is left out is that
    an InputError. ``progress(1)`` is called after each fold."""
    cutoffs = sorted(set(cutoffs))
    if not cutoffs:
        raise InputError(
            "no cutoffs to backtest",
            column="--cutoffs",
            expected="one or more dates, --quarters N or --every month|quarter",
        )
    if trials < 2:
        raise InputError(f"need at least 2 trials, got {trials}", column="--trials")
    for c in cutoffs:
        check_window(history, c)
    from salesim.simulator.runner import default_engine

    engine = engine or default_engine()
    folds: list[Fold] = []
    notes: list[str] = []
    with fold_executor(workers, fit, len(cutoffs)) as pool:
        # Folds on the pool each simulate in their worker; else each fold's run uses them.
        each = 1 if pool is not None else workers
        tasks = ((history, c, trials, seed, engine, fit, each) for c in cutoffs)
        for done in pool.map(_fold_task, tasks) if pool is not None else map(_fold_task, tasks):
            if isinstance(done, Fold):
                folds.append(done)
            else:
                notes.append(done)
            if progress is not None:
                progress(1)
    if not folds:
        raise InputError(
            "no cutoff could be backtested: " + "; ".join(notes),
            file=history.source or None,
            expected="cutoffs late enough that deals had been won and lost",
        )
    zero = [f.cutoff for f in folds if f.actual == 0]
    if zero:
        notes.append(
            "percentage errors leave out folds whose actual is 0: "
            + ", ".join(str(c) for c in zero)
        )
    if any(f.last_quarter is None for f in folds):
        notes.append(
            "last-quarter baseline is undefined where the previous quarter starts "
            "before the history does"
        )
    return BacktestResult(tuple(folds), trials, seed, engine, tuple(notes))
