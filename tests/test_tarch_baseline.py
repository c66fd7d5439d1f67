"""TarchT: arch's TARCH(1,1,1)-t, the protocol's close-only baseline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from look_ahead import assert_no_look_ahead
from scipy import stats

from connectors.data_sources import load_history
from models.base import ForecastModel
from models.tarch_baseline import TarchT, _spec

TRUE = {"mu": 0.04, "omega": 0.02, "alpha[1]": 0.03, "gamma[1]": 0.12, "beta[1]": 0.9, "nu": 7.0}


def simulate_tarch(n: int, seed: int) -> pd.DataFrame:
    """Closes from the TARCH-t process, the recursion on σ written out (the oracle)."""
    rng = np.random.default_rng(seed)
    p, burn = TRUE, 500
    nu = p["nu"]
    z = rng.standard_t(nu, n + burn) * math.sqrt((nu - 2) / nu)
    sigma = p["omega"] / (1 - p["alpha[1]"] - p["gamma[1]"] / 2 - p["beta[1]"])
    eps, r = 0.0, np.empty(n + burn)
    for t in range(n + burn):
        if t > 0:
            sigma = (
                p["omega"] + (p["alpha[1]"] + p["gamma[1]"] * (eps < 0)) * abs(eps)
                + p["beta[1]"] * sigma
            )  # fmt: skip
        eps = sigma * z[t]
        r[t] = p["mu"] + eps
    close = 2000.0 * np.exp(np.concatenate([[0.0], np.cumsum(r[burn:] / 100)]))
    return pd.DataFrame({"close": close}, index=pd.bdate_range("2000-01-03", periods=n + 1))


def test_is_a_forecast_model() -> None:
    assert isinstance(TarchT(), ForecastModel)


def test_fit_recovers_the_parameters_within_their_standard_errors() -> None:
    result = TarchT(n_paths=500).fit(simulate_tarch(4000, seed=3))
    assert result.converged
    z = {k: (result.params[k] - v) / result.std_errors[k] for k, v in TRUE.items()}
    assert max(abs(v) for v in z.values()) < 3.5, z


def test_one_step_interval_is_the_t_quantile_of_archs_own_variance() -> None:
    # h = 1: the simulated 5 %/95 % closes are μ ± t-quantile × σ_{t+1} (arch's analytic
    # one-step variance) up to Monte Carlo error (5,000 paths: ~1.5 % of the distance).
    history = load_history("SPX").loc[:"2014-12-31"]
    model = TarchT(seed=4)
    model.fit(history)
    returns = 100 * np.diff(np.log(history["close"].to_numpy()))
    params = model._params
    assert params is not None
    sigma = math.sqrt(
        float(_spec(returns).fix(params).forecast(horizon=1, reindex=False).variance.iloc[-1, 0])
    )
    nu, mu = params[-1], params[0]
    q = stats.t.ppf(0.95, nu) * math.sqrt((nu - 2) / nu) * sigma
    fc = model.forecast(1, 0.9)
    anchor = float(history["close"].iloc[-1])
    assert 100 * math.log(fc.high / anchor) == pytest.approx(mu + q, rel=0.04)
    assert 100 * math.log(anchor / fc.low) == pytest.approx(q - mu, rel=0.04)
    assert fc.path_low is not None and fc.path_high is not None
    assert fc.path_low < fc.low < fc.high < fc.path_high
    assert model.forecast(1, 0.9) == fc  # seeded per origin


def test_look_ahead_check_passes_on_the_bundled_data() -> None:
    history = load_history("SPX").loc["2012-01-01":"2014-12-31"]
    assert_no_look_ahead(lambda: TarchT(n_paths=500), history)


def test_bad_arguments_and_order() -> None:
    with pytest.raises(ValueError, match="n_paths must be >= 100"):
        TarchT(n_paths=10)
    with pytest.raises(RuntimeError, match="fit"):
        TarchT().update(None)  # type: ignore[arg-type]
    assert TarchT().forecast(1).status.state.value == "failed"
