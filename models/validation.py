"""Walk-forward (rolling-origin) validation, QUALITY-PROTOCOL.md §2.

For every origin ``t`` (a trading day in the window with ``t + h`` in the data) each
method sees only rows ``0..t``: the engine hands it a *copy* of ``history.iloc[: t + 1]``
(so not even the base buffer of a view reaches later rows) or the single bar ``t``.
Origins are cut into blocks of ``refit_every``; at a block's first origin the model is
re-fitted on everything up to and including the origin, on the others ``update(bar_t)``
folds in the new day. The same model object lives through the whole run, so models can
warm-start from their previous parameters.

Outcomes for origin ``t`` and horizon ``h``: the close ``C_{t+h}``, the path minimum
``min Low_{t+1..t+h}`` and maximum ``max High_{t+1..t+h}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models.base import Bar, ForecastModel, ModelStatus, PriceRange, Status
from models.history import HistoryError, canonical_history
from models.scoring import KINDS, Kind, ScoreTable, coverage_by_year, score_table

ModelFactory = Callable[[], ForecastModel]
# progress(method, done, total): called after every origin of every method.
ProgressCallback = Callable[[str, int, int], None]

FORECAST_COLUMNS = (
    "anchor",
    "close_lo",
    "close_hi",
    "path_lo",
    "path_hi",
    "center",
    "close",
    "path_min",
    "path_max",
    "status",
    "reason",
)
_BOUNDS = ("close_lo", "close_hi", "path_lo", "path_hi")


def information_set(history: pd.DataFrame, t: int) -> pd.DataFrame:
    """Rows ``0..t`` as an independent copy: a model cannot reach later rows through it."""
    return history.iloc[: t + 1].copy(deep=True)


def bar_at(history: pd.DataFrame, t: int) -> Bar:
    return Bar.from_row(history.index[t], history.iloc[t])


def origin_positions(
    history: pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp, horizon: int = 1
) -> np.ndarray:
    """Positions ``t`` with date in ``[start, end]`` and ``t + horizon`` inside the data."""
    dates = pd.DatetimeIndex(history.index)
    in_window = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    positions = np.flatnonzero(in_window)
    return positions[positions + horizon < len(history)]


def realised_outcomes(history: pd.DataFrame, positions: np.ndarray, horizon: int) -> pd.DataFrame:
    """Close at ``t+h`` and the min Low / max High over ``t+1..t+h`` for each position."""
    low = history["low"].to_numpy(dtype=np.float64)
    high = history["high"].to_numpy(dtype=np.float64)
    close = history["close"].to_numpy(dtype=np.float64)
    steps = np.arange(1, horizon + 1)
    ahead = positions[:, None] + steps[None, :]
    return pd.DataFrame(
        {
            "close": close[positions + horizon],
            "path_min": low[ahead].min(axis=1),
            "path_max": high[ahead].max(axis=1),
        },
        index=pd.DatetimeIndex(history.index[positions], name="origin"),
    )


def _checked(history: pd.DataFrame) -> pd.DataFrame:
    # Origins and cuts are row positions, so the rows must already be in date order.
    if not pd.DatetimeIndex(history.index).is_monotonic_increasing:
        raise HistoryError("history: the index must be dates in ascending order")
    return canonical_history(history)


def _check_horizons(horizons: Iterable[int]) -> tuple[int, ...]:
    hs = tuple(sorted(set(int(h) for h in horizons)))
    if not hs or hs[0] < 1:
        raise ValueError(f"horizons must be positive trading-day counts, got {horizons!r}")
    return hs


@dataclass
class _Origin:
    """What one model said at one origin, per horizon (and its members', if it has any)."""

    ranges: dict[int, PriceRange]
    parts: dict[int, Mapping[str, PriceRange]] = field(default_factory=dict)


def _run_model(
    factory: ModelFactory,
    history: pd.DataFrame,
    positions: Sequence[int],
    horizons: tuple[int, ...],
    confidence: float,
    refit_every: int,
    on_origin: Callable[[], None] | None = None,
) -> list[_Origin]:
    """Drive one fresh model through ``positions`` (consecutive days) with the §2 schedule.

    A fit that raises keeps the model's last good state (the bar is then folded in with
    ``update``); a model never fitted successfully is re-fitted at the next origin. Any
    step that raises gives failed ranges for that origin; the run goes on.
    """
    model = factory()
    name = getattr(model, "name", type(model).__name__)
    fitted = False
    closes = history["close"].to_numpy(dtype=np.float64)
    out: list[_Origin] = []
    for i, t in enumerate(positions):
        anchor = float(closes[t])
        error = ""
        try:
            if i % refit_every == 0 or not fitted:
                try:
                    model.fit(information_set(history, t))
                    fitted = True
                except Exception as exc:  # a model's fit may fail in any way; we go on
                    error = f"fit failed: {type(exc).__name__}: {exc}"
                    if not fitted:
                        raise
                    model.update(bar_at(history, t))
            else:
                model.update(bar_at(history, t))
        except Exception as exc:
            reason = error or f"update failed: {type(exc).__name__}: {exc}"
            fitted = fitted and not error  # a failed update leaves the state unknown
            out.append(
                _Origin(
                    {h: PriceRange.failure(name, h, confidence, anchor, reason) for h in horizons}
                )
            )
            if on_origin:
                on_origin()
            continue
        ranges: dict[int, PriceRange] = {}
        parts: dict[int, Mapping[str, PriceRange]] = {}
        member_ranges = getattr(model, "forecast_parts", None)
        for h in horizons:
            if t + h >= len(history):
                continue
            try:
                rng = model.forecast(h, confidence)
                if member_ranges is not None:
                    # An ensemble's members, scored from the same run (no second pass).
                    parts[h] = member_ranges(h, confidence)
            except Exception as exc:
                rng = PriceRange.failure(
                    name, h, confidence, anchor, f"forecast failed: {type(exc).__name__}: {exc}"
                )
            if error and rng.status.state is not Status.FAILED:
                rng = _with_reason(rng, error)
            ranges[h] = rng
        out.append(_Origin(ranges, parts))
        if on_origin:
            on_origin()
    return out


def _with_reason(rng: PriceRange, reason: str) -> PriceRange:
    note = f"{rng.status.reason}; {reason}" if rng.status.reason else reason
    return replace(rng, status=ModelStatus.degraded(note))


def _range_values(rng: PriceRange | None) -> tuple[float, float, float, float, float, str, str]:
    nan = math.nan
    if rng is None:
        return nan, nan, nan, nan, nan, Status.FAILED.value, "no forecast"
    failed = rng.status.state is Status.FAILED

    def value(v: float | None) -> float:
        return nan if failed or v is None else float(v)

    return (
        value(rng.low),
        value(rng.high),
        value(rng.path_low),
        value(rng.path_high),
        value(rng.center),
        rng.status.state.value,
        rng.status.reason,
    )


def _forecast_frame(
    results: list[_Origin], history: pd.DataFrame, positions: np.ndarray, horizon: int
) -> pd.DataFrame:
    keep = positions + horizon < len(history)
    pos_h = positions[keep]
    rows = [_range_values(r.ranges.get(horizon)) for r, k in zip(results, keep, strict=True) if k]
    frame = realised_outcomes(history, pos_h, horizon)
    values = pd.DataFrame(
        rows,
        columns=["close_lo", "close_hi", "path_lo", "path_hi", "center", "status", "reason"],
        index=frame.index,
    )
    frame = pd.concat([values, frame], axis=1)
    frame.insert(0, "anchor", history["close"].to_numpy(dtype=np.float64)[pos_h])
    return frame[list(FORECAST_COLUMNS)]


@dataclass
class ValidationResult:
    """Forecast frames (method → horizon → frame indexed by origin) and their scores.

    Frame columns (:data:`FORECAST_COLUMNS`): ``anchor`` (close at the origin), the four
    bounds (NaN where the forecast failed or a method has no path range), ``center``,
    the outcomes ``close``, ``path_min``, ``path_max``, and the model's ``status`` and
    ``reason``.
    """

    forecasts: dict[str, dict[int, pd.DataFrame]]
    scores: dict[int, dict[Kind, ScoreTable]]  # horizon → kind ("close"/"path") → table
    coverage_by_year: pd.DataFrame  # h = 1 (or the shortest horizon) close coverage
    elapsed: dict[str, float]  # wall seconds per method (for reports, never asserted)
    horizons: tuple[int, ...]
    confidence: float
    start: pd.Timestamp
    end: pd.Timestamp
    failures: dict[str, int] = field(default_factory=dict)  # failed (origin, h) per method

    @property
    def methods(self) -> list[str]:
        return list(self.forecasts)

    def frames(self, horizon: int) -> dict[str, pd.DataFrame]:
        return {m: by_h[horizon] for m, by_h in self.forecasts.items()}


def walk_forward(
    methods: Mapping[str, ModelFactory],
    history: pd.DataFrame,
    *,
    start: str | pd.Timestamp = "2015-01-01",
    end: str | pd.Timestamp = "2018-12-31",
    horizons: Iterable[int] = (1, 5),
    confidence: float = 0.9,
    refit_every: int = 5,
    progress: ProgressCallback | None = None,
) -> ValidationResult:
    """Run every method over the window's origins and score them (QUALITY-PROTOCOL §2, §4).

    ``methods`` maps a display name to a factory that makes a fresh model. A model with a
    ``forecast_parts(steps, confidence) -> {member: PriceRange}`` method (the ensemble)
    also has each member scored, under the member's name, from the same run.
    """
    history = _checked(history)
    hs = _check_horizons(horizons)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every!r}")
    if not methods:
        raise ValueError("methods is empty: give at least one name → model factory")
    positions = origin_positions(history, start, end, hs[0])
    if positions.size == 0:
        raise ValueError(f"no origins between {start} and {end} with {hs[0]} day(s) ahead")

    total = len(methods) * positions.size
    done = 0
    forecasts: dict[str, dict[int, pd.DataFrame]] = {}
    elapsed: dict[str, float] = {}
    failures: dict[str, int] = {}
    for name, factory in methods.items():

        def tick(name: str = name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(name, done, total)

        began = time.perf_counter()
        results = _run_model(
            factory, history, positions.tolist(), hs, confidence, refit_every, tick
        )
        elapsed[name] = time.perf_counter() - began
        members = sorted({m for r in results for p in r.parts.values() for m in p})
        runs = {name: results}
        for member in members:
            runs[member] = [
                _Origin({h: p[member] for h, p in r.parts.items() if member in p}) for r in results
            ]
        for label, run in runs.items():
            forecasts[label] = {h: _forecast_frame(run, history, positions, h) for h in hs}
            failures[label] = sum(
                int((f["status"] == Status.FAILED.value).sum()) for f in forecasts[label].values()
            )

    alpha = 1.0 - confidence
    scores = {
        h: {
            kind: score_table({m: f[h] for m, f in forecasts.items()}, kind, h, alpha)
            for kind in KINDS
        }
        for h in hs
    }
    by_year = coverage_by_year({m: f[hs[0]] for m, f in forecasts.items()}, "close")
    return ValidationResult(
        forecasts=forecasts,
        scores=scores,
        coverage_by_year=by_year,
        elapsed=elapsed,
        horizons=hs,
        confidence=confidence,
        start=pd.Timestamp(start),
        end=pd.Timestamp(end),
        failures=failures,
    )


# ---------------------------------------------------------------------------------------
# Look-ahead verification (§2)


def perturb_after(history: pd.DataFrame, cut: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``history`` whose rows after position ``cut`` are a different random path.

    Closes follow a random walk from ``C_cut`` with 2% daily log-volatility (about twice
    the S&P's, so every later row differs); opens, highs and lows are built around them
    so bars stay valid (``low <= open, close <= high``); the VIX becomes a random walk
    from its last value where it was known and stays NaN where it was not.
    """
    out = history.copy(deep=True)
    n = len(history) - cut - 1
    if n <= 0:
        return out
    close0 = float(history["close"].to_numpy(dtype=np.float64)[cut])
    log_close = math.log(close0) + np.cumsum(rng.normal(0.0, 0.02, n))
    close = np.exp(log_close)
    prev = np.concatenate([[close0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.005, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, n)))
    vix = history["vix"].to_numpy(dtype=np.float64)
    known = vix[: cut + 1][np.isfinite(vix[: cut + 1])]
    vix0 = float(known[-1]) if known.size else 20.0
    new_vix = vix0 * np.exp(np.cumsum(rng.normal(0.0, 0.08, n)))
    new_vix = np.where(np.isfinite(vix[cut + 1 :]), new_vix, np.nan)
    for column, values in (
        ("open", open_),
        ("high", high),
        ("low", low),
        ("close", close),
        ("vix", new_vix),
    ):
        replaced = out[column].to_numpy(dtype=np.float64, copy=True)
        replaced[cut + 1 :] = values
        out[column] = replaced
    return out


@dataclass(frozen=True)
class LookAheadReport:
    """Outcome of :func:`look_ahead_check`.

    ``max_diff_before``: largest absolute change of any forecast at an origin up to a cut;
    ``changed_after``: per cut, whether some forecast after the cut changed.
    """

    passed: bool
    max_diff_before: float
    changed_after: dict[int, bool]
    violations: tuple[str, ...]


def _forecasts_at(
    factory: ModelFactory,
    history: pd.DataFrame,
    origins: Sequence[int],
    horizons: tuple[int, ...],
    confidence: float,
    refit_every: int,
) -> np.ndarray:
    """Forecast bounds (origin × horizon × 4) of a fresh model per origin.

    The ``i``-th origin is reached with the walk-forward schedule: fit ``i mod
    refit_every`` days earlier, then ``update`` day by day, so both verbs are checked.
    """
    out = np.full((len(origins), len(horizons), len(_BOUNDS)), np.nan)
    for i, t in enumerate(origins):
        lag = min(i % refit_every, t)
        days = list(range(t - lag, t + 1))
        result = _run_model(factory, history, days, horizons, confidence, refit_every=lag + 1)[-1]
        for j, h in enumerate(horizons):
            values = _range_values(result.ranges.get(h))
            out[i, j, :] = values[:4]
    return out


def look_ahead_check(
    method_factory: ModelFactory,
    history: pd.DataFrame,
    origins: Sequence[int],
    cut_points: Sequence[int],
    seed: int,
    *,
    horizons: Iterable[int] = (1, 5),
    confidence: float = 0.9,
    refit_every: int = 5,
    atol: float = 1e-9,
) -> LookAheadReport:
    """Check that forecasts depend only on the information set (QUALITY-PROTOCOL §2).

    ``origins`` and ``cut_points`` are row positions. For each cut every row after it is
    replaced by a random path (:func:`perturb_after`, one generator stream per cut from
    ``seed``); forecasts at origins ``<= cut`` must match the original run within
    ``atol`` (NaN equal to NaN), and some forecast at an origin ``> cut`` must change
    (otherwise the check says nothing: the cut is flagged as vacuous). This also demands
    that the method is deterministic. Put some cuts exactly at origins whose index is a
    multiple of ``refit_every`` (reached by ``fit`` alone) and others at ``update`` origins.

    What it can see: any dependence on rows after the cut of ``history``, whether the
    engine or the model let it in (e.g. a model that fishes the full frame out of the
    caller). What it cannot see: a model that reads future data from a source of its own
    (a file, a global), since the check only perturbs ``history``.
    """
    history = _checked(history)
    hs = _check_horizons(horizons)
    origins = sorted(int(t) for t in origins)
    if not origins or origins[0] < 0 or origins[-1] + min(hs) >= len(history):
        raise ValueError(
            f"origins must be row positions with {min(hs)} row(s) after them, got {origins}"
        )
    base = _forecasts_at(method_factory, history, origins, hs, confidence, refit_every)
    streams = np.random.SeedSequence(seed).spawn(len(cut_points))
    max_diff = 0.0
    changed: dict[int, bool] = {}
    violations: list[str] = []
    for cut, stream in zip(cut_points, streams, strict=True):
        perturbed = perturb_after(history, int(cut), np.random.default_rng(stream))
        other = _forecasts_at(method_factory, perturbed, origins, hs, confidence, refit_every)
        same = np.isclose(base, other, rtol=0.0, atol=atol, equal_nan=True)
        before = np.array([t <= cut for t in origins])
        if before.any():
            diff = np.abs(base[before] - other[before])
            both_nan = np.isnan(base[before]) & np.isnan(other[before])
            diff = np.where(both_nan, 0.0, diff)
            max_diff = max(max_diff, float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))))
            for i in np.flatnonzero(before):
                if not same[i].all():
                    violations.append(
                        f"cut {cut}: forecast at origin {origins[i]} changed after rows > {cut} "
                        "were replaced (look-ahead or non-determinism)"
                    )
        changed[int(cut)] = bool((~same[~before]).any()) if (~before).any() else False
        if not changed[int(cut)]:
            violations.append(f"cut {cut}: no forecast after the cut changed (vacuous check)")
    return LookAheadReport(not violations, max_diff, changed, tuple(violations))
