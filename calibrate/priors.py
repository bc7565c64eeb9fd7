"""Thin data: the event threshold, and the stated priors that stand in where data are few.

A duration or a deal size fitted from fewer than ``THIN`` events (wins, losses, a stage's
advances or losses, a segment's won amounts) is not a bare maximum-likelihood fit: with few
events and many open deals a censored MLE runs off to enormous scales. It is a lognormal
fitted by maximum a posteriori — independent normal priors on its log-median and log-sigma
added to the log-likelihood — and the inverse Hessian of that sum (the Laplace approximation)
is its ``log_cov``, so Monte Carlo trials draw as widely as the prior where the data say
little. With ``THIN`` events or more no prior is used. docs/calibration.md "Thin data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from salesim.simulator.distributions import Distribution

THIN = 10  # fewer events of an outcome: a stated prior and a note
SIGMA_SD = 0.5  # sd of log(sigma) in every prior: sigma within ×/÷ 2.7 at 95%
POOLED_SD = 1.0  # sd of log(median) around a pooled fit: within ×/÷ 7 at 95%
_Z90 = 1.2815515655446004  # standard normal 90% quantile


@dataclass(frozen=True)
class LogNormalPrior:
    """Independent normal priors on ``log(median)`` (sd ``median_sd``; ``inf``: flat) and
    ``log(sigma)`` (sd ``sigma_sd``) of a lognormal. ``centre`` says where the centre comes
    from, for notes: ``"default"`` or a phrase such as ``"centred on all stages pooled"``."""

    median: float
    sigma: float
    median_sd: float
    sigma_sd: float
    centre: str

    @property
    def theta(self) -> np.ndarray:
        """The centre as lognormal log-parameters ``(log median, log sigma)``."""
        return np.array([math.log(self.median), math.log(self.sigma)])

    def log_density(self, theta) -> float:
        """Log prior density at log-parameters ``theta`` (constants dropped)."""
        out = -0.5 * ((theta[1] - math.log(self.sigma)) / self.sigma_sd) ** 2
        if math.isfinite(self.median_sd):
            out -= 0.5 * ((theta[0] - math.log(self.median)) / self.median_sd) ** 2
        return float(out)

    def describe(self, unit: str = "") -> str:
        """For notes: ``the default prior LogNormal(median 30 d, sigma 1) (sd 1.5 on log
        median, 0.5 on log sigma)``, or ``the prior LogNormal(…) centred on …  (…)``."""
        if not math.isfinite(self.median_sd):
            return (
                f"the {self.centre} prior on sigma, LogNormal(sigma {self.sigma:.2g}) "
                f"(sd {self.sigma_sd:g} on log sigma; flat on log median)"
            )
        dist = f"LogNormal(median {number(self.median)}{unit}, sigma {self.sigma:.2g})"
        spread = f"(sd {self.median_sd:g} on log median, {self.sigma_sd:g} on log sigma)"
        if self.centre == "default":
            return f"the default prior {dist} {spread}"
        return f"the prior {dist} {self.centre} {spread}"

    @staticmethod
    def around(
        dist: Distribution, centre: str, *, median_sd: float = POOLED_SD, floor: float = 0.0
    ) -> "LogNormalPrior":
        """A prior centred on a fitted distribution of any family: its median (at least
        ``floor``) and the lognormal sigma with the same 10%–90% spread."""
        lo, med, hi = (max(float(dist.quantile(q)), floor, 1e-9) for q in (0.1, 0.5, 0.9))
        sigma = math.log(hi / lo) / (2 * _Z90)
        return LogNormalPrior(med, min(max(sigma, 0.1), 5.0), median_sd, SIGMA_SD, centre)


def number(x: float) -> str:
    """A median for notes: whole units from 100 up, else three significant digits."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


# Durations with no pooled fit of enough events to centre on. Days to a year: median 30 days
# with sd 1.5 on its log puts 95% of the prior between 1.6 and 570 days, covering a same-week
# qualification and a year-long enterprise cycle; sigma 1 is a typical spread of stage and
# cycle times (the 10%–90% range is ×/÷ 3.6 around the median).
DURATION_PRIOR = LogNormalPrior(30.0, 1.0, 1.5, SIGMA_SD, "default")

# Deal sizes with no pooled fit of enough amounts: money has no natural scale, so the
# log-median is left to the data; sigma 1 as above.
SIZE_PRIOR = LogNormalPrior(1.0, 1.0, math.inf, SIGMA_SD, "default")
