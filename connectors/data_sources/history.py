"""``load_history``: one call for a canonical history frame from any source."""

from __future__ import annotations

import datetime as dt
from os import PathLike
from typing import Literal, Protocol, get_args

import pandas as pd

from connectors.data_sources.bundled import BundledSource
from connectors.data_sources.errors import EXPECTED_COLUMNS, HOW_TO_ADD, DataSourceError
from connectors.data_sources.file_source import FileSource
from connectors.data_sources.yfinance_source import YFinanceSource

SourceName = Literal["bundled", "file", "yfinance", "auto"]
SOURCE_NAMES: tuple[str, ...] = get_args(SourceName)
DateLike = str | dt.date | pd.Timestamp


class HistorySource(Protocol):
    """What every source does: return the canonical frame (see ``canonical.py``) of one
    ticker, every row it has between ``start`` and ``end`` (inclusive; None = open)."""

    name: str

    def load(
        self, ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame: ...


def load_history(
    ticker: str,
    days_back: int | None = None,
    *,
    source: SourceName | None = None,
    path: str | PathLike[str] | None = None,
    end: DateLike | None = None,
) -> pd.DataFrame:
    """The last ``days_back`` daily bars (all if None; fewer if the source has fewer) of
    ``ticker`` up to and including ``end`` (default: the latest the source has).

    ``source``: ``bundled`` (S&P 500 ``SPX`` with the VIX, from ``arch``), ``file``
    (``path``: CSV or Parquet), ``yfinance`` (optional extra), or ``auto`` (the file if
    ``path`` is given, else bundled if it has the ticker, else yfinance). Default: ``file``
    when ``path`` is given, else ``bundled``. Every problem is a one-line
    :class:`DataSourceError`.
    """
    if not isinstance(ticker, str) or not ticker.strip():
        raise DataSourceError(f"ticker: expected a symbol such as SPX, got {ticker!r}")
    if days_back is not None and (
        not isinstance(days_back, int) or isinstance(days_back, bool) or days_back < 1
    ):
        raise DataSourceError(f"days_back: must be an integer >= 1, got {days_back!r}")
    stop = _as_date("end", end)
    chosen = get_source(ticker, source, path)
    start = None
    if days_back is not None and isinstance(chosen, YFinanceSource):
        # Ask the network for enough calendar days (5 sessions a week, plus holidays).
        until = stop if stop is not None else pd.Timestamp.today().normalize()
        start = until - pd.Timedelta(days=days_back * 7 // 5 + 30)
    frame = chosen.load(ticker, start, stop)
    if frame.empty:
        raise DataSourceError(
            f"no {ticker} data on or before {stop.date() if stop is not None else 'now'} "
            f"in the {chosen.name} source"
        )
    return frame if days_back is None else frame.iloc[-days_back:]


def get_source(
    ticker: str, source: SourceName | None = None, path: str | PathLike[str] | None = None
) -> HistorySource:
    """The source object ``load_history`` would use (see there for ``source``)."""
    if source is None:
        source = "file" if path is not None else "bundled"
    if source not in SOURCE_NAMES:
        raise DataSourceError(f"source: must be one of {', '.join(SOURCE_NAMES)}, got {source!r}")
    if source == "auto":
        if path is not None:
            source = "file"
        elif BundledSource().has(ticker) or not YFinanceSource().available():
            source = "bundled"  # bundled's error then says what is available and how to add
        else:
            source = "yfinance"
    if source == "file":
        if path is None:
            raise DataSourceError(
                f"source 'file' needs a path: --data FILE (CSV or Parquet with columns "
                f"{EXPECTED_COLUMNS})"
            )
        return FileSource(path)
    if path is not None:
        raise DataSourceError(f"path {str(path)!r} given, but source is {source!r} (use 'file')")
    return BundledSource() if source == "bundled" else YFinanceSource()


def available_data() -> str:
    """One line for help texts: what can be loaded without network, and how to add more."""
    return (
        "bundled: SPX (S&P 500 daily OHLC 1999-01-04..2018-12-31, VIX close 2014-2018); "
        + HOW_TO_ADD
    )


def _as_date(name: str, value: DateLike | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataSourceError(f"{name}: not a date: {value!r} (expected e.g. 2018-06-29)") from None
    if pd.isna(stamp):
        raise DataSourceError(f"{name}: not a date: {value!r} (expected e.g. 2018-06-29)")
    return (stamp.tz_localize(None) if stamp.tz is not None else stamp).normalize()
