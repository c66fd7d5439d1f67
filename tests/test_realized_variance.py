"""Range-based realised variance and the HAR-VIX regression (models/realized_variance.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from simulate import bars_from_days, leverage_history, vix_driven_history

from models.realized_variance import (
    HarFeatures,
    daily_realized_variance,
    fit_har,
)

LOG_CHI2_MEAN = -1.2703628454614782  # E[ln χ²₁]


def test_garman_klass_on_a_known_bar() -> None:
    history = pd.DataFrame(
        {"open": [99.0, 100.0], "high": [101.0, 110.0], "low": [97.0, 95.0],
         "close": [98.0, 105.0], "vix": [np.nan, np.nan]},
        index=pd.bdate_range("2020-01-06", periods=2),
    )  # fmt: skip
    gk = 0.5 * math.log(110 / 95) ** 2 - (2 * math.log(2) - 1) * math.log(105 / 100) ** 2
    overnight = math.log(100 / 98) ** 2
    first = 0.5 * math.log(101 / 97) ** 2 - (2 * math.log(2) - 1) * math.log(98 / 99) ** 2
    rv = daily_realized_variance(history)
    assert rv[0] == pytest.approx(first, rel=1e-12)  # no previous close: no overnight part
    assert rv[1] == pytest.approx(gk + overnight, rel=1e-12)


def test_features_use_no_later_rows() -> None:
    history = vix_driven_history(300, c=0.7, seed=1)
    full = HarFeatures.from_history(history)
    for cut in (30, 150, 299):
        part = HarFeatures.from_history(history.iloc[: cut + 1])
        for name in ("rv_d", "rv_w", "rv_m", "vix", "neg_d", "neg_w", "neg_m"):
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[: cut + 1])


def test_leverage_features_are_means_of_the_falls() -> None:
    history = vix_driven_history(60, c=0.7, seed=4)
    f = HarFeatures.from_history(history)
    falls = np.minimum(np.r_[0.0, np.diff(np.log(history["close"].to_numpy()))], 0.0)
    assert f.neg_d is not None and f.neg_w is not None and f.neg_m is not None
    np.testing.assert_allclose(f.neg_d, falls, atol=1e-15)
    np.testing.assert_allclose(f.neg_w[40], falls[36:41].mean(), rtol=1e-12)
    np.testing.assert_allclose(f.neg_m[40], falls[19:41].mean(), rtol=1e-12)
    x = f.columns(np.array([40]), with_vix=True, leverage=True)[0]
    expected = [1.0, f.rv_d[40], f.rv_w[40], f.rv_m[40], f.neg_d[40], f.neg_w[40], f.neg_m[40]]
    np.testing.assert_array_equal(x, [*expected, f.vix[40]])  # the VIX stays last


def test_leverage_regression_finds_a_leverage_effect() -> None:
    # Tomorrow's log variance rises by θ·max(−z, 0) after a fall only. Half of that is
    # symmetric in z (θ|z|/2, which the range regressors see too); the other half, −θz/2,
    # only the leverage terms can carry. With φ = 0.95 the effect lingers, so it is shared
    # between the day, week and month terms: test their sum. Significance from the
    # regression's own OLS covariance (the h = 1 residuals are ln χ²₁-like and serially
    # independent given the state): the sum must be below −4 s.e. With θ = 0.6 and 20 000
    # days its t-statistic is about −8 (−8.2 ± 1.1 over 12 seeds), so −4 is far in the tail.
    history = leverage_history(20_000, sd=0.01, phi=0.95, theta=0.6, seed=8)
    fit = fit_har(history, 1, with_vix=False, leverage=True)
    f = HarFeatures.from_history(history)
    logc = np.log(history["close"].to_numpy())
    t = np.arange(22, len(history) - 1)
    x = f.columns(t, with_vix=False, leverage=True)
    resid = 2 * np.log(np.abs(np.diff(logc)[t])) - x @ fit.coef
    cov = resid.var(ddof=x.shape[1]) * np.linalg.inv(x.T @ x)
    lev = np.r_[np.zeros(4), np.ones(3)]  # neg_d + neg_w + neg_m
    assert lev @ fit.coef < -4 * np.sqrt(lev @ cov @ lev)
    # Without leverage terms the regression has its five columns back.
    assert fit_har(history, 1, with_vix=False).coef.size == 4


def test_fit_har_targets_stay_inside_the_history() -> None:
    # Rebuild the regression by hand: target_t = mean(r²_{t+1..t+h}) for t = 22..n-1-h, so
    # the last target ends exactly at the last row; rows after the history never enter.
    history = vix_driven_history(400, c=0.7, seed=2)
    h = 5
    n = 300
    part = history.iloc[:n]
    fit = fit_har(part, h, with_vix=True)
    f = HarFeatures.from_history(part)
    logc = np.log(part["close"].to_numpy())
    t = np.arange(22, n - h)
    target = np.array([np.mean(np.diff(logc[i : i + h + 1]) ** 2) for i in t])
    x = np.column_stack([np.ones(len(t)), f.rv_d[t], f.rv_w[t], f.rv_m[t], f.vix[t]])
    coef, *_ = np.linalg.lstsq(x, np.log(target), rcond=None)
    assert fit.nobs == n - h - 22
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-9, atol=1e-12)
    # Rows after the history: replacing them changes nothing.
    other = history.copy()
    other.iloc[n:, :4] *= 1.5
    np.testing.assert_array_equal(fit_har(other.iloc[:n], h, with_vix=True).coef, fit.coef)


def test_fit_har_names_the_shortfall() -> None:
    history = vix_driven_history(80, c=0.7, seed=3)  # 80 − 5 − 22 = 53 usable rows
    with pytest.raises(ValueError, match=r"53 usable rows.*need at least 60"):
        fit_har(history, 5, with_vix=True)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        fit_har(history, 0, with_vix=False)


def test_duan_smearing_recovers_the_level_mean() -> None:
    # Constant variance: ln r² = ln σ² + ln χ²₁, so the log fit's intercept is
    # ln σ² + E[ln χ²₁] and retransforming by exp alone under-predicts by e^{-1.27} ≈ 0.28.
    # Duan's factor mean(exp(residual)) estimates E[χ²₁]/e^{E ln χ²₁} = e^{1.2704}; as a
    # mean of n χ²₁-like terms its relative s.d. is sqrt(2/n): 4 s.d. bands below.
    sigma = 0.01
    history = bars_from_days(np.full(3000, sigma), np.zeros(3000), np.random.default_rng(7))
    fit = fit_har(history, 1, with_vix=False)
    rel_sd = math.sqrt(2 / fit.nobs)
    assert fit.smearing == pytest.approx(math.exp(-LOG_CHI2_MEAN), rel=4 * rel_sd)
    f = HarFeatures.from_history(history)
    forecasts = np.array([fit.variance(f.row(i, False)) for i in range(22, 3000)])
    assert forecasts.mean() / sigma**2 == pytest.approx(1.0, abs=4 * rel_sd)


def test_vix_regression_recovers_a_known_relation() -> None:
    # Day t+1 variance = c·VIX_t²/252 (c = 0.7: a variance risk premium), so the true
    # coefficients are b1 = 1 on ln(VIX²/252) and 0 on the range terms, and the smeared
    # forecast equals c·VIX²/252. The residual is ln χ²₁ − its mean, i.i.d. and independent
    # of the regressors, so the textbook OLS standard errors hold; replicates over 40
    # seeds gave z-scores with s.d. 0.92–1.01. Bands: 4 standard errors.
    c = 0.7
    n = 3000
    history = vix_driven_history(n, c=c, seed=11)
    fit = fit_har(history, 1, with_vix=True)
    f = HarFeatures.from_history(history)
    t = np.arange(22, n - 1)
    x = np.column_stack([np.ones(len(t)), f.rv_d[t], f.rv_w[t], f.rv_m[t], f.vix[t]])
    r2 = np.diff(np.log(history["close"].to_numpy())) ** 2
    resid = np.log(r2[t]) - x @ fit.coef  # r2[t] is the return from t to t+1
    s2 = resid @ resid / (len(t) - x.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.inv(x.T @ x)))
    truth = np.array([0.0, 0.0, 0.0, 1.0])
    assert np.all(np.abs(fit.coef[1:] - truth) < 4 * se[1:]), (fit.coef, se)
    # The retransformed forecast's level: its error is the smearing mean's, sqrt(2/n).
    ratio = np.array([fit.variance(x[i]) for i in range(len(t))]) / (c * np.exp(f.vix[t]))
    assert ratio.mean() == pytest.approx(1.0, abs=4 * math.sqrt(2 / fit.nobs))
