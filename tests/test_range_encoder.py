"""``rust_filters.RangeEncoder``: the arguments it refuses (the bytes it writes are held
to the Python reference in tests/test_engine.py)."""

from __future__ import annotations

import math

import pytest

from rust_filters import RangeEncoder

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
        ({"low": 106.0}, "low must be <= high"),
        ({"anchor": 0.0}, "anchor must be finite and > 0"),
        ({"anchor": math.nan}, "anchor must be finite and > 0"),
    ],
)
def test_a_bad_range_is_a_value_error_naming_it(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encoder(**changes)


def test_nan_ends_still_make_an_encoder() -> None:
    # The stream builds a template for every forecast and skips the unusable ones.
    assert encoder(low=math.nan, high=math.nan, center=math.nan).encode(1, 1, 100.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
def test_a_bad_tick_price_is_a_value_error_naming_it(price: float) -> None:
    with pytest.raises(ValueError, match="price must be finite and > 0"):
        encoder().encode(1, 1, price)
