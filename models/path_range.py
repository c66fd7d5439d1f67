"""Simulated daily returns and variances → close quantiles and the joint path range.

This is the path-range rule of the quality protocol (bench/QUALITY-PROTOCOL.md §3b) for
simulated models. Given ``n`` simulated paths of ``h`` daily log returns ``r_{i,k}`` (in
percent) and the daily conditional variances ``σ²_{i,k}`` (percent²):

* the log close path is ``s_{i,k} = ln C_t + Σ_{j≤k} r_{i,j} / 100``;
* each day is filled with a Brownian bridge from ``s_{i,k-1}`` to ``s_{i,k}`` with
  variance ``v = σ²_{i,k} / 100²`` over the day. For a bridge with increment ``b`` the
  maximum ``M`` above the start has ``P(M > m) = exp(-2 m (m - b) / v)`` for
  ``m ≥ max(0, b)`` (Borodin & Salminen, Handbook of Brownian Motion, 2002), so with
  ``E ~ Exp(1)``: ``M = (b + sqrt(b² + 2 v E)) / 2`` and, by symmetry, the minimum is
  ``(b - sqrt(b² + 2 v E')) / 2``, ``E'`` independent of ``E``;
* the path minimum ``m_i`` / maximum ``M_i`` are the extremes over the ``h`` days;
* with equal tail probabilities ``q``, ``path_low`` is the ``q`` quantile of ``m`` and
  ``path_high`` the ``1 - q`` quantile of ``M``; ``q ∈ [α/2, α]`` (``α = 1 - confidence``)
  is found by bisection so that the simulated joint coverage
  ``P(m ≥ path_low and M ≤ path_high)`` equals ``confidence``.

Everything is vectorised over paths; the loop over days is ``h`` numpy operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.base import ModelStatus, PriceRange

# Quantile levels every simulated model reports, so the ensemble can average them level
# by level; the two tails of the requested confidence are added to these.
QUANTILE_LEVELS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    0.9,
    0.95,
    0.975,
    0.99,
)

_BISECTION_STEPS = 40  # q is bracketed in [α/2, α]; 2^-40 of that is far below MC error


@dataclass(frozen=True)
class SimulatedRange:
    """Close quantiles and joint path range read off simulated paths (prices)."""

    close_low: float
    close_high: float
    center: float  # median close
    path_low: float
    path_high: float
    tail_prob: float  # q: the probability in each tail of the path range
    path_coverage: float  # simulated joint coverage of [path_low, path_high] at q
    quantiles: dict[float, float]


def bridge_extremes(
    log_start: float,
    returns_pct: np.ndarray,
    variances_pct: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per path: the minimum and maximum log price over the path, and the final log price.

    Continuous monitoring through exact Brownian-bridge extremes within each day.
    """
    increments = returns_pct / 100.0
    day_var = variances_pct / 1.0e4
    ends = log_start + np.cumsum(increments, axis=1)
    starts = np.empty_like(ends)
    starts[:, 0] = log_start
    starts[:, 1:] = ends[:, :-1]
    sq = increments * increments
    up = np.sqrt(sq + 2.0 * day_var * rng.standard_exponential(increments.shape))
    down = np.sqrt(sq + 2.0 * day_var * rng.standard_exponential(increments.shape))
    day_max = starts + 0.5 * (increments + up)
    day_min = starts + 0.5 * (increments - down)
    return day_min.min(axis=1), day_max.max(axis=1), ends[:, -1]


def _sorted_quantile(sorted_values: np.ndarray, level: float) -> float:
    """numpy's 'linear' quantile on an already sorted array."""
    pos = level * (sorted_values.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_values.size - 1)
    frac = pos - lo
    return float(sorted_values[lo] + frac * (sorted_values[hi] - sorted_values[lo]))


def joint_tail_prob(
    path_min: np.ndarray, path_max: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """Equal-tail ``q`` whose range ``[Q_min(q), Q_max(1-q)]`` holds ``confidence`` jointly.

    Returns ``(q, low, high, coverage)``; the largest ``q`` found whose simulated joint
    coverage is still ``≥ confidence``. Works in any monotone units (log or price).
    """
    alpha = 1.0 - confidence
    mins = np.sort(path_min)
    maxs = np.sort(path_max)

    def coverage(q: float) -> tuple[float, float, float]:
        low = _sorted_quantile(mins, q)
        high = _sorted_quantile(maxs, 1.0 - q)
        inside = np.count_nonzero((path_min >= low) & (path_max <= high))
        return inside / path_min.size, low, high

    # Bonferroni: q = α/2 covers ≥ 1 - α; q = α covers ≤ 1 - α (either tail alone misses α).
    q_lo, q_hi = alpha / 2.0, alpha
    cov, low, high = coverage(q_lo)
    best = (q_lo, low, high, cov)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (q_lo + q_hi)
        cov, low, high = coverage(mid)
        if cov >= confidence:
            q_lo = mid
            best = (mid, low, high, cov)
        else:
            q_hi = mid
    return best


def simulate_range(
    anchor: float,
    returns_pct: np.ndarray,
    variances_pct: np.ndarray,
    confidence: float,
    rng: np.random.Generator,
    levels: Sequence[float] = QUANTILE_LEVELS,
) -> SimulatedRange:
    """Close interval, quantiles and joint path range from simulated paths.

    ``returns_pct`` and ``variances_pct`` are ``(n_paths, h)`` arrays: daily log returns in
    percent and that day's conditional variance (percent²). ``anchor`` is the close at the
    origin. ``rng`` draws the bridge extremes.
    """
    returns_pct = np.asarray(returns_pct, dtype=float)
    variances_pct = np.asarray(variances_pct, dtype=float)
    if returns_pct.ndim != 2 or returns_pct.shape != variances_pct.shape:
        raise ValueError(
            "returns_pct and variances_pct must be 2-D arrays of the same shape (n_paths, h); "
            f"got {returns_pct.shape} and {variances_pct.shape}"
        )
    n_paths = returns_pct.shape[0]
    if n_paths < 100 or returns_pct.shape[1] < 1:
        raise ValueError(f"need at least 100 paths and 1 day, got shape {returns_pct.shape}")
    if not (math.isfinite(anchor) and anchor > 0):
        raise ValueError(f"anchor must be a finite price > 0, got {anchor!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not (np.isfinite(returns_pct).all() and np.isfinite(variances_pct).all()):
        raise ValueError("simulated returns and variances must be finite")
    if (variances_pct < 0).any():
        raise ValueError("simulated variances must be >= 0")

    log_anchor = math.log(anchor)
    path_min, path_max, final = bridge_extremes(log_anchor, returns_pct, variances_pct, rng)
    # Rounded so that e.g. confidence 0.9 gives the level 0.05 itself, not 0.04999...
    tail = round((1.0 - confidence) / 2.0, 12)
    all_levels = sorted({round(float(v), 12) for v in (*levels, tail, 1.0 - tail, 0.5)})
    closes = np.exp(np.quantile(final, all_levels))
    quantiles = {float(level): float(v) for level, v in zip(all_levels, closes, strict=True)}
    q, low, high, cov = joint_tail_prob(path_min, path_max, confidence)
    return SimulatedRange(
        close_low=quantiles[tail],
        close_high=quantiles[round(1.0 - tail, 12)],
        center=quantiles[0.5],
        path_low=math.exp(low),
        path_high=math.exp(high),
        tail_prob=q,
        path_coverage=cov,
        quantiles=quantiles,
    )


def to_price_range(
    model: str,
    horizon: int,
    confidence: float,
    anchor: float,
    sim: SimulatedRange,
    status: ModelStatus,
) -> PriceRange:
    """Wrap a :class:`SimulatedRange` in the contract's :class:`PriceRange`."""
    return PriceRange(
        model=model,
        horizon=horizon,
        confidence=confidence,
        anchor=anchor,
        low=sim.close_low,
        high=sim.close_high,
        center=sim.center,
        path_low=sim.path_low,
        path_high=sim.path_high,
        quantiles=sim.quantiles,
        status=status,
    )
