"""The streaming engine on the embedded bus: publications, order, schema, determinism,
throttling, dead letters, at-least-once restarts and the WebSocket feed."""

from __future__ import annotations

import asyncio
import gc
import math
import random
import socket
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace
from typing import cast

import orjson
import pytest
import websockets
from test_stream_support import (
    HISTORY_DAYS,
    baselines,
    bus_with,
    embedded_service,
    encoded,
    expected_publications,
    feed_days,
    make_config,
    run_embedded,
)

from config.loader import ConfigLoader
from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus, EmbeddedSink
from connectors.transport import InRecord, TopicPartition
from models.base import Bar, ForecastModel, ModelStatus, PriceRange, Status
from models.baselines import VixImpliedNormal
from models.delta_ukf import DeltaUKF
from models.ensemble import EnsembleForecast, MemberPart, ModelEnsemble
from models.weighting import WeightBreakdown
from stream.clock import EventClock
from stream.engine import EngineFailedError
from stream.ranges import FIELDS, RangeSchemaError, RangeTemplate, validate_range
from stream.service import StreamService
from stream.symbol_state import ImplausibleTickError, SymbolState, bar_bucket

HORIZONS = ConfigLoader.default().forecast.horizons


def check_range_stream(ranges: list[tuple[bytes | None, bytes]], tick_ts: list[int]) -> None:
    """One message per horizon per expected publication, in order, seq 1.. without gaps."""
    assert len(ranges) == len(tick_ts) * len(HORIZONS)
    for i, (key, value) in enumerate(ranges):
        assert key == b"SPX"
        msg = validate_range(value)
        assert msg["seq"] == i + 1
        assert msg["ts"] == tick_ts[i // len(HORIZONS)]
        assert msg["horizon"] == HORIZONS[i % len(HORIZONS)]
        # Every tick stepped the Rust UKF and particle filter: their volatility rides along
        # from the second tick on (annualised %, a plausible equity-index level).
        if i < len(HORIZONS):
            assert msg["tick_vol"] is None
        else:
            assert all(1.0 < v < 200.0 for v in msg["tick_vol"].values())


async def test_every_expected_publication_in_order_and_valid() -> None:
    records = feed_days(3)
    config = make_config("stream.publish_throttle_seconds=1")
    gc_before = gc.get_threshold()
    bus, service = await run_embedded(config, records)
    assert gc.get_threshold() == gc_before  # the service's GC settings end with it
    check_range_stream(bus.topic("markov.ranges"), expected_publications(records, 1))
    stats = service.engine.stats  # type: ignore[union-attr]
    assert stats.total_events == len(records)
    assert stats.bars == 2  # three sessions: two bars closed by the next session's first tick
    assert stats.total_dead_letters == 0


async def test_throttle_in_event_time() -> None:
    records = feed_days(2)
    config = make_config("stream.publish_throttle_seconds=600")
    bus, _ = await run_embedded(config, records)
    expected = expected_publications(records, 600)
    assert len(expected) < len([r for r in records if r.topic == "markov.ticks"]) / 5
    check_range_stream(bus.topic("markov.ranges"), expected)


async def test_two_replays_are_byte_identical() -> None:
    records = feed_days(3)
    config = make_config()
    first, _ = await run_embedded(config, records)
    second, _ = await run_embedded(config, records)
    assert first.topic("markov.ranges") == second.topic("markov.ranges")
    assert len(first.topic("markov.ranges")) > 1000


async def test_bad_input_goes_to_the_dead_letter_topic_with_exact_counts() -> None:
    records = feed_days(1)
    config = make_config()
    good = encoded(config, records)
    ticks = [(i, v) for i, (t, _, v) in enumerate(good) if t == "markov.ticks"]
    first_ts = orjson.loads(ticks[0][1])["ts"]
    mid_ts = orjson.loads(ticks[len(ticks) // 2][1])["ts"]
    huge = b'{"symbol":"SPX","ts":%d,"price":1.0,"pad":"%s"}' % (mid_ts, b"x" * 1_100_000)
    bad = [
        (b"{not json", "malformed"),
        (b'{"symbol":"SPX","price":2700.0}', "missing_field"),
        (b'{"symbol":"SPX","ts":%d,"price":NaN}' % mid_ts, "malformed"),
        (b'{"symbol":"SPX","ts":%d,"price":0}' % mid_ts, "invalid_field"),
        (b'{"symbol":"SPX","ts":%d,"price":-3.5}' % mid_ts, "invalid_field"),
        (b'{"symbol":"SPX","ts":%d,"price":2700,"bid":2701,"ask":2700.5}' % mid_ts,
         "crossed_quote"),
        (b'{"symbol":"SPX","ts":%d,"price":2700.0}' % first_ts, "out_of_order"),
        (huge, "oversized"),
        (b'{"symbol":"QQQ","ts":%d,"price":300.0}' % mid_ts, "unknown_symbol"),
    ]  # fmt: skip
    # Insert the bad ticks in the middle of the session, after the tick at mid_ts.
    at = ticks[len(ticks) // 2][0] + 1
    stream = good[:at] + [("markov.ticks", b"SPX", v) for v, _ in bad] + good[at:]
    bus = bus_with(stream)
    service = embedded_service(config, bus)
    await service.start()
    await service.run()

    letters = [orjson.loads(v) for _, v in bus.topic("markov.dlq")]
    assert len(letters) == len(bad)
    assert service.engine.stats.dead_letters == Counter(kind for _, kind in bad)  # type: ignore[union-attr]
    for letter, (raw, _) in zip(letters, bad, strict=True):
        assert letter["source"] == "markov.ticks"
        assert letter["error"]
        assert letter["payload_bytes"] == len(raw)
        assert letter["payload"] == raw[:10_240].decode()
    assert "older than" in letters[6]["error"]
    assert "exceeds the limit" in letters[7]["error"]
    # The stream went on: every good tick still published.
    check_range_stream(bus.topic("markov.ranges"), expected_publications(records, 1))


async def test_abrupt_stop_then_restart_loses_nothing_and_duplicates_share_seq() -> None:
    records = feed_days(3)
    config = make_config()
    bus = bus_with(encoded(config, records))
    reference, _ = await run_embedded(config, records)
    expected = reference.topic("markov.ranges")

    crashed = asyncio.get_running_loop().create_future()

    def crash_midway(symbol: str, seq: int, message: bytes) -> None:
        if seq == 2000 and not crashed.done():
            crashed.set_result(None)
            first.abort()  # consumed and processed, not committed since the last checkpoint

    first = embedded_service(
        config, bus, commit_interval=0.0, batch_size=300, on_range=crash_midway
    )
    await first.start()
    with pytest.raises(asyncio.CancelledError):
        await first.run()
    committed = bus.committed(config.stream.kafka.group_id, TopicPartition("markov.ticks", 0))
    published_before = len(bus.topic("markov.ranges"))
    assert 0 < published_before < len(expected)
    assert 0 < committed < len([r for r in records if r.topic == "markov.ticks"])

    second = embedded_service(config, bus)
    await second.start()
    await second.run()
    restored = second.engine.symbols["SPX"].state  # type: ignore[union-attr]
    assert restored.bars and restored.bars[0].close > 0  # bars came back from the checkpoint

    seen: dict[int, bytes] = {}
    duplicates = 0
    for _, value in bus.topic("markov.ranges"):
        seq = orjson.loads(value)["seq"]
        if seq in seen:
            duplicates += 1
            assert seen[seq] == value  # a redelivered range is the same message
        seen[seq] = value
    assert duplicates > 0  # the crash really left work to redo
    # Every range of the uninterrupted run is there (none lost), byte for byte.
    assert [seen[i + 1] for i in range(len(expected))] == [v for _, v in expected]
    assert len(seen) == len(expected)


async def test_websocket_client_receives_the_published_ranges() -> None:
    records = feed_days(1)
    config = make_config("websocket.client_queue_size=100000")  # full speed: a deep queue
    bus = EmbeddedBus()
    loaded = False
    service = embedded_service(config, bus, websocket=True, input_complete=lambda: loaded)
    await service.start()
    runner = asyncio.create_task(service.run())
    assert service.websocket is not None
    received: list[bytes] = []
    async with websockets.connect(service.websocket.url) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "symbols": ["SPX"]}))
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        for topic, key, value in encoded(config, records):
            bus.append(topic, key, value)
        loaded = True
        expected_count = len(expected_publications(records, 1)) * len(HORIZONS)
        while len(received) < expected_count:
            msg = await asyncio.wait_for(ws.recv(), 30)
            raw = msg.encode() if isinstance(msg, str) else msg
            if orjson.loads(raw)["type"] == "range":
                received.append(b"{" + raw[len(b'{"type":"range",') :])
    await runner
    assert received == [v for _, v in bus.topic("markov.ranges")]


def test_daily_bars_follow_the_exchange_date_across_dst() -> None:
    # 2018-03-09 15:59 EST and 2018-03-12 09:30 EDT: different exchange days.
    friday = 1520629140 * 10**9
    monday = 1520861400 * 10**9
    s1, e1, label1 = bar_bucket(friday, 86_400)
    s2, e2, label2 = bar_bucket(monday, 86_400)
    assert str(label1.date()) == "2018-03-09" and str(label2.date()) == "2018-03-12"
    assert e1 - s1 == e2 - s2 == 24 * 3600 * 10**9
    assert s2 - s1 == 3 * 24 * 3600 * 10**9 - 3600 * 10**9  # the weekend lost an hour
    # 2018-03-11 is the spring-forward day: 23 hours long.
    sunday = 1520776800 * 10**9  # 2018-03-11 10:00 EDT
    s3, e3, _ = bar_bucket(sunday, 86_400)
    assert e3 - s3 == 23 * 3600 * 10**9
    state = SymbolState("SPX")
    assert state.on_tick(friday, 100.0, 15.0) is None
    assert state.on_tick(friday + 10**9, 101.0, 15.5) is None
    bar = state.on_tick(monday, 99.0, 16.0)
    assert bar is not None and (bar.open, bar.high, bar.low, bar.close) == (
        100.0,
        101.0,
        100.0,
        101.0,
    )
    assert bar.vix == 16.0 and str(bar.ts.date()) == "2018-03-09"


def test_a_bad_print_is_refused_but_a_real_move_is_not_locked_out() -> None:
    # A 10x fat-finger tick was taken: the day's bar got a high ten times the price and the
    # tick filters diverged. Refused now, state unchanged; three ticks in a row that agree
    # at a new level are a real move and the third is taken.
    friday = 1520629140 * 10**9
    state = SymbolState("SPX", max_move=0.25)
    state.on_tick(friday, 100.0, None)
    with pytest.raises(ImplausibleTickError, match=r"price 1000 is a log move of 2\.3 from the "):
        state.on_tick(friday + 1, 1000.0, None)
    state.on_tick(friday + 2, 101.0, None)  # back to normal: the suspicion is dropped
    assert state.suspects == [] and state.last_tick_ts == friday + 2
    for k in (3, 4):
        with pytest.raises(ImplausibleTickError):
            state.on_tick(friday + k, 60.0 + k / 10, None)  # a 40 % crash...
    restored = SymbolState("SPX", max_move=0.25)
    restored.restore(state.snapshot())  # (the suspicion survives a checkpoint)
    for s in (state, restored):
        assert s.on_tick(friday + 5, 60.5, None) is None  # ...confirmed by the third tick
    assert state.snapshot() == restored.snapshot() and state.last_price == 60.5
    bar = state.on_tick(friday + 3 * 86_400 * 10**9, 200.0, None)  # a new session: no check
    assert bar is not None and (bar.high, bar.low, bar.close) == (101.0, 60.5, 60.5)
    unchecked = SymbolState("SPX")  # max_move 0: off
    unchecked.on_tick(friday, 100.0, None)
    assert unchecked.on_tick(friday + 1, 1000.0, None) is None


async def test_a_tick_from_the_future_is_dead_lettered_and_blocks_nothing() -> None:
    # A tick dated 2255 was taken: every later tick of the symbol was then dead-lettered
    # as older than it, for good (its time was in the checkpoint too).
    records = feed_days(1)
    ticks = [i for i, r in enumerate(records) if r.topic == "markov.ticks"]
    r = records[ticks[50]]
    future = replace(r, payload={**r.payload, "ts": 9 * 10**18})
    config = make_config()
    bus, service = await run_embedded(config, [*records[: ticks[50] + 1], future,
                                               *records[ticks[50] + 1 :]])  # fmt: skip
    reference, _ = await run_embedded(config, records)
    [letter] = [orjson.loads(v) for _, v in bus.topic("markov.dlq")]
    assert (
        "ahead of this machine's clock (allowed 300 s: stream.max_future_seconds)"
        in (letter["error"])
    )
    assert service.engine is not None
    assert service.engine.stats.dead_letters == {"future_ts": 1}
    assert bus.topic("markov.ranges") == reference.topic("markov.ranges")


async def test_duplicate_events_are_dead_lettered_and_change_nothing() -> None:
    # Sent twice, every VIX update and chain was taken again: 47,640 of 47,702 ranges
    # of the bundled feed moved (widths by up to 1 %).
    records = feed_days(1)
    doubled = []
    for i, r in enumerate(records):
        doubled.append(r)
        if r.topic != "markov.ticks" or i == 100:
            doubled.append(r)
    config = make_config()
    bus, service = await run_embedded(config, doubled)
    reference, _ = await run_embedded(config, records)
    twice = len(doubled) - len(records)
    assert service.engine is not None
    assert service.engine.stats.dead_letters == {"duplicate": twice}
    errors = {orjson.loads(v)["error"].split(" at ts ")[0] for _, v in bus.topic("markov.dlq")}
    assert errors == {"VIX update", "option chain for SPX", "tick for SPX"}
    assert bus.topic("markov.ranges") == reference.topic("markov.ranges")


async def test_a_fat_finger_tick_is_dead_lettered_and_changes_nothing() -> None:
    records = feed_days(1)
    ticks = [i for i, r in enumerate(records) if r.topic == "markov.ticks"]
    r = records[ticks[50]]
    spike = replace(r, ts=r.ts + 1, payload={**r.payload, "ts": r.ts + 1,
                                             "price": r.payload["price"] * 10})  # fmt: skip
    config = make_config()
    bus, service = await run_embedded(config, [*records[: ticks[50] + 1], spike,
                                               *records[ticks[50] + 1 :]])  # fmt: skip
    reference, _ = await run_embedded(config, records)
    [letter] = [orjson.loads(v) for _, v in bus.topic("markov.dlq")]
    assert "stream.max_tick_move" in letter["error"]
    assert service.engine is not None
    assert service.engine.stats.dead_letters == {"implausible_price": 1}
    assert not service.engine.stats.filter_resets  # the filters never saw it
    assert bus.topic("markov.ranges") == reference.topic("markov.ranges")
    # With the check off, the spike reaches the tick filters, which diverge and reset:
    # counted and logged, where before nothing read their counters.
    unchecked = make_config("stream.max_tick_move=0")
    _, service = await run_embedded(unchecked, [*records[: ticks[50] + 1], spike,
                                                *records[ticks[50] + 1 :]])  # fmt: skip
    assert service.engine is not None and service.engine.stats.filter_resets["SPX"] >= 1


def test_schema_validator_rejects_what_the_docstring_forbids() -> None:
    good = {
        "v": 1, "symbol": "SPX", "ts": 5, "seq": 1, "horizon": 5, "confidence": 0.9,
        "low": 99.0, "high": 101.0, "path_low": 98.0, "path_high": 102.0, "center": 100.0,
        "models": {"m": {"low": 99.0, "high": 101.0, "weight": 1.0, "status": "ok"}},
        "regime": "normal", "vix": 15.0, "tick_vol": {"ukf": 12.0, "pf": 12.5},
    }  # fmt: skip
    assert tuple(validate_range(orjson.dumps(good))) == FIELDS
    assert validate_range(orjson.dumps({**good, "tick_vol": None}))["tick_vol"] is None
    for change in (
        {"v": 2}, {"seq": 0}, {"low": 102.0}, {"path_low": 99.5}, {"path_high": None},
        {"regime": "calm"}, {"vix": -1.0}, {"confidence": 1.0}, {"tick_vol": {"ukf": 1.0}},
        {"tick_vol": {"ukf": 1.0, "pf": math.nan}}, {"tick_vol": 12.0},
        {"models": {"m": {"low": 99.0, "high": 101.0, "weight": -1.0, "status": "ok"}}},
    ):  # fmt: skip
        with pytest.raises(RangeSchemaError):
            validate_range(orjson.dumps({**good, **change}))
    reordered = {"symbol": "SPX", **{k: v for k, v in good.items() if k != "symbol"}}
    with pytest.raises(RangeSchemaError):
        validate_range(orjson.dumps(reordered))


def test_rust_range_encoder_writes_the_reference_bytes() -> None:
    # RangeTemplate.encode (Rust) against orjson.dumps of the documented dict (Python),
    # over prices and member values from 1e-13 to 1e13, with and without VIX / tick_vol.
    rng = random.Random(3)
    for i in range(3000):
        scale = math.exp(rng.uniform(-30, 30))
        members = []
        for name in ("tgarch", "delta_ukf", "ekpf")[: rng.randint(1, 3)]:
            low = rng.choice([None, rng.uniform(0.5, 1.0) * scale])
            high = None if low is None else low * rng.uniform(1.0, 2.0)
            members.append((name, low, high, rng.random(), rng.choice(["ok", "failed"])))
        path = rng.choice([(None, None), (0.8 * scale, 1.2 * scale)])
        template = RangeTemplate(
            "SPX", rng.randint(1, 10), 0.9, scale, 0.9 * scale, 1.1 * scale, *path, scale,
            tuple(members), rng.choice(["low", "normal", "high"]),
        )  # fmt: skip
        assert template.usable, template.refusal
        price = scale * rng.lognormvariate(0, 0.5)
        vix = rng.choice([None, rng.uniform(9, 80)])
        tick_vol = rng.choice([None, (rng.uniform(1, 100), rng.uniform(1, 100))])
        args = (1_514_903_400_000_000_000 + i, i + 1, price, vix, tick_vol)
        assert template.encode(*args) == orjson.dumps(template.encode_dict(*args))


@pytest.mark.parametrize(
    ("low", "high", "center", "path", "refusal"),
    [
        (102.0, 101.0, 101.5, (None, None), "need low <= center <= high"),
        (math.nan, 110.0, 100.0, (None, None), "low must be finite and > 0"),
        (0.0, 1.0, 0.5, (None, None), "low must be finite and > 0"),
        (95.0, 105.0, 100.0, (96.0, 106.0), "need path_low <= low and high <= path_high"),
        (95.0, 105.0, 100.0, (94.0, None), "must both be numbers or both None"),
    ],
)
def test_an_unusable_range_makes_an_unusable_template_instead_of_raising(
    low: float,
    high: float,
    center: float,
    path: tuple[float | None, float | None],
    refusal: str,
) -> None:
    # The Rust encoder refuses a range whose messages would break the schema: built before
    # the engine asked `usable`, such a template raised inside the engine instead of being
    # skipped.
    members = (("tgarch", 96.0, 104.0, 1.0, "ok"),)
    template = RangeTemplate("SPX", 1, 0.9, 100.0, low, high, *path, center, members, "normal")
    assert not template.usable and template.refusal is not None and refusal in template.refusal
    with pytest.raises(ValueError, match=f"range for SPX h=1 is not usable: .*{refusal}"):
        template.encode(1, 1, 100.0, None)


def test_a_member_end_that_is_not_a_price_is_written_as_null() -> None:
    # A failed member may carry a zero or negative end; the schema wants a price or null,
    # and one such member must not cost the whole range.
    def part(name: str, low: float, high: float, weight: float, state: Status) -> MemberPart:
        status = ModelStatus(state, "test")
        rng = PriceRange(name, 1, 0.9, 100.0, low, high, 100.0, status=status)
        return MemberPart(name, rng, weight)

    ensemble = PriceRange("ensemble", 1, 0.9, 100.0, 95.0, 105.0, 100.0, 94.0, 106.0)
    parts = {
        "tgarch": part("tgarch", 96.0, 104.0, 1.0, Status.OK),
        "ekpf": part("ekpf", 0.0, math.inf, 0.0, Status.FAILED),
        "arima": part("arima", -3.0, math.nan, 0.0, Status.FAILED),
    }
    weights = cast(WeightBreakdown, SimpleNamespace(regime="normal"))
    template = RangeTemplate.from_forecast("SPX", EnsembleForecast(ensemble, parts, weights, 15.0))
    assert template.usable, template.refusal
    message = validate_range(template.encode(1, 1, 100.0, 15.0))
    assert message["models"]["ekpf"] == {
        "low": None,
        "high": None,
        "weight": 0.0,
        "status": "failed",
    }
    assert message["models"]["arima"]["low"] is None and message["models"]["tgarch"]["low"] == 96.0


class PathInsideEnsemble(ModelEnsemble):
    """An ensemble whose path range lies inside its close range: not a valid message."""

    def forecast_detail(self, steps: int, confidence: float | None = None) -> EnsembleForecast:
        fc = super().forecast_detail(steps, confidence)
        r = fc.range
        inside = replace(r, path_low=r.center, path_high=r.center)
        return replace(fc, range=inside)


async def test_a_range_that_would_break_the_schema_is_not_published_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def factory(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        members: dict[str, ForecastModel] = {"vix_normal": VixImpliedNormal()}
        return PathInsideEnsemble(config, members, base_weights={"vix_normal": 1.0}, burn_in=100)

    config = make_config()
    bus = bus_with(encoded(config, feed_days(1)))
    service = embedded_service(config, bus, factory=factory)
    await service.start()
    with caplog.at_level("WARNING", logger="stream.engine"):
        await asyncio.wait_for(service.run(), 120)
    assert bus.topic("markov.ranges") == []
    assert service.engine.stats.unpublishable > 100  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if "no range published" in r.getMessage()]
    assert warnings and all("need path_low <= low and high <= path_high" in w for w in warnings)
    assert len(warnings) <= 2  # once per bar, not once per tick


async def test_a_complete_replay_ends_without_waiting_out_a_poll() -> None:
    """Once the input is complete and all of it has been read, the last poll does not
    wait for more (a replay would otherwise end a poll timeout late)."""
    records = feed_days(1)
    config = make_config()
    bus = bus_with(encoded(config, records))
    service = embedded_service(config, bus)
    await service.start()
    source = service.source
    assert source is not None
    polls: list[int] = []
    getmany = source.getmany

    async def recording_getmany(timeout_ms: int, max_records: int) -> list[InRecord]:
        polls.append(timeout_ms)
        return await getmany(timeout_ms, max_records)

    source.getmany = recording_getmany  # type: ignore[method-assign]
    await asyncio.wait_for(service.run(), 120)
    assert len(bus.topic("markov.ranges")) > 0
    assert polls[0] == 100  # nothing read yet: a poll may wait
    assert polls[-1] == 0  # everything read and the input complete: the end is confirmed at once
    assert polls.count(100) < len(polls)


def with_delta_ukf(config: MarkovConfig, symbol: str) -> ModelEnsemble:
    """A chain-reading member beside a baseline."""
    members: dict[str, ForecastModel] = {"vix_normal": VixImpliedNormal(), "delta_ukf": DeltaUKF()}
    return ModelEnsemble(
        config, members, base_weights={"vix_normal": 1.0, "delta_ukf": 1.0}, burn_in=100
    )


async def test_a_chain_the_model_refuses_is_dead_lettered_and_changes_nothing() -> None:
    # IVs in percent (25 for 0.25) pass the message schema (positive numbers) but not the
    # Delta UKF: the chain goes to the dead-letter topic and the ranges are those of the
    # stream without it, byte for byte.
    records = feed_days(1)
    config = make_config()
    good = encoded(config, records)
    chains = [i for i, (t, _, _) in enumerate(good) if t == "markov.options"]
    at = chains[len(chains) // 2]
    msg = orjson.loads(good[at][2])
    msg["ts"] += 1
    msg["quotes"] = [{**q, "iv": 100 * q["iv"]} for q in msg["quotes"]]
    stream = [*good[: at + 1], ("markov.options", b"SPX", orjson.dumps(msg)), *good[at + 1 :]]
    bus = bus_with(stream)
    service = embedded_service(config, bus, factory=with_delta_ukf)
    await service.start()
    await service.run()

    letters = [orjson.loads(v) for _, v in bus.topic("markov.dlq")]
    assert [(x["source"], x["offset"]) for x in letters] == [
        ("markov.options", len(chains) // 2 + 1)
    ]
    assert "chain refused by delta_ukf" in letters[0]["error"]
    assert "annualised fraction" in letters[0]["error"]
    reference, _ = await run_embedded(config, records, factory=with_delta_ukf)
    assert bus.topic("markov.ranges") == reference.topic("markov.ranges")
    assert len(bus.topic("markov.ranges")) > 500


async def test_a_feed_older_than_the_warm_up_history_is_dead_lettered_not_a_crash() -> None:
    # The service warmed up on history to 2018-12-31, then read a 2018-01 feed: the first
    # bar reached the ensemble out of order and the engine crashed with a traceback.
    records = feed_days(1)
    config = make_config()
    bus = bus_with(encoded(config, records))
    service = StreamService(
        config, bus=bus, clock=EventClock(), ensemble_factory=with_delta_ukf,
        history_end="2018-12-31", days_back=HISTORY_DAYS, executor="thread", websocket=False,
        input_complete=lambda: True,
    )  # fmt: skip
    await service.start()
    await service.run()

    ticks = sum(1 for r in records if r.topic == "markov.ticks")
    letters = [orjson.loads(v) for _, v in bus.topic("markov.dlq")]
    assert len(letters) == ticks and bus.topic("markov.ranges") == []
    assert "not after the models' warm-up history (it ends 2018-12-31" in letters[0]["error"]
    assert service.engine.stats.bars == 0  # type: ignore[union-attr]


async def test_a_websocket_port_in_use_fails_before_the_warm_up() -> None:
    # The port was bound after the twenty-second warm-up, so a taken port cost that long.
    warmed: list[str] = []

    def factory(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        warmed.append(symbol)
        return baselines(config, symbol)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(f"websocket.port={port}", "websocket.host=127.0.0.1")
        service = embedded_service(config, EmbeddedBus(), factory=factory, websocket=True)
        with pytest.raises(OSError):
            await service.start()
    assert warmed == []


class _StopsTheServiceOnItsFirstBar(VixImpliedNormal):
    """A member that asks the service to stop while the warm-up walks its bars (as a
    Ctrl-C during start-up does), from the warm-up's own thread."""

    service: StreamService | None = None

    def update(self, bar: Bar) -> None:
        super().update(bar)
        assert self.service is not None
        self.service.request_stop()


async def test_a_stop_during_the_warm_up_ends_it_at_the_next_bar() -> None:
    # The warm-up ran on the event loop: a Ctrl-C waited for the whole fit (15 s).
    member = _StopsTheServiceOnItsFirstBar()

    def factory(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        return ModelEnsemble(config, {"vix_normal": member}, burn_in=100)

    with socket.socket() as probe:  # a free port, so that the test can see it released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config(f"websocket.port={port}", "websocket.host=127.0.0.1")
    bus = bus_with(encoded(config, feed_days(1)))
    service = embedded_service(config, bus, factory=factory, websocket=True)
    member.service = service
    await service.start()
    await service.run()  # returns at once: start() has closed everything
    assert service.stopped_during_warm_up and service.engine is None
    assert service.warm_up_progress == ("SPX", 1, 100)
    assert bus.topic("markov.ranges") == [] and bus.topic("markov.dlq") == []
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # the WebSocket server was closed with the rest


async def test_a_checkpoint_of_another_state_version_is_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # This build's particle-filter snapshots differ from the last one's: an old checkpoint
    # must not be read as this one's. The symbol starts from its warm-up and says so, but
    # seq goes on from the old checkpoint's, so that new ranges never reuse a seq.
    config = make_config()
    old = {"v": 3, "symbol": "SPX", "state": {"seq": 41, "filters": "unreadable"}}
    records = feed_days(1)
    bus = bus_with([("markov.state", b"SPX", orjson.dumps(old)), *encoded(config, records)])
    service = embedded_service(config, bus)
    with caplog.at_level("WARNING", logger="stream.engine"):
        await service.start()
        await service.run()
    assert "SPX: checkpoint of state version 3 ignored (this build writes 5) except its seq 41" in (
        caplog.text
    )
    seqs = [orjson.loads(v)["seq"] for _, v in bus.topic("markov.ranges")]
    assert seqs[0] == 42 and seqs == sorted(seqs)


class _SinkWhoseAckFails(EmbeddedSink):
    """The 1,000th output is not acknowledged, as a Kafka delivery timeout would do."""

    def __init__(self, bus: EmbeddedBus) -> None:
        super().__init__(bus)
        self.sent = 0

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        done = await super().send(topic, key, value)
        self.sent += 1
        if self.sent != 1000:
            return done
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failed.set_exception(TimeoutError("delivery timed out (test)"))
        return failed


async def test_a_failed_acknowledgement_stops_the_run_with_the_reason() -> None:
    # The commit task died on it unwatched: processing blocked on the full checkpoint queue,
    # the service sat idle with 10,000 events waiting, and SIGTERM could not stop it.
    config = make_config()
    bus = bus_with(encoded(config, feed_days(3)))
    bus.sink = lambda: _SinkWhoseAckFails(bus)  # type: ignore[method-assign]
    service = embedded_service(config, bus, input_complete=lambda: False)  # live: never idle
    await service.start()
    with pytest.raises(EngineFailedError, match="stopped: TimeoutError: delivery timed out"):
        await asyncio.wait_for(service.run(), 60)
    # Whatever was committed before it precedes the undelivered output's input record.
    ticks = [r for r in feed_days(3) if r.topic == "markov.ticks"]
    committed = bus.committed(config.stream.kafka.group_id, TopicPartition("markov.ticks", 0))
    assert (committed or 0) < len(ticks)
