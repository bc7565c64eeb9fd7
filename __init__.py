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
