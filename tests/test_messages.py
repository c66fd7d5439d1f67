"""Input parsing: every kind of bad message gets a clear reason; good ones parse exactly."""

from __future__ import annotations

import orjson
import pytest

from stream.messages import (
    BadMessageError,
    Kind,
    OptionChain,
    Tick,
    VixUpdate,
    parse,
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
