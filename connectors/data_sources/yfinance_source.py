"""History downloaded with yfinance, an optional extra (``pip install markov[yfinance]``)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import pandas as pd

from connectors.data_sources.canonical import validate_history, window
from connectors.data_sources.errors import EXPECTED_COLUMNS, DataSourceError

VIX_TICKER = "^VIX"
_OFFLINE_HINT = f"offline? use --data FILE (CSV/Parquet with columns {EXPECTED_COLUMNS})"


class YFinanceSource:
    """Daily bars from Yahoo Finance via yfinance, unadjusted OHLC, with the ``^VIX`` close.

    yfinance is imported only when data is requested, so markov works without it; any
    failure (not installed, offline, unknown ticker) is one :class:`DataSourceError` line.
    """

    name = "yfinance"

    def available(self) -> bool:
        return importlib.util.find_spec("yfinance") is not None

    def load(
        self, ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        yf = _import_yfinance()
        # yfinance's end is exclusive; ours is inclusive.
        stop = None if end is None else end + pd.Timedelta(days=1)
        prices = _download(yf, ticker, start, stop)
        frame = pd.DataFrame(
            {c: _column(prices, c.capitalize(), ticker) for c in ("open", "high", "low", "close")}
        )
        try:
            vix = _column(_download(yf, VIX_TICKER, start, stop), "Close", VIX_TICKER)
        except DataSourceError:
            vix = pd.Series(
                float("nan"), index=frame.index
            )  # a range without VIX is degraded, not lost
        frame["vix"] = vix.reindex(frame.index)
        frame = frame.dropna(subset=["open", "high", "low", "close"], how="all")
        return window(validate_history(frame, f"{ticker} (yfinance)"), start, end)


def _import_yfinance() -> Any:
    try:
        return importlib.import_module("yfinance")
    except ImportError:
        raise DataSourceError(
            "yfinance is not installed: pip install markov[yfinance] "
            f"(or use --data FILE with columns {EXPECTED_COLUMNS})"
        ) from None


def _download(
    yf: Any, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    try:
        data = yf.download(
            ticker,
            start=None if start is None else start.date().isoformat(),
            end=None if end is None else end.date().isoformat(),
            period=None if start is not None else "max",
            interval="1d",
            auto_adjust=False,
            progress=False,
            threads=False,
        )
    except Exception as exc:  # yfinance raises many types (HTTP, JSON, its own); all mean "no data"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataSourceError(
            f"yfinance could not download {ticker!r}: {first} ({_OFFLINE_HINT})"
        ) from None
    if data is None or len(data) == 0:
        raise DataSourceError(
            f"yfinance returned no data for {ticker!r}: unknown ticker, or {_OFFLINE_HINT}"
        )
    return data


def _column(data: pd.DataFrame, name: str, ticker: str) -> pd.Series:
    """One price column; recent yfinance versions return (field, ticker) MultiIndex columns."""
    level0 = [c[0] if isinstance(c, tuple) else c for c in data.columns]
    picked = data.loc[:, [c == name for c in level0]]
    if picked.shape[1] != 1:
        raise DataSourceError(f"yfinance returned no {name} column for {ticker!r}")
    return picked.iloc[:, 0].astype("float64")
