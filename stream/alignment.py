"""Event-time alignment: merge several input partitions into one deterministic order.

Kafka interleaves partitions (ticks, VIX, option chains) by fetch timing, which differs
from run to run. The engine instead processes events in (event time, partition rank,
offset) order: an event is released only when every other partition either has a
buffered event at the same or a later time, or has nothing more to give right now
(caught up). On a recorded feed that is fully present (a replay), the order is therefore
the same on every run and on every transport.

Live, "caught up" is as of the partition's last fetch: if records are appended to the VIX
partition and a fetch returns them before the ticks of the same instant have reached the
tick partition, the VIX events are released first (the tick partition looked caught up).
The stream stays at least once and in order per partition, but such a live run can merge
partitions differently from a later replay of the same records; a lateness allowance
(hold events for a fixed delay) would trade latency for that guarantee.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from connectors.transport import TopicPartition

T = TypeVar("T")
CaughtUp = Callable[[TopicPartition], bool]  # has everything written so far been read?


def input_order(
    partitions: Iterable[TopicPartition], topics: Sequence[str]
) -> list[TopicPartition]:
    """Partitions in aligner order: by ``topics`` (the tie rank at equal event time), then
    by topic name and partition (other topics after the named ones)."""
    rank = {t: i for i, t in enumerate(topics)}
    return sorted(partitions, key=lambda tp: (rank.get(tp.topic, 99), tp.topic, tp.partition))


class EventTimeAligner(Generic[T]):
    """Buffers parsed events per partition and releases them in event-time order."""

    def __init__(self, partitions: Sequence[TopicPartition]) -> None:
        # Rank breaks ties between partitions at the same event time: the caller's order
        # (e.g. VIX before options before ticks, so a tick sees the VIX of its instant).
        self._rank = {tp: i for i, tp in enumerate(partitions)}
        self._queues: dict[TopicPartition, deque[tuple[int, int, T]]] = {
            tp: deque() for tp in partitions
        }

    def push(self, tp: TopicPartition, ts: int, offset: int, item: T) -> None:
        self._queues[tp].append((ts, offset, item))

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._queues)

    def with_partitions(self, partitions: Sequence[TopicPartition]) -> EventTimeAligner[T]:
        """A new aligner over ``partitions`` (an assignment changed) that keeps what this
        one buffered, in order; a partition left out drops its buffered events."""
        new: EventTimeAligner[T] = EventTimeAligner(partitions)
        for tp, queue in self._queues.items():
            if tp in new._queues:
                new._queues[tp].extend(queue)
        return new

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def release(self, caught_up: CaughtUp) -> list[tuple[TopicPartition, int, T]]:
        """Everything that can be released now, as (partition, offset, item), in order.

        The head with the smallest (time, rank) is safe when no other partition is both
        empty and not caught up (a non-empty one has its head at a later time, or it would
        be the minimum). ``caught_up`` does not change during a call, so that is checked
        once up front and again only for a partition that this call empties; and a
        partition runs on without heap operations while its next event still precedes
        every other head (ticks come in long runs).
        """
        out: list[tuple[TopicPartition, int, T]] = []
        queues, rank = self._queues, self._rank
        if any(not q and not caught_up(tp) for tp, q in queues.items()):
            return out
        heads = [(q[0][0], rank[tp], tp) for tp, q in queues.items() if q]
        heapq.heapify(heads)
        while heads:
            _, r, tp = heapq.heappop(heads)
            queue = queues[tp]
            bound_ts, bound_rank = (heads[0][0], heads[0][1]) if heads else (None, 0)
            while True:
                _, offset, item = queue.popleft()
                out.append((tp, offset, item))
                if not queue:
                    if not caught_up(tp):
                        return out  # an earlier event may still arrive on `tp`
                    break
                ts = queue[0][0]
                if bound_ts is not None and (ts > bound_ts or (ts == bound_ts and r > bound_rank)):
                    heapq.heappush(heads, (ts, r, tp))
                    break
        return out

    def drain(self) -> list[tuple[TopicPartition, int, T]]:
        """Release everything (end of input), still in order."""
        return self.release(lambda _tp: True)
