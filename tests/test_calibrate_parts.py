"""Deal sizes, activities, marketing and the team (calibrate/deal_size.py, activities.py,
team.py) on small hand-built and generated data."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from salesim.calibrate import activities as acts
from salesim.calibrate import team as team_fit
from salesim.calibrate.deal_size import fit_deal_sizes, fit_size
from salesim.calibrate.history import ACTIVITY_COLUMNS, OPPORTUNITY_COLUMNS, REP_COLUMNS, History
from salesim.simulator.distributions import Empirical, Gamma
from salesim.simulator.spec import DAYS_PER_MONTH

MONDAY = dt.date(2025, 1, 6)


def opps_frame(rows):
    """rows: (id, owner, created, status, closed, amount, segment, source)."""
    cols = list(zip(*rows)) if rows else [[]] * 8
    return pl.DataFrame(
        {
            "opportunity_id": list(cols[0]),
            "owner": list(cols[1]),
            "created": list(cols[2]),
            "stage": ["S"] * len(rows),
            "status": list(cols[3]),
            "closed": list(cols[4]),
            "amount": [float(x) for x in cols[5]],
            "segment": list(cols[6]),
            "source": list(cols[7]),
        },
        schema=OPPORTUNITY_COLUMNS,
    )


# --- deal size ----------------------------------------------------------------------------------
def test_lognormal_size_recovered_within_its_standard_errors():
    rng = np.random.default_rng(1)
    x = 20_000 * np.exp(0.7 * rng.standard_normal(3000))
    fitted, note = fit_size(x)
    assert note is None and fitted.dist.family == "lognormal"
    z = (np.log(fitted.dist.params()) - np.log([20_000, 0.7])) / fitted.se_log()
    assert np.all(np.abs(z) < 4)


def test_price_list_sizes_fall_back_to_the_empirical_distribution():
    rng = np.random.default_rng(2)
    x = rng.choice([550.0, 1100.0, 4800.0], 2000)
    fitted, note = fit_size(x)
    assert isinstance(fitted.dist, Empirical) and "rejected" in note
    assert fitted.dist.mean == pytest.approx(x.mean())


def test_segments_counts_and_sparse_fallbacks():
    day = MONDAY
    rng = np.random.default_rng(3)
    rows = [
        (f"a{i}", "r", day, "won", day, float(v), "big", None)
        for i, v in enumerate(100_000 * np.exp(0.3 * rng.standard_normal(40)))
    ]
    rows += [(f"b{i}", "r", day, "lost", day, 5_000.0 + 10 * i, "small", None) for i in range(8)]
    rows += [(f"c{i}", "r", day, "won", day, 7_000.0, "small", None) for i in range(2)]
    rows += [(f"d{i}", "r", day, "open", None, 0.0, "new", None) for i in range(3)]
    sizes, notes = fit_deal_sizes(opps_frame(rows), day)
    by = {s.name: s for s in sizes}
    assert [by[k].count for k in ("big", "small", "new")] == [40.0, 10.0, 3.0]
    assert by["big"].size.n_events == 40
    # 2 won amounts (< 10) update a prior centred on all 10 of the segment's amounts.
    assert any(
        "'small': only 2 won deals" in n and "all 10 deals in the segment" in n for n in notes
    )
    assert by["small"].size.n_events == 2
    assert 5_000 < by["small"].size.dist.median <= 7_000
    # No amounts at all: the prior centred on the pooled won amounts, with its width.
    assert any("'new': no won deals" in n and "pooled" in n for n in notes)
    assert by["new"].size.dist.median == pytest.approx(by["big"].size.dist.median, rel=0.1)
    assert by["new"].size.se_log()[0] == pytest.approx(1.0, rel=1e-3)


# --- rep-days -----------------------------------------------------------------------------------
def small_history():
    """Two reps over two weeks starting Monday 2025-01-06; rep 'b' hired on day 7."""
    d = lambda n: MONDAY + dt.timedelta(days=n)  # noqa: E731
    activities = pl.DataFrame(
        {
            "owner": ["a", "a", "a", "b", "b"],
            "date": [d(0), d(2), d(5), d(8), d(11)],  # d(5) is a Saturday
            "kind": ["call"] * 5,
            "count": [4, 6, 3, 5, 2],
        },
        schema=ACTIVITY_COLUMNS,
    )
    reps = pl.DataFrame(
        {
            "owner": ["a", "b"],
            "hired": [d(-400), d(7)],
            "left": [None, None],
            "quota": [100.0, 200.0],
        },
        schema=REP_COLUMNS,
    )
    opps = opps_frame(
        [
            ("o1", "a", d(1), "won", d(3), 10.0, "all", "outbound"),
            ("o2", "a", d(2), "open", None, 10.0, "all", "marketing"),
            ("o3", "b", d(9), "lost", d(9), 10.0, "all", "outbound"),
            ("o4", "a", d(5), "won", d(11), 10.0, "all", "outbound"),
        ]
    )
    return History(
        opportunities=opps, stages=("S",), activities=activities, reps=reps, source="test"
    )


def test_rep_days_zero_fill_working_days_and_move_weekends():
    rd, notes = acts.rep_days(small_history(), MONDAY + dt.timedelta(days=13))
    assert rd.observed and rd.period == (
        acts._days(pl.Series([MONDAY]))[0],
        acts._days(pl.Series([MONDAY]))[0] + 11,
    )
    a = rd.rep == rd.owners.index("a")
    b = rd.rep == rd.owners.index("b")
    # a: the 10 working days of the data period (days 0..11), Saturday's 3 moved to Friday.
    assert a.sum() == 10 and rd.count[a].tolist() == [4, 0, 6, 0, 3, 0, 0, 0, 0, 0]
    # b: hired on day 7 (Monday): working days 7..11 (5 days).
    assert b.sum() == 5 and rd.count[b].tolist() == [0, 5, 0, 0, 2]
    assert rd.tenure[b].tolist() == [0, 1, 2, 3, 4]
    # o1 open on the start of days 2..3, o2 from day 3 on, o4 on days 6..11 (a's last day).
    assert rd.open_deals[a].tolist() == [0, 0, 1, 2, 1, 2, 2, 2, 2, 2]
    assert rd.open_deals[b].tolist() == [0, 0, 0, 0, 0]  # o3 closed the day it was created
    assert any("weekend" in n for n in notes)


def test_negative_binomial_recovered_within_standard_errors():
    rng = np.random.default_rng(4)
    R, n, mu, k, sigma = 30, 250, 9.0, 2.5, 0.35
    m = np.exp(sigma * rng.standard_normal(R))
    rep = np.repeat(np.arange(R), n)
    mean = mu * m[rep]
    x = rng.negative_binomial(k, k / (k + mean)).astype(float)
    nb = acts.fit_negbin(rep, x)
    se = np.sqrt(np.diag(nb.log_cov))
    assert abs(math.log(nb.per_rep_day / mu)) < 4 * se[0]
    assert abs(math.log(nb.dispersion / k)) < 4 * se[1]
    assert abs(nb.rep_sigma - sigma) < 4 * sigma / math.sqrt(2 * (R - 1))


def test_poisson_days_give_infinite_dispersion():
    rng = np.random.default_rng(5)
    rep = np.repeat(np.arange(10), 300)
    nb = acts.fit_negbin(rep, rng.poisson(6.0, rep.size).astype(float))
    assert math.isinf(nb.dispersion) and nb.rep_sigma < 0.05
    np.linalg.cholesky(np.asarray(nb.log_cov))  # still drawable


def test_lag_recovered_from_daily_totals():
    rng = np.random.default_rng(6)
    n = 700
    working = acts.weekday(np.arange(n) + 20_000) < 5
    a = np.where(working, rng.negative_binomial(40, 40 / (40 + 250), n), 0).astype(float)
    made = rng.binomial(a.astype(np.int64), 0.04)
    start = np.repeat(np.arange(n), made)
    truth = Gamma(2.0, 2.0)
    created = np.floor(start + 0.5 + truth.sample(rng, start.size)).astype(np.int64)
    o = np.bincount(created[created < n], minlength=n).astype(float)
    lag, reason = acts.fit_lag(a, o)
    assert reason is None
    # The gamma mean is shape × scale: its log-variance is the sum of the covariance.
    se = (
        math.sqrt(np.sum(lag.log_cov))
        if lag.dist.family == "gamma"
        else math.sqrt(lag.log_cov[0][0])
    )
    assert abs(math.log(lag.dist.mean / truth.mean)) < 4 * se
    assert set(lag.aic) == set(acts.LAG_FAMILIES)


def test_marketing_rate_over_the_window():
    rng = np.random.default_rng(7)
    as_of = MONDAY + dt.timedelta(days=400)
    days = rng.integers(0, 401, 3000)
    source = np.where(rng.random(3000) < 0.3, "marketing", "outbound")
    rows = [
        (f"o{i}", "r", MONDAY + dt.timedelta(days=int(x)), "open", None, 1.0, "all", s)
        for i, (x, s) in enumerate(zip(days, source))
    ]
    model, notes = acts.fit_marketing(opps_frame(rows), as_of)
    window = days > 400 - acts.MARKETING_WINDOW_DAYS
    n = int(((source == "marketing") & window).sum())
    assert model.weekly.shape == 0.5 + n and model.weekly.rate == 26.0
    assert model.share == pytest.approx(n / window.sum())
    none, notes = acts.fit_marketing(opps_frame([(*r[:7], None) for r in rows]), as_of)
    assert none.weekly.mean < 1e-6 and "no source" in notes[0]


# --- team ---------------------------------------------------------------------------------------
def test_attrition_counts_exposure_from_the_start_of_the_data():
    start, as_of = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
    reps = pl.DataFrame(
        {
            "owner": ["old", "new", "gone", "before"],
            "hired": [
                dt.date(2019, 1, 1),
                dt.date(2025, 7, 1),
                dt.date(2024, 1, 1),
                dt.date(2020, 1, 1),
            ],
            "left": [None, None, dt.date(2025, 3, 1), dt.date(2024, 6, 1)],
            "quota": [1.0] * 4,
        },
        schema=REP_COLUMNS,
    )
    post, leavers, exposure = team_fit.fit_attrition(reps, as_of, start)
    days = (
        (as_of - start).days
        + (as_of - dt.date(2025, 7, 1)).days
        + (dt.date(2025, 3, 1) - start).days
    )
    assert leavers == 1 and exposure == pytest.approx(days / DAYS_PER_MONTH)
    assert post.shape == 1.5 and post.rate == pytest.approx(exposure)


def ramp_days(rng, true_ramp=2.5, n_reps=24):
    """Rep-days of reps hired at different times (some long before the data), with
    Poisson(level × ramp(tenure)) counts."""
    period = 540
    owners, rep, day, count, tenure = [], [], [], [], []
    hired = rng.integers(-600, 400, n_reps)
    level = 10 * np.exp(0.3 * rng.standard_normal(n_reps))
    for r in range(n_reps):
        d = np.arange(max(hired[r], 0), period)
        d = d[acts.weekday(d) < 5]
        t = d - hired[r]
        ramp = np.clip(t / DAYS_PER_MONTH / true_ramp, 0, 1)
        rep.append(np.full(d.size, r))
        day.append(d)
        tenure.append(t.astype(float))
        count.append(rng.poisson(level[r] * ramp))
        owners.append(f"r{r}")
    cat = np.concatenate
    return acts.RepDays(
        tuple(owners),
        hired.astype(float),
        cat(rep),
        cat(day),
        cat(count).astype(float),
        cat(tenure),
        np.zeros(sum(map(len, rep))),
        True,
        (0, period - 1),
    )


def test_ramp_recovered_within_its_bootstrap_sd():
    rng = np.random.default_rng(8)
    rd = ramp_days(rng)
    ramp, sd = team_fit.fit_ramp(rd, np.ones(rd.size, dtype=bool), np.random.default_rng(0))
    assert 0 < sd < 1
    assert abs(ramp - 2.5) < 4 * sd


def test_without_reps_the_team_is_recent_owners_with_default_ramp():
    d = lambda n: MONDAY + dt.timedelta(days=n)  # noqa: E731
    as_of = d(200)
    h = History(
        opportunities=opps_frame(
            [
                ("o1", "recent", d(150), "open", None, 1.0, "all", None),
                ("o2", "gone", d(10), "won", d(20), 1.0, "all", None),
                ("o3", "recent", d(190), "open", None, 1.0, "all", None),
            ]
        ),
        stages=("S",),
    )
    team, quota, notes = team_fit.snapshot(h, as_of)
    assert [r.name for r in team] == ["recent"]
    assert team[0].hired == as_of - dt.timedelta(days=365) and quota == 0.0
    model, notes2 = team_fit.fit_team(h, as_of, None, None, None, team, quota)
    assert not model.calibrated and model.ramp_months == 3.0 and model.ramp_months_sd == 1.0
    assert model.attrition.shape == 2.0 and model.attrition.rate == 100.0
    cap = team_fit.fit_capacity(h, as_of, team)
    assert cap.free_deals == 2.0 and cap.deal_hours == 1.0
    # With W = 40 h, h = min(1, 20 / free): prospecting keeps at least half the week.
    big = team_fit.fit_capacity(h, as_of, ())
    assert big.week_hours - big.deal_hours * big.free_deals >= big.week_hours / 2
