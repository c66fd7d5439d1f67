"""Quantile regression of the close and of the path's extremes on range-based volatility.

For horizon ``h`` and tail level ``τ`` the member fits, by linear quantile regression
(Koenker & Bassett 1978, "Regression quantiles", Econometrica 46(1)), the conditional
``τ``-quantile of

    ln(C_{t+h} / C_t),   ln(min Low_{t+1..t+h} / C_t),   ln(max High_{t+1..t+h} / C_t)

on what is known at the close of ``t``: the range-based realised volatility
(:func:`models.realized_variance.daily_realized_variance`, Garman–Klass plus the
overnight return) averaged over 1, 5 and 22 days, in volatility units, and the mean
fall of the close over the last 5 days (the leverage effect), plus a constant:

    q_τ(t) = β0 + β1 √RV^d_t + β2 √RV^w_t + β3 √RV^m_t + β4 min(r, 0)^w_t.

Each tail has its own coefficients, so how far the lower tail reaches after a fall, or
how much of the upper tail a calm month leaves, is read off the data instead of following
from one variance and a symmetric shape; regressors in volatility units make a quantile
linear in the volatility, as it is for any location-scale law (the quantile-HAR of Žikeš
& Baruník 2016, "Semi-parametric conditional quantile models for financial returns and
realized volatility", J. Fin. Econometrics 14(1)). The close interval is
``[C e^{q_{α/2}}, C e^{q_{1−α/2}}]``; the path range takes the ``α/2`` quantile of the
path's minimum and the ``1 − α/2`` quantile of its maximum: breaching both sides within
``h`` days is rare, so the joint coverage is close to ``1 − α``, and the ensemble's
calibration takes the rest. Horizons other than the fitted ones scale the nearest
fitted horizon's log quantiles by ``√(steps / h)``. The centre is the middle of the close
interval in logs.

It uses no VIX, so it is fitted on the whole history (from 1999 on the bundled data),
which the regressions on the VIX (from 2014) cannot use; the other members bring the VIX.
Chosen on walk-forwards before 2015, replaying the ensemble over recorded member ranges:
with this member at base weight 0.45 the ensemble's mean interval score over the four
tables fell 1.00 % on 2010–2013 (no VIX) and 0.33 % on 2014 (VIX); alone, uncalibrated, it
scored 1.8 % below the whole ensemble on 2010–2013 and 1.0 % above it on 2014. Without the
leverage term the ensemble gained only 0.26–0.37 %; with the mean falls over 1, 5 and 22
days, a rolling ten-year fit, or more daily regressors (the close's place in the range, the
overnight gap), about the same.

Fitting. statsmodels' :class:`~statsmodels.regression.quantile_regression.QuantReg`
(iteratively reweighted least squares, 40–110 ms on 4000 rows); when it stops at its
iteration limit (10 of 408 fits in refits across 2010–2018 of the S&P data), the exact
linear programme is solved by HiGHS (:func:`scipy.optimize.linprog`, ~1 s) instead, so a
forecast never rests on an unconverged fit. Levels other than the fitted confidence's are
fitted on first use and kept until the next ``fit``. Deterministic: no simulation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sparse
from scipy.optimize import linprog
from statsmodels.regression.quantile_regression import QuantReg
from statsmodels.tools.sm_exceptions import IterationLimitWarning

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.realized_variance import HarFeatures, has_daily_range
from models.returns import check_bar, check_forecast_args, checked_history

REGRESSORS = ("const", "vol_d", "vol_w", "vol_m", "fall_w")
TARGETS = ("close_lo", "close_hi", "path_lo", "path_hi")
_TAIL_ROWS = 40  # the regressors need the last 22 rows; keep a little more
_FIRST_ROW = 22  # the first row with a full month of realised variance behind it


def design(features: HarFeatures, rows: np.ndarray) -> np.ndarray:
    """The regressors of :data:`REGRESSORS` for ``rows`` (volatility in decimal units)."""
    assert features.neg_w is not None
    return np.column_stack(
        [
            np.ones(len(rows)),
            np.exp(features.rv_d[rows] / 2),
            np.exp(features.rv_w[rows] / 2),
            np.exp(features.rv_m[rows] / 2),
            features.neg_w[rows],
        ]
    )


@dataclass(frozen=True)
class QuantileFit:
    """One regression quantile: coefficients, their standard errors, how it was solved."""

    coef: np.ndarray
    std_errors: np.ndarray  # statsmodels' kernel sandwich (NaN if only the LP solved it)
    solver: str  # "irls" or "highs"


def fit_quantile(y: np.ndarray, x: np.ndarray, q: float, *, max_iter: int = 2000) -> QuantileFit:
    """The ``q`` regression quantile of ``y`` on ``x`` (IRLS, exact LP if IRLS stalls)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IterationLimitWarning)
        res = QuantReg(y, x).fit(q=q, max_iter=max_iter)
    if not any(issubclass(w.category, IterationLimitWarning) for w in caught):
        return QuantileFit(np.asarray(res.params), np.asarray(res.bse), "irls")
    return QuantileFit(_lp_quantile(y, x, q), np.full(x.shape[1], np.nan), "highs")


def _lp_quantile(y: np.ndarray, x: np.ndarray, q: float) -> np.ndarray:
    """min Σ q·u + (1 − q)·v subject to x β + u − v = y, u, v ≥ 0 (β free)."""
    n, k = x.shape
    cost = np.r_[np.zeros(k), np.full(n, q), np.full(n, 1.0 - q)]
    eye = sparse.identity(n, format="csr")
    a_eq = sparse.hstack([sparse.csr_matrix(x), eye, -eye], format="csr")
    bounds = [(None, None)] * k + [(0.0, None)] * (2 * n)
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"quantile regression (q={q}) did not solve: {res.message}")
    return np.asarray(res.x[:k])


@dataclass(frozen=True)
class _Sample:
    """One horizon's regressors and targets (rows whose outcome lies inside the history)."""

    x: np.ndarray
    close: np.ndarray
    path_min: np.ndarray
    path_max: np.ndarray


def horizon_sample(history: pd.DataFrame, features: HarFeatures, h: int) -> _Sample:
    """Rows ``t`` from 22 with ``t + h`` inside ``history``: no outcome after the last row."""
    c = np.log(history["close"].to_numpy(float))
    lo = np.log(history["low"].to_numpy(float))
    hi = np.log(history["high"].to_numpy(float))
    t = np.arange(_FIRST_ROW, len(c) - h)
    ahead = t[:, None] + np.arange(1, h + 1)[None, :]
    close = c[t + h] - c[t]
    path_min = lo[ahead].min(axis=1) - c[t]
    path_max = hi[ahead].max(axis=1) - c[t]
    x = design(features, t)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(close) & np.isfinite(path_min)
    ok &= np.isfinite(path_max)
    return _Sample(x[ok], close[ok], path_min[ok], path_max[ok])


class QuantileRegressionModel:
    """The ``quantile_regression`` member (see the module docstring)."""

    name = "quantile_regression"

    def __init__(
        self, *, horizons: tuple[int, ...] = (1, 5), confidence: float = 0.9, min_obs: int = 250
    ) -> None:
        if not horizons or min(horizons) < 1:
            raise ValueError(f"horizons must be positive trading-day counts, got {horizons!r}")
        check_forecast_args(1, confidence)
        if min_obs < 50:
            raise ValueError(f"min_obs must be >= 50, got {min_obs}")
        self.horizons = tuple(sorted(set(horizons)))
        self.confidence = confidence
        self.min_obs = min_obs
        self._samples: dict[int, _Sample] = {}
        # (h, confidence) -> fits in TARGETS order; other confidences are added on first
        # use (a memo of the same fit, not new state: forecasts do not depend on the order).
        self._fits: dict[tuple[int, float], tuple[QuantileFit, ...]] = {}
        self._tail: pd.DataFrame | None = None
        self._x_now: np.ndarray | None = None
        self._last_ts: pd.Timestamp | None = None

    # -- verbs ------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> FitResult:
        history = checked_history(history, min_rows=self.min_obs + max(self.horizons) + _FIRST_ROW)
        if not has_daily_range(history):
            raise ValueError(
                "needs daily open, high and low that form a range on every bar "
                "(its regressors are the range-based realised volatility)"
            )
        features = HarFeatures.from_history(history)
        samples = {h: horizon_sample(history, features, h) for h in self.horizons}
        short = {h: len(s.close) for h, s in samples.items() if len(s.close) < self.min_obs}
        if short:
            raise ValueError(f"usable rows per horizon {short}; need at least {self.min_obs}")
        self._samples = samples
        self._fits = {}
        for h in self.horizons:
            self._fits[(h, self.confidence)] = self._fit_tails(h, self.confidence)
        self._tail = history.iloc[-_TAIL_ROWS:][["open", "high", "low", "close", "vix"]].copy()
        self._refresh_regressors()
        self._last_ts = pd.Timestamp(history.index[-1])
        params: dict[str, float] = {}
        errors: dict[str, float] = {}
        solvers: list[str] = []
        for (h, _), fits in self._fits.items():
            for target, f in zip(TARGETS, fits, strict=True):
                for reg, c, se in zip(REGRESSORS, f.coef, f.std_errors, strict=True):
                    params[f"h{h}.{target}.{reg}"] = float(c)
                    errors[f"h{h}.{target}.{reg}"] = float(se)
                if f.solver != "irls":
                    solvers.append(f"h{h}.{target}: IRLS stalled, solved as a linear programme")
        return FitResult(self.name, params, errors, nobs=len(history), message="; ".join(solvers))

    def update(self, bar: Bar) -> None:
        if self._tail is None:
            raise RuntimeError("fit() before update()")
        check_bar(bar, self._last_ts)
        self._tail = pd.concat([self._tail.iloc[-(_TAIL_ROWS - 1) :], bar.to_frame()])
        self._refresh_regressors()
        self._last_ts = bar.ts

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        """Close interval and path range ``steps`` days ahead; never changes the forecast
        state (a level not fitted yet is fitted and kept)."""
        check_forecast_args(steps, confidence)
        if self._tail is None or self._x_now is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        anchor = float(self._tail["close"].iloc[-1])
        h = min(self.horizons, key=lambda k: abs(k - steps))
        fits = self._fits.get((h, confidence))
        if fits is None:
            fits = self._fits[(h, confidence)] = self._fit_tails(h, confidence)
        if not np.isfinite(self._x_now).all():
            return PriceRange.failure(
                self.name, steps, confidence, anchor, "the last bars give no realised volatility"
            )
        scale = math.sqrt(steps / h)
        q_lo, q_hi, p_lo, p_hi = (scale * float(self._x_now @ f.coef) for f in fits)
        if not q_lo < 0.0 < q_hi:
            return PriceRange.failure(
                self.name, steps, confidence, anchor,
                f"quantiles crossed at these regressors (log {q_lo:.4f} .. {q_hi:.4f})",
            )  # fmt: skip
        alpha = 1.0 - confidence
        low, high = anchor * math.exp(q_lo), anchor * math.exp(q_hi)
        return PriceRange(
            self.name, steps, confidence, anchor, low, high, anchor * math.exp((q_lo + q_hi) / 2),
            path_low=anchor * math.exp(min(p_lo, q_lo)),
            path_high=anchor * math.exp(max(p_hi, q_hi)),
            quantiles={alpha / 2: low, 1 - alpha / 2: high}, status=ModelStatus.ok(),
        )  # fmt: skip

    # -- internals --------------------------------------------------------------------

    def _fit_tails(self, h: int, confidence: float) -> tuple[QuantileFit, ...]:
        s = self._samples[h]
        a = (1.0 - confidence) / 2
        return (
            fit_quantile(s.close, s.x, a),
            fit_quantile(s.close, s.x, 1 - a),
            fit_quantile(s.path_min, s.x, a),
            fit_quantile(s.path_max, s.x, 1 - a),
        )

    def _refresh_regressors(self) -> None:
        assert self._tail is not None
        features = HarFeatures.from_history(self._tail)
        self._x_now = design(features, np.array([len(self._tail) - 1]))[0]
