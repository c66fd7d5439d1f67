"""The one error type of the historical data sources."""

from __future__ import annotations


class DataSourceError(ValueError):
    """A data problem, printable as one line (``data error: ...``) that says what to do."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"data error: {message}")


EXPECTED_COLUMNS = "date, open, high, low, close (optional: vix)"
HOW_TO_ADD = (
    f"add data with --data FILE (CSV or Parquet with columns {EXPECTED_COLUMNS}) "
    "or pip install yfinance to download"
)
