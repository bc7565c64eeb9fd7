"""Deal size per segment: a lognormal fit on won amounts, or their empirical distribution.

Fitted on won deals' amounts (> 0): what a won deal books is what the forecast needs, and
open and lost deals' amounts are estimates (or list prices). In the model a deal's size
does not depend on its outcome, so the won amounts stand for every new deal's size. A
segment with fewer than ``priors.THIN`` won amounts is a lognormal with a stated prior
updated by them (``fit_size(..., prior=)``), centred on what else says how big its deals
are: the amounts of all its deals, else the pooled fit of every segment (with a note).

``SegmentSize.count`` is the number of deals created in the segment (any status): it sets
the segment's share of new deals (a Dirichlet over counts in ``vector_params.draw_model``).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from scipy import stats

from salesim.simulator.distributions import Empirical, LogNormal
from salesim.simulator.errors import InputError
from salesim.simulator.model import Fitted, SegmentSize

from .durations import FALLBACK_DISTANCE, FALLBACK_P, inverse_hessian, minimize
from .priors import SIZE_PRIOR, THIN, LogNormalPrior, number

MAX_POINTS = 500  # an empirical fallback keeps at most this many quantile points


def fit_size(amounts, prior: LogNormalPrior | None = None) -> tuple[Fitted, str | None]:
    """Lognormal MLE of positive amounts with its log-parameter covariance, or the empirical
    distribution when the lognormal is rejected (KS distance > 0.03 and p < 0.01).
    Returns the fit and a note (None when the lognormal is kept).

    With a ``prior`` (fewer than ``THIN`` amounts): the lognormal MAP with its Laplace
    covariance, never replaced by an empirical distribution of a few amounts."""
    x = np.asarray(amounts, dtype=float)
    x = x[x > 0]
    n = x.size
    if prior is not None:
        return _fit_map(np.log(x), prior), None
    if n == 0:
        raise ValueError("no positive amounts")
    lx = np.log(x)
    mu = float(lx.mean())
    sigma = float(lx.std()) if n > 1 else 0.0
    if n < 2 or sigma <= 0:
        # One distinct amount: a point mass, kept as an empirical value.
        return Fitted(Empirical((float(np.exp(mu)),), (float(n),)), n_events=float(n)), None
    dist = LogNormal(float(math.exp(mu)), sigma)
    # MLE: log median ~ N(mu, sigma²/n); log sigma ~ N(., 1/(2n)), independent.
    log_cov = ((sigma**2 / n, 0.0), (0.0, 1 / (2 * n)))
    loglik = float(np.sum(stats.norm.logpdf(lx, mu, sigma) - lx))
    ks = stats.kstest(x, dist.cdf)
    fitted = Fitted(
        dist,
        log_cov,
        n_events=float(n),
        ks=float(ks.statistic),
        aic={"lognormal": 4.0 - 2 * loglik},
    )
    if ks.statistic > FALLBACK_DISTANCE and ks.pvalue < FALLBACK_P:
        return (
            Fitted(_empirical(x), (), n_events=float(n), ks=float(ks.statistic), aic=fitted.aic),
            f"lognormal rejected (KS {ks.statistic:.3f}, p < {FALLBACK_P}); using the "
            "empirical distribution of amounts",
        )
    return fitted, None


def _fit_map(lx: np.ndarray, prior: LogNormalPrior) -> Fitted:
    """Maximum a posteriori over (log median, log sigma) of log-amounts ``lx``."""
    if lx.size == 0 and not math.isfinite(prior.median_sd):
        raise ValueError("a flat prior on the median needs at least one amount")

    def nlp(theta):
        # Normal log-likelihood of the log-amounts (the Jacobian term is constant).
        s = math.exp(theta[1])
        return (
            float(np.sum((lx - theta[0]) ** 2)) / (2 * s * s)
            + lx.size * theta[1]
            - prior.log_density(theta)
        )

    centre = float(lx.mean()) if lx.size else math.log(prior.median)
    lo, hi = (float(lx.min()), float(lx.max())) if lx.size else (centre, centre)
    if math.isfinite(prior.median_sd):
        lo, hi = min(lo, math.log(prior.median)), max(hi, math.log(prior.median))
    bounds = [(lo - 10.0, hi + 10.0), (math.log(1e-3), math.log(20.0))]
    res = minimize(nlp, [centre, math.log(prior.sigma)], bounds)
    cov = inverse_hessian(nlp, res.x)
    return Fitted(
        LogNormal(math.exp(res.x[0]), math.exp(res.x[1])),
        () if cov is None else tuple(tuple(float(v) for v in r) for r in cov),
        n_events=float(lx.size),
    )


def _empirical(x: np.ndarray) -> Empirical:
    values, counts = np.unique(x, return_counts=True)
    if values.size > MAX_POINTS:
        # Equal-weight quantile points keep the file readable.
        q = (np.arange(MAX_POINTS) + 0.5) / MAX_POINTS
        values = np.quantile(x, q, method="inverted_cdf")
        counts = np.full(MAX_POINTS, x.size / MAX_POINTS)
    return Empirical(tuple(float(v) for v in values), tuple(float(c) for c in counts))


def fit_deal_sizes(
    opportunities: pl.DataFrame, as_of: dt.date
) -> tuple[tuple[SegmentSize, ...], list[str]]:
    """One ``SegmentSize`` per segment (in order of first appearance)."""
    o = opportunities.filter(pl.col("created") <= as_of).with_columns(
        won=(pl.col("status") == "won")
        & pl.col("closed").is_not_null()
        & (pl.col("closed") <= as_of)
    )
    notes: list[str] = []
    pooled_cache: list[tuple[Fitted, np.ndarray, str]] = []

    def pooled() -> tuple[Fitted, np.ndarray, str]:
        """Every segment's won amounts (every deal's amount with fewer than ``THIN`` of
        those): the fit, the amounts, what they are."""
        if not pooled_cache:
            won = o.filter(pl.col("won") & (pl.col("amount") > 0))["amount"].to_numpy()
            if won.size >= THIN:
                amounts, what = won, "the won amounts of all segments pooled"
            else:
                amounts = o.filter(pl.col("amount") > 0)["amount"].to_numpy()
                what = "every deal's amount pooled"
            if amounts.size == 0:
                raise InputError(
                    "no deal has a positive amount up to the as-of date",
                    column="amount",
                    expected="amounts > 0 on won deals",
                )
            fitted = fit_size(amounts, SIZE_PRIOR if amounts.size < THIN else None)[0]
            pooled_cache.append((fitted, amounts, what))
        return pooled_cache[0]

    segments = []
    for seg in o["segment"].unique(maintain_order=True).to_list():
        d = o.filter(pl.col("segment") == seg)
        won = d.filter(pl.col("won") & (pl.col("amount") > 0))["amount"].to_numpy()
        label = f"deal size {seg!r}"
        if won.size >= THIN:
            fitted, note = fit_size(won)
            if note:
                notes.append(f"{label}: {note}")
        else:
            fitted, note = _thin_segment(
                won, d.filter(pl.col("amount") > 0)["amount"].to_numpy(), pooled
            )
            notes.append(f"{label}: {note}")
        segments.append(SegmentSize(str(seg), float(d.height), fitted))
    return tuple(segments), notes


def _thin_segment(won: np.ndarray, every: np.ndarray, pooled) -> tuple[Fitted, str]:
    """A segment with fewer than ``THIN`` won amounts: a lognormal whose prior is centred on
    the amounts of all its deals (any status) when there are ``THIN``, else on the pooled
    fit when that has ``THIN`` amounts, else the default prior (flat log-median); updated
    by the won amounts. Returns the fit and its note."""
    count = (
        "no won deals"
        if won.size == 0
        else f"only {won.size} won deal{'' if won.size == 1 else 's'}"
    )
    head = f"{count} with an amount (< {THIN}): size is"
    ref_fit, ref_amounts, ref_what = pooled()
    if every.size >= THIN:
        prior = LogNormalPrior.around(
            fit_size(every)[0].dist,
            f"centred on the amounts of all {every.size} deals in the segment",
        )
    elif ref_amounts.size >= THIN:
        prior = LogNormalPrior.around(ref_fit.dist, f"centred on {ref_what}")
    elif won.size == 0:
        # Nothing to centre on and no won amount: a flat median needs some amounts.
        data, what = (every, "the segment's deals") if every.size else (ref_amounts, ref_what)
        fitted = fit_size(data, SIZE_PRIOR)[0]
        return fitted, (
            f"{head} {SIZE_PRIOR.describe()} fitted to {data.size} amounts of "
            f"{what}: median {number(fitted.dist.quantile(0.5))}; treat it as "
            "rough"
        )
    else:
        prior = SIZE_PRIOR
    fitted = fit_size(won, prior)[0]
    update = " updated by them" if won.size else ""
    return fitted, (
        f"{head} {prior.describe()}{update}: median "
        f"{number(fitted.dist.quantile(0.5))}; treat it as rough"
    )
