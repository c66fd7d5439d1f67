"""The transport contract: where input records come from and where output goes.

Kafka (:mod:`connectors.kafka_transport`) and the in-process bus
(:mod:`connectors.embedded_bus`) implement the same two small interfaces, so the engine
runs unchanged on either. Offsets follow Kafka's convention: a committed offset is the
next one to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(slots=True)
class InRecord:
    """One consumed record, with where it came from (for commits and dead letters).

    Treat it as immutable. Not a frozen dataclass: one is built per consumed record, and
    a frozen one's ``__init__`` costs five times as much (it sets fields through
    ``object.__setattr__``). ``tp`` is ``(topic, partition)`` as one shared object: see
    :func:`topic_partition`.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    tp: TopicPartition


def topic_partition(topic: str, partition: int) -> TopicPartition:
    """The shared :class:`TopicPartition` of ``(topic, partition)`` (a NamedTuple costs a
    Python-level ``__new__``; sources look it up once per record)."""
    key = (topic, partition)
    tp = _TPS.get(key)
    if tp is None:
        tp = _TPS[key] = TopicPartition(topic, partition)
    return tp


_TPS: dict[tuple[str, int], TopicPartition] = {}


class EventSource(Protocol):
    """A consumer over the input topics."""

    async def start(self) -> None: ...

    async def getmany(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_ms`` for the first."""
        ...

    def caught_up(self, tp: TopicPartition) -> bool:
        """True when everything written to ``tp`` so far has been returned."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Commit ``offsets`` (next offset to read) for the consumer group; return those
        committed (a partition this member does not hold now is left out)."""
        ...

    async def stop(self) -> None: ...


class EventSink(Protocol):
    """A producer: ``send`` returns a future that resolves when the record is durable."""

    async def start(self) -> None: ...

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]: ...

    async def flush(self) -> None: ...

    async def stop(self) -> None: ...
