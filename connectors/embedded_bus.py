"""An in-process message bus with Kafka's semantics, so ``markov run`` needs no broker.

Each topic is one append-only partition; consumer groups keep committed offsets; a
consumer resumes from its group's committed offset. Producing resolves its future at
once (the record is in memory). It is deliberately small: the point is that the engine
sees the same interface (:mod:`connectors.transport`) as with Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connectors.transport import InRecord, TopicPartition


@dataclass
class _Topic:
    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)


class EmbeddedBus:
    """Topics and consumer-group offsets held in memory."""

    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._appended = asyncio.Event()

    def topic(self, name: str) -> list[tuple[bytes | None, bytes]]:
        """The records of ``name`` (created empty if new), oldest first."""
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic()
        return topic.records

    def append(self, topic: str, key: bytes | None, value: bytes) -> int:
        """Append a record; return its offset."""
        records = self.topic(topic)
        records.append((key, value))
        self._appended.set()
        return len(records) - 1

    def committed(self, group: str, tp: TopicPartition) -> int:
        return self._committed.get((group, tp), 0)

    def source(self, topics: Iterable[str], group: str) -> EmbeddedSource:
        return EmbeddedSource(self, list(topics), group)

    def sink(self) -> EmbeddedSink:
        return EmbeddedSink(self)

    async def _wait_for_append(self, timeout_s: float) -> None:
        self._appended.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._appended.wait(), timeout_s)


class EmbeddedSource:
    """A consumer of the embedded bus (one partition per topic)."""

    def __init__(self, bus: EmbeddedBus, topics: list[str], group: str) -> None:
        self._bus = bus
        self._group = group
        self._tps = [TopicPartition(t, 0) for t in topics]
        self._position: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._position = {tp: self._bus.committed(self._group, tp) for tp in self._tps}

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._tps)

    def caught_up(self, tp: TopicPartition) -> bool:
        return self._position[tp] >= len(self._bus.topic(tp.topic))

    async def getmany(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        out = self._drain(max_records)
        if not out and timeout_ms > 0:
            await self._bus._wait_for_append(timeout_ms / 1000)
            out = self._drain(max_records)
        return out

    def _drain(self, max_records: int) -> list[InRecord]:
        # Round-robin over partitions in fixed order, like a fetch that returns a slice of
        # each partition: the engine's event-time alignment decides the processing order.
        out: list[InRecord] = []
        share = max(1, max_records // max(1, len(self._tps)))
        for tp in self._tps:
            records = self._bus.topic(tp.topic)
            start = self._position[tp]
            stop = min(len(records), start + share, start + max_records - len(out))
            for offset in range(start, stop):
                key, value = records[offset]
                out.append(InRecord(tp.topic, tp.partition, offset, key, value, tp))
            self._position[tp] = max(start, stop)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        for tp, offset in offsets.items():
            self._bus._committed[(self._group, tp)] = offset
        return dict(offsets)

    async def stop(self) -> None:
        return None


class EmbeddedSink:
    """A producer to the embedded bus; acknowledged as soon as appended."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._done: asyncio.Future[None] | None = None

    async def start(self) -> None:
        return None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        self._bus.append(topic, key, value)
        done = self._done
        if done is None:
            # Every acknowledgement is the same resolved future (awaiting a done future
            # any number of times is fine), made once in the running loop.
            done = self._done = asyncio.get_running_loop().create_future()
            done.set_result(None)
        return done

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None
