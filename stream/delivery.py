"""At-least-once bookkeeping: which input offsets are safe to commit.

Every processed input record registers the acknowledgements of the outputs it produced
(ranges, or its dead letter). An input offset becomes committable once its own outputs
and those of every earlier record of the same partition are acknowledged; the commit for
a partition is then that offset + 1 (Kafka's "next offset to read"). Records of one
partition are processed in offset order, so a per-partition queue suffices, and a commit
never skips a record whose outputs are still in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from connectors.transport import TopicPartition


class DeliveryTracker:
    """Per-partition queues of (offset, pending acknowledgements)."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[tuple[int, list[asyncio.Future[None]]]]] = {}
        self._committed: dict[TopicPartition, int] = {}

    def processed(
        self, tp: TopicPartition, offset: int, acks: Iterable[asyncio.Future[None]] = ()
    ) -> None:
        """Record that ``offset`` of ``tp`` was processed, producing ``acks``."""
        queue = self._pending.get(tp)
        if queue is None:
            queue = self._pending[tp] = deque()
        queue.append((offset, acks if isinstance(acks, list) else list(acks)))

    def ready(self) -> dict[TopicPartition, int]:
        """Offsets that may be committed now (only partitions that advanced).

        Raises the first failed acknowledgement's exception: the record it belongs to was
        not delivered, so the service must stop without committing past it.
        """
        out: dict[TopicPartition, int] = {}
        for tp, queue in self._pending.items():
            last = None
            while queue:
                offset, acks = queue[0]
                if not all(a.done() for a in acks):
                    break
                for a in acks:
                    failure = a.exception()
                    if failure is not None:
                        raise failure
                queue.popleft()
                last = offset
            if last is not None and self._committed.get(tp, -1) < last + 1:
                out[tp] = last + 1
        return out

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def in_flight(self) -> int:
        """Processed records whose outputs are not yet all acknowledged."""
        return sum(len(q) for q in self._pending.values())

    def outstanding(self) -> list[asyncio.Future[None]]:
        """The acknowledgements not yet received, of every output registered so far."""
        return [a for q in self._pending.values() for _, acks in q for a in acks if not a.done()]
