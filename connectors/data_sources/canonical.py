"""The canonical history frame every source returns, and its validation.

Indexed by date (``DatetimeIndex`` named ``date``, ascending, unique, tz-naive, midnight,
nanosecond unit) with float columns ``open, high, low, close, vix`` (``vix``: the VIX close
of the same date, NaN where unknown). OHLC has no NaN, every price is > 0 and finite, and
``low <= min(open, close)``, ``high >= max(open, close)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from connectors.data_sources.errors import DataSourceError
from models.base import HISTORY_COLUMNS

OHLC = ("open", "high", "low", "close")
# Prices are often rounded to the cent after the high/low were computed from unrounded
# ticks, so a close may overshoot the high by ~1 ulp of a float: allow that, nothing more.
_REL_TOL = 1e-9


def row_by_date(index: pd.Index) -> Callable[[int], str]:
    return lambda i: f"row {pd.Timestamp(index[i]).date()}"


def validate_history(
    frame: pd.DataFrame, label: str, row_name: Callable[[int], str] | None = None
) -> pd.DataFrame:
    """Check ``frame`` (columns of :data:`HISTORY_COLUMNS`, any order) row by row and return
    it in canonical form. ``label`` names the data in errors (e.g. ``SPX (bundled)``);
    ``row_name(i)`` names row ``i`` (default: its date)."""
    name = row_name or row_by_date(frame.index)
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise DataSourceError(f"{label}: missing column(s) {', '.join(missing)}")
    ohlc = frame.loc[:, list(OHLC)].to_numpy(dtype=np.float64)
    vix = frame["vix"].to_numpy(dtype=np.float64)
    for col, values in zip(OHLC, ohlc.T, strict=True):
        _first_bad(label, name, np.isnan(values), f"{col} is missing (NaN)")
        _first_bad(label, name, ~np.isfinite(values), f"{col} is infinite")
        _first_bad(label, name, values <= 0, f"{col} must be > 0", values, col)
    known = ~np.isnan(vix)
    _first_bad(label, name, known & ~(np.isfinite(vix) & (vix > 0)), "vix must be > 0", vix, "vix")
    o, h, lo, c = ohlc.T
    slack = _REL_TOL * np.maximum(o, c)
    _first_bad(label, name, lo > np.minimum(o, c) + slack, "low above min(open, close)", ohlc)
    _first_bad(label, name, h < np.maximum(o, c) - slack, "high below max(open, close)", ohlc)

    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)  # the local trading date is what names a daily bar
    index = index.normalize().as_unit("ns")
    out = pd.DataFrame(
        np.column_stack([ohlc, vix]), index=index, columns=list(HISTORY_COLUMNS)
    ).rename_axis("date")
    out = out.sort_index(kind="stable")
    dup = out.index.duplicated()
    if dup.any():
        raise DataSourceError(
            f"{label}: date {out.index[dup][0].date()} appears more than once "
            "(daily bars expected: one row per date)"
        )
    return out


def _first_bad(
    label: str,
    name: Callable[[int], str],
    bad: np.ndarray,
    problem: str,
    values: np.ndarray | None = None,
    col: str | None = None,
) -> None:
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    shown = ""
    if values is not None and values.ndim == 2:
        o, h, lo, c = values[i]
        shown = f" (open {o:g}, high {h:g}, low {lo:g}, close {c:g})"
    elif values is not None:
        shown = f" ({col} = {values[i]:g})"
    more = int(bad.sum()) - 1
    also = f"; {more} more row(s) like it" if more else ""
    raise DataSourceError(f"{label}: {name(i)}: {problem}{shown}{also}")


def window(
    frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    """Rows dated within [start, end], either end open when None."""
    return frame.loc[start:end]
