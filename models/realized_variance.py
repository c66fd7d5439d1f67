"""Variance forecasts from the VIX corrected for the variance risk premium.

The VIX is the market's 30-day implied volatility; it over-predicts the volatility that
is then realised (the variance risk premium: on S&P 500 data implied variance exceeds
realised variance on average, e.g. Carr & Wu 2009, "Variance risk premiums", RFS 22(3)).
The correction here is a regression of the variance realised over the next ``h`` days on
what is known at the close of ``t``, in logs (a HAR model with the VIX as in Corsi 2009,
"A simple approximate long-memory model of realized volatility", J. Fin. Econometrics
7(2), and its implied-volatility extensions):

    ln RV_{t+1..t+h} = b0 + b1 ln(VIX²_t / 252) + b2 ln RV^d_t + b3 ln RV^w_t + b4 ln RV^m_t + e,

optionally with leverage terms (see :func:`fit_har`), ``RV_{t+1..t+h}`` the mean squared
close-to-close log return over the next ``h`` days, and ``RV^{d,w,m}`` the daily realised
variance averaged over 1, 5 and 22 days. The daily realised variance uses the day's
range (Garman & Klass 1980, "On the estimation of security price volatilities from
historical data", J. Business 53(1)) plus the squared overnight return, which is several
times more efficient than the squared return alone.
The forecast is ``exp(fitted) · mean(exp(residuals))``: Duan's (1983, "Smearing
estimate: a nonparametric retransformation method", JASA 78(383)) retransformation of a
log-scale mean, which unlike ``exp(s²/2)`` does not assume normal residuals (at h = 1 the
residual is close to a log χ²₁, far from normal). Without the VIX (not yet known, or
missing) the same regression without ``b1`` is used, and the caller reports the forecast
as degraded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADING_DAYS = 252
_LN2 = math.log(2.0)
_FLOOR = 1e-10  # variance floor before logs (a flat day has zero range)


def daily_realized_variance(history: pd.DataFrame) -> np.ndarray:
    """Garman–Klass range variance plus the squared overnight return, per row (decimal²).

    The first row has no previous close, so its overnight part is 0.
    """
    o = history["open"].to_numpy(float)
    h = history["high"].to_numpy(float)
    lo = history["low"].to_numpy(float)
    c = history["close"].to_numpy(float)
    gk = 0.5 * np.log(h / lo) ** 2 - (2 * _LN2 - 1) * np.log(c / o) ** 2
    overnight = np.zeros_like(c)
    overnight[1:] = np.log(o[1:] / c[:-1]) ** 2
    return np.maximum(gk, 0.0) + overnight


def bar_realized_variance(
    open_: float, high: float, low: float, close: float, prev_close: float
) -> float:
    """One bar's :func:`daily_realized_variance` (decimal²); NaN if its prices are not a range.

    The same arithmetic as the array version, so a filter updated bar by bar matches one
    run over the history.
    """
    prices = (open_, high, low, close, prev_close)
    if not all(math.isfinite(p) and p > 0 for p in prices) or not (
        low <= min(open_, close) and high >= max(open_, close)
    ):
        return math.nan
    o, h, lo, c = (np.array([v]) for v in (open_, high, low, close))
    gk = 0.5 * np.log(h / lo) ** 2 - (2 * _LN2 - 1) * np.log(c / o) ** 2
    overnight = np.log(o / np.array([prev_close])) ** 2
    return float((np.maximum(gk, 0.0) + overnight)[0])


def has_daily_range(history: pd.DataFrame, min_share: float = 0.9) -> bool:
    """Whether ``history`` carries a usable intraday range on every row.

    Open, high and low present, finite and positive, ``low <= min(open, close)`` and
    ``high >= max(open, close)`` on every row, and ``high > low`` on at least
    ``min_share`` of them (a file with ``open = high = low = close`` has no range at all).
    """
    if not {"open", "high", "low", "close"} <= set(history.columns):
        return False
    o, h, lo, c = (history[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & (lo > 0) & (o > 0)
    if not finite.all():
        return False
    if not ((lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()):
        return False
    return bool(np.mean(h > lo) >= min_share)


@dataclass(frozen=True)
class HarFeatures:
    """Per-row regressors (logs); ``vix`` is NaN where the VIX is not known."""

    rv_d: np.ndarray
    rv_w: np.ndarray
    rv_m: np.ndarray
    vix: np.ndarray
    neg_d: np.ndarray | None = None  # negative part of the close-to-close return (decimal)
    neg_w: np.ndarray | None = None
    neg_m: np.ndarray | None = None

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> HarFeatures:
        rv = pd.Series(daily_realized_variance(history))
        logs = [np.log(np.maximum(rv.rolling(k, min_periods=1).mean().to_numpy(), _FLOOR))
                for k in (1, 5, 22)]  # fmt: skip
        vix = history["vix"].to_numpy(float)
        implied = np.log(np.maximum(np.square(vix / 100.0) / TRADING_DAYS, _FLOOR))
        implied[~np.isfinite(vix)] = np.nan
        c = history["close"].to_numpy(float)
        neg = pd.Series(np.minimum(np.r_[0.0, np.diff(np.log(c))], 0.0))
        negs = [neg.rolling(k, min_periods=1).mean().to_numpy() for k in (1, 5, 22)]
        return cls(logs[0], logs[1], logs[2], implied, *negs)

    def columns(self, idx: np.ndarray, with_vix: bool, leverage: bool = False) -> np.ndarray:
        cols = [np.ones(len(idx)), self.rv_d[idx], self.rv_w[idx], self.rv_m[idx]]
        if leverage:
            assert self.neg_d is not None and self.neg_w is not None and self.neg_m is not None
            cols += [self.neg_d[idx], self.neg_w[idx], self.neg_m[idx]]
        if with_vix:
            cols.append(self.vix[idx])
        return np.column_stack(cols)

    def row(self, i: int, with_vix: bool, leverage: bool = False) -> np.ndarray:
        return self.columns(np.array([i]), with_vix, leverage)[0]


@dataclass(frozen=True)
class HarFit:
    """Coefficients of one horizon's regression, with or without the VIX term."""

    horizon: int
    with_vix: bool
    coef: np.ndarray
    smearing: float  # mean(exp(residual))
    nobs: int

    def variance(self, x: np.ndarray) -> float:
        """Forecast mean daily variance (decimal²) over the horizon for regressors ``x``."""
        return math.exp(float(x @ self.coef)) * self.smearing


def fit_har(
    history: pd.DataFrame,
    horizon: int,
    *,
    with_vix: bool,
    features: HarFeatures | None = None,
    min_obs: int = 60,
    leverage: bool = False,
) -> HarFit:
    """Least squares of the log future variance on the regressors, rows with a full target.

    Uses only rows ``t`` whose target ``t+1..t+h`` lies inside ``history`` (no look-ahead
    past the last row). Raises ValueError when fewer than ``min_obs`` rows qualify.
    ``leverage`` adds the mean falls ``min(r, 0)`` over 1, 5 and 22 days as regressors
    (before the VIX, which stays the last coefficient).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    f = features or HarFeatures.from_history(history)
    c = history["close"].to_numpy(float)
    r2 = np.r_[np.nan, np.diff(np.log(c)) ** 2]
    n = len(c)
    # target_t = mean(r²_{t+1..t+h}), defined for t <= n-1-h
    csum = np.r_[0.0, np.nancumsum(r2)]
    t = np.arange(0, n - horizon)
    target = (csum[t + horizon + 1] - csum[t + 1]) / horizon
    rows = f.columns(t, with_vix, leverage)
    y = np.log(np.maximum(target, _FLOOR))
    ok = np.all(np.isfinite(rows), axis=1) & np.isfinite(y) & (t >= 22)
    if ok.sum() < min_obs:
        raise ValueError(
            f"{int(ok.sum())} usable rows for the h={horizon} variance regression"
            f"{' with the VIX' if with_vix else ''}; need at least {min_obs}"
        )
    coef, *_ = np.linalg.lstsq(rows[ok], y[ok], rcond=None)
    resid = y[ok] - rows[ok] @ coef
    return HarFit(horizon, with_vix, coef, float(np.mean(np.exp(resid))), int(ok.sum()))
