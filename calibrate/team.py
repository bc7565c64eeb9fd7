"""The team: ramp curve, attrition hazard, who is on the team at the as-of date, capacity.

With reps.csv (hire and leaving dates) the ramp and the attrition hazard are fitted; without
it the documented defaults of docs/model.md apply (``calibrated = False``). Thin data (fewer
than ``priors.THIN`` reps ramping, or leavers) update a prior centred on those defaults,
with a note.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from scipy import special

from salesim.simulator.model import CapacityModel, GammaPosterior, RepSnapshot, TeamModel
from salesim.simulator.units import DAYS_PER_MONTH

from .activities import RepDays
from .priors import THIN

DEFAULT_RAMP_MONTHS, DEFAULT_RAMP_SD = 3.0, 1.0
DEFAULT_ATTRITION = GammaPosterior(2.0, 100.0)  # 2% a month, ≈ 22% a year
# Priors for thin data: the defaults' centres, but wide enough that a few reps move them.
RAMP_PRIOR = (DEFAULT_RAMP_MONTHS, 2.0)  # months: mean, sd (twice the default's)
ATTRITION_PRIOR = GammaPosterior(1.0, 50.0)  # 2% a month, the weight of 50 rep-months
RAMP_GRID = np.round(np.arange(0.0, 12.0 + 1e-9, 0.05), 2)  # months
BOOTSTRAP = 200
MIN_RAMP_REP_DAYS = 60  # rep-days in the first 12 months of tenure needed to fit the ramp
SNAPSHOT_DAYS = 90  # without reps.csv: owners with an opportunity this recently
ASSUMED_TENURE_DAYS = 365  # ...hired this long before the as-of date (treated as ramped)
WEEK_HOURS = 40.0
FLOOR = 0.2


# --- ramp ---------------------------------------------------------------------------------------
def _ramp_cap() -> int:
    """Tenure in days from which every R on the grid says ramped."""
    return int(math.ceil(RAMP_GRID[-1] * DAYS_PER_MONTH)) + 1


def ramping_reps(rd: RepDays, keep: np.ndarray) -> int:
    """Reps with fitted rep-days in their first year of tenure: the reps the ramp is learnt
    from (``fit_ramp`` resamples them)."""
    sel = keep & np.isfinite(rd.tenure) & (rd.tenure >= 0) & (rd.tenure < _ramp_cap())
    return int(np.unique(rd.rep[sel]).size)


def fit_ramp(
    rd: RepDays, keep: np.ndarray, rng, prior: tuple[float, float] | None = None
) -> tuple[float, float] | None:
    """Linear ramp ``min(1, tenure / R)`` of daily productivity with a level per rep.

    For each R on ``RAMP_GRID`` each rep's level is its Poisson MLE (count / ramped days),
    so reps already ramped throughout carry no weight; R maximises the Poisson
    quasi-likelihood. Its sd is the larger of a bootstrap over reps (seeded ``rng``; catches
    reps ramping at different speeds) and the quasi-likelihood curvature scaled by the
    Pearson dispersion (day-to-day noise; the bootstrap of an argmax is erratic when only a
    handful of reps were hired inside the data). None when too few rep-days fall in the
    first year of tenure.

    With a normal ``prior`` (mean, sd in months; for fewer than ``THIN`` reps ramping) the
    result is the posterior mean and sd on the grid: the quasi-likelihood (divided by the
    Pearson dispersion) times the prior. A few reps cannot be bootstrapped, and a flat
    stretch of the likelihood (a rep first seen already some months in) then follows the
    prior instead of an arbitrary end of it.
    """
    known = keep & np.isfinite(rd.tenure) & (rd.tenure >= 0)
    cap = _ramp_cap()
    if np.sum(known & (rd.tenure < cap)) < MIN_RAMP_REP_DAYS:
        return None
    reps, r = np.unique(rd.rep[known], return_inverse=True)
    b = np.minimum(rd.tenure[known], cap).astype(np.int64)
    x = rd.count[known]
    cells = r * (cap + 1) + b
    size = reps.size * (cap + 1)
    X = np.bincount(cells, weights=x, minlength=size).reshape(reps.size, cap + 1)
    N = np.bincount(cells, minlength=size).astype(float).reshape(reps.size, cap + 1)

    months = np.arange(cap + 1) / DAYS_PER_MONTH
    with np.errstate(divide="ignore", invalid="ignore"):
        G = np.where(
            RAMP_GRID[:, None] > 0, np.clip(months[None, :] / RAMP_GRID[:, None], 0.0, 1.0), 1.0
        )
        # Half a day of tenure at least: a count on the hire day must not be impossible.
        G = np.maximum(
            G, np.where(RAMP_GRID[:, None] > 0, 0.5 / DAYS_PER_MONTH / RAMP_GRID[:, None], 1.0)
        )
    D = N @ G.T  # ramped days per rep, per R
    Xr = X.sum(axis=1)
    mu = np.where(D > 0, Xr[:, None] / np.where(D > 0, D, 1.0), 0.0)
    # Per-rep profile log-likelihood at each R (constants dropped).
    L = special.xlogy(Xr[:, None], mu) - Xr[:, None] + X @ np.log(G).T
    total = L.sum(axis=0)
    i = int(np.argmax(total))
    if prior is not None:
        phi = _pearson(x, mu[r, i] * G[i, b], reps.size)
        log_post = total / max(phi, 1e-9) - 0.5 * ((RAMP_GRID - prior[0]) / prior[1]) ** 2
        w = np.exp(log_post - log_post.max())
        w /= w.sum()
        mean = float(w @ RAMP_GRID)
        return mean, float(math.sqrt(w @ (RAMP_GRID - mean) ** 2))
    draws = rng.multinomial(reps.size, np.full(reps.size, 1 / reps.size), size=BOOTSTRAP)
    sd = float(np.std(RAMP_GRID[np.argmax(draws @ L, axis=1)], ddof=1))
    if 2 <= i <= RAMP_GRID.size - 3:
        step = RAMP_GRID[i + 2] - RAMP_GRID[i]
        curvature = -(total[i + 2] - 2 * total[i] + total[i - 2]) / step**2
        phi = _pearson(x, mu[r, i] * G[i, b], reps.size)
        if curvature > 0:
            sd = max(sd, math.sqrt(phi / curvature))
    return float(RAMP_GRID[i]), sd


def _pearson(x: np.ndarray, lam: np.ndarray, n_levels: int) -> float:
    """Pearson dispersion of counts ``x`` around means ``lam`` (one level fitted per rep)."""
    return float(np.sum((x - lam) ** 2 / np.maximum(lam, 1e-9)) / max(x.size - n_levels, 1))


# --- attrition ----------------------------------------------------------------------------------
def fit_attrition(
    reps: pl.DataFrame, as_of: dt.date, observed_from: dt.date
) -> tuple[GammaPosterior, int, float]:
    """Monthly leaving hazard: Gamma(0.5 + leavers, rep-months) (Jeffreys prior).

    Exposure runs from hire (or from ``observed_from``, the first date in the history: reps
    who left earlier are not in the data, so earlier tenure is survivor time) to leaving or
    the as-of date; reps still there are censored at the as-of date.
    """
    r = reps.filter(pl.col("hired") <= as_of).with_columns(
        begin=pl.max_horizontal("hired", pl.lit(observed_from)),
        stop=pl.when(pl.col("left").is_not_null() & (pl.col("left") <= as_of))
        .then(pl.col("left"))
        .otherwise(pl.lit(as_of)),
    )
    exposure = (
        float(
            r.select(
                ((pl.col("stop") - pl.col("begin")).dt.total_days().clip(lower_bound=0)).sum()
            ).item()
        )
        / DAYS_PER_MONTH
    )
    leavers = r.filter(
        pl.col("left").is_not_null() & (pl.col("left") <= as_of) & (pl.col("left") >= observed_from)
    ).height
    return GammaPosterior(0.5 + leavers, max(exposure, 1e-9)), leavers, exposure


# --- who is on the team -------------------------------------------------------------------------
def snapshot(history, as_of: dt.date) -> tuple[tuple[RepSnapshot, ...], float, list[str]]:
    """Reps on the team at the end of ``as_of`` and the default quota (median of reps.csv)."""
    reps = history.reps
    if reps is not None and reps.height:
        quotas = reps["quota"].drop_nulls()
        quota = float(quotas.median()) if quotas.len() else 0.0
        on = reps.filter(
            (pl.col("hired") <= as_of) & (pl.col("left").is_null() | (pl.col("left") > as_of))
        ).sort("owner")
        team = tuple(
            RepSnapshot(
                r["owner"], r["hired"], float(r["quota"]) if r["quota"] is not None else quota
            )
            for r in on.iter_rows(named=True)
        )
        return team, quota, []
    since = as_of - dt.timedelta(days=SNAPSHOT_DAYS - 1)
    owners = (
        history.opportunities.filter((pl.col("created") >= since) & (pl.col("created") <= as_of))[
            "owner"
        ]
        .unique()
        .sort()
        .to_list()
    )
    hired = as_of - dt.timedelta(days=ASSUMED_TENURE_DAYS)
    return (
        tuple(RepSnapshot(o, hired, 0.0) for o in owners),
        0.0,
        [
            f"team: no reps file; the team is the {len(owners)} owners with an opportunity in the "
            f"last {SNAPSHOT_DAYS} days, treated as ramped (hired {ASSUMED_TENURE_DAYS} days "
            "before the as-of date), no quota"
        ],
    )


def fit_capacity(history, as_of: dt.date, team: tuple[RepSnapshot, ...]) -> CapacityModel:
    """``free_deals`` = 90th percentile over the team of open deals at the as-of date;
    ``deal_hours`` = min(1, ½·W/free_deals) so that W − h·free ≥ W/2."""
    o = history.opportunities.filter(
        (pl.col("created") <= as_of) & (pl.col("closed").is_null() | (pl.col("closed") > as_of))
    )
    counts = dict(o.group_by("owner").len().iter_rows())
    names = [r.name for r in team] or list(counts)
    loads = np.array([counts.get(n, 0) for n in names], dtype=float)
    free = float(np.quantile(loads, 0.9)) if loads.size else 0.0
    hours = min(1.0, 0.5 * WEEK_HOURS / free) if free > 0 else 1.0
    return CapacityModel(week_hours=WEEK_HOURS, deal_hours=hours, free_deals=free, floor=FLOOR)


# --- the team model -----------------------------------------------------------------------------
def fit_team(
    history,
    as_of: dt.date,
    rd: RepDays,
    keep: np.ndarray,
    rng,
    team: tuple[RepSnapshot, ...],
    quota: float,
) -> tuple[TeamModel, list[str]]:
    """Ramp and attrition from reps.csv (ramp on the rep-days selected by ``keep``), or the
    documented defaults without it; ``team`` and ``quota`` come from ``snapshot``."""
    notes: list[str] = []
    if history.reps is None or history.reps.height == 0:
        notes.append(
            f"team: no reps file; ramp {DEFAULT_RAMP_MONTHS:g} ± {DEFAULT_RAMP_SD:g} "
            "months and attrition Gamma(2, 100) (2%/month) are defaults"
        )
        return TeamModel(
            DEFAULT_RAMP_MONTHS,
            DEFAULT_RAMP_SD,
            DEFAULT_ATTRITION,
            quota,
            calibrated=False,
            reps=team,
        ), notes
    n_ramping = ramping_reps(rd, keep)
    thin = n_ramping < THIN
    ramp = fit_ramp(rd, keep, rng, prior=RAMP_PRIOR if thin else None)
    what = "activities" if rd.observed else "outbound opportunities"
    if ramp is None:
        ramp = (DEFAULT_RAMP_MONTHS, DEFAULT_RAMP_SD)
        notes.append(
            f"team: fewer than {MIN_RAMP_REP_DAYS} rep-days in a first year of tenure; "
            f"ramp {DEFAULT_RAMP_MONTHS:g} ± {DEFAULT_RAMP_SD:g} months (default)"
        )
    elif thin:
        notes.append(
            f"team: only {n_ramping} rep{'' if n_ramping == 1 else 's'} in a first "
            f"year of tenure (< {THIN}): the ramp is the prior {RAMP_PRIOR[0]:g} ± "
            f"{RAMP_PRIOR[1]:g} months updated by their {what}: {ramp[0]:.1f} ± "
            f"{ramp[1]:.1f} months; treat it as rough"
        )
    elif ramp[0] >= RAMP_GRID[-1]:
        notes.append(
            f"team: the ramp fitted from {what} reached the longest tried "
            f"({RAMP_GRID[-1]:g} months)"
        )
    observed_from = _first_date(history)
    attrition, leavers, exposure = fit_attrition(history.reps, as_of, observed_from)
    if exposure <= 0:
        attrition = DEFAULT_ATTRITION
        notes.append("team: no rep-months of exposure; attrition Gamma(2, 100) (default)")
    elif leavers < THIN:
        a = ATTRITION_PRIOR
        attrition = GammaPosterior(a.shape + leavers, a.rate + exposure)
        count = (
            "no rep left"
            if leavers == 0
            else f"only {leavers} rep{' has' if leavers == 1 else 's have'} left"
        )
        notes.append(
            f"team: {count} in {exposure:,.0f} rep-months (< {THIN} leavers): "
            f"attrition is the prior Gamma({a.shape:g}, {a.rate:g}) ({a.mean:.0%} a "
            f"month) updated by them: {attrition.mean:.1%} a month; treat it as rough"
        )
    return TeamModel(ramp[0], ramp[1], attrition, quota, calibrated=True, reps=team), notes


def _first_date(history) -> dt.date:
    dates = [history.opportunities["created"].min()]
    if history.activities is not None and history.activities.height:
        dates.append(history.activities["date"].min())
    return min(d for d in dates if d is not None)
