"""Play a recorded feed (:mod:`connectors.feed_file`) onto the embedded bus or Kafka topics.

Events keep the file's order. The recorded topic names (``markov.ticks``,
``markov.vix``, ``markov.options``) are mapped to the configured ones; other topics pass
through unchanged. ``speed`` paces the events by their event time: 1 = as recorded,
N = N times faster, 0 (``max``) = as fast as the target takes them. A malformed line of
the file goes to the dead-letter topic with its reason (file and line) and the replay
goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus
from connectors.feed_file import FeedError, FeedRecord, read_feed
from connectors.transport import EventSink

RECORDED_TOPICS = ("markov.ticks", "markov.vix", "markov.options")


def parse_speed(text: str) -> float:
    """``max`` → 0 (full speed); a number > 0 → that multiple of event time."""
    if text.strip().lower() == "max":
        return 0.0
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"--speed must be 'max' or a number > 0, got {text!r}") from None
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"--speed must be 'max' or a number > 0, got {text!r}")
    return speed


def topic_map(config: MarkovConfig) -> dict[str, str]:
    t = config.stream.topics
    return dict(zip(RECORDED_TOPICS, (t.ticks, t.vix, t.options), strict=True))


@dataclass
class ReplayStats:
    events: int = 0
    malformed: int = 0
    first_error: str | None = None  # "line N: reason" of the first malformed line
    first_ts: int | None = None
    last_ts: int | None = None


class ReplayTarget(Protocol):
    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    async def flush(self) -> None: ...


class BusTarget:
    """Appends to an :class:`EmbeddedBus` (synchronously: nothing to wait for)."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self.bus = bus

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.bus.append(topic, key, value)

    async def flush(self) -> None:
        return None


class SinkTarget:
    """Produces through an :class:`EventSink` (Kafka); ``flush`` waits for every ack."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self._acks: list[asyncio.Future[None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._acks.append(await self.sink.send(topic, key, value))
        if len(self._acks) >= 10_000:
            await self.flush()

    async def flush(self) -> None:
        acks, self._acks = self._acks, []
        await self.sink.flush()
        await asyncio.gather(*acks)


def load_into_bus(bus: EmbeddedBus, path: str | Path, config: MarkovConfig) -> ReplayStats:
    """The whole feed into the bus at once (full speed, before the engine starts)."""
    stats = ReplayStats()
    for topic, key, value, record in _encoded(path, config, stats):
        bus.append(topic, key, value)
        if record is not None:
            _track(stats, record.ts)
    return stats


async def replay(
    path: str | Path,
    target: ReplayTarget,
    config: MarkovConfig,
    *,
    speed: float = 0.0,
    sleep: float = 0.0005,
    stats: ReplayStats | None = None,
) -> ReplayStats:
    """Send every event of ``path`` to ``target``, paced by event time at ``speed``.

    ``stats`` (a fresh one by default) counts as it goes, so a caller that cancels the
    replay still knows how far it got."""
    if speed < 0:
        raise ValueError(f"speed must be >= 0 (0 = full speed), got {speed}")
    stats = ReplayStats() if stats is None else stats
    start_wall = time.monotonic()
    for sent, (topic, key, value, record) in enumerate(_encoded(path, config, stats), 1):
        if record is not None:
            if speed > 0:
                first = record.ts if stats.first_ts is None else stats.first_ts
                due = start_wall + (record.ts - first) / 1e9 / speed
                delay = due - time.monotonic()
                if delay > sleep:
                    await asyncio.sleep(delay)
            _track(stats, record.ts)
        await target.send(topic, key, value)
        if speed == 0 and sent % 5000 == 0:
            await asyncio.sleep(0)  # let the consumer and others run
    await target.flush()
    return stats


def _track(stats: ReplayStats, ts: int) -> None:
    if stats.first_ts is None:
        stats.first_ts = ts
    stats.last_ts = ts


def _encoded(
    path: str | Path, config: MarkovConfig, stats: ReplayStats
) -> Iterator[tuple[str, bytes | None, bytes, FeedRecord | None]]:
    mapping = topic_map(config)
    dlq = config.stream.topics.dlq
    for item in read_feed(path, on_error="yield"):
        if isinstance(item, FeedError):
            stats.malformed += 1
            if stats.first_error is None:
                stats.first_error = f"line {item.line}: {item.reason}"
            letter = orjson.dumps(
                {
                    "source": item.path,
                    "offset": item.line,
                    "error": f"line {item.line}: {item.reason}",
                    "payload": item.raw[:10_240].decode("utf-8", errors="replace"),
                    "payload_bytes": len(item.raw),
                }
            )
            yield dlq, None, letter, None
            continue
        stats.events += 1
        key = None if item.key is None else item.key.encode()
        yield mapping.get(item.topic, item.topic), key, orjson.dumps(item.payload), item
