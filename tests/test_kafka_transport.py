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
