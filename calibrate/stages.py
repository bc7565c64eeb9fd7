"""Per-stage competing-risk model: from stage history to one ``StageModel`` per stage.

Each entry of a deal into a stage is one observation: it advanced after ``t`` days, was lost
after ``t`` days, or is still there ``c`` days after entering (censored at the as-of date).
``calibrate.durations.CompetingRisks`` fits each stage; ``fit_cycle`` fits created → closed
as one step (``Model.cycle``: the win rate and cycle times).

Each fit may keep a stall share (deals that never leave the stage) when the data support
it (``CompetingRisks``, docs/calibration.md); ``StageModel.stall`` is then its posterior.
An outcome with fewer than ``priors.THIN`` events is a lognormal with a stated prior,
centred on all stages pooled when they have enough events (``Pooled.prior``), and noted.

Paths. A deal enters the first stage when created (unless its history says when). It may
skip stages: a skipped stage counts as entered and left on the same day (duration 0), so
the product of stage conversions stays the win rate. A deal won before the last stage passes
the remaining stages on its closing day. When a deal goes back to an earlier stage, only its
first entry into each stage counts, and entry dates are made non-decreasing along the stages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from salesim.simulator.distributions import PARAMETRIC_FAMILIES
from salesim.simulator.errors import InputError
from salesim.simulator.model import BetaPosterior, Fitted, StageModel

from .durations import (
    ADVANCE,
    CENSORED,
    HALF,
    LOST,
    PRIOR,
    CompetingRisks,
    Durations,
    conversion_posterior,
    fit_family,
    laplace_cov,
    make_dist,
    n_params,
)
from .history import History
from .priors import DURATION_PRIOR, THIN, LogNormalPrior

CYCLE_NAME = "created→closed"
SINGLE_STAGE = "Open"  # the one stage's name when the history has no stage names at all

_EPOCH = dt.date(1970, 1, 1)


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


# --- which stages are modelled ---------------------------------------------------------------
def resolve_stages(history_stages, requested=None, *, option: str = "--stages"):
    """The modelled stages and, for every history stage, the modelled stage it belongs to.

    ``requested`` (``--stages``) lists stages to model, in order; each must be a history
    stage. A history stage left out is merged into the nearest listed stage before it (the
    first listed stage if none is before it): time spent there counts as time in that stage.
    """
    history_stages = tuple(history_stages)
    if not requested:
        names = history_stages or (SINGLE_STAGE,)
        return names, {s: i for i, s in enumerate(history_stages)}
    names = tuple(requested)
    unknown = [s for s in names if s not in history_stages]
    if unknown:
        raise InputError(
            f"unknown stage {unknown[0]!r}",
            column=option,
            expected="one of " + ", ".join(history_stages)
            if history_stages
            else "no --stages: this history has no stage names",
        )
    dupes = sorted({s for s in names if names.count(s) > 1})
    if dupes:
        raise InputError(f"stage {dupes[0]!r} listed twice", column=option)
    mapping, current = {}, 0
    for s in history_stages:
        if s in names:
            current = names.index(s)
        mapping[s] = current
    return names, mapping


# --- observations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Records:
    """One stage's observations one by one: the day each entry happened (days since
    1970-01-01), its whole days in the stage ``t`` and ``kind`` (ADVANCE, LOST, CENSORED).
    ``Durations`` groups them for the fits; the calendar fits need the entry days."""

    entry: np.ndarray
    t: np.ndarray
    kind: np.ndarray

    def durations(self) -> Durations:
        return Durations.from_arrays(self.t, self.kind)


def cycle_records(opportunities: pl.DataFrame, as_of: dt.date) -> Records:
    """Created → closed: won = advanced, lost = lost, open = censored at the as-of date."""
    o = _closed_by(opportunities, as_of)
    created = o["created"].cast(pl.Int32).to_numpy().astype(float)
    closed = o["closed_"].cast(pl.Int32).to_numpy().astype(float)
    status = o["status_"].to_numpy()
    kind = np.where(status == "won", ADVANCE, np.where(status == "lost", LOST, CENSORED))
    end = np.where(kind == CENSORED, _day(as_of), closed)
    return Records(created, np.maximum(end - created, 0.0), kind.astype(np.int64))


def cycle_observations(opportunities: pl.DataFrame, as_of: dt.date) -> Durations:
    """``cycle_records`` grouped for the fits."""
    return cycle_records(opportunities, as_of).durations()


def _closed_by(opportunities: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Status and closing date as known at the end of ``as_of`` (a guard: ``History.as_of``
    already cuts; a deal closed later is still open then)."""
    late = pl.col("closed").is_null() | (pl.col("closed") > as_of)
    return opportunities.filter(pl.col("created") <= as_of).with_columns(
        status_=pl.when(late).then(pl.lit("open")).otherwise(pl.col("status")),
        closed_=pl.when(late).then(None).otherwise(pl.col("closed")),
    )


def stage_observations(history: History, names, mapping, as_of: dt.date):
    """One ``Durations`` per modelled stage, and notes about the data (see Paths above)."""
    records, notes = stage_records(history, names, mapping, as_of)
    return [r.durations() for r in records], notes


def stage_records(history: History, names, mapping, as_of: dt.date):
    """One ``Records`` per modelled stage, and notes about the data (see Paths above)."""
    S = len(names)
    opps = _closed_by(history.opportunities, as_of).with_row_index("row")
    created = opps["created"].cast(pl.Int32).to_numpy().astype(np.int64)
    closed = opps["closed_"].cast(pl.Int32).fill_null(0).to_numpy().astype(np.int64)
    status = opps["status_"].to_numpy()
    entry, keep, notes = _first_entries(history, opps, mapping, S, as_of)
    entry, created, closed, status = entry[keep], created[keep], closed[keep], status[keep]
    entry, reached = _paths(entry, created)
    last = entry[np.arange(entry.shape[0]), reached]
    early = (status != "open") & (closed < last)
    if early.any():
        notes.append(
            f"{int(early.sum())} opportunities closed before entering their last "
            "stage: closed on the day they entered it"
        )
        closed = np.where(early, last, closed)

    out = []
    for j in range(S):
        here = reached == j
        won, lost, open_ = (here & (status == s) for s in ("won", "lost", "open"))
        moved = reached > j  # left stage j for a later stage
        passed = (reached < j) & (status == "won")  # won before reaching j: passed it
        t = np.concatenate(
            [
                entry[moved, j + 1] - entry[moved, j] if j + 1 < S else np.zeros(0),
                closed[won] - entry[won, j],
                closed[lost] - entry[lost, j],
                _day(as_of) - entry[open_, j],
                np.zeros(int(passed.sum())),
            ]
        )
        kind = np.concatenate(
            [
                np.full(int(moved.sum()) if j + 1 < S else 0, ADVANCE),
                np.full(int(won.sum()), ADVANCE),
                np.full(int(lost.sum()), LOST),
                np.full(int(open_.sum()), CENSORED),
                np.full(int(passed.sum()), ADVANCE),
            ]
        )
        # A deal won before reaching stage j passed it on its closing day.
        first = np.concatenate(
            [
                entry[moved, j] if j + 1 < S else np.zeros(0, np.int64),
                entry[won, j],
                entry[lost, j],
                entry[open_, j],
                closed[passed],
            ]
        )
        out.append(
            Records(first.astype(float), np.maximum(t, 0).astype(float), kind.astype(np.int64))
        )
    return out, notes


def _first_entries(history: History, opps: pl.DataFrame, mapping, S: int, as_of: dt.date):
    """(deals × stages) first day in each modelled stage (-1: no entry), which deals enter
    the stage fits, and notes."""
    n = opps.height
    entry = np.full((n, S), -1, dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    sh = history.stage_history
    if sh is None or sh.height == 0:  # not history.has_stage_history
        return entry, keep, []
    sh = sh.filter(pl.col("entered") <= as_of)
    unknown = sh.filter(~pl.col("stage").is_in(list(mapping))).head(1)
    if unknown.height:
        raise InputError(
            f"stage {unknown['stage'][0]!r} of opportunity "
            f"{unknown['opportunity_id'][0]!r} is not a known stage",
            file=history.source or None,
            column="stage",
            expected="one of " + ", ".join(mapping),
        )
    # Lazily: one query peaks lower than eager steps on millions of rows.
    firsts = (
        sh.lazy()
        .join(opps.lazy().select("opportunity_id", "row"), on="opportunity_id", how="inner")
        .with_columns(j=pl.col("stage").replace_strict(mapping, return_dtype=pl.Int64))
        .group_by("row", "j")
        .agg(pl.col("entered").min().cast(pl.Int32))
        .collect()
    )
    rows = firsts["row"].to_numpy()
    entry[rows, firsts["j"].to_numpy()] = firsts["entered"].to_numpy()
    has_rows = np.zeros(n, dtype=bool)
    has_rows[rows] = True
    # Deals without rows count from creation in the first stage, if that is where they are.
    current = opps["stage"].replace_strict(mapping, default=0, return_dtype=pl.Int64).to_numpy()
    orphans = ~has_rows & (current > 0)
    if orphans.any():
        return (
            entry,
            ~orphans,
            [
                f"{int(orphans.sum())} opportunities past the first stage have "
                "no stage history: left out of the stage fits (kept in the "
                "cycle)"
            ],
        )
    return entry, keep, []


def _paths(entry: np.ndarray, created: np.ndarray):
    """Complete each deal's path: the first stage from creation unless recorded, skipped
    stages entered and left the day the next one was entered, entry days non-decreasing.
    Returns the entry days and each deal's last stage reached."""
    S = entry.shape[1]
    entry = entry.copy()
    entry[:, 0] = np.where(entry[:, 0] < 0, created, entry[:, 0])
    reached = np.where(entry >= 0, np.arange(S), -1).max(axis=1)
    for j in range(S - 2, -1, -1):
        fill = (entry[:, j] < 0) & (j < reached)
        entry[:, j] = np.where(fill, entry[:, j + 1], entry[:, j])
    monotone = np.maximum.accumulate(np.where(entry >= 0, entry, 0), axis=1)
    return np.where(entry >= 0, monotone, -1), reached


# --- fits -----------------------------------------------------------------------------------
def single_outcome(t_ev, w_ev, c, w_c, prior: LogNormalPrior | None = None) -> Fitted:
    """One outcome alone (every censored deal counted as censored for it), best family by
    AIC; with a ``prior`` (fewer than ``THIN`` events), the lognormal MAP with its Laplace
    ``log_cov``. Used only when the other outcome never happens anywhere in the history."""
    if prior is not None:
        theta, _ = fit_family("lognormal", t_ev, w_ev, c, w_c, prior=prior)
        cov = laplace_cov("lognormal", theta, t_ev, w_ev, c, w_c, prior)
        return Fitted(
            make_dist("lognormal", theta),
            () if cov is None else tuple(tuple(float(x) for x in r) for r in cov),
            n_events=float(w_ev.sum()),
            n_censored=float(w_c.sum()),
        )
    fits = []
    for family in PARAMETRIC_FAMILIES:
        theta, ll = fit_family(family, t_ev, w_ev, c, w_c)
        fits.append((2 * n_params(family) - 2 * ll, family, theta))
    best = min(fits, key=lambda f: f[0])  # the lowest AIC, the first of equals as before
    return Fitted(
        make_dist(best[1], best[2]), n_events=float(w_ev.sum()), n_censored=float(w_c.sum())
    )


def _counts(obs: Durations) -> dict:
    return dict(
        n_entered=int(round(obs.n_total)),
        n_advanced=int(round(obs.n(ADVANCE))),
        n_lost=int(round(obs.n(LOST))),
        n_open=int(round(obs.n(CENSORED))),
    )


class Pooled:
    """Every stage's observations together (or the cycle's own), fitted once when first
    needed: a thin stage's prior is centred on it when it has ``THIN`` events of that
    outcome itself, a stage nobody entered takes its durations, and an outcome that never
    happens in it anywhere takes the other outcome's duration."""

    def __init__(self, obs: Durations, what: str = "all stages"):
        self.obs, self.what = obs, what
        self._fits: tuple[Fitted, Fitted] | None = None

    def fits(self) -> tuple[Fitted, Fitted]:
        """The pooled ``(advance, lost)`` durations."""
        if self._fits is None:
            self._fits = _fit_pooled(self.obs, self.what)
        return self._fits

    def never(self, kind: int) -> bool:
        """True when outcome ``kind`` happens nowhere in the pooled observations."""
        return self.obs.n(kind) == 0

    def prior(self, kind: int) -> LogNormalPrior:
        """The prior of a thin stage's ``kind`` duration: centred on the pooled fit when that
        has ``THIN`` events of the outcome (stages of one pipeline differ a few-fold), else
        the stated default."""
        if self.obs.n(kind) < THIN:
            return DURATION_PRIOR
        fitted = self.fits()[0 if kind == ADVANCE else 1]
        return LogNormalPrior.around(fitted.dist, f"centred on {self.what} pooled", floor=HALF)


_WORDS = {  # (events, duration) per outcome, for the cycle and for a stage
    ("cycle", ADVANCE): ("win", "time to win"),
    ("cycle", LOST): ("loss", "time to lose"),
    ("stage", ADVANCE): ("advance", "time to advance"),
    ("stage", LOST): ("loss", "time to lose"),
}


def _thin_note(
    what: str, name: str, kind: int, n: float, prior: LogNormalPrior, fitted: Fitted
) -> str:
    event, duration = _WORDS["cycle" if what == "cycle" else "stage", kind]
    plural = event + ("es" if event.endswith("s") else "s")
    count = f"no {plural}" if n == 0 else f"only {n:g} {event if n == 1 else plural}"
    rough = "the win rate and cycle times" if what == "cycle" else "its conversion and durations"
    by = "by the open deals alone" if n == 0 else "by them"
    return (
        f"{what} {name!r}: {count} (< {THIN}): {duration} is {prior.describe(' d')} "
        f"updated {by}: median {fitted.dist.quantile(0.5):.1f} d; treat {rough} as rough"
    )


def fit_stage(
    name: str, obs: Durations, pooled: Pooled, *, what: str = "stage"
) -> tuple[StageModel, list[str]]:
    """Fit one stage. An outcome with fewer than ``THIN`` events is a lognormal with the
    prior ``pooled.prior`` (noted); one that never happens in ``pooled`` takes the other
    outcome's duration; a stage never entered keeps the prior conversion."""
    notes = []
    if obs.n_total == 0:
        adv, lost = pooled.fits()
        notes.append(
            f"{what} {name!r}: no observations; conversion is the prior "
            f"Beta{PRIOR} and durations are borrowed from all stages pooled"
        )
        return StageModel(name, BetaPosterior(*PRIOR), adv, lost, **_counts(obs)), notes
    other = ADVANCE if pooled.never(LOST) else LOST if pooled.never(ADVANCE) else None
    if other is not None and obs.n(other) < THIN:
        # One outcome never happens and the other is thin: both are the thin one's fit, so
        # open deals, equally likely to end either way, say nothing about the conversion.
        prior = pooled.prior(other)
        t, w = obs.part(other)
        c, w_c = obs.part(CENSORED)
        one = single_outcome(t, w, c, w_c, prior)
        notes.append(_thin_note(what, name, other, obs.n(other), prior, one))
        return StageModel(
            name, conversion_posterior(obs, one.dist, one.dist), one, one, **_counts(obs)
        ), notes
    borrowed: dict[int, Fitted | None] = {}
    priors: dict[int, LogNormalPrior | None] = {}
    for i, kind in enumerate((ADVANCE, LOST)):
        borrowed[kind] = pooled.fits()[i] if pooled.never(kind) else None
        thin = borrowed[kind] is None and obs.n(kind) < THIN
        priors[kind] = pooled.prior(kind) if thin else None
    fit = CompetingRisks(
        advance=borrowed[ADVANCE],
        lost=borrowed[LOST],
        advance_prior=priors[ADVANCE],
        lost_prior=priors[LOST],
    ).fit(obs)
    for kind, fitted in ((ADVANCE, fit.advance_), (LOST, fit.lost_)):
        stated = priors[kind]
        if stated is not None:
            notes.append(_thin_note(what, name, kind, obs.n(kind), stated, fitted))
    notes += [f"{what} {name!r}: {x}" for x in fit.notes_]
    return StageModel(
        name, fit.conversion_, fit.advance_, fit.lost_, **_counts(obs), stall=fit.stall_
    ), notes


def _fit_pooled(obs: Durations, what: str) -> tuple[Fitted, Fitted]:
    """The pooled fit; an outcome with fewer than ``THIN`` events even pooled has the stated
    default prior; one with none takes the other outcome's duration."""
    n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
    c, w_c = obs.part(CENSORED)
    if n_a == 0 and n_l == 0:
        raise InputError(
            f"{what}: no deal has advanced, been won or lost up to the as-of "
            "date, so cycle times cannot be fitted",
            expected="history with closed deals before the as-of date",
        )
    if n_a == 0 or n_l == 0:
        kind = ADVANCE if n_a else LOST
        t, w = obs.part(kind)
        one = single_outcome(t, w, c, w_c, DURATION_PRIOR if w.sum() < THIN else None)
        return (one, one)
    fit = CompetingRisks(
        advance_prior=DURATION_PRIOR if n_a < THIN else None,
        lost_prior=DURATION_PRIOR if n_l < THIN else None,
    ).fit(obs)
    return fit.advance_, fit.lost_


def fit_stages(obs_list, names) -> tuple[tuple[StageModel, ...], list[str]]:
    pooled = Pooled(Durations.concat(obs_list))
    models, notes = [], []
    for name, obs in zip(names, obs_list):
        m, n = fit_stage(name, obs, pooled)
        models.append(m)
        notes += n
    return tuple(models), notes


def fit_cycle(obs: Durations) -> tuple[StageModel, list[str]]:
    """Created → closed as one step: ``conversion`` is the censoring-aware win rate."""
    if obs.n(ADVANCE) == 0:
        raise InputError(
            "no won deals up to the as-of date: win rate and time to win cannot be fitted",
            expected="history with won deals before the as-of date",
        )
    pooled = Pooled(obs, what="created→closed")
    model, notes = fit_stage(CYCLE_NAME, obs, pooled, what="cycle")
    if obs.n(LOST) == 0:
        notes.append("cycle: no lost deals; lost durations set equal to the won durations")
    return model, notes
