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


# -- behaviours pinned by mutation testing (each would break silently otherwise) --------


def test_a_fresh_calibrator_leaves_the_raw_range_unchanged() -> None:
    """Before any feedback both factors are 1: the calibrated range is the model's own."""
    cal = TailCalibrator()
    assert cal.factors.low == 1.0 and cal.factors.high == 1.0
    low, high = cal.adjust(100.0, 95.0, 104.0)
    assert low == pytest.approx(95.0, rel=1e-13) and high == pytest.approx(104.0, rel=1e-13)
    assert (cal.updates, cal.breaches_low, cal.breaches_high) == (0, 0, 0)


def test_defaults_are_a_valid_ninety_percent_calibrator() -> None:
    """The default (5 % per tail, factors within [0.3, 3]) is the 90 % interval's setting."""
    cal = TailCalibrator()
    assert cal.tail == 0.05
    assert cal.k_min <= 1.0 <= cal.k_max


def test_factors_move_by_gamma_times_breach_minus_tail_in_log_space() -> None:
    """One observation: log k ← log k + γ(1{breach} − tail), per tail, independently."""
    cal = TailCalibrator(tail=0.05, gamma=0.1)
    cal.record("a", 100.0, 95.0, 105.0)
    # The low tail is breached (94 < 95); the high tail is not (104 ≤ 105).
    assert cal.observe("a", 94.0, 104.0) is True
    assert cal.log_k_low == pytest.approx(0.1 * (1 - 0.05), rel=1e-12)
    assert cal.log_k_high == pytest.approx(0.1 * (0 - 0.05), rel=1e-12)
    assert (cal.updates, cal.breaches_low, cal.breaches_high) == (1, 1, 0)
    # A wider calibrated low tail: the next range's low is further from the anchor.
    low, high = cal.adjust(100.0, 95.0, 105.0)
    assert low == pytest.approx(100.0 * math.exp(math.exp(0.095) * math.log(95.0 / 100.0)))
    assert high == pytest.approx(100.0 * math.exp(math.exp(-0.005) * math.log(105.0 / 100.0)))


def test_counters_count_every_observation_and_each_tails_breaches() -> None:
    """``updates`` counts scored forecasts; ``breaches_*`` count each tail's misses."""
    cal = TailCalibrator(gamma=0.0)  # frozen factors: the bounds stay [95, 105]
    outcomes = [(94.0, 100.0), (100.0, 106.0), (90.0, 110.0), (100.0, 100.0)]
    for t, (lo, hi) in enumerate(outcomes):
        cal.record(t, 100.0, 95.0, 105.0)
        assert cal.observe(t, lo, hi)
    assert (cal.updates, cal.breaches_low, cal.breaches_high) == (4, 2, 2)
    assert cal.factors.low == 1.0 and cal.factors.high == 1.0  # γ = 0: no learning


def test_an_outcome_exactly_on_a_bound_is_not_a_breach() -> None:
    """As in scoring (miss lo: lower < L, miss hi: upper > U), touching a bound covers."""
    cal = TailCalibrator(gamma=0.1)
    low_c, high_c = cal.adjust(100.0, 95.0, 105.0)
    cal.record(0, 100.0, 95.0, 105.0)
    cal.observe(0, low_c, high_c)
    assert (cal.breaches_low, cal.breaches_high) == (0, 0)
    assert cal.log_k_low < 0 and cal.log_k_high < 0  # both tails narrowed by γ·tail


def test_an_unknown_key_is_not_scored_and_older_unobserved_forecasts_are_dropped() -> None:
    """``observe`` of a key never recorded returns False and changes nothing; observing a
    later key drops the forecasts recorded before it (their outcomes can never come)."""
    cal = TailCalibrator(gamma=0.1)
    assert cal.observe("missing", 50.0, 150.0) is False
    assert cal.updates == 0 and cal.factors.low == 1.0
    for t in range(3):
        cal.record(t, 100.0, 95.0, 105.0)
    assert cal.observe(1, 100.0, 100.0) is True  # forecast 0 is dropped unscored
    assert cal.updates == 1
    assert [p[0] for p in cal.state()["pending"]] == [2]
    assert cal.observe(0, 50.0, 150.0) is False  # gone
    assert cal.updates == 1


def test_factors_are_clamped_to_k_min_and_k_max() -> None:
    """However many breaches (or none) in a row, each factor stays in [k_min, k_max]."""
    cal = TailCalibrator(gamma=1.0, k_min=0.5, k_max=2.0)
    for t in range(50):
        cal.record(t, 100.0, 95.0, 105.0)
        cal.observe(t, 1.0, 100.0)  # the low tail is always breached, the high never
    assert cal.factors.low == pytest.approx(2.0, rel=1e-12)
    assert cal.factors.high == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"tail": 0.0}, {"tail": 0.5}, {"k_min": 0.0}, {"k_min": 1.01}, {"k_max": 0.99}],
)
def test_settings_on_the_wrong_side_of_a_bound_are_refused(kwargs: dict[str, Any]) -> None:
    """tail ∈ (0, 0.5) open at both ends; 0 < k_min ≤ 1 ≤ k_max (k = 1 must be reachable)."""
    with pytest.raises(ValueError):
        TailCalibrator(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"gamma": 0.0}, {"k_min": 1.0}, {"k_max": 1.0}, {"k_min": 1.0, "k_max": 1.0},
     {"tail": 0.49}, {"tail": 1e-9}],
)  # fmt: skip
def test_settings_on_a_closed_bound_are_accepted(kwargs: dict[str, Any]) -> None:
    """γ = 0 (frozen calibration) and k_min = 1 or k_max = 1 (one-sided) are allowed."""
    TailCalibrator(**kwargs)
