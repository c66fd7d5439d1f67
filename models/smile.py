"""A synthetic option-chain smile model driven by the VIX.

Real historical option chains are not available offline, so backtests and the bundled
recorded feed use chains generated from the VIX by this documented, deterministic
(seeded) model. **Every chain it produces is synthetic**; reports built on it must say so.

Conventions
-----------
* Time to expiry ``τ`` is ACT/365 in years, measured from the quote time to 16:00
  America/New_York on the expiry date (:func:`time_to_expiry`).
* Forward ``F = S·exp(r·τ)`` (no dividend yield); ``r`` is continuously compounded.
* Standardised log-moneyness ``k = ln(K/F) / √τ``. Measuring moneyness in units of
  ``√τ`` makes one set of smile coefficients serve every expiry, with the slope in
  plain log-moneyness falling like ``1/√τ`` — the usual first approximation of the
  equity-index skew term structure (Gatheral, *The Volatility Surface*, 2006, ch. 3).

Model
-----
ATM term structure. ``σ₃₀ = VIX/100`` is the 30-day implied volatility. Other expiries
follow the expected average variance of a mean-reverting (Heston-type) variance::

    σ_atm²(τ) = θ² + (σ₃₀² − θ²) · g(τ) / g(τ₃₀),   g(τ) = (1 − e^{−κτ}) / (κτ)

so the curve is in mild contango when the VIX is below its long-run level ``θ`` and
inverts when the VIX is above it (the stylised fact of VIX futures and VIX9D/VIX/VIX3M).
It is floored at ``σ₃₀/2`` so very short expiries stay sensible.

Smile (quadratic in ``k``)::

    iv(k) = σ_atm(τ) + skew·k + curv·k²
    skew  = −s̄ · (σ₃₀/θ)^α,   α = −1/2
    curv  = |skew| / (2·z*·σ₃₀)

Equity-index smiles slope down: puts are richer than calls (crash insurance demand; Bollen
& Whaley, J. Finance 2004). In these units the 25-delta risk reversal is about
``1.35·|skew|·σ₃₀``, so ``α = −1/2`` makes it grow like ``√σ₃₀`` in vol points (skews
steepen in absolute terms in sell-offs) while the skew *relative to the ATM level* falls
like ``1/√σ₃₀`` (steepest when the VIX is low, as in 2017). ``curv > 0`` flattens the
call wing; the smile's minimum sits ``z*`` ATM standard deviations above the forward
(``k* = z*·σ₃₀``, a fixed point in delta terms, beyond the default strike range). The IV
is floored at ``σ_atm/2``. With the default coefficients the noise-free smile is free of
static arbitrage (prices monotone and convex in the strike) over the default strike range
for VIX 8–80 and expiries of 1–45 days (``tests/test_smile.py`` checks it); the per-quote
noise can break that between neighbouring strikes, as real quotes sometimes do.

Quotes. Each quote's IV gets independent Gaussian noise ``N(0, noise_sd²)`` from a seeded
generator; Black–Scholes delta, gamma and vega are computed from the *quoted* IV, and the
bid/ask bracket the Black–Scholes price of the quoted IV with a spread of
``max(0.10, spread_frac·price·√(σ₃₀/θ))`` rounded outward to the SPX tick (0.05
below 3.00, 0.10 above). Volumes are Poisson with a mean that peaks at the money
(``exp(−z²/2)``, ``z = ln(K/F)/(σ√τ)``) and is larger for nearer expiries; the expected
put/call volume ratio is ``p̄·(σ₃₀/θ)^½`` — proportional to the risk reversal in vol
points, since put buying pressure is what steepens the skew (Bollen & Whaley 2004) — so
put/call factors carry the same information as the VIX and the skew. Open interest is
``oi_multiple ×`` the expected volume (no noise).

The coefficients are stylised, not estimated: they give plausible SPX shapes (30-day
25-delta put over 25-delta call: about 6 vol points at VIX 10, 7.5 at 19, 9 at 37),
nothing more.

Units: ``iv`` in decimals (0.15 = 15 vol points); ``vega`` per 1.00 of volatility
(divide by 100 for one vol point); ``gamma`` per index point; ``delta`` is the spot delta
(calls in (0, 1), puts in (−1, 0)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

NEW_YORK = ZoneInfo("America/New_York")
EXPIRY_CUTOFF = time(16, 0)  # options expire at the 16:00 New York close
DAYS_PER_YEAR = 365.0
TAU_30D = 30.0 / DAYS_PER_YEAR
STRIKE_GRID = 5.0  # SPX listed strikes sit on a 5-point grid

Rights = Literal["otm", "both"]


@dataclass(frozen=True)
class SmileParams:
    """The smile of one expiry: ``iv(k) = atm + skew·k + curv·k²``, ``k = ln(K/F)/√τ``."""

    atm: float
    skew: float
    curv: float

    def iv(self, k: ArrayLike) -> NDArray[np.float64]:
        """Noise-free IV at standardised log-moneyness ``k`` (floored at ``atm/2``)."""
        k_arr = np.asarray(k, dtype=np.float64)
        raw = self.atm + self.skew * k_arr + self.curv * k_arr * k_arr
        return np.maximum(raw, 0.5 * self.atm)


@dataclass(frozen=True)
class SmileModel:
    """The VIX-driven smile model; the module docstring states its equations.

    ``theta``: long-run ATM volatility θ; ``kappa``: variance mean-reversion speed κ
    (per year); ``skew_bar``: s̄, the skew at ``σ₃₀ = θ``; ``skew_elasticity``: α;
    ``smile_min_sd``: z*, where the smile bottoms out (ATM standard deviations above the
    forward); ``noise_sd``: IV noise per quote; ``spread_frac``: option spread as a
    fraction of price at ``σ₃₀ = θ``; ``base_volume``: expected call volume per snapshot
    for the 30-day expiry; ``put_call_bar``: p̄; ``oi_multiple``: open interest per unit
    of expected volume.
    """

    theta: float = 0.19
    kappa: float = 1.5
    skew_bar: float = 0.20
    skew_elasticity: float = -0.5
    smile_min_sd: float = 4.0
    noise_sd: float = 0.002
    spread_frac: float = 0.03
    base_volume: float = 4000.0
    put_call_bar: float = 1.5
    oi_multiple: float = 10.0

    def __post_init__(self) -> None:
        positive = ("theta", "kappa", "skew_bar", "smile_min_sd", "base_volume", "put_call_bar")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"SmileModel.{name} must be finite and > 0, got {value!r}")
        for name in ("noise_sd", "spread_frac", "oi_multiple"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"SmileModel.{name} must be finite and >= 0, got {value!r}")
        if not math.isfinite(self.skew_elasticity):
            raise ValueError(
                f"SmileModel.skew_elasticity must be finite, got {self.skew_elasticity!r}"
            )

    def atm_vol(self, vix: float, tau: float) -> float:
        """ATM implied vol for expiry ``tau`` (years); equals ``vix/100`` at 30 days."""
        sigma30 = _check_vix(vix)
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be a finite time to expiry > 0 (years), got {tau!r}")
        ratio = _g(self.kappa * tau) / _g(self.kappa * TAU_30D)
        var = self.theta**2 + (sigma30**2 - self.theta**2) * ratio
        return max(math.sqrt(max(var, 0.0)), 0.5 * sigma30)

    def params(self, vix: float, tau: float) -> SmileParams:
        """Smile coefficients for one expiry at VIX level ``vix``."""
        sigma30 = _check_vix(vix)
        skew = self.skew_bar * (sigma30 / self.theta) ** self.skew_elasticity
        return SmileParams(
            atm=self.atm_vol(vix, tau),
            skew=-skew,
            curv=skew / (2.0 * self.smile_min_sd * sigma30),
        )

    def put_call_ratio(self, vix: float) -> float:
        """Expected put/call volume ratio ``p̄·(σ₃₀/θ)^½`` (rises with the risk reversal)."""
        return self.put_call_bar * math.sqrt(_check_vix(vix) / self.theta)


DEFAULT_MODEL = SmileModel()


def _check_vix(vix: float) -> float:
    if not (math.isfinite(vix) and vix > 0):
        raise ValueError(f"vix must be a finite VIX level > 0 (e.g. 15.3), got {vix!r}")
    return vix / 100.0


def _g(x: float) -> float:
    """``(1 − e^{−x})/x``, the average of ``e^{−κt}`` over ``[0, τ]`` (→ 1 as x → 0)."""
    return 1.0 if x < 1e-12 else -math.expm1(-x) / x


def standardized_moneyness(strike: ArrayLike, forward: float, tau: float) -> NDArray[np.float64]:
    """``k = ln(K/F)/√τ``, the smile's abscissa."""
    return np.log(np.asarray(strike, dtype=np.float64) / forward) / math.sqrt(tau)


def to_ns(ts: int | str | datetime | pd.Timestamp) -> int:
    """Event time as epoch nanoseconds (ints pass through; naive datetimes are rejected)."""
    if isinstance(ts, bool):
        raise ValueError(f"ts must be epoch ns or a zoned timestamp, got {ts!r}")
    if isinstance(ts, int | np.integer):
        return int(ts)
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"ts must carry a time zone (or be epoch ns), got {ts!r}")
    return int(stamp.value)


def expiry_cutoff_ns(expiry: date) -> int:
    """Epoch ns of 16:00 America/New_York on ``expiry`` (when the option stops trading)."""
    return to_ns(datetime.combine(expiry, EXPIRY_CUTOFF, tzinfo=NEW_YORK))


def time_to_expiry(ts: int | str | datetime | pd.Timestamp, expiry: date | str) -> float:
    """ACT/365 years from ``ts`` to 16:00 New York on ``expiry`` (the model's τ)."""
    exp = date.fromisoformat(expiry) if isinstance(expiry, str) else expiry
    return (expiry_cutoff_ns(exp) - to_ns(ts)) / (DAYS_PER_YEAR * 86_400e9)


def listed_expiry(trade_date: date, days: int) -> date:
    """The Friday nearest to ``trade_date + days`` (never before the next day).

    SPX weeklies/monthlies expire on Fridays; exchange holidays are not modelled.
    """
    if days < 1:
        raise ValueError(f"expiry days must be >= 1, got {days!r}")
    earliest = max(trade_date + timedelta(days=1), trade_date + timedelta(days=days - 3))
    return earliest + timedelta(days=(4 - earliest.weekday()) % 7)


def bs_greeks(
    spot: float, strike: ArrayLike, tau: float, iv: ArrayLike, is_call: ArrayLike, rate: float = 0.0
) -> dict[str, NDArray[np.float64]]:
    """Black–Scholes price, spot delta, gamma and vega (per 1.00 vol), no dividends."""
    K = np.asarray(strike, dtype=np.float64)
    sigma = np.asarray(iv, dtype=np.float64)
    call = np.asarray(is_call, dtype=bool)
    forward = spot * math.exp(rate * tau)
    sqrt_tau = math.sqrt(tau)
    d1 = (np.log(forward / K) + 0.5 * sigma**2 * tau) / (sigma * sqrt_tau)
    d2 = d1 - sigma * sqrt_tau
    disc = math.exp(-rate * tau)
    call_price = disc * (forward * norm.cdf(d1) - K * norm.cdf(d2))
    put_price = disc * (K * norm.cdf(-d2) - forward * norm.cdf(-d1))
    pdf = norm.pdf(d1)
    return {
        "price": np.where(call, call_price, put_price),
        "delta": np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0),
        "gamma": pdf / (spot * sigma * sqrt_tau),
        "vega": spot * pdf * sqrt_tau,
    }


def _tick_size(price: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(price < 3.0, 0.05, 0.10)


def _sig(x: float, digits: int = 6) -> float:
    """Round to significant digits so the JSON is short and stable."""
    return float(f"{x:.{digits}g}")


def generate_chain(
    symbol: str,
    ts: int | str | datetime | pd.Timestamp,
    underlying_price: float,
    vix: float,
    *,
    expiries_days: Sequence[int] = (7, 30),
    n_strikes: int = 15,
    moneyness_sd: tuple[float, float] = (-2.5, 1.5),
    rights: Rights = "otm",
    rate: float = 0.0,
    seed: int = 0,
    model: SmileModel = DEFAULT_MODEL,
) -> dict[str, Any]:
    """One synthetic option-chain snapshot message (DESIGN "option chain snapshot").

    For each expiry (the Friday nearest ``trade date + days``), ``n_strikes`` strikes
    spread evenly in ``ln(K/F)`` from ``moneyness_sd[0]`` to ``moneyness_sd[1]`` ATM
    standard deviations (``σ_atm·√τ``), rounded to the 5-point grid (duplicates dropped);
    the default reaches further on the put side, where index options trade.
    ``rights="otm"`` quotes puts below the forward and calls at or above it; ``"both"``
    quotes both at every strike. ``ts`` is epoch ns or a zoned
    timestamp; the message carries it as epoch ns. Deterministic for a given ``seed``.
    """
    ts_ns = to_ns(ts)
    if not (math.isfinite(underlying_price) and underlying_price > 0):
        raise ValueError(f"underlying_price must be finite and > 0, got {underlying_price!r}")
    _check_vix(vix)
    if n_strikes < 1:
        raise ValueError(f"n_strikes must be >= 1, got {n_strikes!r}")
    lo_sd, hi_sd = moneyness_sd
    if not (math.isfinite(lo_sd) and math.isfinite(hi_sd) and lo_sd < hi_sd):
        raise ValueError(
            f"moneyness_sd must be a finite (low, high) pair with low < high, got {moneyness_sd!r}"
        )
    if rights not in ("otm", "both"):
        raise ValueError(f"rights must be 'otm' or 'both', got {rights!r}")
    if not math.isfinite(rate):
        raise ValueError(f"rate must be finite, got {rate!r}")

    rng = np.random.default_rng(seed)
    trade_date = pd.Timestamp(ts_ns, tz="UTC").tz_convert(NEW_YORK).date()
    vix_scale = math.sqrt(vix / (100.0 * model.theta))
    quotes: list[dict[str, Any]] = []
    for days in sorted(set(expiries_days)):
        expiry = listed_expiry(trade_date, days)
        tau = time_to_expiry(ts_ns, expiry)
        forward = underlying_price * math.exp(rate * tau)
        smile = model.params(vix, tau)
        sd = smile.atm * math.sqrt(tau)
        raw = forward * np.exp(np.linspace(lo_sd * sd, hi_sd * sd, n_strikes))
        strikes = np.unique(np.round(raw / STRIKE_GRID) * STRIKE_GRID)
        strikes = strikes[strikes > 0]
        if rights == "otm":
            is_call = strikes >= forward
        else:
            strikes = np.repeat(strikes, 2)
            is_call = np.tile([False, True], strikes.size // 2)

        k = standardized_moneyness(strikes, forward, tau)
        iv = smile.iv(k) + rng.normal(0.0, model.noise_sd, size=strikes.size)
        iv = np.maximum(iv, 0.5 * smile.atm)
        greeks = bs_greeks(underlying_price, strikes, tau, iv, is_call, rate)

        price = greeks["price"]
        spread = np.maximum(0.10, model.spread_frac * price * vix_scale)
        tick = _tick_size(price)
        bid = np.maximum(np.floor((price - spread / 2) / tick) * tick, 0.0)
        ask = np.ceil((price + spread / 2) / tick) * tick
        ask = np.maximum(ask, bid + tick)

        z = np.log(strikes / forward) / (smile.atm * math.sqrt(tau))
        expiry_weight = math.sqrt(30.0 / days)
        side_total = np.where(
            is_call,
            model.base_volume * expiry_weight,
            model.base_volume * expiry_weight * model.put_call_ratio(vix),
        )
        profile = np.exp(-0.5 * z * z)
        side_sum = np.where(is_call, profile[is_call].sum(), profile[~is_call].sum())
        expected = side_total * profile / np.where(side_sum > 0, side_sum, 1.0)
        volume = rng.poisson(expected)
        open_interest = np.round(model.oi_multiple * expected)

        for i in range(strikes.size):
            quotes.append(
                {
                    "expiry": expiry.isoformat(),
                    "strike": float(strikes[i]),
                    "right": "C" if is_call[i] else "P",
                    "iv": _sig(iv[i]),
                    "delta": _sig(greeks["delta"][i]),
                    "gamma": _sig(greeks["gamma"][i]),
                    "vega": _sig(greeks["vega"][i]),
                    "bid": round(float(bid[i]), 2),
                    "ask": round(float(ask[i]), 2),
                    "volume": int(volume[i]),
                    "open_interest": int(open_interest[i]),
                }
            )
    return {
        "symbol": symbol,
        "ts": ts_ns,
        "underlying_price": float(underlying_price),
        "quotes": quotes,
    }
