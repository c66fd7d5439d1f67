"""Validation output: text tables, the forecast CSV of QUALITY-PROTOCOL §5, a PNG plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from models.scoring import (
    BOUND_COLUMNS,
    CALIBRATION_BAND_PP,
    OUTCOME_COLUMNS,
    Kind,
    ScoreTable,
    misses,
    order_by_rank,
    relative_gains,
)
from models.validation import ValidationResult

CSV_COLUMNS = ("method", "origin", "h", "close_lo", "close_hi", "path_lo", "path_hi")


# --------------------------------------------------------------------------- tables


def _num(value: float, fmt: str) -> str:
    return "n/a" if not math.isfinite(value) else format(value, fmt)


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def percent(share: float) -> str:
    """``share`` in percent, never rounded to 0 or 100 (0.999 is 99.9, not 100)."""
    pct = 100 * share
    decimals = 0 if abs(pct - round(pct)) < 1e-9 else 1
    while decimals < 12 and not 0 < float(f"{pct:.{decimals}f}") < 100:
        decimals += 1
    return f"{pct:.{decimals}f}"


def format_score_table(table: ScoreTable) -> str:
    """One table: a row per method (ranked), ``*`` marks coverage outside the nominal
    level ± :data:`CALIBRATION_BAND_PP`."""
    dep = "Christ p" if table.horizon == 1 else "HAC p"
    header = [
        "method",
        "cover %",
        "miss lo %",
        "miss hi %",
        "Kupiec p",
        dep,
        "width %",
        "IS %",
        "DM p",
    ]
    lines: list[list[str]] = []
    for r in order_by_rank(table.rows):
        if not r.available:
            lines.append([r.method, "n/a", *["-"] * 7])
            continue
        mark = "" if r.calibrated else "*"
        dep_p = r.christoffersen_p if table.horizon == 1 else r.hac_p
        dm = "best" if r.method == table.best else _p(r.dm_p)
        lines.append(
            [
                r.method,
                f"{r.cover:.2f}{mark}",
                f"{r.miss_lo:.2f}",
                f"{r.miss_hi:.2f}",
                _p(r.kupiec_p),
                _p(dep_p),
                f"{r.width:.3f}",
                f"{r.interval_score:.3f}",
                dm,
            ]
        )
    kind = "close interval" if table.kind == "close" else "path range"
    n = max((r.n for r in table.rows), default=0)
    title = f"h={table.horizon} {kind} (n={n} origins)"
    return "\n".join([title, *_align(header, lines)])


def _align(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    """Header, rule and rows: first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(header)]

    def fmt(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    head = fmt(header)
    return [head, "-" * len(head), *(fmt(row) for row in lines)]


def format_relative_gains(result: ValidationResult, reference: str) -> str:
    """``reference``'s change of the mean IS % against every other method, per table and
    on average over the tables, with the average's HAC standard error and DM p."""
    tables = [result.scores[h][kind] for h in result.horizons for kind in ("close", "path")]
    gains = sorted(relative_gains(tables, reference), key=lambda g: -g.average_pct)
    title = (
        f"{reference}: change of the mean IS against each method, % (negative: "
        f"{reference} lower); average over the {len(tables)} tables, its HAC s.e. and DM p"
    )
    if not gains:
        return title + "\n(no other method scored in every table)"
    header = [
        f"{reference} vs",
        *(f"h={h} {kind}" for h, kind in gains[0].tables),
        "average",
        "s.e.",
        "DM p",
    ]
    lines = [
        [
            g.method,
            *(f"{c:+.2f}" for c in g.change_pct),
            f"{g.average_pct:+.2f}",
            f"{g.se_pct:.2f}",
            _p(g.dm_p),
        ]
        for g in gains
    ]
    return "\n".join([title, *_align(header, lines)])


def format_report(result: ValidationResult, reference: str = "ensemble") -> str:
    """All tables (per horizon: close, then path), the coverage by year and, when
    ``reference`` (the ensemble) was walked, its average change against every method."""
    parts = [
        f"Walk-forward {result.start.date()} .. {result.end.date()}, "
        f"confidence {percent(result.confidence)}%; * = coverage outside "
        f"{percent(result.confidence)} ± {CALIBRATION_BAND_PP:g} pp; "
        "DM p vs the best calibrated method (lowest IS %)"
    ]
    for h in result.horizons:
        for kind in ("close", "path"):
            parts.append(format_score_table(result.scores[h][kind]))
    by_year = result.coverage_by_year
    parts.append(
        f"h={result.horizons[0]} close coverage % by year of origin\n"
        + by_year.to_string(float_format=lambda v: f"{v:.1f}")
    )
    if reference in result.methods and len(result.methods) > 1:
        parts.append(format_relative_gains(result, reference))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- CSV


def forecasts_to_frame(result: ValidationResult) -> pd.DataFrame:
    """The §5 long format: one row per method, origin and horizon."""
    parts = []
    for method, by_h in result.forecasts.items():
        for h, frame in by_h.items():
            part = frame[["close_lo", "close_hi", "path_lo", "path_hi"]].copy()
            part.insert(0, "h", h)
            part.insert(0, "origin", pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d"))
            part.insert(0, "method", method)
            parts.append(part.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True)[list(CSV_COLUMNS)]


def write_forecasts_csv(result: ValidationResult, path: str | Path) -> Path:
    """Write the §5 CSV; a ``.gz`` suffix compresses it. NaN bounds are written empty."""
    path = Path(path)
    forecasts_to_frame(result).to_csv(path, index=False, float_format="%.6f", na_rep="")
    return path


def read_forecasts_csv(path: str | Path) -> pd.DataFrame:
    """Read a §5 CSV (``.gz`` or plain) back; ``origin`` as dates, empty bounds as NaN."""
    frame = pd.read_csv(path, dtype={"method": str})
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(CSV_COLUMNS)}")
    frame["origin"] = pd.to_datetime(frame["origin"], format="%Y-%m-%d")
    frame["h"] = frame["h"].astype(int)
    for col in CSV_COLUMNS[3:]:
        frame[col] = frame[col].astype(np.float64)
    return frame[list(CSV_COLUMNS)]


# --------------------------------------------------------------------------- plot


def plot_forecasts(
    result: ValidationResult,
    method: str,
    horizon: int,
    path: str | Path,
    *,
    kind: Kind = "close",
) -> Path:
    """PNG: the outcome (close, or path min/max), the forecast band, breaches marked."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    if method not in result.forecasts:
        raise ValueError(f"method {method!r} not in the result; have {result.methods}")
    if horizon not in result.horizons:
        raise ValueError(f"horizon {horizon!r} not in the result; have {list(result.horizons)}")
    frame = result.forecasts[method][horizon]
    lo_col, hi_col = BOUND_COLUMNS[kind]
    lower_col, upper_col = OUTCOME_COLUMNS[kind]
    # x axis: origin date; the outcome drawn there is the one its range is judged on.
    dates = pd.DatetimeIndex(frame.index)
    miss_lo, miss_hi = misses(frame[lo_col], frame[hi_col], frame[lower_col], frame[upper_col])

    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
    try:
        ax.plot(dates, frame["anchor"], color="0.3", lw=0.8, label="close at origin")
        ax.fill_between(
            dates,
            frame[lo_col],
            frame[hi_col],
            color="tab:blue",
            alpha=0.25,
            lw=0,
            label=f"{kind} {percent(result.confidence)}% range, h={horizon}",
        )
        if kind == "close":
            ax.plot(dates, frame["close"], color="black", lw=0.6, label=f"close at t+{horizon}")
        else:
            ax.plot(dates, frame["path_min"], color="tab:green", lw=0.5, label="path min")
            ax.plot(dates, frame["path_max"], color="tab:purple", lw=0.5, label="path max")
        ax.scatter(
            dates[miss_lo],
            frame[lower_col][miss_lo],
            marker="v",
            s=14,
            color="tab:red",
            label=f"below ({int(miss_lo.sum())})",
            zorder=3,
        )
        ax.scatter(
            dates[miss_hi],
            frame[upper_col][miss_hi],
            marker="^",
            s=14,
            color="tab:orange",
            label=f"above ({int(miss_hi.sum())})",
            zorder=3,
        )
        row = result.scores[horizon][kind].row(method)
        ax.set_title(
            f"{method}: {kind} range h={horizon}, cover {row.cover:.1f}%, "
            f"width {row.width:.2f}%, IS {row.interval_score:.2f}%"
        )
        ax.set_ylabel("index points")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
