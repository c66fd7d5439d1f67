"""``rust_filters.RangeEncoder``: every message it writes follows schema v1, so it refuses
a range or a tick that would break it, naming the field (the bytes it writes are held to
the Python reference in tests/test_engine.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rust_filters import RangeEncoder
from stream.ranges import validate_range

MEMBERS = [("tgarch", 96.0, 104.0, 1.0, "ok")]


def encoder(**changes: object) -> RangeEncoder:
    args: dict[str, object] = {
        "symbol": "SPX", "horizon": 5, "confidence": 0.9, "anchor": 100.0, "low": 95.0,
        "high": 105.0, "path_low": 94.0, "path_high": 106.0, "center": 100.0,
        "models": MEMBERS, "regime": "normal",
    } | changes  # fmt: skip
    return RangeEncoder(*args.values())  # type: ignore[arg-type]


@pytest.mark.parametrize("horizon", [-1, 0, 2**32])
def test_a_horizon_out_of_range_is_a_value_error_naming_it(horizon: int) -> None:
    # Once an OverflowError ("out of range integral type conversion attempted").
    with pytest.raises(ValueError, match=r"horizon must be in \[1, 2\*\*32\)"):
        encoder(horizon=horizon)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"confidence": 0.0}, r"confidence must be in \(0, 1\)"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
        ({"confidence": 90.0}, r"confidence must be in \(0, 1\)"),
        ({"confidence": math.nan}, r"confidence must be in \(0, 1\)"),
        ({"low": 106.0}, "need low <= center <= high"),
        ({"low": math.nan}, "low must be finite and > 0"),
        ({"center": 0.0}, "center must be finite and > 0"),
        ({"path_high": None}, "path_low and path_high must both be numbers or both None"),
        ({"path_low": 96.0}, "need path_low <= low and high <= path_high"),
        ({"path_high": math.inf}, "path_high must be finite and > 0"),
        ({"models": []}, "models must not be empty"),
        ({"models": [("tgarch", 0.0, 104.0, 1.0, "ok")]}, r'models\["tgarch"\].low'),
        ({"models": [("tgarch", 96.0, 104.0, -1.0, "ok")]}, r'models\["tgarch"\].weight'),
        ({"models": [("tgarch", 96.0, 104.0, 1.0, "fine")]}, r'models\["tgarch"\].status'),
        ({"regime": "calm"}, "regime must be one of"),
        ({"symbol": ""}, "symbol must be a non-empty string"),
        ({"anchor": 0.0}, "anchor must be finite and > 0"),
        ({"anchor": math.nan}, "anchor must be finite and > 0"),
    ],
)
def test_a_bad_range_is_a_value_error_naming_it(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encoder(**changes)


def test_a_range_without_a_path_range_is_fine() -> None:
    message = validate_range(encoder(path_low=None, path_high=None).encode(1, 1, 100.0))
    assert message["path_low"] is message["path_high"] is None


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
def test_a_bad_tick_price_is_a_value_error_naming_it(price: float) -> None:
    with pytest.raises(ValueError, match="price must be finite and > 0"):
        encoder().encode(1, 1, price)


@pytest.mark.parametrize(
    ("tick", "message"),
    [
        ({"ts": 0}, "ts must be >= 1"),
        ({"seq": 0}, "seq must be >= 1"),
        ({"vix": math.inf}, "vix must be finite and > 0"),
        ({"vix": 0.0}, "vix must be finite and > 0"),
        ({"tick_vol": (math.nan, 10.0)}, "tick_vol ukf must be finite and > 0"),
        ({"tick_vol": (10.0, 0.0)}, "tick_vol pf must be finite and > 0"),
        ({"price": 1.7e308}, "out of floating-point range"),
    ],
)
def test_a_tick_that_would_break_the_schema_is_a_value_error(
    tick: dict[str, Any], message: str
) -> None:
    # Once written as "vix": null / "tick_vol": null, or as inf, which JSON lacks.
    args: dict[str, Any] = {"ts": 1, "seq": 1, "price": 100.0, "vix": 15.0} | tick
    with pytest.raises(ValueError, match=message):
        encoder().encode(args["ts"], args["seq"], args["price"], args["vix"], args.get("tick_vol"))


def test_every_accepted_message_follows_the_schema() -> None:
    message = validate_range(encoder().encode(7, 3, 110.0, 15.0, (12.0, 13.0)))
    got = (message["low"], message["path_high"], message["vix"])
    assert got == pytest.approx((104.5, 116.6, 15.0), rel=1e-15)  # re-anchored by 110 / 100
