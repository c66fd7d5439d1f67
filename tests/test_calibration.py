"""Online tail calibration recovers nominal coverage after a volatility regime shift."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from models.calibration import TailCalibrator

Z95 = 1.6448536269514722


def simulate(
    calibrator: TailCalibrator | None, sigmas: np.ndarray, assumed: float, seed: int, horizon: int
) -> np.ndarray:
    """A model that always assumes volatility ``assumed``; returns the miss indicators."""
    rng = np.random.default_rng(seed)
    misses = np.zeros(len(sigmas), dtype=bool)
    outcomes: dict[int, float] = {}
    for t, sigma in enumerate(sigmas):
        done = t - horizon
        if calibrator is not None and done >= 0:
            calibrator.observe(done, outcomes[done], outcomes[done])
        anchor = 100.0
        low, high = anchor * math.exp(-Z95 * assumed), anchor * math.exp(Z95 * assumed)
        if calibrator is not None:
            calibrator.record(t, anchor, low, high)
            low, high = calibrator.adjust(anchor, low, high)
        y = anchor * math.exp(sigma * rng.standard_normal())
        outcomes[t] = y
        misses[t] = not low <= y <= high
    return misses


@pytest.mark.parametrize("horizon", [1, 5])
def test_coverage_recovers_after_volatility_doubles(horizon: int) -> None:
    # 1000 steps at the assumed volatility, then 3000 at twice it. Uncalibrated, the
    # second regime's coverage collapses to P(|Z| < 1.645/2) = 59 %.
    sigmas = np.r_[np.full(1000, 0.01), np.full(3000, 0.02)]
    raw = simulate(None, sigmas, 0.01, seed=1, horizon=horizon)
    assert raw[1000:].mean() > 0.35
    calibrated = simulate(
        TailCalibrator(tail=0.05, gamma=0.05), sigmas, 0.01, seed=1, horizon=horizon
    )
    late = calibrated[1500:]  # after a burn-in of 500 steps in the new regime
    # Miss rate 10 %; s.d. of a mean of 2500 (weakly dependent) indicators ~0.6 pp,
    # widened for the tracker's own fluctuation and the h-step overlap: ±2.5 pp.
    assert abs(late.mean() - 0.10) < 0.025


def test_tails_calibrate_separately_for_a_skewed_outcome() -> None:
    rng = np.random.default_rng(3)
    cal = TailCalibrator(tail=0.05, gamma=0.03)
    lows = highs = 0
    n = 6000
    outcome = 100.0
    for t in range(n):
        if t >= 1:
            cal.observe(t - 1, outcome, outcome)
        cal.record(t, 100.0, 100 * math.exp(-0.0164), 100 * math.exp(0.0164))
        low, high = cal.adjust(100.0, 100 * math.exp(-0.0164), 100 * math.exp(0.0164))
        # Left-skewed: the down moves are twice as large as the up moves.
        z = rng.standard_normal()
        outcome = 100 * math.exp(0.01 * (2 * z if z < 0 else z))
        if t >= 1000:
            lows += outcome < low
            highs += outcome > high
    f = cal.factors
    assert f.low > 1.6 and f.high < 1.2  # the lower tail widened much more
    m = n - 1000
    # Each tail's breach rate 5 %: s.d. sqrt(.05·.95/5000) = 0.3 pp; allow ±1.5 pp.
    assert abs(lows / m - 0.05) < 0.015 and abs(highs / m - 0.05) < 0.015


def test_state_round_trip_continues_identically() -> None:
    cal = TailCalibrator()
    for t in range(20):
        cal.record(t, 100.0, 98.0, 102.0)
        if t >= 2:
            cal.observe(t - 2, 97.0 + 0.3 * t, 99.0 + 0.2 * t)
    copy = TailCalibrator.from_state(cal.state())
    for c in (cal, copy):
        c.record(20, 100.0, 98.0, 102.0)
        c.observe(18, 97.5, 103.0)
    assert cal.state() == copy.state()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tail": 0.6}, "tail must be in"), ({"gamma": -1}, "gamma must be >= 0"),
     ({"k_min": 2.0}, "k_min")],
)  # fmt: skip
def test_bad_settings_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TailCalibrator(**kwargs)
