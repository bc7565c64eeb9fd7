"""Prospecting: activities per rep per working day, their yield in opportunities and the lag
between them; marketing-sourced opportunities per week.

Rep-days. A rep is active from hire to the day before leaving (reps.csv), or from its first
to its last recorded day; days are clipped to the period the data covers. Every working day
(Mon–Fri) of an active rep counts, a day without a row as zero. Weekend activity is moved to
the Friday before. Activity kinds (calls, emails, ...) count alike. Without activities.csv an
"activity" is an outbound opportunity (docs/model.md "Defaults"): the counts are outbound
opportunities per rep per working day, the yield is 1 and the lag 0.

The daily count of a ramped rep is NegBin(mean = per_rep_day × m_r, size = dispersion) with
m_r ~ LogNormal(median 1, rep_sigma) (docs/model.md §3). Only rep-days that are ramped
(tenure ≥ the fitted ramp, when reps.csv gives hire dates) and not overloaded (open deals ≤
the calibrated ``free_deals``, where the model says prospecting time is whole) enter the fit.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import optimize, special

from salesim.simulator.calendar import quarter_indexes
from salesim.simulator.distributions import Fixed
from salesim.simulator.model import (
    ActivityModel,
    BetaPosterior,
    Fitted,
    GammaPosterior,
    MarketingModel,
)
from salesim.simulator.units import DAYS_PER_MONTH

from .durations import (
    _BOUNDS,
    HALF,
    _hessian,
    _inverse_pd,
    _log_sf_cdf,
    make_dist,
    minimize,
    n_params,
)
from .history import earliest
from .priors import THIN

_EPOCH = dt.date(1970, 1, 1)
MARKETING = "marketing"  # the `source` value of marketing-sourced opportunities
MARKETING_WINDOW_DAYS = 182  # marketing arrivals: the last two quarters before as-of
MIN_REP_DAYS = 10  # reps with fewer fitted days stay out of rep_sigma
MAX_LAG_DAYS = 60  # longest activity→opportunity lag considered
MIN_LAG_OPPORTUNITIES = 100  # fewer outbound opportunities: lag 0 (documented default)
# A waiting time; the exponential is the gamma with shape 1. Other families fit the weekly
# pattern about as well but disagree on the tail, which daily totals barely inform.
LAG_FAMILIES = ("gamma", "exponential")
MAX_DISPERSION = 1e5  # a NegBin size beyond this is Poisson (dispersion = inf)
YIELD_ONE = BetaPosterior(1e9, 1e-9)  # "yield 1" as a posterior
NO_MARKETING = GammaPosterior(1e-9, 1.0)  # "0 per week" as a posterior


def _days(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Int32).to_numpy().astype(np.int64)


def weekday(day):
    """Monday = 0 for days since 1970-01-01 (a Thursday)."""
    return (np.asarray(day) + 3) % 7


def to_working_day(day):
    """Saturday and Sunday -> the Friday before."""
    wd = weekday(day)
    return np.asarray(day) - np.maximum(wd - 4, 0)


def outbound(opportunities: pl.DataFrame) -> pl.DataFrame:
    """Opportunities not sourced by marketing (all of them when ``source`` is unknown)."""
    src = pl.col("source").str.to_lowercase()
    return opportunities.filter(src.is_null() | (src != MARKETING))


# --- rep-days ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepDays:
    """One row per working day per active rep.

    ``count``: activities (``observed``) or outbound opportunities that day; ``tenure``:
    days since hired (NaN when unknown); ``open_deals``: the rep's open deals at the start
    of the day. ``period``: first and last day the data covers (days since 1970-01-01).
    """

    owners: tuple[str, ...]
    hired: np.ndarray  # per owner, days since 1970-01-01 (NaN: unknown)
    rep: np.ndarray
    day: np.ndarray
    count: np.ndarray
    tenure: np.ndarray
    open_deals: np.ndarray
    observed: bool
    period: tuple[int, int]

    @property
    def size(self) -> int:
        return int(self.rep.size)


def rep_days(history, as_of: dt.date) -> tuple[RepDays, list[str]]:
    """Build the rep-day table from activities (or outbound opportunities) up to ``as_of``."""
    notes: list[str] = []
    acts = history.activities
    observed = acts is not None and bool((acts["date"] <= as_of).any())
    if observed:
        ev = (  # lazily, so no copy of the other columns is made
            acts.lazy()
            .filter(pl.col("date") <= as_of)
            .select("owner", pl.col("date").alias("d"), pl.col("count").cast(pl.Float64).alias("n"))
            .collect()
        )
    else:
        ev = outbound(history.opportunities.filter(pl.col("created") <= as_of)).select(
            "owner", pl.col("created").alias("d"), pl.lit(1.0).alias("n")
        )
    day = _days(ev["d"])
    moved = weekday(day) >= 5
    if observed and ev.filter(pl.Series(moved) & (pl.col("n") > 0)).height:
        notes.append(
            f"{int(ev['n'].to_numpy()[moved].sum()):,} weekend activities counted "
            "on the Friday before"
        )
    # Lazily: polars' eager group_by on 3.5M rows peaked 240 MB higher (calibrating 1M deals).
    ev = (
        ev.lazy()
        .with_columns(d=pl.Series(to_working_day(day)))
        .group_by("owner", "d")
        .agg(pl.col("n").sum())
        .collect()
    )
    last_day = _days(pl.Series([as_of]))[0]
    if ev.height == 0:
        period = (last_day, last_day)
    elif observed:
        period = (int(ev["d"].min()), int(ev["d"].max()))
    else:
        period = (int(ev["d"].min()), last_day)

    first_last = ev.group_by("owner").agg(
        pl.col("d").min().alias("a"), pl.col("d").max().alias("b")
    )
    reps = history.reps
    if reps is not None and reps.height:
        r = reps.filter(pl.col("hired") <= as_of).select(
            "owner",
            hired=_epoch_days("hired"),
            end=pl.when(pl.col("left").is_not_null() & (pl.col("left") <= as_of))
            .then(_epoch_days("left") - 1)
            .otherwise(pl.lit(last_day)),
        )
        if observed:  # reps never seen in the activity data are not tracked there
            silent = r.filter(~pl.col("owner").is_in(first_last["owner"].implode())).height
            r = r.filter(pl.col("owner").is_in(first_last["owner"].implode()))
            if silent:
                notes.append(
                    f"{silent:,} reps in the reps file have no activity rows: left "
                    "out of the activity fit"
                )
        extra = first_last.filter(~pl.col("owner").is_in(r["owner"].implode()))
        if extra.height:
            notes.append(
                f"{extra.height:,} owners are not in the reps file: active between "
                "their first and last day, tenure unknown (treated as ramped)"
            )
        windows = pl.concat(
            [
                r.select(
                    "owner",
                    start=pl.col("hired"),
                    end="end",
                    hired=pl.col("hired").cast(pl.Float64),
                ),
                extra.select("owner", start="a", end="b", hired=pl.lit(None, pl.Float64)),
            ]
        )
    else:
        windows = first_last.select("owner", start="a", end="b", hired=pl.lit(None, pl.Float64))
    windows = windows.with_columns(
        start=pl.max_horizontal("start", pl.lit(period[0])),
        end=pl.min_horizontal("end", pl.lit(period[1])),
    ).sort("owner")
    owners = tuple(windows["owner"].to_list())
    start, end = windows["start"].to_numpy(), windows["end"].to_numpy()
    hired = windows["hired"].fill_null(np.nan).to_numpy().astype(float)
    length = np.maximum(end - start + 1, 0)
    offset = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    total = int(length.sum())
    rep = np.repeat(np.arange(len(owners)), length)
    day = np.arange(total, dtype=np.int64)  # in place: no temporary as long as the table
    day -= offset[rep]
    day += start[rep]

    index = {o: i for i, o in enumerate(owners)}
    count = np.zeros(total)
    if ev.height and total:
        ei = ev["owner"].replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy()
        ed = ev["d"].to_numpy().astype(np.int64)
        ok = ei >= 0
        ok[ok] &= (ed[ok] >= start[ei[ok]]) & (ed[ok] <= end[ei[ok]])
        np.add.at(count, offset[ei[ok]] + ed[ok] - start[ei[ok]], ev["n"].to_numpy()[ok])
    open_deals = _open_deals(history.opportunities, as_of, index, start, end, total)
    work = weekday(day) < 5
    rep, day = rep[work], day[work]
    rd = RepDays(
        owners=owners,
        hired=hired,
        rep=rep,
        day=day,
        count=count[work],
        tenure=(day - hired[rep]).astype(float),
        open_deals=open_deals[work],
        observed=observed,
        period=period,
    )
    return rd, notes


def _epoch_days(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int32).cast(pl.Int64)


def _open_deals(opps, as_of, index, start, end, total) -> np.ndarray:
    """Open deals per rep at the start of each day of its window: a deal created on day c
    and closed on day k is open at the start of days c+1 .. k (as in the demo generator)."""
    o = opps.filter(pl.col("created") <= as_of)
    ri = o["owner"].replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy()
    keep = ri >= 0
    ri = ri[keep]
    if total == 0 or ri.size == 0:
        return np.zeros(total)
    created = _days(o["created"])[keep]
    closed = o.select(pl.when(pl.col("closed") <= as_of).then(pl.col("closed")))["closed"]
    closed = (
        closed.cast(pl.Int32).fill_null(np.iinfo(np.int32).max).to_numpy().astype(np.int64)[keep]
    )
    # One difference array per rep window, with a spare slot for deals closing on its last
    # day; each window's running sum starts from zero.
    length = np.maximum(end - start + 1, 0)
    padded = length + 1
    poff = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
    diff = np.zeros(int(padded.sum()))
    a = np.maximum(created + 1, start[ri])
    b = np.minimum(closed + 1, end[ri] + 1)  # exclusive
    live = a < b
    np.add.at(diff, poff[ri[live]] + a[live] - start[ri[live]], 1.0)
    np.add.at(diff, poff[ri[live]] + b[live] - start[ri[live]], -1.0)
    # Each deal's +1 and -1 fall inside its own window's slots, so the running sum is back
    # to zero where each window starts: one cumulative sum serves them all, in place.
    np.cumsum(diff, out=diff)
    keep = np.ones(diff.size, dtype=bool)
    keep[poff + length] = False  # the spare slots
    return diff[keep]


# --- negative binomial per rep-day ---------------------------------------------------------------
@dataclass(frozen=True)
class NegBinFit:
    per_rep_day: float
    dispersion: float
    rep_sigma: float
    log_cov: tuple[tuple[float, ...], ...]
    n_rep_days: int
    n_reps: int


def fit_negbin(rep: np.ndarray, count: np.ndarray) -> NegBinFit:
    """Per-day NegBin with a lognormal rep multiplier.

    ``dispersion``: the MLE of the NegBin size with each rep's mean at its sample mean (the
    within-rep day-to-day spread). ``rep_sigma``: the spread of log rep means beyond their
    sampling noise (method of moments, floor 0). ``per_rep_day``: the geometric mean of rep
    means (the median rep), bias-corrected for the log. ``log_cov`` over (log per_rep_day,
    log dispersion): between-rep variance / reps, and the curvature of the profile likelihood.
    """
    reps, inv = np.unique(rep, return_inverse=True)
    n_r = np.bincount(inv).astype(float)
    mean_r = np.bincount(inv, weights=count) / n_r
    x = count.astype(np.int64)
    key, w = np.unique(inv * (x.max() + 1) + x, return_counts=True)
    g_rep, g_x = key // (x.max() + 1), (key % (x.max() + 1)).astype(float)
    m = mean_r[g_rep]

    def loglik(log_k):
        k = math.exp(log_k)
        ll = (
            special.gammaln(g_x + k)
            - special.gammaln(k)
            - special.gammaln(g_x + 1)
            + k * (np.log(k) - np.log(k + m))
            + special.xlogy(g_x, m)
            - g_x * np.log(k + m)
        )
        return float(np.dot(w, ll))

    bounds = (math.log(1e-3), math.log(MAX_DISPERSION))
    res = optimize.minimize_scalar(
        lambda z: -loglik(z), bounds=bounds, method="bounded", options={"xatol": 1e-6}
    )
    log_k = float(res.x)
    poisson = log_k > bounds[1] - 0.05
    k = math.inf if poisson else math.exp(log_k)
    if poisson:
        var_log_k = 1e-12
    else:
        h = 1e-3
        curv = -(loglik(log_k + h) - 2 * loglik(log_k) + loglik(log_k - h)) / h**2
        var_log_k = 1 / curv if curv > 0 else 1.0

    use = n_r >= MIN_REP_DAYS if (n_r >= MIN_REP_DAYS).any() else n_r > 0
    mr = np.maximum(mean_r[use], 0.5 / n_r[use])
    v = (1 / mr + (0.0 if poisson else 1 / k)) / n_r[use]  # sampling variance of log mean
    lr = np.log(mr) + v / 2
    R = int(use.sum())
    if R >= 2:
        between = float(np.var(lr, ddof=1))
        sigma2 = max(0.0, between - float(v.mean()))
        var_log_mu = between / R
    else:
        sigma2, var_log_mu = 0.0, float(v.mean())
    return NegBinFit(
        per_rep_day=float(math.exp(lr.mean())),
        dispersion=k,
        rep_sigma=math.sqrt(sigma2),
        log_cov=((max(var_log_mu, 1e-12), 0.0), (0.0, var_log_k)),
        n_rep_days=int(count.size),
        n_reps=int(reps.size),
    )


# --- activity → opportunity lag -----------------------------------------------------------------
def lag_weights(family: str, theta, days: int = MAX_LAG_DAYS) -> np.ndarray:
    """P(an activity on day d creates its opportunity on day d + j), j = 0..days: the
    opportunity is created at d + ½ + L, so j = floor(½ + L)."""
    edges = np.arange(days + 1) + HALF
    _, log_f = _log_sf_cdf(family, np.asarray(theta, float), edges)
    cdf = np.exp(log_f)
    return np.diff(np.concatenate([[0.0], cdf]))


def fit_lag(acts_by_day: np.ndarray, opps_by_day: np.ndarray):
    """Poisson regression of daily outbound opportunities on lagged daily activities:
    ``E[o_d] = y · Σ_j a_{d-j} g_j`` with ``g`` from a lag family; ``y`` is profiled out,
    families compared by AIC. Uses days with ``MAX_LAG_DAYS`` of activity history before
    them. Returns ``(Fitted, None)`` or ``(None, reason)``."""
    J = MAX_LAG_DAYS
    n = acts_by_day.size
    if n <= J + 1 or opps_by_day[J:].sum() < MIN_LAG_OPPORTUNITIES:
        return None, "too few outbound opportunities"
    o = opps_by_day[J:]
    # Column j of A holds activities j days before each fitted day.
    A = np.lib.stride_tricks.sliding_window_view(acts_by_day, J + 1)[:, ::-1]
    A = A[: o.size]

    def nll(theta, family):
        lam = A @ lag_weights(family, theta)
        if np.any(lam[o > 0] <= 0):
            return 1e12
        y = o.sum() / lam.sum()
        return -float(np.dot(o, np.log(np.maximum(y * lam, 1e-300))) - y * lam.sum())

    results = {}
    for family in LAG_FAMILIES:
        fits = [minimize(lambda t: nll(t, family), s, _BOUNDS[family]) for s in _lag_starts(family)]
        best = min(fits, key=lambda r: r.fun)  # the first of equals, as before
        results[family] = (2 * (n_params(family) + 1) + 2 * best.fun, best.x)
    family = min(results, key=lambda f: results[f][0])
    theta = results[family][1]
    cov = _inverse_pd(_hessian(lambda t: nll(t, family), theta))
    log_cov = tuple(tuple(float(v) for v in row) for row in cov) if cov is not None else ()
    return Fitted(
        make_dist(family, theta),
        log_cov,
        n_events=float(o.sum()),
        aic={f: float(v[0]) for f, v in results.items()},
    ), None


def _lag_starts(family):
    # Means of about 1, 4 and 15 days: the likelihood can have several local optima.
    for mean in (1.0, 4.0, 15.0):
        if family == "lognormal":
            yield [math.log(mean), math.log(0.8)]
        elif family in ("gamma", "weibull"):
            yield [math.log(1.5), math.log(mean / 1.4)]
        else:
            yield [math.log(mean)]


# --- the activity model -------------------------------------------------------------------------
def _fit_days(rd: RepDays, ramp_months: float | None, free_deals: float):
    """The rep-days the NegBin is fitted on: ramped and not overloaded (all, with a note,
    when fewer than ``MIN_REP_DAYS`` are)."""
    notes: list[str] = []
    keep = rd.open_deals <= free_deals
    if ramp_months is not None and ramp_months > 0:
        keep &= np.isnan(rd.tenure) | (rd.tenure >= ramp_months * DAYS_PER_MONTH)
    if keep.sum() < MIN_REP_DAYS:
        notes.append("activities: fewer than 10 ramped, unconstrained rep-days; all rep-days used")
        keep = np.ones(rd.size, dtype=bool)
    return keep, notes


@dataclass(frozen=True)
class RepQuarterFit:
    """Counts per rep-day as Poisson with a level per rep and one per calendar quarter:
    ``count ~ exp(a_r + b_k)·exposure`` (``rep_quarter_fit``). ``O`` and ``X`` are the counts
    and exposures per (rep, quarter) cell; ``phi`` the Pearson dispersion of the cells."""

    a: np.ndarray
    b: np.ndarray
    O: np.ndarray
    X: np.ndarray
    phi: float


def rep_quarter_fit(
    rep: np.ndarray,
    k: np.ndarray,
    count: np.ndarray,
    exposure: np.ndarray,
    n_reps: int,
    n_quarters: int,
    iterations: int = 50,
) -> RepQuarterFit:
    """The two-way Poisson fit by alternating closed-form updates: a rep's level is measured
    against its own quarters, so a rep who sold when everyone sold more (growth) or less does
    not look stronger or weaker than it is, and a quarter's against the reps then selling."""
    cell = rep * n_quarters + k
    size = n_reps * n_quarters
    O = np.bincount(cell, weights=count, minlength=size).reshape(n_reps, n_quarters)
    X = np.bincount(cell, weights=exposure, minlength=size).reshape(n_reps, n_quarters)
    a, b = np.zeros(n_reps), np.zeros(n_quarters)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(iterations):
            a = np.log(np.maximum(O.sum(axis=1), 0.5) / np.maximum(X @ np.exp(b), 1e-12))
            b = np.log(np.maximum(O.sum(axis=0), 0.5) / np.maximum(np.exp(a) @ X, 1e-12))
    mu = np.exp(a)[:, None] * np.exp(b)[None, :] * X
    used = X > 0
    df = max(int(used.sum()) - n_reps - n_quarters, 1)
    phi = max(float(np.sum(((O - mu) ** 2 / np.maximum(mu, 1e-12))[used])) / df, 1.0)
    return RepQuarterFit(a, b, O, X, phi)


def rep_levels(
    rd: RepDays, activity: ActivityModel, *, ramp_months: float | None, free_deals: float
) -> dict[str, tuple[float, float]]:
    """Each fitted rep's own activity level, for the forecast to give the reps on the team
    (docs/model.md §2): the posterior of its log multiplier relative to the median rep, under
    the LogNormal(0, rep_sigma) population. Its log level comes from a rep × quarter fit on
    the NegBin's rep-days (``rep_quarter_fit``: growth is the quarters', not the reps'),
    relative to the mean of the reps', with sampling variance ``(1/x̄ + 1/size)/n``; shrunk
    towards 0 by ``σ²/(σ² + v)``, with sd ``√(σ²v/(σ² + v))``."""
    keep, _ = _fit_days(rd, ramp_months, free_deals)
    rep, count = rd.rep[keep], rd.count[keep]
    qid = quarter_indexes(rd.day[keep])
    k = qid - qid.min()
    fit = rep_quarter_fit(rep, k, count, np.ones(count.size), len(rd.owners), int(k.max()) + 1)
    n = np.bincount(rep, minlength=len(rd.owners)).astype(float)
    use = n >= MIN_REP_DAYS if (n >= MIN_REP_DAYS).any() else n > 0
    s2 = activity.rep_sigma**2
    size = activity.dispersion
    z = fit.a - fit.a[use].mean()
    out = {}
    for r in np.flatnonzero(use):
        mean = max(fit.O[r].sum() / n[r], 0.5 / n[r])
        v = (1 / mean + (0.0 if math.isinf(size) else 1 / size)) / n[r]
        if s2 > 0:
            out[rd.owners[r]] = (float(z[r] * s2 / (s2 + v)), math.sqrt(s2 * v / (s2 + v)))
        else:
            out[rd.owners[r]] = (0.0, 0.0)
    return out


def fit_activities(
    history, as_of: dt.date, rd: RepDays, *, ramp_months: float | None, free_deals: float
) -> tuple[ActivityModel, list[str]]:
    """NegBin per rep-day, yield and lag (see the module docstring)."""
    if rd.size == 0:
        raise ValueError("no rep-days")
    keep, notes = _fit_days(rd, ramp_months, free_deals)
    nb = fit_negbin(rd.rep[keep], rd.count[keep])
    if math.isinf(nb.dispersion):
        notes.append("activities: no overdispersion between days; Poisson (dispersion = inf)")
    if not rd.observed:
        notes.append(
            "activities: no activities file; an activity is an outbound opportunity "
            "(yield 1, lag 0)"
        )
        return ActivityModel(
            nb.per_rep_day,
            nb.dispersion,
            nb.rep_sigma,
            nb.log_cov,
            YIELD_ONE,
            Fitted(Fixed(0.0)),
            nb.n_rep_days,
            observed=False,
        ), notes

    # Yield over every active rep-day: ramp and load change how much reps prospect, not
    # what an activity yields.
    lo, hi = rd.period
    opps = outbound(history.opportunities.filter(pl.col("created") <= as_of)).select(
        "owner", d=_epoch_days("created")
    )
    opps = opps.filter(
        pl.col("owner").is_in(list(rd.owners)) & (pl.col("d") >= lo) & (pl.col("d") <= hi)
    )
    n_acts = float(rd.count.sum())
    n_opps = float(opps.height)
    if n_opps > n_acts:
        notes.append(
            f"activities: more outbound opportunities ({n_opps:,.0f}) than activities "
            f"({n_acts:,.0f}); yield capped at 1"
        )
        n_opps = n_acts
    yield_post = BetaPosterior(1.0 + n_opps, 1.0 + n_acts - n_opps)

    acts_by_day = np.bincount(rd.day - lo, weights=rd.count, minlength=hi - lo + 1)
    opps_by_day = np.bincount(opps["d"].to_numpy() - lo, minlength=hi - lo + 1).astype(float)
    lag, reason = fit_lag(acts_by_day, opps_by_day)
    if lag is None:
        lag = Fitted(Fixed(0.0))
        notes.append(
            f"activities: {reason} to fit the activity→opportunity lag; lag 0 days (default)"
        )
    return ActivityModel(
        nb.per_rep_day,
        nb.dispersion,
        nb.rep_sigma,
        nb.log_cov,
        yield_post,
        lag,
        nb.n_rep_days,
        observed=True,
    ), notes


# --- marketing ----------------------------------------------------------------------------------
def fit_marketing(opportunities: pl.DataFrame, as_of: dt.date) -> tuple[MarketingModel, list[str]]:
    """Marketing-sourced opportunities per week over the last ``MARKETING_WINDOW_DAYS``
    (or since the first opportunity): Gamma(0.5 + n, weeks) posterior (Jeffreys prior)."""
    o = opportunities.filter(pl.col("created") <= as_of)
    if o.height == 0 or o["source"].null_count() == o.height:
        return MarketingModel(NO_MARKETING, 0.0), [
            "marketing: no source column; every opportunity counts as the rep's own "
            "(0 marketing opportunities per week)"
        ]
    first = earliest(o["created"])
    assert first is not None  # o has rows, and created is never null
    since = max(as_of - dt.timedelta(days=MARKETING_WINDOW_DAYS - 1), first)
    window = o.filter(pl.col("created") >= since)
    weeks = ((as_of - since).days + 1) / 7
    n = int((window["source"].str.to_lowercase() == MARKETING).sum())
    share = n / window.height if window.height else 0.0
    weekly = GammaPosterior(0.5 + n, weeks)
    notes = []
    if n < THIN:
        count = (
            "no marketing-sourced opportunities"
            if n == 0
            else f"only {n} marketing-sourced opportunit{'y' if n == 1 else 'ies'}"
        )
        notes.append(
            f"marketing: {count} in the {weeks:.1f} weeks before the as-of date "
            f"(< {THIN}): {weekly.mean:.2f} a week, the posterior Gamma(0.5 + {n}, "
            f"{weeks:.1f}) of the Jeffreys prior; treat it as rough"
        )
    return MarketingModel(weekly, share), notes
