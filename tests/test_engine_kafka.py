"""The service on the real local Kafka broker: the bundled feed produced to the input
topics, consumed by the service, ranges read back from the ranges topic (and received by
a WebSocket client meanwhile); the same bytes as the embedded bus; dead letters; and an
abrupt stop before the commit, then a restart, loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import orjson
import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from test_stream_support import (
    HISTORY_DAYS,
    HISTORY_END,
    baselines,
    chains_and_refits,
    encoded,
    expected_publications,
    feed_days,
    make_config,
    read_topic,
    run_embedded,
    topic_overrides,
)

from config.loader import ConfigLoader
from config.schema import MarkovConfig
from connectors.kafka_broker import LocalKafka
from connectors.kafka_transport import BrokerUnavailableError, KafkaSink
from stream.clock import EventClock
from stream.ranges import validate_range
from stream.service import StateMissingError, StreamService

pytestmark = pytest.mark.kafka
HORIZONS = len(ConfigLoader.default().forecast.horizons)


def kafka_config(broker: LocalKafka, *extra: str) -> tuple[MarkovConfig, str]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = make_config(
        "stream.mode=kafka",
        f"stream.kafka.bootstrap_servers={broker.bootstrap_servers}",
        *topic_overrides(prefix),
        *extra,
    )
    return config, prefix


async def create_inputs(broker: LocalKafka, prefix: str) -> None:
    await broker.create_topics_async([f"{prefix}.ticks", f"{prefix}.vix", f"{prefix}.options"])


async def produce(broker: LocalKafka, messages: list[tuple[str, bytes, bytes]]) -> None:
    sink = KafkaSink(broker.bootstrap_servers)
    await sink.start()
    try:
        acks = [await sink.send(t, k, v) for t, k, v in messages]
        await sink.flush()
        await asyncio.gather(*acks)
    finally:
        await sink.stop()


def kafka_service(config: MarkovConfig, **kwargs: object) -> StreamService:
    kwargs.setdefault("executor", "thread")
    kwargs.setdefault("websocket", False)
    kwargs.setdefault("input_complete", lambda: True)
    kwargs.setdefault("ensemble_factory", baselines)
    return StreamService(
        config, clock=EventClock(), history_end=HISTORY_END, days_back=HISTORY_DAYS,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_feed_through_kafka_matches_embedded_and_reaches_websocket(
    kafka_broker: LocalKafka,
) -> None:
    records = feed_days(2)
    config, prefix = kafka_config(kafka_broker, "websocket.client_queue_size=100000")
    await create_inputs(kafka_broker, prefix)
    await produce(kafka_broker, encoded(config, records))

    service = kafka_service(config, websocket=True)
    await service.start()
    assert service.websocket is not None
    expected_ts = expected_publications(records, 1)
    received: list[bytes] = []
    async with websockets.connect(service.websocket.url) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "symbols": ["SPX"]}))
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        runner = asyncio.create_task(service.run())  # subscribed before the first range
        while len(received) < len(expected_ts) * HORIZONS:
            raw = await asyncio.wait_for(ws.recv(), 60)
            data = raw.encode() if isinstance(raw, str) else raw
            if orjson.loads(data)["type"] == "range":
                received.append(b"{" + data[len(b'{"type":"range",') :])
    await asyncio.wait_for(runner, 120)

    ranges = await read_topic(kafka_broker, f"{prefix}.ranges")
    assert len(ranges) == len(expected_ts) * HORIZONS
    for i, (key, value) in enumerate(ranges):
        msg = validate_range(value)
        assert key == b"SPX"
        assert msg["seq"] == i + 1
        assert msg["ts"] == expected_ts[i // HORIZONS]
    assert received == [v for _, v in ranges]  # the WebSocket client got the same ranges
    # Same feed and config through the embedded bus: byte-identical range stream.
    embedded, _ = await run_embedded(make_config(*topic_overrides(prefix)), records)
    assert [v for _, v in embedded.topic(f"{prefix}.ranges")] == [v for _, v in ranges]


async def test_dead_letters_on_kafka_with_exact_counts(kafka_broker: LocalKafka) -> None:
    records = feed_days(1)
    config, prefix = kafka_config(kafka_broker)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    await admin.start()
    try:  # the ticks topic accepts 2 MB records, so the oversized one reaches the service
        await admin.create_topics(
            [
                NewTopic(f"{prefix}.ticks", 1, 1, topic_configs={"max.message.bytes": "2097152"}),
                NewTopic(f"{prefix}.vix", 1, 1),
                NewTopic(f"{prefix}.options", 1, 1),
            ]
        )
    finally:
        await admin.close()
    good = encoded(config, records)
    mid = len(good) // 2
    ts = orjson.loads(good[mid][2])["ts"]
    first_ts = orjson.loads(good[0][2])["ts"]
    bad = [
        (b"[1, 2", "malformed"),
        (b'{"ts":%d,"price":1}' % ts, "missing_field"),
        (b'{"symbol":"SPX","ts":%d,"price":-1}' % ts, "invalid_field"),
        (b'{"symbol":"SPX","ts":%d,"price":2700}' % first_ts, "out_of_order"),
        (b'{"symbol":"SPX","ts":%d,"price":1,"pad":"%s"}' % (ts, b"y" * 1_200_000), "oversized"),
        (None, "empty"),  # a tombstone crashed the service, and every restart on it
    ]
    await produce(kafka_broker, good[:mid] + [(f"{prefix}.ticks", b"SPX", v) for v, _ in bad if v])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    await producer.start()
    try:  # our own sink sends bytes only: the tombstone goes through aiokafka's producer
        await producer.send_and_wait(f"{prefix}.ticks", None, key=b"SPX")
    finally:
        await producer.stop()
    await produce(kafka_broker, good[mid:])
    service = kafka_service(config)
    await service.start()
    await asyncio.wait_for(service.run(), 120)
    letters = await read_topic(kafka_broker, f"{prefix}.dlq")
    assert [orjson.loads(v)["payload_bytes"] for _, v in letters] == [len(v or b"") for v, _ in bad]
    assert service.engine.stats.dead_letters == Counter(k for _, k in bad)  # type: ignore[union-attr]
    ranges = await read_topic(kafka_broker, f"{prefix}.ranges")
    assert len(ranges) == len(expected_publications(records, 1)) * HORIZONS


async def test_abrupt_stop_before_commit_then_restart_loses_nothing(
    kafka_broker: LocalKafka,
) -> None:
    # Members that read chains and refit daily: what a restart must put back besides
    # the bars (the model journal), through the state topic.
    records = feed_days(10)
    config, prefix = kafka_config(kafka_broker, "stream.refit_interval_seconds=86400")
    members = {"ensemble_factory": chains_and_refits}
    await create_inputs(kafka_broker, prefix)
    messages = encoded(config, records)
    half = len(messages) // 2
    expected = len(expected_publications(records, 1)) * HORIZONS

    # 1. A service consumes the first half to its end, checkpoints, commits and stops.
    await produce(kafka_broker, messages[:half])
    first = kafka_service(config, commit_interval=0.0, batch_size=100, **members)
    await first.start()
    await asyncio.wait_for(first.run(), 120)
    after_first = first.engine.stats.ranges  # type: ignore[union-attr]
    assert 0 < after_first < expected

    # 2. With the second half present, a restarted service crashes in the middle of it
    # (from inside the pipeline, as the embedded test's crash): what it consumed since its
    # last commit is left uncommitted. (All input is produced before a service starts:
    # produced while one runs, the partitions' event-time merge can only go by what each
    # fetch has seen, which a replay does not reproduce.)
    await produce(kafka_broker, messages[half:])

    def crash_midway(symbol: str, seq: int, message: bytes) -> None:
        if seq == after_first + (expected - after_first) // 2:
            crashing.abort()

    crashing = kafka_service(
        config, commit_interval=0.0, batch_size=100, on_range=crash_midway, **members
    )
    await crashing.start()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(crashing.run(), 120)
    published = len(await read_topic(kafka_broker, f"{prefix}.ranges"))
    # It had committed checkpoints of its own (between records too, though the aligner
    # releases the whole half in a burst or two), so the restart goes on from one.
    assert crashing.engine.stats.commits > 0  # type: ignore[union-attr]
    assert after_first < published < expected

    # 3. Restarted again, the service finishes from the last checkpoint.
    second = kafka_service(config, **members)
    await second.start()
    await asyncio.wait_for(second.run(), 120)

    ranges = await read_topic(kafka_broker, f"{prefix}.ranges")
    by_seq: dict[int, bytes] = {}
    for _, value in ranges:
        seq = orjson.loads(value)["seq"]
        assert by_seq.setdefault(seq, value) == value  # duplicates are the same message
    assert sorted(by_seq) == list(range(1, expected + 1))  # none lost
    assert len(ranges) > expected, "the crash left no work to redo: nothing was checked"
    # The restart resumed from the crashed service's checkpoint, not from the first's.
    assert 0 < second.engine.stats.ranges < expected - after_first  # type: ignore[union-attr]

    # 4. The group's offsets without its state (a state topic lost or renamed): started,
    # the service counted seq from 1 again after ranges already out. It refuses instead.
    renamed = ConfigLoader.with_overrides(config, [f"stream.topics.state={prefix}.state2"])
    with pytest.raises(StateMissingError, match=rf"^consumer group '{prefix}.group' has "):
        await kafka_service(renamed).start()


async def test_unreachable_broker_fails_fast_with_one_line() -> None:
    config = make_config("stream.mode=kafka", "stream.kafka.bootstrap_servers=127.0.0.1:1")
    service = kafka_service(config)
    with pytest.raises(BrokerUnavailableError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        await service.start()


async def test_a_rebalance_that_hands_the_partitions_back_repeats_nothing(
    kafka_broker: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """Another member joins the group and leaves while the service runs: the service's
    partitions are revoked and assigned again, and the consumer resumes from the last
    commit (none here), so records the service has already processed arrive again. They
    are recognised by offset and skipped: no dead letters, no repeated ranges."""
    records = feed_days(3)
    config, prefix = kafka_config(kafka_broker)
    await create_inputs(kafka_broker, prefix)
    await produce(kafka_broker, encoded(config, records))
    expected = len(expected_publications(records, 1)) * HORIZONS
    done = False
    service = kafka_service(
        config, commit_interval=3600.0, batch_size=100, input_complete=lambda: done
    )
    await service.start()
    runner = asyncio.create_task(service.run())
    engine = service.engine
    assert engine is not None
    while engine.stats.ranges < expected:  # everything processed, nothing committed
        await asyncio.sleep(0.05)

    intruder = AIOKafkaConsumer(
        f"{prefix}.ticks", f"{prefix}.vix", f"{prefix}.options",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=config.stream.kafka.group_id, enable_auto_commit=False,
    )  # fmt: skip
    await intruder.start()
    while not intruder.assignment():  # the group has rebalanced over both members
        await asyncio.sleep(0.05)
    await intruder.stop()  # ... and rebalances back: the service has every partition again

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "connectors.kafka_transport"]

    for _ in range(600):  # (its next heartbeat learns of the rebalance: up to 3 s)
        if said() and said()[-1].endswith("every input partition is back"):
            break
        await asyncio.sleep(0.05)
    stats = engine.stats
    for _ in range(600):  # the repeated records arrive (recognised, or dead-lettered)
        if stats.redelivered or stats.total_dead_letters:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # let the rest of them drain
    done = True
    await asyncio.wait_for(runner, 120)

    assert stats.total_dead_letters == 0, stats.dead_letters
    assert stats.redelivered > 0  # the rebalance did repeat records
    # While the intruder held some inputs, the service said so, and again when it left.
    partial = f"consumer group '{config.stream.kafka.group_id}': this service holds "
    assert any(m.startswith(partial) and "of the 3 input partitions" in m for m in said())
    assert said()[-1].endswith("every input partition is back"), said()
    assert stats.ranges == expected
    ranges = await read_topic(kafka_broker, f"{prefix}.ranges")
    assert [orjson.loads(v)["seq"] for _, v in ranges] == list(range(1, expected + 1))
