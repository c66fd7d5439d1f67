"""History from a CSV or Parquet file (``--data FILE``)."""

from __future__ import annotations

import importlib.util
import re
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.data_sources.canonical import validate_history, window
from connectors.data_sources.errors import EXPECTED_COLUMNS, DataSourceError

# Column spellings accepted, after lower-casing and dropping spaces, "_" and "-".
_SPELLINGS = {
    "date": ("date", "datetime", "timestamp", "time", "day"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "adjclose": ("adjclose", "adjustedclose"),
    "vix": ("vix", "vixclose"),
    "ticker": ("ticker", "symbol"),
}
_PARQUET = (".parquet", ".pq")


def _key(column: object) -> str:
    return re.sub(r"[\s_\-]", "", str(column)).lower()


class FileSource:
    """A CSV (any pandas-readable compression) or Parquet file of daily bars.

    Columns, any case: ``date`` (or Datetime/Timestamp), ``open``, ``high``, ``low``,
    ``close`` (``Adj Close`` stands in only when there is no ``close``), optional ``vix``,
    and optional ``ticker``/``symbol``: if present, only the requested ticker's rows are
    read; if absent, the whole file is the requested ticker.
    """

    name = "file"

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path)

    def load(
        self, ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        raw = self._read()
        cols = self._columns(raw)
        frame = raw
        if "ticker" in cols:
            symbols = raw[cols["ticker"]].astype(str)
            frame = raw[symbols.str.upper() == ticker.upper()]
            if frame.empty:
                known = ", ".join(sorted(symbols.unique())[:20])
                raise DataSourceError(
                    f"{self.path}: no rows for ticker {ticker!r}; file has: {known}"
                )
        lines = frame.index.to_numpy() + 2  # header is line 1 (CSV); Parquet: row number + 2
        label = str(self.path)
        dates = self._dates(frame[cols["date"]], lines)
        out = pd.DataFrame(index=dates)
        for field in ("open", "high", "low", "close", "vix"):
            source = cols.get(field)
            if source is None:
                out[field] = float("nan")  # only vix may be absent (checked in _columns)
                continue
            values = pd.to_numeric(frame[source], errors="coerce")
            bad = values.isna() & frame[source].notna()
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise DataSourceError(
                    f"{label}: line {lines[i]}: {field} is not a number: {frame[source].iloc[i]!r}"
                )
            out[field] = values.to_numpy(dtype="float64")
        checked = validate_history(out, label, lambda i: f"line {lines[i]} ({dates[i].date()})")
        return window(checked, start, end)

    def _read(self) -> pd.DataFrame:
        if self.path.is_dir():
            raise DataSourceError(
                f"{self.path}: is a directory (--data expects a CSV or Parquet file)"
            )
        if not self.path.is_file():
            raise DataSourceError(
                f"{self.path}: file not found (--data expects a CSV or Parquet file)"
            )
        try:
            if self.path.suffix.lower() in _PARQUET:
                return self._read_parquet().reset_index(drop=False)
            return pd.read_csv(self.path)
        except DataSourceError:
            raise
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataSourceError(f"{self.path}: cannot read: {first}") from None

    def _read_parquet(self) -> pd.DataFrame:
        if importlib.util.find_spec("pyarrow") is None:  # pandas' own ImportError is long
            raise DataSourceError(
                f"{self.path}: reading Parquet needs pyarrow: pip install pyarrow "
                "(or save the data as CSV)"
            )
        frame = pd.read_parquet(self.path)
        # A date index written by DataFrame.to_parquet comes back as a column after
        # reset_index; a default RangeIndex is dropped as "index" below.
        return frame.drop(columns=["index"], errors="ignore") if "index" in frame else frame

    def _columns(self, raw: pd.DataFrame) -> dict[str, str]:
        found: dict[str, str] = {}
        for column in raw.columns:
            for field, spellings in _SPELLINGS.items():
                if _key(column) in spellings and field not in found:
                    found[field] = str(column)
        first = str(raw.columns[0]) if len(raw.columns) else ""
        if "date" not in found and first.startswith("Unnamed: 0"):
            found["date"] = first  # DataFrame.to_csv of an unnamed date index
        if "close" not in found and "adjclose" in found:
            found["close"] = found["adjclose"]
        missing = [f for f in ("date", "open", "high", "low", "close") if f not in found]
        if missing:
            have = ", ".join(str(c) for c in raw.columns) or "none"
            raise DataSourceError(
                f"{self.path}: missing column(s) {', '.join(missing)}; expected {EXPECTED_COLUMNS} "
                f"(any case; Adj Close accepted for close); the file has: {have}"
            )
        return found

    def _dates(self, column: pd.Series, lines: np.ndarray) -> pd.DatetimeIndex:
        try:
            parsed = pd.to_datetime(column, errors="coerce")
        except (ValueError, TypeError) as exc:  # e.g. mixed time zones
            raise DataSourceError(f"{self.path}: cannot read the date column: {exc}") from None
        bad = parsed.isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataSourceError(f"{self.path}: line {lines[i]}: not a date: {column.iloc[i]!r}")
        return pd.DatetimeIndex(parsed)
