"""Kafka source and sink (aiokafka), at-least-once.

The source is a consumer group over the input topics with auto-commit off: the engine
commits an offset only after every range produced from the inputs before it has been
acknowledged by the broker. The sink is an idempotent producer with ``acks="all"``;
``send`` returns the broker acknowledgement as a future.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition as KafkaTP

from connectors.transport import InRecord, TopicPartition, topic_partition

RevokeHandler = Callable[[frozenset[TopicPartition]], Awaitable[None]]

log = logging.getLogger(__name__)


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
        self._source.check_assignment({(tp.topic, tp.partition) for tp in assigned})


class KafkaSource:
    """A consumer-group source over ``topics``; with ``group_id=None``, a reader of every
    partition from the beginning that never commits (``markov record``)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str | None,
        *,
        max_message_bytes: int = 1_048_576,
        on_revoke: RevokeHandler | None = None,
        client_id: str = "markov",
        fetch_max_wait_ms: int = 500,
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
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._next: dict[TopicPartition, int] = {}
        self._group = group_id
        self.partial_assignment = False  # another member of the group holds some inputs

    def check_assignment(self, assigned: set[tuple[str, int]]) -> None:
        """Say so when the group gave this member only part of the input partitions.

        One service per consumer group (README, known limits): every symbol needs the VIX
        partition and there is no state hand-over yet, so a second member silently takes
        inputs away (aiokafka's round-robin assignor deals out partitions of all topics).
        """
        known = {
            (topic, p)
            for topic in self._topics
            for p in self._consumer.partitions_for_topic(topic) or ()
        }
        missing = sorted(known - assigned)
        if missing:
            names = ", ".join(f"{t}/{p}" for t, p in missing)
            log.warning(
                "consumer group %r: this service holds %d of the %d input partitions "
                "(another member has %s): markov runs one service per consumer group, "
                "and until they come back those inputs do not reach its ranges",
                self._group, len(known) - len(missing), len(known), names,
            )  # fmt: skip
        elif self.partial_assignment:
            log.warning("consumer group %r: every input partition is back", self._group)
        self.partial_assignment = bool(missing)

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
        """Everything the broker had at the last fetch has been returned (False for a
        partition that is not assigned any more)."""
        try:
            high = self._consumer.highwater(KafkaTP(tp.topic, tp.partition))
        except IllegalStateError:
            return False
        position = self._next.get(tp)
        return high is not None and position is not None and position >= high

    async def getmany(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[InRecord] = []
        for ktp, records in batches.items():
            tp = topic_partition(ktp.topic, ktp.partition)
            for r in records:
                # A null value (a tombstone) is an empty message: the engine dead-letters
                # it (as None it crashed the service, and every restart again on it).
                value = b"" if r.value is None else r.value
                out.append(InRecord(tp.topic, tp.partition, r.offset, r.key, value, tp))
            if records:
                self._next[tp] = records[-1].offset + 1
        # Partitions with nothing returned yet: learn where we stand, so that an empty or
        # fully consumed partition counts as caught up.
        for ktp in self._consumer.assignment():
            tp = topic_partition(ktp.topic, ktp.partition)
            if tp not in self._next:
                try:
                    self._next[tp] = await self._consumer.position(ktp)
                except IllegalStateError:
                    continue  # revoked by a rebalance while we asked
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Commit ``offsets`` for the partitions this member holds now and return those.
        Kafka refuses the others: during a rebalance they are not ours to commit, and
        whoever holds them next starts from their last commit."""
        assigned = self._consumer.assignment()
        owned = {
            tp: off for tp, off in offsets.items() if KafkaTP(tp.topic, tp.partition) in assigned
        }
        if owned:
            await self._consumer.commit(
                {KafkaTP(tp.topic, tp.partition): off for tp, off in owned.items()}
            )
        return owned

    async def stop(self) -> None:
        await self._consumer.stop()


class KafkaSink:
    """An idempotent producer: ``acks="all"``, retries without duplicates or reordering.

    Records are appended to an open batch per (topic, partition) and handed to aiokafka
    whole (``create_batch`` / ``send_batch``, the library's bulk interface) by one flusher
    task per partition: ``linger_ms`` after the first record, then as fast as aiokafka
    takes them (it holds one batch per partition until the previous one is on the wire; the
    records arriving meanwhile fill the next batch). ``send`` returns the acknowledgement
    of the batch its record is in. Measured on the stream benchmark, aiokafka's per-record
    ``send`` (partitioner, accumulator, a future per record) cost ~3x the whole engine's
    work per range; appending to a batch is one call into aiokafka's C record builder.
    Keys go to the partition Kafka's default partitioner picks (murmur2), as with ``send``.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        linger_ms: int = 5,
        max_batch_size: int = 1_048_576,
        max_request_size: int = 4 * 1_048_576,
        client_id: str = "markov",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._linger = linger_ms / 1000
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
            max_request_size=max_request_size,
        )
        self._partitioner = DefaultPartitioner()
        self._partition_of: dict[tuple[str, bytes | None], int] = {}
        self._slots: dict[tuple[str, int], _Slot] = {}

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaConnectionError as exc:
            await self._producer.stop()
            raise BrokerUnavailableError(
                f"cannot reach Kafka at {self._bootstrap}: {exc}"
            ) from None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        partition = self._partition_of.get((topic, key))
        if partition is None:
            partition = await self._partition(topic, key)
        target = (topic, partition)
        slot = self._slots.get(target)
        if slot is None:
            slot = self._slots[target] = _Slot()
        batch = slot.open or self._new_batch(slot)
        if batch.builder.append(timestamp=None, key=key, value=value) is None:
            # Full: queue it for the flusher and start the next one (an empty builder
            # takes one record whatever its size, up to max_request_size).
            slot.ready.append(batch)
            batch = self._new_batch(slot)
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                raise ValueError(f"record of {len(value)} bytes does not fit a Kafka batch")
        batch.records += 1
        if slot.flusher is None:
            self._start_flusher(target, slot, self._linger)
        elif len(slot.ready) > _MAX_READY_BATCHES:
            await asyncio.shield(slot.flusher)  # backpressure: the broker is behind
        return batch.acked

    async def _partition(self, topic: str, key: bytes | None) -> int:
        partitions = sorted(await self._producer.partitions_for(topic))
        partition = int(self._partitioner(key, partitions, partitions))
        if key is not None:  # keyless records are spread; keyed ones always land alike
            self._partition_of[(topic, key)] = partition
        return partition

    def _new_batch(self, slot: _Slot) -> _OpenBatch:
        batch = _OpenBatch(self._producer.create_batch(), asyncio.get_running_loop())
        slot.open = batch
        return batch

    def _start_flusher(self, target: tuple[str, int], slot: _Slot, delay: float) -> None:
        slot.flusher = asyncio.get_running_loop().create_task(self._flush_slot(target, slot, delay))

    async def _flush_slot(self, target: tuple[str, int], slot: _Slot, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            while True:
                if slot.ready:
                    batch = slot.ready.popleft()
                elif slot.open is not None and slot.open.records:
                    batch, slot.open = slot.open, None
                else:
                    return
                try:
                    delivered = await self._producer.send_batch(
                        batch.builder, target[0], partition=target[1]
                    )
                except Exception as exc:  # the records never left: their ack fails
                    batch.acked.set_exception(exc)
                    continue
                delivered.add_done_callback(batch.resolve)
        finally:
            slot.flusher = None

    async def flush(self) -> None:
        """Hand every open batch to aiokafka and wait until all are acknowledged."""
        while True:
            for target, slot in self._slots.items():
                if slot.flusher is None and (slot.ready or (slot.open and slot.open.records)):
                    self._start_flusher(target, slot, 0.0)
            running = [s.flusher for s in self._slots.values() if s.flusher is not None]
            if not running:
                break
            await asyncio.gather(*running, return_exceptions=True)
        await self._producer.flush()

    async def stop(self) -> None:
        await self.flush()
        await self._producer.stop()


_MAX_READY_BATCHES = 4  # full batches queued per partition before send() waits


class _OpenBatch:
    """A batch being filled, and the future its records' senders hold."""

    __slots__ = ("acked", "builder", "records")

    def __init__(self, builder: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.builder = builder
        self.acked: asyncio.Future[None] = loop.create_future()
        self.records = 0

    def resolve(self, delivered: asyncio.Future[Any]) -> None:
        if self.acked.done():
            return
        if delivered.cancelled():
            self.acked.set_exception(asyncio.CancelledError("batch delivery was cancelled"))
        elif (exc := delivered.exception()) is not None:
            self.acked.set_exception(exc)
        else:
            self.acked.set_result(None)


class _Slot:
    """One partition's open batch, full batches waiting, and its flusher task."""

    __slots__ = ("flusher", "open", "ready")

    def __init__(self) -> None:
        self.open: _OpenBatch | None = None
        self.ready: deque[_OpenBatch] = deque()
        self.flusher: asyncio.Task[None] | None = None
