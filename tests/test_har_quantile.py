"""HARQuantileModel: HAR-RV-VIX variance with empirical standardised quantiles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from look_ahead import assert_no_look_ahead
from simulate import merton_history, sv_history

from connectors.data_sources import load_history
from models.base import Bar, Status
from models.har_quantile import NO_RANGE, HARQuantileModel
from models.validation import bar_at


def _walk(model: HARQuantileModel, history: pd.DataFrame, first: int) -> tuple[np.ndarray, ...]:
    """Fit on rows ``0..first``, then one-step forecasts and updates to the end.

    Returns per origin: close inside the interval, next Low/High inside the path range.
    """
    model.fit(history.iloc[: first + 1])
    close = history["close"].to_numpy()
    low = history["low"].to_numpy()
    high = history["high"].to_numpy()
    close_hit, path_hit = [], []
    for t in range(first, len(history) - 1):
        if t > first:
            model.update(bar_at(history, t))
        fc = model.forecast(1, 0.9)
        close_hit.append(fc.low <= close[t + 1] <= fc.high)
        assert fc.path_low is not None and fc.path_high is not None
        path_hit.append(fc.path_low <= low[t + 1] and high[t + 1] <= fc.path_high)
    return np.array(close_hit), np.array(path_hit)


def test_one_step_close_and_path_coverage_are_nominal_on_stochastic_volatility() -> None:
    # 600 one-step origins after a 1400-day fit on Taylor's SV process (percent s.d.
    # about 1, persistent). Given the state, misses are independent: coverage s.d.
    # sqrt(0.09/600) = 1.2 pp. The quantiles come from ~1380 standardised outcomes, so
    # each tail level is off by about sqrt(0.05·0.95/1380) = 0.6 pp, common to all
    # origins (0.8 pp for the two tails). ±4 pp is about 3 s.d. of the two combined.
    history, _ = sv_history(2000, mu=0.0, phi=0.97, sigma=0.2, seed=11)
    history["vix"] = np.nan  # the no-VIX regression (the VIX one is tested on SPX below)
    close_hit, path_hit = _walk(HARQuantileModel(horizons=(1,)), history, 1399)
    assert close_hit.size == 600
    assert abs(close_hit.mean() - 0.90) < 0.04
    assert abs(path_hit.mean() - 0.90) < 0.04


def test_negative_jumps_make_the_lower_side_wider() -> None:
    # Crashes of about −6 % on 8 % of days (~200 in the sample): the 5 % quantile of the
    # close sits among the jump days, near −5.7 %, against +1.3 % for the 95 % quantile
    # (1.645 diffusion s.d.); standardising by the HAR variance blurs this a little, not
    # by a factor 2. A symmetric (normal or Student-t) model cannot show it; the
    # empirical quantiles must.
    history, _ = merton_history(2500, sigma=0.008, lam=0.08, mu_j=-0.06, sigma_j=0.01, seed=5)
    history["vix"] = np.nan
    model = HARQuantileModel(horizons=(1,))
    model.fit(history)
    fc = model.forecast(1, 0.9)
    down = math.log(fc.anchor / fc.low)
    up = math.log(fc.high / fc.anchor)
    assert down > 2.0 * up
    assert fc.path_low is not None and fc.path_high is not None
    assert fc.path_low <= fc.low < fc.anchor < fc.high <= fc.path_high


def test_uses_the_vix_regression_when_the_vix_is_known() -> None:
    history = load_history("SPX").loc["2014-01-01":"2016-12-31"]
    model = HARQuantileModel(horizons=(1, 5), window=500)
    result = model.fit(history)
    assert "h1_vix.vix" in result.params and "h5_vix.vix" in result.params
    # Leverage terms only in the regression without the VIX (the VIX prices them).
    assert "h1.neg_d" in result.params and "h5.neg_m" in result.params
    assert not any(k.startswith("h1_vix.neg") for k in result.params)
    plain = HARQuantileModel(horizons=(1, 5), window=500, leverage=False).fit(history)
    assert not any(".neg" in k for k in plain.params)
    fc = model.forecast(5, 0.9)
    assert fc.status.state is Status.OK
    # Without the VIX at the last bar it falls back to the regression without it and
    # says so.
    last = history.iloc[-1]
    model.update(
        Bar(history.index[-1] + pd.Timedelta(days=1), last["close"], last["close"] * 1.01,
            last["close"] * 0.99, last["close"], None)
    )  # fmt: skip
    assert model.forecast(5, 0.9).status.state is Status.DEGRADED


def test_forecast_never_changes_state_and_update_checks_order() -> None:
    history = load_history("SPX").loc["2014-01-01":"2015-06-30"]
    model = HARQuantileModel(window=300)
    model.fit(history)
    assert model.forecast(5, 0.9) == model.forecast(5, 0.9)
    with pytest.raises(ValueError):
        model.update(bar_at(history, len(history) - 2))  # not after the last bar


def test_a_close_only_history_is_degraded_and_says_why() -> None:
    # open = high = low = close: the realised variance is the squared close return; the
    # member still forecasts, on that noisier measure, and its status names the gap.
    history = load_history("SPX").loc["2014-01-01":"2015-06-30"]
    close_only = history.assign(open=history["close"], high=history["close"], low=history["close"])
    model = HARQuantileModel(window=300)
    model.fit(close_only)
    fc = model.forecast(1, 0.9)
    assert fc.usable and fc.status.state is Status.DEGRADED
    assert fc.status.reason == NO_RANGE
    model.fit(close_only.assign(vix=np.nan))
    assert model.forecast(1, 0.9).status.reason == f"no VIX; {NO_RANGE}"
    model.fit(history)
    assert model.forecast(1, 0.9).status.state is Status.OK


def test_fit_names_the_shortage_of_history() -> None:
    history = load_history("SPX").iloc[:200]
    with pytest.raises(ValueError, match="need at least 278 bars"):
        HARQuantileModel().fit(history)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="horizons"):
        HARQuantileModel(horizons=(0,))
    with pytest.raises(ValueError, match="window"):
        HARQuantileModel(window=100)


def test_look_ahead_check_passes_on_the_bundled_data() -> None:
    history = load_history("SPX").loc["2013-01-01":"2015-12-31"]
    assert_no_look_ahead(lambda: HARQuantileModel(window=400), history)
