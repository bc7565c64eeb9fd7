"""The quarter forecast behind ``salesim forecast``: run the baseline, summarise the bands.

``forecast`` returns a ``Forecast`` (salesim/results.py) around its document: the JSON
contract (``trials``, ``seed``, ``engine``, ``quota``, ``revenue``, ``p_quota``,
``p_quota_interval``, ``weekly``, ``by_origin``, ``wins``, ``by``: the roll-ups of
scenarios/rollups.py) plus what the table and plots use (horizon, closed to date, per-rep
attainment, pipeline flows, a revenue histogram, notes). Revenue is quarter revenue: closed
to date + won in the horizon (docs/model.md §7).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from salesim.calibrate.categories import Calls
from salesim.results import Forecast
from salesim.simulator.results import SimResult, band
from salesim.simulator.runner import Progress, default_engine, run
from salesim.simulator.spec import SimSpec
from salesim.tables import weekly_frame  # noqa: F401 (re-exported: it was defined here)

from .rollups import parse_levels, rollup, seats_not_kept

FLOWS = (
    "losses",
    "created",
    "pipeline_created",
    "activities",
    "open_start",
    "open_end",
    "pipeline_end",
)

# A forecast whose trials × seats revenue would pass this streams it instead: each seat's
# mean and P(attainment) are still exact, its attainment quantiles are left out (a note says
# so). 256 MB: 1M trials × 32 seats, 160k trials × 200 seats (docs/scaling.md).
SEAT_ARRAY_BYTES = 256 * 2**20


def forecast(
    spec: SimSpec,
    trials: int = 10_000,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    keep_reps: bool | None = None,
    by: Iterable[str] | str | None = None,
    teams: pl.DataFrame | None = None,
    calls: Calls | None = None,
) -> Forecast:
    """Run ``trials`` trials of ``spec`` and summarise them (see the module docstring).

    The defaults are the CLI's: ``engine`` None is ``runner.default_engine()``; one worker
    unless asked (``workers=None``: every core, in spawned processes, which a script then
    needs a ``__main__`` guard for). ``keep_reps`` None keeps revenue per seat and trial up
    to ``SEAT_ARRAY_BYTES``. ``by``: roll-up levels (``rollups.LEVELS``), grouped by
    ``teams`` (``History.teams``); they need the per-seat revenue kept. ``calls``: the
    reps' call for the quarter, shown beside the bands (the ``calls`` key;
    calibrate/categories.py)."""
    engine = engine or default_engine()
    levels = parse_levels(by)
    fits = 8 * trials * len(spec.reps) <= SEAT_ARRAY_BYTES
    if levels and not fits:  # said before the run, not after it
        raise seats_not_kept(trials, len(spec.reps))
    if keep_reps is None:
        keep_reps = fits
    result = run(
        spec, trials, seed, engine=engine, workers=workers, progress=progress, keep_reps=keep_reps
    )
    out = summarise(spec, result)
    out["by"] = rollup(result, levels, teams)
    if not keep_reps and spec.reps:
        out["notes"].append(
            f"per-rep attainment and revenue quantiles left out: {trials:,} trials × "
            f"{len(spec.reps)} reps is more than the "
            f"{SEAT_ARRAY_BYTES // 2**20} MB kept per seat; each rep's mean and "
            "P(attainment) are exact"
        )
    if calls is not None:
        out["calls"] = calls.to_dict()
    return Forecast(out)


def summarise(spec: SimSpec, result: SimResult) -> dict:
    out = result.summary(spec.quota if spec.quota is not None else result.quota)
    end = spec.start + dt.timedelta(days=spec.days - 1)
    out.update(
        {
            "start": spec.start,
            "end": end,
            "days": spec.days,
            "weeks": spec.weeks,
            "fixed_parameters": spec.fixed_parameters,
            "model_source": spec.model.source,
            "model_as_of": spec.model.as_of,
            "closed_to_date": result.closed_to_date,
            "revenue_in_horizon": band(result.column("revenue")),
            "flows": {
                name: {k: v for k, v in band(result.column(name)).items() if k != "std"}
                for name in FLOWS
            },
            "reps": result.rep_attainment().to_dicts(),
            "histogram": result.histogram(),
            "events": result.chunks.events,
            "notes": list(spec.notes),
        }
    )
    return out
