"""The per-deal view (issue 18 item 4): P(win) from the forecast's own run, consistent with
its bands; deals sorted by expected value in the quarter; risk flags on a hand-built history;
the per-deal tally exact for any worker count and alike in both engines; the CLI contract."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import salesim
from salesim.cli import main
from salesim.history import (
    CLOSE_DATE_CHANGE_COLUMNS,
    OPPORTUNITY_COLUMNS,
    TEAM_COLUMNS,
    History,
)
from salesim.simulator.distributions import Exponential
from salesim.simulator.errors import InputError
from salesim.simulator.model import save
from salesim.simulator.runner import run
from salesim.simulator.spec import Rep
from tests.factories import simple_model, stage

D = dt.date
AS_OF = D(2026, 8, 15)
DEAL_KEYS = {
    "opportunity_id",
    "owner",
    "stage",
    "amount",
    "p_win",
    "p_win_quarter",
    "expected_in_quarter",
    "age_days",
    "expected_close",
    "forecast_category",
    "pushes",
    "flags",
}


def model():
    """Two stages: Qualify then Close; the won cycle's P90 is that of Qualify's advance."""
    return simple_model(
        stages=(
            stage("Qualify", 0.6, Exponential(15.0), Exponential(10.0)),
            stage("Close", 0.7, Exponential(20.0), Exponential(15.0)),
        ),
        per_rep_day=0.5,
        as_of=AS_OF,
    )


def history() -> History:
    """Four open deals, one won this quarter; each flag raised on exactly one deal or two."""
    cols = ("opportunity_id", "owner", "created", "stage", "status", "closed", "amount")
    rows = [
        # fresh, active, expected next month: no flag
        ("fresh", "ann", AS_OF - dt.timedelta(days=10), "Close", "open", None, 50_000.0),
        # 400 days old and past its expected close date
        ("old", "bob", AS_OF - dt.timedelta(days=400), "Close", "open", None, 10_000.0),
        # pushed twice, no activity for 45 days
        ("slipping", "ann", AS_OF - dt.timedelta(days=20), "Qualify", "open", None, 30_000.0),
        # nothing known but its stage and amount
        ("quiet", "bob", AS_OF - dt.timedelta(days=5), "Qualify", "open", None, 1_000.0),
        ("won", "ann", AS_OF - dt.timedelta(days=40), "Close", "won", AS_OF, 5_000.0),
    ]
    extra = {
        "fresh": (AS_OF + dt.timedelta(days=30), "commit", AS_OF - dt.timedelta(days=2)),
        "old": (AS_OF - dt.timedelta(days=5), "best_case", AS_OF - dt.timedelta(days=1)),
        "slipping": (AS_OF + dt.timedelta(days=10), "pipeline", AS_OF - dt.timedelta(days=45)),
        "quiet": (None, None, None),
        "won": (None, "closed", None),
    }
    o = pl.DataFrame(
        [
            dict(zip(cols, r))
            | {"segment": "all", "source": None}
            | dict(zip(("expected_close", "forecast_category", "last_activity"), extra[r[0]]))
            for r in rows
        ],
        schema={
            **OPPORTUNITY_COLUMNS,
            "expected_close": pl.Date,
            "forecast_category": pl.String,
            "last_activity": pl.Date,
        },
    )
    changes = pl.DataFrame(
        [
            ("slipping", AS_OF - dt.timedelta(days=19), D(2026, 8, 1), None),
            ("slipping", AS_OF - dt.timedelta(days=15), D(2026, 8, 10), D(2026, 8, 1)),
            ("slipping", AS_OF - dt.timedelta(days=3), D(2026, 8, 25), D(2026, 8, 10)),
        ],
        schema=["opportunity_id", "changed", "expected_close", "previous"],
        orient="row",
    ).with_columns(
        pl.lit(None, pl.String).alias("stage"),
        pl.lit(None, pl.Float64).alias("amount"),
        pl.lit(None, pl.Float64).alias("probability"),
    )
    teams = pl.DataFrame(
        {"owner": ["ann", "bob"], "manager": ["Max", "Max"], "region": ["N", "S"], "segment": None},
        schema=TEAM_COLUMNS,
    )
    return History(
        o,
        ("Qualify", "Close"),
        close_date_changes=changes.select(list(CLOSE_DATE_CHANGE_COLUMNS)),
        teams=teams,
        source="hist",
    )


TEAM = (Rep("ann", quota=100_000.0), Rep("bob", quota=100_000.0))


def plan(weeks=None):
    return salesim.baseline(model(), history(), as_of=AS_OF, team=TEAM, weeks=weeks)


def test_sorted_flags_and_fields():
    view = salesim.deals(plan(), trials=4000, seed=1)
    deals = view.deals
    assert [d["opportunity_id"] for d in deals][0] == "fresh"
    assert {d["opportunity_id"] for d in deals} == {"fresh", "old", "slipping", "quiet"}
    assert all(set(d) >= DEAL_KEYS for d in deals)
    ev = [d["expected_in_quarter"] for d in deals]
    assert ev == sorted(ev, reverse=True)
    by = {d["opportunity_id"]: d for d in deals}
    assert by["fresh"]["flags"] == []
    assert by["old"]["flags"] == ["old", "overdue"]
    assert by["slipping"]["flags"] == ["pushed", "inactive"]
    assert by["quiet"]["flags"] == []
    assert by["slipping"]["pushes"] == 2 and by["fresh"]["pushes"] == 0
    assert by["fresh"]["forecast_category"] == "commit"
    assert by["old"]["age_days"] == 400
    assert view["won_cycle_p90_days"] == pytest.approx(15.0 * np.log(10))
    for d in deals:
        assert d["expected_in_quarter"] == d["amount"] * d["p_win_quarter"]
        assert 0.0 < d["p_win_quarter"] <= d["p_win"] < 1.0
    # Close is one step from a win: its deals win more often than Qualify's
    assert by["fresh"]["p_win"] > by["slipping"]["p_win"]
    quieter = salesim.deals(plan(), trials=4000, seed=1, inactive_days=60)
    assert {d["opportunity_id"]: d["flags"] for d in quieter.deals}["slipping"] == ["pushed"]


def test_p_win_is_the_forecast_run():
    """The open pipeline's expected revenue in the horizon is Σ amount × P(win): the same
    trials as the forecast's bands."""
    p = plan()
    view = salesim.deals(p, trials=3000, seed=7)
    fc = salesim.forecast(p, trials=3000, seed=7)
    expected = sum(d["amount"] * d["p_win"] for d in view.deals)
    assert expected == pytest.approx(fc["by_origin"]["open_pipeline"]["mean"], rel=1e-12)


def test_quarter_and_horizon_differ_past_the_quarter():
    """A horizon longer than the quarter: P(win this quarter) counts only wins before it ends."""
    view = salesim.deals(plan(weeks=26), trials=3000, seed=2)
    assert view["quarter_end"] == D(2026, 9, 30) and view["end"] > view["quarter_end"]
    assert any(d["p_win"] > d["p_win_quarter"] for d in view.deals)
    assert any("past the quarter" in n for n in view.notes)


def test_tally_is_exact_for_any_worker_count():
    spec = plan().spec
    one = run(spec, 4100, 3, workers=1)
    two = run(spec, 4100, 3, workers=2)
    assert one.chunks.deal_wins.dtype == np.int64
    assert np.array_equal(one.chunks.deal_wins, two.chunks.deal_wins)
    assert np.array_equal(one.seat_sums().wins, two.seat_sums().wins)
    # every win of an open deal is a win in the totals; the quarter's are among the horizon's
    assert one.chunks.deal_wins[1].sum() == int(one.totals["wins_open"].sum())
    assert (one.chunks.deal_wins[0] <= one.chunks.deal_wins[1]).all()


def test_engines_agree_on_each_deals_odds():
    spec = plan(weeks=26).spec
    n_vec, n_simpy = 20_000, 2000
    vec = run(spec, n_vec, 5, engine="vector").deal_odds()
    simpy = run(spec, n_simpy, 5, engine="simpy").deal_odds()
    for a, b in zip(vec, simpy):
        se = np.sqrt(a * (1 - a) / n_vec + b * (1 - b) / n_simpy)
        assert (np.abs(a - b) <= 4 * se + 1e-9).all(), (a, b)


def test_needs_a_history_and_a_sound_inactive_days():
    bare = salesim.baseline(model(), as_of=AS_OF, team=TEAM)
    with pytest.raises(InputError, match="--history"):
        salesim.deals(bare, trials=10)
    with pytest.raises(InputError, match="--inactive-days"):
        salesim.deals(plan(), trials=10, inactive_days=-1)


@pytest.fixture
def files(tmp_path):
    h = history()
    folder = tmp_path / "hist"
    folder.mkdir()
    h.opportunities.write_csv(folder / "opportunities.csv")
    save(model(), tmp_path / "model.toml")
    return tmp_path


def test_cli(files):
    base = [
        "deals",
        str(files / "model.toml"),
        "--history",
        str(files / "hist"),
        "--as-of",
        str(AS_OF),
        "--reps",
        "2",
        "--trials",
        "500",
        "--seed",
        "1",
        "--quiet",
    ]
    r = CliRunner().invoke(main, base + ["--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len(doc["deals"]) == 4 and all(set(d) >= DEAL_KEYS for d in doc["deals"])
    assert doc["deals"][0]["opportunity_id"] == "fresh"
    text = CliRunner().invoke(main, base)
    assert text.exit_code == 0 and "fresh" in text.output and "overdue" in text.output
    out = files / "deals.csv"
    r = CliRunner().invoke(main, base + ["--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pl.read_csv(out)
    assert table["opportunity_id"].to_list() == [d["opportunity_id"] for d in doc["deals"]]
    assert table["flags"].to_list()[0] in ("", None)  # no flag
    for bad in (["--inactive-days", "-3"], ["--inactive-days", "soon"], ["--trials", "0"]):
        r = CliRunner().invoke(main, base + bad)
        assert r.exit_code == 2, (bad, r.output)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = CliRunner().invoke(main, base[:2] + ["--as-of", str(AS_OF), "--quiet"])
    assert r.exit_code == 2 and "--history" in r.stderr


def test_seat_wins_follow_the_owner_in_both_engines():
    """Wins are credited to the deal's owner at the win, leavers' deals moved with them
    (docs/model.md §2): every win is some seat's while someone is on the team."""
    from tests.engine_helpers import open_deals, spec_for

    m = simple_model(
        stages=(stage("Qualify", 0.6, Exponential(15.0), Exponential(10.0)),),
        per_rep_day=3.0,
        opportunity_yield=0.1,
        attrition=0.3,
        as_of=AS_OF,
    )
    deals = open_deals([(f"rep{1 + i % 3}", "Qualify", 2.0 + i, 1e4) for i in range(9)])
    spec = spec_for(m, 3, deals=deals, attrition=True, backfill=True, hiring_lag_days=5)
    sums = {}
    for engine, n in (("vector", 4000), ("simpy", 400)):
        r = run(spec, n, 9, engine=engine)
        wins = r.seat_sums().wins
        assert wins.sum() == int(r.totals["wins"].sum())
        sums[engine] = (wins / n, n)
    (a, na), (b, nb) = sums["vector"], sums["simpy"]
    # mean wins per seat, within 5 SE (a count's variance taken as twice its mean)
    assert (np.abs(a - b) <= 5 * np.sqrt(2 * a / na + 2 * b / nb)).all(), (a, b)
