"""The volatility-smile model: its formulas, and the UKF recovering a smile from option
chains whose number of quotes changes from one chain to the next."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import pytest
from scipy.stats import norm

from rust_filters._core import UKF, SmileModel

TRUTH = np.array([0.2, -0.03, 0.01])  # level, skew, curvature


def test_moneyness_implied_vol_and_delta_formulas() -> None:
    strikes, forward, tau = np.array([80.0, 100.0, 125.0]), 100.0, np.array([0.5])
    k = SmileModel.moneyness(strikes, forward, tau)
    np.testing.assert_allclose(k, np.log(strikes / forward) / np.sqrt(0.5), rtol=1e-15)
    # "one value or one per strike": a plain float is one value (once "dimensionality
    # mismatch"), a list of the wrong length is an error naming tau.
    np.testing.assert_array_equal(SmileModel.moneyness(strikes, forward, 0.5), k)
    np.testing.assert_array_equal(SmileModel.moneyness(list(strikes), forward, [0.5]), k)
    with pytest.raises(ValueError, match=r"tau must be one value or one per strike \(3\), got 2"):
        SmileModel.moneyness(strikes, forward, [0.5, 0.5])
    with pytest.raises(TypeError, match="strike must be a 1-D sequence"):
        SmileModel.moneyness([[80.0]], forward, 0.5)
    model = SmileModel(min_iv=0.05)
    iv = model.implied_vol(TRUTH, k)
    np.testing.assert_allclose(iv, TRUTH[0] + TRUTH[1] * k + TRUTH[2] * k**2, rtol=1e-15)
    assert model.implied_vol([-1.0, 0.0, 0.0], [0.0])[0] == 0.05  # the floor
    taus = np.array([0.1, 0.5, 2.0])
    calls = np.array([True, False, True])
    k = SmileModel.moneyness(strikes, forward, taus)
    delta = model.delta(TRUTH, k, taus, calls)
    iv = model.implied_vol(TRUTH, k)
    d1 = (np.log(forward / strikes) + 0.5 * iv**2 * taus) / (iv * np.sqrt(taus))
    # Hart's normal CDF is accurate to ~1e-14 absolute.
    np.testing.assert_allclose(delta, norm.cdf(d1) - ~calls, atol=1e-13)


Measurement = Literal["iv", "delta"]
Chain = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _chains(seed: int, n_chains: int, measurement: Measurement, noise_sd: float) -> Iterator[Chain]:
    """Synthetic chains from the fixed smile TRUTH, 4..15 quotes each, seeded noise."""
    rng = np.random.default_rng(seed)
    model = SmileModel(measurement=measurement)
    for _ in range(n_chains):
        size = int(rng.integers(4, 16))
        k = rng.uniform(-2.0, 2.0, size)
        tau = rng.uniform(0.05, 1.0, size)
        is_call = rng.random(size) < 0.5
        if measurement == "iv":
            clean = model.implied_vol(TRUTH, k)
        else:
            clean = model.delta(TRUTH, k, tau, is_call)
        yield k, tau, is_call, clean + noise_sd * rng.standard_normal(size)


@pytest.mark.parametrize(("measurement", "noise_sd"), [("iv", 0.002), ("delta", 0.005)])
def test_filter_recovers_the_smile_from_chains_of_varying_size(
    measurement: Measurement, noise_sd: float
) -> None:
    # Random-walk dynamics with small vol and a static truth: the filter's posterior
    # covariance P over-states the error variance (process noise the truth does not have),
    # so each component's error exceeds 4 sqrt(P_ii) with probability < 6.4e-5 for the
    # linear IV measurement. The delta measurement is nonlinear (the UKF's Gaussian is an
    # approximation), hence the wider 5 sd bound.
    model = SmileModel(
        [0.2, 0.0, 0.0], 0.0, [0.01, 0.01, 0.005], measurement=measurement, noise_sd=noise_sd
    )
    ukf = UKF(model, [0.15, 0.0, 0.0], np.diag([0.01, 0.01, 0.01]))
    sizes = set()
    for k, tau, is_call, values in _chains(11, 40, measurement, noise_sd):
        ll = ukf.step_quotes(k, tau, values, 1 / 252, is_call=is_call)
        assert np.isfinite(ll)
        sizes.add(len(k))
    assert len(sizes) > 5  # the measurement size really did change
    sd = np.sqrt(np.diag(ukf.P))
    bound = 4.0 if measurement == "iv" else 5.0
    assert np.all(np.abs(ukf.x - TRUTH) < bound * sd), (ukf.x, sd)
    assert sd[0] < 0.005  # and it learned something: the prior sd was 0.1
    assert ukf.n_resets == 0 and ukf.dim_z is None


def test_per_quote_noise_and_scalar_broadcast() -> None:
    model = SmileModel(noise_sd=0.01)
    a = UKF(model, [0.2, 0.0, 0.0], np.eye(3) * 0.01)
    b = UKF(model, [0.2, 0.0, 0.0], np.eye(3) * 0.01)
    k = [-1.0, 0.0, 1.0]
    la = a.update_quotes(k, 0.3, [0.22, 0.2, 0.19])
    lb = b.update_quotes(k, [0.3, 0.3, 0.3], [0.22, 0.2, 0.19], noise_sd=[0.01, 0.01, 0.01])
    assert la == lb
    c = UKF(model, [0.2, 0.0, 0.0], np.eye(3) * 0.01)
    c.update_quotes(k, 0.3, [0.22, 0.2, 0.19], noise_sd=1.0)  # noisy quotes move it less
    assert abs(c.x[2]) < abs(a.x[2])


def test_invalid_chains_are_rejected_and_state_unchanged() -> None:
    ukf = UKF(SmileModel(measurement="delta"), [0.2, 0.0, 0.0], np.eye(3) * 0.01)
    ukf.step_quotes([0.0], 0.5, [0.5], 0.01, is_call=True)
    before = ukf.snapshot()
    bad = [
        (lambda: ukf.update_quotes([0.0], 0.5, [0.5]), ValueError, "is_call is required"),
        (lambda: ukf.update_quotes([0.0], 0.0, [0.5], is_call=True), ValueError, r"tau\[0\]"),
        (lambda: ukf.update_quotes([0.0, 1.0], 0.5, [0.5], is_call=True), ValueError, "values"),
        (lambda: ukf.update_quotes([0.0], [0.1, 0.2, 0.3], [0.5], is_call=True), ValueError, "tau"),
        (lambda: ukf.update_quotes([np.nan], 0.5, [0.5], is_call=True), ValueError, "moneyness"),
        (lambda: ukf.update_quotes([0.0], 0.5, [np.inf], is_call=True), ValueError, "z must"),
        (lambda: ukf.update_quotes([], 0.5, [], is_call=True), ValueError, "empty"),
        (
            lambda: ukf.update_quotes([0.0], 0.5, [0.5], is_call=True, noise_sd=-1.0),
            ValueError,
            "noise_sd",
        ),
        (lambda: ukf.step([0.5]), TypeError, "update_quotes"),
        (lambda: ukf.filter([[0.5]]), TypeError, "update_quotes"),
    ]
    for call, exc, message in bad:
        with pytest.raises(exc, match=message):
            call()
        assert ukf.snapshot() == before
