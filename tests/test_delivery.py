"""Commits never pass a record whose outputs are still in flight."""

from __future__ import annotations

import asyncio

import pytest

from connectors.transport import TopicPartition
from stream.delivery import DeliveryTracker

TP = TopicPartition("markov.ticks", 0)
OTHER = TopicPartition("markov.vix", 0)


async def test_commit_waits_for_the_earliest_unacknowledged_output() -> None:
    loop = asyncio.get_running_loop()
    tracker = DeliveryTracker()
    acks = [loop.create_future() for _ in range(3)]
    tracker.processed(TP, 10, [acks[0]])
    tracker.processed(TP, 11, [acks[1], acks[2]])
    tracker.processed(TP, 12, [])  # produced nothing (e.g. throttled): still ordered
    tracker.processed(OTHER, 4, [])
    assert tracker.ready() == {OTHER: 5}
    tracker.mark_committed({OTHER: 5})

    acks[1].set_result(None)
    acks[2].set_result(None)
    assert tracker.ready() == {}  # offset 10 still in flight: nothing past it
    acks[0].set_result(None)
    assert tracker.ready() == {TP: 13}
    tracker.mark_committed({TP: 13})
    assert tracker.ready() == {}
    assert tracker.in_flight() == 0


async def test_a_failed_acknowledgement_stops_commits() -> None:
    loop = asyncio.get_running_loop()
    tracker = DeliveryTracker()
    failed = loop.create_future()
    failed.set_exception(RuntimeError("broker said no"))
    tracker.processed(TP, 0, [failed])
    with pytest.raises(RuntimeError, match="broker said no"):
        tracker.ready()


async def test_a_checkpoint_waits_only_for_the_outputs_before_it() -> None:
    # The commit task waited for every acknowledgement outstanding when it ran, those of
    # outputs produced after the checkpoint too: at full speed, commits trailed by seconds.
    loop = asyncio.get_running_loop()
    tracker = DeliveryTracker()
    before, acked, after = (loop.create_future() for _ in range(3))
    acked.set_result(None)
    tracker.processed(TP, 1, [before])
    tracker.processed(TP, 2, [acked])
    checkpoint = tracker.outstanding()
    assert checkpoint == [before]  # the acknowledged one is not waited for
    tracker.processed(TP, 3, [after])  # produced after the checkpoint, still in flight
    before.set_result(None)
    await asyncio.wait_for(asyncio.gather(*checkpoint), 1.0)
    assert tracker.ready() == {TP: 3}  # committable up to the checkpoint, not past it
    assert tracker.outstanding() == [after]
