"""Deal size per segment: a lognormal fit on won amounts, or their empirical distribution.

Fitted on won deals' amounts (> 0): what a won deal books is what the forecast needs, and
open and lost deals' amounts are estimates (or list prices). In the model a deal's size
does not depend on its outcome, so the won amounts stand for every new deal's size. A
segment with fewer than ``MIN_WON`` won deals uses the positive amounts of all its deals
(with a note); with none at all it borrows the pooled fit of every segment.

``SegmentSize.count`` is the number of deals created in the segment (any status): it sets
the segment's share of new deals (a Dirichlet over counts in ``Model.draw``).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from scipy import stats

from simulator.distributions import Empirical, LogNormal
from simulator.errors import InputError
from simulator.model import Fitted, SegmentSize

from .durations import FALLBACK_DISTANCE, FALLBACK_P

MIN_WON = 5
MAX_POINTS = 500   # an empirical fallback keeps at most this many quantile points


def fit_size(amounts) -> tuple[Fitted, str | None]:
    """Lognormal MLE of positive amounts with its log-parameter covariance, or the empirical
    distribution when the lognormal is rejected (KS distance > 0.03 and p < 0.01).
    Returns the fit and a note (None when the lognormal is kept)."""
    x = np.asarray(amounts, dtype=float)
    x = x[x > 0]
    n = x.size
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
    fitted = Fitted(dist, log_cov, n_events=float(n), ks=float(ks.statistic),
                    aic={"lognormal": 4.0 - 2 * loglik})
    if ks.statistic > FALLBACK_DISTANCE and ks.pvalue < FALLBACK_P:
        return (Fitted(_empirical(x), (), n_events=float(n), ks=float(ks.statistic),
                       aic=fitted.aic),
                f"lognormal rejected (KS {ks.statistic:.3f}, p < {FALLBACK_P}); using the "
                "empirical distribution of amounts")
    return fitted, None


def _empirical(x: np.ndarray) -> Empirical:
    values, counts = np.unique(x, return_counts=True)
    if values.size > MAX_POINTS:
        # Equal-weight quantile points keep the file readable.
        q = (np.arange(MAX_POINTS) + 0.5) / MAX_POINTS
        values = np.quantile(x, q, method="inverted_cdf")
        counts = np.full(MAX_POINTS, x.size / MAX_POINTS)
    return Empirical(tuple(float(v) for v in values), tuple(float(c) for c in counts))


def fit_deal_sizes(opportunities: pl.DataFrame, as_of: dt.date
                   ) -> tuple[tuple[SegmentSize, ...], list[str]]:
    """One ``SegmentSize`` per segment (in order of first appearance)."""
    o = opportunities.filter(pl.col("created") <= as_of).with_columns(
        won=(pl.col("status") == "won") & pl.col("closed").is_not_null()
        & (pl.col("closed") <= as_of))
    notes: list[str] = []
    pooled_cache: list[Fitted] = []

    def pooled() -> Fitted:
        if not pooled_cache:
            won = o.filter(pl.col("won") & (pl.col("amount") > 0))["amount"].to_numpy()
            amounts = won if won.size >= MIN_WON else \
                o.filter(pl.col("amount") > 0)["amount"].to_numpy()
            if amounts.size == 0:
                raise InputError("no deal has a positive amount up to the as-of date",
                                 column="amount", expected="amounts > 0 on won deals")
            pooled_cache.append(fit_size(amounts)[0])
        return pooled_cache[0]

    segments = []
    for seg in o["segment"].unique(maintain_order=True).to_list():
        d = o.filter(pl.col("segment") == seg)
        won = d.filter(pl.col("won") & (pl.col("amount") > 0))["amount"].to_numpy()
        label = f"deal size {seg!r}"
        if won.size >= MIN_WON:
            fitted, note = fit_size(won)
        else:
            every = d.filter(pl.col("amount") > 0)["amount"].to_numpy()
            if every.size >= MIN_WON:
                fitted, note = fit_size(every)
                notes.append(f"{label}: only {won.size} won deals with an amount; fitted on "
                             f"the amounts of all {every.size} deals in the segment")
            else:
                fitted, note = pooled(), None
                notes.append(f"{label}: fewer than {MIN_WON} deals with an amount; using the "
                             "size of all segments pooled")
        if note:
            notes.append(f"{label}: {note}")
        segments.append(SegmentSize(str(seg), float(d.height), fitted))
    return tuple(segments), notes
