"""Calibration recovers the demo generator's truth, and nothing after the as-of date leaks in.

Demo histories (simulator/demo_history.py) are generated from a known ``Model``; every
fitted parameter with a comparable truth is checked: its 90% interval should contain the
truth about 90% of the time, and its point estimate should be within 4 standard errors.
"""

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from salesim.calibrate.fit import calibrate, summary
from salesim.simulator import demo_history
from salesim.simulator.model import dumps, loads

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def fits():
    out = []
    for seed in SEEDS:
        demo = demo_history.generate(seed, reps=20, quarters=8)
        out.append((demo, calibrate(demo.to_history(), demo.as_of)))
    return out


def _by_draws(name, fitted, truth_value, stat, rng, n=300):
    values = np.array([stat(fitted.draw(rng)) for _ in range(n)])
    lo, hi = np.quantile(values, [0.05, 0.95])
    return name, truth_value, stat(fitted.dist), lo, hi, values.std()


def _normal(name, truth_value, est, se):
    return name, truth_value, est, est - 1.645 * se, est + 1.645 * se, se


def _log_normal(name, truth_value, est, se_log):
    return (
        name,
        truth_value,
        est,
        est * math.exp(-1.645 * se_log),
        est * math.exp(1.645 * se_log),
        est * se_log,
    )


def _beta(name, truth_value, post):
    lo, hi = post.interval(0.9)
    return name, truth_value, post.mean, lo, hi, float(stats.beta(post.alpha, post.beta).std())


def _gamma(name, truth_value, post):
    lo, hi = post.interval(0.9)
    return name, truth_value, post.mean, lo, hi, math.sqrt(post.shape) / post.rate


def checks(demo, model):
    """(name, truth, estimate, 90% low, 90% high, standard error) for every parameter."""
    truth, rng = demo.truth, np.random.default_rng(0)
    median = lambda d: float(d.quantile(0.5))  # noqa: E731
    out = []
    for s, t in zip(model.stages, truth.stages, strict=True):
        out.append(_beta(f"{s.name} conversion", t.conversion.mean, s.conversion))
        out.append(
            _by_draws(f"{s.name} advance median", s.advance, median(t.advance.dist), median, rng)
        )
        out.append(_by_draws(f"{s.name} lost median", s.lost, median(t.lost.dist), median, rng))
    out.append(_beta("win rate", truth.cycle.conversion.mean, model.cycle.conversion))
    true_sizes = {s.name: s for s in truth.deal_size}
    total = sum(s.count for s in model.deal_size)
    true_total = sum(s.count for s in truth.deal_size)
    for s in model.deal_size:
        t = true_sizes[s.name].size.dist
        se = s.size.se_log()
        out.append(_log_normal(f"size {s.name} median", t.median, s.size.dist.median, se[0]))
        out.append(_log_normal(f"size {s.name} sigma", t.sigma, s.size.dist.sigma, se[1]))
        share = stats.beta(s.count, total - s.count)
        out.append(
            (
                f"share {s.name}",
                true_sizes[s.name].count / true_total,
                share.mean(),
                *share.ppf([0.05, 0.95]),
                share.std(),
            )
        )
    a, ta = model.activities, truth.activities
    se = np.sqrt(np.diag(a.log_cov))
    out.append(_log_normal("per_rep_day", ta.per_rep_day, a.per_rep_day, se[0]))
    out.append(_log_normal("dispersion", ta.dispersion, a.dispersion, se[1]))
    n_reps = demo.reps.height
    out.append(
        _normal(
            "rep_sigma",
            ta.rep_sigma,
            a.rep_sigma,
            max(a.rep_sigma, 0.05) / math.sqrt(2 * (n_reps - 1)),
        )
    )
    out.append(_beta("opportunity yield", ta.opportunity_yield.mean, a.opportunity_yield))
    out.append(_by_draws("lag mean", a.lag, ta.lag.dist.mean, lambda d: float(d.mean), rng))
    out.append(_gamma("marketing per week", truth.marketing.weekly.mean, model.marketing.weekly))
    out.append(
        _normal(
            "ramp months", truth.team.ramp_months, model.team.ramp_months, model.team.ramp_months_sd
        )
    )
    out.append(_gamma("attrition", truth.team.attrition.mean, model.team.attrition))
    return out


def test_intervals_cover_the_truth_at_about_the_nominal_rate(fits):
    rows = [r for demo, model in fits for r in checks(demo, model)]
    covered = [lo <= t <= hi for _, t, _, lo, hi, _ in rows]
    n = len(rows)
    assert n >= 75
    # Binomial(n, 0.9): more than 4 sd from n·0.9 would mean the intervals are wrong.
    sd = math.sqrt(n * 0.09)
    missed = [r[0] for r, c in zip(rows, covered) if not c]
    assert abs(sum(covered) - 0.9 * n) < 4 * sd, missed


def test_point_estimates_within_four_standard_errors(fits):
    for demo, model in fits:
        for name, t, est, _, _, se in checks(demo, model):
            assert se > 0, name
            assert abs(est - t) < 4 * se, (name, t, est, se)


def test_every_stage_and_part_is_calibrated(fits):
    demo, model = fits[0]
    assert model.stage_names == demo.truth.stage_names
    assert model.as_of == demo.as_of
    assert model.n_opportunities == demo.opportunities.height
    assert model.activities.observed and model.team.calibrated
    assert {s.name for s in model.deal_size} == {s.name for s in demo.truth.deal_size}
    for s in model.stages:
        assert s.n_entered == s.n_advanced + s.n_lost + s.n_open
        for fitted in (s.advance, s.lost):
            assert fitted.log_cov and len(fitted.aic) == 4 and fitted.ks < 0.05
    assert model.cycle.n_advanced == demo.opportunities.filter(pl.col("status") == "won").height
    s = summary(model)
    assert s["win_rate"] == model.win_rate
    assert [x["name"] for x in s["stages"]] == list(model.stage_names)


def test_model_round_trips_exactly(fits):
    model = fits[0][1]
    assert loads(dumps(model)) == model


def test_calibration_is_deterministic(fits):
    demo, model = fits[0]
    assert calibrate(demo.to_history(), demo.as_of) == model


def _tamper_after(history, as_of):
    """Change every value dated after ``as_of`` (keeping row counts, so notes match)."""
    later = dt.timedelta(days=5)
    o = history.opportunities
    flip = (
        pl.when(pl.col("status") == "won")
        .then(pl.lit("lost"))
        .otherwise(
            pl.when(pl.col("status") == "lost").then(pl.lit("won")).otherwise(pl.col("status"))
        )
    )
    created_late = pl.col("created") > as_of
    closed_late = pl.col("closed").is_not_null() & (pl.col("closed") > as_of)
    o = o.with_columns(
        status=pl.when(created_late | closed_late).then(flip).otherwise(pl.col("status")),
        closed=pl.when(closed_late).then(pl.col("closed") + later).otherwise(pl.col("closed")),
        amount=pl.when(created_late).then(pl.col("amount") * 3).otherwise(pl.col("amount")),
        source=pl.when(created_late).then(pl.lit("marketing")).otherwise(pl.col("source")),
    )
    sh = history.stage_history.with_columns(
        entered=pl.when(pl.col("entered") > as_of)
        .then(pl.col("entered") + later)
        .otherwise(pl.col("entered"))
    )
    a = history.activities.with_columns(
        count=pl.when(pl.col("date") > as_of)
        .then(pl.col("count") * 2 + 1)
        .otherwise(pl.col("count"))
    )
    r = history.reps.with_columns(
        left=pl.when(pl.col("left") > as_of).then(pl.col("left") + later).otherwise(pl.col("left")),
        hired=pl.when(pl.col("hired") > as_of)
        .then(pl.col("hired") + later)
        .otherwise(pl.col("hired")),
    )
    return dataclasses.replace(history, opportunities=o, stage_history=sh, activities=a, reps=r)


def test_nothing_after_the_as_of_date_leaks_in(fits):
    demo = fits[0][0]
    as_of = dt.date(2026, 4, 30)
    history = demo.to_history()
    tampered = _tamper_after(history, as_of)
    assert not tampered.opportunities.equals(history.opportunities)
    a, b = calibrate(tampered, as_of), calibrate(history, as_of)
    # Only the notes on what was cut may differ (they count won/lost-later deals).
    assert dataclasses.replace(a, notes=()) == dataclasses.replace(b, notes=())
    assert any("removed" in n and "created later" in n for n in a.notes)


def test_an_as_of_date_after_the_data_adds_no_survival_time(fits):
    demo, model = fits[0]
    assert demo.to_history().last_date == demo.as_of
    later = calibrate(demo.to_history(), demo.as_of + dt.timedelta(days=400))
    assert later.as_of == demo.as_of + dt.timedelta(days=400)
    assert dataclasses.replace(later, as_of=model.as_of, notes=()) == dataclasses.replace(
        model, notes=()
    )
    assert any("after the last date" in n for n in later.notes)
