"""Backtests: the scoring maths (PIT, CRPS, coverage) against analytic values, the fold
bookkeeping (windows, cutoffs, baselines, no leakage), calibration of the forecast bands on
demo history, the Maven sample and the CLI contract."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from calibrate.history import OPPORTUNITY_COLUMNS, History
from scenarios.backtest import (BacktestResult, Fold, ape, crps, forecast_window, last_quarter,
                                pit, quarter_cutoffs, stage_weighted)
from simulator.distributions import Exponential
from tests.factories import simple_model, stage

D = dt.date
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"


# --- scoring -----------------------------------------------------------------------------------
def normal_crps(mu, sigma, y):
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z)
                    - 1 / math.sqrt(math.pi))


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
    assert pit([0, 0, 0, 0], 0) == 0.5   # an atom at the actual counts half
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


def fold(cutoff, actual, p10, p50, p90, sw=0.0, lq=None):
    start, end = forecast_window(cutoff)
    return Fold(cutoff, start, end, actual, p10, p50, p90, p50, pit([p10, p50, p90], actual),
                0.0, sw, lq, 0, 0.0, 0)


def test_result_summaries():
    folds = (fold(D(2026, 3, 31), 100, 80, 100, 120, sw=50, lq=None),
             fold(D(2026, 6, 30), 200, 210, 250, 300, sw=100, lq=100),
             fold(D(2026, 9, 30), 0, 0, 10, 20, sw=10, lq=200),
             fold(D(2026, 12, 31), 100, 50, 80, 130, sw=100, lq=0))
    r = BacktestResult(folds, trials=10, seed=1, engine="x")
    assert r.coverage_p10_p90 == 0.75
    assert r.mape_p50 == pytest.approx(np.mean([0.0, 0.25, 0.2]))
    b = r.baselines
    assert b["stage_weighted"]["mape"] == pytest.approx(np.mean([0.5, 0.5, 0.0]))
    assert b["last_quarter"]["mape"] == pytest.approx(np.mean([0.5, 1.0]))
    d = r.to_dict()
    for key in ("folds", "coverage_p10_p90", "crps", "mape_p50", "baselines"):
        assert key in d
    assert set(d["folds"][0]) >= {"cutoff", "actual", "p10", "p50", "p90", "pit"}
    assert set(d["baselines"]) == {"stage_weighted", "last_quarter"}
    assert "mape" in d["baselines"]["stage_weighted"]


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


def test_last_quarter_baseline():
    h = History(opps([("a", "r", D(2025, 12, 1), "won", D(2026, 2, 1), 90.0),
                      ("b", "r", D(2025, 12, 1), "won", D(2026, 3, 31), 10.0),
                      ("c", "r", D(2025, 12, 1), "won", D(2026, 4, 1), 1000.0),
                      ("d", "r", D(2025, 12, 1), "lost", D(2026, 3, 1), 500.0)]), ("S",))
    assert last_quarter(h, D(2026, 4, 1), D(2026, 6, 30)) == 100.0
    # a mid-quarter window gets its share of the previous quarter
    assert last_quarter(h, D(2026, 6, 1), D(2026, 6, 30)) == pytest.approx(100 * 30 / 91)
    assert last_quarter(h, D(2026, 1, 1), D(2026, 3, 31)) is None  # before the history


def test_stage_weighted():
    model = simple_model(stages=(stage("A", 0.5, Exponential(5.0), Exponential(5.0)),
                                 stage("B", 0.8, Exponential(5.0), Exponential(5.0))))
    deals = pl.DataFrame({"opportunity_id": ["1", "2", "3"], "owner": ["r"] * 3,
                          "stage": ["A", "B", "B"], "age_days": [1.0, 2.0, 3.0],
                          "amount": [100.0, 100.0, 50.0], "segment": ["all"] * 3})
    assert stage_weighted(model, deals) == pytest.approx(100 * 0.4 + 150 * 0.8)


# --- no leakage --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from simulator.demo_history import generate

    return generate(np.random.default_rng(4), reps=4, quarters=6, as_of=D(2026, 6, 30))


def test_fold_sees_only_the_cut_history(demo):
    from scenarios.backtest import run_fold

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
    assert set(reopened["opportunity_id"]) <= set(o.filter(pl.col("status") == "open")
                                                  ["opportunity_id"])
    assert f.open_deals == o.filter(pl.col("status") == "open").height
    won = full.filter((pl.col("status") == "won")
                      & pl.col("closed").is_between(D(2026, 1, 1), D(2026, 3, 31)))
    assert f.actual == won["amount"].sum() > 0
    assert f.last_quarter == full.filter(
        (pl.col("status") == "won")
        & pl.col("closed").is_between(D(2025, 10, 1), D(2025, 12, 31)))["amount"].sum()


def test_fold_numbers_do_not_depend_on_other_cutoffs(demo):
    from scenarios.backtest import backtest

    h = demo.to_history()
    fit = truth_fit(demo.truth)
    one = backtest(h, [D(2025, 12, 31)], trials=50, seed=2, engine="vector", fit=fit)
    two = backtest(h, [D(2025, 9, 30), D(2025, 12, 31)], trials=50, seed=2, engine="vector",
                   fit=fit)
    assert one.folds[0] == two.folds[1]


# --- calibration of the bands on demo history ---------------------------------------------------
def truth_fit(truth):
    """The model that generated the history, with the team as it stood at the cutoff (the
    truth lists the team at the end of the history, which would leak later hires)."""
    from calibrate.team import snapshot

    def fit(known, cutoff):
        reps, _, _ = snapshot(known, cutoff)
        return dataclasses.replace(truth, as_of=cutoff,
                                   team=dataclasses.replace(truth.team, reps=reps))

    return fit


def lower_conversion(fit, factor):
    """A wrong model: every stage conversion × factor (same posterior weight)."""
    from simulator.model import BetaPosterior

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
    from scenarios.backtest import backtest
    from simulator.demo_history import generate

    pits, hits = [], []
    for s in seeds:
        d = generate(np.random.default_rng(1000 + s), reps=4, quarters=quarters + warmup,
                     as_of=D(2026, 6, 30))
        h = d.to_history()
        kw = {"fit": fit_of(d)} if fit_of else {}
        r = backtest(h, quarter_cutoffs(h, quarters), trials=trials, seed=s, engine="vector",
                     **kw)
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
    pits, hits = demo_folds(range(5), 4, 200,
                            lambda d: lower_conversion(truth_fit(d.truth), 0.8))
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

    import cli

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
    assert set(out) >= {"folds", "coverage_p10_p90", "crps", "mape_p50", "baselines"}
    assert [f["cutoff"] for f in out["folds"]] == ["2025-12-31", "2026-03-31"]
    for f in out["folds"]:
        assert set(f) >= {"cutoff", "actual", "p10", "p50", "p90", "pit"}
        assert f["p10"] <= f["p50"] <= f["p90"] and 0 <= f["pit"] <= 1
    assert set(out["baselines"]) == {"stage_weighted", "last_quarter"}
    assert all("mape" in b for b in out["baselines"].values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = invoke("backtest", demo_dir, "--cutoffs", "2026-03-31", "--trials", 100, "--quiet")
    assert r.exit_code == 0, r.output
    assert "coverage" in r.output and "stage-weighted" in r.output


@pytest.mark.parametrize("args, words", [
    (("--cutoffs", "2026-03-31", "--quarters", 2), "not both"),
    (("--cutoffs", "2026-06-30"), "history ends"),        # window runs past the history
    (("--cutoffs", "2026-02-30"), "--cutoffs"),
    (("--cutoffs", "2020-01-01"), "2020-01-01"),           # nothing known yet
    (("--quarters", 0), "--quarters"),
    (("--trials", 1, "--quarters", 1), "--trials"),
])
def test_cli_bad_input_exits_2(demo_dir, args, words):
    r = invoke("backtest", demo_dir, "--quiet", *args)
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not present")
def test_maven_backtest():
    r = invoke("backtest", MAVEN, "--format", "maven", "--cutoffs", "2017-06-30", "--trials",
               100, "--json")
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)["folds"][0]
    # 2017-Q3 wins in sales_pipeline.csv (SOURCE.md: 1,257 deals)
    assert f["actual"] > 0 and f["open_deals"] > 1000
    assert f["start"] == "2017-07-01" and f["end"] == "2017-09-30"
