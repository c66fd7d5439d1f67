"""The history frame every model fits on, and its check: one line per problem.

Canonical form: indexed by date (``DatetimeIndex`` named ``date``, ascending, unique,
tz-naive, midnight, nanosecond unit) with float columns ``open, high, low, close, vix``
(:data:`models.base.HISTORY_COLUMNS`; ``vix`` is the VIX close of the same date, NaN
where unknown). OHLC has no NaN, every price is > 0 and finite, and
``low <= min(open, close)``, ``high >= max(open, close)``.

The data sources return this form (their errors say ``data error: ...``); the ensemble
checks a caller's frame with the same code before it fits, so a NaN close names its row
instead of failing half the members with reasons of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.base import HISTORY_COLUMNS

OHLC = ("open", "high", "low", "close")
# Prices are often rounded to the cent after the high/low were computed from unrounded
# ticks, so a close may overshoot the high by ~1 ulp of a float: allow that, nothing more.
_REL_TOL = 1e-9


class HistoryError(ValueError):
    """A problem with a history frame, as one line naming the data, the row and the field."""


def row_by_date(index: pd.Index) -> Callable[[int], str]:
    return lambda i: f"row {pd.Timestamp(index[i]).date()}"


def canonical_history(
    frame: pd.DataFrame,
    label: str = "history",
    row_name: Callable[[int], str] | None = None,
    *,
    vix_optional: bool = False,
) -> pd.DataFrame:
    """Check ``frame`` row by row and return it in canonical form, or raise
    :class:`HistoryError`. ``label`` names the data in errors (e.g. ``SPX (bundled)``);
    ``row_name(i)`` names row ``i`` (default: its date). With ``vix_optional`` a frame
    without a ``vix`` column is taken as one whose VIX is unknown throughout."""
    if vix_optional and "vix" not in frame.columns:
        frame = frame.assign(vix=np.nan)
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(f"{label}: missing column(s) {', '.join(missing)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(frame.index)
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"{label}: the index must be dates ({exc})") from None
        frame = frame.set_axis(index)
    name = row_name or row_by_date(frame.index)
    try:
        ohlc = frame.loc[:, list(OHLC)].to_numpy(dtype=np.float64)
        vix = frame["vix"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HistoryError(f"{label}: prices must be numbers ({exc})") from None
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
        raise HistoryError(
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
    raise HistoryError(f"{label}: {name(i)}: {problem}{shown}{also}")
