"""The forecast contract shared by every model, the ensemble and the stream engine.

Every model follows the same verbs (``river`` style, one verb each):

* ``fit(history)`` starts over on a history of daily bars and returns a :class:`FitResult`;
* ``update(bar)`` folds in one new closed bar (and its VIX, if any) without a refit;
* ``update_chain(chain)`` folds in an option-chain snapshot (a no-op for models that
  do not use chains);
* ``forecast(steps, confidence)`` reads the state, never changes it, and returns a
  :class:`PriceRange`.

History is a :class:`pandas.DataFrame` indexed by date (ascending) with the columns of
:data:`HISTORY_COLUMNS` (``vix`` may be NaN where the VIX is not known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import pandas as pd

HISTORY_COLUMNS = ("open", "high", "low", "close", "vix")


class Status(StrEnum):
    """Health of a model's forecast."""

    OK = "ok"
    DEGRADED = "degraded"  # produced a range, but an input was missing (reason says which)
    FAILED = "failed"  # no usable range (reason says why); the ensemble gives it weight 0


@dataclass(frozen=True)
class ModelStatus:
    state: Status = Status.OK
    reason: str = ""

    @classmethod
    def ok(cls) -> ModelStatus:
        return cls(Status.OK)

    @classmethod
    def degraded(cls, reason: str) -> ModelStatus:
        return cls(Status.DEGRADED, reason)

    @classmethod
    def failed(cls, reason: str) -> ModelStatus:
        return cls(Status.FAILED, reason)

    def __str__(self) -> str:
        return self.state.value if not self.reason else f"{self.state.value}: {self.reason}"


@dataclass(frozen=True)
class Bar:
    """One closed daily bar; ``vix`` is the VIX close of the same day, if known."""

    ts: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    vix: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """This bar as a one-row history frame (:data:`HISTORY_COLUMNS`; NaN VIX if none)."""
        return pd.DataFrame(
            {"open": [self.open], "high": [self.high], "low": [self.low], "close": [self.close],
             "vix": [math.nan if self.vix is None else self.vix]},
            index=pd.DatetimeIndex([self.ts]),
        )  # fmt: skip

    @classmethod
    def from_row(cls, ts: object, row: pd.Series) -> Bar:
        """The bar of one history row (a NaN or absent ``vix`` becomes None)."""
        vix = float(row["vix"]) if "vix" in row.index else math.nan
        return cls(
            ts=pd.Timestamp(ts),  # type: ignore[arg-type]
            open=float(row["open"]),
            high=float(row["high"]),
            low=float(row["low"]),
            close=float(row["close"]),
            vix=vix if math.isfinite(vix) else None,
        )


@dataclass(frozen=True)
class PriceRange:
    """A model's answer for one origin, horizon and confidence.

    ``low``/``high``: central interval for the close at ``t + horizon``.
    ``path_low``/``path_high``: the range that the path's minimum Low and maximum High
    stay within, jointly, with probability ``confidence`` (None if the model cannot say).
    ``quantiles``: predictive quantiles of the close at ``t + horizon`` by level.
    """

    model: str
    horizon: int
    confidence: float
    anchor: float  # the close at the origin
    low: float
    high: float
    center: float
    path_low: float | None = None
    path_high: float | None = None
    quantiles: Mapping[float, float] = field(default_factory=dict)
    status: ModelStatus = field(default_factory=ModelStatus.ok)

    def __post_init__(self) -> None:
        # Levels computed as (1 - 0.9) / 2 come out as 0.04999999999999999: key them by
        # the round level so that quantiles[0.05] finds it.
        if any(round(q, 10) != q for q in self.quantiles):
            keyed = {round(q, 10): v for q, v in self.quantiles.items()}
            object.__setattr__(self, "quantiles", keyed)

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, price: float) -> bool:
        return self.low <= price <= self.high

    @property
    def usable(self) -> bool:
        """A range the ensemble may use: not failed, finite, positive and ordered (the
        path range too, where there is one). The ensemble averages logs of the bounds."""
        path_ok = (
            self.path_low is None
            or self.path_high is None
            or (self.path_low > 0 and math.isfinite(self.path_high))
        )
        return (
            self.status.state is not Status.FAILED
            and all(math.isfinite(v) for v in (self.low, self.high, self.center))
            and 0 < self.low <= self.center <= self.high
            and path_ok
        )

    @classmethod
    def failure(
        cls, model: str, horizon: int, confidence: float, anchor: float, reason: str
    ) -> PriceRange:
        nan = float("nan")
        return cls(
            model, horizon, confidence, anchor, nan, nan, nan, status=ModelStatus.failed(reason)
        )


@dataclass(frozen=True)
class FitResult:
    """What a fit found: named parameters, standard errors, log-likelihood, convergence."""

    model: str
    params: Mapping[str, float]
    std_errors: Mapping[str, float] = field(default_factory=dict)
    loglik: float = float("nan")
    converged: bool = True
    message: str = ""
    nobs: int = 0


@runtime_checkable
class ForecastModel(Protocol):
    """The interface every model implements (see the module docstring)."""

    name: str

    def fit(self, history: pd.DataFrame) -> FitResult: ...

    def update(self, bar: Bar) -> None: ...

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange: ...
