"""The simulated path-range rule (models.path_range) against closed forms for Brownian motion."""

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from models.base import ModelStatus
from models.path_range import joint_tail_prob, simulate_range, to_price_range

X_BM = 1.959964  # two-sided barrier of driftless BM with 90% stay probability over [0, 1]
N = 100_000


def bm_paths(h: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    returns = sigma * rng.standard_normal((N, h))
    return returns, np.full((N, h), sigma * sigma), rng


@pytest.mark.parametrize(("h", "sigma"), [(1, 1.0), (5, 1.3)])
def test_joint_range_of_brownian_motion_is_the_closed_form_barrier(h: int, sigma: float) -> None:
    returns, variances, rng = bm_paths(h, sigma, seed=11 + h)
    sim = simulate_range(1.0, returns, variances, 0.9, rng)
    scale = sigma * math.sqrt(h) / 100.0  # log units
    # Each bound is a quantile (≈ 5%) of the BM maximum (or minimum) over the horizon,
    # whose density at the barrier is 2φ(X_BM)/scale (reflection principle): the MC
    # standard error of the quantile is sqrt(q(1-q)/N) / density. 4 s.e. tolerance.
    q = sim.tail_prob
    se = math.sqrt(q * (1 - q) / N) / (2 * norm.pdf(X_BM))
    assert math.log(sim.path_high) / scale == pytest.approx(X_BM, abs=4 * se)
    assert -math.log(sim.path_low) / scale == pytest.approx(X_BM, abs=4 * se)
    # The close interval is the normal one, ±1.644854 σ√h; quantile s.e. as above with φ.
    se_close = math.sqrt(0.05 * 0.95 / N) / norm.pdf(1.644854)
    assert math.log(sim.close_high) / scale == pytest.approx(1.644854, abs=4 * se_close)
    assert -math.log(sim.close_low) / scale == pytest.approx(1.644854, abs=4 * se_close)
    assert 0.05 <= sim.tail_prob <= 0.10
    assert sim.path_coverage >= 0.9


def test_bridge_extremes_stay_inside_the_closed_form_barrier_90_percent_of_the_time() -> None:
    # Direct check of the bridge laws: the share of simulated paths inside ±X_BM σ√h
    # is 90% within 4 binomial standard errors sqrt(.09 / N).
    from models.path_range import bridge_extremes

    h, sigma = 5, 0.8
    returns, variances, rng = bm_paths(h, sigma, seed=3)
    lo, hi, _ = bridge_extremes(0.0, returns, variances, rng)
    barrier = X_BM * sigma * math.sqrt(h) / 100.0
    inside = np.mean((lo >= -barrier) & (hi <= barrier))
    assert inside == pytest.approx(0.9, abs=4 * math.sqrt(0.09 / N))


def test_joint_tail_prob_reaches_the_confidence_on_the_sample() -> None:
    rng = np.random.default_rng(0)
    mins = -np.abs(rng.standard_normal(5000))
    maxs = np.abs(rng.standard_normal(5000))
    q, low, high, cov = joint_tail_prob(mins, maxs, 0.9)
    assert 0.05 <= q <= 0.10
    assert cov >= 0.9
    assert np.mean((mins >= low) & (maxs <= high)) == cov
    # Independent tails: coverage (1 - q)^2 ≈ 0.9 → q ≈ 0.0513; the sample answer is within
    # a few binomial s.e. of it (s.e. of coverage sqrt(.09/5000) ≈ 0.0042, dq ≈ dcov / 1.9).
    assert q == pytest.approx(1 - math.sqrt(0.9), abs=4 * 0.0042 / 1.9)


def test_same_generator_seed_gives_identical_ranges() -> None:
    returns, variances, _ = bm_paths(3, 1.0, seed=1)
    a = simulate_range(4000.0, returns[:5000], variances[:5000], 0.8, np.random.default_rng(9))
    b = simulate_range(4000.0, returns[:5000], variances[:5000], 0.8, np.random.default_rng(9))
    assert a == b
    pr = to_price_range("m", 3, 0.8, 4000.0, a, ModelStatus.ok())
    assert pr.usable and pr.low == a.close_low and pr.path_high == a.path_high
    assert pr.path_low is not None and pr.path_high is not None
    assert pr.path_low <= pr.low < pr.center < pr.high <= pr.path_high
    assert {0.1, 0.5, 0.9} <= set(pr.quantiles)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variances_pct": np.ones((200, 3))}, "same shape"),
        ({"variances_pct": -np.ones((200, 2))}, ">= 0"),
        ({"returns_pct": np.full((200, 2), np.nan)}, "finite"),
        ({"confidence": 1.0}, "confidence"),
        ({"anchor": -1.0}, "anchor"),
        ({"returns_pct": np.zeros((10, 2)), "variances_pct": np.ones((10, 2))}, "100 paths"),
    ],
)
def test_invalid_input_is_rejected_with_a_clear_message(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "anchor": 100.0,
        "returns_pct": np.zeros((200, 2)),
        "variances_pct": np.ones((200, 2)),
        "confidence": 0.9,
        "rng": np.random.default_rng(0),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_range(**args)


# -- behaviours pinned by mutation testing ---------------------------------------------


def test_without_intraday_variance_the_extremes_are_those_of_the_daily_path() -> None:
    """σ² = 0: each day's bridge is a straight line, so the path's minimum and maximum are
    the smallest and largest of the start and the daily closes; the end is their sum."""
    from models.path_range import bridge_extremes

    returns = np.array([[1.0, -3.0, 0.5], [-0.5, -0.5, 2.0], [2.0, 1.0, 1.0]])
    log_start = math.log(100.0)
    lo, hi, end = bridge_extremes(log_start, returns, np.zeros_like(returns),
                                  np.random.default_rng(0))  # fmt: skip
    path = log_start + np.concatenate([np.zeros((3, 1)), np.cumsum(returns / 100, axis=1)], 1)
    np.testing.assert_allclose(lo, path.min(axis=1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(hi, path.max(axis=1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(end, path[:, -1], rtol=0, atol=1e-15)


def test_one_day_bridge_maximum_has_the_closed_form_mean() -> None:
    """Driftless one-day bridge with b = 0: M = sqrt(2 v E) / 2, so E[M] = sqrt(v π / 8)
    (E[sqrt(E)] = sqrt(π)/2), and the minimum mirrors it. 4 s.e. tolerance."""
    from models.path_range import bridge_extremes

    n, sigma = 200_000, 1.0  # percent
    lo, hi, _ = bridge_extremes(0.0, np.zeros((n, 1)), np.full((n, 1), sigma**2),
                                np.random.default_rng(5))  # fmt: skip
    v = (sigma / 100) ** 2
    mean = math.sqrt(v * math.pi / 8)
    se = math.sqrt(v / 2 - mean**2) / math.sqrt(n)  # E[M²] = 2v/4 = v/2
    assert hi.mean() == pytest.approx(mean, abs=4 * se)
    assert -lo.mean() == pytest.approx(mean, abs=4 * se)


def test_joint_bounds_are_the_linear_quantiles_of_the_extremes() -> None:
    """``low`` / ``high`` are numpy's linear quantiles of the minima at q and of the maxima
    at 1 − q, and the coverage is the sample share inside both."""
    rng = np.random.default_rng(2)
    mins, maxs = -rng.exponential(size=1001), rng.exponential(size=1001)
    q, low, high, cov = joint_tail_prob(mins, maxs, 0.8)
    assert low == pytest.approx(np.quantile(mins, q), rel=1e-12)
    assert high == pytest.approx(np.quantile(maxs, 1 - q), rel=1e-12)
    assert cov == np.mean((mins >= low) & (maxs <= high))


def test_close_quantiles_are_those_of_the_simulated_final_price() -> None:
    """No variance: the closes are exp of the summed returns, and close_low / center /
    close_high are their linear quantiles at tail, 1/2 and 1 − tail."""
    rng = np.random.default_rng(4)
    returns = rng.normal(0.0, 1.0, (400, 2))
    sim = simulate_range(50.0, returns, np.zeros_like(returns), 0.8, np.random.default_rng(1))
    final = math.log(50.0) + returns.sum(axis=1) / 100
    for level, value in ((0.1, sim.close_low), (0.5, sim.center), (0.9, sim.close_high)):
        assert value == pytest.approx(math.exp(np.quantile(final, level)), rel=1e-12)
        assert sim.quantiles[level] == value


def test_smallest_accepted_simulation_is_a_hundred_paths_of_one_day() -> None:
    """Exactly 100 paths and 1 day, with zero variance, is valid input."""
    sim = simulate_range(100.0, np.zeros((100, 1)), np.zeros((100, 1)), 0.9,
                         np.random.default_rng(0))  # fmt: skip
    assert sim.close_low == pytest.approx(100.0) and sim.path_high == pytest.approx(100.0)
    for shape in ((99, 1), (100, 0)):
        with pytest.raises(ValueError, match="100 paths"):
            simulate_range(100.0, np.zeros(shape), np.zeros(shape), 0.9, np.random.default_rng(0))
    for anchor in (math.inf, math.nan, 0.0):
        with pytest.raises(ValueError, match="anchor"):
            simulate_range(anchor, np.zeros((100, 1)), np.zeros((100, 1)), 0.9,
                           np.random.default_rng(0))  # fmt: skip
    with pytest.raises(ValueError, match="confidence"):
        simulate_range(100.0, np.zeros((100, 1)), np.zeros((100, 1)), 0.0,
                       np.random.default_rng(0))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_joint_tail_prob_is_the_largest_q_that_still_covers(seed: int) -> None:
    """The sample coverage is a step function of q (a step is one path, or two when both
    bounds pass a path at once): at the largest feasible q it exceeds the confidence by
    at most two paths, not by the many a smaller, merely feasible q would leave."""
    rng = np.random.default_rng(seed)
    n = 5000
    mins, maxs = -np.abs(rng.standard_normal(n)), np.abs(rng.standard_normal(n))
    _, _, _, cov = joint_tail_prob(mins, maxs, 0.9)
    assert 0.9 <= cov <= 0.9 + 2 / n + 1e-12
