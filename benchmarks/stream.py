"""Stream benchmarks: throughput (embedded, Kafka) and tick-to-range latency.

    python -m benchmarks.stream [--quick] [--no-kafka] [--profile]

* embedded: the bundled feed (``--quick``: its first 10 sessions) preloaded on the
  embedded bus, consumed by the service at full speed (warm-up excluded); events/s.
* kafka: the same feed produced to the local Kafka broker first, then consumed by the
  service (consume, process, produce ranges with acks=all, checkpoint, commit); events/s
  end to end from the first record processed until every range is acknowledged and the
  last offsets committed (the consumer group's join before that is printed beside it).
* latency: live mode (wall clock), ticks offered at 1,000 and 5,000 per second (every tick
  publishes: throttle 0), latency = time the first range of a tick is handed to the sink
  minus the time the tick was appended / sent; p50 / p99 / max, on the embedded bus and
  through Kafka.
* ``--profile``: the top functions of the embedded run by own time (cProfile).

Members: the two pure-Python baselines (VIX-implied and EWMA); the configured horizons (2 by
default), so one range per horizon a tick. The machine is shared: run it more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import time
from typing import Any

import numpy as np
import orjson

from config import ConfigLoader
from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus
from connectors.feed_file import FeedRecord, read_feed
from stream.clock import EventClock, WallClock
from stream.feeds import BUNDLED_FEED
from stream.service import StreamService, baseline_ensemble

HISTORY_END = "2017-12-29"


def feed(quick: bool) -> list[FeedRecord]:
    out = []
    days: set[int] = set()
    for r in read_feed(BUNDLED_FEED):
        days.add(r.ts // 86_400_000_000_000)
        if quick and len(days) > 10:
            break
        out.append(r)
    return out


def config(*overrides: str) -> MarkovConfig:
    return ConfigLoader.with_overrides(
        ConfigLoader.default(), ["websocket.enabled=false", "data.source=bundled", *overrides]
    )


def encoded(cfg: MarkovConfig, records: list[FeedRecord]) -> list[tuple[str, bytes, bytes]]:
    t = cfg.stream.topics
    m = {"markov.ticks": t.ticks, "markov.vix": t.vix, "markov.options": t.options}
    return [(m[r.topic], (r.key or "").encode(), orjson.dumps(r.payload)) for r in records]


def service(cfg: MarkovConfig, **kwargs: Any) -> StreamService:
    kwargs.setdefault("clock", EventClock())
    kwargs.setdefault("input_complete", lambda: True)
    return StreamService(
        cfg, ensemble_factory=baseline_ensemble, history_end=HISTORY_END, days_back=300,
        executor=None, websocket=False, **kwargs,
    )  # fmt: skip


async def embedded_throughput(records: list[FeedRecord], profile: bool) -> float:
    cfg = config()
    bus = EmbeddedBus()
    for t, k, v in encoded(cfg, records):
        bus.append(t, k, v)
    svc = service(cfg, bus=bus)
    await svc.start()
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    await svc.run()
    if prof:
        prof.disable()
    seconds = time.perf_counter() - start
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())
    return len(records) / seconds


async def kafka_throughput(bootstrap: str, records: list[FeedRecord]) -> tuple[float, float]:
    from connectors.kafka_transport import KafkaSink

    prefix = f"bench{random.randrange(10**8)}"
    names = ("ticks", "vix", "options", "ranges", "dlq", "state")
    cfg = config(
        "stream.mode=kafka", f"stream.kafka.bootstrap_servers={bootstrap}",
        f"stream.kafka.group_id={prefix}",
        *[f"stream.topics.{n}={prefix}.{n}" for n in names],
    )  # fmt: skip
    sink = KafkaSink(bootstrap)
    await sink.start()
    acks = [await sink.send(t, k, v) for t, k, v in encoded(cfg, records)]
    await sink.flush()
    await asyncio.gather(*acks)
    await sink.stop()
    svc = service(cfg)
    await svc.start()
    start = time.perf_counter()
    first: list[float] = []

    async def first_event() -> None:
        while svc.engine is None or svc.engine.stats.total_events == 0:
            await asyncio.sleep(0.002)
        first.append(time.perf_counter())

    watcher = asyncio.create_task(first_event())
    await svc.run()
    end = time.perf_counter()
    watcher.cancel()
    # Throughput from the first record processed (the consumer group has joined and
    # fetched) to the last offsets committed; the join itself is reported beside it.
    return len(records) / (end - first[0]), first[0] - start


async def latency(rate: float, seconds: float, bootstrap: str | None) -> np.ndarray:
    """Ticks offered at ``rate`` per second for ``seconds``; latencies in ms."""
    overrides = ["stream.publish_throttle_seconds=0"]
    if bootstrap is not None:
        prefix = f"lat{random.randrange(10**8)}"
        names = ("ticks", "vix", "options", "ranges", "dlq", "state")
        overrides += [
            "stream.mode=kafka", f"stream.kafka.bootstrap_servers={bootstrap}",
            f"stream.kafka.group_id={prefix}",
            *[f"stream.topics.{n}={prefix}.{n}" for n in names],
        ]  # fmt: skip
    cfg = config(*overrides)
    sent: dict[int, float] = {}
    got: dict[int, float] = {}

    def on_range(symbol: str, seq: int, message: bytes) -> None:
        ts = orjson.loads(message)["ts"]
        got.setdefault(ts, time.perf_counter())

    done = False
    bus = EmbeddedBus() if bootstrap is None else None
    svc = service(cfg, bus=bus, clock=WallClock(), input_complete=lambda: done, on_range=on_range)
    await svc.start()
    runner = asyncio.create_task(svc.run())
    producer: Any = None
    if bootstrap is not None:
        from connectors.kafka_transport import KafkaSink

        producer = KafkaSink(bootstrap, linger_ms=0)
        await producer.start()
    await asyncio.sleep(1.0)  # let the consumer join and settle
    n = int(rate * seconds)
    price = 2700.0
    start = time.perf_counter()
    base_ns = time.time_ns()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        price *= 1 + random.gauss(0, 1e-4)
        ts = base_ns + i * 1000
        payload = orjson.dumps({"symbol": "SPX", "ts": ts, "price": round(price, 2)})
        sent[ts] = time.perf_counter()
        if bus is not None:
            bus.append(cfg.stream.topics.ticks, b"SPX", payload)
        else:
            await producer.send(cfg.stream.topics.ticks, b"SPX", payload)
    if producer is not None:
        await producer.flush()
    deadline = time.perf_counter() + 30
    while len(got) < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    done = True
    await runner
    if producer is not None:
        await producer.stop()
    return np.array([(got[ts] - t0) * 1000 for ts, t0 in sent.items() if ts in got])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-kafka", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    records = feed(args.quick)
    seconds = 2.0 if args.quick else 5.0
    rows: list[tuple[str, str]] = []

    async def run_all(bootstrap: str | None) -> None:
        rate = await embedded_throughput(records, args.profile)
        rows.append((f"embedded, {len(records):,} events", f"{rate:,.0f} events/s"))
        if bootstrap is not None:
            rate, join = await kafka_throughput(bootstrap, records)
            rows.append(
                (
                    f"kafka end to end, {len(records):,} events",
                    f"{rate:,.0f} events/s  (after a group join of {join:.2f} s)",
                )
            )
        for where in [None] + ([bootstrap] if bootstrap else []):
            for offered in (1000, 5000):
                lat = await latency(offered, seconds, where)
                name = "embedded" if where is None else "kafka"
                rows.append(
                    (
                        f"latency {name} @ {offered:,} ticks/s ({len(lat):,} ticks)",
                        f"p50 {np.percentile(lat, 50):.2f} ms  p99 {np.percentile(lat, 99):.2f} "
                        f"ms  max {lat.max():.2f} ms",
                    )
                )

    if args.no_kafka:
        asyncio.run(run_all(None))
    else:
        from connectors.kafka_broker import LocalKafka

        with LocalKafka() as broker:
            asyncio.run(run_all(broker.bootstrap_servers))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
