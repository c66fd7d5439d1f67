"""Historical daily data: bundled (arch's S&P 500 and VIX), CSV/Parquet files, yfinance.

Every source returns the canonical frame described in ``canonical.py`` and fails with one
:class:`DataSourceError` line; :func:`load_history` is the usual entry point.
"""

from connectors.data_sources.bundled import BundledSource
from connectors.data_sources.canonical import validate_history
from connectors.data_sources.errors import DataSourceError
from connectors.data_sources.file_source import FileSource
from connectors.data_sources.history import (
    SOURCE_NAMES,
    HistorySource,
    available_data,
    get_source,
    load_history,
)
from connectors.data_sources.yfinance_source import YFinanceSource

__all__ = [
    "SOURCE_NAMES",
    "BundledSource",
    "DataSourceError",
    "FileSource",
    "HistorySource",
    "YFinanceSource",
    "available_data",
    "get_source",
    "load_history",
    "validate_history",
]
