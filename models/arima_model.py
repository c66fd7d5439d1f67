"""ARIMA(p, 0, q) with a constant on daily log returns, by statsmodels.

Model (Box & Jenkins 1970; statsmodels' ``tsa.arima.model.ARIMA``, exact Gaussian
likelihood by the Kalman filter), returns ``r_t = 100 ln(C_t / C_{t-1})``::

    φ(L) (r_t - c) = θ(L) e_t,   e_t ~ iid N(0, σ²)

with ``φ(L) = 1 - φ_1 L - .. - φ_p L^p`` and ``θ(L) = 1 + θ_1 L + .. + θ_q L^q``. The
order defaults to (1, 0, 1), the lowest AIC among (p, q) ≤ (2, 2) on S&P 500 returns
1999–2014; the AR and MA roots nearly cancel, i.e. returns are close to white noise.
The variance is constant, so the range does not react to volatility clustering: the
model is in the ensemble for its mean, not its width.

New bars are folded in with ``results.extend`` (the Kalman state carries on with held
parameters, cost independent of the history length); refits warm start from the last
estimate. Forecasts simulate the state-space form forward from the filtered state.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.arima.model import ARIMA

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.returns import (
    check_bar,
    check_forecast_args,
    checked_history,
    log_returns_pct,
    origin_seed,
    return_pct,
)
from models.state_space_paths import state_space_range


def check_order(order: tuple[int, int, int]) -> tuple[int, int, int]:
    """Orders are (p, 0, q): the model is fitted to returns, already differenced prices."""
    if (
        not isinstance(order, tuple)
        or len(order) != 3
        or not all(isinstance(v, int) and v >= 0 for v in order)
        or order[1] != 0
        or order[0] + order[2] > 6
    ):
        raise ValueError(
            f"order must be (p, 0, q) with integers p, q >= 0 and p + q <= 6, got {order!r}"
        )
    return order


def fit_arima(
    returns: np.ndarray, order: tuple[int, int, int], start_params: np.ndarray | None
) -> tuple[object, bool, str]:
    """Fit by MLE with a warm start; cold start again if the warm start did not converge."""

    def once(start: np.ndarray | None) -> tuple[object, bool, str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = ARIMA(returns, order=order, trend="c").fit(start_params=start)
        retvals = res.mle_retvals or {}
        converged = bool(retvals.get("converged", True))
        message = "; ".join(str(w.message) for w in caught)[:300]
        return res, converged, message

    res, converged, message = once(start_params)
    if not converged and start_params is not None:
        res, converged, message = once(None)
    return res, converged, message


def fit_result(
    name: str,
    res: object,
    converged: bool,
    message: str,
    std_errors: dict[str, float] | None = None,
) -> FitResult:
    """The FitResult of a statsmodels fit (standard errors from it unless given)."""
    params = res.params  # type: ignore[attr-defined]
    names = list(res.model.param_names)  # type: ignore[attr-defined]
    if std_errors is None:
        std_errors = {n: float(v) for n, v in zip(names, res.bse, strict=True)}  # type: ignore[attr-defined]
    return FitResult(
        model=name,
        params={n: float(v) for n, v in zip(names, params, strict=True)},
        std_errors=std_errors,
        loglik=float(res.llf),  # type: ignore[attr-defined]
        converged=converged,
        message=message,
        nobs=int(res.nobs),  # type: ignore[attr-defined]
    )


class ARIMAModel:
    """ARIMA(p, 0, q) + constant on percent log returns (see the module docstring)."""

    name = "arima"

    def __init__(
        self,
        order: tuple[int, int, int] = (1, 0, 1),
        *,
        n_paths: int = 5000,
        seed: int = 0,
        window: int | None = None,
    ) -> None:
        if window is not None and window < 30:
            raise ValueError(f"window must be None or >= 30, got {window}")
        self.window = window  # fit on the last `window` rows (None: all of them)
        if n_paths < 100:
            raise ValueError(f"n_paths must be >= 100, got {n_paths}")
        self.order = check_order(order)
        self.n_paths = n_paths
        self.seed = seed
        self.fit_result: FitResult | None = None
        self._results: object | None = None
        self._params: np.ndarray | None = None
        self._last_close = math.nan
        self._last_ts: pd.Timestamp | None = None

    def fit(self, history: pd.DataFrame) -> FitResult:
        """Fit on the returns of ``history['close']``; warm start from the last fit."""
        history = checked_history(history, min_rows=30)
        if self.window is not None:
            history = history.iloc[-self.window :]
        returns = log_returns_pct(history["close"].to_numpy(dtype=float))
        res, converged, message = fit_arima(returns, self.order, self._params)
        self._results = res
        self._params = np.asarray(res.params)  # type: ignore[attr-defined]
        self._last_close = float(history["close"].iloc[-1])
        self._last_ts = pd.Timestamp(history.index[-1])
        self.fit_result = fit_result(self.name, res, converged, message)
        return self.fit_result

    def update(self, bar: Bar) -> None:
        """Extend the Kalman filter by one return with held parameters (no refit)."""
        if self._results is None:
            raise RuntimeError("ARIMAModel.update called before fit")
        check_bar(bar, self._last_ts)
        ret = return_pct(self._last_close, bar.close)
        self._results = self._results.extend(np.array([ret]))  # type: ignore[attr-defined]
        self._last_close = float(bar.close)
        self._last_ts = bar.ts

    @property
    def next_mean(self) -> float:
        """One-step predicted return (percent) from the filtered state."""
        if self._results is None:
            return math.nan
        return float(np.asarray(self._results.forecast(1))[0])  # type: ignore[attr-defined]

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        """Close interval and joint path range ``steps`` days ahead; never changes state."""
        check_forecast_args(steps, confidence)
        if self._results is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        return state_space_range(
            self.name, self._results, self._last_close, steps, confidence,
            n_paths=self.n_paths, seed=origin_seed(self.seed, self._last_ts),
            status=ModelStatus.ok(),
        )  # fmt: skip
