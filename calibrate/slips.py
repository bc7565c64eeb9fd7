"""The slip model: how an open deal's expected close date relates to when it really closes.

Reps' dates run early, and a deal whose date has been pushed is not a fresh one. This fits,
censoring-aware, docs/model.md §6c from the close-date history (``History.close_date_changes``):
at snapshot days every ``STEP_DAYS`` before the as-of date, every open deal with an expected
close date is one observation — its days to that date ``d``, its pushes so far, and how it
ended: won or lost some days later, or still open at the as-of date (censored, never dropped).

Per bucket of pushes (0, 1, 2 or more) a deal is won with probability ``q`` — its log odds
``logit q_b + β·o``, ``o`` the stage model's log odds of a win at the deal's stage and age
(``win_odds``), so the date speaks beside the stage — and its time to the win, measured from
the day after the snapshot, is ``(max(d, 0) + OFFSET_DAYS) × T`` with
``T ~ LogNormal(e^μ, σ)``; else it is lost after ``(max(d, 0) + OFFSET_DAYS) × T_L`` with one
``T_L`` for every bucket. Whole days are interval-censored as in docs/calibration.md. A deal
open at several snapshots is one observation at each — the deals open on a given day are the
population a forecast meets, long-lived deals included as often as they are open — so its
observations are not independent: standard errors are cluster-robust (the sandwich of the
likelihood's curvature and the per-deal sums of its scores). A bucket with fewer than
``priors.THIN`` won deals gets normal priors centred on all buckets pooled (sd 1 on logit q
and on μ, 0.5 on log σ), and a note.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import expit, log_ndtr

from salesim.history import History
from salesim.simulator.distributions import LogNormal
from salesim.simulator.model import BetaPosterior, Fitted, SlipBucket, SlipModel, StageModel
from salesim.simulator.open_pipeline import win_odds

from .durations import inverse_hessian, minimize
from .priors import POOLED_SD, SIGMA_SD, THIN

STEP_DAYS = 14  # snapshots every two weeks back from the as-of date
OFFSET_DAYS = 7.0  # a date today or past says "soon", not "now": the time scale's floor
BUCKETS = 3  # pushes 0, 1, 2 or more
WON, LOST, OPEN = 0, 1, 2
_BOUND = 20.0  # |logit q|, |μ| and |log σ| stay inside this


@dataclass(frozen=True)
class Snapshots:
    """One row per (snapshot, open deal with an expected close date): the deal's time scale
    ``scale`` (days to its date, floored at 0, plus ``OFFSET_DAYS``), its bucket of pushes,
    ``kind`` (``WON``, ``LOST``, ``OPEN``), ``t`` (the day of the close, counted from the
    snapshot: the close lies in ``[t − 1, t)`` days after the day after it; open: ``t`` days of
    follow-up). ``deal`` numbers the deals. ``odds``: what the stage model says of the deal
    at the snapshot, its log odds of a win by its stage and age (``win_odds``)."""

    scale: np.ndarray
    bucket: np.ndarray
    kind: np.ndarray
    t: np.ndarray
    deal: np.ndarray
    odds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # none given: zeros

    def __post_init__(self):
        if self.odds.size == 0:
            object.__setattr__(self, "odds", np.zeros(self.t.size))

    @property
    def n_deals(self) -> int:
        return int(np.unique(self.deal).size)

    @staticmethod
    def of(
        history: History,
        as_of: dt.date,
        until: dt.date | None = None,
        stages: tuple[StageModel, ...] = (),
        mapping: dict[str, int] | None = None,
    ) -> Snapshots:
        """The snapshots of ``history`` (already cut at ``as_of``), deals followed to the end
        of ``until`` (default: ``as_of``; later only for a history that knows how every deal
        ends, as a demo's truth does). With the model's ``stages`` (and ``mapping``, history
        stage → model stage index, with a stage history) each row's ``odds``."""
        until = as_of if until is None else until
        changes = history.close_date_changes
        o = history.opportunities.select("opportunity_id", "created", "status", "closed")
        if changes is None or changes.height == 0:
            return Snapshots.empty()
        pushed = (pl.col("expected_close") > pl.col("previous")).fill_null(False)
        dated = (
            changes.with_row_index("__i")
            .sort("opportunity_id", "changed", "__i")
            .with_columns(pushed.cast(pl.Int64).cum_sum().over("opportunity_id").alias("pushes"))
            .select("opportunity_id", "changed", "expected_close", "pushes")
        )
        first = dated["changed"].min()
        assert isinstance(first, dt.date)
        frames = []
        day = as_of - dt.timedelta(days=STEP_DAYS)
        while day >= first:
            then = (
                dated.filter(pl.col("changed") <= day)
                .group_by("opportunity_id")
                .agg(pl.col("expected_close").last(), pl.col("pushes").last())
            )
            open_then = o.filter(
                (pl.col("created") <= day) & (pl.col("closed").is_null() | (pl.col("closed") > day))
            )
            frames.append(
                open_then.join(then, on="opportunity_id", how="inner").with_columns(
                    pl.lit(day).alias("snapshot")
                )
            )
            day -= dt.timedelta(days=STEP_DAYS)
        if not frames:
            return Snapshots.empty()
        rows = pl.concat(frames).sort("opportunity_id", "snapshot")
        days_to = (pl.col("expected_close") - pl.col("snapshot")).dt.total_days() - 1
        ended = pl.col("closed").is_not_null()
        rows = rows.with_columns(
            (days_to.clip(lower_bound=0) + OFFSET_DAYS).cast(pl.Float64).alias("scale"),
            pl.col("pushes").clip(upper_bound=BUCKETS - 1).alias("bucket"),
            pl.when(~ended)
            .then(OPEN)
            .when(pl.col("status") == "won")
            .then(WON)
            .otherwise(LOST)
            .alias("kind"),
            pl.when(ended)
            .then((pl.col("closed") - pl.col("snapshot")).dt.total_days())
            .otherwise((pl.lit(until) - pl.col("snapshot")).dt.total_days())
            .cast(pl.Float64)
            .alias("t"),
            pl.col("opportunity_id").rank("dense").alias("deal"),
        )
        odds = _odds(history, rows, stages, mapping) if stages else np.zeros(0)
        scale, bucket, kind, t, deal = (
            rows[c].to_numpy() for c in ("scale", "bucket", "kind", "t", "deal")
        )
        return Snapshots(scale, bucket, kind, t, deal, odds)

    @staticmethod
    def empty() -> Snapshots:
        z = np.zeros(0)
        return Snapshots(z, z.astype(np.int64), z.astype(np.int64), z, z.astype(np.int64))

    def deals(self, kind: int | None = None, bucket: int | None = None) -> int:
        """Deals that ended ``kind`` (None: any, open included) with an observation in
        ``bucket`` (None: any)."""
        m = np.ones(self.kind.size, dtype=bool)
        if kind is not None:
            m &= self.kind == kind
        if bucket is not None:
            m &= self.bucket == bucket
        return int(np.unique(self.deal[m]).size)


def _odds(
    history: History,
    rows: pl.DataFrame,
    stages: tuple[StageModel, ...],
    mapping: dict[str, int] | None,
) -> np.ndarray:
    """Each row's ``win_odds`` at its snapshot: the model stage of the deal's last stage entry
    on or before it (the first stage without one, or in a one-step model: entered when
    created), and its age there at the start of the next day, as a forecast would take it."""
    sh = history.stage_history
    entries = rows.select("opportunity_id", "snapshot", "created")
    if len(stages) > 1 and sh is not None and mapping:
        found = entries.sort("snapshot").join_asof(
            sh.select("opportunity_id", "stage", "entered").sort("entered"),
            left_on="snapshot",
            right_on="entered",
            by="opportunity_id",
            strategy="backward",
            check_sortedness=False,  # sorted above; polars cannot check within groups
        )
        found = entries.join(
            found.select("opportunity_id", "snapshot", "stage", "entered"),
            on=["opportunity_id", "snapshot"],
            how="left",
            maintain_order="left",
        )
        index = found["stage"].replace_strict(mapping, default=0, return_dtype=pl.Int64)
        stage = index.fill_null(0).to_numpy()
        entered = found.select(pl.coalesce("entered", "created")).to_series()
    else:
        stage = np.zeros(rows.height, dtype=np.int64)
        entered = entries["created"]
    age = (entries["snapshot"] - entered).dt.total_days().to_numpy() + 0.5
    return win_odds(stages, stage, np.maximum(age, 0.0))


def _log_interval(z1: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """log(Φ(z1) − Φ(z0)) for z0 < z1, stably."""
    a, b = log_ndtr(z1), log_ndtr(z0)
    with np.errstate(invalid="ignore"):
        return a + np.log(np.maximum(-np.expm1(b - a), 1e-300))


def _z(x: np.ndarray, scale: np.ndarray, mu, log_sigma) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return (np.log(x / scale) - mu) / np.exp(log_sigma)


class SlipFit:
    """Fit the slip model of docs/model.md §6c to ``Snapshots`` (module docstring).

    Parameters, in this order: per bucket ``logit q``, ``μ`` and ``log σ`` of the time to
    win, then ``μ_L`` and ``log σ_L`` of the time to lose, then the stage weight ``β``.
    Fitted attributes: ``theta_``, ``cov_`` (cluster-robust, ``_sandwich``; None if the
    curvature is not positive definite), ``thin_`` (buckets fitted with a prior), ``staged_``
    (whether the rows' stage odds differ, so that ``β`` is fitted), ``model_``, ``notes_``.
    """

    def __init__(self, buckets: int = BUCKETS):
        self.buckets = buckets

    def loglik(self, theta: np.ndarray, s: Snapshots) -> float:
        """Log-likelihood of the snapshots at parameters ``theta``."""
        return float(self.loglik_rows(theta, s).sum())

    def loglik_rows(self, theta: np.ndarray, s: Snapshots) -> np.ndarray:
        """Each observation's log-likelihood at parameters ``theta``."""
        k = self.buckets
        a, mu, ls = (theta[i * k : (i + 1) * k][s.bucket] for i in range(3))
        mu_l, ls_l, beta = theta[3 * k], theta[3 * k + 1], theta[3 * k + 2]
        a = a + beta * s.odds
        log_q, log_not = -np.logaddexp(0.0, -a), -np.logaddexp(0.0, a)
        hi = _z(s.t, s.scale, mu, ls)
        lo = _z(np.maximum(s.t - 1.0, 0.0), s.scale, mu, ls)
        hi_l = _z(s.t, s.scale, mu_l, ls_l)
        lo_l = _z(np.maximum(s.t - 1.0, 0.0), s.scale, mu_l, ls_l)
        ll = np.where(
            s.kind == WON,
            log_q + _log_interval(hi, lo),
            np.where(
                s.kind == LOST,
                log_not + _log_interval(hi_l, lo_l),
                np.logaddexp(log_q + log_ndtr(-hi), log_not + log_ndtr(-hi_l)),
            ),
        )
        return ll

    def fit(self, s: Snapshots) -> SlipFit:
        k = self.buckets
        pooled = _pooled(s)
        centre = np.concatenate([np.repeat(pooled[:3], k), pooled[3:]])  # β: pooled's too
        self.thin_ = tuple(b for b in range(k) if s.deals(WON, b) < THIN)
        sd = np.concatenate([np.full(k, POOLED_SD), np.full(k, POOLED_SD), np.full(k, SIGMA_SD)])
        prior_sd = np.full(3 * k + 3, np.inf)
        for b in self.thin_:
            prior_sd[[b, k + b, 2 * k + b]] = sd[[b, k + b, 2 * k + b]]
        # Without stage information (every row's odds alike) β says nothing: held at 0, and
        # the fit runs over the other parameters.
        self.staged_ = bool(s.odds.size and np.ptp(s.odds) > 0)
        free = slice(None) if self.staged_ else slice(0, 3 * k + 2)
        if not self.staged_:
            centre[-1] = 0.0

        def full(x: np.ndarray) -> np.ndarray:
            return x if self.staged_ else np.append(x, 0.0)

        def nlp(x: np.ndarray) -> float:
            prior = 0.5 * float(np.sum(((x - centre[free]) / prior_sd[free]) ** 2))
            return -self.loglik(full(x), s) + prior

        x = self._minimise(nlp, centre[free])
        self.theta_ = full(x)
        cov = self._sandwich(nlp, full, x, s, 1 / prior_sd[free] ** 2)
        self.cov_ = None
        if cov is not None:
            self.cov_ = np.zeros((3 * k + 3, 3 * k + 3))
            self.cov_[free, free] = cov
        self.model_ = self._model(s)
        self.notes_ = self._notes(s, pooled)
        return self

    @staticmethod
    def _minimise(f, start: np.ndarray) -> np.ndarray:
        res = minimize(f, start, [(-_BOUND, _BOUND)] * start.size)
        return np.asarray(res.x, dtype=float)

    def _sandwich(
        self, nlp, full, x: np.ndarray, s: Snapshots, prior: np.ndarray, h: float = 1e-4
    ) -> np.ndarray | None:
        """Cluster-robust covariance ``B⁻¹ (M + P) B⁻¹``: ``B`` the Hessian of the negative
        log-posterior, ``M`` the sum over deals of the outer product of each deal's summed
        scores, ``P`` the priors' precisions (``prior``), so that a bucket without data keeps
        its prior's variance and plenty of well-specified data give ``B⁻¹``."""
        bread = inverse_hessian(nlp, x)
        if bread is None:
            return None
        scores = np.empty((s.deal.size, x.size))
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = h
            up, down = self.loglik_rows(full(x + e), s), self.loglik_rows(full(x - e), s)
            scores[:, j] = (up - down) / (2 * h)
        per_deal = np.zeros((int(s.deal.max()) + 1, x.size))
        np.add.at(per_deal, s.deal, scores)
        return bread @ (per_deal.T @ per_deal + np.diag(prior)) @ bread

    def _model(self, s: Snapshots) -> SlipModel:
        k, th = self.buckets, self.theta_
        buckets = []
        for b in range(k):
            q = float(expit(th[b]))
            # Moment-matched Beta of q from the delta method: var q = (q(1 − q))² var logit q.
            var = (q * (1 - q)) ** 2 * self.cov_[b, b] if self.cov_ is not None else 0.0
            # (At least Beta's weight of two pseudo-deals: a variance that large is "unknown".)
            n = max(q * (1 - q) / var - 1, 2.0) if var > 0 else 1e9
            buckets.append(
                SlipBucket(
                    pushes=b,
                    won=BetaPosterior(q * n, (1 - q) * n),
                    won_time=self._fitted(th[k + b], th[2 * k + b], [k + b, 2 * k + b], s, b),
                    n_deals=float(s.deals(None, b)),
                    n_won=float(s.deals(WON, b)),
                )
            )
        lost = self._fitted(th[3 * k], th[3 * k + 1], [3 * k, 3 * k + 1], s, None)
        beta_sd = (
            math.sqrt(self.cov_[3 * k + 2, 3 * k + 2])
            if self.cov_ is not None and self.staged_
            else 0.0
        )
        return SlipModel(OFFSET_DAYS, tuple(buckets), lost, float(th[3 * k + 2]), beta_sd)

    def _fitted(self, mu, log_sigma, idx, s: Snapshots, bucket: int | None) -> Fitted:
        cov = (
            ()
            if self.cov_ is None
            else tuple(tuple(float(x) for x in r) for r in self.cov_[np.ix_(idx, idx)])
        )
        kind = WON if bucket is not None else LOST
        return Fitted(
            LogNormal(math.exp(mu), math.exp(log_sigma)),
            cov,
            n_events=float(s.deals(kind, bucket)),
            n_censored=float(s.deals(OPEN, bucket)),
        )

    def _notes(self, s: Snapshots, pooled: np.ndarray) -> list[str]:
        k = self.buckets
        label = [str(b) if b < k - 1 else f"{b}+" for b in range(k)]
        won = ", ".join(
            f"{label[b]}: {b_.won.mean:.0%}" for b, b_ in enumerate(self.model_.buckets)
        )
        notes = [
            f"slips: {s.n_deals} deals with an expected close date at {STEP_DAYS}-day "
            f"snapshots; P(won) at even stage odds by pushes {won}; stage weight "
            f"{self.model_.stage_weight:.2f}"
        ]
        if self.cov_ is None:
            notes.append(
                "slips: the likelihood's curvature is not positive definite: no uncertainty kept"
            )
        for b in self.thin_:
            notes.append(
                f"slips: only {s.deals(WON, b)} won deals pushed {label[b]} times "
                f"(< {THIN}): P(won) and the time to win have priors centred on all pushes "
                f"pooled (P(won) {expit(pooled[0]):.0%}, median time to win "
                f"{math.exp(pooled[1]):.2f} × (days to the date + {OFFSET_DAYS:g})); "
                "treat them as rough"
            )
        return notes


def _pooled(s: Snapshots) -> np.ndarray:
    """Every bucket as one: the thin buckets' prior centre and the full fit's start."""
    won, lost = np.sum(s.kind == WON), np.sum(s.kind == LOST)
    q = (won + 0.5) / (won + lost + 1.0)
    one = Snapshots(s.scale, np.zeros_like(s.bucket), s.kind, s.t, s.deal, s.odds)
    start = np.array([math.log(q / (1 - q)), 0.0, 0.0, 0.0, 0.0, 0.0])
    return SlipFit._minimise(lambda th: -SlipFit(1).loglik(th, one), start)


def fit_slips(
    history: History,
    as_of: dt.date,
    stages: tuple[StageModel, ...],
    mapping: dict[str, int] | None,
) -> tuple[SlipModel | None, list[str]]:
    """The slip model of ``history`` (cut at ``as_of``) and notes, beside the fitted
    ``stages`` (``mapping``: history stage → model stage index; None in a one-step model);
    None when the history has no close-date record, or no deal with one was both won and
    lost."""
    if history.close_date_changes is None:
        return None, []
    s = Snapshots.of(history, as_of, stages=stages, mapping=mapping)
    if s.deals(WON) == 0 or s.deals(LOST) == 0:
        return None, [
            "slips: no won and lost deals with an expected close date before the as-of "
            "date: expected close dates are not used"
        ]
    f = SlipFit().fit(s)
    return f.model_, f.notes_
