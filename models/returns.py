"""Returns and input checks shared by the econometric models.

The quality protocol fits GARCH and ARIMA models to close-to-close log returns in
percent, ``100 * ln(C_t / C_{t-1})``, and uses the VIX as an implied daily variance in
the same units, ``VIX**2 / 252`` (VIX is an annualised volatility in percent).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.base import Bar

TRADING_DAYS = 252


def log_returns_pct(close: np.ndarray) -> np.ndarray:
    """``100 * ln(C_t / C_{t-1})`` for ``t = 1 .. n-1``."""
    return 100.0 * np.diff(np.log(np.asarray(close, dtype=float)))


def return_pct(previous_close: float, close: float) -> float:
    """One close-to-close log return in percent."""
    return 100.0 * math.log(close / previous_close)


def implied_daily_variance(vix: np.ndarray | float) -> np.ndarray | float:
    """The VIX as a daily variance of percent returns: ``VIX**2 / 252``."""
    return np.square(vix) / TRADING_DAYS


def checked_history(history: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """Check a history frame (columns, order, prices) and return it, with an all-NaN
    ``vix`` column added if it has none.

    ``close`` must be finite and positive on every row; ``open``, ``high``, ``low`` and
    ``vix`` may be missing (NaN, or no column: a close-only history) but where present
    must be finite and positive, with ``low <= high``. The members' lenient form of
    :func:`models.history.canonical_history` (which the ensemble and the data sources use):
    a member also fits on a close-only frame, and refuses unsorted dates instead of sorting.
    """
    if not isinstance(history, pd.DataFrame):
        raise TypeError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    if "close" not in history.columns:
        raise ValueError(
            f"history needs a 'close' column (and optionally 'vix'); got {list(history.columns)}"
        )
    if len(history) < min_rows:
        raise ValueError(f"need at least {min_rows} bars of history, got {len(history)}")
    if not history.index.is_monotonic_increasing or history.index.has_duplicates:
        index = history.index
        ok = np.r_[True, np.asarray(index[1:] > index[:-1], dtype=bool)]
        bad = int(np.argmin(ok))  # the first row not after the one before it
        raise ValueError(
            "history index must be strictly increasing (one row per date): row "
            f"{bad} ({index[bad]}) is not after row {bad - 1} ({index[bad - 1]})"
        )
    close = history["close"].to_numpy(dtype=float)
    bad = ~np.isfinite(close) | (close <= 0)
    if bad.any():
        first = history.index[int(np.argmax(bad))]
        raise ValueError(f"history 'close' must be finite and > 0; bad value at {first}")
    for col in ("open", "high", "low", "vix"):
        if col not in history.columns:
            continue
        values = history[col].to_numpy(dtype=float)
        bad = ~np.isnan(values) & (~np.isfinite(values) | (values <= 0))
        if bad.any():
            first = history.index[int(np.argmax(bad))]
            raise ValueError(f"history '{col}' must be > 0 or NaN (missing); bad value at {first}")
    if "high" in history.columns and "low" in history.columns:
        inverted = history["low"].to_numpy(dtype=float) > history["high"].to_numpy(dtype=float)
        if inverted.any():
            first = history.index[int(np.argmax(inverted))]
            raise ValueError(f"history 'low' above 'high' at {first}")
    if "vix" not in history.columns:
        history = history.assign(vix=np.nan)  # the models read "no VIX" as NaN
    return history


def vix_column(history: pd.DataFrame) -> np.ndarray:
    """The VIX column as floats, all NaN if the frame has none."""
    if "vix" not in history.columns:
        return np.full(len(history), np.nan)
    return history["vix"].to_numpy(dtype=float)


def check_bar(bar: Bar, last_ts: pd.Timestamp | None) -> None:
    """Reject a bar that would corrupt a filter: bad prices, bad VIX, out-of-order time."""
    if not isinstance(bar, Bar):
        raise TypeError(f"bar must be a models.base.Bar, got {type(bar).__name__}")
    if not (math.isfinite(bar.close) and bar.close > 0):
        raise ValueError(f"bar.close must be finite and > 0, got {bar.close!r}")
    if bar.vix is not None and not (math.isfinite(bar.vix) and bar.vix > 0):
        raise ValueError(f"bar.vix must be > 0 or None (missing), got {bar.vix!r}")
    if last_ts is not None and not bar.ts > last_ts:
        raise ValueError(f"bar.ts {bar.ts} is not after the last bar {last_ts} (out of order)")


def origin_seed(seed: int, ts: pd.Timestamp | None) -> int:
    """The Monte Carlo seed of the forecast made at the bar ``ts``.

    One seed for every origin would reuse the same draws everywhere, so the simulated
    quantiles' sampling error would be one fixed bias of the range's width instead of
    noise that averages out over origins: with 5,000 paths the protocol's GJR-VIX
    baseline's mean interval score moved by up to ±0.5 % from seed to seed over 2015–2018.
    The bar's time (seconds) keeps it reproducible and free of look-ahead.
    """
    offset = 0 if ts is None else int(pd.Timestamp(ts).value // 1_000_000_000) % 2**31
    return seed + offset


# Ten years of trading days: beyond that a daily model's range means nothing, and the
# simulated members' path arrays (paths × steps) would not fit in memory.
MAX_STEPS = 2520


def check_forecast_args(steps: int, confidence: float) -> None:
    """Clear errors for the two arguments every ``forecast`` takes."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be <= {MAX_STEPS} (ten years of trading days), got {steps}")
    if not (isinstance(confidence, float | int) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
