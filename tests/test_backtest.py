"""Backtests: the scoring maths (PIT, CRPS, coverage, its exact interval, the PIT histogram's
chi-square) against analytic values, the fold bookkeeping (windows, cutoffs, baselines, no
leakage, open and new parts, skipped folds), calibration of the forecast bands on demo
history, the Maven sample and the CLI contract."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from salesim.calibrate.history import OPPORTUNITY_COLUMNS, History
from salesim.scenarios.backtest import (
    BacktestResult,
    Fold,
    Part,
    ape,
    choose_cutoffs,
    clopper_pearson,
    crps,
    every_cutoffs,
    forecast_window,
    last_quarter,
    month_end,
    pit,
    pit_uniformity,
    quarter_cutoffs,
    score,
    stage_weighted,
)
from salesim.simulator.distributions import Exponential
from salesim.simulator.errors import InputError
from tests.factories import simple_model, stage

D = dt.date
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"


# --- scoring -----------------------------------------------------------------------------------
def normal_crps(mu, sigma, y):
    z = (y - mu) / sigma
    return sigma * (
        z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    )


@pytest.mark.parametrize("y", [-1.5, 0.0, 0.7, 3.0])
def test_crps_matches_normal_closed_form(y):
    x = np.random.default_rng(1).normal(0.0, 1.0, 4000)
    # first-order (Hoeffding) term of the estimator: its SE sets the tolerance
    h = np.abs(x - y) - np.abs(x[:, None] - x[None, :]).mean(axis=1)
    se = h.std(ddof=1) / math.sqrt(x.size)
    assert abs(crps(x, y) - normal_crps(0.0, 1.0, y)) < 4 * se


@settings(max_examples=50, deadline=None)
@given(xs=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), y=st.floats(-1e6, 1e6))
def test_crps_equals_pairwise_definition(xs, y):
    x = np.asarray(xs)
    brute = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()
    assert crps(x, y) == pytest.approx(brute, rel=1e-9, abs=1e-6)
    assert crps(x, y) >= -1e-6


def test_crps_of_point_forecast_is_absolute_error():
    assert crps([5.0] * 10, 2.0) == pytest.approx(3.0)
    assert crps([5.0], 5.0) == 0.0


def test_pit_edges_and_atoms():
    assert pit([1, 2, 3, 4], 0) == 0.0
    assert pit([1, 2, 3, 4], 10) == 1.0
    assert pit([1, 2, 3, 4], 2.5) == 0.5
    assert pit([0, 0, 0, 0], 0) == 0.5  # an atom at the actual counts half
    assert pit([0, 0, 1, 1], 0) == 0.25


def test_pit_uniform_and_coverage_nominal_when_forecast_is_true():
    """Actual and forecast from the same law: mean PIT ½ (SE √(1/12/n)), P10–P90 coverage
    0.8 (SE √(0.16/n)), within 4 SE."""
    rng = np.random.default_rng(5)
    n, m = 3000, 300
    samples = rng.gamma(2.0, 1.0, (n, m))
    actual = rng.gamma(2.0, 1.0, n)
    pits = np.array([pit(s, a) for s, a in zip(samples, actual)])
    lo, hi = np.quantile(samples, [0.1, 0.9], axis=1)
    cover = np.mean((lo <= actual) & (actual <= hi))
    assert abs(pits.mean() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    assert abs(cover - 0.8) < 4 * math.sqrt(0.16 / n)
    # and not uniform when the forecast is too narrow (the test can fail)
    narrow = np.quantile(1 + 0.3 * (samples - 2.0), [0.1, 0.9], axis=1)
    assert np.mean((narrow[0] <= actual) & (actual <= narrow[1])) < 0.8 - 4 * math.sqrt(0.16 / n)


def test_ape():
    assert ape(110.0, 100.0) == pytest.approx(0.1)
    assert ape(90.0, 100.0) == pytest.approx(0.1)
    assert ape(5.0, 0.0) is None
    assert ape(None, 3.0) is None


def clopper_pearson_closed_form(k, n, level=0.9):
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else stats.beta.ppf(a, k, n - k + 1)
    hi = 1.0 if k == n else stats.beta.ppf(1 - a, k + 1, n - k)
    return lo, hi


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 5), (5, 5), (3, 10), (8, 10), (40, 50)])
def test_clopper_pearson_is_the_beta_quantile_interval(k, n):
    assert clopper_pearson(k, n) == pytest.approx(clopper_pearson_closed_form(k, n), rel=1e-9)


def test_clopper_pearson_edges_in_closed_form():
    # k = 0: P(0 successes) = (1 − p)^n = α/2 at the upper end; k = n mirrors it
    for n in (1, 4, 12):
        assert clopper_pearson(0, n)[1] == pytest.approx(1 - 0.05 ** (1 / n))
        assert clopper_pearson(n, n)[0] == pytest.approx(0.05 ** (1 / n))
    lo, hi = clopper_pearson(8, 10)
    assert lo < 0.8 < hi


def test_pit_uniformity_hand_made():
    h = pit_uniformity([0.05, 0.05, 0.15, 0.5, 0.95, 1.0])
    assert h["edges"] == pytest.approx(np.linspace(0, 1, 11))
    assert h["counts"] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 falls in the last bin
    c = np.array(h["counts"])
    chi2 = np.sum((c - 0.6) ** 2 / 0.6)
    assert h["chi2"] == pytest.approx(chi2)
    assert h["p_value"] == pytest.approx(stats.chi2.sf(chi2, 9))
    flat = pit_uniformity(np.arange(10) / 10 + 0.05)
    assert flat["counts"] == [1] * 10 and flat["chi2"] == 0.0 and flat["p_value"] == 1.0


@settings(max_examples=50, deadline=None)
@given(pits=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_pit_uniformity_counts_every_fold(pits):
    h = pit_uniformity(pits)
    assert sum(h["counts"]) == len(pits)
    e = len(pits) / 10
    assert h["chi2"] == pytest.approx(sum((c - e) ** 2 / e for c in h["counts"]))


def test_score():
    p = score([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 7)
    assert (p.p10, p.p50, p.p90, p.mean, p.actual) == (1.0, 5.0, 9.0, 5.0, 7.0)
    assert p.pit == pytest.approx(7.5 / 11) and p.covered
    assert p.crps == pytest.approx(crps(np.arange(11), 7))
    assert set(p.to_dict()) == {"actual", "p10", "p50", "p90", "mean", "pit", "crps", "covered"}


def part(actual, p10, p50, p90):
    return Part(actual, p10, p50, p90, p50, pit([p10, p50, p90], actual), abs(p50 - actual))


def fold(cutoff, actual, p10, p50, p90, sw=0.0, lq=None, open_=None, new=None):
    start, end = forecast_window(cutoff)
    return Fold(
        cutoff,
        start,
        end,
        actual,
        p10,
        p50,
        p90,
        p50,
        pit([p10, p50, p90], actual),
        0.0,
        sw,
        lq,
        0,
        0.0,
        0,
        open_ or part(actual, p10, p50, p90),
        new or part(0.0, 0.0, 0.0, 0.0),
    )


OLD_KEYS = {
    "folds",
    "coverage_p10_p90",
    "crps",
    "mape_p50",
    "baselines",
    "coverage_se",
    "mean_pit",
    "trials",
    "seed",
    "engine",
    "notes",
}
NEW_KEYS = {"pit_histogram", "coverage_interval", "parts", "diagnostics"}
FOLD_KEYS = {
    "cutoff",
    "start",
    "end",
    "actual",
    "p10",
    "p50",
    "p90",
    "pit",
    "mean",
    "crps",
    "covered",
    "ape_p50",
    "stage_weighted",
    "last_quarter",
    "open_deals",
    "open_pipeline",
    "seed",
}
PART_KEYS = {"actual", "p10", "p50", "p90", "mean", "pit", "crps", "covered"}


def test_result_summaries():
    folds = (
        fold(
            D(2026, 3, 31),
            100,
            80,
            100,
            120,
            sw=50,
            lq=None,
            open_=part(60, 50, 70, 90),
            new=part(40, 0, 10, 20),
        ),
        fold(
            D(2026, 6, 30),
            200,
            210,
            250,
            300,
            sw=100,
            lq=100,
            open_=part(150, 100, 140, 160),
            new=part(50, 40, 60, 80),
        ),
        fold(D(2026, 9, 30), 0, 0, 10, 20, sw=10, lq=200),
        fold(D(2026, 12, 31), 100, 50, 80, 130, sw=100, lq=0),
    )
    r = BacktestResult(folds, trials=10, seed=1, engine="x")
    assert r.coverage_p10_p90 == 0.75
    assert r.coverage_interval == pytest.approx(clopper_pearson_closed_form(3, 4))
    assert r.mape_p50 == pytest.approx(np.mean([0.0, 0.25, 0.2]))
    assert r.mean_pit == pytest.approx(np.mean([f.pit for f in folds]))
    assert r.pit_histogram == pit_uniformity([f.pit for f in folds])
    b = r.baselines
    assert b["stage_weighted"]["mape"] == pytest.approx(np.mean([0.5, 0.5, 0.0]))
    assert b["last_quarter"]["mape"] == pytest.approx(np.mean([0.5, 1.0]))
    # open: every fold covered (fold 3's 0 is in [0, 20]); new: 3 of 4 (fold 1 misses)
    assert r.parts["open"]["coverage_p10_p90"] == 1.0
    assert r.parts["new"]["coverage_p10_p90"] == 0.75
    assert r.parts["open"]["coverage_interval"] == pytest.approx(clopper_pearson_closed_form(4, 4))
    assert r.parts["new"]["mean_pit"] == pytest.approx(np.mean([f.new.pit for f in folds]))
    assert r.parts["open"]["crps"] == pytest.approx(np.mean([10, 10, 10, 20]))
    d = r.to_dict()
    assert set(d) == OLD_KEYS | NEW_KEYS
    assert set(d["folds"][0]) == FOLD_KEYS | {"open", "new", "diagnostics"}
    assert set(d["folds"][0]["open"]) == set(d["folds"][0]["new"]) == PART_KEYS
    assert set(d["baselines"]) == {"stage_weighted", "last_quarter"}
    assert set(d["baselines"]["stage_weighted"]) == {"mape", "crps", "values"}
    assert set(d["pit_histogram"]) == {"edges", "counts", "chi2", "p_value"}
    assert set(d["parts"]) == {"open", "new"}
    assert set(d["parts"]["open"]) == {"coverage_p10_p90", "coverage_interval", "mean_pit", "crps"}
    json.dumps(d, default=str)


# --- folds -------------------------------------------------------------------------------------
def test_forecast_window():
    assert forecast_window(D(2026, 6, 30)) == (D(2026, 7, 1), D(2026, 9, 30))
    assert forecast_window(D(2026, 5, 14)) == (D(2026, 5, 15), D(2026, 6, 30))
    assert forecast_window(D(2026, 12, 31)) == (D(2027, 1, 1), D(2027, 3, 31))


def opps(rows):
    cols = ("opportunity_id", "owner", "created", "status", "closed", "amount")
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    data.update(stage=["S"] * len(rows), segment=["all"] * len(rows), source=[None] * len(rows))
    return pl.DataFrame(data, schema=OPPORTUNITY_COLUMNS)


def test_quarter_cutoffs():
    h = History(opps([("a", "r", D(2025, 1, 5), "won", D(2026, 9, 30), 1.0)]), ("S",))
    assert quarter_cutoffs(h, 3) == [D(2025, 12, 31), D(2026, 3, 31), D(2026, 6, 30)]
    h = History(opps([("a", "r", D(2025, 1, 5), "won", D(2026, 9, 29), 1.0)]), ("S",))
    assert quarter_cutoffs(h, 2) == [D(2025, 12, 31), D(2026, 3, 31)]


def test_month_end():
    assert month_end(D(2024, 2, 3)) == D(2024, 2, 29)
    assert month_end(D(2025, 2, 28)) == D(2025, 2, 28)
    assert month_end(D(2025, 12, 1)) == D(2025, 12, 31)
    assert month_end(D(2025, 4, 30)) == D(2025, 4, 30)


def month_ends(first, last):
    out, d = [], first
    while d <= last:
        out.append(d)
        d = month_end(d + dt.timedelta(days=1))
    return out


def test_every_cutoffs():
    # first deal on 2025-02-10, last date 2026-09-29: the last whole quarter is 2026-Q2
    h = History(opps([("a", "r", D(2025, 2, 10), "won", D(2026, 9, 29), 1.0)]), ("S",))
    months = every_cutoffs(h, "month")
    assert months == month_ends(D(2025, 2, 28), D(2026, 5, 31)) and len(months) == 16
    assert every_cutoffs(h, "quarter") == [
        D(2025, 3, 31),
        D(2025, 6, 30),
        D(2025, 9, 30),
        D(2025, 12, 31),
        D(2026, 3, 31),
    ]
    assert every_cutoffs(h, "month", quarters=2) == [
        D(2025, 12, 31),
        D(2026, 1, 31),
        D(2026, 2, 28),
        D(2026, 3, 31),
        D(2026, 4, 30),
        D(2026, 5, 31),
    ]
    assert every_cutoffs(h, "quarter", quarters=2) == quarter_cutoffs(h, 2)
    # more quarters than the history has: nothing before its first deal
    assert every_cutoffs(h, "month", quarters=9) == months
    assert every_cutoffs(h, "quarter", quarters=9) == [
        c for c in quarter_cutoffs(h, 9) if c >= D(2025, 2, 10)
    ]
    for c in months:
        assert forecast_window(c)[1] <= h.last_date


def test_every_cutoffs_when_the_history_ends_on_a_quarter_end():
    h = History(opps([("a", "r", D(2025, 11, 30), "won", D(2026, 9, 30), 1.0)]), ("S",))
    assert every_cutoffs(h, "month") == month_ends(D(2025, 11, 30), D(2026, 8, 31))
    assert every_cutoffs(h, "quarter") == [D(2025, 12, 31), D(2026, 3, 31), D(2026, 6, 30)]
    assert every_cutoffs(h, "month", quarters=1) == [D(2026, 6, 30), D(2026, 7, 31), D(2026, 8, 31)]


@pytest.mark.parametrize(
    "every, rows, option",
    [
        ("week", [("a", "r", D(2025, 1, 5), "won", D(2026, 9, 30), 1.0)], "--every"),
        ("month", [("a", "r", D(2026, 8, 5), "won", D(2026, 9, 29), 1.0)], "--every"),  # too short
    ],
)
def test_every_cutoffs_bad_input(every, rows, option):
    with pytest.raises(InputError) as e:
        every_cutoffs(History(opps(rows), ("S",)), every)
    assert e.value.column == option


def test_choose_cutoffs():
    h = History(opps([("a", "r", D(2025, 1, 5), "won", D(2026, 9, 30), 1.0)]), ("S",))
    assert choose_cutoffs(h) == quarter_cutoffs(h, 4)
    assert choose_cutoffs(h, quarters=2) == quarter_cutoffs(h, 2)
    assert choose_cutoffs(h, every="quarter", quarters=2) == quarter_cutoffs(h, 2)
    assert choose_cutoffs(h, cutoffs=[D(2026, 5, 1), D(2026, 3, 31), D(2026, 5, 1)]) == [
        D(2026, 3, 31),
        D(2026, 5, 1),
    ]
    for kw in ({"every": "month"}, {"quarters": 2}):
        with pytest.raises(InputError, match="not both"):
            choose_cutoffs(h, cutoffs=[D(2026, 3, 31)], **kw)


def test_last_quarter_baseline():
    h = History(
        opps(
            [
                ("a", "r", D(2025, 12, 1), "won", D(2026, 2, 1), 90.0),
                ("b", "r", D(2025, 12, 1), "won", D(2026, 3, 31), 10.0),
                ("c", "r", D(2025, 12, 1), "won", D(2026, 4, 1), 1000.0),
                ("d", "r", D(2025, 12, 1), "lost", D(2026, 3, 1), 500.0),
            ]
        ),
        ("S",),
    )
    assert last_quarter(h, D(2026, 4, 1), D(2026, 6, 30)) == 100.0
    # a mid-quarter window gets its share of the previous quarter
    assert last_quarter(h, D(2026, 6, 1), D(2026, 6, 30)) == pytest.approx(100 * 30 / 91)
    assert last_quarter(h, D(2026, 1, 1), D(2026, 3, 31)) is None  # before the history


def test_stage_weighted():
    model = simple_model(
        stages=(
            stage("A", 0.5, Exponential(5.0), Exponential(5.0)),
            stage("B", 0.8, Exponential(5.0), Exponential(5.0)),
        )
    )
    deals = pl.DataFrame(
        {
            "opportunity_id": ["1", "2", "3"],
            "owner": ["r"] * 3,
            "stage": ["A", "B", "B"],
            "age_days": [1.0, 2.0, 3.0],
            "amount": [100.0, 100.0, 50.0],
            "segment": ["all"] * 3,
        }
    )
    assert stage_weighted(model, deals) == pytest.approx(100 * 0.4 + 150 * 0.8)


# --- no leakage --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from salesim.simulator.demo_history import generate

    return generate(np.random.default_rng(4), reps=4, quarters=6, as_of=D(2026, 6, 30))


def test_fold_sees_only_the_cut_history(demo):
    from salesim.scenarios.backtest import run_fold

    seen = []

    def fit(known, cutoff):
        seen.append(known)
        return truth_fit(demo.truth)(known, cutoff)

    h = demo.to_history()
    cutoff = D(2025, 12, 31)
    f = run_fold(h, cutoff, trials=50, seed=1, engine="vector", fit=fit)
    o = seen[0].opportunities
    assert o["created"].max() <= cutoff
    assert o.filter(pl.col("closed") > cutoff).height == 0
    assert seen[0].stage_history["entered"].max() <= cutoff
    # ... while deals that closed later are open again, not dropped
    full = h.opportunities
    reopened = full.filter((pl.col("created") <= cutoff) & (pl.col("closed") > cutoff))
    assert reopened.height > 0
    assert set(reopened["opportunity_id"]) <= set(
        o.filter(pl.col("status") == "open")["opportunity_id"]
    )
    assert f.open_deals == o.filter(pl.col("status") == "open").height
    won = full.filter(
        (pl.col("status") == "won") & pl.col("closed").is_between(D(2026, 1, 1), D(2026, 3, 31))
    )
    assert f.actual == won["amount"].sum() > 0
    assert (
        f.last_quarter
        == full.filter(
            (pl.col("status") == "won")
            & pl.col("closed").is_between(D(2025, 10, 1), D(2025, 12, 31))
        )["amount"].sum()
    )


def test_fold_numbers_do_not_depend_on_other_cutoffs(demo):
    from salesim.scenarios.backtest import backtest

    h = demo.to_history()
    fit = truth_fit(demo.truth)
    one = backtest(h, [D(2025, 12, 31)], trials=50, seed=2, engine="vector", fit=fit)
    two = backtest(
        h, [D(2025, 9, 30), D(2025, 12, 31)], trials=50, seed=2, engine="vector", fit=fit
    )
    assert one.folds[0] == two.folds[1]


def test_open_and_new_parts(demo):
    """The open part is won from deals created on or before the cutoff, the new part from
    deals created after it; together they are the fold's actual (and forecast)."""
    from salesim.scenarios.backtest import run_fold

    h = demo.to_history()
    cutoff = D(2025, 12, 31)
    f = run_fold(h, cutoff, trials=50, seed=3, engine="vector", fit=truth_fit(demo.truth))
    won = h.opportunities.filter(
        (pl.col("status") == "won") & pl.col("closed").is_between(f.start, f.end)
    )
    assert f.open.actual == won.filter(pl.col("created") <= cutoff)["amount"].sum() > 0
    assert f.new.actual == won.filter(pl.col("created") > cutoff)["amount"].sum() > 0
    assert f.open.actual + f.new.actual == pytest.approx(f.actual)
    assert f.open.mean + f.new.mean == pytest.approx(f.mean)
    d = f.to_dict()
    assert set(d) == FOLD_KEYS | {"open", "new", "diagnostics"}
    assert set(d["open"]) == set(d["new"]) == PART_KEYS
    for p in (f.open, f.new):
        assert p.p10 <= p.p50 <= p.p90 and 0 <= p.pit <= 1 and p.crps >= 0


def refuse_at(cutoffs, fit, error=InputError):
    """``fit``, except that it raises ``error`` at ``cutoffs``."""

    def refusing(known, cutoff):
        if cutoff in cutoffs:
            raise error(f"refused at {cutoff}")
        return fit(known, cutoff)

    return refusing


def test_a_fold_that_cannot_be_calibrated_is_left_out_with_a_note(demo):
    from salesim.scenarios.backtest import backtest

    h, fit = demo.to_history(), truth_fit(demo.truth)
    cutoffs = [D(2025, 9, 30), D(2025, 12, 31)]
    r = backtest(
        h, cutoffs, trials=20, seed=2, engine="vector", fit=refuse_at({D(2025, 9, 30)}, fit)
    )
    assert [f.cutoff for f in r.folds] == [D(2025, 12, 31)]
    assert any("2025-09-30" in n and "refused at 2025-09-30" in n for n in r.notes)
    # the fold that ran is the one a run of it alone gives
    assert (
        r.folds[0] == backtest(h, cutoffs[1:], trials=20, seed=2, engine="vector", fit=fit).folds[0]
    )

    with pytest.raises(InputError, match="no cutoff could be backtested.*refused at 2025-12-31"):
        backtest(h, cutoffs, trials=20, seed=2, engine="vector", fit=refuse_at(set(cutoffs), fit))
    # a programming error is not an unfit cutoff: it propagates
    with pytest.raises(ZeroDivisionError):
        backtest(
            h,
            cutoffs,
            trials=20,
            seed=2,
            engine="vector",
            fit=refuse_at({D(2025, 9, 30)}, fit, ZeroDivisionError),
        )


def test_a_window_past_the_history_fails_before_any_fold_runs(demo):
    from salesim.scenarios.backtest import backtest

    calls = []

    def fit(known, cutoff):
        calls.append(cutoff)
        return truth_fit(demo.truth)(known, cutoff)

    with pytest.raises(InputError, match="history ends"):
        backtest(
            demo.to_history(),
            [D(2025, 12, 31), D(2026, 6, 30)],
            trials=20,
            engine="vector",
            fit=fit,
        )
    assert calls == []


# --- calibration of the bands on demo history ---------------------------------------------------
def truth_fit(truth):
    """The model that generated the history, with the team as it stood at the cutoff (the
    truth lists the team at the end of the history, which would leak later hires)."""
    from salesim.calibrate.team import snapshot

    def fit(known, cutoff):
        reps, _, _ = snapshot(known, cutoff)
        return dataclasses.replace(
            truth, as_of=cutoff, team=dataclasses.replace(truth.team, reps=reps)
        )

    return fit


def lower_conversion(fit, factor):
    """A wrong model: every stage conversion × factor (same posterior weight)."""
    from salesim.simulator.model import BetaPosterior

    def wrong(known, cutoff):
        m = fit(known, cutoff)
        stages = []
        for s in m.stages:
            n, p = s.conversion.alpha + s.conversion.beta, s.conversion.mean * factor
            stages.append(dataclasses.replace(s, conversion=BetaPosterior(p * n, (1 - p) * n)))
        return dataclasses.replace(m, stages=tuple(stages))

    return wrong


def demo_folds(seeds, quarters, trials, fit_of=None, warmup=4):
    """PITs and P10–P90 hits over ``quarters`` folds of each seed's demo history (with
    ``warmup`` quarters of history before the first cutoff)."""
    from salesim.scenarios.backtest import backtest
    from salesim.simulator.demo_history import generate

    pits, hits = [], []
    for s in seeds:
        d = generate(
            np.random.default_rng(1000 + s),
            reps=4,
            quarters=quarters + warmup,
            as_of=D(2026, 6, 30),
        )
        h = d.to_history()
        kw = {"fit": fit_of(d)} if fit_of else {}
        r = backtest(h, quarter_cutoffs(h, quarters), trials=trials, seed=s, engine="vector", **kw)
        pits += [f.pit for f in r.folds]
        hits += [f.covered for f in r.folds]
    return np.array(pits), np.array(hits)


def test_bands_are_calibrated_with_the_true_model():
    """Engine error alone: forecasting with the model that generated the history, the P10–P90
    band holds the actual 80% of the time and the mean PIT is ½, within k·SE over 60 folds
    (12 histories × 5 quarters; folds of one history share its reps, so the SEs, which treat
    folds as independent, are slightly optimistic)."""
    pits, hits = demo_folds(range(12), 5, 300, lambda d: truth_fit(d.truth))
    n = pits.size
    assert n == 60
    assert abs(hits.mean() - 0.8) <= 3 * math.sqrt(0.16 / n)
    assert abs(pits.mean() - 0.5) <= 4 * math.sqrt(1 / 12 / n)


def test_a_wrong_model_fails_the_same_check():
    """The check has power: with every stage conversion × 0.8 (win rate × 0.41) the
    forecasts are too low."""
    pits, hits = demo_folds(range(5), 4, 200, lambda d: lower_conversion(truth_fit(d.truth), 0.8))
    n = pits.size
    assert pits.mean() > 0.5 + 4 * math.sqrt(1 / 12 / n)
    assert hits.mean() < 0.8 - 3 * math.sqrt(0.16 / n)


def test_bands_with_calibrated_models_are_not_overconfident():
    """Calibration and engine together (what users run): 12 folds, each calibrated on its cut
    history only (two quarters of history before the first). A sanity band at 3·SE (12 folds
    say little more); the precise claim is made with the true model above."""
    pits, hits = demo_folds(range(3), 4, 200, warmup=2)
    n = pits.size
    assert hits.mean() >= 0.8 - 3 * math.sqrt(0.16 / n)
    assert abs(pits.mean() - 0.5) <= 4 * math.sqrt(1 / 12 / n)


# --- CLI ---------------------------------------------------------------------------------------
def invoke(*args):
    from click.testing import CliRunner

    from salesim import cli

    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, demo):
    d = tmp_path_factory.mktemp("bt")
    for name, text in demo.csv_texts().items():
        (d / name).write_text(text)
    return d


def test_cli_json_contract_and_plot(demo_dir, tmp_path):
    png = tmp_path / "bt.png"
    r = invoke("backtest", demo_dir, "--quarters", 2, "--trials", 100, "--json", "--plot", png)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) == OLD_KEYS | NEW_KEYS | {"plot"}
    assert [f["cutoff"] for f in out["folds"]] == ["2025-12-31", "2026-03-31"]
    for f in out["folds"]:
        assert set(f) == FOLD_KEYS | {"open", "new", "diagnostics"}
        assert f["p10"] <= f["p50"] <= f["p90"] and 0 <= f["pit"] <= 1
        assert set(f["open"]) == set(f["new"]) == PART_KEYS
        assert f["open"]["actual"] + f["new"]["actual"] == pytest.approx(f["actual"])
    assert sum(out["pit_histogram"]["counts"]) == 2
    lo, hi = out["coverage_interval"]
    assert 0 <= lo <= out["coverage_p10_p90"] <= hi <= 1
    assert set(out["baselines"]) == {"stage_weighted", "last_quarter"}
    assert all("mape" in b for b in out["baselines"].values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = invoke("backtest", demo_dir, "--cutoffs", "2026-03-31", "--trials", 100, "--quiet")
    assert r.exit_code == 0, r.output
    assert "coverage" in r.output and "stage-weighted" in r.output
    assert "PIT histogram" in r.output and "new pipeline" in r.output


def test_cli_every_month(demo_dir):
    r = invoke("backtest", demo_dir, "--every", "month", "--quarters", 1, "--trials", 20, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [f["cutoff"] for f in out["folds"]] == ["2026-03-31", "2026-04-30", "2026-05-31"]
    assert {f["end"] for f in out["folds"]} == {"2026-06-30"}
    assert set(out) == OLD_KEYS | NEW_KEYS


@pytest.mark.parametrize(
    "args, words",
    [
        (("--cutoffs", "2026-03-31", "--quarters", 2), "not both"),
        (("--cutoffs", "2026-06-30"), "history ends"),  # window runs past the history
        (("--cutoffs", "2026-02-30"), "--cutoffs"),
        (("--cutoffs", "2020-01-01"), "2020-01-01"),  # nothing known yet: no fold left
        (("--quarters", 0), "--quarters"),
        (("--trials", 1, "--quarters", 1), "--trials"),
        (("--every", "week"), "--every"),
        (("--every", "month", "--cutoffs", "2026-03-31"), "not both"),
        (("--every", "month", "--quarters", 0), "--quarters"),
    ],
)
def test_cli_bad_input_exits_2(demo_dir, args, words):
    r = invoke("backtest", demo_dir, "--quiet", *args)
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not present")
def test_maven_backtest():
    r = invoke(
        "backtest", MAVEN, "--format", "maven", "--cutoffs", "2017-06-30", "--trials", 100, "--json"
    )
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)["folds"][0]
    # 2017-Q3 wins in sales_pipeline.csv (SOURCE.md: 1,257 deals)
    assert f["actual"] > 0 and f["open_deals"] > 1000
    assert f["start"] == "2017-07-01" and f["end"] == "2017-09-30"


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not present")
def test_maven_early_quarters_are_left_out_not_fatal():
    """--quarters 5 reaches back to 2016-09-30, before the first deal: that cutoff, like
    2016-12-31 (nothing closed yet), is left out with a note instead of aborting the run."""
    r = invoke("backtest", MAVEN, "--format", "maven", "--quarters", 5, "--trials", 20, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [f["cutoff"] for f in out["folds"]] == ["2017-03-31", "2017-06-30", "2017-09-30"]
    left_out = [n for n in out["notes"] if n.startswith("left out")]
    assert len(left_out) == 2
    assert "2016-09-30" in left_out[0] and "2016-12-31" in left_out[1]


# --- honest on changing histories (issue 14; the full protocol: benchmarks/honesty.py) ------------
def changing_folds(fit, seeds=(1, 2, 3, 4), folds=5):
    """PITs and P10–P90 hits of ``fit`` over ``folds`` quarterly folds of drifting histories
    (win rates falling 0.08 log odds a quarter), 12 reps, 10 quarters."""
    from salesim.scenarios.backtest import backtest
    from salesim.simulator.demo_history import generate
    from salesim.simulator.demo_ingredients import Ingredients

    pits, hits = [], []
    for s in seeds:
        d = generate(
            700 + s,
            reps=12,
            quarters=10,
            as_of=D(2026, 6, 30),
            ingredients=Ingredients(drift=-0.08),
        )
        h = d.to_history()
        r = backtest(h, quarter_cutoffs(h, folds), trials=300, seed=s, engine="vector", fit=fit)
        pits += [f.pit for f in r.folds]
        hits += [f.covered for f in r.folds]
    return np.array(pits), np.array(hits)


@pytest.mark.slow
def test_a_drifting_history_is_forecast_honestly_only_with_the_calendar():
    """Win rates drifting down: the pooled model forecasts too high (mean PIT below ½ by more
    than 3 SE), the calendar model does not (within 3 SE), on the same folds."""
    from salesim.scenarios.backtest import default_fit, steady_fit

    se = lambda n: math.sqrt(1 / 12 / n)  # noqa: E731
    pooled, _ = changing_folds(steady_fit)
    assert pooled.mean() < 0.5 - 3 * se(pooled.size), pooled.mean()
    pits, hits = changing_folds(default_fit)
    assert abs(pits.mean() - 0.5) < 3 * se(pits.size), pits.mean()
    assert hits.mean() >= 0.8 - 3 * math.sqrt(0.16 / hits.size)
