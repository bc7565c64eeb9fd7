"""Distributions as immutable values.

Each family wraps ``scipy.stats`` and adds what salesim needs: sampling from a passed-in
Generator, inverse-CDF sampling (so engines can share uniforms across strategies), scaling
(the cycle-time and deal-size levers) and conditional residuals (an open deal that has
already survived ``age`` days). A name→class registry lets TOML say ``family = "lognormal"``.

All positive parameters are listed in ``param_names``; parameter uncertainty is a covariance
of their logarithms (see ``Fitted`` in ``simulator.model``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special, stats

_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def split_uniform(u, lo, width):
    """``(u − lo) / width``: given ``lo ≤ u < lo + width``, a uniform on [0, 1) again and
    independent of which interval ``u`` fell in, so one uniform decides a branch and then the
    draw inside it (docs/model.md §0). Kept below 1 against rounding: an inverse CDF at 1
    is infinite. Where the width is 0 (a branch nobody takes) the result is meaningless,
    without a warning: callers compute both branches and keep one. A tiny width can
    overflow: the result is then kept below 1 as well."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.minimum(np.maximum((np.asarray(u) - lo) / width, 0.0), _BELOW_ONE)


@dataclass(frozen=True)
class Distribution:
    """Base: subclasses define ``family``, ``param_names`` and ``frozen()``."""

    family: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]

    # --- scipy-backed maths -------------------------------------------------------------
    def frozen(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def mean(self) -> float:
        return float(self.frozen().mean())

    def quantile(self, q):
        return self.frozen().ppf(q)

    def cdf(self, x):
        return self.frozen().cdf(x)

    def sf(self, x):
        return self.frozen().sf(x)

    def logsf(self, x):
        return self.frozen().logsf(x)

    def logpdf(self, x):
        return self.frozen().logpdf(x)

    def isf(self, q):
        return self.frozen().isf(q)

    # --- sampling -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, size=None):
        return self.quantile(rng.random(size))

    def from_uniform(self, u):
        """Inverse-CDF draw: the value that uniform(s) ``u`` map to.

        Engines draw uniforms and map them, so a strategy that scales a distribution keeps
        every deal's draw (common random numbers).
        """
        return self.quantile(u)

    def residual(self, u, age):
        """Remaining time ``T - age`` given ``T > age``, by inverse CDF of uniforms ``u``:
        increasing in ``u``, as every inverse-CDF draw here, so a lever that lowers a deal's
        uniform (a higher win rate, docs/model.md §0) only brings its close forward.

        Uses the survival function so very old ages stay accurate in the tail.
        """
        u = np.asarray(u, dtype=float)
        age = np.asarray(age, dtype=float)
        s = self.sf(age)
        t = self.isf(np.clip((1.0 - u) * s, 1e-300, 1.0))
        return np.maximum(np.where(s > 0, t - age, 0.0), 0.0)

    # --- values ---------------------------------------------------------------------------
    def params(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in self.param_names], dtype=float)

    def with_params(self, values) -> "Distribution":
        return dataclasses.replace(self, **{n: float(v) for n, v in zip(self.param_names, values)})

    def scaled(self, factor: float) -> "Distribution":
        """The distribution of ``factor * T``."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"family": self.family, **{n: getattr(self, n) for n in self.param_names}}


@dataclass(frozen=True)
class LogNormal(Distribution):
    median: float
    sigma: float
    family: ClassVar[str] = "lognormal"
    param_names: ClassVar[tuple[str, ...]] = ("median", "sigma")

    def frozen(self):
        return stats.lognorm(s=self.sigma, scale=self.median)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def sample(self, rng, size=None):
        return self.median * np.exp(self.sigma * rng.standard_normal(size))

    # Closed forms (scipy.special): engines call these per deal; a frozen scipy
    # distribution costs ~0.5 ms to build.
    def _z(self, x):
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(x, 0.0) / self.median) / self.sigma

    def quantile(self, q):
        return self.median * np.exp(self.sigma * special.ndtri(q))

    def cdf(self, x):
        return special.ndtr(self._z(x))

    def sf(self, x):
        return special.ndtr(-self._z(x))

    def logsf(self, x):
        return special.log_ndtr(-self._z(x))

    def isf(self, q):
        return self.median * np.exp(-self.sigma * special.ndtri(q))

    def scaled(self, factor):
        return LogNormal(self.median * factor, self.sigma)


@dataclass(frozen=True)
class Gamma(Distribution):
    shape: float
    scale: float
    family: ClassVar[str] = "gamma"
    param_names: ClassVar[tuple[str, ...]] = ("shape", "scale")

    def frozen(self):
        return stats.gamma(a=self.shape, scale=self.scale)

    @property
    def mean(self) -> float:
        return self.shape * self.scale

    def sample(self, rng, size=None):
        return rng.gamma(self.shape, self.scale, size)

    def quantile(self, q):
        return self.scale * special.gammaincinv(self.shape, q)

    def cdf(self, x):
        return special.gammainc(self.shape, np.maximum(x, 0.0) / self.scale)

    def sf(self, x):
        return special.gammaincc(self.shape, np.maximum(x, 0.0) / self.scale)

    def isf(self, q):
        return self.scale * special.gammainccinv(self.shape, q)

    def scaled(self, factor):
        return Gamma(self.shape, self.scale * factor)


@dataclass(frozen=True)
class Weibull(Distribution):
    shape: float
    scale: float
    family: ClassVar[str] = "weibull"
    param_names: ClassVar[tuple[str, ...]] = ("shape", "scale")

    def frozen(self):
        return stats.weibull_min(c=self.shape, scale=self.scale)

    def sample(self, rng, size=None):
        return self.scale * rng.weibull(self.shape, size)

    def quantile(self, q):
        return self.scale * (-np.log1p(-np.asarray(q, dtype=float)))[()] ** (1 / self.shape)

    def cdf(self, x):
        return -np.expm1(-((np.maximum(x, 0.0) / self.scale) ** self.shape))

    def sf(self, x):
        return np.exp(-((np.maximum(x, 0.0) / self.scale) ** self.shape))

    def isf(self, q):
        with np.errstate(divide="ignore"):
            return self.scale * (-np.log(np.asarray(q, dtype=float)))[()] ** (1 / self.shape)

    def scaled(self, factor):
        return Weibull(self.shape, self.scale * factor)


@dataclass(frozen=True)
class Exponential(Distribution):
    scale: float
    family: ClassVar[str] = "exponential"
    param_names: ClassVar[tuple[str, ...]] = ("scale",)

    def frozen(self):
        return stats.expon(scale=self.scale)

    @property
    def mean(self) -> float:
        return self.scale

    def sample(self, rng, size=None):
        return rng.exponential(self.scale, size)

    def quantile(self, q):
        return -self.scale * np.log1p(-np.asarray(q, dtype=float))[()]

    def cdf(self, x):
        return -np.expm1(-np.maximum(x, 0.0) / self.scale)

    def sf(self, x):
        return np.exp(-np.maximum(x, 0.0) / self.scale)

    def isf(self, q):
        with np.errstate(divide="ignore"):
            return -self.scale * np.log(np.asarray(q, dtype=float))[()]

    def scaled(self, factor):
        return Exponential(self.scale * factor)


@dataclass(frozen=True)
class Fixed(Distribution):
    """A constant: zero-variance cases in tests and hand-edited models."""

    value: float
    family: ClassVar[str] = "fixed"
    param_names: ClassVar[tuple[str, ...]] = ("value",)

    def frozen(self):
        return stats.uniform(loc=self.value, scale=0.0)

    @property
    def mean(self) -> float:
        return self.value

    def quantile(self, q):
        return np.full(np.shape(q), self.value) if np.ndim(q) else self.value

    def cdf(self, x):
        return (np.asarray(x) >= self.value).astype(float)

    def sf(self, x):
        return (np.asarray(x) < self.value).astype(float)

    def logsf(self, x):
        with np.errstate(divide="ignore"):
            return np.log(self.sf(x))

    def logpdf(self, x):
        return np.where(np.asarray(x) == self.value, 0.0, -np.inf)

    def isf(self, q):
        return np.full(np.shape(q), self.value) if np.ndim(q) else self.value

    def sample(self, rng, size=None):
        return self.quantile(np.zeros(size) if size is not None else 0.0)

    def scaled(self, factor):
        return Fixed(self.value * factor)


@dataclass(frozen=True)
class Empirical(Distribution):
    """A discrete distribution on ``values`` with probabilities proportional to ``weights``.

    ``jitter`` spreads each value uniformly over ``[v - jitter, v + jitter]`` (clipped at 0):
    durations recorded in whole days use 0.5. Weights are counts (possibly fractional, from
    Kaplan–Meier/Aalen–Johansen increments); they also set the Dirichlet used to draw
    parameter uncertainty.
    """

    values: tuple[float, ...]
    weights: tuple[float, ...]
    jitter: float = 0.0
    family: ClassVar[str] = "empirical"
    param_names: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        if len(self.values) == 0 or len(self.values) != len(self.weights):
            raise ValueError("Empirical needs equally many values and weights (at least one)")
        # Kept in ascending order: the CDF's search and every inverse-CDF draw increasing
        # with its uniform (docs/model.md §0) rely on it; the law is the same.
        order = sorted(range(len(self.values)), key=lambda i: self.values[i])
        if order != list(range(len(order))):
            object.__setattr__(self, "values", tuple(self.values[i] for i in order))
            object.__setattr__(self, "weights", tuple(self.weights[i] for i in order))

    def _probs(self):
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    def frozen(self):
        return stats.rv_discrete(values=(np.asarray(self.values), self._probs()))

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self._probs()))

    def quantile(self, q):
        v = np.asarray(self.values, dtype=float)
        c = np.cumsum(self._probs())
        idx = np.minimum(np.searchsorted(c, np.asarray(q), side="left"), len(v) - 1)
        return v[idx]

    def cdf(self, x):
        v = np.asarray(self.values, dtype=float)
        c = np.concatenate([[0.0], np.cumsum(self._probs())])
        return c[np.searchsorted(v, np.asarray(x), side="right")]

    def sf(self, x):
        return np.clip(1.0 - self.cdf(x), 0.0, 1.0)

    def logsf(self, x):
        with np.errstate(divide="ignore"):
            return np.log(self.sf(x))

    def isf(self, q):
        return self.quantile(1.0 - np.asarray(q))

    def sample(self, rng, size=None):
        x = self.quantile(rng.random(size))
        if self.jitter:
            x = np.maximum(x + rng.uniform(-self.jitter, self.jitter, size), 0.0)
        return x

    def from_uniform(self, u):
        # The position of u inside its value's probability step is itself uniform: it
        # spreads the jitter, so one uniform gives the same law as ``sample``.
        if not self.jitter:
            return self.quantile(u)
        u = np.asarray(u, dtype=float)
        p = self._probs()
        c = np.cumsum(p)
        idx = np.minimum(np.searchsorted(c, u, side="left"), len(p) - 1)
        within = np.clip((u - (c[idx] - p[idx])) / p[idx], 0.0, 1.0)
        x = np.asarray(self.values, dtype=float)[idx] + self.jitter * (2 * within - 1)
        return np.maximum(x, 0.0)[()]

    def residual(self, u, age):
        # Draw from the values above ``age``, renormalised.
        v = np.asarray(self.values, dtype=float)
        p = self._probs()
        age = np.asarray(age, dtype=float)
        u = np.asarray(u, dtype=float)
        out = np.zeros(np.broadcast_shapes(u.shape, age.shape))
        for i, (ui, ai) in enumerate(np.broadcast(u, age)):
            keep = v > ai
            if not keep.any():
                continue
            c = np.cumsum(p[keep]) / p[keep].sum()
            out.flat[i] = v[keep][min(np.searchsorted(c, ui), keep.sum() - 1)] - ai
        return out

    def scaled(self, factor):
        return Empirical(
            tuple(float(x) * factor for x in self.values), self.weights, self.jitter * factor
        )

    def with_weights(self, weights) -> "Empirical":
        return Empirical(self.values, tuple(float(w) for w in weights), self.jitter)

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "values": list(self.values),
            "weights": list(self.weights),
            "jitter": self.jitter,
        }


FAMILIES: dict[str, type[Distribution]] = {
    cls.family: cls for cls in (LogNormal, Gamma, Weibull, Exponential, Fixed, Empirical)
}
PARAMETRIC_FAMILIES = ("lognormal", "gamma", "weibull", "exponential")


def from_dict(d: dict) -> Distribution:
    """Build a distribution from its TOML table (``family`` plus parameters)."""
    d = dict(d)
    family = d.pop("family", None)
    if family not in FAMILIES:
        raise ValueError(
            f"unknown distribution family {family!r}; expected one of {', '.join(FAMILIES)}"
        )
    cls = FAMILIES[family]
    if cls is Empirical:
        return Empirical(
            tuple(float(x) for x in d["values"]),
            tuple(float(x) for x in d["weights"]),
            float(d.get("jitter", 0.0)),
        )
    missing = [n for n in cls.param_names if n not in d]
    if missing:
        raise ValueError(f"{family} needs {', '.join(missing)}")
    values = [float(d[n]) for n in cls.param_names]
    if any(not (v > 0) for v in values) and cls is not Fixed:
        raise ValueError(f"{family} parameters must be positive, got {values}")
    return cls(*values)
