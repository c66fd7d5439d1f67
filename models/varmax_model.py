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

Estimation: a pure VAR (q = 0) with complete data is estimated by OLS (statsmodels
``VAR``), which *is* the Gaussian maximum-likelihood estimate conditional on the first p
observations (Lütkepohl 2005, sec. 3.4); the exact likelihood's optimum differs by
~1e-3 in each parameter at n = 1,000 (log-likelihood by 7e-4), while statsmodels' numerical
optimisation of it took 2.5 s warm and 18 s cold here, once a week in the stream. The
VARMAX results object is then built at those parameters (``filter``). Standard errors: OLS
for the coefficients, the delta method through the Cholesky factor for the covariance
(Var vech(Σ̂) = 2 D⁺(Σ ⊗ Σ)D⁺ᵀ / T, Lütkepohl 2005, Prop. 3.4). A VARMA (q > 0), or a sample
with missing VIX values, goes through the exact likelihood as before.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

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
    origin_seed,
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
        std_errors = None
        if n_vix >= self.min_vix_obs:
            endog = np.column_stack([returns, vix_change])[known[0] :]
            if self.order[1] == 0 and np.isfinite(endog).all():
                self._results, std_errors = self._fit_var_ols(endog)
                converged, message = True, ""
            else:
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
        self.fit_result = fit_result(name, self._results, converged, message, std_errors)
        return self.fit_result

    def _fit_var_ols(self, endog: np.ndarray) -> tuple[object, dict[str, float]]:
        from statsmodels.tsa.api import VAR

        p = self.order[0]
        ols = VAR(endog).fit(p, trend="c")
        sigma = np.asarray(ols.sigma_u_mle)  # the ML (1/T) covariance, as VARMAX's
        chol = np.linalg.cholesky(sigma)
        # VARMAX's parameter order: intercepts, then each equation's lag coefficients
        # (L1.y1.y1, L1.y2.y1, ...), then the lower Cholesky factor row by row.
        coefs = np.asarray(ols.coefs)  # (p, k, k): coefs[l][i, j] = effect of y_j on y_i
        k = endog.shape[1]
        ar = np.concatenate([coefs[:, i, :].ravel() for i in range(k)])
        rows, cols = np.tril_indices(k)
        params = np.concatenate([np.asarray(ols.intercept), ar, chol[rows, cols]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = VARMAX(endog, order=self.order, trend="c").filter(params, cov_type="none")
        names = list(results.model.param_names)
        stderr = np.asarray(ols.stderr)  # (1 + k p, k): rows const, L1.y1, L1.y2, ...
        coef_se = np.concatenate([stderr[1:, i] for i in range(k)])
        se = np.concatenate([stderr[0], coef_se, _cholesky_std_errors(sigma, int(ols.nobs))])
        return results, dict(zip(names, (float(v) for v in se), strict=True))

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
        self._results = _extend(self._results, new)
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
            n_paths=self.n_paths, seed=origin_seed(self.seed, self._last_ts), status=self.status,
        )  # fmt: skip


def _extend(results: Any, new: np.ndarray) -> Any:
    """``results.extend(new)`` without the covariance of the parameters.

    statsmodels' ``VARMAXResults.extend`` re-filters the new rows at the held parameters
    but, unlike the generic ``MLEResults.extend``, computes the parameters' numerical
    covariance again on them (~20 likelihood evaluations: 85 % of a bar's cost in the
    ensemble's warm-up, measured). This is its code path (start from the last predicted
    state, continue the trend's time index) with ``cov_type="none"``.
    """
    from statsmodels.tsa.statespace.initialization import Initialization

    model = results.model.clone(new, trend_offset=results.nobs + results.model.trend_offset)
    model.ssm.initialization = Initialization(
        model.k_states,
        "known",
        constant=results.predicted_state[..., -1],
        stationary_cov=results.predicted_state_cov[..., -1],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.filter(results.params, cov_type="none")


def _cholesky_std_errors(sigma: np.ndarray, nobs: int) -> np.ndarray:
    """Asymptotic standard errors of vech(chol(Σ̂)) (lower factor, row by row) for the ML
    covariance of Gaussian residuals: the delta method on Var vech(Σ̂) = 2 D⁺(Σ⊗Σ)D⁺ᵀ / T."""
    k = sigma.shape[0]
    rows, cols = np.tril_indices(k)
    dup = np.zeros((k * k, len(rows)))  # duplication matrix: vec(S) = D vech(S)
    for n, (i, j) in enumerate(zip(rows, cols, strict=True)):
        dup[i * k + j, n] = dup[j * k + i, n] = 1.0
    dup_plus = np.linalg.pinv(dup)
    cov_vech = 2.0 * dup_plus @ np.kron(sigma, sigma) @ dup_plus.T / nobs
    # Jacobian of vech(chol(S)) with respect to vech(S), by central differences (exact
    # enough: chol is smooth at a positive-definite S, and k is 2 here).
    base = sigma[rows, cols]
    jac = np.empty((len(rows), len(rows)))
    for n in range(len(rows)):
        h = 1e-6 * max(abs(base[n]), 1.0)
        cols_out = []
        for sign in (1.0, -1.0):
            s = sigma.copy()
            s[rows[n], cols[n]] += sign * h
            if rows[n] != cols[n]:
                s[cols[n], rows[n]] += sign * h
            cols_out.append(np.linalg.cholesky(s)[rows, cols])
        jac[:, n] = (cols_out[0] - cols_out[1]) / (2 * h)
    return np.sqrt(np.diag(jac @ cov_vech @ jac.T))
