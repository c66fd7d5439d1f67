"""The canonical history frame every source returns (see :mod:`models.history`), and the
sources' form of its check: the same one-line problems, as :class:`DataSourceError`."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from connectors.data_sources.errors import DataSourceError
from models.history import HistoryError, canonical_history


def validate_history(
    frame: pd.DataFrame, label: str, row_name: Callable[[int], str] | None = None
) -> pd.DataFrame:
    """Check ``frame`` (columns of :data:`models.base.HISTORY_COLUMNS`, any order) row by
    row and return it in canonical form. ``label`` names the data in errors (e.g.
    ``SPX (bundled)``); ``row_name(i)`` names row ``i`` (default: its date)."""
    try:
        return canonical_history(frame, label, row_name)
    except HistoryError as exc:
        raise DataSourceError(str(exc)) from None


def window(
    frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    """Rows dated within [start, end], either end open when None."""
    return frame.loc[start:end]
