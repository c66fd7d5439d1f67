"""Normal / sqrt(h) baselines: VIX-implied, historical volatility and EWMA (RiskMetrics).

All three share one predictive law. With ``C_t`` the close at the origin and ``σ`` the
daily log-return volatility the rule gives, the log price at ``t + h`` is

    ln C_{t+h} ~ N(ln C_t, σ² h)        (driftless, no fitted parameters)

so the central interval at confidence ``c`` is ``C_t exp(± z σ √h)`` with
``z = Φ⁻¹((1 + c)/2)``. The path range treats the log price as a driftless Brownian
motion monitored continuously: ``C_t exp(± X σ √h)`` where ``X`` solves
``P(sup_{s≤1} |W_s| < X) = c`` (``X = 1.959964`` at ``c = 0.9``; QUALITY-PROTOCOL §3).

The rules differ only in ``σ``:

* VIX-implied: ``σ = VIX_t / 100 / √252`` (the VIX close of the origin day);
* historical volatility: sample standard deviation of the last ``window`` close-to-close
  log returns (ddof = 1);
* EWMA (J.P. Morgan RiskMetrics 1996): ``σ²_{t+1|t} = λ σ²_{t|t−1} + (1 − λ) r_t²``,
  ``λ = 0.94``, zero mean.
"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, signal, stats

from models.base import Bar, FitResult, ModelStatus, PriceRange

TRADING_DAYS = 252
# Quantile levels every baseline reports besides its own interval ends.
QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def brownian_stay_probability(x: float, terms: int = 50) -> float:
    """``P(sup_{0≤s≤1} |W_s| < x)`` for standard Brownian motion.

    Series for the exit time of |W| from (−x, x) (Feller 1971, XIV.5 / Borodin–Salminen):
    ``(4/π) Σ_{k≥0} (−1)^k/(2k+1) exp(−(2k+1)² π² / (8x²))``. It converges fast for
    x ≳ 0.5; below that the probability is < 1e-3 and the truncation still holds to 1e-12.
    """
    if x <= 0.0:
        return 0.0
    k = np.arange(terms)
    odd = 2 * k + 1
    series = np.sum((-1.0) ** k / odd * np.exp(-(odd**2) * math.pi**2 / (8.0 * x * x)))
    return float(np.clip(4.0 / math.pi * series, 0.0, 1.0))


@lru_cache(maxsize=64)
def brownian_barrier(confidence: float) -> float:
    """Symmetric barrier ``X`` with ``P(sup |W_s| < X, s ≤ 1) = confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    # The stay probability is 1.4e-6 at 0.3 (the bracket that gives the published figures
    # bit for bit) and 3e-54 at 0.1; at 10 it is 1 to float precision.
    lo = 0.3 if brownian_stay_probability(0.3) < confidence else 0.1
    return float(
        optimize.brentq(lambda x: brownian_stay_probability(x) - confidence, lo, 10.0, xtol=1e-12)
    )


@lru_cache(maxsize=64)
def _levels(tail: float) -> tuple[float, ...]:
    return tuple(sorted({*QUANTILE_LEVELS, tail, 1.0 - tail}))


@lru_cache(maxsize=64)
def _normal_scores(levels: tuple[float, ...]) -> np.ndarray:
    # Cached: scipy.stats.norm.ppf costs ~0.1 ms a call, too much at every origin.
    scores = stats.norm.ppf(levels)
    scores.flags.writeable = False
    return scores


def normal_range(
    model: str,
    anchor: float,
    sigma: float,
    steps: int,
    confidence: float,
    status: ModelStatus,
) -> PriceRange:
    """The shared predictive law (module docstring) as a :class:`PriceRange`."""
    if steps < 1:
        raise ValueError(f"steps must be a positive number of trading days, got {steps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not (math.isfinite(sigma) and sigma > 0.0 and math.isfinite(anchor) and anchor > 0.0):
        return PriceRange.failure(
            model, steps, confidence, anchor, f"no usable volatility (sigma={sigma!r})"
        )
    scale = sigma * math.sqrt(steps)
    tail = (1.0 - confidence) / 2.0
    levels = _levels(tail)
    values = anchor * np.exp(_normal_scores(levels) * scale)
    quantiles = dict(zip(levels, values.tolist(), strict=True))
    barrier = brownian_barrier(confidence) * scale
    return PriceRange(
        model=model,
        horizon=steps,
        confidence=confidence,
        anchor=anchor,
        low=quantiles[tail],
        high=quantiles[1.0 - tail],
        center=anchor,
        path_low=anchor * math.exp(-barrier),
        path_high=anchor * math.exp(barrier),
        quantiles=quantiles,
        status=status,
    )


def _log_returns(close: pd.Series) -> np.ndarray:
    values = close.to_numpy(dtype=np.float64)
    return np.diff(np.log(values))


def _require_history(history: pd.DataFrame, model: str, min_rows: int) -> None:
    if "close" not in history.columns:
        raise ValueError(f"{model}: history needs a 'close' column, got {list(history.columns)}")
    if len(history) < min_rows:
        raise ValueError(f"{model}: history needs at least {min_rows} rows, got {len(history)}")


class VixImpliedNormal:
    """VIX-implied normal rule: ``σ = VIX_t / 100 / √252``; no parameters.

    If the VIX of the latest bar is missing the last known VIX is used (degraded); if no
    VIX was ever seen, the forecast fails with a reason.
    """

    def __init__(self, name: str = "vix_normal") -> None:
        self.name = name
        self._close = math.nan
        self._vix = math.nan
        self._vix_stale = False

    def fit(self, history: pd.DataFrame) -> FitResult:
        _require_history(history, self.name, 1)
        self._close = float(history["close"].iloc[-1])
        vix = history["vix"] if "vix" in history.columns else pd.Series(dtype=float)
        known = vix.dropna()
        self._vix = float(known.iloc[-1]) if len(known) else math.nan
        self._vix_stale = len(known) > 0 and known.index[-1] != history.index[-1]
        return FitResult(self.name, params={}, nobs=len(history))

    def update(self, bar: Bar) -> None:
        self._close = float(bar.close)
        if bar.vix is not None and math.isfinite(bar.vix):
            self._vix = float(bar.vix)
            self._vix_stale = False
        else:
            self._vix_stale = True

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        if not math.isfinite(self._vix):
            return PriceRange.failure(self.name, steps, confidence, self._close, "no VIX yet")
        status = (
            ModelStatus.degraded("VIX missing, last known used")
            if self._vix_stale
            else (ModelStatus.ok())
        )
        sigma = self._vix / 100.0 / math.sqrt(TRADING_DAYS)
        return normal_range(self.name, self._close, sigma, steps, confidence, status)


class HistoricalVolNormal:
    """Historical-volatility normal rule: σ = std (ddof 1) of the last ``window`` returns."""

    def __init__(self, window: int = 20, name: str | None = None) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2 returns, got {window!r}")
        self.window = window
        self.name = name or f"hv{window}_normal"
        self._close = math.nan
        self._returns: deque[float] = deque(maxlen=window)

    def fit(self, history: pd.DataFrame) -> FitResult:
        _require_history(history, self.name, self.window + 1)
        tail = history["close"].iloc[-(self.window + 1) :]
        self._returns = deque(_log_returns(tail).tolist(), maxlen=self.window)
        self._close = float(history["close"].iloc[-1])
        return FitResult(self.name, params={"window": float(self.window)}, nobs=self.window)

    def update(self, bar: Bar) -> None:
        close = float(bar.close)
        if not (math.isfinite(close) and close > 0.0):
            raise ValueError(f"{self.name}: bar close must be a positive number, got {close!r}")
        self._returns.append(math.log(close / self._close))
        self._close = close

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        if len(self._returns) < 2:
            return PriceRange.failure(self.name, steps, confidence, self._close, "not fitted")
        sigma = float(np.std(np.fromiter(self._returns, dtype=np.float64), ddof=1))
        return normal_range(self.name, self._close, sigma, steps, confidence, ModelStatus.ok())


class EwmaNormal:
    """RiskMetrics EWMA normal rule, ``σ²_{t+1|t} = λ σ²_{t|t−1} + (1 − λ) r_t²``.

    ``fit`` starts the recursion at the sample variance of the first ``init`` returns;
    with λ = 0.94 the start is forgotten after a few hundred days.
    """

    def __init__(self, lam: float = 0.94, init: int = 20, name: str = "ewma_normal") -> None:
        if not 0.0 < lam < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {lam!r}")
        self.lam = lam
        self.init = init
        self.name = name
        self._close = math.nan
        self._var = math.nan  # σ²_{t+1|t}: already includes the latest return

    def fit(self, history: pd.DataFrame) -> FitResult:
        _require_history(history, self.name, self.init + 1)
        r = _log_returns(history["close"])
        start = float(np.mean(r[: self.init] ** 2))
        # lfilter runs s_t = λ s_{t−1} + (1 − λ) r_t² over the whole sample in C.
        var, _ = signal.lfilter([1.0 - self.lam], [1.0, -self.lam], r**2, zi=[self.lam * start])
        self._var = float(var[-1])
        self._close = float(history["close"].iloc[-1])
        return FitResult(self.name, params={"lambda": self.lam}, nobs=len(r))

    def update(self, bar: Bar) -> None:
        close = float(bar.close)
        if not (math.isfinite(close) and close > 0.0):
            raise ValueError(f"{self.name}: bar close must be a positive number, got {close!r}")
        r = math.log(close / self._close)
        self._var = self.lam * self._var + (1.0 - self.lam) * r * r
        self._close = close

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        sigma = math.sqrt(self._var) if self._var >= 0.0 else math.nan
        return normal_range(self.name, self._close, sigma, steps, confidence, ModelStatus.ok())
