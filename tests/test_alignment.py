"""Event-time alignment gives one order whatever the interleaving of partitions."""

from __future__ import annotations

import random

from connectors.transport import TopicPartition
from stream.alignment import EventTimeAligner, input_order

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


def test_three_partitions_with_ties_release_in_time_rank_offset_order() -> None:
    """Runs of one partition (released without heap operations) stop exactly where
    another partition's head comes first, ties going to the lower rank."""
    options = TopicPartition("markov.options", 0)
    parts = [VIX, options, TICKS]
    for seed in range(30):
        rng = random.Random(seed)
        data = {tp: sorted(rng.choices(range(12), k=rng.randint(0, 15))) for tp in parts}
        aligner: EventTimeAligner[tuple[int, int, int]] = EventTimeAligner(parts)
        position = dict.fromkeys(parts, 0)
        out: list[tuple[int, int, int]] = []
        while any(position[tp] < len(data[tp]) for tp in parts):
            tp = rng.choice([tp for tp in parts if position[tp] < len(data[tp])])
            stop = min(len(data[tp]), position[tp] + rng.randint(1, 4))
            for offset in range(position[tp], stop):
                ts = data[tp][offset]
                aligner.push(tp, ts, offset, (ts, parts.index(tp), offset))
            position[tp] = stop
            done = {p for p in parts if position[p] >= len(data[p])}
            out += [item for _, _, item in aligner.release(done.__contains__)]
        out += [item for _, _, item in aligner.drain()]
        want = sorted((ts, parts.index(tp), i) for tp in parts for i, ts in enumerate(data[tp]))
        assert out == want, seed


def test_a_new_assignment_keeps_the_buffered_events_of_the_partitions_it_keeps() -> None:
    # The engine rebuilds its aligner on a rebalance; the recorder on its first fetch.
    opts = TopicPartition("markov.options", 0)
    aligner: EventTimeAligner[int] = EventTimeAligner([TICKS])
    for offset, ts in enumerate([5, 15, 25]):
        aligner.push(TICKS, ts, offset, ts)
    order = input_order([opts, TICKS, VIX], ["markov.ticks", "markov.vix", "markov.options"])
    assert order == [TICKS, VIX, opts]
    grown = aligner.with_partitions(order)
    assert grown.partitions == order and len(grown) == 3
    grown.push(VIX, 10, 0, 10)
    assert [ts for _, _, ts in grown.drain()] == [5, 10, 15, 25]
    shrunk: EventTimeAligner[int] = EventTimeAligner([TICKS, VIX])
    shrunk.push(TICKS, 1, 0, 1)
    shrunk.push(VIX, 2, 0, 2)
    assert [ts for _, _, ts in shrunk.with_partitions([VIX]).drain()] == [2]  # revoked: dropped
