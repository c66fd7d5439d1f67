"""Simulated daily histories with known parameters, for the models' recovery tests.

Every generator is seeded and returns a history frame in the shape the models take
(:data:`models.base.HISTORY_COLUMNS`, business-day index). Bars come from a path on a
grid of ``substeps`` points per day, so open, high, low and close are those of a real
path (the open is the previous close: no overnight gap). The grid's high and low are a
little inside the continuous path's; the models only use them as regressors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.base import ForecastModel
from models.validation import bar_at

TRADING_DAYS = 252


def bars_from_days(
    day_sd: np.ndarray,
    jumps: np.ndarray,
    rng: np.random.Generator,
    *,
    substeps: int = 16,
    start_price: float = 100.0,
) -> pd.DataFrame:
    """OHLC of log-price paths: day ``t`` diffuses with s.d. ``day_sd[t]`` and adds ``jumps[t]``.

    A day's jump lands at a uniformly drawn grid step, so it moves the close, the range
    and the close-to-close return alike.
    """
    n = len(day_sd)
    steps = rng.standard_normal((n, substeps)) * (day_sd / np.sqrt(substeps))[:, None]
    where = rng.integers(0, substeps, n)
    steps[np.arange(n), where] += jumps
    return _bars(steps, start_price)


def _bars(steps: np.ndarray, start_price: float) -> pd.DataFrame:
    """OHLC from each day's grid of log-price steps (row = day); no VIX."""
    n = steps.shape[0]
    within = np.cumsum(steps, axis=1)  # log price relative to the day's open
    log_open = np.log(start_price) + np.r_[0.0, np.cumsum(within[:, -1])[:-1]]
    log_close = log_open + within[:, -1]
    log_high = log_open + np.maximum(within.max(axis=1), 0.0)
    log_low = log_open + np.minimum(within.min(axis=1), 0.0)
    return pd.DataFrame(
        {
            "open": np.exp(log_open),
            "high": np.exp(log_high),
            "low": np.exp(log_low),
            "close": np.exp(log_close),
            "vix": np.nan,
        },
        index=pd.bdate_range("2005-01-03", periods=n, name="date"),
    )


def leverage_history(
    n: int, *, sd: float, phi: float, theta: float, seed: int, substeps: int = 16
) -> pd.DataFrame:
    """Log-variance AR(1) driven by falls only: a pure leverage effect.

    ``ln σ²_{t+1} = ln sd² + φ (ln σ²_t − ln sd²) + θ (max(−z_t, 0) − E max(−z, 0))`` with
    ``z_t`` day t's standardised return: a fall raises tomorrow's variance, a rise of the
    same size does not (no symmetric ARCH term).
    """
    rng = np.random.default_rng(seed)
    normals = rng.standard_normal((n, substeps))
    z = normals.sum(axis=1) / np.sqrt(substeps)
    mean_neg = 1.0 / np.sqrt(2.0 * np.pi)  # E max(−z, 0) for z ~ N(0, 1)
    log_var = np.empty(n)
    log_var[0] = 2.0 * np.log(sd)
    for t in range(1, n):
        shock = theta * (max(-z[t - 1], 0.0) - mean_neg)
        log_var[t] = 2.0 * np.log(sd) + phi * (log_var[t - 1] - 2.0 * np.log(sd)) + shock
    steps = normals * (np.exp(log_var / 2) / np.sqrt(substeps))[:, None]
    return _bars(steps, 100.0)


def merton_history(
    n: int, *, sigma: float, lam: float, mu_j: float, sigma_j: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Merton jump diffusion in trading days (daily σ, λ per day, J ~ N(μ_J, σ_J²)).

    At most one jump a day (a day jumps with probability ``1 − e^{−λ}``): daily bars
    cannot tell two jumps in a day from one, and the rare double (probability ``λ²/2``
    a day) would make the estimated ``σ_J`` heavy-tailed without testing anything more.
    Returns the history and the jump of each day (0 on days without one). The VIX column
    is the constant that prices the process's total variance (no risk premium).
    """
    rng = np.random.default_rng(seed)
    jumped = rng.random(n) < -np.expm1(-lam)
    jumps = np.where(jumped, mu_j + sigma_j * rng.standard_normal(n), 0.0)
    history = bars_from_days(np.full(n, sigma), jumps, rng)
    total_var = sigma**2 + lam * (mu_j**2 + sigma_j**2)
    history["vix"] = 100.0 * np.sqrt(TRADING_DAYS * total_var)
    return history, jumps


def vix_path(n: int, rng: np.random.Generator, *, mean: float = 16.0, phi: float = 0.98,
             sd_log: float = 0.3) -> np.ndarray:  # fmt: skip
    """A stationary log-AR(1) VIX around ``mean`` with log s.d. ``sd_log``."""
    eps = rng.standard_normal(n) * sd_log * np.sqrt(1 - phi**2)
    log_vix = np.empty(n)
    log_vix[0] = np.log(mean) + sd_log * rng.standard_normal()
    for t in range(1, n):
        log_vix[t] = np.log(mean) + phi * (log_vix[t - 1] - np.log(mean)) + eps[t]
    return np.exp(log_vix)


def vix_driven_history(n: int, *, c: float, seed: int) -> pd.DataFrame:
    """Diffusion whose day-``t+1`` variance is ``c · (VIX_t/100)² / 252``.

    ``c < 1`` is a variance risk premium: implied variance over-predicts realised by 1/c.
    """
    rng = np.random.default_rng(seed)
    vix = vix_path(n, rng)
    implied = (vix / 100.0) ** 2 / TRADING_DAYS
    day_var = np.r_[c * implied[0], c * implied[:-1]]
    history = bars_from_days(np.sqrt(day_var), np.zeros(n), rng)
    history["vix"] = vix
    return history


def sv_history(
    n: int, *, mu: float, phi: float, sigma: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Taylor's SV model in percent returns: ``y = exp(h/2) ε``, ``h`` a Gaussian AR(1).

    ``h_t = μ + φ (h_{t-1} − μ) + σ η_t`` started from its stationary law. Returns the
    history (closes from ``y``; range from a 16-step path of that day's volatility) and
    ``h``.
    """
    rng = np.random.default_rng(seed)
    h = np.empty(n)
    h[0] = mu + sigma / np.sqrt(1 - phi**2) * rng.standard_normal()
    eta = rng.standard_normal(n) * sigma
    for t in range(1, n):
        h[t] = mu + phi * (h[t - 1] - mu) + eta[t]
    history = bars_from_days(np.exp(h / 2) / 100.0, np.zeros(n), rng)
    history["vix"] = np.sqrt(TRADING_DAYS * np.exp(h))  # 100 · annualised σ_t
    return history, h


def one_step_hits(model: ForecastModel, history: pd.DataFrame, first: int,
                  confidence: float = 0.9) -> np.ndarray:  # fmt: skip
    """Fit on rows ``0..first``, then walk: forecast one step, score it, ``update``.

    Returns, per origin ``first..n-2``, whether the next close fell inside the interval.
    """
    model.fit(history.iloc[: first + 1])
    closes = history["close"].to_numpy()
    hits = []
    for t in range(first, len(history) - 1):
        if t > first:
            model.update(bar_at(history, t))
        hits.append(model.forecast(1, confidence).contains(float(closes[t + 1])))
    return np.array(hits)
