"""``markov record``: write what the input topics carry to a recorded feed (JSON Lines).

Each consumed message becomes one line ``{"topic", "key", "ts", "payload"}``
(:mod:`connectors.feed_file`), with the recorded topic names mapped back to the standard
ones (``markov.ticks`` ...) so the file replays under any configuration. A message that is
not a JSON object with a valid ``ts`` cannot be a line of the format: it is counted and
skipped (the service dead-letters it when it consumes it). The recorder reads from the
beginning of the topics (no consumer group, nothing committed) and stops at
``max_events``, after ``idle_seconds`` without a message, or when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from config.schema import MarkovConfig
from connectors.feed_file import FeedWriter
from connectors.kafka_transport import KafkaSource
from connectors.transport import TopicPartition
from stream.alignment import EventTimeAligner, input_order
from stream.engine import EngineTopics
from stream.messages import BadMessageError, parse_ts
from stream.replay import topic_map


@dataclass
class RecordStats:
    written: int = 0
    skipped: int = 0


async def record_kafka(
    config: MarkovConfig,
    out: str | Path,
    *,
    max_events: int | None = None,
    idle_seconds: float = 5.0,
    stop: asyncio.Event | None = None,
) -> RecordStats:
    """Record the input topics to ``out`` in event-time order.

    The lines are merged across topics and partitions by the engine's own aligner, so a
    paced replay of the file keeps event time and the file reads like a generated feed.
    (Fetch batches come topic by topic: written as fetched, a day of ticks could precede
    the VIX of that day.)
    """
    topics = EngineTopics.from_config(config)
    back = {v: k for k, v in topic_map(config).items()}
    source = KafkaSource(
        config.stream.kafka.bootstrap_servers, list(back), None,
        max_message_bytes=config.stream.max_message_bytes,
        client_id=config.stream.kafka.client_id,
    )  # fmt: skip
    await source.start()
    stats = RecordStats()
    aligner: EventTimeAligner[tuple[str, str | None, int, Any]] = EventTimeAligner([])
    loop = asyncio.get_running_loop()

    def write(released: list[tuple[TopicPartition, int, tuple[str, str | None, int, Any]]]) -> bool:
        for _tp, _offset, (topic, key, ts, payload) in released:
            writer.write(topic, key, ts, payload)
            stats.written += 1
            if max_events is not None and stats.written >= max_events:
                return True
        return False

    try:
        with FeedWriter(out) as writer:
            last = loop.time()
            while stop is None or not stop.is_set():
                records = await source.getmany(timeout_ms=200, max_records=1000)
                assigned = source.assignment()
                if assigned != set(aligner.partitions):
                    aligner = aligner.with_partitions(input_order(assigned, topics.inputs))
                if not records and loop.time() - last >= idle_seconds:
                    break
                if records:
                    last = loop.time()
                for r in records:
                    try:
                        payload = orjson.loads(r.value)
                        ts = parse_ts(payload.get("ts") if isinstance(payload, dict) else None)
                    except (orjson.JSONDecodeError, BadMessageError):
                        stats.skipped += 1
                        continue
                    key = None if r.key is None else r.key.decode("utf-8", "replace")
                    aligner.push(r.tp, ts, r.offset, (back.get(r.topic, r.topic), key, ts, payload))
                if write(aligner.release(source.caught_up)):
                    return stats
            # Idle, or stopped: what was fetched is written too, still in order.
            write(aligner.drain())
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await source.stop()
    return stats
