"""Forecast categories in the demo history (docs/demo-data.md, "Forecast categories"): reps
call each deal's category the day before every quarter knowing whether it will be won inside
that quarter, by rules recorded in truth.toml; one rep in twenty over-calls commit. A demo
knows every deal's end, after the as-of date too, so the calls can be scored with every
outcome known (the oracle). The truth is the oracle's reliabilities on a large demo;
calibration on another seed, cut in the middle of a quarter (its calls still open),
recovers them within k standard errors and names the over-callers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import polars as pl
import pytest

from salesim.calibrate.categories import call_rate, fit_calls, past_calls
from salesim.calibrate.ingest import read_history
from salesim.simulator import demo_history
from salesim.simulator.calendar import quarter_end, quarter_start
from salesim.simulator.model import BetaPosterior
from salesim.simulator.model_checks import CALL_CATEGORIES

K = 3.0
AS_OF = dt.date(2026, 8, 15)  # 45 days into Q3 2026: its calls are still open


def sd(b: BetaPosterior) -> float:
    a, c = b.alpha, b.beta
    return math.sqrt(a * c / ((a + c) ** 2 * (a + c + 1)))


def oracle(demo) -> pl.DataFrame:
    """Every call of ``demo`` (every quarter, the last one too) scored with the real ends."""
    h = demo.to_history()
    ends = (
        h.opportunities.drop("status", "closed")
        .join(demo.ends, on="opportunity_id")
        .with_columns(
            pl.when(pl.col("won")).then(pl.lit("won")).otherwise(pl.lit("lost")).alias("status"),
            pl.col("ends").alias("closed"),
        )
        .drop("ends", "won")
    )
    return past_calls(dataclasses.replace(h, opportunities=ends), quarter_end(demo.as_of))


@pytest.fixture(scope="module")
def truth() -> dict[str, BetaPosterior]:
    big = demo_history.generate(101, reps=80, quarters=8, close_dates=True, as_of=AS_OF)
    calls = oracle(big)
    return {
        c: call_rate(calls.filter(pl.col("forecast_category") == c), c, "").rate
        for c in CALL_CATEGORIES
    }


@pytest.fixture(scope="module")
def demo():
    return demo_history.generate(11, reps=20, quarters=8, close_dates=True, as_of=AS_OF)


def test_the_truth_orders_the_categories(truth):
    p = [truth[c].mean for c in CALL_CATEGORIES]
    assert p == sorted(p, reverse=True) and p[0] > 0.8 and p[-1] < 0.15, p


def test_calibration_recovers_the_reliabilities_within_k_se(demo, truth):
    h = demo.to_history().as_of(demo.as_of)
    fit, notes = fit_calls(h, demo.as_of)
    assert fit is not None and not notes
    assert fit.quarters == 7  # the quarter of the as-of date is not measured
    z = {
        r.category: (r.rate.mean - truth[r.category].mean)
        / math.hypot(sd(r.rate), sd(truth[r.category]))
        for r in fit.categories
    }
    assert set(z) == set(CALL_CATEGORIES)
    assert all(abs(v) <= K for v in z.values()), z


def test_open_calls_are_not_losses(demo, truth):
    """Cut ten days into a quarter, most of its commits are still open: calibration leaves
    that quarter out and still recovers the truth, where scoring those calls as not won
    would put commit far below it."""
    cut = dt.date(2026, 7, 10)
    h = demo.to_history().as_of(cut)
    fit, _ = fit_calls(h, cut)
    assert fit is not None
    commit = next(r for r in fit.categories if r.category == "commit")
    assert abs(commit.rate.mean - truth["commit"].mean) <= K * math.hypot(
        sd(commit.rate), sd(truth["commit"])
    )
    naive = past_calls(h, quarter_end(cut)).filter(
        (pl.col("quarter") == quarter_start(cut)) & (pl.col("forecast_category") == "commit")
    )
    assert naive.height > 20
    rate = call_rate(naive, "commit", "").rate
    z = (rate.mean - truth["commit"].mean) / math.hypot(sd(rate), sd(truth["commit"]))
    assert z < -K, z


def test_the_over_callers_are_named(demo):
    """One rep in twenty of reps.csv over-calls commit (truth.toml names them); calibration
    names exactly them, hot, in commit."""
    hot = [str(r) for r in demo.reps["owner"][::20]]
    assert len(hot) == 2
    assert any(f"truth: {', '.join(hot)} over-call" in n for n in demo.truth.notes)
    fit, _ = fit_calls(demo.to_history().as_of(demo.as_of), demo.as_of)
    assert fit is not None
    named = sorted((r.rep, r.call) for r in fit.reps if r.category == "commit" and r.call)
    assert named == [(h, "hot") for h in hot]


def test_the_csv_round_trips(demo, tmp_path):
    for name, text in demo.csv_texts().items():
        (tmp_path / name).write_text(text)
    header = (tmp_path / "close_date_history.csv").read_text().splitlines()[0]
    assert header == "opportunity_id,changed,expected_close,previous,forecast_category"
    h = read_history(tmp_path)
    assert h.category_changes is not None and h.close_date_changes is not None
    key = ["opportunity_id", "changed"]
    assert h.category_changes.sort(key).equals(demo.category_changes.sort(key))
    # The close dates read are those of the file without the categories.
    cols = ["opportunity_id", "changed", "expected_close", "previous"]
    old = tmp_path / "old"
    old.mkdir()
    for name, text in demo.csv_texts().items():
        (old / name).write_text(text)
    (old / "close_date_history.csv").write_text(demo.close_date_changes.select(cols).write_csv())
    before = read_history(old)
    assert before.category_changes is None and before.close_date_changes is not None
    assert h.close_date_changes.equals(before.close_date_changes)


def test_categories_leave_the_other_draws_alone():
    """The categories' stream comes after the close dates': everything else is as before
    (digests of this demo's files from before the categories existed)."""
    import hashlib

    d = demo_history.generate(11, reps=20, quarters=8, close_dates=True, as_of=AS_OF)
    texts = d.csv_texts()
    digest = {
        k: hashlib.sha256(v.encode()).hexdigest()[:16]
        for k, v in texts.items()
        if k != "close_date_history.csv"
    }
    assert digest == {
        "opportunities.csv": "f1aad670117ea4f3",
        "stage_history.csv": "271d4862a181f64e",
        "activities.csv": "a373704dd487b61a",
        "reps.csv": "c257b25d6f757075",
    }
    dates = hashlib.sha256(d.close_date_changes.write_csv().encode()).hexdigest()[:16]
    assert dates == "b7052058a1791434"
    assert d.close_date_rows is not None
    same = d.close_date_rows.filter(pl.col("previous").is_not_null()).height
    assert same == d.close_date_changes["previous"].is_not_null().sum()
