"""History downloaded with yfinance, an optional extra (``pip install yfinance``)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator
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
            "yfinance is not installed: pip install yfinance "
            f"(or use --data FILE with columns {EXPECTED_COLUMNS})"
        ) from None


def _download(
    yf: Any, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    with _quiet_yfinance() as errors:
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
        except Exception as exc:  # yfinance raises many types (HTTP, JSON, its own): no data
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataSourceError(
                f"yfinance could not download {ticker!r}: {first} ({_OFFLINE_HINT})"
            ) from None
    if data is None or len(data) == 0:
        # yfinance says why only in its log ("1 Failed download: ['SPY']: DNSError(...)").
        why = (
            f"{_shorten(errors[-1])} ({_OFFLINE_HINT})"
            if errors
            else (f"unknown ticker, or {_OFFLINE_HINT}")
        )
        raise DataSourceError(f"yfinance returned no data for {ticker!r}: {why}")
    return data


@contextlib.contextmanager
def _quiet_yfinance() -> Iterator[list[str]]:
    """Keep yfinance's own logging, prints and warnings (a dozen lines offline: cookie and
    crumb failures, curl errors, pandas deprecations) off the terminal while it downloads,
    so that a failure is one line; yields the error messages it logged."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record.getMessage())

    logger = logging.getLogger("yfinance")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [Collect()], False
    logger.setLevel(logging.WARNING)
    sink = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stderr(sink),
            contextlib.redirect_stdout(sink),
        ):
            warnings.simplefilter("ignore")
            yield errors
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def _shorten(message: str, limit: int = 200) -> str:
    """The last non-empty line of a log message, at most ``limit`` characters."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    last = lines[-1] if lines else message.strip()
    return last if len(last) <= limit else last[: limit - 3] + "..."


def _column(data: pd.DataFrame, name: str, ticker: str) -> pd.Series:
    """One price column; recent yfinance versions return (field, ticker) MultiIndex columns."""
    level0 = [c[0] if isinstance(c, tuple) else c for c in data.columns]
    picked = data.loc[:, [c == name for c in level0]]
    if picked.shape[1] != 1:
        raise DataSourceError(f"yfinance returned no {name} column for {ticker!r}")
    return picked.iloc[:, 0].astype("float64")
