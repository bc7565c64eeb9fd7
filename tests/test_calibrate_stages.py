"""From stage history to per-stage observations and stage models (calibrate/stages.py)."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.calibrate.durations import ADVANCE, CENSORED, LOST, Durations
from salesim.calibrate.history import OPPORTUNITY_COLUMNS, STAGE_HISTORY_COLUMNS, History
from salesim.calibrate.stages import (
    Pooled,
    cycle_observations,
    fit_cycle,
    fit_stage,
    fit_stages,
    resolve_stages,
    stage_observations,
)
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.errors import InputError
from salesim.simulator.model import Fitted

D0 = dt.date(2025, 1, 6)
AS_OF = D0 + dt.timedelta(days=30)
STAGES = ("Q", "D", "P")


def day(n):
    return D0 + dt.timedelta(days=n)


def history():
    """Six deals whose paths exercise every rule of stage_observations."""
    opps = [  # id, created, status, closed, current/last stage
        ("won", 0, "won", 20, "P"),  # Q 0 → D 3 → P 10 → won 20
        ("skip", 0, "lost", 9, "P"),  # Q 0 → P 5 (D skipped) → lost 9
        ("open", 0, "open", None, "D"),  # Q 0 → D 2, still open
        ("early", 0, "won", 4, "Q"),  # won from Q on day 4
        ("bare", 24, "open", None, "Q"),  # no stage-history rows
        ("back", 0, "lost", 15, "P"),  # Q 0 → D 5 → Q 8 → P 12 → lost 15
        ("later", 1, "won", 40, "D"),  # Q 1 → D 26; won after as-of: open at as-of
    ]
    sh = [
        ("won", "Q", 0),
        ("won", "D", 3),
        ("won", "P", 10),
        ("skip", "Q", 0),
        ("skip", "P", 5),
        ("open", "Q", 0),
        ("open", "D", 2),
        ("early", "Q", 0),
        ("back", "Q", 0),
        ("back", "D", 5),
        ("back", "Q", 8),
        ("back", "P", 12),
        ("later", "Q", 1),
        ("later", "D", 26),
        ("later", "P", 35),
    ]
    o = pl.DataFrame(
        {
            "opportunity_id": [x[0] for x in opps],
            "owner": ["a"] * len(opps),
            "created": [day(x[1]) for x in opps],
            "stage": [x[4] for x in opps],
            "status": [x[2] for x in opps],
            "closed": [day(x[3]) if x[3] is not None else None for x in opps],
            "amount": [1000.0] * len(opps),
            "segment": ["all"] * len(opps),
            "source": [None] * len(opps),
        },
        schema=OPPORTUNITY_COLUMNS,
    )
    s = pl.DataFrame(
        {
            "opportunity_id": [x[0] for x in sh],
            "stage": [x[1] for x in sh],
            "entered": [day(x[2]) for x in sh],
        },
        schema=STAGE_HISTORY_COLUMNS,
    )
    return History(opportunities=o, stages=STAGES, stage_history=s, source="test")


def as_set(d: Durations):
    out = []
    for t, k, c in zip(d.t, d.kind, d.count):
        out += [(float(t), int(k))] * int(c)
    return sorted(out)


def test_stage_observations_follow_each_path():
    names, mapping = resolve_stages(STAGES)
    obs, notes = stage_observations(history(), names, mapping, AS_OF)
    A, L, C = ADVANCE, LOST, CENSORED
    q = [(3, A), (5, A), (2, A), (4, A), (6, C), (5, A), (25, A)]  # bare: open 30-24
    d = [(7, A), (0, A), (28, C), (0, A), (7, A), (4, C)]  # skip: D passed same day
    p = [(10, A), (4, L), (0, A), (3, L)]  # early: won before P
    assert as_set(obs[0]) == sorted((float(t), k) for t, k in q)
    assert as_set(obs[1]) == sorted((float(t), k) for t, k in d)
    assert as_set(obs[2]) == sorted((float(t), k) for t, k in p)
    assert notes == []


def test_cycle_observations_use_created_and_closed():
    obs = cycle_observations(history().opportunities, AS_OF)
    expected = [
        (20, ADVANCE),
        (9, LOST),
        (30, CENSORED),
        (4, ADVANCE),
        (6, CENSORED),
        (15, LOST),
        (29, CENSORED),
    ]
    assert as_set(obs) == sorted((float(t), k) for t, k in expected)


def test_resolve_stages_merges_unlisted_stages_into_the_one_before():
    names, mapping = resolve_stages(("Q", "D", "P", "N"), ["Q", "P"])
    assert names == ("Q", "P")
    assert mapping == {"Q": 0, "D": 0, "P": 1, "N": 1}
    with pytest.raises(InputError, match="unknown stage 'X'"):
        resolve_stages(STAGES, ["Q", "X"])
    with pytest.raises(InputError, match="listed twice"):
        resolve_stages(STAGES, ["Q", "Q"])


def test_merged_stages_add_their_time_to_the_stage_before():
    names, mapping = resolve_stages(STAGES, ["Q", "P"])
    obs, _ = stage_observations(history(), names, mapping, AS_OF)
    # "won": Q 0 (D merged into Q) → P 10; "open" sits in Q (via D) since day 0.
    assert (10.0, ADVANCE) in as_set(obs[0])
    assert (30.0, CENSORED) in as_set(obs[0])


class FixedPooled(Pooled):
    """All stages pooled: 200 advances and 200 losses, whose fit is given."""

    def __init__(self):
        super().__init__(Durations.from_arrays([10.0, 4.0], [ADVANCE, LOST], [200.0, 200.0]))

    def fits(self):
        return (
            Fitted(LogNormal(10.0, 0.5), n_events=200.0),
            Fitted(Exponential(4.0), n_events=200.0),
        )


def test_a_stage_without_observations_keeps_the_prior_and_says_so():
    model, notes = fit_stage("N", Durations.empty(), FixedPooled())
    assert (model.conversion.alpha, model.conversion.beta) == (1.0, 1.0)
    assert model.advance.dist == LogNormal(10.0, 0.5)
    assert "no observations" in notes[0]


def test_few_events_update_a_prior_centred_on_the_pooled_duration():
    rng = np.random.default_rng(4)
    t = np.floor(0.5 + rng.exponential(6.0, 200))
    obs = Durations.concat(
        [
            Durations.from_arrays(t, np.full(200, LOST)),
            Durations.from_arrays([2.0, 9.0], [ADVANCE, ADVANCE]),
        ]
    )
    model, notes = fit_stage("S", obs, FixedPooled())
    # Two advances at 2 and 9 days pull the pooled median of 10 days down, not away.
    assert model.advance.dist.family == "lognormal"
    assert 2.0 < model.advance.dist.median < 10.0
    assert len(model.advance.log_cov) == 2  # the Laplace covariance
    assert model.lost.dist != Exponential(4.0)  # 200 losses: fitted
    assert any("only 2 advances (< 10)" in n and "centred on all stages pooled" in n for n in notes)
    assert not any("loss" in n for n in notes)
    assert model.n_advanced == 2 and model.n_lost == 200


def test_fit_stages_on_generated_paths():
    """Two stages with known p and durations: each stage fit recovers its conversion."""
    rng = np.random.default_rng(9)
    n = 4000
    obs = []
    p = (0.6, 0.5)
    for k, (pk, adv, lost) in enumerate(
        ((p[0], LogNormal(8, 0.5), Exponential(3.0)), (p[1], LogNormal(15, 0.4), Exponential(6.0)))
    ):
        up = rng.random(n) < pk
        t = np.floor(0.5 + np.where(up, adv.sample(rng, n), lost.sample(rng, n)))
        obs.append(Durations.from_arrays(t, np.where(up, ADVANCE, LOST)))
    models, notes = fit_stages(obs, ("A", "B"))
    for m, pk in zip(models, p):
        lo, hi = m.conversion.interval(0.999)
        assert lo < pk < hi


def test_a_cycle_without_wins_is_a_clear_error():
    obs = Durations.from_arrays([3.0, 4.0, 10.0], [LOST, LOST, CENSORED])
    with pytest.raises(InputError, match="no won deals"):
        fit_cycle(obs)


def test_a_cycle_with_few_wins_uses_the_default_prior():
    rng = np.random.default_rng(2)
    t = np.floor(0.5 + rng.exponential(5.0, 300))
    obs = Durations.concat(
        [
            Durations.from_arrays(t, np.full(300, LOST)),
            Durations.from_arrays([20.0, 31.0, 44.0], [ADVANCE] * 3),
        ]
    )
    model, notes = fit_cycle(obs)
    assert model.advance.dist.family == "lognormal"
    assert 20.0 < model.advance.dist.median < 44.0
    assert any("only 3 wins (< 10)" in n and "default prior" in n for n in notes)
    assert 0 < model.conversion.mean < 0.05


@st.composite
def random_history(draw):
    """Random deals with skipped stages, regressions, early wins and late closes."""
    n = draw(st.integers(1, 25))
    opps, sh = [], []
    for i in range(n):
        created = draw(st.integers(0, 60))
        reached = draw(st.integers(0, len(STAGES) - 1))
        status = draw(st.sampled_from(["won", "lost", "open"]))
        entered, d = [], created
        for j in range(reached + 1):
            d += draw(st.integers(0, 10)) if j else 0
            entered.append(d)
        for j, e in enumerate(entered):
            if j == 0 or not draw(st.booleans()) or j == reached:  # some stages skipped
                sh.append((f"o{i}", STAGES[j], e))
        if reached and draw(st.booleans()):  # back to the first stage
            sh.append((f"o{i}", STAGES[0], entered[-1] + 1))
        closed = entered[-1] + draw(st.integers(0, 40)) if status != "open" else None
        opps.append((f"o{i}", created, status, closed, STAGES[reached]))
    o = pl.DataFrame(
        {
            "opportunity_id": [x[0] for x in opps],
            "owner": ["a"] * n,
            "created": [day(x[1]) for x in opps],
            "stage": [x[4] for x in opps],
            "status": [x[2] for x in opps],
            "closed": [day(x[3]) if x[3] is not None else None for x in opps],
            "amount": [1.0] * n,
            "segment": ["all"] * n,
            "source": [None] * n,
        },
        schema=OPPORTUNITY_COLUMNS,
    )
    s = pl.DataFrame(
        {
            "opportunity_id": [x[0] for x in sh],
            "stage": [x[1] for x in sh],
            "entered": [day(x[2]) for x in sh],
        },
        schema=STAGE_HISTORY_COLUMNS,
    )
    return History(opportunities=o, stages=STAGES, stage_history=s, source="hypothesis")


@settings(max_examples=60, deadline=None)
@given(h=random_history(), as_of=st.integers(20, 120))
def test_every_deal_is_accounted_for_once(h, as_of):
    """Conservation: each deal is open in one stage or closed once; stage s+1 is entered by
    exactly the deals that advanced from stage s; advancing from the last stage is a win."""
    cut = day(as_of)
    names, mapping = resolve_stages(STAGES)
    obs, _ = stage_observations(h, names, mapping, cut)
    o = h.opportunities.filter(pl.col("created") <= cut)
    closed = pl.col("closed").is_not_null() & (pl.col("closed") <= cut)
    won = o.filter(closed & (pl.col("status") == "won")).height
    lost = o.filter(closed & (pl.col("status") == "lost")).height
    assert obs[0].n_total == o.height
    for a, b in zip(obs, obs[1:]):
        assert b.n_total == a.n(ADVANCE)
    assert obs[-1].n(ADVANCE) == won
    assert sum(x.n(LOST) for x in obs) == lost
    assert sum(x.n(CENSORED) for x in obs) == o.height - won - lost
    assert all(np.all(x.t >= 0) for x in obs)
    cycle = cycle_observations(h.opportunities, cut)
    assert (cycle.n(ADVANCE), cycle.n(LOST)) == (won, lost)
