"""salesim: Monte Carlo forecasting and planning for sales organisations.

The installed package maps the repository's folders: ``salesim.calibrate`` (calibrate/),
``salesim.simulator`` (simulator/), ``salesim.scenarios`` (scenarios/) and the modules beside
them (``salesim.cli``, ``salesim.plots``, ``salesim.outputs``, ``salesim.tables``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("salesim")
except PackageNotFoundError:  # a checkout that was not installed
    __version__ = "0+unknown"

# The public API: ``import salesim as ss; ss.forecast(ss.baseline(ss.load_model(path), …))``.
# Names load on first use (PEP 562), so ``import salesim`` and ``salesim --help`` stay fast:
# nothing here imports matplotlib, numba or scipy until a function that needs it is called.
_EXPORTS = {
    # history and calibration
    "read_history": "salesim.scenarios.plan",
    "load_model": ("salesim.simulator.model", "load"),
    "save_model": ("salesim.simulator.model", "save"),
    # plans and runs (the CLI calls these same functions)
    "baseline": "salesim.api",
    "load_plan": "salesim.scenarios.plan",
    "Plan": "salesim.scenarios.plan",
    "forecast": "salesim.api",
    "compare": "salesim.api",
    "capacity": "salesim.api",
    "backtest": "salesim.api",
    "dashboard": "salesim.api",
    "deals": "salesim.api",
    "movement": "salesim.api",
    "parse_levers": ("salesim.scenarios.scenario", "parse_lever_args"),
    "Strategy": "salesim.scenarios.scenario",
    # results
    "Forecast": "salesim.results",
    "Comparison": "salesim.results",
    "CapacityAnswer": "salesim.results",
    "BacktestResult": "salesim.scenarios.backtest",
    "Dashboard": "salesim.scenarios.dashboard",
    "DealsView": "salesim.results",
    "Movement": "salesim.scenarios.movement",
    "Currency": "salesim.plots",
    "InputError": "salesim.simulator.errors",
}
__all__ = [
    "BacktestResult",
    "CapacityAnswer",
    "Comparison",
    "Currency",
    "Dashboard",
    "DealsView",
    "Forecast",
    "InputError",
    "Movement",
    "Plan",
    "Strategy",
    "backtest",
    "baseline",
    "calibrate_model",
    "capacity",
    "compare",
    "dashboard",
    "deals",
    "forecast",
    "load_model",
    "load_plan",
    "movement",
    "parse_levers",
    "read_history",
    "save_model",
]


def calibrate_model(history, as_of, **options):
    """Fit the model from ``history`` as it stood at the end of ``as_of``
    (``salesim.calibrate.fit.calibrate``, whose docstring lists ``options``). Not named
    ``calibrate``: that is the calibration package, ``salesim.calibrate``."""
    from salesim.calibrate.fit import calibrate as fit

    return fit(history, as_of, **options)


def __getattr__(name: str):
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(f"module 'salesim' has no attribute {name!r}")
    where = _EXPORTS[name]
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
