"""Forecast-quality metrics for price-range forecasts (QUALITY-PROTOCOL.md §4).

One rule covers both kinds of range. For origin ``t`` the range ``[L, U]`` is checked
against a *lower* and an *upper* observation: for the close interval both are the close
``y = C_{t+h}``; for the path range they are ``m = min Low`` and ``M = max High`` over
``t+1 .. t+h``. Then

* miss lo: ``lower < L``; miss hi: ``upper > U``; miss: either;
* interval score (Gneiting & Raftery 2007)
  ``IS = (U − L) + (2/α)(L − lower)·1{lower < L} + (2/α)(upper − U)·1{upper > U}``;
* width and IS are reported in percent of the close at the origin, ``C_t``.

Tests of the miss sequence ``I_t`` (nominal rate ``α = 0.10``):

* Kupiec (1995) unconditional coverage,
  ``LR = −2[ (n−x) ln(1−α) + x ln α − (n−x) ln(1−π̂) − x ln π̂ ] ~ χ²(1)``, ``π̂ = x/n``;
* Christoffersen (1998) independence (h = 1): first-order Markov chain against
  independence, ``LR = −2[ln L(π̂) − ln L(π̂₀₁, π̂₁₁)] ~ χ²(1)``;
* HAC (h > 1, overlapping misses): ``z = (Ī − α) / sqrt(Ŝ/n²)`` with ``Ŝ`` the truncated
  uniform-kernel (Hansen–Hodrick) long-run variance sum with ``h − 1`` lags;
* Diebold–Mariano (1995): ``z = d̄ / sqrt(Ŝ/n²)`` on per-origin IS % differences with the
  Newey–West (Bartlett) ``Ŝ`` and ``h − 1 + ⌊4(n/100)^{2/9}⌋`` lags; two-sided normal p.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats
from statsmodels.stats.sandwich_covariance import S_hac_simple, weights_bartlett, weights_uniform

Kind = Literal["close", "path"]
KINDS: tuple[Kind, ...] = ("close", "path")

ALPHA = 0.10
CALIBRATION_BAND_PP = 2.0

# Columns a forecast frame must carry for scoring (see models.validation).
BOUND_COLUMNS: Mapping[Kind, tuple[str, str]] = {
    "close": ("close_lo", "close_hi"),
    "path": ("path_lo", "path_hi"),
}
OUTCOME_COLUMNS: Mapping[Kind, tuple[str, str]] = {
    "close": ("close", "close"),
    "path": ("path_min", "path_max"),
}


def _as_float(a: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(a, dtype=np.float64)


def _as_bool(misses: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(misses)
    if arr.ndim != 1:
        raise ValueError(f"misses must be one-dimensional, got shape {arr.shape}")
    return arr.astype(bool)


def misses(
    lo: ArrayLike, hi: ArrayLike, lower: ArrayLike, upper: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Return (miss lo, miss hi) indicators: ``lower < lo`` and ``upper > hi``."""
    return _as_float(lower) < _as_float(lo), _as_float(upper) > _as_float(hi)


def interval_score(
    lo: ArrayLike, hi: ArrayLike, lower: ArrayLike, upper: ArrayLike, alpha: float = ALPHA
) -> NDArray[np.float64]:
    """Per-origin interval score in price units (formula in the module docstring)."""
    lo_, hi_, lower_, upper_ = map(_as_float, (lo, hi, lower, upper))
    penalty = (2.0 / alpha) * (np.maximum(lo_ - lower_, 0.0) + np.maximum(upper_ - hi_, 0.0))
    return (hi_ - lo_) + penalty


def kupiec_p(misses: ArrayLike, alpha: float = ALPHA) -> float:
    """p-value of Kupiec's LR test of unconditional coverage, H0: P(miss) = ``alpha``."""
    hits = _as_bool(misses)
    n = hits.size
    if n == 0:
        return math.nan
    x = int(hits.sum())
    pi = x / n
    # xlogy gives 0·ln 0 = 0, so x = 0 and x = n need no special case.
    loglik_h0 = special.xlogy(n - x, 1 - alpha) + special.xlogy(x, alpha)
    loglik_h1 = special.xlogy(n - x, 1 - pi) + special.xlogy(x, pi)
    lr = max(-2.0 * (loglik_h0 - loglik_h1), 0.0)
    return float(stats.chi2.sf(lr, df=1))


def christoffersen_p(misses: ArrayLike) -> float:
    """p-value of Christoffersen's first-order Markov independence LR test, χ²(1)."""
    hits = _as_bool(misses).astype(int)
    if hits.size < 2:
        return math.nan
    prev, cur = hits[:-1], hits[1:]
    n00 = int(np.sum((prev == 0) & (cur == 0)))
    n01 = int(np.sum((prev == 0) & (cur == 1)))
    n10 = int(np.sum((prev == 1) & (cur == 0)))
    n11 = int(np.sum((prev == 1) & (cur == 1)))
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    loglik_indep = special.xlogy(n00 + n10, 1 - pi) + special.xlogy(n01 + n11, pi)
    loglik_markov = (
        special.xlogy(n00, 1 - pi01)
        + special.xlogy(n01, pi01)
        + special.xlogy(n10, 1 - pi11)
        + special.xlogy(n11, pi11)
    )
    lr = max(-2.0 * (loglik_indep - loglik_markov), 0.0)
    return float(stats.chi2.sf(lr, df=1))


def _variance_of_mean(x: NDArray[np.float64], lags: int, kernel: str) -> float:
    """Long-run variance of the mean of ``x``: S / n² with the kernel-weighted sum S."""
    weights = weights_uniform if kernel == "uniform" else weights_bartlett
    centred = x - x.mean()
    s = float(S_hac_simple(centred, nlags=lags, weights_func=weights)[0, 0])
    return s / x.size**2


def hac_coverage_p(misses: ArrayLike, horizon: int, alpha: float = ALPHA) -> float:
    """Two-sided p of the z-test mean(miss) = ``alpha`` with a truncated uniform kernel.

    ``horizon − 1`` lags (Hansen–Hodrick): the overlap of ``h``-day outcomes makes the
    miss sequence MA(h−1) under a correct model. The uniform kernel can give a negative
    variance in small samples; then the Bartlett kernel (always ≥ 0) is used instead.
    """
    x = _as_bool(misses).astype(np.float64)
    if x.size < 2:
        return math.nan
    lags = max(horizon - 1, 0)
    var = _variance_of_mean(x, lags, "uniform")
    if var <= 0.0:
        var = _variance_of_mean(x, lags, "bartlett")
    if var <= 0.0:  # constant sequence: no information about the variance
        return 1.0 if x.mean() == alpha else 0.0
    z = (x.mean() - alpha) / math.sqrt(var)
    return float(2.0 * stats.norm.sf(abs(z)))


def dm_lags(n: int, horizon: int) -> int:
    """Newey–West lags of the protocol: ``h − 1 + ⌊4(n/100)^{2/9}⌋``."""
    return horizon - 1 + math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))


def _zero_mean_test(d: NDArray[np.float64], horizon: int) -> tuple[float, float]:
    """HAC standard error of ``mean(d)`` and the two-sided p of ``mean(d) = 0``.

    Newey–West (Bartlett) variance with the protocol's :func:`dm_lags`.
    """
    if d.size < 2:
        return math.nan, math.nan
    var = _variance_of_mean(d, dm_lags(d.size, horizon), "bartlett")
    if var <= 0.0:
        return 0.0, (1.0 if d.mean() == 0.0 else 0.0)
    z = d.mean() / math.sqrt(var)
    return math.sqrt(var), float(2.0 * stats.norm.sf(abs(z)))


def diebold_mariano_p(loss_a: ArrayLike, loss_b: ArrayLike, horizon: int) -> float:
    """Two-sided p of the Diebold–Mariano test of equal mean loss (Bartlett HAC)."""
    return _zero_mean_test(_as_float(loss_a) - _as_float(loss_b), horizon)[1]


def is_calibrated(
    cover_pct: float, band_pp: float = CALIBRATION_BAND_PP, alpha: float = ALPHA
) -> bool:
    """Coverage within ``100(1−α) ± band_pp`` percentage points (the ranking rule)."""
    return math.isfinite(cover_pct) and abs(cover_pct - 100.0 * (1.0 - alpha)) <= band_pp + 1e-12


@dataclass(frozen=True)
class IntervalScore:
    """The §4 metrics for one method, horizon and kind of range (percentages in %)."""

    method: str
    kind: Kind
    horizon: int
    n: int  # scored origins
    n_missing: int  # origins without a usable range (failed forecast or no path range)
    cover: float
    miss_lo: float
    miss_hi: float
    kupiec_p: float
    christoffersen_p: float  # h = 1 only, else NaN
    hac_p: float  # h > 1 only, else NaN
    width: float
    interval_score: float
    dm_p: float = math.nan  # vs the table's best calibrated method; NaN for the best itself
    calibrated: bool = False

    @property
    def available(self) -> bool:
        return self.n > 0


@dataclass(frozen=True)
class ScoreTable:
    """One horizon and kind: a row per method and the best calibrated method (if any)."""

    horizon: int
    kind: Kind
    rows: tuple[IntervalScore, ...]
    best: str | None
    # Per-origin IS % by method (origin index), kept for DM tests and plots.
    is_pct: Mapping[str, pd.Series]

    def row(self, method: str) -> IntervalScore:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"method {method!r} not in table; have {[r.method for r in self.rows]}")

    def to_frame(self) -> pd.DataFrame:
        names = [f.name for f in fields(IntervalScore)]
        return pd.DataFrame([[getattr(r, n) for n in names] for r in self.rows], columns=names)


def score_method(
    frame: pd.DataFrame, method: str, kind: Kind, horizon: int, alpha: float = ALPHA
) -> tuple[IntervalScore, pd.Series]:
    """Metrics of one forecast frame (columns as in models.validation) and its IS % series.

    Origins where the range is not finite (failed forecast, or no path range) are left
    out and counted in ``n_missing``.
    """
    lo_col, hi_col = BOUND_COLUMNS[kind]
    lower_col, upper_col = OUTCOME_COLUMNS[kind]
    lo = frame[lo_col].to_numpy(dtype=np.float64)
    hi = frame[hi_col].to_numpy(dtype=np.float64)
    ok = np.isfinite(lo) & np.isfinite(hi)
    sub = frame.loc[ok]
    lo, hi = lo[ok], hi[ok]
    lower = sub[lower_col].to_numpy(dtype=np.float64)
    upper = sub[upper_col].to_numpy(dtype=np.float64)
    anchor = sub["anchor"].to_numpy(dtype=np.float64)
    n = int(ok.sum())
    if n == 0:
        nan = math.nan
        empty = pd.Series(dtype=np.float64, name=method)
        row = IntervalScore(
            method, kind, horizon, 0, len(frame), nan, nan, nan, nan, nan, nan, nan, nan
        )
        return row, empty
    miss_lo, miss_hi = misses(lo, hi, lower, upper)
    miss = miss_lo | miss_hi
    is_pct = 100.0 * interval_score(lo, hi, lower, upper, alpha) / anchor
    row = IntervalScore(
        method=method,
        kind=kind,
        horizon=horizon,
        n=n,
        n_missing=len(frame) - n,
        cover=100.0 * (1.0 - miss.mean()),
        miss_lo=100.0 * miss_lo.mean(),
        miss_hi=100.0 * miss_hi.mean(),
        kupiec_p=kupiec_p(miss, alpha),
        christoffersen_p=christoffersen_p(miss) if horizon == 1 else math.nan,
        hac_p=hac_coverage_p(miss, horizon, alpha) if horizon > 1 else math.nan,
        width=float(np.mean(100.0 * (hi - lo) / anchor)),
        interval_score=float(is_pct.mean()),
        calibrated=is_calibrated(100.0 * (1.0 - miss.mean()), alpha=alpha),
    )
    return row, pd.Series(is_pct, index=sub.index, name=method)


def score_table(
    frames: Mapping[str, pd.DataFrame], kind: Kind, horizon: int, alpha: float = ALPHA
) -> ScoreTable:
    """Score every method, pick the best calibrated one (lowest mean IS %), add DM p."""
    scored = {m: score_method(f, m, kind, horizon, alpha) for m, f in frames.items()}
    calibrated = [r for r, _ in scored.values() if r.available and r.calibrated]
    best = min(calibrated, key=lambda r: r.interval_score).method if calibrated else None
    rows: list[IntervalScore] = []
    for method, (row, series) in scored.items():
        dm = math.nan
        if best is not None and method != best and row.available:
            a, b = series.align(scored[best][1], join="inner")
            dm = diebold_mariano_p(a.to_numpy(), b.to_numpy(), horizon)
        rows.append(_replace_dm(row, dm))
    return ScoreTable(horizon, kind, tuple(rows), best, {m: s for m, (_, s) in scored.items()})


def _replace_dm(row: IntervalScore, dm_p: float) -> IntervalScore:
    values = {f.name: getattr(row, f.name) for f in fields(IntervalScore)}
    values["dm_p"] = dm_p
    return IntervalScore(**values)


def coverage_by_year(frames: Mapping[str, pd.DataFrame], kind: Kind = "close") -> pd.DataFrame:
    """Coverage % per calendar year of the origin (rows) and method (columns)."""
    lo_col, hi_col = BOUND_COLUMNS[kind]
    lower_col, upper_col = OUTCOME_COLUMNS[kind]
    out: dict[str, pd.Series] = {}
    for method, frame in frames.items():
        ok = np.isfinite(frame[lo_col]) & np.isfinite(frame[hi_col])
        sub = frame.loc[ok]
        miss_lo, miss_hi = misses(sub[lo_col], sub[hi_col], sub[lower_col], sub[upper_col])
        covered = pd.Series(~(miss_lo | miss_hi), index=sub.index, dtype=np.float64)
        years = pd.DatetimeIndex(sub.index).year
        out[method] = 100.0 * covered.groupby(years).mean()
    table = pd.DataFrame(out)
    table.index.name = "year"
    return table


def order_by_rank(rows: Sequence[IntervalScore]) -> list[IntervalScore]:
    """Calibrated methods first by IS %, then the rest by IS %, unavailable ones last."""

    def key(r: IntervalScore) -> tuple[int, float]:
        if not r.available:
            return (2, 0.0)
        return (0 if r.calibrated else 1, r.interval_score)

    return sorted(rows, key=key)


@dataclass(frozen=True)
class RelativeGain:
    """A reference method's mean IS % against another method's, per table and on average.

    ``change_pct[k]`` is ``100 (IS_ref / IS_method − 1)`` on table ``k``'s common origins
    (negative: the reference is lower, i.e. better); ``average_pct`` is their mean, the
    figure the issue's "on average over the four tables" target reads.
    """

    method: str
    tables: tuple[tuple[int, Kind], ...]
    change_pct: tuple[float, ...]
    average_pct: float
    se_pct: float  # HAC standard error of the average
    dm_p: float  # two-sided p of "no average change"


def relative_gains(tables: Sequence[ScoreTable], reference: str) -> list[RelativeGain]:
    """The ``reference`` method against every other method scored in all ``tables``.

    The average's uncertainty comes from the per-origin series
    ``D_t = mean_k 100 (IS_ref,k,t − IS_m,k,t) / mean_t IS_m,k`` on the origins every
    table shares (the longest horizon's): its mean is the average change on those
    origins, and its Newey–West variance (the protocol's DM lags for the longest horizon)
    accounts for the overlap of multi-day outcomes and for the four tables sharing
    origins, which an average of per-table standard errors would not.
    """
    if not tables:
        return []
    horizon = max(t.horizon for t in tables)
    others = [m for m in tables[0].is_pct if m != reference]
    gains: list[RelativeGain] = []
    for method in others:
        per_table: list[float] = []
        parts: list[pd.Series] = []
        for table in tables:
            ref, other = table.is_pct.get(reference), table.is_pct.get(method)
            if ref is None or other is None or ref.empty or other.empty:
                break
            a, b = ref.align(other, join="inner")
            per_table.append(100.0 * (a.mean() / b.mean() - 1.0))
            parts.append(100.0 * (a - b) / b.mean())
        else:
            joint = pd.concat(parts, axis=1, join="inner").mean(axis=1).to_numpy(np.float64)
            se, p = _zero_mean_test(joint, horizon)
            gains.append(
                RelativeGain(
                    method,
                    tuple((t.horizon, t.kind) for t in tables),
                    tuple(per_table),
                    float(np.mean(per_table)),
                    se,
                    p,
                )
            )
    return gains
