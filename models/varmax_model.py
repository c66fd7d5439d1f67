"""VAR(p) / VARMA(p, q) of returns and VIX changes, by statsmodels' VARMAX.

Model (Lütkepohl 2005, "New Introduction to Multiple Time Series Analysis", ch. 11;
statsmodels' ``tsa.statespace.varmax.VARMAX``, exact Gaussian likelihood by the Kalman
filter), ``y_t = (r_t, v_t)`` with ``r_t = 100 ln(C_t / C_{t-1})`` and
``v_t = 100 ln(VIX_t / VIX_{t-1})``::

    y_t = c + A_1 y_{t-1} + .. + A_p y_{t-p} + u_t + M_1 u_{t-1} + .. + M_q u_{t-q},
    u_t ~ iid N(0, Σ)

Default order (1, 0), a VAR(1): the VIX change of today moves tomorrow's expected
return (and the reverse), and Σ carries the strong negative return/VIX correlation.
VIX changes are taken in logs because their size scales with the VIX level. Missing VIX
values enter as missing observations (the Kalman filter skips them), so a gap costs
precision, not the model. The return variance is constant (as in ARIMA): the model
contributes a mean, not a volatility forecast.

The sample starts at the first VIX change; with fewer than ``min_vix_obs`` of them the
model falls back to an AR(p) on returns alone and says it is degraded ("no VIX").
New bars are folded in with ``results.extend``; refits warm start from the last estimate.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.varmax import VARMAX

from models.arima_model import fit_arima, fit_result
from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.returns import (
    check_bar,
    check_forecast_args,
    checked_history,
    log_returns_pct,
    return_pct,
    vix_column,
)
from models.state_space_paths import state_space_range


class VARMAXModel:
    """VARMAX of (return, VIX log change) in percent (see the module docstring)."""

    name = "varmax"

    def __init__(
        self,
        order: tuple[int, int] = (1, 0),
        *,
        n_paths: int = 5000,
        seed: int = 0,
        min_vix_obs: int = 200,
    ) -> None:
        if (
            not isinstance(order, tuple)
            or len(order) != 2
            or not all(isinstance(v, int) and v >= 0 for v in order)
            or sum(order) == 0
            or sum(order) > 3
        ):
            raise ValueError(f"order must be (p, q) with 1 <= p + q <= 3, got {order!r}")
        if n_paths < 100:
            raise ValueError(f"n_paths must be >= 100, got {n_paths}")
        self.order = order
        self.n_paths = n_paths
        self.seed = seed
        self.min_vix_obs = min_vix_obs
        self.fit_result: FitResult | None = None
        self._results: object | None = None
        self._uses_vix = False
        self._params: np.ndarray | None = None
        self._fallback_params: np.ndarray | None = None
        self._last_close = math.nan
        self._last_vix: float | None = None
        self._last_ts: pd.Timestamp | None = None
        self._reason = ""

    def fit(self, history: pd.DataFrame) -> FitResult:
        """Fit on ``history`` (``close``, ``vix``); warm start from the last fit."""
        history = checked_history(history, min_rows=30)
        close = history["close"].to_numpy(dtype=float)
        returns = log_returns_pct(close)
        vix = vix_column(history)
        vix_change = 100.0 * np.diff(np.log(vix))  # NaN where either day lacks a VIX
        known = np.flatnonzero(np.isfinite(vix_change))
        n_vix = int(np.isfinite(vix_change[known[0] :]).sum()) if known.size else 0
        if n_vix >= self.min_vix_obs:
            endog = np.column_stack([returns, vix_change])[known[0] :]
            self._results, converged, message = self._fit_varmax(endog)
            self._params = np.asarray(self._results.params)  # type: ignore[attr-defined]
            self._uses_vix = True
            self._reason = ""
        else:
            p, q = self.order
            self._results, converged, message = fit_arima(returns, (p, 0, q), self._fallback_params)
            self._fallback_params = np.asarray(self._results.params)  # type: ignore[attr-defined]
            self._uses_vix = False
            self._reason = (
                f"no VIX: {n_vix} VIX changes, need {self.min_vix_obs}; AR fallback on returns"
            )
        self._last_close = float(close[-1])
        self._last_vix = float(vix[-1]) if np.isfinite(vix[-1]) else None
        self._last_ts = pd.Timestamp(history.index[-1])
        name = self.name if self._uses_vix else f"{self.name} (AR fallback)"
        self.fit_result = fit_result(name, self._results, converged, message)
        return self.fit_result

    def _fit_varmax(self, endog: np.ndarray) -> tuple[object, bool, str]:
        def once(start: np.ndarray | None) -> tuple[object, bool, str]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = VARMAX(endog, order=self.order, trend="c")
                res = model.fit(start_params=start, disp=False, maxiter=200)
            converged = bool((res.mle_retvals or {}).get("converged", True))
            return res, converged, "; ".join(str(w.message) for w in caught)[:300]

        res, converged, message = once(self._params)
        if not converged and self._params is not None:
            res, converged, message = once(None)
        return res, converged, message

    def update(self, bar: Bar) -> None:
        """Extend the Kalman filter by one bar with held parameters (no refit)."""
        if self._results is None:
            raise RuntimeError("VARMAXModel.update called before fit")
        check_bar(bar, self._last_ts)
        ret = return_pct(self._last_close, bar.close)
        if self._uses_vix:
            change = (
                100.0 * math.log(bar.vix / self._last_vix)
                if bar.vix is not None and self._last_vix is not None
                else math.nan
            )
            new = np.array([[ret, change]])
        else:
            new = np.array([ret])
        self._results = self._results.extend(new)  # type: ignore[attr-defined]
        self._last_close = float(bar.close)
        self._last_vix = bar.vix
        self._last_ts = bar.ts

    @property
    def next_mean(self) -> float:
        """One-step predicted return (percent) from the filtered state."""
        if self._results is None:
            return math.nan
        return float(np.asarray(self._results.forecast(1)).reshape(-1)[0])  # type: ignore[attr-defined]

    @property
    def status(self) -> ModelStatus:
        if self._results is None:
            return ModelStatus.failed("not fitted")
        if not self._uses_vix:
            return ModelStatus.degraded(self._reason)
        if self._last_vix is None:
            return ModelStatus.degraded("no VIX at the last bar; its change is filtered")
        return ModelStatus.ok()

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        """Close interval and joint path range ``steps`` days ahead; never changes state."""
        check_forecast_args(steps, confidence)
        if self._results is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        return state_space_range(
            self.name, self._results, self._last_close, steps, confidence,
            n_paths=self.n_paths, seed=self.seed, status=self.status,
        )  # fmt: skip
