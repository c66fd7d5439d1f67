"""Real daily data that ships with ``arch``: the S&P 500 index and the VIX."""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from pathlib import Path

import pandas as pd

from connectors.data_sources.canonical import validate_history, window
from connectors.data_sources.errors import HOW_TO_ADD, DataSourceError

# Spellings of the one bundled index; SPY (the ETF) is a different price series, not an alias.
_ALIASES = {"SPX": "SPX", "^SPX": "SPX", "^GSPC": "SPX", "GSPC": "SPX", "SP500": "SPX"}


class BundledSource:
    """S&P 500 (``SPX``, 1999-01-04..2018-12-31, OHLC, ``arch.data.sp500``) with the VIX
    close of the same date (2014-2018, ``arch.data.vix``; NaN before 2014 and on the VIX
    file's 46 exchange holidays, which are not S&P sessions anyway)."""

    name = "bundled"

    def tickers(self) -> tuple[str, ...]:
        return ("SPX",)

    def has(self, ticker: str) -> bool:
        return ticker.upper() in _ALIASES

    def load(
        self, ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        if not self.has(ticker):
            raise DataSourceError(
                f"no bundled data for ticker {ticker!r}; bundled: SPX (S&P 500 daily OHLC "
                f"1999-01-04..2018-12-31, VIX 2014-2018; also spelled ^GSPC); {HOW_TO_ADD}"
            )
        return window(_spx(), start, end).copy()


@cache
def _spx() -> pd.DataFrame:
    prices, vix = _arch_file("sp500"), _arch_file("vix")
    frame = pd.DataFrame(
        {
            "open": prices["Open"],
            "high": prices["High"],
            "low": prices["Low"],
            "close": prices["Close"],
            "vix": vix["vix"].reindex(prices.index),
        }
    )
    return validate_history(frame, "SPX (bundled)")


def _arch_file(name: str) -> pd.DataFrame:
    """``arch.data.<name>.load()``, without importing ``arch``.

    Importing ``arch`` imports its whole model stack (seconds, more on a busy machine);
    its ``load()`` only reads ``arch/data/<name>/<name>.csv.gz``, so read that file the same
    way, and fall back to ``load()`` should a future ``arch`` move it.
    """
    spec = importlib.util.find_spec("arch")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(f"the bundled data needs arch: pip install arch; {HOW_TO_ADD}")
    csv = Path(next(iter(spec.submodule_search_locations))) / "data" / name / f"{name}.csv.gz"
    if csv.is_file():
        frame = pd.read_csv(csv, index_col="Date", parse_dates=["Date"])
        return frame.apply(pd.to_numeric, errors="coerce")
    loaded: pd.DataFrame = importlib.import_module(f"arch.data.{name}").load()
    return loaded
