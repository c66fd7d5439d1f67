"""The Kafka source and sink against the real local broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connectors.kafka_broker import LocalKafka
from connectors.kafka_transport import BrokerUnavailableError, KafkaSink, KafkaSource
from connectors.transport import TopicPartition

pytestmark = pytest.mark.kafka


async def test_sink_acks_source_reads_commits_and_resumes(kafka_broker: LocalKafka) -> None:
    topic = f"transport-{uuid.uuid4().hex[:8]}"
    await kafka_broker.create_topics_async([topic])
    sink = KafkaSink(kafka_broker.bootstrap_servers)
    await sink.start()
    try:
        acks = [await sink.send(topic, b"SPX", f"v{i}".encode()) for i in range(6)]
        await asyncio.gather(*acks)
    finally:
        await sink.stop()

    tp = TopicPartition(topic, 0)
    source = KafkaSource(kafka_broker.bootstrap_servers, [topic], group_id=f"g-{topic}")
    await source.start()
    try:
        got: list[bytes] = []
        while len(got) < 6:
            got.extend(r.value for r in await source.getmany(timeout_ms=1000, max_records=100))
        assert got == [f"v{i}".encode() for i in range(6)]
        assert source.caught_up(tp)
        await source.commit({tp: 4})  # offsets 4 and 5 consumed but not committed
    finally:
        await source.stop()

    again = KafkaSource(kafka_broker.bootstrap_servers, [topic], group_id=f"g-{topic}")
    await again.start()
    try:
        redelivered: list[bytes] = []
        for _ in range(20):
            redelivered.extend(
                r.value for r in await again.getmany(timeout_ms=500, max_records=100)
            )
            if len(redelivered) >= 2:
                break
        assert redelivered == [b"v4", b"v5"]
    finally:
        await again.stop()


async def test_unreachable_broker_is_one_clear_error() -> None:
    sink = KafkaSink("127.0.0.1:1")
    with pytest.raises(BrokerUnavailableError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        await sink.start()


async def test_batched_sink_keeps_each_keys_order_and_kafkas_partitioning(
    kafka_broker: LocalKafka,
) -> None:
    # Several thousand records over 3 partitions and 6 keys, small batches (so full
    # batches, linger flushes and the flusher's hand-over all happen): every record is
    # acknowledged, each key's records arrive in order, and each key lands on the
    # partition aiokafka's own per-record send picks (Kafka's murmur2 partitioner).
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as KafkaTP

    topic = f"batched-{uuid.uuid4().hex[:8]}"
    await kafka_broker.create_topics_async([topic, topic + "-ref"], partitions=3)
    keys = [f"SYM{i}".encode() for i in range(6)]
    sink = KafkaSink(kafka_broker.bootstrap_servers, linger_ms=1, max_batch_size=4096)
    await sink.start()
    try:
        acks = []
        for i in range(3000):
            key = keys[i % len(keys)]
            acks.append(await sink.send(topic, key, f"{key.decode()}-{i}".encode()))
            if i % 500 == 0:
                await asyncio.sleep(0.003)  # let some batches go out on their linger
        await sink.flush()
        await asyncio.gather(*acks)
    finally:
        await sink.stop()

    reference = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    await reference.start()
    try:
        expected_partition = {
            k: (await (await reference.send(topic + "-ref", b"x", key=k))).partition for k in keys
        }
    finally:
        await reference.stop()
    assert len(set(expected_partition.values())) > 1  # the keys really spread

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    await consumer.start()
    try:
        tps = [KafkaTP(topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: dict[bytes, list[int]] = {k: [] for k in keys}
        while sum(map(len, seen.values())) < 3000:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    assert r.key is not None
                    assert tp.partition == expected_partition[r.key]
                    seen[r.key].append(int(r.value.decode().rsplit("-", 1)[1]))
    finally:
        await consumer.stop()
    for n, key in enumerate(keys):
        assert seen[key] == list(range(n, 3000, len(keys)))
