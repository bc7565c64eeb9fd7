"""Quarter effects: how each channel moved from quarter to quarter, and where it goes next.

The rest of calibration pools the whole history. Real histories change: creation grows or
falls, win rates drift, some quarters are better than others, and the fourth quarter is not
the first. This module measures each channel of docs/model.md §8 quarter by quarter, as an
effect relative to the pooled model with its sampling variance (``measure_*``), then
forecasts the next quarters from those measurements (``forecast``):

- ``outbound``: outbound opportunities per rep-day, against what each rep's ramp and load
  leave of its own level (a Poisson fit with a level per rep and one per quarter, so a team
  whose later hires are stronger does not look like growth); over-dispersion from the
  Pearson statistic.
- ``marketing``: marketing-sourced opportunities per week against the model's rate.
- ``conversion`` and ``speed``: for the deals that entered a stage in the quarter, the
  shift of every stage's log odds of advancing and the log factor on its durations that
  make their outcomes likeliest, given the fitted stage models (open deals censored).
- ``pace``: the wins that came in the calendar quarter against the number the fitted model
  expected from the deals then in their last stage (each with its own cohort's conversion
  and speed, so that a cohort's quality is not counted twice): how well the quarter closed.

The forecast is a weighted regression on the quarters' effects — a level, optionally a trend,
optionally a quarter-of-year effect shrunk towards none (a ridge prior) — with older
quarters down-weighted by a *forgetting* factor per quarter, plus a quarter's own shock of sd
``τ``. Which of these and how much forgetting is chosen by the history itself: each candidate
forecasts every quarter from the quarters before it (rolling origins), and the candidate whose
forecasts were likeliest wins; ``τ`` is the one that makes them likeliest (0 when the
quarters vary no more than their sampling noise, so a stationary history gets no wider
bands), or, for a history too short to measure it, its posterior under a stated prior. The
forecast effect is relative to what the pooled model already says, and so is its
uncertainty: with no forgetting, no trend and no season the forecast is the pooled model
exactly (effect 0, only the shock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import optimize, special

from salesim.simulator.calendar import (
    ClosingClock,
    PeriodEffects,
    add_quarters,
    quarter_index,
    quarter_indexes,
    quarter_of_year,
    shifted_conversion,
    weeks_of_quarter,
)
from salesim.simulator.distributions import Distribution, Empirical
from salesim.simulator.model import BetaPosterior, CapacityModel, StageModel, TeamModel
from salesim.simulator.units import DAYS_PER_MONTH

from .activities import MARKETING, RepDays, outbound, rep_quarter_fit, to_working_day
from .closing import observed_expected
from .durations import ADVANCE, CENSORED, HALF, LOST, Durations, _dist_sf, inverse_hessian
from .stages import Records

_EPOCH = dt.date(1970, 1, 1)
FORGETTING = (1.0, 0.7, 0.4)  # weight of a quarter relative to the next, candidates
SEASON_SD = (0.1, 0.3)  # ridge prior sd of quarter-of-year effects, when tried
MIN_ORIGINS = 3  # rolling forecasts needed to judge the candidates
PENALTY = 2.0  # log-likelihood a candidate must gain per added part
# (≈ a likelihood-ratio test at 5 %): a few rolling
# forecasts must not pick noise
MIN_TRAIN = 3  # quarters a rolling forecast is made from, at least
SEASON_YEARS = 2  # a quarter-of-year effect needs each quarter seen twice
FUTURE = 4  # quarters forecast after the as-of date's
PAST = 4  # quarters stored before it (open deals entered then)
MIN_ENTRIES = 20  # deals entering stages in a quarter, to measure it
MAX_SHOCK = 1.0
SHOCK_PRIOR_SD = 0.1  # stated prior of a quarter's shock: half-normal, sd 0.1
# (±10 % on rates and durations, ±0.1 on log odds) — what
# a history too short to measure it gets
_TAU_GRID = 0.6 * (np.arange(61) / 60) ** 1.5


@dataclass(frozen=True)
class Series:
    """One channel's measured effect per quarter: ``quarters`` (first days, consecutive),
    ``y`` (NaN: not measured), its sampling variance ``v``, the weight of each quarter in the
    pooled model's own value (``ref``) and how many observations each rests on (``n``);
    ``absolute``: measured against the model itself (pace), so the pooled value is 0."""

    channel: str
    quarters: tuple[dt.date, ...]
    y: np.ndarray
    v: np.ndarray
    ref: np.ndarray
    n: np.ndarray
    absolute: bool = False  # measured against the model itself: its reference is 0

    @property
    def measured(self) -> np.ndarray:
        return np.isfinite(self.y)


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def _quarter_of_days(days: np.ndarray, quarters: tuple[dt.date, ...]) -> np.ndarray:
    """Index among ``quarters`` (consecutive) of each day, clamped to them."""
    k = quarter_indexes(days) - quarter_index(quarters[0])
    return np.clip(k, 0, len(quarters) - 1)


# --- measuring: creation --------------------------------------------------------------------------
def measure_outbound(
    history, rd: RepDays, team: TeamModel, capacity: CapacityModel, quarters: tuple[dt.date, ...]
) -> Series:
    """Outbound opportunities per rep-day, by quarter, relative to the whole history."""
    o = history.opportunities.filter(pl.col("created") <= quarters[-1] + dt.timedelta(days=92))
    if rd.observed:  # rep-days count activities: count their outbound opportunities
        idx = {name: i for i, name in enumerate(rd.owners)}
        ob = outbound(o)
        rep = ob["owner"].replace_strict(idx, default=-1, return_dtype=pl.Int64).to_numpy()
        day = to_working_day(ob["created"].cast(pl.Int32).to_numpy().astype(np.int64))
        # Each opportunity onto its rep-day (rep-days are sorted by rep, then day).
        span = int(max(rd.day.max(), day.max() if day.size else 0)) + 1
        keys = rd.rep.astype(np.int64) * span + rd.day
        want = rep * span + day
        pos = np.clip(np.searchsorted(keys, want), 0, max(keys.size - 1, 0))
        hit = (rep >= 0) & (keys.size > 0) & (keys[pos] == want)
        count = np.bincount(pos[hit], minlength=rd.size).astype(float)
    else:
        count = rd.count
    months = np.where(np.isfinite(rd.tenure), rd.tenure / DAYS_PER_MONTH, np.inf)
    exposure = team.ramp(months) * capacity.share(rd.open_deals)
    exposure = np.maximum(exposure, 1e-6)
    k = _quarter_of_days(rd.day, quarters)
    R, K = len(rd.owners), len(quarters)
    fit = rep_quarter_fit(rd.rep, k, count, exposure, R, K)
    a, b, O, X, phi = fit.a, fit.b, fit.O, fit.X, fit.phi
    W = np.exp(a) @ X  # exposure by quarter, rep-weighted
    Ok = O.sum(axis=0)
    ref = np.log(np.sum(W * np.exp(b)) / np.sum(W))
    y = np.where(W > 0, b - ref, np.nan)
    y = np.where(Ok > 0, y, np.nan)
    return Series("outbound", quarters, y, phi / np.maximum(Ok, 0.5), W, Ok)


def measure_marketing(
    history,
    weekly: float,
    quarters: tuple[dt.date, ...],
    first: dt.date,
    as_of: dt.date,
    window_days: int,
) -> Series:
    """Marketing-sourced opportunities per week, by quarter, relative to the model's rate
    (measured over the last ``window_days`` days: those quarters are its reference)."""
    o = history.opportunities.filter((pl.col("created") <= as_of) & (pl.col("created") >= first))
    mk = o.filter(pl.col("source").str.to_lowercase() == MARKETING)
    k = _quarter_of_days(mk["created"].cast(pl.Int32).to_numpy().astype(np.int64), quarters)
    M = np.bincount(k, minlength=len(quarters)).astype(float)
    days, ref = np.zeros(len(quarters)), np.zeros(len(quarters))
    since = as_of - dt.timedelta(days=window_days - 1)
    for i, q in enumerate(quarters):
        lo, hi = max(q, first), min(add_quarters(q, 1) - dt.timedelta(days=1), as_of)
        days[i] = max((hi - lo).days + 1, 0)
        ref[i] = max((hi - max(lo, since)).days + 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(days > 0, np.log((M + 0.5) / (weekly * days / 7)), np.nan)
    return Series("marketing", quarters, y, 1.0 / (M + 0.5), ref, M)


# --- measuring: conversion and speed --------------------------------------------------------------
KERNEL_SD = 0.15  # log-scale smoothing of empirical durations (speed)


def _smooth_sf(dist: Distribution, x):
    """Survival; an empirical distribution is smoothed by a log-normal kernel of sd
    ``KERNEL_SD`` around each value, so that the likelihood is smooth in a duration factor
    (a step function has no slope to find the factor by)."""
    if isinstance(dist, Empirical):
        v = np.log(np.maximum(np.asarray(dist.values, dtype=float), HALF))[None, :]
        w = np.asarray(dist.weights) / np.sum(dist.weights)
        lx = np.log(np.maximum(np.asarray(x, dtype=float), 1e-9))[:, None]
        return special.ndtr((v - lx) / KERNEL_SD) @ w
    return _dist_sf(dist, x)


def _stage_loglik(stage: StageModel, obs: Durations, shift: float, log_speed: float) -> float:
    """Log-likelihood of one stage's grouped observations with every stage's log odds of
    advancing shifted by ``shift`` and durations scaled by ``exp(log_speed)``."""
    t, kind, w = obs.t, obs.kind, obs.count
    pi = stage.stall.mean if stage.stall is not None else 0.0
    p0 = min(stage.conversion.mean, 1.0 - pi)
    p = float(shifted_conversion(p0, pi, shift))
    q = max(1.0 - p - pi, 0.0)
    f = math.exp(log_speed)
    lo, hi = np.maximum(t - HALF, 0.0) / f, (t + HALF) / f
    out = 0.0
    for outcome, share, dist in ((ADVANCE, p, stage.advance.dist), (LOST, q, stage.lost.dist)):
        sel = kind == outcome
        if sel.any():
            mass = _smooth_sf(dist, lo[sel]) - _smooth_sf(dist, hi[sel])
            out += float(np.dot(w[sel], np.log(np.maximum(share * mass, 1e-300))))
    sel = kind == CENSORED
    if sel.any():
        c = hi[sel]
        still = p * _smooth_sf(stage.advance.dist, c) + q * _smooth_sf(stage.lost.dist, c) + pi
        out += float(np.dot(w[sel], np.log(np.maximum(still, 1e-300))))
    return out


def measure_stages(
    records: list[Records], stages: tuple[StageModel, ...], quarters: tuple[dt.date, ...]
) -> tuple[Series, Series]:
    """Per quarter of entry, the conversion shift and log speed factor that make the
    entries' outcomes likeliest under the fitted stages, with their variances."""
    K = len(quarters)
    y = np.full((2, K), np.nan)
    v = np.full((2, K), np.nan)
    n = np.zeros(K)
    by_stage = [(_quarter_of_days(r.entry.astype(np.int64), quarters), r) for r in records]
    for k in range(K):
        # Identical (days, outcome) pairs once, with a count: a large history costs little.
        parts = [
            (s, Durations.from_arrays(r.t[q == k], r.kind[q == k]))
            for s, (q, r) in zip(stages, by_stage)
        ]
        n[k] = sum(o.n_total for _, o in parts)
        closed = sum(o.n_total - o.n(CENSORED) for _, o in parts)
        if n[k] < MIN_ENTRIES or closed < 5:
            continue

        def nll(x, parts=parts):
            return -sum(_stage_loglik(s, o, x[0], x[1]) for s, o in parts if o.n_total)

        res = optimize.minimize(
            nll,
            np.zeros(2),
            method="SLSQP",
            bounds=[(-4.0, 4.0), (-2.0, 2.0)],
            options={"maxiter": 200, "ftol": 1e-10},
        )
        cov = inverse_hessian(nll, res.x, h=1e-3)
        if cov is None or np.any(np.abs(res.x) > [3.9, 1.9]):
            continue
        y[:, k], v[:, k] = res.x, np.diag(cov)
    ref = n.copy()
    return (
        Series("conversion", quarters, y[0], v[0], ref, n),
        Series("speed", quarters, y[1], v[1], ref, n),
    )


def measure_pace(
    records: list[Records],
    stages: tuple[StageModel, ...],
    quarters: tuple[dt.date, ...],
    conversion: Series,
    speed: Series,
    first_close: int,
    clock: ClosingClock | None = None,
) -> Series:
    """Wins per calendar quarter against the fitted model's expectation (the compensator of
    ``calibrate.closing``) for the deals in the last stage, each with its entry quarter's
    measured conversion and speed effects, and on the won closing clock; only whole quarters
    after the history's first close are measured."""
    rec, stage = records[-1], stages[-1]
    last = int(max((r.entry + r.t).max() for r in records if r.t.size))
    # Observed and expected wins on the same days: from the first close in the history on
    # (exports often hold no closes before some date, while deals were at risk).
    a = first_close
    entry_q = _quarter_of_days(rec.entry.astype(np.int64), quarters)
    O, E = np.zeros(last - a + 1), np.zeros(last - a + 1)
    pi = stage.stall.mean if stage.stall is not None else 0.0
    for k in np.unique(entry_q):
        sel = entry_q == k
        shift = conversion.y[k] if np.isfinite(conversion.y[k]) else 0.0
        f = math.exp(speed.y[k]) if np.isfinite(speed.y[k]) else 1.0
        p = float(shifted_conversion(min(stage.conversion.mean, 1 - pi), pi, shift))
        cohort = dataclasses.replace(
            stage,
            conversion=BetaPosterior(p * 1e9, (1 - p) * 1e9),
            advance=dataclasses.replace(stage.advance, dist=stage.advance.dist.scaled(f)),
            lost=dataclasses.replace(stage.lost, dist=stage.lost.dist.scaled(f)),
        )
        o, e = observed_expected(
            Records(rec.entry[sel], rec.t[sel], rec.kind[sel]), cohort, ADVANCE, a, last
        )
        O, E = O + o, E + e
    days = np.arange(a, last + 1)
    if clock is not None:
        E = E * np.asarray(clock.won)[weeks_of_quarter(days)]
    k = _quarter_of_days(days, quarters)
    Ok = np.bincount(k, weights=O, minlength=len(quarters))
    Ek = np.bincount(k, weights=E, minlength=len(quarters))
    starts = np.array([_day(q) for q in quarters])
    ends = np.append(starts[1:], _day(add_quarters(quarters[-1], 1)))
    # Whole quarters of closes only: how a quarter closes shows at its end (wins bunch
    # there), so neither the quarter in progress nor one in which closes began part-way
    # (an export's first closes come in a burst of deals that could not close before) is
    # measured.
    seen = (starts >= first_close) & (ends <= last + 1)
    y = np.where(seen & (Ek > 0), np.log((Ok + 0.5) / (Ek + 0.5)), np.nan)
    return Series("pace", quarters, y, 1.0 / (Ok + 0.5), np.where(seen, Ek, 0.0), Ok, absolute=True)


# --- forecasting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    forgetting: float
    trend: bool
    season_sd: float  # 0: no quarter-of-year effect

    @property
    def complexity(self) -> int:
        """Parts beyond a steady level: forgetting, trend, season (each counts once)."""
        return int(self.forgetting < 1) + int(self.trend) + int(self.season_sd > 0)


STEADY = Candidate(1.0, False, 0.0)


def _design(k: np.ndarray, q: np.ndarray, origin: int, c: Candidate) -> np.ndarray:
    cols = [np.ones(k.size)]
    if c.trend:
        cols.append((k - origin).astype(float))
    if c.season_sd:
        cols += [(q == j).astype(float) for j in range(4)]
    return np.column_stack(cols)


def _prior(c: Candidate) -> np.ndarray:
    """Prior precision: flat on the level, almost flat on the trend, ridge on seasons."""
    d = [0.0] + ([1e-4] if c.trend else []) + ([1 / c.season_sd**2] * 4 if c.season_sd else [])
    return np.diag(d)


def _fit(k, q, y, v, tau2, c: Candidate, origin: int):
    """Weighted ridge regression on quarters ``k`` (effects ``y``, variances ``v``) made at
    ``origin``: the linear map from ``y`` to the coefficients and the design's origin."""
    X = _design(k, q, origin, c)
    w = c.forgetting ** (origin - k) / (v + tau2)
    XtW = X.T * w
    M = XtW @ X + _prior(c)
    try:
        A = np.linalg.solve(M, XtW)
    except np.linalg.LinAlgError:
        A = np.linalg.lstsq(M, XtW, rcond=None)[0]
    return A


def _predict(k, q, y, v, tau2, c: Candidate, origin: int, k_new, q_new):
    """Forecast mean and parameter variance of the effect in quarters ``k_new``."""
    A = _fit(k, q, y, v, tau2, c, origin)
    x = _design(np.atleast_1d(k_new), np.atleast_1d(q_new), origin, c)
    L = x @ A
    return L @ y, np.einsum("ij,j,ij->i", L, v + tau2, L), L


def rolling_loglik(s: Series, c: Candidate, tau2: float) -> float:
    """Sum over rolling origins of the log density of each measured quarter's effect under
    the forecast made from the measured quarters before it."""
    m = np.flatnonzero(s.measured)
    k = np.array([quarter_index(s.quarters[i]) for i in m])
    q = np.array([quarter_of_year(s.quarters[i]) for i in m])
    y, v = s.y[m], s.v[m]
    total = 0.0
    for j in range(MIN_TRAIN, m.size):
        mean, var, _ = _predict(k[:j], q[:j], y[:j], v[:j], tau2, c, k[j - 1], k[j], q[j])
        sd2 = var[0] + tau2 + v[j]
        total += -0.5 * (math.log(2 * math.pi * sd2) + (y[j] - mean[0]) ** 2 / sd2)
    return total


def candidates(s: Series) -> list[Candidate]:
    m = np.flatnonzero(s.measured)
    seen = np.bincount([quarter_of_year(s.quarters[i]) for i in m], minlength=4)
    seasons = (0.0,) + (SEASON_SD if seen.min() >= SEASON_YEARS else ())
    # Simplest first: a later one must forecast strictly better to be chosen.
    return [Candidate(f, t, sd) for sd in seasons for t in (False, True) for f in FORGETTING]


def shock_posterior(s: Series, c: Candidate) -> float:
    """E[τ²] given the rolling forecasts, under the stated half-normal prior (the prior's
    own E[τ²] = SHOCK_PRIOR_SD² when there are no rolling forecasts)."""
    tau = _TAU_GRID
    ll = np.array([rolling_loglik(s, c, t * t) for t in tau])
    width = np.gradient(tau)
    logw = ll - 0.5 * (tau / SHOCK_PRIOR_SD) ** 2 + np.log(width)
    w = np.exp(logw - logw.max())
    return float(np.dot(w, tau * tau) / w.sum())


def best_shock(s: Series, c: Candidate) -> tuple[float, float]:
    """The shock variance ``τ²`` that makes the rolling forecasts likeliest, and their
    log-likelihood."""
    at_zero = rolling_loglik(s, c, 0.0)
    res = optimize.minimize_scalar(
        lambda tau: -rolling_loglik(s, c, tau * tau),
        bounds=(1e-4, MAX_SHOCK),
        method="bounded",
        options={"xatol": 1e-4},
    )
    if -res.fun > at_zero:
        return float(res.x) ** 2, -float(res.fun)
    return 0.0, at_zero


@dataclass(frozen=True)
class Forecast:
    """What ``forecast`` found for one channel (``effects`` is what the model keeps)."""

    series: Series
    candidate: Candidate | None
    tau2: float
    effects: PeriodEffects | None


def forecast(s: Series) -> tuple[Forecast, list[str]]:
    """Choose the candidate and shock by rolling origins; the effects of the last ``PAST``
    quarters (their posterior) and the next ``FUTURE`` ones (the forecast and its shock)."""
    m = np.flatnonzero(s.measured)
    if m.size == 0:
        return _unmeasured(s)
    notes = []
    thin = m.size - MIN_TRAIN < MIN_ORIGINS
    if thin:
        c = STEADY
        notes.append(
            f"{s.channel}: only {m.size} quarters measured, too few to tell a trend "
            f"or a season from noise (needs {MIN_TRAIN + MIN_ORIGINS}): the pooled "
            f"level, with quarter shocks from a stated prior (half-normal, sd "
            f"{SHOCK_PRIOR_SD:g}) updated by {max(m.size - MIN_TRAIN, 0)} rolling "
            "forecasts"
        )
    else:
        c = max(candidates(s), key=lambda c: best_shock(s, c)[1] - PENALTY * c.complexity)
    # The shock, one value for every quarter: the likeliest one, once enough rolling
    # forecasts measure it (0 when the quarters vary no more than their noise: a steady
    # history gets no wider bands); for a shorter history, too short to be sure of none,
    # its posterior mean square under the stated prior.
    tau2 = shock_posterior(s, c) if thin else best_shock(s, c)[0]
    k = np.array([quarter_index(s.quarters[i]) for i in m])
    q = np.array([quarter_of_year(s.quarters[i]) for i in m])
    y, v = s.y[m], s.v[m]
    origin = k[-1]
    # The pooled model's own value, the reference the effects are measured from: a weighted
    # mean of the measured effects (none for an absolute channel, measured against the
    # model itself).
    if s.absolute:
        rho = np.zeros(m.size)
    else:
        rho = np.where(np.isfinite(s.ref[m]), s.ref[m], 0.0)
        rho = rho / rho.sum() if rho.sum() > 0 else np.full(m.size, 1.0 / m.size)
    last = s.quarters[-1]
    past = [add_quarters(last, -i) for i in range(PAST - 1, -1, -1)]
    future = [add_quarters(last, i) for i in range(1, FUTURE + 1)]
    # History quarters: fitted value, then each measured one's posterior with its fit.
    k_all = np.array([quarter_index(x) for x in s.quarters])
    q_all = np.array([quarter_of_year(x) for x in s.quarters])
    fit_mean, fit_var, _ = _predict(k, q, y, v, tau2, c, origin, k_all, q_all)
    ref_y = float(rho @ y)
    means, sds = [], []
    for d in past:
        i = s.quarters.index(d) if d in s.quarters else None
        if i is None:  # before the history: its first quarter's fit
            i = 0
        prior_var = fit_var[i] + tau2
        if s.measured[i]:
            prec = 1 / s.v[i] + (1 / prior_var if prior_var > 0 else np.inf)
            if np.isinf(prec):
                mean, var = fit_mean[i], 0.0
            else:
                mean = (
                    s.y[i] / s.v[i] + (fit_mean[i] / prior_var if prior_var > 0 else 0.0)
                ) / prec
                var = 1 / prec
        else:
            mean, var = fit_mean[i], prior_var
        means.append(mean - ref_y)
        sds.append(math.sqrt(max(var, 0.0)))
    kf = np.array([quarter_index(d) for d in future])
    qf = np.array([quarter_of_year(d) for d in future])
    f_mean, _, L = _predict(k, q, y, v, tau2, c, origin, kf, qf)
    if c == STEADY and not s.absolute:
        # A steady level is the pooled model's own value: exactly it.
        f_mean, L = np.full(FUTURE, ref_y), np.tile(rho, (FUTURE, 1))
    # The forecast level's uncertainty, less the sampling noise of the pooled value, which
    # the model's own parameter draws carry already (the shocks' share they do not).
    cov = (L * (v + tau2)) @ L.T - float(rho @ (rho * v))
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    common_f = vecs * np.sqrt(np.maximum(vals, 0.0))
    common = [[0.0] * FUTURE for _ in past] + common_f.tolist()
    effects = PeriodEffects(
        periods=tuple(past + future),
        mean=tuple(float(x) for x in means + list(f_mean - ref_y)),
        sd=tuple(float(x) for x in sds + [math.sqrt(tau2)] * FUTURE),
        common=tuple(tuple(float(x) for x in row) for row in common),
        shock_sd=math.sqrt(tau2),
        trend=float(_coef(k, q, y, v, tau2, c, origin, "trend")),
        season=tuple(float(x) for x in _coef(k, q, y, v, tau2, c, origin, "season")),
        forgetting=c.forgetting,
        observed=int(m.size),
    )
    return Forecast(s, c, tau2, effects), notes


def _unmeasured(s: Series) -> tuple[Forecast, list[str]]:
    """A channel no quarter of the history measures: the pooled model's value, with the
    stated prior's shock in every quarter."""
    last = s.quarters[-1]
    periods = tuple(add_quarters(last, i) for i in range(1 - PAST, FUTURE + 1))
    tau2 = SHOCK_PRIOR_SD**2
    effects = PeriodEffects(
        periods,
        (0.0,) * len(periods),
        (SHOCK_PRIOR_SD,) * len(periods),
        shock_sd=SHOCK_PRIOR_SD,
        observed=0,
    )
    note = (
        f"{s.channel}: no quarter measured yet: the pooled model's value, with quarter "
        f"shocks from the stated prior (half-normal, sd {SHOCK_PRIOR_SD:g})"
    )
    return Forecast(s, STEADY, tau2, effects), [note]


def _coef(k, q, y, v, tau2, c: Candidate, origin: int, which: str):
    beta = _fit(k, q, y, v, tau2, c, origin) @ y
    if which == "trend":
        return beta[1] if c.trend else 0.0
    if not c.season_sd:
        return ()
    s = beta[-4:]
    return s - s.mean()


def steady(effects: PeriodEffects | None) -> bool:
    """Effects that change nothing: all zero, no uncertainty."""
    return effects is None or (not effects.uncertain and all(x == 0 for x in effects.mean))
