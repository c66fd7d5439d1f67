"""Intraday volatility filtered from every tick: the Rust UKF and bootstrap particle filter.

Both filters run the same stochastic-volatility model as the ``ekpf`` member: ``h``, the
log-variance of the daily return in percent, is an Ornstein–Uhlenbeck process in trading
time, and each tick's log return ``r`` (percent) over ``dt`` trading days is
``N(0, dt e^h)``. The UKF observes the per-day return ``y = r / sqrt(dt)`` as ``[y, |y|]``
(its models measure per unit time); the particle filter takes ``r`` and ``dt`` as they are.
Trading time runs at the session's pace (``dt = seconds / 23,400``); a gap longer than an
hour (overnight, weekend, halt) counts as :data:`GAP_DT` of a day, the share of a day's
variance that the S&P 500 accrues overnight, so an opening jump is
neither ignored nor taken as a whole day's move.

Cost per tick: one call into Rust (:class:`rust_filters.TickVolatility`), ~3 µs, most of it
the 256 particles on one thread.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SESSION_SECONDS = 23_400.0  # 09:30–16:00
GAP_SECONDS = 3_600.0  # a pause longer than this is not trading time
GAP_DT = 0.2  # overnight share of daily variance (S&P 500: about a fifth)
NS = 1_000_000_000


@dataclass(frozen=True)
class SVParams:
    """Daily stochastic-volatility parameters (returns in percent)."""

    mu: float
    phi: float
    sigma: float

    @classmethod
    def from_returns(cls, pct_returns: np.ndarray) -> SVParams:
        """A quick prior when no fitted SV member is at hand: the level from the sample
        variance, persistence and vol-of-vol at typical daily equity-index values
        (Pitt & Shephard's 0.97 / 0.18 are close to what the ``ekpf`` member estimates)."""
        y = np.asarray(pct_returns, dtype=float)
        y = y[np.isfinite(y)]
        if len(y) < 20:
            raise ValueError(f"need at least 20 returns to set the tick filters, got {len(y)}")
        return cls(mu=math.log(float(np.var(y))), phi=0.97, sigma=0.18)


class TickFilters:
    """One symbol's fast filters, stepped by every tick.

    The work is one call into Rust per tick (:class:`rust_filters.TickVolatility`):
    ``core.update(ts, price)`` is the stream's hot path and returns :meth:`volatility`.
    """

    def __init__(self, params: SVParams, *, n_particles: int = 256, seed: int = 0) -> None:
        from rust_filters import TickVolatility

        self.params = params
        self.core = TickVolatility(
            params.mu, params.phi, params.sigma, n_particles=n_particles, seed=seed,
            session_seconds=SESSION_SECONDS, gap_seconds=GAP_SECONDS, gap_dt=GAP_DT,
        )  # fmt: skip

    def trading_dt(self, seconds: float) -> float:
        """Trading days between two ticks ``seconds`` apart."""
        return self.core.trading_dt(seconds)

    def update(self, ts: int, price: float) -> tuple[float, float] | None:
        """Step both filters with the return since the previous tick (the first one only
        sets the reference price) and return :meth:`volatility`. A tick the filters refuse
        leaves them as they were (``rejected``, ``last_error``)."""
        return self.core.update(ts, price)

    def volatility(self) -> tuple[float, float] | None:
        """Filtered volatility, annualised percent: (UKF, particle filter); None before
        the second tick."""
        return self.core.volatility()

    @property
    def ticks(self) -> int:
        return self.core.ticks

    @property
    def rejected(self) -> int:
        """Ticks the filters refused (reason in :attr:`last_error`)."""
        return self.core.rejected

    @property
    def last_error(self) -> str | None:
        return self.core.last_error

    @property
    def resets(self) -> int:
        """Divergence resets of either filter."""
        return self.core.resets

    @property
    def last_reset_reason(self) -> str | None:
        """Why the last reset happened, prefixed by the filter (``ukf:`` or ``pf:``)."""
        return self.core.last_reset_reason

    # -- checkpoints ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; the Rust state goes as base64 of its exact snapshot."""
        return {
            "params": [self.params.mu, self.params.phi, self.params.sigma],
            "core": base64.b64encode(self.core.snapshot()).decode(),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> TickFilters:
        from rust_filters import TickVolatility

        out = cls.__new__(cls)
        out.params = SVParams(*data["params"])
        out.core = TickVolatility.restore(base64.b64decode(data["core"]))
        return out
