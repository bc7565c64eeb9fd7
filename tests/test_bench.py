"""``salesim bench`` and its library: the JSON contract, draw counting, bad options.

Speeds are never asserted (they belong to benchmarks/README.md); only that the suite
measures what it says and reports it under the contracted keys.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from salesim import cli
from salesim.scenarios import bench
from salesim.simulator import engine_vector


def test_draw_log_counts_what_a_chunk_draws_and_replays_it():
    spec = bench.bench_spec(3)
    log = bench.DrawLog()
    logged = engine_vector.simulate_chunk(spec, 40, np.random.SeedSequence(1), draw_log=log)
    plain = engine_vector.simulate_chunk(spec, 40, np.random.SeedSequence(1))
    assert logged.totals.equals(plain.totals)  # recording changes nothing
    by = log.by_method()
    # Every working rep-day reads one uniform (its opportunities are their quantile at it);
    # every outbound deal draws its lag (a gamma in the demo model) and reads two or more
    # uniforms (segment and size, its first stage, its lag).
    rep_days = len(spec.working_days()) * len(spec.reps) * 40
    outbound = plain.totals["created"].sum()
    assert by["random"] >= 0.9 * rep_days + 2 * outbound
    assert by["standard_gamma"] >= 0.5 * outbound
    assert by["poisson"] == 40  # the total of the activities
    assert log.draws == sum(by.values())
    assert log.replay(np.random.default_rng(0)) > 0


class _Calls:
    """A generator that notes how each method was called (``out=`` length or ``size``)."""

    def __init__(self, rng):
        self.rng, self.calls = rng, []

    def __getattr__(self, method):
        def call(*args, **kwargs):
            out = kwargs.get("out")
            self.calls.append(
                (
                    method,
                    "out" if out is not None else "size",
                    out.size if out is not None else kwargs.get("size"),
                )
            )
            return getattr(self.rng, method)(*args, **kwargs)

        return call


def test_replay_draws_exactly_what_was_counted_a_block_at_a_time():
    # Kinds with ``out=`` fill one buffer in blocks, others draw in bulk: as many numbers
    # either way, so the generator ends where one call per kind would leave it.
    block = bench.REPLAY_BLOCK
    counted = {
        ("random", ()): 3 * block + 17,
        ("standard_gamma", (2.0,)): 2 * block,
        ("standard_normal", ()): block - 1,
        ("standard_exponential", ()): 1,
        ("poisson", (4.0,)): 5,
    }
    log = bench.DrawLog()
    for (method, params), n in counted.items():
        log.add(method, params, n)
    replayed, direct = _Calls(np.random.default_rng(3)), np.random.default_rng(3)
    log.replay(replayed)
    for (method, params), n in counted.items():
        getattr(direct, method)(*params, size=n)
    assert replayed.rng.bit_generator.state == direct.bit_generator.state
    assert log.draws == sum(counted.values())
    for method, how, n in replayed.calls:
        assert how == ("out" if method in bench._FILLS_OUT else "size")
        assert how == "size" or 0 < n <= block
    filled = {m: sum(n for mm, _, n in replayed.calls if mm == m) for m, _ in counted}
    assert filled == {m: n for (m, _), n in counted.items()}


def test_bench_json_contract():
    res = CliRunner().invoke(
        cli.main,
        [
            "bench",
            "--reps",
            "3",
            "--trials",
            "200",
            "--simpy-trials",
            "2",
            "--no-sweep",
            "--json",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {"machine", "scenario", "results", "rng_floor_s", "vector_vs_simpy"} <= out.keys()
    assert {"cpu_count", "python", "numpy"} <= out["machine"].keys()
    keys = {"engine", "workers", "reps", "trials", "seconds", "trials_per_s", "peak_mb"}
    assert all(keys <= r.keys() for r in out["results"])
    engines = {(r["engine"], r["workers"], r["purpose"]) for r in out["results"]}
    assert {
        ("simpy", 1, "engines"),
        ("vector", 1, "engines"),
        ("vector", 1, "scaling"),
        ("vector", 2, "scaling"),
    } <= engines
    assert out["vector_vs_simpy"] > 1 and out["rng_floor_s"] > 0
    floor = out["rng_floor"]
    assert floor["ratio"] > 1  # the engine does more than draw numbers
    # The fastest of each is kept, so the ratio lies within what single turns gave.
    lo, hi = floor["pair_ratio_range"]
    assert floor["repeats"] >= 3
    assert lo * (1 - 1e-12) <= floor["ratio"] <= hi * (1 + 1e-12)
    assert floor["vector_s"] / floor["rng_floor_s"] == pytest.approx(floor["ratio"])
    # Both engines ran the same scenario: their mean revenues are of one size.
    mean = {r["engine"]: r["mean_revenue"] for r in out["results"] if r["purpose"] == "engines"}
    assert 0.2 < mean["simpy"] / mean["vector"] < 5


def test_bad_options_exit_2():
    for args in (["--engines", "warp"], ["--trials", "0"], ["--reps", "0"]):
        res = CliRunner().invoke(cli.main, ["bench", "--quiet", *args])
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("Error:")
