"""Online calibration of each tail of a range: keeps long-run coverage at the nominal level.

A model's raw range ``[low, high]`` around the anchor price ``C`` is rescaled tail by tail
in log distance from the anchor:

    low' = C · exp(−k_lo · ln(C / low)),    high' = C · exp(k_hi · ln(high / C)).

When the outcome of a forecast becomes known (``horizon`` steps later, so feedback is
delayed exactly as in a walk-forward test), each tail's factor moves by a multiplicative
stochastic-approximation step toward the level at which that tail is breached with
probability ``tail``:

    log k ← log k + γ · (1{breach} − tail).

This is adaptive conformal inference (Gibbs & Candès 2021) applied per tail and in the
scale of the model's own interval (the "quantile tracking" form of Angelopoulos et al.
2023). Calibrating the two tails separately lets the range become asymmetric where the
data are (index returns: heavier lower tail), which a symmetric width adjustment cannot.
The factors are clamped to ``[k_min, k_max]`` so one shock cannot blow them up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TailFactors:
    low: float
    high: float


@dataclass
class TailCalibrator:
    """Per-tail multiplicative calibration with delayed feedback."""

    tail: float = 0.05  # target breach probability of each tail
    gamma: float = 0.05  # learning rate of log k
    k_min: float = 0.3
    k_max: float = 3.0
    log_k_low: float = 0.0
    log_k_high: float = 0.0
    updates: int = 0
    breaches_low: int = 0
    breaches_high: int = 0
    _pending: deque[tuple[Any, float, float, float]] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.tail < 0.5:
            raise ValueError(f"tail must be in (0, 0.5), got {self.tail}")
        if self.gamma < 0.0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if not 0.0 < self.k_min <= 1.0 <= self.k_max:
            raise ValueError(f"need 0 < k_min <= 1 <= k_max, got {self.k_min}, {self.k_max}")

    @property
    def factors(self) -> TailFactors:
        return TailFactors(math.exp(self.log_k_low), math.exp(self.log_k_high))

    def adjust(self, anchor: float, low: float, high: float) -> tuple[float, float]:
        """The calibrated range for a raw ``[low, high]`` around ``anchor``."""
        f = self.factors
        return (
            anchor * math.exp(-f.low * math.log(anchor / low)),
            anchor * math.exp(f.high * math.log(high / anchor)),
        )

    def record(self, key: Any, anchor: float, low: float, high: float) -> None:
        """Remember a raw forecast until its outcome arrives (``key`` identifies it)."""
        self._pending.append((key, anchor, low, high))

    def observe(self, key: Any, outcome_low: float, outcome_high: float) -> bool:
        """Score the recorded forecast ``key`` against its outcome and update the factors.

        ``outcome_low``/``outcome_high``: the realised value tested against each tail (the
        close twice for a close interval; the path's min Low and max High for a path
        range). Forecasts recorded before ``key`` and never observed are dropped. Returns
        False if ``key`` was not pending.
        """
        while self._pending and self._pending[0][0] != key:
            self._pending.popleft()
        if not self._pending:
            return False
        _, anchor, low, high = self._pending.popleft()
        low_c, high_c = self.adjust(anchor, low, high)
        breach_low = outcome_low < low_c
        breach_high = outcome_high > high_c
        self.log_k_low = self._step(self.log_k_low, breach_low)
        self.log_k_high = self._step(self.log_k_high, breach_high)
        self.updates += 1
        self.breaches_low += breach_low
        self.breaches_high += breach_high
        return True

    def _step(self, log_k: float, breach: bool) -> float:
        log_k += self.gamma * (float(breach) - self.tail)
        return min(max(log_k, math.log(self.k_min)), math.log(self.k_max))

    def state(self) -> dict[str, Any]:
        """Plain data, for snapshots (the pending forecasts included)."""
        return {
            "tail": self.tail, "gamma": self.gamma, "k_min": self.k_min, "k_max": self.k_max,
            "log_k_low": self.log_k_low, "log_k_high": self.log_k_high,
            "updates": self.updates, "breaches_low": self.breaches_low,
            "breaches_high": self.breaches_high,
            "pending": [list(p) for p in self._pending],
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TailCalibrator:
        data = dict(state)
        pending = data.pop("pending")
        out = cls(**data)
        out._pending = deque(tuple(p) for p in pending)
        return out
