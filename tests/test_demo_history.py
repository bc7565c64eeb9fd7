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

import cli
import simulator.demo_history as dh
from calibrate.ingest import read_history
from calibrate.history import (ACTIVITY_COLUMNS, OPPORTUNITY_COLUMNS, REP_COLUMNS,
                               STAGE_HISTORY_COLUMNS)
from simulator import model as m
from simulator.distributions import Fixed
from simulator.errors import InputError
from simulator.spec import DAYS_PER_MONTH
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
    return dataclasses.replace(t, team=m.TeamModel(
        ramp_months=3.0, ramp_months_sd=0.0, attrition=m.GammaPosterior(0.1e9, 1e9),
        quota=1.0, calibrated=True))


PINNED = {   # case -> (generate's arguments, sha256 prefix of the CSV texts and truth.toml)
    "seed7": (lambda: dict(rng=7), "d45047cb269337f5"),
    "mid_quarter": (lambda: dict(rng=5, reps=6, quarters=3, as_of=dt.date(2026, 5, 17)),
                    "4f20f5b8d6f4115c"),
    "simple": (lambda: dict(rng=2, reps=10, quarters=2, as_of=dt.date(2026, 3, 31),
                            truth=simple_model(per_rep_day=10.0, opportunity_yield=0.05,
                                               lag=Fixed(0.0), as_of=dt.date(2026, 3, 31))),
               "650ee12860ff9895"),
    "solo": (lambda: dict(rng=9, reps=1, quarters=8), "8d4be8e2fe106097"),
    "churny": (lambda: dict(rng=4, reps=12, quarters=3, truth=_churny_truth()),
               "173e3af3000c94b1"),
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
    dated = [(small.opportunities, "created"), (small.opportunities, "closed"),
             (small.stage_history, "entered"), (small.activities, "date"), (small.reps, "left")]
    for frame, col in dated:
        assert frame[col].max() <= as_of, col
        assert frame[col].min() >= start, col
    assert small.reps["hired"].max() <= as_of
    assert small.opportunities.filter(pl.col("closed") < pl.col("created")).height == 0


def test_open_deals_sit_in_their_last_recorded_stage(small):
    order = {s: i for i, s in enumerate(small.stages)}
    last = (small.stage_history.with_columns(pl.col("stage").replace_strict(order).alias("k"))
            .group_by("opportunity_id").agg(pl.col("stage").sort_by("k").last().alias("last")))
    o = small.opportunities.join(last, on="opportunity_id", how="left")
    assert o["last"].null_count() == 0
    assert (o["stage"] == o["last"]).all()
    open_ = o.filter(pl.col("status") == "open")
    assert open_.height > 0
    assert open_["stage"].n_unique() > 1   # censored in several stages


def test_stage_history_is_consistent_with_opportunities(small):
    order = {s: i for i, s in enumerate(small.stages)}
    sh = small.stage_history.with_columns(pl.col("stage").replace_strict(order).alias("k"))
    per = sh.group_by("opportunity_id").agg(
        pl.col("k").sort().alias("ks"), pl.col("entered").sort_by("k").alias("dates"),
        pl.col("entered").filter(pl.col("k") == 0).first().alias("first"))
    o = small.opportunities.join(per, on="opportunity_id", how="left")
    assert o.height == small.opportunities.height
    # Everyone entered the first stage on its created date; stages have no gaps or repeats.
    assert (o["first"] == o["created"]).all()
    assert all(ks.to_list() == list(range(len(ks))) for ks in o["ks"])
    assert all(d.is_sorted() for d in o["dates"])
    won = o.filter(pl.col("status") == "won")
    assert won.height > 0
    assert (won["ks"].list.len() == len(small.stages)).all()
    entered_after_close = sh.join(o.select("opportunity_id", "closed"), on="opportunity_id") \
        .filter(pl.col("entered") > pl.col("closed"))
    assert entered_after_close.height == 0


# --- the data follow the truth -------------------------------------------------------------
def test_lost_deals_die_faster_than_won_deals_close(small):
    cycle = small.opportunities.with_columns(
        (_days("closed") - _days("created")).alias("days"))
    won = cycle.filter(pl.col("status") == "won")["days"].median()
    lost = cycle.filter(pl.col("status") == "lost")["days"].median()
    assert lost < 0.5 * won


def test_deal_sizes_differ_by_segment_and_match_the_truth(medium):
    sizes = {s.name: s.size.dist for s in medium.truth.deal_size}
    got = medium.opportunities.group_by("segment").agg(
        pl.col("amount").log().median().alias("log_median"), pl.len())
    medians = dict(zip(got["segment"], got["log_median"]))
    assert medians["SMB"] < medians["Mid-Market"] < medians["Enterprise"]
    for seg, log_median, n in got.iter_rows():
        d = sizes[seg]   # lognormal: the sample median of log size has SE σ·sqrt(π/2n)
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
    return (per_day.join(h.reps.select("owner", "hired"), on="owner")
            .filter((_days("date") - _days("hired")) >= min_tenure_days))


def test_activity_varies_more_than_poisson_within_and_between_reps(medium):
    daily = _ramped_daily(medium)
    stats = daily.group_by("owner").agg(pl.col("count").mean().alias("mean"),
                                        pl.col("count").var().alias("var"), pl.len())
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
    assert log_mean.std(ddof=1) > 0.6 * sigma   # far above Poisson noise (≈ 0.05)


def test_new_hires_ramp_up(medium):
    per_day = medium.activities.group_by("owner", "date").agg(pl.col("count").sum())
    hires = medium.reps.filter(pl.col("hired") >= medium.start)
    assert hires.height >= 5
    t = (per_day.join(hires.select("owner", "hired"), on="owner")
         .with_columns((_days("date") - _days("hired")).alias("tenure")))
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
        pl.col("left") + dt.timedelta(days=dh.HIRING_LAG_DAYS) <= medium.as_of).height
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
        ((pl.coalesce(_days("left"), pl.lit(medium.as_of).cast(pl.Int32))
          - pl.max_horizontal(_days("hired"), pl.lit(medium.start).cast(pl.Int32)))
         / DAYS_PER_MONTH).alias("m"))["m"].sum()
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
    drawn = loaded.draw(np.random.default_rng(0))
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
        pl.col("stage").replace_strict(order).alias("last"))
    end = (h.as_of - h.start).days + 1
    return sh.join(o.select("opportunity_id", "status", "last"), on="opportunity_id") \
        .with_columns((end - (_days("entered") - pl.lit(h.start).cast(pl.Int32)))
                      .alias("exposure"),
                      ((pl.col("k") < pl.col("last")) | (pl.col("status") == "won"))
                      .alias("advanced"),
                      ((pl.col("k") == pl.col("last")) & (pl.col("status") == "lost"))
                      .alias("lost"))


def test_stage_outcomes_with_censoring_match_the_truth(medium):
    """Per stage, advances and losses seen by as-of match what the truth predicts given
    each deal's time at risk (competing outcomes, right-censored at as-of)."""
    data = _advance_lost_by_as_of(medium)
    frac = (np.arange(16) + 0.5) / 16   # entry time is uniform-ish inside its day
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
    data = _advance_lost_by_as_of(medium).sort("opportunity_id", "k").with_columns(
        pl.col("entered").shift(-1).over("opportunity_id").alias("next"))
    closed = medium.opportunities.select("opportunity_id", "closed")
    data = data.join(closed, on="opportunity_id").filter(pl.col("exposure") > 150)
    last = len(medium.stages) - 1
    for k, stage in enumerate(medium.truth.stages):
        d = data.filter(pl.col("k") == k)
        adv_end = "closed" if k == last else "next"
        samples = ((d.filter(pl.col("advanced")), adv_end, stage.advance.dist),
                   (d.filter(pl.col("lost")), "closed", stage.lost.dist))
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
    for status, dist in (("won", medium.truth.cycle.advance.dist),
                         ("lost", medium.truth.cycle.lost.dist)):
        days = cyc.filter(pl.col("status") == status)["days"]
        se = math.sqrt(float(dist.frozen().var()) / days.len())
        assert abs(days.mean() - dist.mean) < K * se + 0.5, status  # + day rounding


def test_marketing_leads_arrive_at_the_truth_rate(medium):
    n = medium.opportunities.filter(pl.col("source") == "marketing").height
    days = (medium.as_of - medium.start).days + 1
    expected = medium.truth.marketing.weekly.mean * days / 7   # Poisson: SE = sqrt(mean)
    assert abs(n - expected) < K * math.sqrt(expected)
    assert medium.truth.marketing.share == pytest.approx(n / medium.opportunities.height)


def test_activities_yield_opportunities_at_the_truth_rate():
    """Zero-variance team (no ramp, attrition or capacity; Poisson activity; zero lag):
    outbound deals are Binomial(activities, yield)."""
    truth = simple_model(per_rep_day=10.0, opportunity_yield=0.05, lag=Fixed(0.0),
                         as_of=dt.date(2026, 3, 31))
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
    truth = m.Model(**{**truth.__dict__, "team": m.TeamModel(
        ramp_months=3.0, ramp_months_sd=0.0, attrition=m.GammaPosterior(0.1e9, 1e9),
        quota=1.0, calibrated=True)})
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
            mine = np.flatnonzero((before == r) & (created[:before.size] <= t)
                                  & (end[:before.size] > t))
            assert np.array_equal(np.sort(deals), mine)
        q = after[changed[0]]
        assert (after[changed] == q).all()
        active = (sim.team.hire <= t) & (sim.team.leave > t)
        active[r] = False
        # Deals drawn after this moment are created after it, so ``before`` covers all.
        is_open = ((created <= t) & (end > t))[:before.size]
        counts = np.bincount(before[is_open], minlength=sim.team.hire.size)
        fewest = np.flatnonzero(active & (counts == counts[active].min()))
        assert q == fewest[0]   # ties: lowest rep index
    assert moved > 0 and late_leads > 0
    for d, open_now in seen_days[::7]:
        # Owner at the start of day d: as just before the first hand-over after d.
        later = np.flatnonzero(times > d)
        owner = moves[later[0]][3] if later.size else final
        owner = np.concatenate([owner, final[owner.size:]])
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


# --- CLI -----------------------------------------------------------------------------------------
def test_cli_writes_the_files_and_truth(tmp_path):
    out = tmp_path / "hist"
    res = CliRunner().invoke(cli.main, ["demo-data", str(out), "--seed", "3", "--reps", "5",
                                        "--quarters", "2", "--as-of", "2026-06-30", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert set(info["files"]) == {"opportunities", "stage_history", "activities", "reps",
                                  "truth"}
    for key in ("won", "lost", "open", "opportunities", "reps_hired", "reps_left", "start",
                "as_of", "seed"):
        assert key in info
    assert info["won"] + info["lost"] + info["open"] == info["opportunities"]
    assert info["as_of"] == "2026-06-30" and info["start"] == "2026-01-01"
    h = dh.generate(3, reps=5, quarters=2, as_of=dt.date(2026, 6, 30))
    opp = pl.read_csv(out / "opportunities.csv", schema=OPPORTUNITY_COLUMNS)
    assert opp.equals(h.opportunities)
    reps = pl.read_csv(out / "reps.csv", schema=REP_COLUMNS)
    assert reps.equals(h.reps)
    assert pl.read_csv(out / "stage_history.csv", schema=STAGE_HISTORY_COLUMNS) \
        .equals(h.stage_history)
    assert m.load(out / "truth.toml") == h.truth
    # The files read back through the canonical reader unchanged.
    read = read_history(out)
    assert read.stages == h.stages
    for name in ("opportunities", "stage_history", "activities", "reps"):
        assert getattr(read, name).equals(getattr(h, name)), name
    text = CliRunner().invoke(cli.main, ["demo-data", str(out), "--reps", "3", "--quarters",
                                         "1", "--quiet"])
    assert text.exit_code == 0 and "opportunities" in text.output


@pytest.mark.parametrize("args, word", [
    (["--reps", "0"], "--reps"),
    (["--quarters", "0"], "--quarters"),
    (["--seed", "-1"], "--seed"),
    (["--as-of", "2026-02-30"], "--as-of"),
    (["--as-of", "yesterday"], "--as-of"),
])
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
