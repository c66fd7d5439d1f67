"""The range message that markov publishes (Kafka ``markov.ranges`` and the WebSocket feed).

Schema, version 1
-----------------
One JSON object per message, UTF-8, keyed by the symbol on Kafka, keys always in this
order (replays are byte-identical)::

    {"v": 1, "symbol": "SPX", "ts": 1514903400000000000, "seq": 17, "horizon": 5,
     "confidence": 0.9, "low": 2650.1, "high": 2731.9, "path_low": 2640.2,
     "path_high": 2741.0, "center": 2690.0,
     "models": {"tgarch": {"low": 2648.0, "high": 2733.5, "weight": 0.21, "status": "ok"}, ...},
     "regime": "normal", "vix": 11.4, "tick_vol": {"ukf": 10.8, "pf": 11.2}}

* ``v`` — schema version (integer, 1). A consumer should reject versions it does not know.
* ``symbol`` — the instrument (string, the Kafka key).
* ``ts`` — event time (integer epoch nanoseconds, UTC) of the tick that produced the
  range; never the wall clock, so a replay gives the same messages.
* ``seq`` — per-symbol sequence number, 1, 2, 3, ... without gaps across horizons and
  restarts; a range seen twice (at-least-once redelivery) carries the same ``seq`` and,
  in replay, the same bytes. Live, its numbers can differ the second time if a refit
  (timed by the wall clock) was installed between the checkpoint and the crash: keep the
  last delivery of a ``seq``.
* ``horizon`` — trading days ahead (integer >= 1); one message per configured horizon.
* ``confidence`` — probability of the central interval, in (0, 1).
* ``low`` / ``high`` — the central interval for the price at the horizon
  (``low <= center <= high``, all > 0).
* ``path_low`` / ``path_high`` — the range the path stays within until the horizon, at the
  same confidence (``path_low <= low``, ``high <= path_high``), or ``null`` if no member
  can say.
* ``center`` — the ensemble's central estimate.
* ``models`` — per ensemble member: its own ``low`` / ``high`` (``null`` if it failed),
  its ``weight`` in the ensemble (>= 0; the weights sum to 1 unless every member failed)
  and its ``status`` (``"ok"``, ``"degraded"`` or ``"failed"``). Members appear in the
  ensemble's configured order.
* ``regime`` — the VIX regime the weights used: ``"low"``, ``"normal"`` or ``"high"``.
* ``vix`` — the latest VIX level known at ``ts`` (number), or ``null`` before any.
* ``tick_vol`` — the symbol's volatility filtered from every tick up to ``ts``, annualised
  percent, by the Rust UKF (``ukf``) and bootstrap particle filter (``pf``) on the
  stochastic-volatility model (``models/tick_filters.py``); ``null`` before the second
  tick of the stream.

The ensemble is evaluated at each closed bar; between bars every price (``low`` ...
``center`` and the members' ``low`` / ``high``) is re-anchored at the tick's price
(multiplied by price / close of the last bar), so a tick costs microseconds; ``tick_vol``
is the filters' state after that tick.
Fields may be added in a later minor change; a removed or renamed field bumps ``v``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from models.ensemble import EnsembleForecast
from rust_filters import RangeEncoder

SCHEMA_VERSION = 1
FIELDS = (
    "v", "symbol", "ts", "seq", "horizon", "confidence", "low", "high", "path_low",
    "path_high", "center", "models", "regime", "vix", "tick_vol",
)  # fmt: skip
MODEL_FIELDS = ("low", "high", "weight", "status")
TICK_VOL_FIELDS = ("ukf", "pf")
STATUSES = ("ok", "degraded", "failed")
REGIMES = ("low", "normal", "high")


class RangeSchemaError(ValueError):
    """A message that does not follow the documented schema (the reason says where)."""


class RangeTemplate:
    """A forecast made at a bar close, ready to be re-anchored at any tick price.

    Holds plain floats (not the forecast objects). :meth:`encode` writes the message in
    Rust (``rust_filters.RangeEncoder``: ~1 µs against ~4.5 µs for building the dict and
    ``orjson.dumps``, measured; this runs for every tick and horizon); :meth:`encode_dict`
    is the same message in Python, the reference the tests hold the bytes to.
    """

    __slots__ = (
        "_encoder", "anchor", "center", "confidence", "high", "horizon", "low", "models",
        "path_high", "path_low", "refusal", "regime", "symbol",
    )  # fmt: skip

    def __init__(
        self,
        symbol: str,
        horizon: int,
        confidence: float,
        anchor: float,
        low: float,
        high: float,
        path_low: float | None,
        path_high: float | None,
        center: float,
        models: tuple[tuple[str, float | None, float | None, float, str], ...],
        regime: str,
    ) -> None:
        self.symbol, self.horizon, self.confidence, self.anchor = (
            symbol,
            horizon,
            confidence,
            anchor,
        )
        self.low, self.high, self.path_low, self.path_high = low, high, path_low, path_high
        self.center, self.models, self.regime = center, models, regime
        # The encoder refuses a range whose messages would break schema v1 (inverted,
        # non-positive, a path range not around the close range, ...). Such a template has
        # no encoder and says why; the engine skips it (and logs the reason) instead of
        # raising on every tick.
        self._encoder: RangeEncoder | None = None
        self.refusal: str | None = None
        try:
            self._encoder = RangeEncoder(
                symbol, horizon, confidence, anchor, low, high, path_low, path_high, center,
                models, regime,
            )  # fmt: skip
        except ValueError as exc:
            self.refusal = str(exc)

    @classmethod
    def from_forecast(cls, symbol: str, fc: EnsembleForecast) -> RangeTemplate:
        r = fc.range
        models = tuple(
            (
                name,
                _price_or_none(part.range.low),
                _price_or_none(part.range.high),
                float(part.weight),
                part.range.status.state.value,
            )
            for name, part in fc.parts.items()
        )
        return cls(
            symbol, r.horizon, float(r.confidence), float(r.anchor), float(r.low),
            float(r.high), _price_or_none(r.path_low), _price_or_none(r.path_high),
            float(r.center), models, str(fc.regime),
        )  # fmt: skip

    @property
    def usable(self) -> bool:
        """Its messages follow schema v1 (finite, positive, ``low <= center <= high``, the
        path range around the close range, ...); else :attr:`refusal` says why not."""
        return self._encoder is not None

    def encode_dict(
        self,
        ts: int,
        seq: int,
        price: float,
        vix: float | None,
        tick_vol: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """The message as a dict, keys in schema order."""
        k = price / self.anchor
        return {
            "v": SCHEMA_VERSION,
            "symbol": self.symbol,
            "ts": ts,
            "seq": seq,
            "horizon": self.horizon,
            "confidence": self.confidence,
            "low": self.low * k,
            "high": self.high * k,
            "path_low": None if self.path_low is None else self.path_low * k,
            "path_high": None if self.path_high is None else self.path_high * k,
            "center": self.center * k,
            "models": {
                name: {
                    "low": None if lo is None else lo * k,
                    "high": None if hi is None else hi * k,
                    "weight": w,
                    "status": st,
                }
                for name, lo, hi, w, st in self.models
            },
            "regime": self.regime,
            "vix": vix,
            "tick_vol": None if tick_vol is None else {"ukf": tick_vol[0], "pf": tick_vol[1]},
        }

    def encode(
        self,
        ts: int,
        seq: int,
        price: float,
        vix: float | None,
        tick_vol: tuple[float, float] | None = None,
    ) -> bytes:
        """The message for a tick at ``price`` (re-anchored), as JSON bytes: the same bytes
        as ``orjson.dumps(self.encode_dict(...))``. Only for a :attr:`usable` template."""
        encoder = self._encoder
        if encoder is None:
            raise ValueError(
                f"range for {self.symbol} h={self.horizon} is not usable: {self.refusal}"
            )
        return encoder.encode(ts, seq, price, vix, tick_vol)


def _price_or_none(value: float | None) -> float | None:
    """A member's end as the schema has it: a price (finite, > 0), else null."""
    if value is None or not (math.isfinite(value) and value > 0):
        return None
    return float(value)


def validate_range(message: bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Check a range message against schema v1; return it parsed, or raise RangeSchemaError."""
    obj = orjson.loads(message) if isinstance(message, bytes | str) else dict(message)
    if not isinstance(obj, dict):
        raise RangeSchemaError(f"expected a JSON object, got {type(obj).__name__}")
    if tuple(obj) != FIELDS:
        raise RangeSchemaError(f"keys must be exactly {list(FIELDS)} in order, got {list(obj)}")
    if obj["v"] != SCHEMA_VERSION:
        raise RangeSchemaError(f"v must be {SCHEMA_VERSION}, got {obj['v']!r}")
    if not isinstance(obj["symbol"], str) or not obj["symbol"]:
        raise RangeSchemaError(f"symbol must be a non-empty string, got {obj['symbol']!r}")
    for name in ("ts", "seq", "horizon"):
        if not _is_int(obj[name]) or obj[name] < 1:
            raise RangeSchemaError(f"{name} must be an integer >= 1, got {obj[name]!r}")
    if not _is_num(obj["confidence"]) or not 0 < obj["confidence"] < 1:
        raise RangeSchemaError(f"confidence must be in (0, 1), got {obj['confidence']!r}")
    for name in ("low", "high", "center"):
        if not _is_num(obj[name]) or not obj[name] > 0:
            raise RangeSchemaError(f"{name} must be a number > 0, got {obj[name]!r}")
    if not obj["low"] <= obj["center"] <= obj["high"]:
        raise RangeSchemaError(
            f"need low <= center <= high, got {obj['low']}, {obj['center']}, {obj['high']}"
        )
    pl, ph = obj["path_low"], obj["path_high"]
    if (pl is None) != (ph is None):
        raise RangeSchemaError("path_low and path_high must both be numbers or both null")
    if pl is not None and not (
        _is_num(pl) and _is_num(ph) and 0 < pl <= obj["low"] and obj["high"] <= ph
    ):
        raise RangeSchemaError(f"need 0 < path_low <= low and high <= path_high, got {pl}, {ph}")
    models = obj["models"]
    if not isinstance(models, dict) or not models:
        raise RangeSchemaError("models must be a non-empty object")
    for name, part in models.items():
        if not isinstance(part, dict) or tuple(part) != MODEL_FIELDS:
            raise RangeSchemaError(f"models.{name} must have keys {list(MODEL_FIELDS)}")
        if part["status"] not in STATUSES:
            raise RangeSchemaError(f"models.{name}.status must be one of {STATUSES}")
        if not _is_num(part["weight"]) or part["weight"] < 0:
            raise RangeSchemaError(f"models.{name}.weight must be a number >= 0")
        for end in ("low", "high"):
            if part[end] is not None and not (_is_num(part[end]) and part[end] > 0):
                raise RangeSchemaError(f"models.{name}.{end} must be a number > 0 or null")
    if obj["regime"] not in REGIMES:
        raise RangeSchemaError(f"regime must be one of {REGIMES}, got {obj['regime']!r}")
    if obj["vix"] is not None and not (_is_num(obj["vix"]) and obj["vix"] > 0):
        raise RangeSchemaError(f"vix must be a number > 0 or null, got {obj['vix']!r}")
    tv = obj["tick_vol"]
    if tv is not None and not (
        isinstance(tv, dict)
        and tuple(tv) == TICK_VOL_FIELDS
        and all(_is_num(v) and v > 0 for v in tv.values())
    ):
        raise RangeSchemaError(
            f"tick_vol must be null or {{'ukf': number > 0, 'pf': number > 0}}, got {tv!r}"
        )
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
