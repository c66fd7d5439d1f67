"""The transport contract: where input records come from and where output goes.

Kafka (:mod:`connectors.kafka_transport`) and the in-process bus
(:mod:`connectors.embedded_bus`) implement the same two small interfaces, so the engine
runs unchanged on either. Offsets follow Kafka's convention: a committed offset is the
next one to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed record, with where it came from (for commits and dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    tp: TopicPartition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Built once per record (the engine asks for it several times) from a cache: a
        # NamedTuple costs a Python-level __new__.
        key = (self.topic, self.partition)
        tp = _TPS.get(key)
        if tp is None:
            tp = _TPS[key] = TopicPartition(self.topic, self.partition)
        object.__setattr__(self, "tp", tp)


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

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (next offset to read) for the consumer group."""
        ...

    async def stop(self) -> None: ...


class EventSink(Protocol):
    """A producer: ``send`` returns a future that resolves when the record is durable."""

    async def start(self) -> None: ...

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]: ...

    async def flush(self) -> None: ...

    async def stop(self) -> None: ...
