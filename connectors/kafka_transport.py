"""Kafka source and sink (aiokafka), at-least-once.

The source is a consumer group over the input topics with auto-commit off: the engine
commits an offset only after every range produced from the inputs before it has been
acknowledged by the broker. The sink is an idempotent producer with ``acks="all"``;
``send`` returns the broker acknowledgement as a future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import TopicPartition as KafkaTP

from connectors.transport import InRecord, TopicPartition

RevokeHandler = Callable[[frozenset[TopicPartition]], Awaitable[None]]


class BrokerUnavailableError(ConnectionError):
    """The bootstrap servers did not answer; the message names them."""


class _Revocations(ConsumerRebalanceListener):
    """Lets the engine finish in-flight work and commit before partitions move away.

    aiokafka awaits ``on_partitions_revoked`` before the rebalance goes on; the handler
    must not take a lock that the ``getmany`` loop holds (the docs warn it deadlocks).
    """

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = frozenset(TopicPartition(tp.topic, tp.partition) for tp in revoked)
        if self._source.on_revoke is not None and tps:
            await self._source.on_revoke(tps)
        for tp in tps:
            self._source._next.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class KafkaSource:
    """A consumer-group source over ``topics``."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        *,
        max_message_bytes: int = 1_048_576,
        on_revoke: RevokeHandler | None = None,
        client_id: str = "markov",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topics = list(topics)
        self.on_revoke = on_revoke
        # Fetch limits above the largest accepted message, so an oversized one still
        # arrives and can be dead-lettered instead of stalling the partition.
        fetch = max(2 * max_message_bytes, 4 * 1_048_576)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=fetch,
            fetch_max_bytes=fetch,
        )
        self._next: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        try:
            await self._consumer.start()
        except KafkaConnectionError as exc:
            await self._consumer.stop()
            raise BrokerUnavailableError(
                f"cannot reach Kafka at {self._bootstrap}: {exc}"
            ) from None
        self._consumer.subscribe(self._topics, listener=_Revocations(self))

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(
            TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()
        )

    def caught_up(self, tp: TopicPartition) -> bool:
        """Everything the broker had at the last fetch has been returned."""
        high = self._consumer.highwater(KafkaTP(tp.topic, tp.partition))
        position = self._next.get(tp)
        return high is not None and position is not None and position >= high

    async def getmany(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[InRecord] = []
        for ktp, records in batches.items():
            for r in records:
                out.append(InRecord(ktp.topic, ktp.partition, r.offset, r.key, r.value))
            if records:
                self._next[TopicPartition(ktp.topic, ktp.partition)] = records[-1].offset + 1
        # Partitions with nothing returned yet: learn where we stand, so that an empty or
        # fully consumed partition counts as caught up.
        for ktp in self._consumer.assignment():
            tp = TopicPartition(ktp.topic, ktp.partition)
            if tp not in self._next:
                self._next[tp] = await self._consumer.position(ktp)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            await self._consumer.commit(
                {KafkaTP(tp.topic, tp.partition): off for tp, off in offsets.items()}
            )

    async def stop(self) -> None:
        await self._consumer.stop()


class KafkaSink:
    """An idempotent producer: ``acks="all"``, retries without duplicates or reordering."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        linger_ms: int = 2,
        max_request_size: int = 4 * 1_048_576,
        client_id: str = "markov",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_request_size=max_request_size,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaConnectionError as exc:
            await self._producer.stop()
            raise BrokerUnavailableError(
                f"cannot reach Kafka at {self._bootstrap}: {exc}"
            ) from None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        acked: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key)
        return acked

    async def flush(self) -> None:
        await self._producer.flush()

    async def stop(self) -> None:
        await self._producer.stop()
