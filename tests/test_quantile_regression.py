"""QuantileRegressionModel: recovery on its own process, coverage, update, errors."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from simulate import one_step_hits

from models.base import Bar, Status
from models.quantile_regression import (
    REGRESSORS,
    QuantileRegressionModel,
    _lp_quantile,
    design,
    fit_quantile,
)
from models.realized_variance import HarFeatures
from models.validation import bar_at

C0, C1 = 0.004, 0.8  # σ_{t+1} = C0 + C1 · vol_w_t
SUBSTEPS = 16


@lru_cache(maxsize=2)
def feedback_history(n: int, seed: int) -> pd.DataFrame:
    """The member's own process: day ``t+1`` is a driftless Brownian path on a 16-step
    grid with s.d. ``C0 + C1 · √(mean Garman–Klass variance of days t-4..t)``, computed
    from the bars themselves, so the true quantiles of the next close are linear in the
    member's ``vol_w`` regressor: ``z_τ · C0 + z_τ · C1 · vol_w`` (others 0)."""
    rng = np.random.default_rng(seed)
    log_c = math.log(100.0)
    rows = []
    gk: list[float] = []
    for _ in range(n):
        sd = C0 + C1 * math.sqrt(np.mean(gk[-5:])) if gk else 0.01
        path = log_c + np.cumsum(rng.standard_normal(SUBSTEPS) * sd / math.sqrt(SUBSTEPS))
        o, c = log_c, float(path[-1])
        h, lo = max(o, float(path.max())), min(o, float(path.min()))
        gk.append(max(0.5 * (h - lo) ** 2 - (2 * math.log(2) - 1) * (c - o) ** 2, 0.0))
        rows.append((math.exp(o), math.exp(h), math.exp(lo), math.exp(c)))
        log_c = c
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame["vix"] = np.nan
    frame.index = pd.bdate_range("2001-01-02", periods=n)
    return frame


def test_fit_recovers_the_quantile_coefficients_of_its_own_process() -> None:
    # Truth at τ = 0.05 / 0.95: const ∓1.645·C0, vol_w ∓1.645·C1, vol_d = vol_m = fall_w = 0.
    # Standard errors: statsmodels' kernel sandwich; over seeds 0–9 the largest |z| of the
    # ten coefficients was 1.15–2.78. Band: 3.5 standard errors.
    history = feedback_history(4000, seed=1)
    fit = QuantileRegressionModel(horizons=(1,)).fit(history)
    z = float(norm.ppf(0.95))
    for target, sign in (("close_lo", -1.0), ("close_hi", 1.0)):
        truth = dict.fromkeys(REGRESSORS, 0.0) | {"const": sign * z * C0, "vol_w": sign * z * C1}
        for reg in REGRESSORS:
            key = f"h1.{target}.{reg}"
            assert abs(fit.params[key] - truth[reg]) < 3.5 * fit.std_errors[key], (key, fit)


def test_close_and_path_coverage_are_nominal_on_its_own_process() -> None:
    # Fit on 3001 days, then 1000 one-step forecasts (no refit). Binomial s.d. of a
    # 1000-day miss rate at 10 %: 0.95 pp, band 3 pp; of each tail's at 5 %: 0.69 pp, plus
    # the fitted coefficients' own error, band 2.5 pp. Over seeds 0–9: close 88.1–90.7 %,
    # path 88.5–91.7 %, single tails 3.7–7.1 % (no day breached both sides of the path).
    history = feedback_history(4001, seed=2)
    model = QuantileRegressionModel(horizons=(1,))
    hits = one_step_hits(model, history, 3000)
    assert len(hits) == 1000
    assert hits.mean() == pytest.approx(0.90, abs=0.03)
    model.fit(history.iloc[:3001])
    misses, widening = [], []
    for t in range(3000, 4000):
        if t > 3000:
            model.update(bar_at(history, t))
        r = model.forecast(1)
        assert r.path_low is not None and r.path_high is not None
        nxt = history.iloc[t + 1]
        misses.append((nxt["close"] < r.low, nxt["close"] > r.high,
                       nxt["low"] < r.path_low, nxt["high"] > r.path_high))  # fmt: skip
        down = math.log(r.anchor / r.path_low) / math.log(r.anchor / r.low)
        widening.append((down, math.log(r.path_high / r.anchor) / math.log(r.high / r.anchor)))
    rates = np.mean(misses, axis=0)
    assert 1 - rates[2] - rates[3] == pytest.approx(0.90, abs=0.03)
    assert rates == pytest.approx(np.full(4, 0.05), abs=0.025)
    # A Brownian day's minimum passes b twice as often as its close (reflection), so the
    # path's α/2 quantile is the close's α/4 one: 1.96 / 1.645 = 1.19 times as far in
    # continuous time, a little less on the 16-step grid (1.09–1.17 over seeds 0–9).
    assert np.mean(widening, axis=0) == pytest.approx([1.15, 1.15], abs=0.08)


def test_update_moves_the_regressors_exactly_as_the_longer_history_gives_them() -> None:
    history = feedback_history(1000, seed=3)
    model = QuantileRegressionModel(horizons=(1, 5))
    fit = model.fit(history.iloc[:900])
    for t in range(900, 910):
        model.update(bar_at(history, t))
    x = design(HarFeatures.from_history(history.iloc[:910]), np.array([909]))[0]
    anchor = float(history["close"].iloc[909])
    for steps, h in ((1, 1), (2, 1), (5, 5)):
        coef = np.array([fit.params[f"h{h}.close_lo.{reg}"] for reg in REGRESSORS])
        r = model.forecast(steps)
        assert r.low == pytest.approx(anchor * math.exp(math.sqrt(steps / h) * (x @ coef)))
        assert r.path_low is not None and r.path_high is not None
        assert r.path_low <= r.low < r.center < r.high <= r.path_high
        assert r.status.state is Status.OK


def test_forecast_is_repeatable_and_other_confidences_are_fitted_on_use() -> None:
    history = feedback_history(1000, seed=4)
    model = QuantileRegressionModel(horizons=(1,))
    model.fit(history)
    first = model.forecast(1)
    narrow = model.forecast(1, 0.5)
    assert model.forecast(1) == first
    assert first.low < narrow.low < narrow.high < first.high
    assert model.forecast(1, 0.5) == narrow


def test_the_linear_programme_gives_the_same_quantile_as_irls() -> None:
    # Both minimise the same check loss; IRLS stops within its tolerance of the LP optimum.
    rng = np.random.default_rng(5)
    x = np.column_stack([np.ones(2000), rng.uniform(0.5, 2.0, 2000)])
    y = x @ np.array([0.1, 1.0]) * rng.standard_t(5, 2000)
    for q in (0.05, 0.5, 0.95):
        irls = fit_quantile(y, x, q)
        assert irls.solver == "irls"
        exact = _lp_quantile(y, x, q)

        def loss(b: np.ndarray, q: float = q) -> float:
            u = y - x @ b
            return float(np.mean(np.maximum(q * u, (q - 1) * u)))

        assert loss(exact) <= loss(irls.coef) + 1e-12
        assert loss(irls.coef) == pytest.approx(loss(exact), rel=1e-6)
    stalled = fit_quantile(y, x, 0.05, max_iter=1)
    assert stalled.solver == "highs" and np.isnan(stalled.std_errors).all()
    assert stalled.coef == pytest.approx(_lp_quantile(y, x, 0.05))


def test_bad_input_is_named() -> None:
    history = feedback_history(1000, seed=6)
    with pytest.raises(ValueError, match="need at least 277 bars of history, got 100"):
        QuantileRegressionModel().fit(history.iloc[:100])
    flat = history.assign(open=history["close"], high=history["close"], low=history["close"])
    with pytest.raises(ValueError, match="open, high and low that form a range"):
        QuantileRegressionModel().fit(flat)
    with pytest.raises(ValueError, match="horizons must be positive"):
        QuantileRegressionModel(horizons=(0,))
    with pytest.raises(ValueError, match="min_obs must be >= 50"):
        QuantileRegressionModel(min_obs=10)
    with pytest.raises(ValueError, match="confidence must be in"):
        QuantileRegressionModel(confidence=1.5)
    model = QuantileRegressionModel()
    assert model.forecast(1).status.state is Status.FAILED
    with pytest.raises(RuntimeError, match="fit"):
        model.update(bar_at(history, 0))
    model.fit(history)
    last = history.index[-1]
    with pytest.raises(ValueError, match="out of order"):
        model.update(Bar(last, 100.0, 101.0, 99.0, 100.0))
    with pytest.raises(ValueError, match="steps must be an integer"):
        model.forecast(0)
