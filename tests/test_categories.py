"""Rep judgement, measured (calibrate/categories.py): forecast-category reliability recovered
from histories with a known truth (tests/call_truth.py), shrinkage, the named hot rep,
censoring, the calls open now, and the model file's ``[calls]`` table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from salesim.calibrate import categories
from salesim.calibrate.ingest import read_history
from salesim.cli import main
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


def test_exported_categories_without_their_history_are_not_judged(cut):
    # Closed deals' exported category is "closed": measuring on it would find no call won.
    bare = dataclasses.replace(cut, category_changes=None)
    calls, notes = categories.fit_calls(bare, truth.AS_OF)
    assert calls is None and "not measured" in notes[0]
    now = categories.current_calls(bare, truth.AS_OF)
    assert now is not None and now.categories
    assert all(c.rate is None and c.value is None for c in now.categories)
    assert now.value == 0.0


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


# --- reading the category history -----------------------------------------------------------------
DATA = Path(__file__).parent / "data"
SF_DEALS = DATA / "salesforce_deals.csv"
SF_FIELDS = DATA / "salesforce_field_history_categories.csv"


def test_field_history_category_rows_are_read_and_give_the_category_of_a_day():
    h = read_history(SF_DEALS, profile="salesforce", close_date_history=SF_FIELDS)
    changes = h.category_changes
    assert changes is not None
    assert changes.filter(pl.col("opportunity_id") == "006D3").rows() == [
        ("006D3", dt.date(2024, 2, 1), "best_case", None),
        ("006D3", dt.date(2024, 4, 2), "commit", "best_case"),
    ]
    # The close-date rows are still the close-date history.
    assert h.close_date_changes is not None and h.close_date_changes.height == 3

    def category(day: dt.date, oid: str) -> str | None:
        o = h.as_of(day).opportunities
        return o.filter(pl.col("opportunity_id") == oid)["forecast_category"].item()

    assert category(dt.date(2024, 3, 1), "006D3") == "best_case"
    assert category(dt.date(2024, 4, 10), "006D3") == "commit"
    assert category(dt.date(2024, 3, 20), "006D4") == "pipeline"  # before its first change
    assert category(dt.date(2024, 2, 5), "006D1") == "commit"  # won later: open that day
    assert category(dt.date(2024, 6, 1), "006D1") == "closed"


def test_a_category_column_on_every_row_is_a_category_history(tmp_path):
    # The Opportunity History report carries the deal's Forecast Category on each row.
    path = tmp_path / "history.csv"
    path.write_text(
        '"Opportunity ID","Close Date","Forecast Category","Last Modified"\n'
        '"006D3","6/28/2024","Pipeline","2/1/2024"\n'
        '"006D3","6/28/2024","Pipeline","2/9/2024"\n'
        '"006D3","6/28/2024","Commit","3/1/2024"\n',
        encoding="utf-8",
    )
    h = read_history(SF_DEALS, profile="salesforce", close_date_history=path)
    assert h.category_changes is not None
    assert h.category_changes.rows() == [
        ("006D3", dt.date(2024, 2, 1), "pipeline", None),
        ("006D3", dt.date(2024, 3, 1), "commit", "pipeline"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "row", "column", "words"),
    [
        (
            '"Pipeline","Best Case","John Roe"',
            '"Pipeline","Upside","John Roe"',
            11,
            "New Value",
            "unknown forecast category 'Upside'",
        ),
        (
            '"Forecast Category","Pipeline","Commit"',
            '"Forecast Category","Maybe","Commit"',
            4,
            "Old Value",
            "unknown forecast category 'Maybe'",
        ),
        (
            '"006D4","Delta","4/1/2024","Forecast Category"',
            '"006D9","Delta","4/1/2024","Forecast Category"',
            11,
            "Opportunity ID",
            "opportunity '006D9' is not in the opportunities file",
        ),
        (
            '"006D3","Gamma","4/2/2024"',
            '"006D3","Gamma","4/31/2024"',
            9,
            "Edit Date",
            "cannot read date '4/31/2024'",
        ),
    ],
)
def test_a_bad_category_row_exits_2_naming_file_row_and_column(
    tmp_path, old, new, row, column, words
):
    copy = tmp_path / SF_FIELDS.name
    text = SF_FIELDS.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    copy.write_text(text.replace(old, new), encoding="utf-8")
    out = CliRunner().invoke(
        main,
        ["inspect", str(SF_DEALS), "--profile", "salesforce", "--close-date-history", str(copy)],
    )
    assert out.exit_code == 2, out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert f"{copy}, row {row}, column {column!r}: {words}" in lines[0], lines[0]


# --- calibrate and forecast -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated():
    from salesim.calibrate.fit import calibrate

    return calibrate(truth.history(seed=11), truth.AS_OF)


def test_calibrate_writes_the_calls_table_and_shows_the_named_rep(calibrated):
    from salesim import report
    from salesim.calibrate.fit import summary

    assert calibrated.calls is not None
    assert model_io.loads(model_io.dumps(calibrated)).calls == calibrated.calls
    s = summary(calibrated)
    assert [(r["rep"], r["category"], r["call"]) for r in s["calls"]["named"]] == [
        (truth.HOT_REP, "commit", "hot")
    ]
    text = report.calibration_text(s, "m.toml")
    assert "Hal: commit calls run hot (over-calls): 14 of 48 won in quarter" in text


def test_forecast_shows_the_call_beside_its_bands(calibrated):
    from salesim import api
    from salesim.scenarios.plan import model_plan

    h = truth.history(seed=11)
    fc = api.forecast(model_plan(calibrated, history=h), trials=200, seed=1)
    calls = categories.current_calls(h, truth.AS_OF)
    assert calls is not None
    assert fc.to_dict()["calls"] == calls.to_dict()
    text = fc.to_text()
    commit = next(c for c in calls.categories if c.category == "commit")
    assert f"history says commit converts {100 * commit.rate:.1f}%" in text
    assert "simulation P50" in text
    # Without a history there is no call to show.
    assert "calls" not in api.forecast(model_plan(calibrated), trials=50, seed=1).to_dict()


def test_end_to_end_from_files_calibrate_names_the_rep_and_forecast_shows_the_call(tmp_path):
    # The known-truth history as canonical files: the categories' history is a
    # forecast_category column of close_date_history.csv.
    import json

    h = truth.history(seed=11)
    folder = tmp_path / "hist"
    folder.mkdir()
    h.opportunities.write_csv(folder / "opportunities.csv")
    assert h.category_changes is not None and h.teams is not None
    expected = h.opportunities.select("opportunity_id", "expected_close")
    h.category_changes.join(expected, on="opportunity_id").select(
        "opportunity_id", "changed", "expected_close", "forecast_category"
    ).write_csv(folder / "close_date_history.csv")
    h.teams.select("owner", "manager").write_csv(folder / "teams.csv")
    model = tmp_path / "m.toml"
    out = CliRunner().invoke(
        main, ["calibrate", str(folder), "--as-of", str(truth.AS_OF), "-o", str(model), "--json"]
    )
    assert out.exit_code == 0, out.output
    named = json.loads(out.stdout)["calls"]["named"]
    assert [(r["rep"], r["category"], r["call"]) for r in named] == [("Hal", "commit", "hot")]
    out = CliRunner().invoke(
        main,
        ["forecast", str(model), "--history", str(folder), "--trials", "200", "--seed", "1"],
    )
    assert out.exit_code == 0, out.output
    assert "history says commit converts" in out.stdout
    out = CliRunner().invoke(
        main,
        [
            "forecast",
            str(model),
            "--history",
            str(folder),
            "--trials",
            "200",
            "--seed",
            "1",
            "--json",
        ],
    )
    calls = json.loads(out.stdout)["calls"]
    assert calls["quarter"] == ["2026-01-01", "2026-03-31"]
    assert {c["category"] for c in calls["categories"]} == set(truth.RATES)


def test_a_few_bad_calls_are_not_enough_to_be_named():
    # Eight reps won 36 of 48 commits (75%); Few won 5 of 12, whose own Jeffreys interval
    # (17%–69%) excludes 75%: unshrunk, Few would be named. Hal won 17 of 48.
    def rep(name: str, n: int, won: int) -> list[dict]:
        return [
            {"owner": name, "team": "T", "won": i < won, "forecast_category": "commit"}
            for i in range(n)
        ]

    rows = [r for i in range(8) for r in rep(f"R{i}", 48, 36)]
    rows += rep("Few", 12, 5) + rep("Hal", 48, 17)
    calls, _ = categories.rep_calls(pl.DataFrame(rows), "commit")
    few = next(r for r in calls if r.rep == "Few")
    raw = model_io.BetaPosterior(0.5 + 5, 0.5 + 7)
    assert raw.interval(0.95)[1] < 0.75
    assert few.call == ""
    assert few.rate.mean > raw.mean  # pulled toward the team
    assert [(r.rep, r.call) for r in calls if r.call] == [("Hal", "hot")]


def test_inspect_counts_the_category_changes():
    import json

    out = CliRunner().invoke(
        main,
        [
            "inspect",
            str(SF_DEALS),
            "--profile",
            "salesforce",
            "--close-date-history",
            str(SF_FIELDS),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["deal_fields"]["category_changes"] == 6
