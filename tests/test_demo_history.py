"""The demo-history generator: shape of the files, and that the data follow the truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import salesim.simulator.demo_history as dh
from salesim import cli
from salesim.calibrate.history import (
    ACTIVITY_COLUMNS,
    OPPORTUNITY_COLUMNS,
    REP_COLUMNS,
    STAGE_HISTORY_COLUMNS,
)
from salesim.calibrate.ingest import read_history
from salesim.simulator import model as m
from salesim.simulator.calendar import add_quarters, quarter_end, quarter_index, quarter_start
from salesim.simulator.demo_ingredients import (
    PLAYED,
    REALISTIC,
    SEASON_SHAPE,
    Ingredients,
    truth_as_of,
)
from salesim.simulator.distributions import Exponential, Fixed
from salesim.simulator.errors import InputError
from salesim.simulator.spec import DAYS_PER_MONTH
from salesim.simulator.vector_params import draw_model
from tests import factories
from tests.factories import simple_model

K = 4.0  # tolerance in standard errors


@pytest.fixture(scope="module")
def small():
    return dh.generate(11, reps=20, quarters=4)


@pytest.fixture(scope="module")
def medium():
    return dh.generate(3, reps=80, quarters=4)


def _days(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int32)


# --- default output is pinned ---------------------------------------------------------------
# Digests of what the generator wrote before issue 14's options existed (commit 669b05a):
# with every option off, the files and the truth must stay byte for byte what they were.
# A mismatch means a change to the default output. Refresh a digest only when a library
# upgrade changes how polars or tomli-w formats the same numbers, never to accept a
# generator change.
def _churny_truth():
    t = dh.default_truth(dt.date(2026, 9, 30), reps=12)
    return dataclasses.replace(
        t,
        team=m.TeamModel(
            ramp_months=3.0,
            ramp_months_sd=0.0,
            attrition=m.GammaPosterior(0.1e9, 1e9),
            quota=1.0,
            calibrated=True,
        ),
    )


PINNED = {  # case -> (generate's arguments, sha256 prefix of the CSV texts and truth.toml)
    "seed7": (lambda: dict(rng=7), "d45047cb269337f5"),
    "mid_quarter": (
        lambda: dict(rng=5, reps=6, quarters=3, as_of=dt.date(2026, 5, 17)),
        "4f20f5b8d6f4115c",
    ),
    "simple": (
        lambda: dict(
            rng=2,
            reps=10,
            quarters=2,
            as_of=dt.date(2026, 3, 31),
            truth=simple_model(
                per_rep_day=10.0, opportunity_yield=0.05, lag=Fixed(0.0), as_of=dt.date(2026, 3, 31)
            ),
        ),
        "650ee12860ff9895",
    ),
    "solo": (lambda: dict(rng=9, reps=1, quarters=8), "8d4be8e2fe106097"),
    "churny": (lambda: dict(rng=4, reps=12, quarters=3, truth=_churny_truth()), "173e3af3000c94b1"),
}


def _digest(h) -> str:
    texts = h.csv_texts()
    s = hashlib.sha256()
    for name in sorted(texts):
        s.update(name.encode())
        s.update(texts[name].encode())
    s.update(m.dumps(h.truth).encode())
    return s.hexdigest()[:16]


@pytest.mark.parametrize("case", sorted(PINNED))
def test_default_output_is_unchanged(case):
    kwargs, expected = PINNED[case]
    assert _digest(dh.generate(**kwargs())) == expected


# --- shape -------------------------------------------------------------------------------------
def test_history_window():
    assert dh.history_start(dt.date(2026, 9, 30), 8) == dt.date(2024, 10, 1)
    assert dh.history_start(dt.date(2026, 6, 15), 1) == dt.date(2026, 3, 16)
    assert dh.history_start(dt.date(2026, 5, 30), 1) == dt.date(2026, 2, 28)
    assert dh.history_days(dt.date(2026, 9, 30), 4) == 365


def test_same_seed_same_frames_other_seed_differs():
    a = dh.generate(5, reps=6, quarters=2)
    b = dh.generate(np.random.SeedSequence(5), reps=6, quarters=2)
    c = dh.generate(6, reps=6, quarters=2)
    for name in ("opportunities", "stage_history", "activities", "reps"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.truth == b.truth
    assert not a.opportunities.equals(c.opportunities)
    assert not a.activities.equals(c.activities)


def test_frames_follow_the_canonical_schemas(small):
    assert small.opportunities.schema == pl.Schema(OPPORTUNITY_COLUMNS)
    assert small.stage_history.schema == pl.Schema(STAGE_HISTORY_COLUMNS)
    assert small.activities.schema == pl.Schema(ACTIVITY_COLUMNS)
    assert small.reps.schema == pl.Schema(REP_COLUMNS)
    o = small.opportunities
    assert o["opportunity_id"].is_unique().all()
    assert set(o["status"]) == {"open", "won", "lost"}
    assert set(o["source"]) == {"marketing", "outbound"}
    assert set(o["stage"]) <= set(small.stages)
    assert (o["amount"] > 0).all()
    assert o.filter(pl.col("closed").is_null() != (pl.col("status") == "open")).height == 0
    assert set(small.activities["kind"]) == {"call", "email"}
    assert (small.activities["count"] >= 0).all()
    h = small.to_history()
    assert h.stages == small.stages and h.has_stage_history


def test_nothing_dated_after_as_of(small):
    start, as_of = small.start, small.as_of
    dated = [
        (small.opportunities, "created"),
        (small.opportunities, "closed"),
        (small.stage_history, "entered"),
        (small.activities, "date"),
        (small.reps, "left"),
    ]
    for frame, col in dated:
        assert frame[col].max() <= as_of, col
        assert frame[col].min() >= start, col
    assert small.reps["hired"].max() <= as_of
    assert small.opportunities.filter(pl.col("closed") < pl.col("created")).height == 0


def test_open_deals_sit_in_their_last_recorded_stage(small):
    order = {s: i for i, s in enumerate(small.stages)}
    last = (
        small.stage_history.with_columns(pl.col("stage").replace_strict(order).alias("k"))
        .group_by("opportunity_id")
        .agg(pl.col("stage").sort_by("k").last().alias("last"))
    )
    o = small.opportunities.join(last, on="opportunity_id", how="left")
    assert o["last"].null_count() == 0
    assert (o["stage"] == o["last"]).all()
    open_ = o.filter(pl.col("status") == "open")
    assert open_.height > 0
    assert open_["stage"].n_unique() > 1  # censored in several stages


def test_stage_history_is_consistent_with_opportunities(small):
    order = {s: i for i, s in enumerate(small.stages)}
    sh = small.stage_history.with_columns(pl.col("stage").replace_strict(order).alias("k"))
    per = sh.group_by("opportunity_id").agg(
        pl.col("k").sort().alias("ks"),
        pl.col("entered").sort_by("k").alias("dates"),
        pl.col("entered").filter(pl.col("k") == 0).first().alias("first"),
    )
    o = small.opportunities.join(per, on="opportunity_id", how="left")
    assert o.height == small.opportunities.height
    # Everyone entered the first stage on its created date; stages have no gaps or repeats.
    assert (o["first"] == o["created"]).all()
    assert all(ks.to_list() == list(range(len(ks))) for ks in o["ks"])
    assert all(d.is_sorted() for d in o["dates"])
    won = o.filter(pl.col("status") == "won")
    assert won.height > 0
    assert (won["ks"].list.len() == len(small.stages)).all()
    entered_after_close = sh.join(o.select("opportunity_id", "closed"), on="opportunity_id").filter(
        pl.col("entered") > pl.col("closed")
    )
    assert entered_after_close.height == 0


# --- the data follow the truth -------------------------------------------------------------
def test_lost_deals_die_faster_than_won_deals_close(small):
    cycle = small.opportunities.with_columns((_days("closed") - _days("created")).alias("days"))
    won = cycle.filter(pl.col("status") == "won")["days"].median()
    lost = cycle.filter(pl.col("status") == "lost")["days"].median()
    assert lost < 0.5 * won


def test_deal_sizes_differ_by_segment_and_match_the_truth(medium):
    sizes = {s.name: s.size.dist for s in medium.truth.deal_size}
    got = medium.opportunities.group_by("segment").agg(
        pl.col("amount").log().median().alias("log_median"), pl.len()
    )
    medians = dict(zip(got["segment"], got["log_median"]))
    assert medians["SMB"] < medians["Mid-Market"] < medians["Enterprise"]
    for seg, log_median, n in got.iter_rows():
        d = sizes[seg]  # lognormal: the sample median of log size has SE σ·sqrt(π/2n)
        se = d.sigma * math.sqrt(math.pi / (2 * n))
        assert abs(log_median - math.log(d.median)) < K * se, seg
    # Segment shares too (binomial SE).
    total = medium.opportunities.height
    probs = medium.truth.point().segment_probs
    for seg, p in zip(medium.truth.point().segments, probs):
        n = int(got.filter(pl.col("segment") == seg)["len"][0])
        assert abs(n / total - p) < K * math.sqrt(p * (1 - p) / total), seg


def _ramped_daily(h, min_tenure_days=100):
    """Daily activity per rep (calls + emails) on days with tenure past the ramp."""
    per_day = h.activities.group_by("owner", "date").agg(pl.col("count").sum())
    return per_day.join(h.reps.select("owner", "hired"), on="owner").filter(
        (_days("date") - _days("hired")) >= min_tenure_days
    )


def test_activity_varies_more_than_poisson_within_and_between_reps(medium):
    daily = _ramped_daily(medium)
    stats = daily.group_by("owner").agg(
        pl.col("count").mean().alias("mean"), pl.col("count").var().alias("var"), pl.len()
    )
    stats = stats.filter(pl.col("len") >= 60)
    # Within a rep: NB(size 3) at ~12/day has variance ≈ 5× its mean; Poisson would be 1×.
    assert (stats["var"] / stats["mean"]).median() > 2.5
    # Between reps: per-rep means follow the drawn multipliers (rep_sigma 0.3).
    joined = stats.join(medium.multipliers, on="owner")
    log_mean = np.log(joined["mean"].to_numpy())
    assert np.corrcoef(log_mean, np.log(joined["multiplier"].to_numpy()))[0, 1] > 0.8
    n = joined.height
    sigma = medium.truth.activities.rep_sigma
    # Sample sd of the log multipliers vs rep_sigma (SE ≈ σ/sqrt(2(n−1))).
    sd = float(np.log(joined["multiplier"].to_numpy()).std(ddof=1))
    assert abs(sd - sigma) < K * sigma / math.sqrt(2 * (n - 1))
    assert log_mean.std(ddof=1) > 0.6 * sigma  # far above Poisson noise (≈ 0.05)


def test_new_hires_ramp_up(medium):
    per_day = medium.activities.group_by("owner", "date").agg(pl.col("count").sum())
    hires = medium.reps.filter(pl.col("hired") >= medium.start)
    assert hires.height >= 5
    t = per_day.join(hires.select("owner", "hired"), on="owner").with_columns(
        (_days("date") - _days("hired")).alias("tenure")
    )
    first = t.filter(pl.col("tenure") < 30)["count"].mean()
    later = t.filter(pl.col("tenure") >= 3 * DAYS_PER_MONTH)["count"].mean()
    ramp = medium.truth.team.ramp_months
    assert first > 0
    # A linear ramp over 3 months averages ≈ 1/6 in the first month.
    assert first < 0.35 * later
    assert ramp == 3.0


def test_reps_leave_and_seats_are_backfilled(medium):
    reps = medium.reps
    left = reps.filter(pl.col("left").is_not_null())
    assert left.height > 0
    # Each hire inside the window refills a seat HIRING_LAG_DAYS after someone left.
    expected = left.filter(
        pl.col("left") + dt.timedelta(days=dh.HIRING_LAG_DAYS) <= medium.as_of
    ).height
    refilled = (left["left"] + dt.timedelta(days=dh.HIRING_LAG_DAYS)).sort().to_list()
    # (A starting-team rep may have been hired on the first day; backfills come later.)
    first_refill = medium.start + dt.timedelta(days=dh.HIRING_LAG_DAYS)
    hired = reps.filter(pl.col("hired") >= first_refill)["hired"].sort().to_list()
    assert len(hired) == expected
    assert hired == [d for d in refilled if d <= medium.as_of]
    # The truth's team is who is on the team at as-of.
    active = reps.filter(pl.col("left").is_null())
    assert [r.name for r in medium.truth.team.reps] == active["owner"].to_list()
    assert len(medium.truth.team.reps) <= 80
    # Monthly attrition near the truth (Poisson SE on the count of leavers).
    months = reps.with_columns(
        (
            (
                pl.coalesce(_days("left"), pl.lit(medium.as_of).cast(pl.Int32))
                - pl.max_horizontal(_days("hired"), pl.lit(medium.start).cast(pl.Int32))
            )
            / DAYS_PER_MONTH
        ).alias("m")
    )["m"].sum()
    rate = medium.truth.team.attrition.mean
    assert abs(left.height - rate * months) < K * math.sqrt(rate * months)


def test_leavers_deals_pass_to_active_reps(medium):
    left = medium.reps.filter(pl.col("left").is_not_null())
    o = medium.opportunities.join(left.select("owner", "left"), on="owner")
    # A leaver still owns only deals that closed by the time they left (or none could move).
    still = o.filter(pl.col("closed").is_null() | (pl.col("closed") > pl.col("left")))
    assert still.height == 0


def test_truth_round_trips_and_is_a_usable_model(small, tmp_path):
    path = m.save(small.truth, tmp_path / "truth.toml")
    loaded = m.load(path)
    assert loaded == small.truth
    assert loaded.notes == ("truth: generated parameters",)
    assert loaded.stage_names == ("Qualify", "Discover", "Propose", "Negotiate")
    assert len({s.advance.dist.family for s in loaded.stages}) >= 3
    for s in loaded.stages:
        assert s.lost.dist.quantile(0.5) < s.advance.dist.quantile(0.5)
    drawn = draw_model(loaded, 1, np.random.default_rng(0)).trial(0)
    assert drawn.conversion == pytest.approx(loaded.point().conversion, abs=1e-3)
    assert loaded.n_opportunities == small.opportunities.height
    assert 0.2 <= loaded.marketing.share <= 0.3
    p = [s.conversion.mean for s in loaded.stages]
    assert loaded.win_rate == pytest.approx(math.prod(p))


def _advance_lost_by_as_of(h):
    """Per stage: deals that entered it, with days from entry to the end of the window and
    whether they advanced / were lost in it by as-of."""
    order = {s: i for i, s in enumerate(h.stages)}
    sh = h.stage_history.with_columns(pl.col("stage").replace_strict(order).alias("k"))
    o = h.opportunities.select("opportunity_id", "status", "stage").with_columns(
        pl.col("stage").replace_strict(order).alias("last")
    )
    end = (h.as_of - h.start).days + 1
    return sh.join(o.select("opportunity_id", "status", "last"), on="opportunity_id").with_columns(
        (end - (_days("entered") - pl.lit(h.start).cast(pl.Int32))).alias("exposure"),
        ((pl.col("k") < pl.col("last")) | (pl.col("status") == "won")).alias("advanced"),
        ((pl.col("k") == pl.col("last")) & (pl.col("status") == "lost")).alias("lost"),
    )


def test_stage_outcomes_with_censoring_match_the_truth(medium):
    """Per stage, advances and losses seen by as-of match what the truth predicts given
    each deal's time at risk (competing outcomes, right-censored at as-of)."""
    data = _advance_lost_by_as_of(medium)
    frac = (np.arange(16) + 0.5) / 16  # entry time is uniform-ish inside its day
    for k, stage in enumerate(medium.truth.stages):
        d = data.filter(pl.col("k") == k)
        x = d["exposure"].to_numpy()[:, None] - frac[None, :]  # days from entry to as-of
        p = stage.conversion.mean
        pa = p * stage.advance.dist.cdf(x).mean(axis=1)
        pl_ = (1 - p) * stage.lost.dist.cdf(x).mean(axis=1)
        for observed, prob in ((d["advanced"].sum(), pa), (d["lost"].sum(), pl_)):
            se = math.sqrt(float((prob * (1 - prob)).sum()))
            assert abs(observed - prob.sum()) < K * se, (stage.name, observed, prob.sum())
        open_ = d.height - d["advanced"].sum() - d["lost"].sum()
        assert open_ > 0, stage.name
        # Deals in old cohorts are all resolved: their conversion is the truth's p.
        old = d.filter(pl.col("exposure") > 150)
        n = old.height
        assert old["advanced"].sum() + old["lost"].sum() == n
        assert abs(old["advanced"].mean() - p) < K * math.sqrt(p * (1 - p) / n), stage.name


def test_stage_durations_match_the_truth(medium):
    """Old cohorts (all resolved): mean days to advance / to be lost in each stage equal the
    truth's means (day rounding of both dates adds < 0.5 day of bias)."""
    data = (
        _advance_lost_by_as_of(medium)
        .sort("opportunity_id", "k")
        .with_columns(pl.col("entered").shift(-1).over("opportunity_id").alias("next"))
    )
    closed = medium.opportunities.select("opportunity_id", "closed")
    data = data.join(closed, on="opportunity_id").filter(pl.col("exposure") > 150)
    last = len(medium.stages) - 1
    for k, stage in enumerate(medium.truth.stages):
        d = data.filter(pl.col("k") == k)
        adv_end = "closed" if k == last else "next"
        samples = (
            (d.filter(pl.col("advanced")), adv_end, stage.advance.dist),
            (d.filter(pl.col("lost")), "closed", stage.lost.dist),
        )
        for rows, end, dist in samples:
            days = (rows[end].cast(pl.Int32) - rows["entered"].cast(pl.Int32)).cast(pl.Float64)
            se = math.sqrt(float(dist.frozen().var()) / days.len())
            assert abs(days.mean() - dist.mean) < K * se + 0.5, (stage.name, end, days.mean())


def test_cycle_times_match_the_truth_cycle(medium):
    """Old cohorts (all closed): mean won/lost cycle equals the truth cycle's exact mean."""
    cyc = medium.opportunities.filter(
        (pl.lit(medium.as_of) - pl.col("created")).dt.total_days() > 250
    ).with_columns((_days("closed") - _days("created")).alias("days"))
    assert cyc["closed"].null_count() == 0
    for status, dist in (
        ("won", medium.truth.cycle.advance.dist),
        ("lost", medium.truth.cycle.lost.dist),
    ):
        days = cyc.filter(pl.col("status") == status)["days"]
        se = math.sqrt(float(dist.frozen().var()) / days.len())
        assert abs(days.mean() - dist.mean) < K * se + 0.5, status  # + day rounding


def test_marketing_leads_arrive_at_the_truth_rate(medium):
    n = medium.opportunities.filter(pl.col("source") == "marketing").height
    days = (medium.as_of - medium.start).days + 1
    expected = medium.truth.marketing.weekly.mean * days / 7  # Poisson: SE = sqrt(mean)
    assert abs(n - expected) < K * math.sqrt(expected)
    assert medium.truth.marketing.share == pytest.approx(n / medium.opportunities.height)


def test_activities_yield_opportunities_at_the_truth_rate():
    """Zero-variance team (no ramp, attrition or capacity; Poisson activity; zero lag):
    outbound deals are Binomial(activities, yield)."""
    truth = simple_model(
        per_rep_day=10.0, opportunity_yield=0.05, lag=Fixed(0.0), as_of=dt.date(2026, 3, 31)
    )
    h = dh.generate(2, reps=10, quarters=2, as_of=dt.date(2026, 3, 31), truth=truth)
    acts = int(h.activities["count"].sum())
    rep_days = h.activities.height // 2
    assert h.reps["left"].null_count() == 10 and h.reps.height == 10
    assert abs(acts / rep_days - 10.0) < K * math.sqrt(10.0 / rep_days)
    n = h.opportunities.filter(pl.col("source") == "outbound").height
    assert abs(n - 0.05 * acts) < K * math.sqrt(acts * 0.05 * 0.95)
    assert h.opportunities["segment"].unique().to_list() == ["all"]
    assert (h.opportunities["amount"] == 10_000.0).all()


def test_open_deal_counts_and_reassignment_follow_the_model(monkeypatch):
    """White box: the per-rep open counts that drive the capacity share equal a recount from
    the deals, and a leaver's open deals (and leads arriving after they left) go to the
    active rep with the fewest open deals at that moment."""
    seen_days, moves = [], []
    prospect, hand_over = dh._Simulation._prospect, dh._Simulation._hand_over

    def spy_prospect(self, rng, d, open_now):
        seen_days.append((d, open_now.copy()))
        return prospect(self, rng, d, open_now)

    def spy_hand_over(self, deals, r, t, begin):
        n = self.paths.n
        before = self.owner[:n].copy()
        hand_over(self, deals, r, t, begin)
        moves.append((t, r, deals.copy(), before, self.owner[:n].copy(), self))

    monkeypatch.setattr(dh._Simulation, "_prospect", spy_prospect)
    monkeypatch.setattr(dh._Simulation, "_hand_over", spy_hand_over)
    truth = dh.default_truth(dt.date(2026, 9, 30), reps=12)
    truth = m.Model(
        **{
            **truth.__dict__,
            "team": m.TeamModel(
                ramp_months=3.0,
                ramp_months_sd=0.0,
                attrition=m.GammaPosterior(0.1e9, 1e9),
                quota=1.0,
                calibrated=True,
            ),
        }
    )
    dh.generate(4, reps=12, quarters=3, truth=truth)
    sim = moves[0][5]
    n = sim.paths.n
    created, end, final = sim.created[:n], sim.end[:n], sim.owner[:n]
    times = np.array([t for t, *_ in moves])
    moved = late_leads = 0
    for t, r, deals, before, after, _ in moves:
        changed = np.flatnonzero(before != after)
        assert set(changed) <= set(deals) and (before[deals] == r).all()
        if changed.size == 0:
            continue
        moved += changed.size
        late_leads += int((created[changed] == t).sum())
        # Exactly the leaver's open deals move (or the one lead arriving now).
        if (created[deals] == t).all():
            assert deals.size == 1
        else:
            mine = np.flatnonzero(
                (before == r) & (created[: before.size] <= t) & (end[: before.size] > t)
            )
            assert np.array_equal(np.sort(deals), mine)
        q = after[changed[0]]
        assert (after[changed] == q).all()
        active = (sim.team.hire <= t) & (sim.team.leave > t)
        active[r] = False
        # Deals drawn after this moment are created after it, so ``before`` covers all.
        is_open = ((created <= t) & (end > t))[: before.size]
        counts = np.bincount(before[is_open], minlength=sim.team.hire.size)
        fewest = np.flatnonzero(active & (counts == counts[active].min()))
        assert q == fewest[0]  # ties: lowest rep index
    assert moved > 0 and late_leads > 0
    for d, open_now in seen_days[::7]:
        # Owner at the start of day d: as just before the first hand-over after d.
        later = np.flatnonzero(times > d)
        owner = moves[later[0]][3] if later.size else final
        owner = np.concatenate([owner, final[owner.size :]])
        is_open = (created <= d) & (end > d)
        recount = np.bincount(owner[is_open], minlength=sim.team.hire.size)
        assert (open_now == recount).all(), d


def test_degenerate_teams():
    # Nobody prospects and no marketing: empty frames with the canonical schemas.
    quiet = simple_model(per_rep_day=0.0, as_of=dt.date(2026, 3, 31))
    h = dh.generate(1, reps=2, quarters=1, as_of=dt.date(2026, 3, 31), truth=quiet)
    assert h.opportunities.height == 0 and h.stage_history.height == 0
    assert h.opportunities.schema == pl.Schema(OPPORTUNITY_COLUMNS)
    assert h.summary()["opportunities"] == 0 and h.activities.height > 0
    # A one-rep team that may leave with nobody to take the deals: they stay and close.
    solo = dh.generate(9, reps=1, quarters=8)
    assert solo.reps.height >= 1
    s = solo.summary()
    assert s["won"] + s["lost"] + s["open"] == s["opportunities"] > 0


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="rep"):
        dh.generate(1, reps=0)
    with pytest.raises(InputError, match="quarter"):
        dh.generate(1, quarters=0)


# --- changing histories (issue 14) ------------------------------------------------------------
def _steady(as_of: dt.date, reps: int) -> m.Model:
    """The default truth without what blurs a rate per rep-day: nobody leaves (so nobody is
    hired or ramps) and open deals never cut prospecting."""
    t = dh.default_truth(as_of, reps)
    return dataclasses.replace(
        t,
        team=dataclasses.replace(t.team, attrition=m.GammaPosterior(1e-3, 1e9)),
        capacity=m.CapacityModel(week_hours=40.0, deal_hours=0.0, free_deals=0.0, floor=1.0),
    )


def _quarter_no(h, col: pl.Expr) -> pl.Expr:
    """Index of a date's calendar quarter, counted from the history's first quarter."""
    first = quarter_index(h.start)
    return col.dt.year() * 4 + (col.dt.month() - 1) // 3 - first


def _wls_slope(x, y, var, through_origin=False):
    """Weighted least-squares slope of ``y`` on ``x`` and its standard error."""
    x, y, w = np.asarray(x, float), np.asarray(y, float), 1 / np.asarray(var, float)
    if not through_origin:
        x = x - (w @ x) / w.sum()
        y = y - (w @ y) / w.sum()
    sxx = float(w @ (x * x))
    return float(w @ (x * y)) / sxx, 1 / math.sqrt(sxx)


def _rep_days_by_quarter(h) -> dict[int, int]:
    per = (
        h.activities.filter(pl.col("kind") == "call")
        .group_by(_quarter_no(h, pl.col("date")).alias("q"))
        .len()
    )
    return dict(zip(per["q"], per["len"]))


def _days_by_quarter(h) -> dict[int, int]:
    days = pl.DataFrame({"d": pl.date_range(h.start, h.as_of, eager=True)})
    per = days.group_by(_quarter_no(h, pl.col("d")).alias("q")).len()
    return dict(zip(per["q"], per["len"]))


def test_no_ingredients_is_the_default():
    a = dh.generate(5, reps=4, quarters=2)
    b = dh.generate(5, reps=4, quarters=2, ingredients=Ingredients())
    assert a.csv_texts() == b.csv_texts() and a.truth == b.truth
    assert a.truth.calendar is None and a.summary()["ingredients"] == {}


def test_growth_multiplies_creation_by_exp_x_per_quarter():
    x, as_of = 0.15, dt.date(2026, 6, 30)
    h = dh.generate(
        21,
        reps=30,
        quarters=6,
        as_of=as_of,
        truth=_steady(as_of, 30),
        ingredients=Ingredients(growth=x),
    )
    rep_days, days = _rep_days_by_quarter(h), _days_by_quarter(h)
    by = h.opportunities.group_by(_quarter_no(h, pl.col("created")).alias("q"), "source").len()
    count = {(q, s): n for q, s, n in by.iter_rows()}
    # Outbound deals per rep-day. Quarter 0 is left out: its first days miss the deals whose
    # activity (lag ≈ 3 days) came before the window. Variance ≈ 1.2/N: activities are
    # over-dispersed (NegBin size 3) before the 3.5% yield thins them.
    qs = range(1, 6)
    n = [count[q, "outbound"] for q in qs]
    slope, se = _wls_slope(
        list(qs), [math.log(c / rep_days[q]) for c, q in zip(n, qs)], [1.2 / c for c in n]
    )
    assert abs(slope - x) < K * se, (slope, se)
    # Marketing leads per day (Poisson), every quarter.
    qs = range(6)
    n = [count[q, "marketing"] for q in qs]
    slope, se = _wls_slope(
        list(qs), [math.log(c / days[q]) for c, q in zip(n, qs)], [1 / c for c in n]
    )
    assert abs(slope - x) < K * se, (slope, se)
    cal = h.truth.calendar
    assert cal.outbound.trend == cal.marketing.trend == x and cal.conversion is None
    assert cal.outbound.mean[:6] == pytest.approx([x * i for i in range(6)])


def test_drift_shifts_each_stage_log_odds_by_x_per_quarter_of_entry():
    x, as_of = -0.15, dt.date(2026, 6, 30)
    h = dh.generate(
        22,
        reps=40,
        quarters=6,
        as_of=as_of,
        truth=_steady(as_of, 40),
        ingredients=Ingredients(drift=x),
    )
    data = (
        _advance_lost_by_as_of(h)
        .filter(pl.col("exposure") > 150)
        .with_columns(_quarter_no(h, pl.col("entered")).alias("q"))
    )
    assert (data["advanced"] | data["lost"]).all()  # old enough: all resolved
    cells = data.group_by("k", "q").agg(pl.col("advanced").sum().alias("a"), pl.len())
    xs, ys, vs = [], [], []
    for k, q, a, n in cells.iter_rows():
        p = h.truth.stages[k].conversion.mean
        expected = 1 / (1 + math.exp(-(math.log(p / (1 - p)) + x * q)))
        assert abs(a - n * expected) < K * math.sqrt(n * expected * (1 - expected)), (k, q)
        rate = a / n
        xs.append(q)
        ys.append(math.log(rate / (1 - rate)) - math.log(p / (1 - p)))
        vs.append(1 / (n * expected * (1 - expected)))
    slope, se = _wls_slope(xs, ys, vs, through_origin=True)
    assert abs(slope - x) < K * se, (slope, se)
    # So the win rate of deals falls by creation quarter.
    won = (
        h.opportunities.filter(pl.col("created") <= as_of - dt.timedelta(days=200))
        .group_by(_quarter_no(h, pl.col("created")).alias("q"))
        .agg((pl.col("status") == "won").mean().alias("w"), pl.len())
        .sort("q")
    )
    w, n = won["w"].to_list(), won["len"].to_list()
    se = math.sqrt(w[0] * (1 - w[0]) / n[0] + w[-1] * (1 - w[-1]) / n[-1])
    assert w[0] - w[-1] > K * se
    assert [c for c in PLAYED if h.truth.calendar.channel(c)] == ["conversion"]


def test_conversion_acts_by_the_quarter_each_stage_is_entered():
    """Stage 2 is entered exactly 45 days after creation, so about half the deals created in
    a quarter enter it in the next one: with a strong drift, their stage-2 odds are the next
    quarter's, not their creation quarter's (docs/model.md §8)."""
    x, as_of = 0.5, dt.date(2026, 12, 31)
    stages = (
        factories.stage("First", 0.9, Fixed(45.0), Exponential(5.0)),
        factories.stage("Second", 0.5, Exponential(10.0), Exponential(10.0)),
    )
    truth = simple_model(stages=stages, per_rep_day=0.0, marketing_weekly=150.0, as_of=as_of)
    h = dh.generate(
        29, reps=2, quarters=4, as_of=as_of, truth=truth, ingredients=Ingredients(drift=x)
    )
    second = (
        h.stage_history.filter(pl.col("stage") == "Second")
        .join(h.opportunities, on="opportunity_id")
        .filter(pl.col("entered") <= as_of - dt.timedelta(days=120))  # all resolved
        .with_columns(
            _quarter_no(h, pl.col("created")).alias("made"),
            _quarter_no(h, pl.col("entered")).alias("q"),
        )
    )
    assert second["closed"].null_count() == 0
    cells = second.group_by("made", "q").agg(
        (pl.col("status") == "won").sum().alias("won"), pl.len()
    )
    assert (cells["q"] > cells["made"]).sum() >= 2  # deals that crossed into a quarter
    z = []
    for made, q, won, n in cells.iter_rows():
        p = 1 / (1 + math.exp(-x * q))  # logit 0.5 = 0; the entry quarter's shift
        z.append((won - n * p) / math.sqrt(n * p * (1 - p)))
    _assert_standard(z)


def test_seasonality_sets_creation_by_quarter_of_year():
    x, as_of = 0.4, dt.date(2026, 12, 31)
    h = dh.generate(
        23,
        reps=20,
        quarters=8,
        as_of=as_of,
        truth=_steady(as_of, 20),
        ingredients=Ingredients(seasonality=x),
    )
    qoy = ((pl.col("date").dt.month() - 1) // 3).alias("qoy")
    daily = h.activities.group_by("owner", "date").agg(pl.col("count").sum())
    acts = daily.group_by(qoy).agg(
        pl.col("count").mean().alias("mean"), pl.col("count").var().alias("var"), pl.len()
    )
    a = {q: (mean, var / n / mean**2) for q, mean, var, n in acts.iter_rows()}  # log: var/m²
    days = pl.DataFrame({"date": pl.date_range(h.start, as_of, eager=True)}).group_by(qoy).len()
    leads = (
        h.opportunities.filter(pl.col("source") == "marketing")
        .group_by(((pl.col("created").dt.month() - 1) // 3).alias("qoy"))
        .len()
    )
    per_day = {
        q: n / d
        for (q, n), (_, d) in zip(leads.sort("qoy").iter_rows(), days.sort("qoy").iter_rows())
    }
    n_leads = dict(leads.iter_rows())
    for hi, lo in ((3, 0), (3, 2), (2, 0), (1, 0)):
        want = x * (SEASON_SHAPE[hi] - SEASON_SHAPE[lo])
        got = math.log(a[hi][0] / a[lo][0])
        assert abs(got - want) < K * math.sqrt(a[hi][1] + a[lo][1]), (hi, lo, got)
        got = math.log(per_day[hi] / per_day[lo])
        assert abs(got - want) < K * math.sqrt(1 / n_leads[hi] + 1 / n_leads[lo]), (hi, lo)
    assert h.truth.calendar.outbound.season == pytest.approx(tuple(x * s for s in SEASON_SHAPE))


def test_shocks_move_each_quarter_as_the_truth_records():
    """One stage, marketing leads only, ten years: per quarter, leads, conversion and cycle
    follow the quarter's recorded shocks, and leads vary beyond Poisson noise by ≈ X."""
    x, as_of, n_q = 0.2, dt.date(2026, 9, 30), 40
    truth = simple_model(per_rep_day=0.0, marketing_weekly=80.0, as_of=as_of)
    h = dh.generate(
        24, reps=2, quarters=n_q, as_of=as_of, truth=truth, ingredients=Ingredients(shocks=x)
    )
    cal = h.truth.calendar
    assert all(cal.channel(c) is not None for c in PLAYED)
    e = {c: np.array(cal.channel(c).mean[:n_q]) for c in PLAYED}
    assert abs(e["marketing"].std() - x) < K * x / math.sqrt(2 * n_q)
    o = h.opportunities.with_columns(
        _quarter_no(h, pl.col("created")).alias("q"),
        (_days("closed") - _days("created")).alias("days"),
    )
    days = _days_by_quarter(h)
    leads = dict(o.group_by("q").len().iter_rows())
    expected = {q: 80.0 / 7 * days[q] for q in range(n_q)}
    _assert_standard(
        [
            (math.log(leads[q] / expected[q]) - e["marketing"][q])
            * math.sqrt(expected[q] * math.exp(e["marketing"][q]))
            for q in range(n_q)
        ]
    )
    excess = np.mean([math.log(leads[q] / expected[q]) ** 2 - 1 / leads[q] for q in range(n_q)])
    assert abs(excess - x * x) < K * math.sqrt(2 / n_q) * (x * x + 1 / min(leads.values()))
    # Conversion and speed, by the quarter the deal entered its (only) stage: its creation.
    resolved = o.filter(pl.col("q") < n_q - 2)  # all closed by as-of
    assert resolved["closed"].null_count() == 0
    per = (
        resolved.group_by("q")
        .agg(
            (pl.col("status") == "won").sum().alias("won"),
            pl.len(),
            pl.col("days").filter(pl.col("status") == "won").mean().alias("won_days"),
        )
        .sort("q")
    )
    xs, ys, vs, zs, sx, sy, sv, sz = [], [], [], [], [], [], [], []
    for q, won, n, won_days in per.iter_rows():
        p = 1 / (1 + math.exp(-e["conversion"][q]))  # logit 0.5 = 0
        zs.append((won - n * p) / math.sqrt(n * p * (1 - p)))
        xs.append(e["conversion"][q])
        ys.append(math.log(won / (n - won)))
        vs.append(1 / (n * p * (1 - p)))
        mean = 10.0 * math.exp(e["speed"][q])  # advance ~ Exponential(10) × exp(e)
        sz.append((won_days - mean) / (mean / math.sqrt(won)))
        sx.append(e["speed"][q])
        sy.append(math.log(won_days))
        sv.append(1 / won)  # exponential: var(log mean) ≈ 1/n
    for xx, yy, vv, zz in ((xs, ys, vs, zs), (sx, sy, sv, sz)):
        _assert_standard(zz)
        slope, se = _wls_slope(xx, yy, vv)  # the recorded effect, not something else
        assert abs(slope - 1) < K * se, (slope, se)


def _assert_standard(z):
    """``z``: one score per quarter, each ≈ N(0, 1) if the data follow the truth. Their sum
    of squares is χ²(n) (SE sqrt(2n)); none is extreme for n of them (|z| < 5)."""
    z = np.asarray(z)
    assert abs(float(z @ z) - z.size) < K * math.sqrt(2 * z.size), z
    assert np.abs(z).max() < 5, z


def test_slips_move_only_the_close_of_late_wins():
    """Same seed with and without slips: no capacity effect and nobody leaving, so the runs
    differ only in the close of slipped wins (the slips draw from their own stream)."""
    p, as_of = 0.4, dt.date(2026, 6, 30)
    truth = _steady(as_of, 40)
    base = dh.generate(25, reps=40, quarters=4, as_of=as_of, truth=truth)
    slip = dh.generate(
        25, reps=40, quarters=4, as_of=as_of, truth=truth, ingredients=Ingredients(slips=p)
    )
    assert slip.stage_history.equals(base.stage_history)
    same = ["opportunity_id", "owner", "created", "stage", "amount", "segment", "source"]
    assert slip.opportunities.select(same).equals(base.opportunities.select(same))
    both = base.opportunities.select("opportunity_id", "status", "closed").join(
        slip.opportunities.select(
            "opportunity_id", pl.col("status").alias("status2"), pl.col("closed").alias("closed2")
        ),
        on="opportunity_id",
    )
    end = pl.col("closed").map_elements(quarter_end, return_dtype=pl.Date)
    both = both.with_columns(end.alias("q_end"))
    late = both.filter(
        (pl.col("status") == "won") & ((pl.col("q_end") - pl.col("closed")).dt.total_days() < 21)
    )
    moved = both.filter(
        (pl.col("status") != pl.col("status2")) | pl.col("closed").ne_missing(pl.col("closed2"))
    )
    # Only late wins move, each to 1-21 days after its quarter's end (or past as-of: open).
    assert set(moved["opportunity_id"]) <= set(late["opportunity_id"])
    n, k = late.height, moved.height
    assert abs(k - p * n) < K * math.sqrt(n * p * (1 - p))
    still_won = moved.filter(pl.col("status2") == "won")
    by = (still_won["closed2"] - still_won["q_end"]).dt.total_days()
    assert by.is_between(1, 21).all()
    assert abs(by.mean() - 11) < K * math.sqrt((21**2 - 1) / 12 / by.len())
    assert (moved.filter(pl.col("status2") == "open")["q_end"] == as_of).all()

    # So the last 21 days of quarters lose wins and the first 21 days gain them.
    def shares(h):
        won = h.opportunities.filter(pl.col("status") == "won")["closed"]
        qs = won.map_elements(quarter_start, return_dtype=pl.Date)
        into = (won - qs).dt.total_days()
        left = (won.map_elements(quarter_end, return_dtype=pl.Date) - won).dt.total_days()
        return float((left < 21).mean()), float((into < 21).mean())

    (last0, first0), (last1, first1) = shares(base), shares(slip)
    assert last1 < last0 - 0.05 and first1 > first0 + 0.03
    assert "slips 0.4" in " ".join(slip.truth.notes) and slip.truth.calendar is None


def test_leavers_leave_mid_quarter_at_the_given_rate():
    p, as_of = 0.15, dt.date(2026, 6, 30)
    h = dh.generate(
        26,
        reps=40,
        quarters=6,
        as_of=as_of,
        truth=_steady(as_of, 40),
        ingredients=Ingredients(leavers=p),
    )
    reps = h.reps.with_columns(
        pl.col("left").map_elements(quarter_start, return_dtype=pl.Date).alias("q0")
    )
    left = reps.filter(pl.col("left").is_not_null())
    into = (left["left"] - left["q0"]).dt.total_days()
    assert into.min() >= 30 and into.max() <= 59  # days 30-60 of the quarter
    # Per quarter, the reps on the team on its day 30 each leave with probability p (nobody
    # else leaves, and backfills arrive 45 days after a leaver: never in days 30-60).
    at_risk = 0
    for q in _days_by_quarter(h):
        day30 = add_quarters(h.start, q) + dt.timedelta(days=30)
        at_risk += reps.filter(
            (pl.col("hired") <= day30) & (pl.col("left").is_null() | (pl.col("left") >= day30))
        ).height
    assert abs(left.height - p * at_risk) < K * math.sqrt(at_risk * p * (1 - p))
    assert left.height > 20
    refilled = sorted(d + dt.timedelta(days=dh.HIRING_LAG_DAYS) for d in left["left"])
    assert h.reps.filter(pl.col("hired") >= h.start)["hired"].sort().to_list() == [
        d for d in refilled if d <= as_of
    ]
    # The truth keeps the base hazard and says the leavers come on top.
    assert h.truth.team.attrition == _steady(as_of, 40).team.attrition
    assert any("leavers 0.15" in n and "attrition" in n for n in h.truth.notes)


@pytest.fixture(scope="module")
def realistic():
    return dh.generate(
        27, reps=12, quarters=6, ingredients=Ingredients.from_options(realistic=True)
    )


def test_truth_records_every_ingredient(realistic, tmp_path):
    h, n = realistic, 6
    t = m.load(m.save(h.truth, tmp_path / "truth.toml"))
    assert t == h.truth
    assert h.summary()["ingredients"] == REALISTIC
    cal = t.calendar
    for c in PLAYED:
        e = cal.channel(c)
        assert e.periods[0] == quarter_start(h.start) and len(e.periods) == n + 4
        assert e.sd == (0.0,) * n + (0.1,) * 4 and e.shock_sd == 0.1 and e.observed == n
        trend = {"outbound": 0.08, "marketing": 0.08, "conversion": -0.04, "speed": 0.0}[c]
        season = (-0.2, 0.0, -0.2, 0.4) if c in ("outbound", "marketing") else ()
        assert e.trend == trend and e.season == pytest.approx(season)
        plain = [
            trend * j + (season[(p.month - 1) // 3] if season else 0.0)
            for j, p in enumerate(e.periods)
        ]
        assert e.mean[n:] == pytest.approx(plain[n:])  # future: trend + season
        shocks = np.array(e.mean[:n]) - plain[:n]  # history: plus a shock
        assert np.all(shocks != 0) and np.abs(shocks).max() < 5 * 0.1
    notes = " ".join(t.notes)
    for word in (
        "drift -0.04",
        "growth +0.08",
        "seasonality 0.4",
        "shocks N(0, 0.1)",
        "slips 0.4",
        "leavers 0.1",
    ):
        assert word in notes
    assert t.notes[0] == "truth: generated parameters"
    assert t.team.attrition.mean == pytest.approx(0.025)
    assert len(draw_model(t, 1, np.random.default_rng(0)).trial(0).effect("conversion")) == n + 4


def test_truth_as_of_hides_the_shocks_after_the_cutoff(realistic):
    h = realistic
    cutoff = dt.date(2026, 2, 10)  # inside the history's 4th quarter
    seen = truth_as_of(h.truth, cutoff)
    assert seen.as_of == cutoff and seen.stages == h.truth.stages
    for c in PLAYED:
        e, s = h.truth.calendar.channel(c), seen.calendar.channel(c)
        known = [p <= cutoff for p in e.periods]
        assert sum(known) == 4 and s.observed == 4
        for j, k in enumerate(known):
            if k:
                assert (s.mean[j], s.sd[j]) == (e.mean[j], 0.0)
            else:
                trend = e.trend * j + (e.season[(e.periods[j].month - 1) // 3] if e.season else 0.0)
                assert s.mean[j] == pytest.approx(trend) and s.sd[j] == 0.1
        assert s.mean[4] != e.mean[4]  # a realised shock, now hidden
    # At as-of nothing is hidden that the truth knows.
    assert truth_as_of(h.truth, h.as_of) == h.truth


def test_a_truth_with_quarter_effects_generates_them_again():
    """The truth's calendar is the generator's rules: generating from it with the same seed
    gives the same files (slips and leavers, which it cannot hold, are off)."""
    ing = Ingredients(drift=-0.1, growth=0.1, seasonality=0.3, shocks=0.15)
    a = dh.generate(28, reps=6, quarters=3, ingredients=ing)
    b = dh.generate(28, reps=6, quarters=3, truth=a.truth)
    assert a.csv_texts() == b.csv_texts()
    assert b.truth.calendar == a.truth.calendar
    with pytest.raises(InputError, match="quarter effects"):
        dh.generate(28, reps=6, quarters=3, truth=a.truth, ingredients=Ingredients(drift=0.1))


def test_ingredients_validate_and_resolve():
    assert Ingredients.from_options() == Ingredients()
    assert Ingredients.from_options(realistic=True).on() == REALISTIC
    r = Ingredients.from_options(True, slips="0", drift="-0.1")
    assert r.slips == 0 and r.drift == -0.1 and "slips" not in r.on()
    for kwargs, option in (
        (dict(drift=0.6), "--drift"),
        (dict(growth=float("inf")), "--growth"),
        (dict(slips=1.2), "--slips"),
        (dict(leavers=-0.1), "--leavers"),
        (dict(shocks=-0.01), "--shocks"),
        (dict(seasonality=True), "--seasonality"),
    ):
        with pytest.raises(InputError, match=option):
            Ingredients(**kwargs)
    with pytest.raises(InputError, match="--growth"):
        dh.generate(1, reps=2, quarters=12, ingredients=Ingredients(growth=0.4))


# --- CLI -----------------------------------------------------------------------------------------
def test_cli_writes_the_files_and_truth(tmp_path):
    out = tmp_path / "hist"
    res = CliRunner().invoke(
        cli.main,
        [
            "demo-data",
            str(out),
            "--seed",
            "3",
            "--reps",
            "5",
            "--quarters",
            "2",
            "--as-of",
            "2026-06-30",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert set(info["files"]) == {"opportunities", "stage_history", "activities", "reps", "truth"}
    for key in (
        "won",
        "lost",
        "open",
        "opportunities",
        "reps_hired",
        "reps_left",
        "start",
        "as_of",
        "seed",
    ):
        assert key in info
    assert info["won"] + info["lost"] + info["open"] == info["opportunities"]
    assert info["as_of"] == "2026-06-30" and info["start"] == "2026-01-01"
    assert info["ingredients"] == {}
    h = dh.generate(3, reps=5, quarters=2, as_of=dt.date(2026, 6, 30))
    opp = pl.read_csv(out / "opportunities.csv", schema=OPPORTUNITY_COLUMNS)
    assert opp.equals(h.opportunities)
    reps = pl.read_csv(out / "reps.csv", schema=REP_COLUMNS)
    assert reps.equals(h.reps)
    assert pl.read_csv(out / "stage_history.csv", schema=STAGE_HISTORY_COLUMNS).equals(
        h.stage_history
    )
    assert m.load(out / "truth.toml") == h.truth
    # The files read back through the canonical reader unchanged.
    read = read_history(out)
    assert read.stages == h.stages
    for name in ("opportunities", "stage_history", "activities", "reps"):
        assert getattr(read, name).equals(getattr(h, name)), name
    again = ["demo-data", str(out), "--reps", "3", "--quarters", "1", "--quiet"]
    refused = CliRunner().invoke(cli.main, again)  # a folder of CRM files needs --force
    assert refused.exit_code == 2 and "--force" in refused.output
    text = CliRunner().invoke(cli.main, [*again, "--force"])
    assert text.exit_code == 0 and "opportunities" in text.output


def test_cli_ingredients(tmp_path):
    args = ["--seed", "4", "--reps", "4", "--quarters", "2", "--as-of", "2026-06-30"]
    res = CliRunner().invoke(
        cli.main,
        [
            "demo-data",
            str(tmp_path / "a"),
            *args,
            "--realistic",
            "--slips",
            "0",
            "--drift",
            "-0.1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["ingredients"] == {
        k: (-0.1 if k == "drift" else v) for k, v in REALISTIC.items() if k != "slips"
    }
    want = dh.generate(
        4,
        reps=4,
        quarters=2,
        as_of=dt.date(2026, 6, 30),
        ingredients=Ingredients(**{**REALISTIC, "drift": -0.1, "slips": 0.0}),
    )
    assert m.load(tmp_path / "a" / "truth.toml") == want.truth
    assert (tmp_path / "a" / "opportunities.csv").read_text() == want.csv_texts()[
        "opportunities.csv"
    ]
    res = CliRunner().invoke(
        cli.main, ["demo-data", str(tmp_path / "b"), *args, "--growth", "-0.2", "--quiet"]
    )
    assert res.exit_code == 0 and "growth -0.2" in res.output
    assert m.load(tmp_path / "b" / "truth.toml").calendar.outbound.trend == -0.2
    help_text = CliRunner().invoke(cli.main, ["demo-data", "--help"]).output
    for option in (
        "--drift",
        "--growth",
        "--seasonality",
        "--slips",
        "--shocks",
        "--leavers",
        "--realistic",
        "demo-data real --realistic",
    ):
        assert option in help_text


@pytest.mark.parametrize(
    "args, word",
    [
        (["--reps", "0"], "--reps"),
        (["--quarters", "0"], "--quarters"),
        (["--seed", "-1"], "--seed"),
        (["--as-of", "2026-02-30"], "--as-of"),
        (["--as-of", "yesterday"], "--as-of"),
        (["--drift", "abc"], "--drift"),
        (["--drift", "0.9"], "--drift"),
        (["--growth", "nan"], "--growth"),
        (["--growth", "0.4", "--quarters", "12"], "--growth"),
        (["--seasonality", "inf"], "--seasonality"),
        (["--slips", "1.5"], "--slips"),
        (["--slips", "-0.1"], "--slips"),
        (["--shocks", "-0.1"], "--shocks"),
        (["--leavers", "2"], "--leavers"),
        (["--realistic", "--leavers", "x"], "--leavers"),
    ],
)
def test_cli_rejects_bad_options(tmp_path, args, word):
    res = CliRunner().invoke(cli.main, ["demo-data", str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    assert word in res.output and len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_cli_rejects_a_file_as_directory(tmp_path):
    f = tmp_path / "file.csv"
    f.write_text("keep me")
    res = CliRunner().invoke(cli.main, ["demo-data", str(f), "--reps", "2", "--quarters", "1"])
    assert res.exit_code == 2 and "not a directory" in res.output
    assert f.read_text() == "keep me"


def test_docs_examples_run():
    text = (Path(__file__).parents[1] / "docs" / "demo-data.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/demo-data.md", "exec"), {})
