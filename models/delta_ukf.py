"""Option chains filtered by the Rust UKF smile model; the range from the implied smile.

State ``x = [a, b, c]``: the ATM implied-volatility level, skew and curvature of the
30-day smile, ``iv(k) = a + b·k + c·k²`` with ``k = ln(K/F)/√τ`` (the convention of
:mod:`models.smile`). Each chain snapshot's quotes of the expiry nearest 30 days are one
UKF update (``rust_filters.SmileModel``, measurement ``"iv"`` or the Black–Scholes
``"delta"`` of each quoted strike), so the measurement size follows the chain; between
chains the state mean-reverts with the elapsed time.

Range. For a quantile level ``p`` with ``z = Φ⁻¹(p)``, the strike the market prices at
that quantile has moneyness ``k_p = z·iv(k_p)`` (solved by fixed point), so the smile's
volatility there, ``iv(k_p)``, sets that side of the range:

    q_p = C · exp(z · iv(k_p) · √(h/252) · ρ),

and the path range uses the Brownian barrier ``X`` of the confidence with the smile's
volatility at ``∓X``. ``ρ = sqrt(trailing realised variance / trailing implied
variance)`` (one year of closes and filtered ATM levels) corrects for the variance risk
premium: implied volatility over-predicts realised. Until there are 60 days of both,
``ρ`` is the configured ``vix.coefficient``. The smile enters shrunk by
``skew_weight``: the risk-neutral skew prices crash insurance and is several times
steeper than the skew of realised returns (Bakshi, Kapadia & Madan 2003, "Stock return
characteristics, skew laws, and the differential pricing of individual equity options",
RFS 16(1)), so only part of it belongs in a forecast of actual prices. The put skew
thus widens the lower side of the range, less than the option market prices it.

Chains. Real historical chains are not available offline. When a bar arrives and no
chain came since the previous bar, the model filters a **synthetic** chain generated from
that bar's VIX by :func:`models.smile.generate_chain` (seeded by the date); reports built
on it must say the chains are synthetic. A chain from the feed (``update_chain``) is used
as it comes.
"""

from __future__ import annotations

import base64
import functools
import math
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.returns import check_bar, check_forecast_args, checked_history
from models.smile import DEFAULT_MODEL, generate_chain, time_to_expiry, to_ns
from models.weighting import OptionSignals

if TYPE_CHECKING:
    from rust_filters import UKF

TRADING_DAYS = 252
TARGET_TAU = 30 / 365
_SKEW_HISTORY = 60
_SESSION_CLOSE = pd.Timedelta(hours=16)


class DeltaUKF:
    """The ``delta_ukf`` member."""

    name = "delta_ukf"

    def __init__(
        self,
        *,
        measurement: str = "iv",
        seed: int = 0,
        vrp_window: int = 252,
        noise_sd: float = 0.004,
        synthetic_chains: bool = True,
        skew_weight: float = 0.35,
        vix_coefficient: float = 0.8,
    ) -> None:
        if not (math.isfinite(vix_coefficient) and vix_coefficient > 0):
            raise ValueError(f"vix_coefficient must be > 0, got {vix_coefficient}")
        self.vix_coefficient = vix_coefficient
        if not 0.0 <= skew_weight <= 1.0:
            raise ValueError(f"skew_weight must be in [0, 1], got {skew_weight}")
        self.skew_weight = skew_weight
        if measurement not in ("iv", "delta"):
            raise ValueError(f"measurement must be 'iv' or 'delta', got {measurement!r}")
        self.measurement = measurement
        self.seed = seed
        self.vrp_window = vrp_window
        self.noise_sd = noise_sd
        self.synthetic_chains = synthetic_chains
        self._ukf: UKF | None = None
        self._closes: deque[float] = deque(maxlen=vrp_window + 1)
        self._implied_var: deque[float] = deque(maxlen=vrp_window + 1)
        self._skews: deque[float] = deque(maxlen=_SKEW_HISTORY)
        self._last_ts: pd.Timestamp | None = None
        self._last_chain_ns: int | None = None
        self._fresh_chain = False
        self._chains_seen = 0
        self._synthetic = 0
        self._reset_chain: int | None = None  # _chains_seen when the filter last reset

    # -- verbs ------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> FitResult:
        """Filter one chain per bar over the last year of history.

        The model has no parameters to estimate (the VRP ratio is a trailing window), so
        a refit on a history that extends the one already filtered only catches up on the
        new bars; any other history starts over.
        """
        history = checked_history(history, min_rows=30)
        if self._continues(history):
            assert self._last_ts is not None
            tail = history.loc[history.index > self._last_ts]
        else:
            self._reset()
            tail = history.iloc[-(self.vrp_window + 1) :]
        for ts, close, vix in zip(tail.index, tail["close"], tail["vix"], strict=True):
            self._on_bar(pd.Timestamp(ts), float(close), float(vix) if np.isfinite(vix) else None)
        params: dict[str, float] = {"vrp_ratio": self.vrp_ratio}
        if self._ukf is not None:
            level, skew, curv = (float(v) for v in self._ukf.x)
            params.update(level=level, skew=skew, curvature=curv)
        message = "" if self._ukf is not None else "no VIX or chain in the history"
        return FitResult(self.name, params, nobs=len(self._closes), message=message)

    def _continues(self, history: pd.DataFrame) -> bool:
        if self._last_ts is None or not self._closes or self._last_ts not in history.index:
            return False
        return bool(history.loc[self._last_ts, "close"] == self._closes[-1])

    def _reset(self) -> None:
        self._ukf = None
        self._closes.clear()
        self._implied_var.clear()
        self._skews.clear()
        self._last_ts = None
        self._last_chain_ns = None
        self._fresh_chain = False
        self._chains_seen = self._synthetic = 0
        self._reset_chain = None

    def update(self, bar: Bar) -> None:
        if not self._closes:
            raise RuntimeError("fit() before update()")
        check_bar(bar, self._last_ts)
        self._on_bar(bar.ts, bar.close, bar.vix)

    def update_chain(self, chain: Any) -> None:
        """Filter a chain snapshot (a message dict or an object with the same fields)."""
        self._filter_chain(chain)
        self._fresh_chain = True

    def chain_state(self) -> dict[str, Any]:
        """What the chains have set, as plain data (JSON-able): the smile filter and its
        chain counters. The rest of the state follows from the bars, so a restart that
        replays the bars and puts this back before each one rebuilds the member exactly."""
        return {
            "ukf": None if self._ukf is None else base64.b64encode(self._ukf.snapshot()).decode(),
            "last_chain_ns": self._last_chain_ns,
            "fresh_chain": self._fresh_chain,
            "chains_seen": self._chains_seen,
            "synthetic": self._synthetic,
            "reset_chain": self._reset_chain,
        }

    def restore_chain_state(self, state: Mapping[str, Any]) -> None:
        """Put back a :meth:`chain_state` (the filter continues bit-identically)."""
        from rust_filters import UKF

        raw = state["ukf"]
        self._ukf = None if raw is None else UKF.restore(base64.b64decode(raw))
        self._last_chain_ns = state["last_chain_ns"]
        self._fresh_chain = bool(state["fresh_chain"])
        self._chains_seen = int(state["chains_seen"])
        self._synthetic = int(state["synthetic"])
        self._reset_chain = state["reset_chain"]

    def option_signals(self) -> OptionSignals:
        if self._ukf is None or len(self._skews) < 5:
            return OptionSignals(None, self._fresh_chain)
        skews = np.asarray(self._skews)
        sd = float(skews.std())
        # Skew is negative for index smiles: richer puts = more negative = positive z.
        z = 0.0 if sd <= 0 else float((skews.mean() - float(self._ukf.x[1])) / sd)
        return OptionSignals(z, self._fresh_chain)

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        check_forecast_args(steps, confidence)
        if not self._closes:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        anchor = self._closes[-1]
        if self._ukf is None:
            return PriceRange.failure(self.name, steps, confidence, anchor, "no chain yet")
        level, skew, curv = (float(v) for v in self._ukf.x)
        skew, curv = self.skew_weight * skew, self.skew_weight * curv
        scale = math.sqrt(steps / TRADING_DAYS) * math.sqrt(self.vrp_ratio)
        alpha = 1.0 - confidence
        z_hi = float(norm.ppf(1 - alpha / 2))

        def vol_at(z: float) -> float:
            k = 0.0
            for _ in range(8):  # k = z·iv(k): a contraction for realistic smiles
                k = z * max(level + skew * k + curv * k * k, 0.5 * level)
            return max(level + skew * k + curv * k * k, 0.5 * level)

        barrier = _barrier(confidence)
        try:
            low = anchor * math.exp(-z_hi * vol_at(-z_hi) * scale)
            high = anchor * math.exp(z_hi * vol_at(z_hi) * scale)
            path_low = anchor * math.exp(-barrier * vol_at(-barrier) * scale)
            path_high = anchor * math.exp(barrier * vol_at(barrier) * scale)
        except OverflowError:
            low = high = path_low = path_high = math.nan
        if not all(math.isfinite(v) and v > 0 for v in (low, high, path_low, path_high)):
            # Hostile chains (every IV at the bound) can filter to a smile whose fixed point
            # k = z·iv(k) runs away: no range, rather than an overflow or an inf.
            why = (
                f"the filtered smile gives no finite range (level {level:.3g}, "
                f"skew {skew:.3g}, curvature {curv:.3g})"
            )
            return PriceRange.failure(self.name, steps, confidence, anchor, why)
        status = ModelStatus.ok()
        if self._synthetic and self._synthetic == self._chains_seen:
            status = ModelStatus.degraded("synthetic chains (generated from the VIX)")
        if not self._fresh_chain and self._synthetic < self._chains_seen:
            status = ModelStatus.degraded("no new chain since the last bar")
        recent = self._reset_chain is not None and (
            self._chains_seen - self._reset_chain < RESET_REPORT_CHAINS
        )
        if recent:  # the most important thing to say, so said last
            status = ModelStatus.degraded(f"smile filter reset: {self._ukf.last_reset_reason}")
        return PriceRange(
            self.name, steps, confidence, anchor, low, high, anchor,
            path_low=path_low, path_high=path_high,
            quantiles={alpha / 2: low, 0.5: anchor, 1 - alpha / 2: high}, status=status,
        )  # fmt: skip

    @property
    def vrp_ratio(self) -> float:
        """Trailing realised over implied variance; until there are 60 days of both, the
        configured prior ``vix_coefficient²`` (``vix.coefficient``: σ = coefficient·VIX)."""
        prior = self.vix_coefficient**2
        closes = np.asarray(self._closes)
        implied = np.asarray(self._implied_var)
        if len(closes) < 60 or len(implied) < len(closes):
            return prior
        r2 = np.diff(np.log(closes)) ** 2
        iv = implied[:-1]  # the implied variance known the day before each return
        ok = np.isfinite(iv)
        if ok.sum() < 60:
            return prior
        return float(np.clip(r2[ok].sum() / iv[ok].sum(), 0.2, 2.0))

    # -- internals --------------------------------------------------------------------

    def _on_bar(self, ts: pd.Timestamp, close: float, vix: float | None) -> None:
        if not (math.isfinite(close) and close > 0):
            raise ValueError(f"bar close must be finite and > 0, got {close}")
        if not self._fresh_chain and self.synthetic_chains and vix is not None:
            at_close = ts.normalize() + _SESSION_CLOSE
            ts_ns = int(at_close.tz_localize("America/New_York").tz_convert("UTC").value)
            seed = self.seed + int(ts.strftime("%Y%m%d"))
            chain = generate_chain("SYN", ts_ns, close, vix, expiries_days=(30,), seed=seed)
            self._filter_chain(chain)
            self._synthetic += 1
        self._closes.append(close)
        level = float(self._ukf.x[0]) if self._ukf is not None else float("nan")
        self._implied_var.append(level**2 / TRADING_DAYS)
        if self._ukf is not None:
            self._skews.append(float(self._ukf.x[1]))
        self._last_ts = ts
        self._fresh_chain = False

    def _filter_chain(self, chain: Any) -> None:
        from rust_filters import UKF, SmileModel

        ts_ns, spot, quotes = _chain_fields(chain)
        taus = np.array([time_to_expiry(ts_ns, q["expiry"]) for q in quotes])
        if not len(taus) or not np.all(taus > 0):
            raise ValueError("chain has no quote with a future expiry")
        _check_quotes(spot, quotes)
        nearest = taus[np.argmin(np.abs(taus - TARGET_TAU))]
        use = np.isclose(taus, nearest)
        tau = taus[use]
        strikes = np.array([q["strike"] for q in quotes])[use]
        is_call = np.array([q["right"] == "C" for q in quotes])[use]
        key = "iv" if self.measurement == "iv" else "delta"
        values = np.array([q[key] for q in quotes], dtype=float)[use]
        k = SmileModel.moneyness(strikes, spot, tau)
        if self._ukf is None:
            start = _initial_state(quotes, use, k)
            model = SmileModel(
                start, [0.05, 0.05, 0.05], [0.01, 0.01, 0.005],
                measurement=self.measurement, noise_sd=self.noise_sd,  # type: ignore[arg-type]
            )  # fmt: skip
            self._ukf = UKF(model, start, np.diag([0.02, 0.02, 0.01]) ** 2)
            self._ukf.update_quotes(k, tau, values, is_call=is_call)
        else:
            days = 1.0 if self._last_chain_ns is None else (ts_ns - self._last_chain_ns) / 86_400e9
            resets = self._ukf.n_resets
            self._ukf.step_quotes(k, tau, values, max(days, 1e-6), is_call=is_call)
            if self._ukf.n_resets > resets:
                self._reset_chain = self._chains_seen + 1
        self._last_chain_ns = ts_ns
        self._chains_seen += 1


# A reset of the smile filter (back to its prior) is reported for this many chains after it.
RESET_REPORT_CHAINS = 20

# An annualised implied vol above 500 % is not a quote but a unit error (IVs in percent:
# 25 for 0.25), which the filter would take as a crash and turn into a range to zero.
MAX_IV = 5.0


def _check_quotes(spot: float, quotes: list[Mapping[str, Any]]) -> None:
    """Refuse a chain before any of it reaches the filter (the state stays unchanged)."""
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"chain underlying_price must be finite and > 0, got {spot!r}")
    for q in quotes:
        strike, iv, delta = float(q["strike"]), float(q["iv"]), float(q["delta"])
        if not (math.isfinite(strike) and strike > 0):
            raise ValueError(f"chain strike must be finite and > 0, got {strike!r}")
        if not (math.isfinite(iv) and 0 < iv <= MAX_IV):
            raise ValueError(
                f"chain iv at strike {strike:g} must be an annualised fraction in "
                f"(0, {MAX_IV:g}] (0.25 for 25 %), got {iv!r}"
            )
        if not (math.isfinite(delta) and -1.0 <= delta <= 1.0):
            raise ValueError(f"chain delta at strike {strike:g} must be in [-1, 1], got {delta!r}")


@functools.lru_cache(maxsize=16)
def _barrier(confidence: float) -> float:
    from models.baselines import brownian_barrier

    return brownian_barrier(confidence)


def _chain_fields(chain: Any) -> tuple[int, float, list[Mapping[str, Any]]]:
    """(ts ns, underlying, quotes as dicts) from a message dict or a parsed chain object."""
    if isinstance(chain, Mapping):
        # A message's ts is epoch ns or zoned ISO-8601 (DESIGN "Messages").
        return to_ns(chain["ts"]), float(chain["underlying_price"]), list(chain["quotes"])
    quotes: list[Mapping[str, Any]] = [
        {"expiry": q.expiry, "strike": q.strike, "right": q.right, "iv": q.iv, "delta": q.delta}
        for q in chain.quotes
    ]
    return int(chain.ts), float(chain.underlying_price), quotes


def _initial_state(quotes: list[Mapping[str, Any]], use: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Least-squares quadratic through the first chain's IVs (the filter's prior mean)."""
    iv = np.array([q["iv"] for q in quotes], dtype=float)[use]
    if len(iv) >= 3:
        coef = np.polyfit(k, iv, 2)
        return np.array([coef[2], coef[1], coef[0]])
    return np.array(
        [float(np.mean(iv)), DEFAULT_MODEL.params(100 * float(np.mean(iv)), TARGET_TAU).skew, 0.0]
    )
