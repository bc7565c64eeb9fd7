"""Censored duration fitting: whole-day durations with competing outcomes.

A deal entering a stage either advances, is lost, or is still there at the as-of date
(right-censored). ``CompetingRisks`` fits the mixture ("cure-like") model of docs/model.md §5:
advance with probability ``p`` after ``T ~ A``, never close with probability ``π`` (a stall: a
cure fraction), else lost after ``T ~ L``. ``π`` is kept only when a likelihood-ratio test
against ``π = 0`` supports it; otherwise it is exactly 0 (docs/calibration.md).

Whole days. A duration recorded as ``t`` days is interval-censored in
``(max(t - 0.5, 0), t + 0.5]``; a deal still open ``c`` days after entering (at the end of the
as-of day) has ``T > c + 0.5``. Identical observations are grouped with counts, so a million
deals cost about as much as a thousand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from salesim.simulator.distributions import (
    PARAMETRIC_FAMILIES,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Weibull,
)
from salesim.simulator.model import BetaPosterior, Fitted

from .priors import LogNormalPrior

ADVANCE, LOST, CENSORED = 0, 1, 2
HALF = 0.5  # whole-day rounding: see module docstring
FALLBACK_P = 0.01  # asymptotic p-value below which a fit may be rejected...
FALLBACK_DISTANCE = 0.03  # ...if its cumulative-incidence distance is also this large
PRIOR = (1.0, 1.0)  # Beta prior of P(advance | entered)
STALL_LRT = 10.83  # 2·Δlog L that keeps a stall share: χ²₁ at p = 0.001 (on the
# boundary π = 0 the true level is 0.0005: conservative)
STALL_PRIOR = (1.0, 1.0, 1.0)  # Dirichlet prior of (advance, lost, stall) when π is kept

_CLASSES = {"lognormal": LogNormal, "gamma": Gamma, "weibull": Weibull, "exponential": Exponential}
# Bounds on log-parameters keep the optimiser away from overflow.
_BOUNDS = {
    "lognormal": [(math.log(1e-3), math.log(1e6)), (math.log(1e-2), math.log(20.0))],
    "gamma": [(math.log(1e-2), math.log(1e3)), (math.log(1e-4), math.log(1e7))],
    "weibull": [(math.log(1e-2), math.log(1e2)), (math.log(1e-3), math.log(1e7))],
    "exponential": [(math.log(1e-3), math.log(1e7))],
}
_LOGIT_BOUND = 25.0
_FLOOR = -1e4  # log-likelihood floor for impossible observations


# --- grouped observations ------------------------------------------------------------------
@dataclass(frozen=True)
class Durations:
    """Unique ``(t, kind)`` pairs with counts: ``t`` in whole days, ``kind`` one of ADVANCE,
    LOST, CENSORED."""

    t: np.ndarray
    kind: np.ndarray
    count: np.ndarray

    @staticmethod
    def from_arrays(t, kind, count=None) -> "Durations":
        t = np.asarray(t, dtype=float)
        kind = np.asarray(kind, dtype=np.int64)
        count = np.ones_like(t) if count is None else np.asarray(count, dtype=float)
        if t.size and (np.any(t < 0) or not np.all(np.isfinite(t))):
            raise ValueError("durations must be finite and ≥ 0")
        if t.size and np.any((kind < ADVANCE) | (kind > CENSORED)):
            raise ValueError("kind must be ADVANCE, LOST or CENSORED")
        whole = t.size > 0 and t.max() < 1e6 and np.all(t == np.floor(t))
        if whole:  # whole days (the usual case): count by bincount, O(n)
            span = int(t.max()) + 1
            counts = np.bincount(
                kind * span + t.astype(np.int64), weights=count, minlength=3 * span
            )
            idx = np.flatnonzero(counts > 0)
            return Durations(t=(idx % span).astype(float), kind=idx // span, count=counts[idx])
        key = kind * 1e9 + t  # t < 1e9 days
        uniq, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, weights=count, minlength=uniq.size)
        keep = counts > 0
        return Durations(
            t=(uniq - np.floor(uniq / 1e9) * 1e9)[keep],
            kind=np.floor(uniq / 1e9).astype(np.int64)[keep],
            count=counts[keep],
        )

    @staticmethod
    def empty() -> "Durations":
        return Durations(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))

    @staticmethod
    def concat(items) -> "Durations":
        items = list(items)
        if not items:
            return Durations.empty()
        return Durations.from_arrays(
            np.concatenate([d.t for d in items]),
            np.concatenate([d.kind for d in items]),
            np.concatenate([d.count for d in items]),
        )

    def part(self, kind: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.kind == kind
        return self.t[sel], self.count[sel]

    def n(self, kind: int) -> float:
        return float(self.count[self.kind == kind].sum())

    @property
    def n_total(self) -> float:
        return float(self.count.sum())


# --- family maths on log-parameters ----------------------------------------------------------
def _log_sf_cdf(family: str, theta: np.ndarray, x: np.ndarray):
    """``(log S(x), log F(x))`` for x > 0 under ``family`` with log-parameters ``theta``."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if family == "lognormal":
            z = (np.log(x) - theta[0]) / math.exp(theta[1])
            return special.log_ndtr(-z), special.log_ndtr(z)
        if family in ("weibull", "exponential"):
            if family == "weibull":
                k, log_scale = math.exp(theta[0]), theta[1]
            else:
                k, log_scale = 1.0, theta[0]
            h = np.exp(k * (np.log(x) - log_scale))  # cumulative hazard
            return -h, np.log(-np.expm1(-h))
        if family == "gamma":
            a, y = math.exp(theta[0]), x / math.exp(theta[1])
            return np.log(special.gammaincc(a, y)), np.log(special.gammainc(a, y))
    raise ValueError(f"unknown family {family!r}")


def _log_sf(family, theta, x):
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    pos = x > 0
    if pos.any():
        out[pos] = _log_sf_cdf(family, theta, x[pos])[0]
    return out


def _log_interval(family, theta, t):
    """log P(max(t - ½, 0) < T ≤ t + ½) for whole-day observations ``t``."""
    lo, hi = np.maximum(t - HALF, 0.0), t + HALF
    s_hi, f_hi = _log_sf_cdf(family, theta, hi)
    out = f_hi.copy()
    inner = lo > 0
    if inner.any():
        s_lo, f_lo = _log_sf_cdf(family, theta, lo[inner])
        sh, fh = s_hi[inner], f_hi[inner]
        with np.errstate(divide="ignore", invalid="ignore"):
            # Difference of survivals in the right tail, of CDFs in the left (no cancellation).
            by_sf = s_lo + np.log(-np.expm1(np.minimum(sh - s_lo, 0.0)))
            by_cdf = fh + np.log(-np.expm1(np.minimum(f_lo - fh, 0.0)))
        out[inner] = np.where(s_lo < math.log(0.5), by_sf, by_cdf)
    return _floor(out)


def _floor(x):
    return np.where(np.isfinite(x), np.maximum(x, _FLOOR), _FLOOR)


def make_dist(family: str, theta) -> Distribution:
    return _CLASSES[family](*(float(v) for v in np.exp(np.asarray(theta, dtype=float))))


def n_params(family: str) -> int:
    return len(_BOUNDS[family])


# --- one weighted censored fit (the M-step) -----------------------------------------------------
def minimize(fun, x0, bounds):
    """Bounded minimisation of a smooth function of a few parameters.

    SLSQP, not L-BFGS-B: with a multi-threaded BLAS, L-BFGS-B's many tiny BLAS calls cost
    ~20× more on a busy machine.
    """
    x0 = np.clip(np.asarray(x0, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds])
    return optimize.minimize(
        fun, x0, method="SLSQP", bounds=bounds, options={"maxiter": 500, "ftol": 1e-10}
    )


def _start(family: str, t_ev, w_ev, c, w_c) -> np.ndarray:
    x = np.maximum(t_ev, HALF)
    w = w_ev / w_ev.sum()
    lx = np.log(x)
    mu = float(np.dot(w, lx))
    sd = max(math.sqrt(max(float(np.dot(w, (lx - mu) ** 2)), 0.0)), 0.1)
    mean = float(np.dot(w, x))
    var = max(float(np.dot(w, (x - mean) ** 2)), 1e-2 * mean**2 + 1e-6)
    if family == "lognormal":
        theta = [mu, math.log(sd)]
    elif family == "gamma":
        theta = [math.log(mean**2 / var), math.log(var / mean)]
    elif family == "weibull":
        theta = [math.log(min(max(1.28 / sd, 0.05), 50.0)), mu + 0.5 * sd]
    else:  # exponential: the closed-form censored MLE
        exposure = float(np.dot(w_ev, x) + np.dot(w_c, c + HALF))
        theta = [math.log(max(exposure / w_ev.sum(), 1e-3))]
    return np.clip(theta, [b[0] for b in _BOUNDS[family]], [b[1] for b in _BOUNDS[family]])


def fit_family(
    family: str, t_ev, w_ev, c=None, w_c=None, start=None, prior: LogNormalPrior | None = None
):
    """Weighted MLE of one family: whole-day events ``t_ev`` (weights ``w_ev``) and
    right-censored whole days ``c`` (weights ``w_c``). Returns ``(theta, loglik)``.

    With a ``prior`` (lognormal only) it is the MAP and ``loglik`` includes the log prior."""
    t_ev, w_ev = np.asarray(t_ev, float), np.asarray(w_ev, float)
    c = np.zeros(0) if c is None else np.asarray(c, float)
    w_c = np.zeros(0) if w_c is None else np.asarray(w_c, float)
    keep = w_c > 0
    c, w_c = c[keep], w_c[keep]
    if prior is not None and family != "lognormal":
        raise ValueError("a duration prior is on a lognormal's parameters")

    def nll(theta):
        ll = np.dot(w_ev, _log_interval(family, theta, t_ev))
        if c.size:
            ll += np.dot(w_c, _floor(_log_sf(family, theta, c + HALF)))
        if prior is not None:
            ll += prior.log_density(theta)
        return -ll

    if start is not None:
        x0 = np.asarray(start, float)
    elif prior is not None and w_ev.sum() <= 0:  # no events: start at the prior's centre
        x0 = prior.theta
    else:
        x0 = _start(family, t_ev, w_ev, c, w_c)
    res = minimize(nll, x0, _BOUNDS[family])
    return res.x, -float(res.fun)


def laplace_cov(family: str, theta, t_ev, w_ev, c, w_c, prior: LogNormalPrior):
    """``log_cov`` of a one-outcome MAP fit: the inverse Hessian of the negative log
    posterior at ``theta`` (None when not positive definite)."""

    def nlp(x):
        ll = np.dot(w_ev, _log_interval(family, x, t_ev))
        if len(c):
            ll += np.dot(w_c, _floor(_log_sf(family, x, c + HALF)))
        return -(ll + prior.log_density(x))

    return inverse_hessian(nlp, np.asarray(theta, float))


# --- Aalen–Johansen (the nonparametric reference) -----------------------------------------------
def aalen_johansen(obs: Durations):
    """Cumulative incidence of advancing and of being lost, at the whole days ``t`` where
    anything happens: ``(t, cif_advance, cif_lost, n_at_risk)``.

    Events at day ``t`` happen before censoring at ``t`` (censored deals outlived ``t + ½``).
    """
    days = np.unique(obs.t)
    idx = np.searchsorted(days, obs.t)
    d_a = np.bincount(
        idx, weights=np.where(obs.kind == ADVANCE, obs.count, 0.0), minlength=days.size
    )
    d_l = np.bincount(idx, weights=np.where(obs.kind == LOST, obs.count, 0.0), minlength=days.size)
    leave = np.bincount(idx, weights=obs.count, minlength=days.size)
    at_risk = obs.n_total - np.concatenate([[0.0], np.cumsum(leave)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        h_a = np.where(at_risk > 0, d_a / at_risk, 0.0)
        h_l = np.where(at_risk > 0, d_l / at_risk, 0.0)
    surv = np.cumprod(1.0 - h_a - h_l)
    before = np.concatenate([[1.0], surv[:-1]])
    return days, np.cumsum(before * h_a), np.cumsum(before * h_l), at_risk


def _empirical(days, cif, n_total) -> Empirical | None:
    inc = np.diff(np.concatenate([[0.0], cif]))
    keep = inc > 1e-12
    if not keep.any():
        return None
    return Empirical(
        tuple(float(x) for x in days[keep]),
        tuple(float(x) for x in inc[keep] * n_total),
        jitter=HALF,
    )


def ks_pvalue(distance: float, n_events: float) -> float:
    """Asymptotic Kolmogorov p-value of a cumulative-incidence distance (approximate:
    censoring and estimated parameters make it conservative)."""
    if n_events <= 0:
        return 1.0
    return float(stats.kstwobign.sf(distance * math.sqrt(n_events)))


def _log(x):
    return math.log(x) if x > 0 else _FLOOR


def _dist_sf(dist: Distribution, x):
    if isinstance(dist, Empirical):
        # Sum the mass above x: 1 - cdf leaves ~1e-16 beyond the last value, which would
        # make a deal older than every observed duration look possible for one outcome.
        v = np.asarray(dist.values, dtype=float)
        w = np.asarray(dist.weights, dtype=float)
        above = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]]) / w.sum()
        return above[np.searchsorted(v, np.asarray(x, dtype=float), side="right")]
    return np.clip(np.asarray(dist.sf(x), dtype=float), 0.0, 1.0)


def conversion_posterior(
    obs: Durations, advance: Distribution, lost: Distribution, prior=PRIOR
) -> BetaPosterior:
    """Posterior of P(advance) given the fitted durations, moment-matched to a Beta.

    Exact on a grid: advances contribute ``p``, losses ``1 - p``, and a deal still open at
    ``c`` days ``p·S_A(c+½) + (1-p)·S_L(c+½)``; the prior is Beta(``prior``).
    """
    n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
    c, w_c = obs.part(CENSORED)
    s_a, s_l = _dist_sf(advance, c + HALF), _dist_sf(lost, c + HALF)
    a0, b0 = prior[0] - 1 + n_a, prior[1] - 1 + n_l

    def logpost(p):
        p = np.atleast_1d(p)[:, None]
        mix = np.log(np.maximum(p * s_a + (1 - p) * s_l, 1e-300))
        return (a0 * np.log(p) + b0 * np.log1p(-p)).ravel() + (mix @ w_c if w_c.size else 0.0)

    # Locate the mode on the logit scale, then integrate on a grid around it.
    res = optimize.minimize_scalar(
        lambda z: -logpost(special.expit(z))[0],
        bounds=(-30, 30),
        method="bounded",
        options={"xatol": 1e-10},
    )
    mode = float(special.expit(res.x))
    h = 1e-4 * max(min(mode, 1 - mode), 1e-8)
    curv = (
        -(logpost(mode + h) - 2 * logpost(mode) + logpost(mode - h))[0] / h**2
        if 2 * h < min(mode, 1 - mode)
        else 0.0
    )
    sd = 1 / math.sqrt(curv) if curv > 0 else 0.5
    lo, hi = max(mode - 12 * sd, 1e-12), min(mode + 12 * sd, 1 - 1e-12)
    grid = np.linspace(lo, hi, 4001)
    lw = logpost(grid)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    mean = float(np.dot(w, grid))
    var = float(np.dot(w, (grid - mean) ** 2))
    var = min(max(var, 1e-18), mean * (1 - mean) * 0.999)
    total = mean * (1 - mean) / var - 1
    return BetaPosterior(alpha=mean * total, beta=(1 - mean) * total)


def _softmax(x):
    """(p, π) from (log p/(1-p-π), log π/(1-p-π))."""
    e = np.exp(np.array([x[0], 0.0, x[1]]) - max(x[0], 0.0, x[1]))
    e /= e.sum()
    return e[0], e[2]


def profile_stall_lrt(obs: Durations, advance: Distribution, lost: Distribution) -> float:
    """2·Δlog L of a stall share with the durations held fixed: the maximum over (p, π)
    against the maximum over p with π = 0. Used when a duration is empirical (a fitted
    family was rejected): an open deal older than every observed duration of both outcomes
    is impossible without a stall. So that a few such deals do not decide it alone, an
    empirical survival is floored at ``1 / (events + 1)``, the mass one more event beyond
    the longest observed could carry."""
    n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
    c, w_c = obs.part(CENSORED)
    s_a, s_l = _dist_sf(advance, c + HALF), _dist_sf(lost, c + HALF)
    if isinstance(advance, Empirical):
        s_a = np.maximum(s_a, 1 / (n_a + 1))
    if isinstance(lost, Empirical):
        s_l = np.maximum(s_l, 1 / (n_l + 1))

    def ll(p, s):
        mix = np.log(np.maximum(p * s_a + (1 - p - s) * s_l + s, 1e-300))
        return n_a * _log(p) + n_l * _log(1 - p - s) + float(mix @ w_c)

    two = optimize.minimize_scalar(
        lambda z: -ll(special.expit(z), 0.0),
        bounds=(-30, 30),
        method="bounded",
        options={"xatol": 1e-10},
    )
    p0 = float(special.expit(two.x))
    start = [math.log(max(p0, 1e-9) / max(0.9 * (1 - p0), 1e-9)), math.log(0.1 / 0.9)]
    three = minimize(lambda x: -ll(*_softmax(x)), start, [(-_LOGIT_BOUND, _LOGIT_BOUND)] * 2)
    return max(2 * (float(two.fun) - float(three.fun)), 0.0)


def stall_posterior(
    obs: Durations, advance: Distribution, lost: Distribution, prior=STALL_PRIOR
) -> tuple[BetaPosterior, BetaPosterior]:
    """Posteriors of P(advance) and P(stall) given the fitted durations, each moment-matched
    to a Beta (their correlation is dropped).

    Exact on a grid over the simplex: advances contribute ``p``, losses ``1 - p - π``, a deal
    still open at ``c`` days ``p·S_A(c+½) + (1-p-π)·S_L(c+½) + π``; the prior is
    Dirichlet(``prior``). The grid spans ±10 standard deviations of the Laplace
    approximation around the mode.
    """
    n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
    c, w_c = obs.part(CENSORED)
    s_a, s_l = _dist_sf(advance, c + HALF), _dist_sf(lost, c + HALF)
    a0, b0, s0 = prior[0] - 1 + n_a, prior[1] - 1 + n_l, prior[2] - 1

    def logpost(p, s):
        """log posterior (unnormalised) for arrays ``p`` (rows) × ``s`` (columns)."""
        p, s = np.atleast_1d(p)[:, None], np.atleast_1d(s)[None, :]
        q = 1 - p - s
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a0 * np.log(p) + b0 * np.log(q) + s0 * np.log(s)
        out = np.where(q > 0, out, -np.inf)
        if w_c.size:
            for i in range(p.shape[0]):
                mix = p[i, 0] * s_a[None, :] + q[i, :, None] * s_l[None, :] + s[0, :, None]
                out[i] += np.log(np.maximum(mix, 1e-300)) @ w_c
        return out

    res = minimize(
        lambda x: -float(logpost(*_softmax(x))[0, 0]),
        [0.0, -1.0],
        [(-_LOGIT_BOUND, _LOGIT_BOUND)] * 2,
    )
    mode = np.array(_softmax(res.x))
    h = 1e-4 * max(min(mode.min(), 1 - mode.sum()), 1e-8)
    f = lambda v: float(logpost(v[0], v[1])[0, 0])  # noqa: E731
    cov = _inverse_pd(-_hessian(f, mode, h)) if min(mode.min(), 1 - mode.sum()) > 2 * h else None
    n = obs.n_total + sum(prior)
    # Near a boundary (no Laplace approximation): the spread of a Beta with n observations.
    sd = np.sqrt(np.diag(cov)) if cov is not None else np.sqrt((mode + 1 / n) * (1 - mode) / n)
    axes = [
        np.linspace(max(m - 10 * d, 1e-12), min(m + 10 * d, 1 - 1e-12), 201)
        for m, d in zip(mode, sd)
    ]
    lw = logpost(axes[0], axes[1])
    w = np.exp(lw - lw.max())
    w /= w.sum()
    out = []
    for marginal, grid in ((w.sum(axis=1), axes[0]), (w.sum(axis=0), axes[1])):
        mean = float(np.dot(marginal, grid))
        var = float(np.dot(marginal, (grid - mean) ** 2))
        var = min(max(var, 1e-18), mean * (1 - mean) * 0.999)
        total = mean * (1 - mean) / var - 1
        out.append(BetaPosterior(alpha=mean * total, beta=(1 - mean) * total))
    return out[0], out[1]


# --- the competing-risk fitter -----------------------------------------------------------------
def _hessian(f, x, h=1e-4):
    n = x.size
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h * h)
    return H


def _inverse_pd(H):
    """Inverse of a positive-definite matrix, or None."""
    if not np.all(np.isfinite(H)):
        return None
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    cov = np.linalg.inv(H)
    return (cov + cov.T) / 2


def inverse_hessian(f, x, h: float = 1e-4):
    """Covariance from the curvature of a negative log-likelihood (or log-posterior) ``f``
    at its optimum ``x``: the inverse numerical Hessian (step ``h``), or None if not
    positive definite."""
    return _inverse_pd(_hessian(f, np.asarray(x, dtype=float), h))


class CompetingRisks:
    """Fit ``p``, the advance duration ``A``, the lost duration ``L`` and the stall share
    ``π`` (never closes) of one stage.

    Settings: ``families`` to try (AIC picks one per outcome), or a fixed ``advance`` /
    ``lost`` ``Fitted`` to borrow (an outcome that never happens anywhere), or an
    ``advance_prior`` / ``lost_prior`` (an outcome with fewer than ``priors.THIN`` events:
    that outcome is a lognormal and the fit maximises the likelihood times its prior, so
    ``loglik_`` and ``log_cov`` include the prior); ``stall=False`` fits the two-outcome
    model only. ``fit(obs)`` sets ``p_`` (MLE), ``pi_`` (MLE of the
    stall share, 0.0 when not kept), ``conversion_`` (Beta posterior), ``stall_`` (Beta
    posterior, or None when π = 0), ``lrt_`` (2·Δlog L of the stall model; 0.0 when not
    tried), ``advance_`` and ``lost_`` (``Fitted``), ``loglik_`` and ``notes_``.

    Method: EM on grouped data (E-step: the probability that each open deal eventually
    advances; M-step: ``p``, then weighted censored fits of A and L) gives starting values.
    Families are then chosen by AIC of the observed-data likelihood, maximised directly over
    (logit p, log-parameters); ``log_cov`` is the inverse numerical Hessian at the optimum.
    Then the stall model (open deals may also never close) is fitted with those families
    (EM with three classes, then direct maximisation); it is kept only if
    ``2·Δlog L > STALL_LRT``, and then its families are chosen again by AIC.
    """

    BORROWED = "borrowed"
    stall_: BetaPosterior | None  # set by fit()

    def __init__(
        self,
        families=PARAMETRIC_FAMILIES,
        *,
        advance: Fitted | None = None,
        lost: Fitted | None = None,
        advance_prior: LogNormalPrior | None = None,
        lost_prior: LogNormalPrior | None = None,
        max_iter: int = 30,
        tol: float = 1e-7,
        allow_empirical: bool = True,
        stall: bool = True,
    ):
        self.families = tuple(families)
        self.advance, self.lost = advance, lost
        self.advance_prior, self.lost_prior = advance_prior, lost_prior
        self.max_iter, self.tol = max_iter, tol
        self.allow_empirical = allow_empirical
        self.stall = stall

    def _families(self, prior) -> tuple[str, ...]:
        # A prior is on a lognormal's parameters; a few events cannot choose a family anyway.
        return ("lognormal",) if prior is not None else self.families

    # -- likelihood -------------------------------------------------------------------------
    def _log_sf_a(self, fam, th, x):
        if self.advance is not None:
            return np.log(np.maximum(_dist_sf(self.advance.dist, x), 1e-300))
        return _log_sf(fam, th, x)

    def _log_sf_l(self, fam, th, x):
        if self.lost is not None:
            return np.log(np.maximum(_dist_sf(self.lost.dist, x), 1e-300))
        return _log_sf(fam, th, x)

    def _ll(self, obs, p, fam_a, th_a, fam_l, th_l, s=0.0) -> float:
        """Observed-data log-likelihood: p·f_A(t) for advances, (1-p-π)·f_L(t) for losses,
        p·S_A(c+½) + (1-p-π)·S_L(c+½) + π for open deals (π = ``s``). A borrowed outcome's
        event terms are constant and left out; an outcome's prior is added."""
        t_a, w_a = obs.part(ADVANCE)
        t_l, w_l = obs.part(LOST)
        c, w_c = obs.part(CENSORED)
        lp, lq = _log(p), _log(1 - p - s)
        ll = w_a.sum() * lp + w_l.sum() * lq
        if self.advance is None and w_a.size:
            ll += np.dot(w_a, _log_interval(fam_a, th_a, t_a))
        if self.lost is None and w_l.size:
            ll += np.dot(w_l, _log_interval(fam_l, th_l, t_l))
        if w_c.size:
            mix = np.logaddexp(
                lp + self._log_sf_a(fam_a, th_a, c + HALF),
                lq + self._log_sf_l(fam_l, th_l, c + HALF),
            )
            if s > 0:
                mix = np.logaddexp(mix, math.log(s))
            ll += np.dot(w_c, _floor(mix))
        if self.advance is None and self.advance_prior is not None:
            ll += self.advance_prior.log_density(th_a)
        if self.lost is None and self.lost_prior is not None:
            ll += self.lost_prior.log_density(th_l)
        return float(ll)

    # -- EM ---------------------------------------------------------------------------------
    def _em(self, obs: Durations):
        """Starting values: families by weighted AIC in the first M-step, then EM."""
        t_a, w_a = obs.part(ADVANCE)
        t_l, w_l = obs.part(LOST)
        c, w_c = obs.part(CENSORED)
        n_a, n_l = w_a.sum(), w_l.sum()
        fam_a = fam_l = "lognormal"
        th_a = th_l = None
        pi = np.full(c.size, n_a / max(n_a + n_l, 1e-12))  # P(open deal will advance)
        ll_old = -np.inf
        for it in range(max(self.max_iter, 1)):
            p = float(np.clip((n_a + np.dot(w_c, pi)) / obs.n_total, 1e-12, 1 - 1e-12))
            if self.advance is None:
                fam_a, th_a = self._m_step(
                    fam_a, th_a, t_a, w_a, c, w_c * pi, it == 0, self.advance_prior
                )
            if self.lost is None:
                fam_l, th_l = self._m_step(
                    fam_l, th_l, t_l, w_l, c, w_c * (1 - pi), it == 0, self.lost_prior
                )
            num = math.log(p) + self._log_sf_a(fam_a, th_a, c + HALF)
            pi = np.exp(
                num - np.logaddexp(num, math.log1p(-p) + self._log_sf_l(fam_l, th_l, c + HALF))
            )
            ll = self._ll(obs, p, fam_a, th_a, fam_l, th_l)
            if abs(ll - ll_old) < self.tol * (1 + abs(ll)):
                break
            ll_old = ll
        return p, fam_a, fam_l, pi

    def _m_step(self, fam, th, t_ev, w_ev, c, w_c, choose, prior):
        if not choose:
            return fam, fit_family(fam, t_ev, w_ev, c, w_c, start=th, prior=prior)[0]
        fits = {f: fit_family(f, t_ev, w_ev, c, w_c, prior=prior) for f in self._families(prior)}
        best = min(fits, key=lambda f: 2 * n_params(f) - 2 * fits[f][1])
        return best, fits[best][0]

    def _em_stall(self, obs: Durations, p, fam_a, th_a, fam_l, th_l):
        """Starting values of the stall model, families fixed: EM with three classes from
        the two-outcome fit, the stall share starting at half the open deals' share.
        E-step: each open deal's probabilities of advancing, being lost and stalling."""
        t_a, w_a = obs.part(ADVANCE)
        t_l, w_l = obs.part(LOST)
        c, w_c = obs.part(CENSORED)
        n_a = w_a.sum()
        s = 0.5 * w_c.sum() / obs.n_total
        p = p * (1 - s)
        ll_old = -np.inf
        for _ in range(max(self.max_iter, 1)):
            la = math.log(p) + self._log_sf_a(fam_a, th_a, c + HALF)
            ll_ = math.log(max(1 - p - s, 1e-300)) + self._log_sf_l(fam_l, th_l, c + HALF)
            ls = np.full(c.size, math.log(s))
            norm = np.logaddexp(np.logaddexp(la, ll_), ls)
            r_a, r_l, r_s = np.exp(la - norm), np.exp(ll_ - norm), np.exp(ls - norm)
            p = float(np.clip((n_a + np.dot(w_c, r_a)) / obs.n_total, 1e-12, 1 - 1e-12))
            s = float(np.clip(np.dot(w_c, r_s) / obs.n_total, 1e-12, 1 - p - 1e-12))
            if self.advance is None:
                th_a = fit_family(
                    fam_a, t_a, w_a, c, w_c * r_a, start=th_a, prior=self.advance_prior
                )[0]
            if self.lost is None:
                th_l = fit_family(fam_l, t_l, w_l, c, w_c * r_l, start=th_l, prior=self.lost_prior)[
                    0
                ]
            ll = self._ll(obs, p, fam_a, th_a, fam_l, th_l, s)
            if abs(ll - ll_old) < self.tol * (1 + abs(ll)):
                break
            ll_old = ll
        return p, s, th_a, th_l, r_a, r_l

    # -- direct maximisation ------------------------------------------------------------------
    def _k(self, fam_a, fam_l):
        return (
            0 if self.advance is not None else n_params(fam_a),
            0 if self.lost is not None else n_params(fam_l),
        )

    def _maximise(self, obs, p, fam_a, th_a, fam_l, th_l, with_cov=False, s=None):
        """Maximise the observed-data likelihood over (logit p, θ_A, θ_L) from a start —
        or, with a stall share ``s``, over (log p/(1-p-π), log π/(1-p-π), θ_A, θ_L).
        Returns ``(p, π, θ_A, θ_L, loglik, cov)`` (cov of that vector, or None; π is 0.0
        without a stall share)."""
        k_a, k_l = self._k(fam_a, fam_l)
        m = 1 if s is None else 2  # mixing parameters before the durations'

        def unpack(x):
            if s is None:
                return special.expit(x[0]), 0.0, x[1 : 1 + k_a], x[1 + k_a :]
            e = np.exp(np.array([x[0], 0.0, x[1]]) - max(x[0], 0.0, x[1]))
            e /= e.sum()
            return e[0], e[2], x[2 : 2 + k_a], x[2 + k_a :]

        def nll(x):
            q, pi, a, b = unpack(x)
            return -self._ll(obs, q, fam_a, a, fam_l, b, pi)

        if s is None:
            mix0 = [special.logit(np.clip(p, 1e-9, 1 - 1e-9))]
        else:
            rest = max(1 - p - s, 1e-9)
            mix0 = [math.log(max(p, 1e-9) / rest), math.log(max(s, 1e-9) / rest)]
        x0 = np.concatenate([mix0, th_a if k_a else [], th_l if k_l else []])
        bounds = (
            [(-_LOGIT_BOUND, _LOGIT_BOUND)] * m
            + (_BOUNDS[fam_a] if k_a else [])
            + (_BOUNDS[fam_l] if k_l else [])
        )
        res = minimize(nll, x0, bounds)
        q, pi, a, b = unpack(res.x)
        cov = _inverse_pd(_hessian(nll, res.x)) if with_cov else None
        return float(q), float(pi), a, b, -float(res.fun), cov

    def _choose(self, obs, p, starts_a, starts_l, fam_a, fam_l, s=None):
        """Coordinate search over family pairs from the EM's choice: each outcome's family
        by AIC with the other's fixed, until neither changes. Returns the pair and the table
        ``{(fam_a, fam_l): (aic, p, π, θ_A, θ_L)}`` of every pair tried."""
        table = {}
        k_mix = 1 if s is None else 2

        def aic(fa, fl):
            if (fa, fl) not in table:
                q, pi, a, b, ll, _ = self._maximise(obs, p, fa, starts_a[fa], fl, starts_l[fl], s=s)
                table[fa, fl] = (2 * (k_mix + sum(self._k(fa, fl))) - 2 * ll, q, pi, a, b)
            return table[fa, fl][0]

        for _ in range(4):
            new_a = min(starts_a, key=lambda f: aic(f, fam_l))
            new_l = min(starts_l, key=lambda f: aic(new_a, f))
            if (new_a, new_l) == (fam_a, fam_l):
                break
            fam_a, fam_l = new_a, new_l
        for f in starts_a:  # every family's AIC with the other outcome's chosen family
            aic(f, fam_l)
        for f in starts_l:
            aic(fam_a, f)
        return fam_a, fam_l, table

    # -- fit --------------------------------------------------------------------------------
    def fit(self, obs: Durations) -> "CompetingRisks":
        self.notes_: list[str] = []
        n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
        if (self.advance is None and self.advance_prior is None and n_a <= 0) or (
            self.lost is None and self.lost_prior is None and n_l <= 0
        ):
            raise ValueError("an outcome without events needs a borrowed distribution or a prior")
        p, fam_a, fam_l, pi = self._em(obs)
        c, w_c = obs.part(CENSORED)
        t_a, w_a = obs.part(ADVANCE)
        t_l, w_l = obs.part(LOST)
        # Every family's start at the converged E-step weights.
        starts_a = (
            {
                f: fit_family(f, t_a, w_a, c, w_c * pi, prior=self.advance_prior)[0]
                for f in self._families(self.advance_prior)
            }
            if self.advance is None
            else {self.BORROWED: None}
        )
        starts_l = (
            {
                f: fit_family(f, t_l, w_l, c, w_c * (1 - pi), prior=self.lost_prior)[0]
                for f in self._families(self.lost_prior)
            }
            if self.lost is None
            else {self.BORROWED: None}
        )
        if self.advance is not None:
            fam_a = self.BORROWED
        if self.lost is not None:
            fam_l = self.BORROWED
        fam_a, fam_l, table = self._choose(obs, p, starts_a, starts_l, fam_a, fam_l)
        _, q, pi, a, b = table[fam_a, fam_l]
        q, pi, a, b, self.loglik_, cov = self._maximise(obs, q, fam_a, a, fam_l, b, with_cov=True)
        m = 1  # mixing parameters ahead of the durations' in ``cov``
        self.lrt_ = 0.0
        if self.stall and obs.n(CENSORED) > 0:
            stalled = self._fit_stall(obs, q, fam_a, a, fam_l, b, starts_a, starts_l)
            if stalled is not None:
                fam_a, fam_l, table, q, pi, a, b, self.loglik_, cov = stalled
                m = 2
        self.p_, self.pi_ = q, pi
        if cov is None:
            self.notes_.append(
                "information matrix not positive definite: fitted durations "
                "carry no parameter uncertainty"
            )
        k_a, _ = self._k(fam_a, fam_l)
        aj = aalen_johansen(obs)
        self.advance_ = self.advance or self._finish(
            "advance",
            fam_a,
            a,
            q,
            None if cov is None else cov[m : m + k_a, m : m + k_a],
            aj[0],
            aj[1],
            obs,
            {f: table[f, fam_l][0] for f in starts_a},
        )
        self.lost_ = self.lost or self._finish(
            "lost",
            fam_l,
            b,
            1 - q - pi,
            None if cov is None else cov[m + k_a :, m + k_a :],
            aj[0],
            aj[2],
            obs,
            {f: table[fam_a, f][0] for f in starts_l},
        )
        keep = pi > 0
        if (
            not keep
            and self.stall
            and obs.n(CENSORED) > 0
            and any(
                isinstance(f.dist, Empirical) and f is not borrowed
                for f, borrowed in ((self.advance_, self.advance), (self.lost_, self.lost))
            )
        ):
            # A rejected family was replaced by the empirical distribution, so the test
            # above (with the rejected families) does not speak for the durations in use:
            # test again with those durations held fixed.
            self.lrt_ = profile_stall_lrt(obs, self.advance_.dist, self.lost_.dist)
            keep = self.lrt_ > STALL_LRT
        if keep:
            self.conversion_, self.stall_ = stall_posterior(
                obs, self.advance_.dist, self.lost_.dist
            )
            if self.pi_ == 0:  # kept by the second test: no parametric MLE, the posterior
                self.pi_ = self.stall_.mean
            self.notes_.append(
                f"{self.stall_.mean:.1%} of entries never close (stall share "
                f"kept: likelihood ratio {self.lrt_:.1f} > {STALL_LRT})"
            )
        else:
            self.conversion_ = conversion_posterior(obs, self.advance_.dist, self.lost_.dist)
            self.stall_ = None
        return self

    def _fit_stall(self, obs, p, fam_a, th_a, fam_l, th_l, starts_a, starts_l):
        """The stall model, if the likelihood-ratio test keeps it (else None): EM and direct
        maximisation with the two-outcome families, the test, then families chosen again."""
        p3, s3, a3, b3, r_a, r_l = self._em_stall(obs, p, fam_a, th_a, fam_l, th_l)
        q, pi, a, b, ll, _ = self._maximise(obs, p3, fam_a, a3, fam_l, b3, s=s3)
        self.lrt_ = max(2 * (ll - self.loglik_), 0.0)
        if self.lrt_ <= STALL_LRT:
            return None
        c, w_c = obs.part(CENSORED)
        t_a, w_a = obs.part(ADVANCE)
        t_l, w_l = obs.part(LOST)
        starts_a = (
            {
                f: (a if f == fam_a else fit_family(f, t_a, w_a, c, w_c * r_a)[0])
                for f in self._families(self.advance_prior)
            }
            if self.advance is None
            else starts_a
        )
        starts_l = (
            {
                f: (b if f == fam_l else fit_family(f, t_l, w_l, c, w_c * r_l)[0])
                for f in self._families(self.lost_prior)
            }
            if self.lost is None
            else starts_l
        )
        fam_a, fam_l, table = self._choose(obs, q, starts_a, starts_l, fam_a, fam_l, s=pi)
        _, q, pi, a, b = table[fam_a, fam_l]
        q, pi, a, b, ll, cov = self._maximise(obs, q, fam_a, a, fam_l, b, with_cov=True, s=pi)
        return fam_a, fam_l, table, q, pi, a, b, ll, cov

    def _finish(self, what, fam, theta, share, cov, days, cif, obs, aic) -> Fitted:
        """The fitted outcome with its goodness of fit: sup |share·F(t+½) − CIF(t)| against
        the Aalen–Johansen cumulative incidence; the empirical CIF replaces a family that is
        both statistically and practically rejected."""
        dist = make_dist(fam, theta)
        ks = float(np.max(np.abs(cif - share * _dist_cdf(dist, days + HALF))))
        n_ev = obs.n(ADVANCE if what == "advance" else LOST)
        common = dict(
            n_events=n_ev,
            n_censored=obs.n(CENSORED),
            ks=ks,
            aic={f: float(v) for f, v in aic.items()},
        )
        n_closed = obs.n(ADVANCE) + obs.n(LOST)
        # A thin outcome keeps its lognormal: the empirical distribution of a few durations
        # would end at the longest of them.
        thin = (self.advance_prior if what == "advance" else self.lost_prior) is not None
        if (
            self.allow_empirical
            and not thin
            and ks > FALLBACK_DISTANCE
            and ks_pvalue(ks, n_closed) < FALLBACK_P
        ):
            emp = _empirical(days, cif, obs.n_total)
            if emp is not None:
                self.notes_.append(
                    f"{what} durations: best family {fam} rejected (distance "
                    f"{ks:.3f}, p < {FALLBACK_P}); using the empirical "
                    "(Aalen–Johansen) distribution"
                )
                return Fitted(emp, (), **common)
        log_cov = () if cov is None else tuple(tuple(float(x) for x in row) for row in cov)
        return Fitted(dist, log_cov, **common)


def _dist_cdf(dist: Distribution, x):
    return np.clip(np.asarray(dist.cdf(x), dtype=float), 0.0, 1.0)
