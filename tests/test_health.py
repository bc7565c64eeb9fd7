"""Pipeline health: exact values on a hand-built history, waterfall conservation as a
property, no leakage past the as-of date, win-rate recovery on demo history, Maven smoke."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.calibrate.health import (
    WATERFALL_TERMS,
    pipeline_health,
    quarter_end,
    quarter_start,
    strike_zone,
    waterfall,
    week_ends,
)
from salesim.calibrate.history import ACTIVITY_COLUMNS, OPPORTUNITY_COLUMNS, History

D = dt.date
AS_OF = D(2026, 5, 15)
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"


def opportunities(rows) -> pl.DataFrame:
    """rows: (id, owner, created, status, closed, amount, segment, source)."""
    cols = ("opportunity_id", "owner", "created", "status", "closed", "amount", "segment", "source")
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    data["stage"] = ["Propose" if s == "open" else "Negotiate" for s in data["status"]]
    return pl.DataFrame(data, schema=OPPORTUNITY_COLUMNS)


# The quarter is 2026-04-01 .. 2026-06-30; the as-of date 2026-05-15.
ROWS = [
    ("A", "ann", D(2026, 2, 1), "won", D(2026, 4, 10), 100.0, "SMB", "outbound"),
    ("B", "ann", D(2026, 3, 1), "lost", D(2026, 5, 1), 50.0, "SMB", "outbound"),
    ("C", "ann", D(2025, 9, 15), "open", None, 200.0, "Ent", "marketing"),
    ("D", "bob", D(2026, 4, 5), "won", D(2026, 5, 10), 300.0, "Ent", "outbound"),
    ("E", "bob", D(2026, 4, 20), "lost", D(2026, 4, 30), 40.0, "SMB", "marketing"),
    ("F", "bob", D(2026, 5, 1), "open", None, 500.0, "Ent", "outbound"),
    ("G", "cy", D(2025, 12, 1), "won", D(2026, 1, 15), 1000.0, "Ent", "outbound"),
    ("H", "cy", D(2025, 10, 1), "lost", D(2026, 3, 31), 70.0, "SMB", "outbound"),
    ("I", "bob", D(2026, 3, 31), "won", D(2026, 4, 1), 10.0, "SMB", "outbound"),
] + [  # older won deals: cycle times 10, 20, ..., 120 days, closed in the lookback year
    (
        f"W{k}",
        "cy",
        D(2025, 11, 1) - dt.timedelta(days=10 * k),
        "won",
        D(2025, 11, 1),
        20.0,
        "SMB",
        "outbound",
    )
    for k in range(1, 13)
]


def hand_history(activities: bool = True) -> History:
    acts = pl.DataFrame(
        {
            "owner": ["ann", "ann", "bob", "bob"],
            "date": [D(2026, 3, 31), D(2026, 4, 2), D(2026, 4, 3), D(2026, 5, 15)],
            "kind": ["call"] * 4,
            "count": [7, 5, 3, 4],
        },
        schema=ACTIVITY_COLUMNS,
    )
    return History(
        opportunities(ROWS),
        stages=("Propose", "Negotiate"),
        activities=acts if activities else None,
        source="hand-built",
    )


def test_calendar():
    assert quarter_start(D(2026, 5, 15)) == D(2026, 4, 1)
    assert quarter_end(D(2026, 5, 15)) == D(2026, 6, 30)
    assert quarter_end(D(2026, 12, 1)) == D(2026, 12, 31)
    assert quarter_start(D(2026, 1, 1)) == D(2026, 1, 1)
    ends = week_ends(D(2026, 4, 1), D(2026, 4, 16))
    assert ends == [D(2026, 4, 7), D(2026, 4, 14), D(2026, 4, 16)]


def test_waterfall_exact():
    w = waterfall(opportunities(ROWS), D(2026, 4, 1), AS_OF)
    assert w.count == {
        "start": 4,
        "created": 3,
        "won": 3,
        "lost": 2,
        "end": 2,
        "won_from_start": 2,
        "won_from_created": 1,
        "lost_from_start": 1,
        "lost_from_created": 1,
        "slipped": 1,
        "open_from_created": 1,
    }
    a = w.amount
    assert (a["start"], a["created"], a["won"], a["lost"], a["end"]) == (360, 840, 410, 90, 700)
    assert a["won_from_created"] == 300 and a["slipped"] == 200
    assert w.balance == 0
    d = w.to_dict()
    assert d["pulled_in"] == 300 and d["pushed_out"] == 200


def test_pipeline_health_exact():
    h = pipeline_health(hand_history(), AS_OF, quota=1000.0, rep_quotas={"ann": 400.0})
    assert (h.quarter_start, h.quarter_end) == (D(2026, 4, 1), D(2026, 6, 30))
    assert h.open_deals == 2 and h.open_pipeline == 700
    assert h.won_qtd == 410 and h.to_go == 590
    assert h.coverage == pytest.approx(700 / 590)
    # Weeks end Apr 7, 14, 21, 28, May 5, 12 and (partial) May 15.
    assert h.weekly_won == [10, 110, 110, 110, 110, 410, 410]

    # Lookback year: closed 2025-05-16 .. 2026-05-15 is everything above.
    won_cycles = [68, 35, 45, 1] + [10 * k for k in range(1, 13)]
    v = h.velocity
    assert v.win_rate == pytest.approx(16 / 19)
    assert v.deal_size == pytest.approx((100 + 300 + 1000 + 10 + 240) / 16)
    assert v.cycle_days == pytest.approx(np.mean(won_cycles))
    assert v.per_day == pytest.approx(2 * v.win_rate * v.deal_size / v.cycle_days)

    assert h.stale_days == pytest.approx(np.quantile(won_cycles, 0.9))
    # C is 242 days old, F 14: only C is stale.
    assert h.stale["opportunity_id"].to_list() == ["C"]
    assert h.stale.row(0, named=True)["owner"] == "ann"
    assert h.stale.row(0, named=True)["amount"] == 200

    reps = {r["owner"]: r for r in h.reps.to_dicts()}
    assert reps["ann"]["activities_qtd"] == 5 and reps["bob"]["activities_qtd"] == 7
    assert reps["bob"]["created_qtd"] == 3 and reps["bob"]["pipeline_created_qtd"] == 840
    assert reps["bob"]["revenue_qtd"] == 310 and reps["ann"]["revenue_qtd"] == 100
    assert reps["ann"]["coverage"] == pytest.approx(200 / 300)
    assert reps["ann"]["stale_deals"] == 1 and reps["bob"]["stale_deals"] == 0
    assert reps["bob"]["quota"] is None and reps["bob"]["coverage"] is None

    cyc = h.cycles
    assert cyc["won"]["n"] == 16 and cyc["lost"]["n"] == 3
    assert cyc["lost"]["median"] == pytest.approx(np.median([61, 10, 181]))


def test_activities_fallback_is_outbound_opportunities():
    h = pipeline_health(hand_history(activities=False), AS_OF)
    reps = {r["owner"]: r for r in h.reps.to_dicts()}
    # bob created D (outbound), E (marketing), F (outbound) this quarter.
    assert reps["bob"]["activities_qtd"] == 2
    assert any("activity" in n for n in h.notes)
    assert h.coverage is None and h.to_go is None


def test_strike_zone_values():
    closed = (
        opportunities(ROWS)
        .filter(pl.col("status") != "open")
        .with_columns(cycle=(pl.col("closed") - pl.col("created")).dt.total_days().cast(pl.Float64))
    )
    z = strike_zone(closed)
    seg = {r["value"]: r for r in z.filter(pl.col("dimension") == "segment").to_dicts()}
    assert (seg["SMB"]["won"], seg["SMB"]["lost"]) == (14, 3)
    assert (seg["Ent"]["won"], seg["Ent"]["lost"]) == (2, 0)
    assert seg["SMB"]["win_rate_se"] == pytest.approx(np.sqrt(14 / 17 * 3 / 17 / 17))
    assert seg["Ent"]["deal_size"] == 650
    # best win rate first
    assert z.filter(pl.col("dimension") == "segment")["value"].to_list() == ["Ent", "SMB"]
    assert set(z["dimension"]) == {"segment", "source", "deal_size_band"}
    bands = z.filter(pl.col("dimension") == "deal_size_band")
    assert bands["won"].sum() + bands["lost"].sum() == closed.height


def test_nothing_after_as_of_leaks():
    """Deals created, or closed, after the as-of date look as they did on it."""
    later = ROWS + [
        ("X", "ann", D(2026, 5, 20), "won", D(2026, 6, 1), 9999.0, "SMB", "outbound"),
        ("Y", "bob", D(2026, 5, 2), "won", D(2026, 6, 10), 123.0, "Ent", "outbound"),
    ]
    now = ROWS + [("Y", "bob", D(2026, 5, 2), "open", None, 123.0, "Ent", "outbound")]
    a = pipeline_health(History(opportunities(later), ("Propose", "Negotiate")), AS_OF)
    b = pipeline_health(History(opportunities(now), ("Propose", "Negotiate")), AS_OF)
    assert a.waterfall == b.waterfall
    assert a.velocity == b.velocity and a.weekly_won == b.weekly_won
    assert a.open_pipeline == b.open_pipeline == 823
    assert a.reps.drop("stale_deals").equals(b.reps.drop("stale_deals"))


# --- properties --------------------------------------------------------------------------------
@st.composite
def random_deals(draw):
    n = draw(st.integers(0, 40))
    rows = []
    for i in range(n):
        created = D(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 200)))
        status = draw(st.sampled_from(["open", "won", "lost"]))
        closed = (
            None if status == "open" else created + dt.timedelta(days=draw(st.integers(0, 120)))
        )
        rows.append(
            (
                f"o{i}",
                draw(st.sampled_from(["a", "b"])),
                created,
                status,
                closed,
                float(draw(st.integers(0, 1000))),
                "all",
                None,
            )
        )
    return rows


@settings(max_examples=60, deadline=None)
@given(rows=random_deals(), start_day=st.integers(0, 150), length=st.integers(0, 120))
def test_waterfall_conserves(rows, start_day, length):
    start = D(2026, 1, 1) + dt.timedelta(days=start_day)
    end = start + dt.timedelta(days=length)
    w = waterfall(opportunities(rows), start, end)
    for kind in (w.count, w.amount):
        assert set(kind) == set(WATERFALL_TERMS)
        assert kind["start"] + kind["created"] - kind["won"] - kind["lost"] == pytest.approx(
            kind["end"]
        )
        assert kind["start"] == pytest.approx(
            kind["won_from_start"] + kind["lost_from_start"] + kind["slipped"]
        )
        assert kind["created"] == pytest.approx(
            kind["won_from_created"] + kind["lost_from_created"] + kind["open_from_created"]
        )
        assert kind["end"] == pytest.approx(kind["slipped"] + kind["open_from_created"])


# --- recovery on demo history ------------------------------------------------------------------
def test_strike_zone_recovers_win_rate_on_demo_history():
    """Demo history has one win rate for every segment and source: each cell's win rate is
    within 4 standard errors of the truth's (closed-in-window deals are unbiased in steady
    state: wins and losses leave at rates λ·w and λ·(1 − w))."""
    from salesim.simulator.demo_history import generate

    demo = generate(np.random.default_rng(11), reps=12, quarters=6, as_of=D(2026, 6, 30))
    h = pipeline_health(demo.to_history(), D(2026, 6, 30))
    truth = demo.truth.cycle.conversion.mean
    z = h.strike_zone.filter(pl.col("dimension").is_in(["segment", "source"]))
    assert z.height >= 4
    for r in z.to_dicts():
        n = r["won"] + r["lost"]
        se = np.sqrt(truth * (1 - truth) / n)
        assert abs(r["win_rate"] - truth) < 4 * se, r
    # velocity's win rate is the same statistic over all closed deals
    n = h.cycles["won"]["n"] + h.cycles["lost"]["n"]
    assert abs(h.velocity.win_rate - truth) < 4 * np.sqrt(truth * (1 - truth) / n)


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not present")
def test_maven_health():
    from salesim.calibrate.ingest import read_history

    hist = read_history(MAVEN, format="maven")
    h = pipeline_health(hist, D(2017, 9, 30), quota=2_500_000.0)
    assert h.waterfall.balance == pytest.approx(0, abs=1e-6)
    assert h.velocity.win_rate is not None and 0.4 < h.velocity.win_rate < 0.8
    assert h.strike_zone.filter(pl.col("dimension") == "segment").height >= 5
    assert h.stale_days is not None and h.stale.height > 0
    assert (h.stale["age_days"] > h.stale_days).all()
    assert h.reps.height >= 20
