"""VARMAX of (return, VIX log change): estimation, coverage, incremental update (extend),
degraded fallbacks, input checks."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.tsa.statespace.varmax import VARMAX

from models.base import Bar, ForecastModel, Status
from models.varmax_model import VARMAXModel

C = np.array([0.04, 0.1])
A = np.array([[-0.05, -0.01], [-0.3, -0.1]])  # row = equation (return, VIX change)
SIGMA = np.array([[1.0, -4.2], [-4.2, 36.0]])  # sd 1% and 6%, correlation -0.7
CHOL = np.linalg.cholesky(SIGMA)


def simulate_var(n: int, seed: int) -> pd.DataFrame:
    """y_t = c + A y_{t-1} + u_t as a plain loop (the oracle); closes and VIX levels from it."""
    rng = np.random.default_rng(seed)
    burn = 100
    y = np.zeros((n + burn, 2))
    for t in range(1, n + burn):
        y[t] = C + A @ y[t - 1] + CHOL @ rng.standard_normal(2)
    y = y[burn:]
    close = 2500.0 * np.exp(np.concatenate([[0.0], np.cumsum(y[:, 0] / 100)]))
    vix = 15.0 * np.exp(np.concatenate([[0.0], np.cumsum(y[:, 1] / 100)]))
    index = pd.bdate_range("2014-01-01", periods=n + 1)
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "vix": vix}, index=index
    )


def bar_of(history: pd.DataFrame, i: int, vix: bool = True) -> Bar:
    row = history.iloc[i]
    return Bar(history.index[i], row.open, row.high, row.low, row.close, row.vix if vix else None)


@pytest.fixture(scope="module")
def sim_history() -> pd.DataFrame:
    return simulate_var(1500, seed=3)


@pytest.fixture(scope="module")
def fitted(sim_history: pd.DataFrame) -> VARMAXModel:
    model = VARMAXModel(n_paths=2000, seed=4)
    model.fit(sim_history.iloc[:1200])
    return model


def test_is_a_forecast_model() -> None:
    assert isinstance(VARMAXModel(), ForecastModel)


def test_fit_recovers_the_parameters(sim_history: pd.DataFrame) -> None:
    result = VARMAXModel().fit(sim_history)
    assert result.converged and result.model == "varmax" and result.nobs == 1500
    # statsmodels' names: "L1.y2.y1" is the lag-1 coefficient of y2 in the equation of y1;
    # the covariance is parametrised by its lower Cholesky factor.
    truth = {
        "intercept.y1": C[0],
        "intercept.y2": C[1],
        "L1.y1.y1": A[0, 0],
        "L1.y2.y1": A[0, 1],
        "L1.y1.y2": A[1, 0],
        "L1.y2.y2": A[1, 1],
        "sqrt.var.y1": CHOL[0, 0],
        "sqrt.cov.y1.y2": CHOL[1, 0],
        "sqrt.var.y2": CHOL[1, 1],
    }
    assert set(result.params) == set(truth)
    # Each estimate within z s.e., z the Bonferroni bound for a 1% family-wise false alarm
    # over the 9 parameters (z = 3.26).
    z = norm.ppf(1 - 0.01 / (2 * len(truth)))
    for name, true in truth.items():
        est, se = result.params[name], result.std_errors[name]
        assert abs(est - true) < z * se, (name, est, true, se)


def test_one_step_close_interval_reaches_nominal_coverage(
    sim_history: pd.DataFrame, fitted: VARMAXModel
) -> None:
    model = copy.deepcopy(fitted)
    n_test = 300
    hits = 0
    for i in range(1200, 1200 + n_test):
        hits += model.forecast(1, 0.9).contains(sim_history["close"].iloc[i])
        model.update(bar_of(sim_history, i))
    # Binomial sampling error sqrt(.09/n) plus the estimation error of the return s.d.
    # (relative s.e. sqrt(1/(2 n_fit))), which moves the coverage by 2 φ(z) z Δσ/σ; 3 s.e.
    z = norm.ppf(0.95)
    estimation = 2 * norm.pdf(z) * z * 3 * math.sqrt(1 / (2 * 1200))
    assert hits / n_test == pytest.approx(0.9, abs=3 * math.sqrt(0.09 / n_test) + estimation)


def test_update_matches_a_refit_free_filter_of_the_longer_history(
    sim_history: pd.DataFrame, fitted: VARMAXModel
) -> None:
    model = copy.deepcopy(fitted)
    for i in range(1200, 1210):
        model.update(bar_of(sim_history, i, vix=i != 1205))  # one VIX missing on the way
    data = sim_history.iloc[:1210].copy()
    data.loc[data.index[1205], "vix"] = np.nan
    endog = np.column_stack(
        [np.diff(np.log(data["close"])) * 100, np.diff(np.log(data["vix"])) * 100]
    )
    assert fitted.fit_result is not None
    params = np.array(list(fitted.fit_result.params.values()))
    refiltered = VARMAX(endog, order=(1, 0), trend="c").filter(params)
    assert model.next_mean == pytest.approx(float(refiltered.forecast(1)[0, 0]), rel=1e-9)


def test_forecast_reads_state_without_changing_it(
    sim_history: pd.DataFrame, fitted: VARMAXModel
) -> None:
    model = copy.deepcopy(fitted)
    before = model.next_mean
    a, b = model.forecast(5), model.forecast(5)
    assert a == b and model.next_mean == before
    assert a.usable and a.status.state is Status.OK
    assert a.path_low is not None and a.path_high is not None
    assert a.path_low <= a.low < a.center < a.high <= a.path_high
    twin = copy.deepcopy(fitted)
    model.update(bar_of(sim_history, 1200))
    twin.update(bar_of(sim_history, 1200))
    assert model.forecast(2) == twin.forecast(2)


def test_missing_vix_degrades(sim_history: pd.DataFrame, fitted: VARMAXModel) -> None:
    model = copy.deepcopy(fitted)
    model.update(bar_of(sim_history, 1200, vix=False))
    fc = model.forecast(1)
    assert fc.usable and fc.status.state is Status.DEGRADED
    assert fc.status.reason.startswith("no VIX")
    model.update(bar_of(sim_history, 1201))
    assert model.forecast(1).status.state is Status.OK

    no_vix = VARMAXModel(n_paths=500)
    result = no_vix.fit(sim_history.iloc[:600].assign(vix=np.nan))
    assert result.model == "varmax (AR fallback)" and "ar.L1" in result.params
    fc = no_vix.forecast(2)
    assert fc.usable and fc.status.state is Status.DEGRADED
    assert fc.status.reason.startswith("no VIX")
    no_vix.update(bar_of(sim_history, 600))
    assert no_vix.forecast(1).usable


def test_invalid_input_gives_clear_errors(sim_history: pd.DataFrame, fitted: VARMAXModel) -> None:
    with pytest.raises(ValueError, match="order"):
        VARMAXModel(order=(0, 0))
    model = copy.deepcopy(fitted)
    before = model.next_mean
    with pytest.raises(ValueError, match=r"bar\.vix"):
        model.update(Bar(sim_history.index[1200], 1, 1, 1, 2500.0, -3.0))
    with pytest.raises(ValueError, match="out of order"):
        model.update(bar_of(sim_history, 1000))
    assert model.next_mean == before
    with pytest.raises(ValueError, match="steps"):
        model.forecast(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'vix' must be"):
        VARMAXModel().fit(sim_history.assign(vix=-1.0))
    with pytest.raises(RuntimeError, match="before fit"):
        VARMAXModel().update(bar_of(sim_history, 1))
