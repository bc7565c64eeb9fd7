"""Rep judgement, measured: how often the deals a rep puts in each forecast category are won
inside the quarter, and what the calls open now are worth on that record
(docs/calibration.md, "Forecast categories").

A **call** is a deal open at a quarter's start in an open category (``CALL_CATEGORIES``:
commit, best case, pipeline, omitted) as it stood then (``History.as_of``: the category and
expected close date of that day), with its expected close date inside the quarter or unknown.
Its outcome is whether it was won inside that quarter. Only quarters that ended by the as-of
date are measured: a deal still open at the end of the data is not a loss in a quarter that
has not ended. A deal open in several quarters is a call in each (counts are deal-quarters).

Per category: the share of calls won, by count (Jeffreys Beta posterior) and by amount (a
Beta over the effective number of calls); per team (the owner's manager) and per rep. A rep's
rate is shrunk toward the team's by a beta-binomial fitted over the reps (empirical Bayes), so
a handful of calls cannot make a rep look hot. A rep is named ("hot": converts below their
peers, over-calls; "cold": above, sandbags) when their record is implausible for a rep like
their peers and the shrunk rate's interval excludes the peers' rate (``rep_calls``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
from scipy import optimize, stats

from salesim.history import History, count_noun, earliest
from salesim.simulator.calendar import quarter_end, quarter_start, quarters_between
from salesim.simulator.model import BetaPosterior, CallRate, CallReliability, RepCall
from salesim.simulator.model_checks import CALL_CATEGORIES

from .priors import THIN

LEVEL = 0.9  # intervals shown for categories, teams and the calls open now
# Reps are many tests at once: naming one asks for a stricter interval than a rate shown.
NAMING_LEVEL = 0.95
MIN_DEALS = THIN  # fewest calls for a team or a rep to get a row of its own
MAX_CONCENTRATION = 1e4  # the beta-binomial's κ at which reps no longer differ (search bound)

CALL_COLUMNS = {
    "quarter": pl.Date,  # first day of the quarter the call was for
    "opportunity_id": pl.String,
    "owner": pl.String,
    "team": pl.String,  # the owner's manager; "" when unknown
    "forecast_category": pl.String,
    "amount": pl.Float64,
    "won": pl.Boolean,  # won inside that quarter
}


def has_categories(history: History) -> bool:
    """Whether the history says forecast categories at all."""
    o = history.opportunities
    in_rows = "forecast_category" in o.columns and o["forecast_category"].is_not_null().any()
    return bool(in_rows or history.category_changes is not None)


# --- the calls of past quarters -------------------------------------------------------------------
def past_calls(history: History, end: dt.date, day_of_quarter: int = 1) -> pl.DataFrame:
    """``CALL_COLUMNS``: every call of each quarter that ended by ``end``, as it stood at the
    start of ``day_of_quarter`` (1: the quarter's first day; a later day measures the calls
    still open then, as ``current_calls`` needs). ``history`` must already be cut at ``end``
    (its outcomes are the ones known then)."""
    o = history.opportunities
    first = earliest(o["created"])
    frames = [pl.DataFrame(schema=CALL_COLUMNS)]
    if first is None or not has_categories(history):
        return frames[0]
    teams = history.deal_fields.select(
        "opportunity_id", pl.col("manager").fill_null("").alias("team")
    )
    outcome = o.select(
        "opportunity_id",
        pl.col("status").alias("__status"),
        pl.col("closed").alias("__closed"),
        pl.col("amount").alias("__amount"),
    )
    for start in quarters_between(first, end):
        last = quarter_end(start)
        day = min(start + dt.timedelta(days=day_of_quarter - 1), last) - dt.timedelta(days=1)
        if last > end or day < first:
            continue
        calls = open_calls(history.as_of(day).opportunities, start)
        won = (pl.col("__status") == "won") & (pl.col("__closed") <= last)
        frames.append(
            calls.join(outcome, on="opportunity_id", how="left", maintain_order="left")
            .join(teams, on="opportunity_id", how="left", maintain_order="left")
            .select(
                pl.lit(start).alias("quarter"),
                "opportunity_id",
                "owner",
                pl.col("team").fill_null(""),
                "forecast_category",
                pl.col("__amount").alias("amount"),  # as last recorded, like every amount
                won.fill_null(False).alias("won"),
            )
        )
    return pl.concat(frames, how="vertical_relaxed").cast(CALL_COLUMNS)  # type: ignore[arg-type]  # polars types the schema as dict[str, DataType]


def open_calls(opportunities: pl.DataFrame, start: dt.date) -> pl.DataFrame:
    """The open deals of a snapshot that are calls for the quarter starting ``start``: in an
    open category, expected to close inside that quarter (or with no expected close date)."""
    if "forecast_category" not in opportunities.columns:
        return opportunities.clear()
    expected = (
        pl.col("expected_close")
        if "expected_close" in opportunities.columns
        else pl.lit(None, pl.Date)
    )
    in_quarter = expected.is_null() | expected.is_between(start, quarter_end(start))
    return opportunities.filter(
        (pl.col("status") == "open")
        & pl.col("forecast_category").is_in(CALL_CATEGORIES)
        & in_quarter
    )


# --- reliability: per category, team and rep ------------------------------------------------------
def fit_calls(history: History, end: dt.date) -> tuple[CallReliability | None, list[str]]:
    """The forecast categories' reliability from the quarters that ended by ``end``
    (``history`` cut at ``end``); None, with a note when categories exist, without calls."""
    if not has_categories(history):
        return None, []
    if history.category_changes is None:
        # A closed deal's exported category is "closed": the calls of past quarters would be
        # only the deals still open now, none of them won, and every category would look bad.
        return None, [
            "forecast categories without their history (a close-date or field-history file "
            "with the categories): their reliability is not measured"
        ]
    calls = past_calls(history, end)
    if calls.height == 0:
        return None, [
            "forecast categories: no whole quarter with calls before the as-of date: "
            "their reliability is not measured"
        ]
    notes = []
    rates, teams, reps = [], [], []
    for category in CALL_CATEGORIES:
        rows = calls.filter(pl.col("forecast_category") == category)
        if rows.height == 0:
            continue
        team_rates = {
            name: call_rate(rows.filter(pl.col("team") == name), category, name)
            for name in sorted(rows["team"].unique().to_list())
        }
        everyone = call_rate(rows, category, "")
        if rows.height < MIN_DEALS:
            notes.append(
                f"forecast category {category}: only {count_noun(rows.height, 'calls')} "
                f"measured (< {MIN_DEALS}): treat its reliability as rough"
            )
        found, kappa = rep_calls(rows, category)
        rates.append(dataclasses.replace(everyone, concentration=kappa))
        if len([t for t in team_rates if t]) > 1:
            teams += [r for name, r in team_rates.items() if name and r.n >= MIN_DEALS]
        reps += found
    quarters = calls["quarter"].n_unique()
    return CallReliability(
        quarters=quarters,
        min_deals=MIN_DEALS,
        naming_level=NAMING_LEVEL,
        categories=tuple(rates),
        teams=tuple(teams),
        reps=tuple(reps),
    ), notes


def call_rate(rows: pl.DataFrame, category: str, team: str) -> CallRate:
    """The share of ``rows`` (calls) won: by count, Beta(½ + won, ½ + lost); by amount, the
    same over the effective number of calls (Σa)²/Σa² with the amount share won."""
    n, won = rows.height, int(rows["won"].sum())
    amounts = rows["amount"].to_numpy()
    total = math.fsum(amounts)
    won_amount = math.fsum(amounts[rows["won"].to_numpy()])
    rate = BetaPosterior(0.5 + won, 0.5 + n - won)
    if total > 0:
        share = won_amount / total
        effective = total**2 / math.fsum(amounts**2)
        amount_rate = BetaPosterior(0.5 + share * effective, 0.5 + (1 - share) * effective)
    else:
        amount_rate = rate
    return CallRate(category, team, n, won, total, won_amount, rate, amount_rate)


def rep_calls(rows: pl.DataFrame, category: str) -> tuple[list[RepCall], float]:
    """Each rep's shrunk rate in ``category`` (reps with ``MIN_DEALS`` calls or more), and the
    reps' concentration κ.

    The shrunk rate of a rep of team t with ``won`` of ``n`` calls is Beta(κμ_t + won,
    κ(1 − μ_t) + n − won): μ_t the team's share won (everyone's when the team has fewer than
    ``MIN_DEALS`` calls), κ the beta-binomial's fitted over all reps, so it shrinks as much
    as the reps' spread allows.

    Naming (``_judged``) compares a rep with their peers, fitted without the rep: the team's
    other reps' rate (``team_rate``) and every other rep's spread about their team's rate.
    It goes step by step: the rep whose record is least plausible is named and set aside from
    everyone's peers, and the rest are judged again, until nobody more is named; otherwise
    an over-caller's drag on their team's rate would get their teammates named."""
    per_rep = (
        rows.group_by("owner", "team")
        .agg(pl.len().alias("n"), pl.col("won").sum().alias("won"))
        .sort("owner", "team")
    )
    reps, teams = per_rep["owner"].to_list(), np.array(per_rep["team"].to_list())
    n = per_rep["n"].to_numpy().astype(float)
    won = per_rep["won"].to_numpy().astype(float)
    everyone = np.ones(len(reps), dtype=bool)
    mu = np.array([_rate(n, won, _group(teams, n, everyone, t)) for t in teams])
    kappa = concentration(won, n, mu)
    tested = [int(i) for i in np.flatnonzero(n >= MIN_DEALS)]
    shrunk = {
        i: BetaPosterior(float(kappa * mu[i] + won[i]), float(kappa * (1 - mu[i]) + n[i] - won[i]))
        for i in tested
    }
    unnamed = everyone.copy()
    judged: dict[int, tuple[str, float, float]] = {}
    while True:
        judged.update(
            {
                i: _judged(i, teams, n, won, unnamed, shrunk[i], len(tested))
                for i in tested
                if unnamed[i]
            }
        )
        called = [i for i in tested if unnamed[i] and judged[i][0]]
        if not called:
            break
        unnamed[min(called, key=lambda i: judged[i][2])] = False
    return [
        RepCall(
            reps[i],
            str(teams[i]),
            category,
            int(n[i]),
            int(won[i]),
            shrunk[i],
            judged[i][1],
            judged[i][0],
        )
        for i in tested
    ], kappa


def _group(teams: np.ndarray, n: np.ndarray, among: np.ndarray, team: str) -> np.ndarray:
    """The reps of ``team`` ``among`` those given, or all of those when the team's have fewer
    than ``MIN_DEALS`` calls."""
    mates = among & (teams == team)
    return mates if n[mates].sum() >= MIN_DEALS else among


def _rate(n: np.ndarray, won: np.ndarray, group: np.ndarray) -> float:
    """The Jeffreys posterior mean share won by a group of reps."""
    return float((won[group].sum() + 0.5) / (n[group].sum() + 1))


def _judged(
    i: int,
    teams: np.ndarray,
    n: np.ndarray,
    won: np.ndarray,
    unnamed: np.ndarray,
    post: BetaPosterior,
    m: int,
) -> tuple[str, float, float]:
    """Rep ``i``'s call ("hot", "cold" or ""), their peers' rate, and the tail probability
    of their record among peers (the reps ``unnamed`` but ``i``).

    The peers' rates are a beta-binomial: mean the team's other reps' share won (everyone
    else's when those have fewer than ``MIN_DEALS`` calls), spread κ fitted on every peer
    about their team's rate (three or four teammates alone say little about it), widened by
    the error of that mean (the variances μ(1 − μ)/(κ + 1) add). The rep is named when their
    count lies in a tail of probability below (1 − ``NAMING_LEVEL``)/2m, m the reps tested
    in the category (Bonferroni: many reps are tested at once), and their shrunk interval
    at ``NAMING_LEVEL`` excludes the peers' rate."""
    peers = unnamed.copy()
    peers[i] = False
    centres = np.array([_rate(n, won, _group(teams, n, peers, t)) for t in teams])
    mine = _group(teams, n, peers, teams[i])
    kappa = concentration(won[peers], n[peers], centres[peers])
    kappa = 1 / (1 / (kappa + 1) + 1 / (n[mine].sum() + 1)) - 1
    mu = float(centres[i])
    a, b = kappa * mu, kappa * (1 - mu)
    low, high = stats.betabinom.cdf(won[i], n[i], a, b), stats.betabinom.sf(won[i] - 1, n[i], a, b)
    tail = (1 - NAMING_LEVEL) / (2 * m)
    lo, hi = post.interval(NAMING_LEVEL)
    if low < tail and hi < mu:
        return "hot", mu, float(low)
    if high < tail and lo > mu:
        return "cold", mu, float(high)
    return "", mu, float(min(low, high))


def concentration(won: np.ndarray, n: np.ndarray, mu: np.ndarray) -> float:
    """The κ = α + β of the beta-binomial (mean ``mu`` per rep) that makes the reps' counts
    likeliest, searched on log κ between 1 and ``MAX_CONCENTRATION``."""

    def nll(log_kappa: float) -> float:
        k = math.exp(log_kappa)
        return -float(stats.betabinom.logpmf(won, n, k * mu, k * (1 - mu)).sum())

    best = optimize.minimize_scalar(
        nll, bounds=(0.0, math.log(MAX_CONCENTRATION)), method="bounded"
    )
    return float(math.exp(best.x))


# --- the calls open now, on that record -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CategoryCall:
    """One category's open calls in the current quarter and, when past quarters measured the
    category, their history-converted value (else None)."""

    category: str
    deals: int
    amount: float  # open amount called in the category
    measured: int  # past calls behind the rate
    rate: float | None = None  # amount-weighted share won in quarter, same day of past quarters
    rate_interval: tuple[float, float] | None = None
    value: float | None = None  # amount × rate
    value_interval: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True)
class Calls:
    """The reps' call for the quarter of ``as_of`` beside a simulation."""

    as_of: dt.date
    quarter: tuple[dt.date, dt.date]
    quarters: int  # past quarters measured
    categories: tuple[CategoryCall, ...]

    @property
    def value(self) -> float:
        """The history-converted value of the measured categories' calls."""
        return math.fsum(c.value for c in self.categories if c.value is not None)

    def to_dict(self) -> dict:
        """The ``calls`` key of ``forecast --json``."""
        return {
            "as_of": self.as_of,
            "quarter": list(self.quarter),
            "quarters_measured": self.quarters,
            "level": LEVEL,
            "categories": [
                {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(c).items()
                }
                for c in self.categories
            ],
            "value": self.value,
        }


def current_calls(history: History, as_of: dt.date) -> Calls | None:
    """Each category's open calls for the quarter of ``as_of`` and what they are worth on the
    record: their amount times the amount-weighted share won in quarter of the calls open on
    the same day of past quarters (so a call made mid-quarter is judged against calls that
    had as little time left). None when the history has no forecast categories."""
    if not has_categories(history):
        return None
    h = history.as_of(as_of)
    start = quarter_start(as_of)
    day_of_quarter = (as_of - start).days + 2  # the end of as_of is the start of the next day
    # Past calls need the categories' history (``fit_calls``); without it none are judged.
    past = (
        past_calls(h, as_of, day_of_quarter)
        if h.category_changes is not None
        else pl.DataFrame(schema=CALL_COLUMNS)
    )
    now = open_calls(h.opportunities, start)
    rows = []
    for category in CALL_CATEGORIES:
        deals = now.filter(pl.col("forecast_category") == category)
        if deals.height == 0:
            continue
        measured = past.filter(pl.col("forecast_category") == category)
        amount = math.fsum(deals["amount"].to_list())
        row = CategoryCall(category, deals.height, amount, measured.height)
        if measured.height:
            posterior = call_rate(measured, category, "").amount_rate
            lo, hi = posterior.interval(LEVEL)
            row = dataclasses.replace(
                row,
                rate=posterior.mean,
                rate_interval=(lo, hi),
                value=amount * posterior.mean,
                value_interval=(amount * lo, amount * hi),
            )
        rows.append(row)
    return Calls(as_of, (start, quarter_end(start)), past["quarter"].n_unique(), tuple(rows))


# --- summaries ------------------------------------------------------------------------------------
def reliability_summary(calls: CallReliability | None) -> dict | None:
    """The ``calls`` key of the calibrate ``--json`` summary (None without categories): each
    category's and team's share won in quarter with its interval (``LEVEL``), and the reps
    named, with their evidence."""
    if calls is None:
        return None

    def rate(r: CallRate) -> dict:
        return {
            "category": r.category,
            **({"team": r.team} if r.team else {}),
            "calls": r.n,
            "won": r.won,
            "rate": r.rate.mean,
            "rate_interval": list(r.rate.interval(LEVEL)),
            "amount": r.amount,
            "amount_rate": r.amount_rate.mean,
            "amount_rate_interval": list(r.amount_rate.interval(LEVEL)),
        }

    return {
        "quarters": calls.quarters,
        "level": LEVEL,
        "categories": [rate(r) for r in calls.categories],
        "teams": [rate(r) for r in calls.teams],
        "named": [
            {
                "rep": r.rep,
                "team": r.team,
                "category": r.category,
                "call": r.call,
                "calls": r.n,
                "won": r.won,
                "rate": r.rate.mean,
                "rate_interval": list(r.rate.interval(calls.naming_level)),
                "peers_rate": r.team_rate,
            }
            for r in calls.reps
            if r.call
        ],
        "naming_level": calls.naming_level,
        "reps_judged": len({r.rep for r in calls.reps}),
    }
