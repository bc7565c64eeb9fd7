"""Rep judgement, measured (calibrate/categories.py): forecast-category reliability recovered
from histories with a known truth (tests/call_truth.py), shrinkage, the named hot rep,
censoring, the calls open now, and the model file's ``[calls]`` table."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest

from salesim.calibrate import categories
from salesim.simulator import model as model_io
from salesim.simulator.errors import InputError
from salesim.simulator.model import CallReliability

from . import call_truth as truth

K = 3  # tolerance in standard errors


@pytest.fixture(scope="module")
def cut():
    return truth.history(seed=11).as_of(truth.AS_OF)


@pytest.fixture(scope="module")
def fitted(cut) -> CallReliability:
    calls, notes = categories.fit_calls(cut, truth.AS_OF)
    assert calls is not None and notes == []
    return calls


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("category", list(truth.RATES))
def test_category_rates_recovered_within_k_se(fitted, category):
    row = next(r for r in fitted.categories if r.category == category)
    p, n = truth.expected_rate(category)
    assert row.n == n
    se = _se(p, n)
    assert abs(row.rate.mean - p) < K * se, (row.rate.mean, p, se)
    # Amounts do not depend on the outcome: the amount-weighted share recovers it too, within
    # the SE of its effective number of calls.
    a = row.amount_rate
    effective = a.alpha + a.beta - 1
    assert abs(a.mean - p) < K * _se(p, int(effective)), (a.mean, p)
    lo, hi = row.rate.interval(0.9)
    assert lo < row.rate.mean < hi


@pytest.mark.parametrize("team", list(truth.TEAMS))
def test_team_commit_rates_recovered(fitted, team):
    row = next(r for r in fitted.teams if r.category == "commit" and r.team == team)
    p, n = truth.expected_rate("commit", team)
    assert row.n == n
    assert abs(row.rate.mean - p) < K * _se(p, n), (team, row.rate.mean, p)


def test_the_hot_rep_is_named_with_the_evidence(fitted):
    named = [r for r in fitted.reps if r.call]
    assert [(r.rep, r.category, r.call) for r in named] == [(truth.HOT_REP, "commit", "hot")]
    hal = named[0]
    assert hal.n == truth.CALLS["commit"] * truth.QUARTERS
    assert hal.team == "Ann"
    lo, hi = hal.rate.interval(fitted.naming_level)
    assert hi < hal.team_rate
    # Shrunk toward the team, but the evidence keeps it near the truth.
    raw = hal.won / hal.n
    assert raw <= hal.rate.mean <= hal.team_rate
    assert abs(raw - truth.HOT_RATE) < K * _se(truth.HOT_RATE, hal.n)


def test_shrinkage_pulls_every_rep_toward_the_team_and_a_thin_rep_is_not_named(fitted):
    team = {(t.category, t.team): t.rate.mean for t in fitted.teams}
    for r in fitted.reps:
        raw, centre = r.won / r.n, team[r.category, r.team]
        assert min(raw, centre) - 1e-12 <= r.rate.mean <= max(raw, centre) + 1e-12
    # Tiny lost all 3 commits: too few calls to have a row, let alone a name.
    assert truth.THIN_REP not in {r.rep for r in fitted.reps}
    commit = next(r for r in fitted.categories if r.category == "commit")
    assert commit.concentration is not None and commit.concentration > 1


def test_reps_who_do_not_differ_are_pooled_completely():
    # Every rep at the same rate: the beta-binomial's concentration runs to its bound and
    # nobody is named.
    import numpy as np

    rng = np.random.default_rng(3)
    n = np.full(12, 40.0)
    won = rng.binomial(40, 0.6, size=12).astype(float)
    kappa = categories.concentration(won, n, np.full(12, won.sum() / n.sum()))
    assert kappa > 100


def test_censoring_open_deals_at_the_data_end_are_not_losses(cut):
    calls = categories.past_calls(cut, truth.AS_OF)
    # The quarter in progress is not measured: its calls are still open, not lost.
    assert calls["quarter"].max() < dt_quarter_start()
    assert calls["quarter"].n_unique() == truth.QUARTERS
    # Adding many more open calls to the current quarter changes nothing measured.
    more = _with_open_commits(cut, 200)
    again, _ = categories.fit_calls(more, truth.AS_OF)
    assert again is not None
    before, _ = categories.fit_calls(cut, truth.AS_OF)
    assert again.categories == before.categories


def test_the_category_of_the_quarter_start_counts_not_a_later_one(cut):
    calls = categories.past_calls(cut, truth.AS_OF)
    # Pipeline calls moved to commit mid-quarter stay pipeline calls: the commit count is
    # exactly the commits made at the quarter starts.
    assert (
        calls.filter(pl.col("forecast_category") == "commit").height
        == (truth.expected_rate("commit")[1])
    )


def test_calls_open_now_and_their_history_converted_value(cut):
    now = categories.current_calls(cut, truth.AS_OF)
    assert now is not None
    assert now.quarter[0] == dt_quarter_start()
    commit = next(c for c in now.categories if c.category == "commit")
    open_now = cut.opportunities.filter(
        (pl.col("status") == "open")
        & (pl.col("forecast_category") == "commit")
        & pl.col("expected_close").is_between(*now.quarter)
    )
    assert open_now.height > 0
    assert commit.deals == open_now.height
    assert commit.amount == pytest.approx(open_now["amount"].sum())
    assert commit.rate is not None and commit.value == pytest.approx(commit.amount * commit.rate)
    lo, hi = commit.value_interval
    assert lo < commit.value < hi
    doc = now.to_dict()
    assert doc["value"] == pytest.approx(sum(c["value"] for c in doc["categories"]))
    assert now.quarters == truth.QUARTERS


def test_history_without_categories_has_no_calls(cut):
    bare = dataclasses.replace(
        cut, opportunities=cut.opportunities.drop("forecast_category"), category_changes=None
    )
    assert categories.fit_calls(bare, truth.AS_OF) == (None, [])
    assert categories.current_calls(bare, truth.AS_OF) is None


def test_the_calls_table_round_trips_through_the_model_file(fitted, tmp_path):
    from .factories import simple_model

    m = dataclasses.replace(simple_model(), calls=fitted)
    text = model_io.dumps(m)
    assert "[calls]" in text
    assert model_io.loads(text).calls == fitted


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('call = "hot"', 'call = "warm"', "calls.reps[0].call"),
        ('category = "commit"', 'category = "upside"', "calls.categories[0].category"),
        ("naming_level = 0.95", "naming_level = 1.5", "calls.naming_level"),
    ],
)
def test_a_bad_calls_table_is_refused_naming_the_key(fitted, old, new, key):
    from .factories import simple_model

    text = model_io.dumps(dataclasses.replace(simple_model(), calls=fitted))
    assert old in text
    with pytest.raises(InputError) as err:
        model_io.loads(text.replace(old, new, 1), file="m.toml")
    assert "m.toml" in str(err.value)
    assert key.split(".")[-1] in str(err.value)


def dt_quarter_start():
    import datetime as dt

    return dt.date(truth.AS_OF.year, 3 * ((truth.AS_OF.month - 1) // 3) + 1, 1)


def _with_open_commits(h, n: int):
    import datetime as dt

    o = h.opportunities
    extra = pl.DataFrame(
        {
            "opportunity_id": [f"X{i}" for i in range(n)],
            "owner": ["Ada"] * n,
            "created": [dt.date(2025, 12, 1)] * n,
            "stage": ["Open"] * n,
            "status": ["open"] * n,
            "closed": [None] * n,
            "amount": [1000.0] * n,
            "segment": ["all"] * n,
            "source": [None] * n,
            "forecast_category": ["commit"] * n,
            "expected_close": [dt.date(2026, 3, 15)] * n,
        },
        schema=o.schema,
    )
    return dataclasses.replace(h, opportunities=pl.concat([o, extra]))
