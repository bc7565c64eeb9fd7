"""``salesim demo``: the whole job on generated history, end to end.

Generate demo CRM history with known truth, calibrate it, forecast the next quarter and
compare the four classic levers. Files go into one output folder; the CLI renders the
returned dict (and draws the plots).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Mapping

from salesim.calibrate.fit import calibrate, summary
from salesim.calibrate.ingest import read_history
from salesim.simulator import demo_history
from salesim.simulator.errors import InputError
from salesim.simulator.model import Model, save, write_atomic
from salesim.simulator.runner import Progress, expect
from salesim.simulator.units import as_date

from .baseline import baseline_spec
from .compare import compare_levers
from .forecast import forecast

# The four levers every sales leader asks about, each a modest, plausible change.
CLASSIC_LEVERS = {
    "prospecting +20%": {"prospecting": "+20%"},
    "win rate +5pp": {"win_rate": "+5pp"},
    "deal size +10%": {"deal_size": "+10%"},
    "cycle time -15%": {"cycle_time": "-15%"},
}
# Simulation runs of trials each: the forecast, then the levers' baseline and each lever.
SIMULATION_RUNS = 1 + 1 + len(CLASSIC_LEVERS)


def truth_vs_fit(truth: Model, fitted: Model) -> list[dict]:
    """Stage by stage: the generating conversion beside the fitted one and its 90% interval."""
    rows = []
    for t, f in zip(truth.stages, fitted.stages):
        lo, hi = f.conversion.interval(0.9)
        rows.append(
            {
                "stage": f.name,
                "truth": t.conversion.mean,
                "fitted": f.conversion.mean,
                "lo": lo,
                "hi": hi,
                "covered": lo <= t.conversion.mean <= hi,
            }
        )
    return rows


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 7,
    reps: int = 20,
    quarters: int = 8,
    as_of: dt.date | str = dt.date(2026, 9, 30),
    trials: int = 4000,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
) -> dict:
    """Run the demo into ``out_dir`` and return what each step produced.

    ``progress(n)`` is called with the trials of each finished chunk
    (``trials × SIMULATION_RUNS`` in all).
    """
    if reps < 1 or quarters < 1 or trials < 2:
        raise InputError(
            "--reps and --quarters must be ≥ 1 and --trials ≥ 2",
            column="--reps/--quarters/--trials",
        )
    as_of = as_date(as_of, what="date", column="--as-of")
    expect(progress, trials * SIMULATION_RUNS)
    out = Path(out_dir).resolve()
    hist_dir = out / "history"
    demo = demo_history.generate(seed, reps=reps, quarters=quarters, as_of=as_of)
    files = {}
    for name, text in demo.csv_texts().items():
        files[name] = str(write_atomic(hist_dir / name, text))
    files["truth.toml"] = str(save(demo.truth, hist_dir / "truth.toml"))

    history = read_history(hist_dir)  # read back what a user would calibrate
    model = calibrate(history, as_of)
    files["model.toml"] = str(save(model, out / "model.toml"))

    spec = baseline_spec(model, history=history, as_of=as_of)
    fc = forecast(spec, trials=trials, seed=seed, engine=engine, workers=workers, progress=progress)
    cmp = compare_levers(
        spec, CLASSIC_LEVERS, trials, seed, engine=engine, workers=workers, progress=progress
    )
    return {
        "dir": str(out),
        "seed": seed,
        "history": demo.summary(),
        "calibration": summary(model),
        "truth_vs_fit": truth_vs_fit(demo.truth, model),
        "forecast": fc.to_dict(),
        "compare": cmp.to_dict(),
        "files": files,
    }


# --- salesim demo-data: a generated history, written as a CRM would export it --------------------
def demo_data_as_of(as_of: str | dt.date, *, seed: int, reps: int, quarters: int) -> dt.date:
    """The last day of a demo history, after checking the run's settings (InputError
    naming the option)."""
    try:
        day = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(as_of)
    except ValueError:
        raise InputError(
            f"not a real date: {as_of!r}",
            column="--as-of",
            expected="an ISO date such as 2026-09-30",
        ) from None
    for name, value, low in (("--seed", seed, 0), ("--reps", reps, 1), ("--quarters", quarters, 1)):
        if value < low:
            raise InputError(f"must be at least {low}, got {value}", column=name)
    return day


def write_demo_data(
    directory: str | Path,
    *,
    as_of: str | dt.date,
    seed: int = 7,
    reps: int = 20,
    quarters: int = 8,
    export: str = "canonical",
    ingredients: Mapping[str, object] | None = None,
    realistic: bool = False,
    close_dates: bool = False,
    progress: Progress | None = None,
    write: Callable[[Path, str], Path] = write_atomic,
) -> dict:
    """Generate a demo history from known parameters and write it into ``directory`` as
    ``export`` lays it out, with truth.toml (the model that generated it). Returns the
    ``salesim demo-data --json`` document. ``ingredients``: the changing-history options
    (drift, growth, seasonality, slips, shocks, leavers; docs/demo-data.md);
    ``close_dates``: reps' expected close dates and their pushes too (the canonical layout:
    close_date_history.csv); ``progress(n)``: days generated."""
    from salesim.simulator import demo_export
    from salesim.simulator.demo_ingredients import Ingredients

    day = demo_data_as_of(as_of, seed=seed, reps=reps, quarters=quarters)
    expect(progress, demo_history.history_days(day, quarters))
    mix = Ingredients.from_options(realistic, **dict(ingredients or {}))
    directory = Path(directory)
    demo_export.check_export(export)
    if close_dates and export != "canonical":
        raise InputError(
            f"close dates are written in the canonical layout only, not {export!r}",
            column="--close-dates",
            expected="--export canonical",
        )
    hist = demo_history.generate(
        seed,
        reps=reps,
        quarters=quarters,
        as_of=day,
        ingredients=mix,
        close_dates=close_dates,
        progress=progress,
    )
    files = {}
    for name, text in demo_export.export_texts(hist, export, rng=seed).items():
        files[name.removesuffix(".csv")] = str(write(directory / name, text))
    files["truth"] = str(save(hist.truth, directory / "truth.toml"))
    return {"dir": str(directory), "seed": seed, "export": export, **hist.summary(), "files": files}
