"""Event-time alignment gives one order whatever the interleaving of partitions."""

from __future__ import annotations

import random

from connectors.transport import TopicPartition
from stream.alignment import EventTimeAligner

VIX = TopicPartition("markov.vix", 0)
TICKS = TopicPartition("markov.ticks", 0)


def feed() -> dict[TopicPartition, list[int]]:
    return {VIX: [10, 20, 30, 50], TICKS: [5, 10, 15, 20, 25, 60]}


def run(seed: int) -> list[tuple[str, int]]:
    """Deliver the feed in random-sized slices per partition, like fetches, then drain."""
    rng = random.Random(seed)
    aligner: EventTimeAligner[int] = EventTimeAligner([VIX, TICKS])
    data = feed()
    position = {tp: 0 for tp in data}
    out: list[tuple[str, int]] = []
    while any(position[tp] < len(data[tp]) for tp in data):
        tp = rng.choice([tp for tp in data if position[tp] < len(data[tp])])
        take = rng.randint(1, 3)
        for offset in range(position[tp], min(len(data[tp]), position[tp] + take)):
            aligner.push(tp, data[tp][offset], offset, data[tp][offset])
        position[tp] = min(len(data[tp]), position[tp] + take)
        released = aligner.release(lambda p: position[p] >= len(data[p]))
        out.extend((p.topic, ts) for p, _, ts in released)
    out.extend((p.topic, ts) for p, _, ts in aligner.drain())
    return out


def test_order_is_event_time_with_rank_tiebreak_for_any_interleaving() -> None:
    expected = sorted(
        [(ts, 0, VIX.topic) for ts in feed()[VIX]] + [(ts, 1, TICKS.topic) for ts in feed()[TICKS]]
    )
    want = [(topic, ts) for ts, _, topic in expected]
    for seed in range(50):
        assert run(seed) == want


def test_waits_for_a_partition_that_is_not_caught_up() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner([VIX, TICKS])
    aligner.push(TICKS, 100, 0, "tick")
    assert aligner.release(lambda tp: tp != VIX) == []  # VIX may still send something earlier
    assert [item for _, _, item in aligner.release(lambda tp: True)] == ["tick"]
    assert len(aligner) == 0
