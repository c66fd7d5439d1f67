"""The embedded bus keeps Kafka's consumer semantics: offsets, commits, resume."""

from __future__ import annotations

from connectors.embedded_bus import EmbeddedBus
from connectors.transport import TopicPartition


async def test_consume_commit_and_resume_from_committed_offset() -> None:
    bus = EmbeddedBus()
    sink = bus.sink()
    for i in range(5):
        ack = await sink.send("t", b"k", f"v{i}".encode())
        await ack
    source = bus.source(["t"], group="g")
    await source.start()
    first = await source.getmany(timeout_ms=0, max_records=3)
    assert [r.offset for r in first] == [0, 1, 2]
    assert not source.caught_up(TopicPartition("t", 0))
    await source.commit({TopicPartition("t", 0): 2})  # offset 2 consumed but not committed

    restarted = bus.source(["t"], group="g")
    await restarted.start()
    again = await restarted.getmany(timeout_ms=0, max_records=10)
    assert [r.value for r in again] == [b"v2", b"v3", b"v4"]
    assert restarted.caught_up(TopicPartition("t", 0))
    assert await restarted.getmany(timeout_ms=10, max_records=10) == []

    other_group = bus.source(["t"], group="h")
    await other_group.start()
    assert len(await other_group.getmany(timeout_ms=0, max_records=10)) == 5


async def test_getmany_wakes_up_on_append() -> None:
    import asyncio

    bus = EmbeddedBus()
    source = bus.source(["t"], group="g")
    await source.start()

    async def produce_later() -> None:
        await asyncio.sleep(0.01)
        bus.append("t", None, b"x")

    task = asyncio.create_task(produce_later())
    got = await source.getmany(timeout_ms=2000, max_records=10)
    await task
    assert [r.value for r in got] == [b"x"]
