"""Quarter effects and the closing clock (calibrate/quarters.py, calibrate/closing.py):
measurements unbiased with honest variances, drift, seasonality and shock variance
recovered from generated histories within k·SE, a steady history left steady, the closing
clock recovered from closes played on a known clock, and the calibrated model's calendar
and diagnostics (summary keys, notes, the CLI)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from salesim.calibrate import activities as acts
from salesim.calibrate import quarters
from salesim.calibrate.closing import fit_closing
from salesim.calibrate.fit import calibrate
from salesim.calibrate.stages import Records, resolve_stages, stage_records
from salesim.simulator.calendar import (
    WEEKS_PER_QUARTER,
    clock_table,
    quarters_between,
    warp,
    week_of_quarter,
)
from salesim.simulator.demo_history import generate
from salesim.simulator.demo_ingredients import Ingredients
from salesim.simulator.distributions import Exponential
from tests.factories import stage

AS_OF = dt.date(2026, 9, 30)
K = 4.0


def measured(seed, quarters_=12, reps=20, **ingredients):
    """Each channel's per-quarter measurements on a generated history, with the truth."""
    d = generate(
        seed, reps=reps, quarters=quarters_, as_of=AS_OF, ingredients=Ingredients(**ingredients)
    )
    h = d.to_history()
    m = calibrate(h, AS_OF, calendar=False)
    names, mapping = resolve_stages(h.stages, None)
    records, _ = stage_records(h, names, mapping, AS_OF)
    rd, _ = acts.rep_days(h, AS_OF)
    first = h.opportunities["created"].min()
    qs = quarters_between(first, AS_OF)
    series = {
        "outbound": quarters.measure_outbound(h, rd, m.team, m.capacity, qs),
        "marketing": quarters.measure_marketing(
            h, m.marketing.weekly.mean, qs, first, AS_OF, acts.MARKETING_WINDOW_DAYS
        ),
    }
    series.update(zip(("conversion", "speed"), quarters.measure_stages(records, m.stages, qs)))
    return series, d.truth


def truth_effects(truth, channel, qs):
    e = truth.calendar.channel(channel) if truth.calendar else None
    if e is None:
        return np.zeros(len(qs))
    return np.array([e.mean[e.periods.index(q)] for q in qs])


def slope(s: quarters.Series):
    """Weighted least-squares slope of the measured effects on the quarter number, and its
    SE (the effects' sampling variances as weights)."""
    m = s.measured
    x = np.arange(len(s.quarters))[m].astype(float)
    w = 1 / s.v[m]
    xb = np.dot(w, x) / w.sum()
    b = np.dot(w, (x - xb) * s.y[m]) / np.dot(w, (x - xb) ** 2)
    return b, math.sqrt(1 / np.dot(w, (x - xb) ** 2))


@pytest.fixture(scope="module")
def steady_runs():
    return [measured(200 + s, quarters_=8) for s in range(4)]


def test_measurements_are_unbiased_with_honest_variances(steady_runs):
    """A steady history: each measured effect, centred, over its SE is ~N(0, 1)."""
    for channel in ("outbound", "marketing", "conversion", "speed"):
        z = np.concatenate(
            [
                (s[channel].y - np.nanmean(s[channel].y)) / np.sqrt(s[channel].v)
                for s, _ in steady_runs
            ]
        )
        z = z[np.isfinite(z)]
        assert abs(z.mean()) < K / math.sqrt(z.size), channel
        # Centring removes a degree of freedom per history: sd a little below 1.
        assert 0.6 < z.std() < 1.4, (channel, z.std())


def test_drift_is_recovered():
    """Conversion drift of −0.06 log odds a quarter: the measured effects' slope, and the
    calibrated model's trend, within k·SE of it."""
    for seed in (1, 2):
        series, truth = measured(300 + seed, drift=-0.06)
        b, se = slope(series["conversion"])
        assert abs(b + 0.06) < K * se, (b, se)
        fc, _ = quarters.forecast(series["conversion"])
        assert fc.candidate.trend
        assert abs(fc.effects.trend + 0.06) < K * se


def test_seasonality_is_recovered():
    """Creation seasonality 0.4: the Q4 − Q1 contrast of the measured outbound effects is
    0.4·1.5 = 0.6 within k·SE, and the forecast carries the season."""
    series, truth = measured(401, seasonality=0.4)
    s = series["outbound"]
    q = np.array([(p.month - 1) // 3 for p in s.quarters])
    m = s.measured
    est, var = [], []
    for j in (3, 0):
        sel = m & (q == j)
        w = 1 / s.v[sel]
        est.append(np.dot(w, s.y[sel]) / w.sum())
        var.append(1 / w.sum())
    assert abs(est[0] - est[1] - 0.6) < K * math.sqrt(sum(var))
    fc, _ = quarters.forecast(s)
    assert fc.candidate.season_sd > 0
    season = np.array(fc.effects.season)
    assert season[3] - season[0] > 0.3


def test_shock_variance_is_recovered():
    """Quarter shocks of sd 0.1: over histories and channels the measured effects vary
    beyond their sampling noise by τ² = 0.01 (moment estimate var(y) − mean(v), within k·SE:
    the variance of a sample variance of n normals is 2σ⁴/(n − 1)), and the calibrated shock
    sd is near 0.1."""
    estimates, variances, fitted = [], [], []
    for seed in range(3):
        series, _ = measured(500 + seed, shocks=0.1)
        for channel in ("outbound", "conversion"):
            s = series[channel]
            y, v = s.y[s.measured], s.v[s.measured]
            estimates.append(np.var(y, ddof=1) - v.mean())
            variances.append(2 / (y.size - 1) * (0.01 + v.mean()) ** 2)
            fc, _ = quarters.forecast(s)
            fitted.append(math.sqrt(fc.tau2))
    est, se = float(np.mean(estimates)), math.sqrt(np.sum(variances)) / len(variances)
    assert abs(est - 0.01) < K * se, (est, se)
    assert 0.05 < float(np.mean(fitted)) < 0.16, fitted


def test_a_steady_history_stays_steady(steady_runs):
    """No trend, season or forgetting is chosen more than rarely, and the shock stays below
    the prior's sd: a steady history must not get wider bands than it needs."""
    chosen, taus = [], []
    for series, _ in steady_runs:
        for s in series.values():
            fc, _ = quarters.forecast(s)
            chosen.append(fc.candidate.complexity)
            taus.append(math.sqrt(fc.tau2))
    assert np.mean(np.array(chosen) > 0) <= 0.25, chosen
    assert np.mean(taus) < quarters.SHOCK_PRIOR_SD


def test_too_few_quarters_get_the_stated_prior():
    series, _ = measured(601, quarters_=3)
    fc, notes = quarters.forecast(series["outbound"])
    assert fc.candidate == quarters.STEADY
    assert "stated prior" in notes[0] and "half-normal" in notes[0]
    assert math.sqrt(fc.tau2) == pytest.approx(quarters.SHOCK_PRIOR_SD, rel=0.35)
    nxt = fc.effects.mean[quarters.PAST]
    assert nxt == pytest.approx(0.0, abs=1e-12)


# --- the closing clock ----------------------------------------------------------------------------
def test_closing_clock_recovers_known_rates():
    """Deals enter every day for three years and close after Exponential(20) days on a clock
    that runs at 0.5 in a quarter's first four weeks and 1.6 in its last three: the fitted
    rates come back within k·SE of the truth's (SE ≈ 1/√closes a week)."""
    truth = np.array([0.5] * 4 + [1.0] * 6 + [1.6] * 3)
    start, days = dt.date(2023, 10, 1), 3 * 365
    dates = [start + dt.timedelta(days=d) for d in range(days + 400)]
    rates = truth[[week_of_quarter(d) for d in dates]]
    rates = rates / np.mean(rates[:days])
    table = clock_table(rates)
    rng = np.random.default_rng(7)
    entry = np.repeat(np.arange(days), 8).astype(float)
    won = rng.random(entry.size) < 0.5
    close = warp(table, rates, entry + 0.5, rng.exponential(20.0, entry.size))
    as_of = days - 1
    kind = np.where(close < as_of + 1, np.where(won, 0, 1), 2)
    t = np.where(kind == 2, as_of - entry, np.floor(close) - entry)
    epoch = (start - dt.date(1970, 1, 1)).days
    rec = Records(entry + epoch, t, kind)
    s = stage("S", 0.5, Exponential(20.0), Exponential(20.0))
    clock, found, notes = fit_closing([rec], (s,), start, start + dt.timedelta(days=as_of))
    assert clock is not None and notes
    w = np.asarray(clock.won)
    expected = truth / np.average(truth, weights=[7] * 12 + [7.25])
    se = 1 / np.sqrt(np.asarray(found["won"]["observed"]))
    assert np.all(np.abs(np.log(w / expected)) < K * se + 0.05), (w, expected)


def test_no_clock_when_closes_follow_the_durations():
    """The same deals on plain days: no clock (or one within noise of 1)."""
    start, days = dt.date(2023, 10, 1), 3 * 365
    rng = np.random.default_rng(8)
    entry = np.repeat(np.arange(days), 8).astype(float)
    won = rng.random(entry.size) < 0.5
    close = entry + 0.5 + rng.exponential(20.0, entry.size)
    as_of = days - 1
    kind = np.where(close < as_of + 1, np.where(won, 0, 1), 2)
    t = np.where(kind == 2, as_of - entry, np.floor(close) - entry)
    rec = Records(entry + (start - dt.date(1970, 1, 1)).days, t, kind)
    s = stage("S", 0.5, Exponential(20.0), Exponential(20.0))
    clock, _, _ = fit_closing([rec], (s,), start, start + dt.timedelta(days=as_of))
    if clock is not None:
        assert np.all(np.abs(np.log(clock.won)) < 0.1) and len(clock.won) == WEEKS_PER_QUARTER


def test_slipped_wins_slow_the_clock_at_quarter_end():
    d = generate(9, reps=20, quarters=8, as_of=AS_OF, ingredients=Ingredients(slips=0.6))
    m = calibrate(d.to_history(), AS_OF)
    assert m.calendar is not None and m.calendar.closing is not None
    won = np.asarray(m.calendar.closing.won)
    assert won[-3:].mean() < 0.9 < 1.05 < won[:3].mean()
    assert any("do not come evenly" in x for x in m.diagnostics)


# --- the calibrated model -------------------------------------------------------------------------
def test_calibrate_reports_the_calendar_and_what_the_history_contradicts(tmp_path):
    from click.testing import CliRunner

    from salesim import cli

    d = generate(
        11, reps=20, quarters=10, as_of=AS_OF, ingredients=Ingredients(drift=-0.08, growth=0.08)
    )
    hist = tmp_path / "hist"  # outputs may not go into the history folder
    hist.mkdir()
    for name, text in d.csv_texts().items():
        (hist / name).write_text(text)
    r = CliRunner().invoke(
        cli.main, ["calibrate", str(hist), "-o", str(tmp_path / "m.toml"), "--json", "--quiet"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{") :])
    cal = out["calendar"]
    assert cal["conversion"]["forecast_quarter"]["effect"] < 0
    assert cal["outbound"]["forecast_quarter"]["effect"] > 0
    assert any("win rate of deals entering stages" in x for x in out["diagnostics"])
    assert any("outbound opportunities per rep-day" in x for x in out["diagnostics"])
    r = CliRunner().invoke(
        cli.main, ["calibrate", str(hist), "-o", str(tmp_path / "m2.toml"), "--quiet"]
    )
    assert "What the history contradicts" in r.output and "Calendar" in r.output
    r = CliRunner().invoke(
        cli.main,
        ["calibrate", str(hist), "-o", str(tmp_path / "m3.toml"), "--steady", "--json", "--quiet"],
    )
    steady = json.loads(r.output[r.output.index("{") :])
    assert steady["calendar"] is None and steady["diagnostics"] == []
    assert all(s["tail"] is None for s in steady["stages"])
