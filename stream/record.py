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

import orjson

from config.schema import MarkovConfig
from connectors.feed_file import FeedWriter
from connectors.kafka_transport import BrokerUnavailableError
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
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    bootstrap = config.stream.kafka.bootstrap_servers
    back = {v: k for k, v in topic_map(config).items()}
    consumer = AIOKafkaConsumer(
        *back, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, fetch_max_bytes=4 * config.stream.max_message_bytes,
        max_partition_fetch_bytes=4 * config.stream.max_message_bytes,
    )  # fmt: skip
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        await consumer.stop()
        raise BrokerUnavailableError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    stats = RecordStats()
    loop = asyncio.get_running_loop()
    try:
        with FeedWriter(out) as writer:
            last = loop.time()
            while stop is None or not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                if not batches:
                    if loop.time() - last >= idle_seconds:
                        break
                    continue
                last = loop.time()
                for records in batches.values():
                    for r in records:
                        try:
                            payload = orjson.loads(r.value)
                            ts = parse_ts(payload.get("ts") if isinstance(payload, dict) else None)
                        except (orjson.JSONDecodeError, BadMessageError):
                            stats.skipped += 1
                            continue
                        key = None if r.key is None else r.key.decode("utf-8", "replace")
                        writer.write(back.get(r.topic, r.topic), key, ts, payload)
                        stats.written += 1
                        if max_events is not None and stats.written >= max_events:
                            return stats
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    return stats
