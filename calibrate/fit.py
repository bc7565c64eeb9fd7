"""Calibration: CRM history up to an as-of date -> a ``Model`` (and its summary).

``calibrate`` cuts the history at the as-of date (``History.as_of``: nothing later can leak
in), then fits, in order: the created → closed cycle, the stages, deal sizes, the team and
its capacity, activities and marketing. docs/calibration.md describes every method; every
fallback taken is a line in ``Model.notes``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Callable

import numpy as np
import polars as pl

from salesim.simulator.calendar import CHANNELS, CalendarModel, quarters_between
from salesim.simulator.errors import InputError
from salesim.simulator.model import Model
from salesim.simulator.units import as_date

from . import activities as acts
from . import diagnostics as diag
from . import quarters
from . import team as team_fit
from .categories import fit_calls, reliability_summary
from .closing import first_close, fit_closing
from .deal_size import fit_deal_sizes
from .history import History, earliest
from .slips import fit_slips
from .stages import (
    SINGLE_STAGE,
    cycle_records,
    fit_cycle,
    fit_stages,
    resolve_stages,
    stage_records,
)
from .tails import with_tail


def _as_date(value) -> dt.date:
    return as_date(value, what="as-of date", column="--as-of")


def _seen_stages(history: History) -> set[str]:
    seen = set(history.opportunities["stage"].drop_nulls().unique().to_list())
    if history.stage_history is not None:
        seen |= set(history.stage_history["stage"].unique().to_list())
    return seen


STEPS = ("cycle", "stages", "deal sizes", "rep-days", "team", "activities", "marketing", "calendar")


def calibrate(
    history: History,
    as_of,
    *,
    stages=None,
    rng=0,
    calendar: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Model:
    """Fit every part of the model from ``history`` as it stood at the end of ``as_of``.

    ``stages``: the stages to model, in order (default: ``history.stages``); each must occur
    in the history. ``rng`` seeds the one resampling step (the ramp bootstrap).
    ``calendar=False`` pools the whole history (no quarter effects, closing clock or tails:
    the model of docs/model.md §1–§7). ``progress(step)`` is called after each of ``STEPS``.
    Raises ``InputError`` when the history cannot be calibrated (no deal created by the
    as-of date, no closed deals, no won deals, an unknown stage).
    """
    as_of = _as_date(as_of)
    rng = np.random.default_rng(rng)
    done = progress or (lambda step: None)
    if isinstance(stages, str):
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    notes = []
    seen = _seen_stages(history)
    if stages:
        # A stage order (a profile's, or --stages) may name stages this history never used:
        # they carry no data, so they are left out; a name outside the order is a typo.
        typo = [s for s in stages if s not in seen and s not in history.stages]
        if typo:
            raise InputError(
                f"unknown stage {typo[0]!r}: no deal in the history is or was in it",
                file=history.source or None,
                column="--stages",
                expected="stages from the history: "
                + ", ".join(s for s in history.stages if s in seen),
            )
        unused = [s for s in stages if s not in seen]
        if unused:
            notes.append(
                f"{len(unused)} stage(s) of the stage order no deal is or was in, "
                "left out of the model: " + ", ".join(unused)
            )
        stages = [s for s in stages if s in seen]
    staged = history.has_stage_history
    if stages and len(stages) > 1 and not staged:
        notes.append(
            "no stage history (when each deal entered each stage): the "
            f"{len(stages)} stages given cannot be fitted one by one, so a single "
            "step (created → won/lost) is fitted"
        )
        stages = None

    h = history.as_of(as_of)
    o = h.opportunities
    if o.height == 0:
        raise InputError(
            f"no opportunity was created on or before {as_of}",
            file=history.source or None,
            column="--as-of",
            expected="an as-of date after the first opportunity",
        )
    if o.filter(pl.col("status") != "open").height == 0:
        raise InputError(
            f"all {o.height:,} opportunities are still open on {as_of}: no won or "
            "lost deal to learn win rates and cycle times from",
            file=history.source or None,
            column="status",
            expected="history with won and lost deals before the as-of date",
        )
    notes = list(h.notes) + notes
    # Nothing is known after the history's last date: an as-of date beyond it must not
    # count as more days that open deals survived (or reps stayed).
    end = min(as_of, history.last_date)
    if end < as_of:
        notes.append(
            f"the as-of date {as_of} is after the last date in the history ({end}): "
            f"open deals are censored, and rates measured, up to {end}"
        )

    cycle_rec = cycle_records(o, end)
    cycle, more = fit_cycle(cycle_rec.durations())
    notes += more
    done("cycle")
    mapping: dict[str, int] | None = None  # history stage → model stage (with stage history)
    if staged:
        names, mapping = resolve_stages([s for s in history.stages if s in seen], stages)
        records, more = stage_records(h, names, mapping, end)
        notes += more
        stage_models, more = fit_stages([r.durations() for r in records], names)
        notes += more
    else:
        # One step: named after the history's one stage, else generically (it is not any
        # of several labels: an open deal in any of them is simply open).
        labels = [s for s in history.stages if s in seen]
        name = (stages[0] if stages else None) or (labels[0] if len(labels) == 1 else SINGLE_STAGE)
        stage_models = (dataclasses.replace(cycle, name=name),)
        records = [cycle_rec]
        notes.append(f"no stage history: one stage ({name}) fitted on created → won/lost")
    if calendar:
        tailed = []
        for stage, rec in zip(stage_models, records):
            stage, more = with_tail(stage, rec.durations())
            tailed.append(stage)
            notes += more
        stage_models = tuple(tailed)
    done("stages")

    sizes, more = fit_deal_sizes(o, end)
    notes += more
    done("deal sizes")

    rd, more = acts.rep_days(h, end)
    notes += more
    if rd.size == 0:
        raise InputError(
            "no rep was active in the history up to the as-of date",
            file=history.source or None,
            column="owner",
            expected="activities or opportunities with owners",
        )
    done("rep-days")
    reps, quota, more = team_fit.snapshot(h, end)
    notes += more
    capacity = team_fit.fit_capacity(h, end, reps)
    keep = rd.open_deals <= capacity.free_deals
    team, more = team_fit.fit_team(h, end, rd, keep, rng, reps, quota)
    notes += more
    done("team")
    fitted_ramp = team.ramp_months if team.calibrated else None
    activity, more = acts.fit_activities(
        h, end, rd, free_deals=capacity.free_deals, ramp_months=fitted_ramp
    )
    notes += more
    # Reps on the team carry their own measured activity level (docs/model.md §2).
    levels = acts.rep_levels(rd, activity, ramp_months=fitted_ramp, free_deals=capacity.free_deals)
    team = dataclasses.replace(
        team,
        reps=tuple(
            dataclasses.replace(r, level=levels[r.name][0], level_sd=levels[r.name][1])
            if r.name in levels
            else r
            for r in team.reps
        ),
    )
    done("activities")
    marketing, more = acts.fit_marketing(o, end)
    notes += more
    done("marketing")
    cal, findings = None, []
    if calendar:
        cal, more, forecasts = fit_calendar(
            h, end, rd, team, capacity, marketing, records, stage_models
        )
        notes += more
        findings = (
            diag.channel_findings(
                forecasts,
                stage_models,
                activity.per_rep_day * activity.opportunity_yield.mean,
                marketing.weekly.mean if marketing.share > 0 else None,
            )
            + diag.clock_findings(cal.closing if cal is not None else None)
            + diag.tail_findings(stage_models)
        )
    slips, more = fit_slips(h, end, tuple(stage_models), mapping)
    notes += more
    done("calendar")
    calls, more = fit_calls(h, end)
    notes += more

    return Model(
        as_of=as_of,
        stages=tuple(stage_models),
        cycle=cycle,
        deal_size=sizes,
        activities=activity,
        marketing=marketing,
        team=team,
        capacity=capacity,
        n_opportunities=o.height,
        source=history.source,
        notes=tuple(dict.fromkeys(notes)),
        calendar=cal,
        diagnostics=tuple(findings),
        slips=slips,
        calls=calls,
    )


def fit_calendar(
    h: History, end: dt.date, rd, team, capacity, marketing, records, stage_models
) -> tuple[CalendarModel | None, list[str], dict]:
    """Quarter effects per channel and the closing clock (calibrate/quarters.py,
    calibrate/closing.py); None when the history shows neither. Also each channel's
    ``quarters.Forecast`` (for the diagnostics)."""
    first = earliest(h.opportunities["created"])
    assert first is not None  # calibrate() refused a history without opportunities
    qs = quarters_between(first, end)
    series = [quarters.measure_outbound(h, rd, team, capacity, qs)]
    if marketing.share > 0:
        series.append(
            quarters.measure_marketing(
                h, marketing.weekly.mean, qs, first, end, acts.MARKETING_WINDOW_DAYS
            )
        )
    conversion, speed = quarters.measure_stages(records, stage_models, qs)
    series += [conversion, speed]
    clock, _, notes = fit_closing(records, stage_models, first, end)
    closed_from = first_close(records)
    if closed_from is not None:
        series.append(
            quarters.measure_pace(records, stage_models, qs, conversion, speed, closed_from, clock)
        )
    found, forecasts = {}, {}
    for s in series:
        fc, more = quarters.forecast(s)
        notes += more
        forecasts[s.channel] = fc
        if not quarters.steady(fc.effects):
            found[s.channel] = fc.effects
    if not found and clock is None:
        return None, notes, forecasts
    return CalendarModel(**found, closing=clock), notes, forecasts


# --- summary ------------------------------------------------------------------------------------
def _median(dist) -> float:
    return float(dist.quantile(0.5))


def _duration(fitted) -> dict:
    return {
        "family": fitted.dist.family,
        "median_days": _median(fitted.dist),
        "mean_days": float(fitted.dist.mean),
    }


def _mixture_median(parts) -> float:
    """Median of a mixture of size distributions ``[(weight, dist)]`` (bisection on the CDF)."""
    total = sum(w for w, _ in parts)
    lo = min(float(d.quantile(0.01)) for _, d in parts)
    hi = max(float(d.quantile(0.99)) for _, d in parts)

    def cdf(x):
        return sum(w * float(d.cdf(x)) for w, d in parts) / total

    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
    return (lo + hi) / 2


def _tail(stage) -> dict | None:
    t = stage.tail
    if t is None:
        return None
    return {
        "from_age_days": t.from_age,
        "at_risk": t.n_at_risk,
        "advanced": t.conversion.mean,
        "never_left": t.stall.mean if t.stall else 0.0,
    }


def _calendar(model: Model) -> dict | None:
    """Each channel's effect next quarter (and per stored quarter) and the closing clock."""
    cal = model.calendar
    if cal is None:
        return None
    out: dict = {}
    for c in CHANNELS:
        e = cal.channel(c)
        if e is None:
            continue
        sd = np.sqrt(np.diag(e.covariance()))
        nxt = e.at(model.as_of + dt.timedelta(days=1))  # where a forecast starts
        out[c] = {
            "forecast_quarter": {
                "quarter": e.periods[nxt].isoformat(),
                "effect": e.mean[nxt],
                "sd": float(sd[nxt]),
            },
            "trend": e.trend,
            "season": list(e.season) or None,
            "shock_sd": e.shock_sd,
            "forgetting": e.forgetting,
            "quarters_measured": e.observed,
            "quarters": [
                {"quarter": q.isoformat(), "effect": m, "sd": float(s)}
                for q, m, s in zip(e.periods, e.mean, sd)
            ],
        }
    out["closing"] = (
        None
        if cal.closing is None
        else {"won": list(cal.closing.won), "lost": list(cal.closing.lost)}
    )
    return out


def _stall(stage) -> dict:
    """``stall`` (P(never leaves), 0.0 when not kept) and its 90% interval (None then)."""
    if stage.stall is None:
        return {"stall": 0.0, "stall_interval": None}
    return {"stall": stage.stall.mean, "stall_interval": list(stage.stall.interval(0.9))}


def summary(model: Model) -> dict:
    """The ``--json`` summary of a calibrated model (docs/calibration.md lists every key)."""
    segments = model.deal_size
    total = sum(s.count for s in segments) or 1.0
    families = {s.size.dist.family for s in segments}
    rng = np.random.default_rng(0)  # fixed: the summary is a pure function of the model
    draws = np.array([[s.size.draw(rng).mean for _ in range(400)] for s in segments])
    shares = np.array([s.count / total for s in segments])
    mix_mean = float(shares @ [s.size.dist.mean for s in segments])
    mean_draws = shares @ draws
    a = model.activities
    wr = model.cycle.conversion
    return {
        "as_of": model.as_of.isoformat(),
        "n_opportunities": model.n_opportunities,
        "win_rate": wr.mean,
        "win_rate_interval": list(wr.interval(0.9)),
        **_stall(model.cycle),
        "stages": [
            {
                "name": s.name,
                "conversion": s.conversion.mean,
                "conversion_interval": list(s.conversion.interval(0.9)),
                "duration": _duration(s.advance),
                "lost_duration": _duration(s.lost),
                "entered": s.n_entered,
                "advanced": s.n_advanced,
                "lost": s.n_lost,
                "open": s.n_open,
                **_stall(s),
                "tail": _tail(s),
            }
            for s in model.stages
        ],
        "cycle_days": {
            "won_median": _median(model.cycle.advance.dist),
            "lost_median": _median(model.cycle.lost.dist),
            "won_family": model.cycle.advance.dist.family,
            "lost_family": model.cycle.lost.dist.family,
        },
        "deal_size": {
            "family": families.pop() if len(families) == 1 else "mixed",
            "mean": mix_mean,
            "median": _mixture_median([(s.count, s.size.dist) for s in segments]),
            "mean_interval": [float(x) for x in np.quantile(mean_draws, [0.05, 0.95])],
            "segments": [
                {
                    "name": s.name,
                    "share": s.count / total,
                    "family": s.size.dist.family,
                    "mean": float(s.size.dist.mean),
                    "median": _median(s.size.dist),
                    "won_deals": s.size.n_events,
                }
                for s in segments
            ],
        },
        "activities": None
        if not a.observed
        else {
            "per_rep_day": a.per_rep_day,
            "opportunity_yield": a.opportunity_yield.mean,
            "opportunity_yield_interval": list(a.opportunity_yield.interval(0.9)),
            "dispersion": a.dispersion if math.isfinite(a.dispersion) else None,
            "rep_sigma": a.rep_sigma,
            "lag": {"family": a.lag.dist.family, "mean_days": float(a.lag.dist.mean)},
            "rep_days": a.n_rep_days,
        },
        "outbound_per_rep_day": None if a.observed else a.per_rep_day,
        "marketing": {
            "per_week": model.marketing.weekly.mean,
            "per_week_interval": list(model.marketing.weekly.interval(0.9)),
            "share": model.marketing.share,
        },
        "team": {
            "reps": len(model.team.reps),
            "calibrated": model.team.calibrated,
            "ramp_months": model.team.ramp_months,
            "ramp_months_sd": model.team.ramp_months_sd,
            "attrition_monthly": model.team.attrition.mean,
            "attrition_interval": list(model.team.attrition.interval(0.9)),
            "quota": model.team.quota,
        },
        "capacity": {
            "free_deals": model.capacity.free_deals,
            "deal_hours": model.capacity.deal_hours,
            "week_hours": model.capacity.week_hours,
        },
        "calendar": _calendar(model),
        "slips": _slips(model),
        "diagnostics": list(model.diagnostics),
        "calls": reliability_summary(model.calls),
        "notes": list(model.notes),
    }


def _slips(model: Model) -> dict | None:
    """The slip model (docs/model.md §6c) per bucket of pushes: P(won) with its 90% interval
    (of a deal whose stage model gives even odds) and the median time to win as a multiple of
    the days to the expected close (+ offset); the stage weight."""
    m = model.slips
    if m is None:
        return None
    return {
        "offset_days": m.offset_days,
        "buckets": [
            {
                "pushes": b.pushes,
                "p_won": float(b.won.mean),
                "p_won_interval": list(b.won.interval(0.9)),
                "time_to_win_factor": float(b.won_time.dist.quantile(0.5)),
                "deals": b.n_deals,
                "won": b.n_won,
            }
            for b in m.buckets
        ],
        "time_to_lose_factor": float(m.lost_time.dist.quantile(0.5)),
        "stage_weight": m.stage_weight,
    }
