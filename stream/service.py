"""The streaming service: configuration → transport, warm models, WebSocket feed, engine.

Start-up, in order: connect the sink then the source (an unreachable broker fails here,
before any slow work, with :class:`~connectors.kafka_transport.BrokerUnavailableError`);
load each ticker's history and fit its ensemble (the warm-up); read the last checkpoint
of every symbol from the state topic; start the WebSocket feed; run the engine.
Shutdown (SIGINT / SIGTERM or :meth:`StreamService.request_stop`), in order: stop
consuming, finish the batches already fetched, flush the producer and commit the last
checkpoint (the engine does these), stop the WebSocket feed, the source, the sink, and
shut the refit executor down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import logging
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import orjson
import pandas as pd

from config.schema import MarkovConfig
from connectors.data_sources import load_history
from connectors.embedded_bus import EmbeddedBus
from connectors.kafka_transport import BrokerUnavailableError, KafkaSink, KafkaSource
from connectors.transport import EventSink, EventSource
from connectors.websocket_feed import WebSocketFeed
from models.base import ForecastModel
from models.baselines import EwmaNormal, VixImpliedNormal
from models.ensemble import ModelEnsemble
from stream.clock import Clock, WallClock
from stream.engine import Engine, EngineTopics
from stream.heap import enter_hot_path, leave_hot_path
from stream.refit import ExecutorKind, make_executor
from stream.refit import ready as refit_ready

log = logging.getLogger(__name__)

EnsembleFactory = Callable[[MarkovConfig, str], ModelEnsemble]


def configured_ensemble(config: MarkovConfig, symbol: str) -> ModelEnsemble:
    """The members the config enables, built by ``models.registry.build_member``.

    Until the registry exists the service falls back to the two normal baselines (VIX
    implied and EWMA), and says so in the log.
    """
    if importlib.util.find_spec("models.registry") is None:
        log.warning("models.registry is not available: using the VIX-implied and EWMA baselines")
        return baseline_ensemble(config, symbol)
    return ModelEnsemble(config)


def baseline_ensemble(config: MarkovConfig, symbol: str) -> ModelEnsemble:
    """Pure-Python members with no fitted parameters (tests, fallbacks)."""
    members: dict[str, ForecastModel] = {
        "vix_normal": VixImpliedNormal(),
        "ewma_normal": EwmaNormal(),
    }
    return ModelEnsemble(
        config, members, base_weights={"vix_normal": 1.0, "ewma_normal": 1.0}, burn_in=100
    )


class WarmUpInterruptedError(Exception):
    """A stop was requested while the ensembles warmed up (raised in the warm-up thread)."""


class StreamService:
    """One instance of the streaming service, embedded or on Kafka (``config.stream.mode``)."""

    def __init__(
        self,
        config: MarkovConfig,
        *,
        bus: EmbeddedBus | None = None,
        clock: Clock | None = None,
        ensemble_factory: EnsembleFactory = configured_ensemble,
        history_end: dt.date | str | None = None,
        days_back: int | None = None,
        executor: ExecutorKind | Executor | None = "process",
        input_complete: Callable[[], bool] | None = None,
        websocket: bool | None = None,
        commit_interval: float = 0.5,
        batch_size: int = 2000,
        on_range: Callable[[str, int, bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.mode = config.stream.mode
        self.warm_up_seconds = 0.0  # fitting the ensembles on history at start
        if self.mode == "embedded" and bus is None:
            bus = EmbeddedBus()
        self.bus = bus
        self.clock = clock if clock is not None else WallClock()
        self.ensemble_factory = ensemble_factory
        self.history_end = history_end
        self.days_back = days_back if days_back is not None else config.data.default_days_back
        self._executor_spec = executor
        self.executor: Executor | None = None
        self._own_executor = False
        self.input_complete = input_complete
        self.websocket_enabled = config.websocket.enabled if websocket is None else websocket
        self.commit_interval = commit_interval
        self.batch_size = batch_size
        self.on_range = on_range
        self.topics = EngineTopics.from_config(config)
        self.source: EventSource | None = None
        self.sink: EventSink | None = None
        self.websocket: WebSocketFeed | None = None
        self.engine: Engine | None = None
        self._started: list[Any] = []
        self._stop_requested = False
        self._hot = False  # the GC settings of stream.heap are in force
        # (symbol, bars done, bars in all) while an ensemble warms up, for progress lines
        self.warm_up_progress: tuple[str, int, int] | None = None
        self.stopped_during_warm_up = False  # a signal came first: nothing was consumed

    # -- start-up ---------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._close()
            raise

    async def _start(self) -> None:
        cfg = self.config.stream
        restore: dict[str, dict[str, Any]]
        if self.mode == "kafka":
            bootstrap = cfg.kafka.bootstrap_servers
            sink = KafkaSink(
                bootstrap, client_id=cfg.kafka.client_id, linger_ms=cfg.kafka.linger_ms
            )
            await sink.start()
            self.sink = sink
            self._started.append(sink)
            await ensure_topics(bootstrap, self.topics)
            restore = await read_state_kafka(bootstrap, self.topics.state)
            if not restore:
                await _refuse_offsets_without_state(bootstrap, cfg.kafka.group_id, self.topics)
            source: EventSource = KafkaSource(
                bootstrap, self.topics.inputs, cfg.kafka.group_id,
                max_message_bytes=cfg.max_message_bytes, client_id=cfg.kafka.client_id,
                fetch_max_wait_ms=cfg.kafka.fetch_max_wait_ms,
            )  # fmt: skip
        else:
            assert self.bus is not None
            self.sink = self.bus.sink()
            restore = latest_states(value for _, value in self.bus.topic(self.topics.state))
            source = self.bus.source(self.topics.inputs, cfg.kafka.group_id)
        await source.start()
        self.source = source
        self._started.append(source)

        # Bind the WebSocket port before the warm-up: a port in use is one line at once,
        # not after twenty seconds of fitting.
        if self.websocket_enabled:
            ws = self.config.websocket
            self.websocket = WebSocketFeed(
                ws.host, ws.port, queue_size=ws.client_queue_size,
                heartbeat_seconds=ws.heartbeat_seconds, symbols=cfg.tickers,
            )  # fmt: skip
            await self.websocket.start()
            self._started.append(self.websocket)

        loop = asyncio.get_running_loop()
        if isinstance(self._executor_spec, str):
            self.executor = make_executor(self._executor_spec)
            self._own_executor = True
        else:
            self.executor = self._executor_spec
        # The refit worker boots while the ensembles warm up.
        booting = None
        if self.executor is not None:
            booting = loop.run_in_executor(self.executor, refit_ready)

        # The warm-up runs in a thread: the loop stays free for the consumer's heartbeats
        # and for a signal, which stops it at the next bar instead of after the whole fit.
        warm_up = time.perf_counter()
        ensembles = {}
        try:
            for symbol in cfg.tickers:
                ensembles[symbol] = await asyncio.to_thread(self._warm_up, symbol)
        except WarmUpInterruptedError:
            self.stopped_during_warm_up = True
        finally:
            self.warm_up_seconds = time.perf_counter() - warm_up
            if booting is not None:
                await asyncio.wait({booting})
        if self.stopped_during_warm_up:
            await self._close()
            return
        if booting is not None:
            booting.result()  # a worker that cannot start is an error here, not at a refit

        self.engine = Engine(
            self.config, self.source, self.sink, ensembles,
            clock=self.clock, executor=self.executor, websocket=self.websocket,
            input_complete=self.input_complete,
            commit_interval=self.commit_interval, batch_size=self.batch_size,
            on_range=self.on_range,
        )  # fmt: skip
        if restore:
            await self.engine.restore(restore)
        if self._stop_requested:
            self.engine.request_stop()
        enter_hot_path()
        self._hot = True

    def _warm_up(self, symbol: str) -> tuple[ModelEnsemble, pd.DataFrame]:
        data = self.config.data
        history = load_history(
            symbol, self.days_back, source=data.source, path=data.path, end=self.history_end
        )
        ensemble = self.ensemble_factory(self.config, symbol)
        self.warm_up_progress = (symbol, 0, ensemble.burn_in)

        def progress(done: int, total: int) -> None:
            self.warm_up_progress = (symbol, done, total)
            if self._stop_requested:
                raise WarmUpInterruptedError(symbol)

        if self._stop_requested:
            raise WarmUpInterruptedError(symbol)
        ensemble.fit(history, progress=progress)
        return ensemble, history

    # -- running and stopping ---------------------------------------------------------

    async def run(self) -> None:
        """Run the engine until stopped or (with ``input_complete``) idle; then close."""
        if self.stopped_during_warm_up:
            return  # start() already closed everything
        if self.engine is None:
            raise RuntimeError("start() the service first")
        try:
            await self.engine.run()
        finally:
            await self._close()

    def request_stop(self) -> None:
        self._stop_requested = True
        if self.engine is not None:
            self.engine.request_stop()

    def abort(self) -> None:
        """Stop abruptly, as a crash would: nothing more is committed (tests)."""
        if self.engine is not None:
            self.engine.abort()

    async def _close(self) -> None:
        if self._hot:
            self._hot = False
            leave_hot_path()
        for part in reversed(self._started):
            with contextlib.suppress(Exception):
                await part.stop()
        self._started.clear()
        if self.executor is not None and self._own_executor:
            # Waiting for a refit still running must not block the event loop.
            executor, self.executor = self.executor, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )


async def run_until_signal(service: StreamService) -> None:
    """Start ``service`` and run it; SIGINT / SIGTERM stop it gracefully."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.request_stop)
    try:
        await service.start()
        await service.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# -- the state topic --------------------------------------------------------------------


def latest_states(values: Any) -> dict[str, dict[str, Any]]:
    """The last checkpoint of each symbol among state-topic values (oldest first)."""
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        if value is None:
            continue
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("ignoring an unreadable record in the state topic")
            continue
        if isinstance(data, dict) and isinstance(data.get("symbol"), str):
            out[data["symbol"]] = data
    return out


async def read_state_kafka(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """Read the (compacted) state topic from the beginning to its current end."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError
    from aiokafka.structs import TopicPartition as KafkaTP

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        await consumer.stop()
        raise BrokerUnavailableError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    try:
        tps = [KafkaTP(topic, p) for p in await _partitions(bootstrap, topic)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes | None] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*tps, timeout_ms=500)
            for records in batches.values():
                values.extend(r.value for r in records)
        return latest_states(values)
    finally:
        await _stop_quietly(consumer)


class StateMissingError(RuntimeError):
    """The consumer group has committed input offsets but the state topic has no
    checkpoint: started anyway, seq would begin again at 1 after ranges already out."""


async def _refuse_offsets_without_state(bootstrap: str, group: str, topics: EngineTopics) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import GroupCoordinatorNotAvailableError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        # A young cluster creates its offsets topic on the first coordinator lookup, and
        # answers "not available" meanwhile (a second or two).
        for attempt in range(20):
            try:
                offsets = await admin.list_consumer_group_offsets(group)
                break
            except GroupCoordinatorNotAvailableError:
                if attempt == 19:
                    log.warning("could not read the offsets of consumer group %r: the "
                                "check for a lost state topic is skipped", group)  # fmt: skip
                    return
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    committed = sorted(f"{tp.topic}/{tp.partition}" for tp in offsets if tp.topic in topics.inputs)
    if committed:
        raise StateMissingError(
            f"consumer group {group!r} has committed offsets ({', '.join(committed)}) but the "
            f"state topic {topics.state!r} holds no checkpoint: seq would start again at 1 "
            "and the bars since the warm-up would be lost. Point stream.topics.state at the "
            "topic the service used, or start afresh under a new stream.kafka.group_id"
        )


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (none if it does not exist), asked of the broker:
    a consumer's cached metadata may not know a topic created a moment ago."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t.get("error_code") == 0 for p in t["partitions"]
    )


async def _stop_quietly(consumer: Any) -> None:
    """``AIOKafkaConsumer.stop`` of a consumer without a group can re-raise the
    cancellation of its own internal task; only a cancellation of ours may propagate."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def ensure_topics(bootstrap: str, topics: EngineTopics) -> None:
    """Create the service's topics that do not exist yet (the state topic compacted)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = max(1, min(3, brokers))
        wanted: Mapping[str, dict[str, str]] = {
            **{t: {} for t in (*topics.inputs, topics.ranges, topics.dlq)},
            topics.state: {"cleanup.policy": "compact"},
        }
        new = [
            NewTopic(name, num_partitions=1, replication_factor=replication, topic_configs=conf)
            for name, conf in wanted.items()
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
    except Exception as exc:
        raise BrokerUnavailableError(
            f"cannot prepare topics on Kafka at {bootstrap}: {exc}"
        ) from None
    finally:
        await admin.close()
