"""ARIMA on returns: estimation, coverage, incremental update (extend), input checks."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.tsa.arima.model import ARIMA

from models.arima_model import ARIMAModel
from models.base import Bar, ForecastModel, Status

TRUE = {"const": 0.05, "ar.L1": 0.5, "ma.L1": -0.3, "sigma2": 1.2}


def simulate_arma(n: int, seed: int) -> pd.DataFrame:
    """Returns from φ(L)(r_t - c) = θ(L) e_t, as a plain loop (the oracle), and their closes."""
    rng = np.random.default_rng(seed)
    burn = 200
    e = math.sqrt(TRUE["sigma2"]) * rng.standard_normal(n + burn)
    u = np.zeros(n + burn)
    for t in range(1, n + burn):
        u[t] = TRUE["ar.L1"] * u[t - 1] + e[t] + TRUE["ma.L1"] * e[t - 1]
    r = TRUE["const"] + u[burn:]
    close = 3000.0 * np.exp(np.concatenate([[0.0], np.cumsum(r / 100)]))
    index = pd.bdate_range("2001-01-01", periods=n + 1)
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "vix": np.nan}, index=index
    )


def bar_of(history: pd.DataFrame, i: int) -> Bar:
    row = history.iloc[i]
    return Bar(history.index[i], row.open, row.high, row.low, row.close, None)


@pytest.fixture(scope="module")
def sim_history() -> pd.DataFrame:
    return simulate_arma(2000, seed=5)


@pytest.fixture(scope="module")
def fitted(sim_history: pd.DataFrame) -> ARIMAModel:
    model = ARIMAModel(n_paths=2000, seed=2)
    model.fit(sim_history.iloc[:1600])
    return model


def test_is_a_forecast_model() -> None:
    assert isinstance(ARIMAModel(), ForecastModel)


def test_fit_recovers_the_parameters_within_three_standard_errors(
    sim_history: pd.DataFrame,
) -> None:
    result = ARIMAModel().fit(sim_history)
    assert result.converged and result.nobs == 2000
    for name, true in TRUE.items():
        est, se = result.params[name], result.std_errors[name]
        assert abs(est - true) < 3 * se, (name, est, true, se)


def test_refit_warm_starts_from_the_last_estimate(sim_history: pd.DataFrame) -> None:
    model = ARIMAModel()
    first = model.fit(sim_history.iloc[:1500])
    again = model.fit(sim_history.iloc[:1505])
    assert again.converged
    for name in TRUE:
        assert again.params[name] == pytest.approx(first.params[name], abs=first.std_errors[name])


def test_one_step_close_interval_reaches_nominal_coverage(
    sim_history: pd.DataFrame, fitted: ARIMAModel
) -> None:
    model = copy.deepcopy(fitted)
    n_test = 400
    hits = 0
    for i in range(1600, 1600 + n_test):
        hits += model.forecast(1, 0.9).contains(sim_history["close"].iloc[i])
        model.update(bar_of(sim_history, i))
    # Two error sources: the binomial sampling error of the coverage over n independent
    # one-step forecasts, sqrt(.09/n), and the estimation error of σ̂ (relative s.e.
    # sqrt(1/(2 n_fit)) for Gaussian errors), which moves the coverage of ±z σ̂ by
    # 2 φ(z) z Δσ/σ. 3 s.e. of each. (With the true parameters this window covers 87.75%.)
    z = norm.ppf(0.95)
    estimation = 2 * norm.pdf(z) * z * 3 * math.sqrt(1 / (2 * 1600))
    assert hits / n_test == pytest.approx(0.9, abs=3 * math.sqrt(0.09 / n_test) + estimation)


def test_update_matches_a_refit_free_filter_of_the_longer_history(
    sim_history: pd.DataFrame, fitted: ARIMAModel
) -> None:
    model = copy.deepcopy(fitted)
    for i in range(1600, 1615):
        model.update(bar_of(sim_history, i))
    r = 100 * np.diff(np.log(sim_history["close"].to_numpy()[:1615]))
    assert fitted.fit_result is not None
    params = np.array(list(fitted.fit_result.params.values()))
    refiltered = ARIMA(r, order=(1, 0, 1), trend="c").filter(params)
    assert model.next_mean == pytest.approx(float(refiltered.forecast(1)[0]), rel=1e-9)


def test_forecast_reads_state_without_changing_it(
    sim_history: pd.DataFrame, fitted: ARIMAModel
) -> None:
    model = copy.deepcopy(fitted)
    before = model.next_mean
    a, b = model.forecast(5), model.forecast(5)
    assert a == b and model.next_mean == before
    assert a.usable and a.status.state is Status.OK
    assert a.path_low is not None and a.path_high is not None
    assert a.path_low <= a.low < a.center < a.high <= a.path_high
    twin = copy.deepcopy(fitted)
    model.update(bar_of(sim_history, 1600))
    twin.update(bar_of(sim_history, 1600))
    assert model.forecast(2) == twin.forecast(2)


def test_invalid_input_gives_clear_errors(sim_history: pd.DataFrame, fitted: ARIMAModel) -> None:
    with pytest.raises(ValueError, match=r"order must be \(p, 0, q\)"):
        ARIMAModel(order=(1, 1, 1))
    model = copy.deepcopy(fitted)
    before = model.next_mean
    with pytest.raises(ValueError, match="out of order"):
        model.update(bar_of(sim_history, 1599))
    with pytest.raises(ValueError, match=r"bar\.close"):
        model.update(Bar(sim_history.index[1600], 1, 1, 1, -5.0))
    assert model.next_mean == before
    with pytest.raises(ValueError, match="steps"):
        model.forecast(-1)
    with pytest.raises(ValueError, match="confidence"):
        model.forecast(1, 0.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        ARIMAModel().fit(sim_history.iloc[::-1])
    with pytest.raises(RuntimeError, match="before fit"):
        ARIMAModel().update(bar_of(sim_history, 1))
    assert ARIMAModel().forecast(1).status.state is Status.FAILED
