"""Shared pieces of the stream tests: small feeds, configs, test members, a service runner.

(No tests here; the file name lets pytest import it from the other stream tests, and the
refit tests' process pool import the members below by module name.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from aiokafka import AIOKafkaConsumer

from config import ConfigLoader
from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus
from connectors.feed_file import FeedRecord, FeedWriter, read_feed
from connectors.kafka_broker import LocalKafka
from models.base import FitResult, ForecastModel
from models.baselines import EwmaNormal, VixImpliedNormal
from models.delta_ukf import DeltaUKF
from models.ensemble import ModelEnsemble
from models.jump_diffusion_vix import JumpDiffusionVIX
from stream.clock import Clock, EventClock
from stream.feeds import BUNDLED_FEED
from stream.messages import parse_ts
from stream.replay import load_into_bus
from stream.service import StreamService, baseline_ensemble

HISTORY_END = "2017-12-29"  # the last session before the bundled feed starts
HISTORY_DAYS = 300
_FEED_CACHE: dict[int, list[FeedRecord]] = {}


def feed_days(days: int) -> list[FeedRecord]:
    """The bundled feed's first ``days`` sessions (about 430 events a day)."""
    if days not in _FEED_CACHE:
        out: list[FeedRecord] = []
        dates: set[str] = set()
        for record in read_feed(BUNDLED_FEED):
            day = pd.Timestamp(record.ts, unit="ns", tz="UTC").tz_convert("America/New_York")
            dates.add(day.date().isoformat())
            if len(dates) > days:
                break
            out.append(record)
        _FEED_CACHE[days] = out
    return _FEED_CACHE[days]


def write_feed(path: Path, records: Sequence[FeedRecord]) -> Path:
    with FeedWriter(path) as out:
        for r in records:
            out.write(r.topic, r.key, r.ts, r.payload)
    return path


def make_config(*overrides: str) -> MarkovConfig:
    base = [
        "data.source=bundled",
        "stream.publish_throttle_seconds=1",
        "websocket.port=0",
    ]
    return ConfigLoader.with_overrides(ConfigLoader.default(), [*base, *overrides])


def topic_overrides(prefix: str) -> list[str]:
    """Unique topic names and group id for one test (the Kafka tests share a broker)."""
    names = ("ticks", "vix", "options", "ranges", "dlq", "state")
    return [f"stream.topics.{n}={prefix}.{n}" for n in names] + [
        f"stream.kafka.group_id={prefix}.group"
    ]


# The service's own pure-Python ensemble (two normal baselines): quick to fit and step.
baselines = baseline_ensemble


class SlowArima(EwmaNormal):
    """An EWMA member under a slow member's name: after the warm-up's two fits, every
    fit burns ``seconds`` of CPU (a stand-in for an expensive ARIMA refit)."""

    def __init__(self, seconds: float = 1.0, fail: bool = False) -> None:
        super().__init__(name="arima")
        self.seconds = seconds
        self.fail = fail
        self.fits = 0

    def fit(self, history: pd.DataFrame) -> FitResult:
        self.fits += 1
        if self.fits > 2:
            if self.fail:
                raise RuntimeError("optimiser diverged (test)")
            end = time.perf_counter() + self.seconds
            while time.perf_counter() < end:
                pass
        return super().fit(history)


def with_slow_member(seconds: float = 1.0, fail: bool = False) -> Callable[..., ModelEnsemble]:
    def factory(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        members: dict[str, ForecastModel] = {
            "vix_normal": VixImpliedNormal(),
            "arima": SlowArima(seconds, fail),
        }
        return ModelEnsemble(
            config, members, base_weights={"vix_normal": 1.0, "arima": 1.0}, burn_in=100
        )

    return factory


def chains_and_refits(config: MarkovConfig, symbol: str) -> ModelEnsemble:
    """A member that reads chains, one that follows them through the skew and the
    consensus (and reuses its simulation while they move little), a slow member refitted
    on the timer, a baseline."""
    members: dict[str, ForecastModel] = {
        "vix_normal": VixImpliedNormal(),
        "delta_ukf": DeltaUKF(),
        "jump_diffusion_vix": JumpDiffusionVIX(n_paths=2000),
        "arima": SlowArima(0.0),
    }
    weights = {"vix_normal": 1.0, "delta_ukf": 1.0, "jump_diffusion_vix": 1.0, "arima": 1.0}
    return ModelEnsemble(config, members, base_weights=weights, burn_in=100)


def encoded(config: MarkovConfig, records: Sequence[FeedRecord]) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of each record as the replayer sends it."""
    t = config.stream.topics
    mapping = {"markov.ticks": t.ticks, "markov.vix": t.vix, "markov.options": t.options}
    return [(mapping[r.topic], (r.key or "").encode(), orjson.dumps(r.payload)) for r in records]


def embedded_service(
    config: MarkovConfig,
    bus: EmbeddedBus,
    *,
    clock: Clock | None = None,
    factory: Callable[..., ModelEnsemble] = baselines,
    **kwargs: Any,
) -> StreamService:
    kwargs.setdefault("executor", "thread")
    kwargs.setdefault("websocket", False)
    kwargs.setdefault("input_complete", lambda: True)
    return StreamService(
        config, bus=bus, clock=clock or EventClock(), ensemble_factory=factory,
        history_end=HISTORY_END, days_back=HISTORY_DAYS, **kwargs,
    )  # fmt: skip


def bus_with(stream: Iterable[tuple[str, bytes | None, bytes]]) -> EmbeddedBus:
    """An in-process bus holding ``(topic, key, value)`` records, in order."""
    bus = EmbeddedBus()
    for topic, key, value in stream:
        bus.append(topic, key, value)
    return bus


async def run_embedded(
    config: MarkovConfig, records: Sequence[FeedRecord], **kwargs: Any
) -> tuple[EmbeddedBus, StreamService]:
    bus = bus_with(encoded(config, records))
    service = embedded_service(config, bus, **kwargs)
    await service.start()
    await asyncio.wait_for(service.run(), 120)
    return bus, service


def bundled_into(bus: EmbeddedBus, config: MarkovConfig) -> None:
    load_into_bus(bus, BUNDLED_FEED, config)


def expected_publications(records: Sequence[FeedRecord], throttle_s: float) -> list[int]:
    """Event times of the ticks that publish, by the throttle rule (reference version)."""
    out: list[int] = []
    last: int | None = None
    for r in records:
        if r.topic != "markov.ticks":
            continue
        ts = parse_ts(r.payload["ts"])
        if last is None or ts - last >= throttle_s * 1e9:
            out.append(ts)
            last = ts
    return out


async def read_topic(broker: LocalKafka, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of ``topic`` (one partition) from the beginning to its end."""
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes | None, bytes]] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()
