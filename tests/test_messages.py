"""Input parsing: every kind of bad message gets a clear reason; good ones parse exactly."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest

from rust_filters import parse_chain_fast, parse_tick_fast
from stream.messages import (
    BadMessageError,
    Kind,
    OptionChain,
    Tick,
    VixUpdate,
    parse,
    parse_chain,
    parse_tick,
    parse_ts,
)


def raw(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_tick_parses_with_optional_fields() -> None:
    tick = parse(
        Kind.TICK,
        raw({"symbol": "SPX", "ts": 1_500_000_000_000_000_000, "price": 2700.5, "bid": 2700.25,
             "ask": 2700.75, "size": 3, "extra": "ignored"}),
    )  # fmt: skip
    assert tick == Tick("SPX", 1_500_000_000_000_000_000, 2700.5, 3.0, 2700.25, 2700.75)


def test_vix_and_chain_parse() -> None:
    vix = parse(Kind.VIX, raw({"ts": "2018-02-05T21:00:00Z", "value": 37.32}))
    assert vix == VixUpdate(1_517_864_400_000_000_000, 37.32)
    chain = parse(
        Kind.OPTIONS,
        raw({"symbol": "SPX", "ts": 1, "underlying_price": 2700.0,
             "quotes": [{"expiry": "2018-03-16", "strike": 2650, "right": "P", "iv": 0.2,
                         "delta": -0.3, "bid": 10.0, "ask": 10.5}]}),
    )  # fmt: skip
    assert isinstance(chain, OptionChain)
    assert chain.quotes[0].right == "P" and chain.quotes[0].strike == 2650.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"symbol": "SPX", "price": 1.0}', "missing field 'ts'"),
        (b'{"ts": 5, "price": 1.0}', "missing field 'symbol'"),
        (b'{"symbol": "SPX", "ts": 5}', "missing field 'price'"),
        (b'{"symbol": "SPX", "ts": 5, "price": NaN}', "malformed JSON"),
        (b'{"symbol": "SPX", "ts": 5, "price": "NaN"}', "field 'price' must be a number"),
        (b'{"symbol": "SPX", "ts": 5, "price": 0}', "field 'price' must be > 0"),
        (b'{"symbol": "SPX", "ts": 5, "price": -3.5}', "field 'price' must be > 0"),
        (b'{"symbol": "SPX", "ts": 5, "price": 1e999}', "malformed JSON"),
        (b'{"symbol": "", "ts": 5, "price": 1.0}', "field 'symbol' must be a non-empty"),
        (b'{"symbol": "SPX", "ts": 5, "price": 10, "bid": 10.5, "ask": 10.0}', "crossed quote"),
        (
            b'{"symbol": "SPX", "ts": 5, "price": 10, "bid": 0, "ask": 10.0}',
            "field 'bid' must be >",
        ),
        (b'{"symbol": "SPX", "ts": "2018-01-01T10:00:00", "price": 1}', "needs a time zone"),
        (b'{"symbol": "SPX", "ts": "yesterday", "price": 1}', "not ISO-8601"),
        (b'{"symbol": "SPX", "ts": -1, "price": 1}', "must be positive epoch"),
        (b'{"symbol": "SPX", "ts": true, "price": 1}', "epoch nanoseconds or ISO-8601"),
    ],
)
def test_bad_ticks_name_the_problem(payload: bytes, reason: str) -> None:
    with pytest.raises(BadMessageError) as info:
        parse(Kind.TICK, payload)
    assert reason in info.value.reason


def test_oversized_message_is_rejected_before_parsing() -> None:
    big = b'{"symbol": "SPX", "ts": 5, "price": 1.0, "pad": "' + b"x" * 1_000_001 + b'"}'
    with pytest.raises(BadMessageError, match="exceeds the limit of 1000000"):
        parse(Kind.TICK, big)


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        ({"strike": 1, "right": "C", "iv": 0.2, "delta": 0.5}, "quotes[0]: missing field 'expiry'"),
        ({"expiry": "2018-13-01", "strike": 1, "right": "C", "iv": 0.2, "delta": 0.5},
         "not an ISO date"),
        ({"expiry": "2018-03-16", "strike": 1, "right": "X", "iv": 0.2, "delta": 0.5},
         "'right' must be 'C' or 'P'"),
        ({"expiry": "2018-03-16", "strike": 1, "right": "C", "iv": -0.2, "delta": 0.5},
         "'iv' must be > 0"),
        ({"expiry": "2018-03-16", "strike": 1, "right": "C", "iv": 0.2, "delta": 1.5},
         "'delta' must be in [-1, 1]"),
    ],
)  # fmt: skip
def test_bad_quotes_name_the_quote(quote: dict[str, object], reason: str) -> None:
    msg = {"symbol": "SPX", "ts": 1, "underlying_price": 100.0, "quotes": [quote]}
    with pytest.raises(BadMessageError) as info:
        parse(Kind.OPTIONS, raw(msg))
    assert reason in info.value.reason


def test_empty_chain_is_rejected() -> None:
    with pytest.raises(BadMessageError, match="non-empty list"):
        parse(Kind.OPTIONS, raw({"symbol": "SPX", "ts": 1, "underlying_price": 1.0, "quotes": []}))


def test_iso_timestamps_keep_microseconds_and_zones() -> None:
    assert parse_ts("1970-01-01T00:00:00.000001Z") == 1_000
    assert parse_ts("2018-02-05T16:00:00-05:00") == parse_ts("2018-02-05T21:00:00+00:00")
    with pytest.raises(BadMessageError, match="after 1970"):
        parse_ts("1969-12-31T23:59:59.5Z")


# The Rust fast paths (parse_tick_fast / parse_chain_fast, used by parse) and the Python
# checks must accept exactly the same messages and build the same events. Random messages
# mix valid values with every kind of bad one, field by field; what Rust declines goes to
# the Python checks, so Rust may decline a valid message but never accept a bad one.
_ODD = [None, True, "1.5", math.nan, math.inf, -1.0, 0, 0.0, 2**60, -(2**63), 2**64 - 1]
_GOOD = [0.5, 1, 101.25, 2.0, 7, 1e6]


def _value(rng: random.Random) -> object:
    return rng.choice(_ODD) if rng.random() < 0.15 else rng.choice(_GOOD)


def _careful(kind: Kind, raw_bytes: bytes) -> object:
    obj = orjson.loads(raw_bytes)  # JSON has no NaN or inf: orjson wrote them as null
    try:
        return parse_tick(obj) if kind is Kind.TICK else parse_chain(obj)
    except BadMessageError as exc:
        return ("bad", exc.reason)


def test_rust_tick_reader_agrees_with_the_python_checks() -> None:
    rng = random.Random(7)
    accepted = declined_valid = 0
    for _ in range(4000):
        obj: dict[str, Any] = {
            "symbol": rng.choice(["SPX", "SPX", "SPX", "", "  ", None, 5, "S P"]),
            "ts": rng.choice([1514903400000000000] * 5 + [0, -5, True, "2018-01-02T14:30:00Z"]),
            "price": _value(rng),
        }
        for name in ("size", "bid", "ask"):
            if rng.random() < 0.6:
                obj[name] = _value(rng)
        raw_bytes = orjson.dumps(obj)
        careful, fast = _careful(Kind.TICK, raw_bytes), parse_tick_fast(raw_bytes)
        if fast is not None:
            assert Tick(*fast) == careful, obj
            accepted += 1
        else:
            declined_valid += isinstance(careful, Tick)
        assert parse(Kind.TICK, raw_bytes) == careful if isinstance(careful, Tick) else True
    assert accepted > 500 and declined_valid > 0  # both paths really ran


def test_rust_chain_reader_agrees_with_the_python_checks() -> None:
    rng = random.Random(11)
    accepted = 0
    for _ in range(1500):
        quotes = []
        for _ in range(rng.randint(1, 3)):
            q: dict[str, Any] = {
                "expiry": rng.choice(["2018-02-16"] * 8 + ["2018-02-30", "soon", 20180216]),
                "strike": _value(rng) if rng.random() < 0.3 else 2650.0,
                "right": rng.choice(["C", "P"] * 6 + ["X", None]),
                "iv": _value(rng) if rng.random() < 0.3 else 0.15,
                "delta": rng.choice([0.5, -0.25, 1.0, -1.0] * 4 + [1.5, -1.01, *_ODD]),
            }
            for name in ("gamma", "vega", "bid", "ask", "volume", "open_interest"):
                if rng.random() < 0.3:
                    q[name] = rng.choice([-0.5, *_GOOD]) if rng.random() < 0.9 else _value(rng)
            quotes.append(q)
        obj = {"symbol": "SPX", "ts": 5, "underlying_price": 2700.0, "quotes": quotes}
        raw_bytes = orjson.dumps(obj)
        careful = _careful(Kind.OPTIONS, raw_bytes)
        fast = parse_chain_fast(raw_bytes)
        if fast is not None and isinstance(careful, OptionChain):
            accepted += 1
        if isinstance(careful, OptionChain):
            assert parse(Kind.OPTIONS, raw_bytes) == careful, obj
        else:
            with pytest.raises(BadMessageError):  # whatever Rust made of it
                parse(Kind.OPTIONS, raw_bytes)
    assert accepted > 100


# serde_json does not check the bytes of strings it skips, orjson checks every byte: a
# message with an invalid UTF-8 byte anywhere is malformed JSON on both paths.
_NOT_UTF8 = [
    b'{"symbol":"SPX","ts":1,"price":2.0,"note":"\xff"}',
    b'{"symbol":"SPX","ts":1,"price":2.0,"\xfe":1}',
    b'{"symbol":"SPX","ts":1,"underlying_price":2700.0,"x":"\xc3","quotes":'
    b'[{"expiry":"2018-02-16","strike":2650.0,"right":"C","iv":0.15,"delta":0.5}]}',
    b'{"symbol":"SPX","ts":1,"underlying_price":2700.0,"quotes":'
    b'[{"expiry":"2018-02-16","strike":2650.0,"right":"C","iv":0.15,"delta":0.5,"x":"\xff"}]}',
]


@pytest.mark.parametrize("raw_bytes", _NOT_UTF8)
def test_invalid_utf8_is_malformed_on_both_paths(raw_bytes: bytes) -> None:
    kind = Kind.OPTIONS if b"quotes" in raw_bytes else Kind.TICK
    valid = raw_bytes.replace(b"\xff", b"a").replace(b"\xfe", b"b").replace(b"\xc3", b"c")
    fast_path = parse_tick_fast if kind is Kind.TICK else parse_chain_fast
    assert fast_path(valid) is not None  # the same message with valid bytes is accepted
    assert fast_path(raw_bytes) is None
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw_bytes)
    with pytest.raises(BadMessageError, match="malformed JSON"):
        parse(kind, raw_bytes)
