"""NumPy Monte Carlo of GBM and Merton jump diffusion (``benchmarks/spec/WORKLOADS.md`` 4-5).

The oracle for ``rust_filters.simulate_gbm`` / ``simulate_merton`` in distribution (the
random streams differ, so the tests compare both with closed forms) and the benchmark's
Python column. Model, per path and step ``n = 1..T``::

    log S_n = log S_{n-1} + (mu - sigma^2/2 - lam kappa) dt + sigma sqrt(dt) Z_n
              + mu_j K_n + sigma_j sqrt(K_n) W_n,        K_n ~ Poisson(lam dt)

with ``kappa = exp(mu_j + sigma_j^2/2) - 1`` (GBM: ``lam = 0``). Outputs: quantiles (numpy's
linear rule) of the terminal price and of each path's minimum and maximum, ``S_0``
included, and the mean terminal price.

Implementations, as the workload names them:

- ``numpy``: a (T, N) normal array, ``cumsum`` over time, extremes in log space, ``exp``
  only on the three N-vectors;
- ``numpy-naive``: (N, T) arrays and prices materialised, ``S = S0 exp(cumsum)``;
- Merton ``numpy`` (dense): a normal, a Poisson and a second normal array of N*T each;
- Merton ``numpy-sparse``: the jump normals drawn only where ``K_n > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
SEED = 11


@dataclass(frozen=True)
class ReferenceSummary:
    """Quantiles at ``levels`` of the terminal price and the path minimum / maximum."""

    levels: FloatArray
    terminal: FloatArray
    path_min: FloatArray
    path_max: FloatArray
    mean_terminal: float


def _summarise(
    terminal: FloatArray, low: FloatArray, high: FloatArray, levels: Sequence[float]
) -> ReferenceSummary:
    q = np.asarray(levels, dtype=np.float64)
    return ReferenceSummary(
        levels=q,
        terminal=np.quantile(terminal, q),
        path_min=np.quantile(low, q),
        path_max=np.quantile(high, q),
        mean_terminal=float(terminal.mean()),
    )


def _from_log_paths(x: FloatArray, s0: float, levels: Sequence[float]) -> ReferenceSummary:
    """``x``: (T, N) cumulated log returns; extremes in log space, S_0 (x = 0) included."""
    low = np.minimum(x.min(axis=0), 0.0)
    high = np.maximum(x.max(axis=0), 0.0)
    return _summarise(s0 * np.exp(x[-1]), s0 * np.exp(low), s0 * np.exp(high), levels)


def _from_naive_log_increments(
    increments: FloatArray, s0: float, levels: Sequence[float]
) -> ReferenceSummary:
    """``increments``: (N, T); prices materialised, extremes on prices."""
    prices = s0 * np.exp(np.cumsum(increments, axis=1))
    low = np.minimum(prices.min(axis=1), s0)
    high = np.maximum(prices.max(axis=1), s0)
    return _summarise(prices[:, -1], low, high, levels)


def kappa(mu_j: float, sigma_j: float) -> float:
    """Mean relative jump size ``E[e^Y] - 1``, ``Y ~ N(mu_j, sigma_j^2)``."""
    return math.expm1(mu_j + 0.5 * sigma_j * sigma_j)


def gbm_numpy(
    s0: float,
    mu: float,
    sigma: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = 1 / 252,
    levels: Sequence[float] = LEVELS,
    seed: int = SEED,
) -> ReferenceSummary:
    """GBM, vectorised over a (T, N) array, log space."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_steps, n_paths))
    x *= sigma * math.sqrt(dt)
    x += (mu - 0.5 * sigma * sigma) * dt
    np.cumsum(x, axis=0, out=x)
    return _from_log_paths(x, s0, levels)


def gbm_numpy_naive(
    s0: float,
    mu: float,
    sigma: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = 1 / 252,
    levels: Sequence[float] = LEVELS,
    seed: int = SEED,
) -> ReferenceSummary:
    """GBM the textbook way: (N, T) increments, prices materialised."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_paths, n_steps))
    increments = (mu - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * z
    return _from_naive_log_increments(increments, s0, levels)


def _merton_drift(mu: float, sigma: float, lam: float, mu_j: float, sigma_j: float) -> float:
    return mu - 0.5 * sigma * sigma - lam * kappa(mu_j, sigma_j)


def merton_numpy(
    s0: float,
    mu: float,
    sigma: float,
    lam: float,
    mu_j: float,
    sigma_j: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = 1 / 252,
    levels: Sequence[float] = LEVELS,
    seed: int = SEED,
) -> ReferenceSummary:
    """Merton, dense: normal, Poisson and jump-normal arrays of shape (T, N)."""
    rng = np.random.default_rng(seed)
    shape = (n_steps, n_paths)
    x = rng.standard_normal(shape)
    k = rng.poisson(lam * dt, shape)
    w = rng.standard_normal(shape)
    x *= sigma * math.sqrt(dt)
    x += _merton_drift(mu, sigma, lam, mu_j, sigma_j) * dt
    x += mu_j * k + sigma_j * np.sqrt(k) * w
    np.cumsum(x, axis=0, out=x)
    return _from_log_paths(x, s0, levels)


def merton_numpy_sparse(
    s0: float,
    mu: float,
    sigma: float,
    lam: float,
    mu_j: float,
    sigma_j: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = 1 / 252,
    levels: Sequence[float] = LEVELS,
    seed: int = SEED,
) -> ReferenceSummary:
    """Merton, jump normals drawn only where ``K_n > 0`` (~0.4 % of steps at lam = 1)."""
    rng = np.random.default_rng(seed)
    shape = (n_steps, n_paths)
    x = rng.standard_normal(shape)
    k = rng.poisson(lam * dt, shape)
    x *= sigma * math.sqrt(dt)
    x += _merton_drift(mu, sigma, lam, mu_j, sigma_j) * dt
    where = np.nonzero(k)
    counts = k[where]
    x[where] += mu_j * counts + sigma_j * np.sqrt(counts) * rng.standard_normal(counts.size)
    np.cumsum(x, axis=0, out=x)
    return _from_log_paths(x, s0, levels)


def merton_numpy_naive(
    s0: float,
    mu: float,
    sigma: float,
    lam: float,
    mu_j: float,
    sigma_j: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = 1 / 252,
    levels: Sequence[float] = LEVELS,
    seed: int = SEED,
) -> ReferenceSummary:
    """Merton the textbook way: dense (N, T) draws, prices materialised."""
    rng = np.random.default_rng(seed)
    shape = (n_paths, n_steps)
    z = rng.standard_normal(shape)
    k = rng.poisson(lam * dt, shape)
    w = rng.standard_normal(shape)
    increments = (
        _merton_drift(mu, sigma, lam, mu_j, sigma_j) * dt
        + sigma * math.sqrt(dt) * z
        + mu_j * k
        + sigma_j * np.sqrt(k) * w
    )
    return _from_naive_log_increments(increments, s0, levels)
