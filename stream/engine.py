"""The streaming engine: input records in, ranges and dead letters out, at least once.

Tasks (one per concern, connected by bounded queues):

* ``consume`` — ``source.getmany`` → batches (with each partition's caught-up flag as of
  that fetch) → the process queue; a full queue pauses consumption (backpressure).
* ``process`` — parse and validate every record, merge the partitions in event-time order
  (:class:`~stream.alignment.EventTimeAligner`), apply each event: VIX → shared VIX
  state; option chain → its symbol's ensemble; tick → its symbol's bar and, unless
  throttled, one range per configured horizon (re-anchored at the tick's price) to the
  sink and the WebSocket feed. A closed bar updates the ensemble and drives refits.
  Bad input goes to the dead-letter topic with its reason; the stream goes on.
* ``commit`` — at every checkpoint (a batch boundary, every ``commit_interval`` seconds)
  waits until every output produced so far is acknowledged, writes each symbol's state
  (tagged with the input offsets it reflects) to the state topic, then commits exactly
  those offsets. A restart restores that state, skips inputs the state already
  reflects and reprocesses the rest, so a duplicate carries the same ``seq``.

Processing order is the aligner's (event time, then ticks / VIX / options, then offset),
so a fully present feed gives the same output on every run and transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from config.schema import MarkovConfig
from connectors.transport import EventSink, EventSource, InRecord, TopicPartition
from connectors.websocket_feed import WebSocketFeed
from models.base import Bar
from models.ensemble import ModelEnsemble
from models.tick_filters import SVParams, TickFilters
from stream.alignment import EventTimeAligner, input_order
from stream.clock import Clock
from stream.delivery import DeliveryTracker
from stream.messages import BadMessageError, Kind, OptionChain, Tick, VixUpdate, parse
from stream.model_journal import ModelJournal, RefitRecord, history_with, replay
from stream.ranges import RangeTemplate
from stream.refit import RefitScheduler
from stream.symbol_state import NS, ImplausibleTickError, OutOfOrderError, SymbolState

log = logging.getLogger(__name__)

DLQ_PAYLOAD_LIMIT = 10_240  # bytes of the original payload kept in a dead letter
# 2: the tick filters' state is part of it; 3: as one Rust snapshot; 4: the particle
# filter's snapshot counts degenerate steps, the symbol state keeps its suspect prices;
# 5: the model journal (chain states, refits), so a restore rebuilds the members exactly.
STATE_VERSION = 5
# Versions this build restores: a 4 has no journal (its bars are replayed alone, as then).
READABLE_STATE_VERSIONS = (4, 5)
_NO_JOURNAL: dict[str, Any] = {
    "chains": [],
    "refits": [],
    "refit_timer_ns": None,
    "refit_in_flight": None,
}
YIELD_EVERY = 64  # records processed between two yields to the event loop
_Item = tuple[InRecord, Any, int]  # (record, event or BadMessageError, its clock time)
# (input offsets, each symbol's state message, the acknowledgements they wait for)
_Checkpoint = tuple[dict[TopicPartition, int], list[bytes], list["asyncio.Future[None]"]]


class EngineFailedError(RuntimeError):
    """The engine stopped on a failure it cannot go on after (an output the broker did not
    acknowledge, a fetch that failed): nothing past the last commit was committed."""


@dataclass
class EngineStats:
    """Counters for the live summary, the final report and tests."""

    events: Counter[str] = field(default_factory=Counter)  # by topic
    ranges: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason kind
    skipped_restored: int = 0
    redelivered: int = 0  # records fetched again (after a rebalance) that were already taken
    bars: int = 0
    refits_started: int = 0
    refits_installed: int = 0
    refit_failures: int = 0
    commits: int = 0
    unpublishable: int = 0  # ticks whose ensemble had no usable range
    coverage_hits: Counter[int] = field(default_factory=Counter)  # by horizon
    coverage_total: Counter[int] = field(default_factory=Counter)
    bar_close_seconds: float = 0.0  # wall time updating and forecasting at bar closes
    # The tick filters' own refusals and divergence resets, by symbol (said, not hidden)
    filter_resets: Counter[str] = field(default_factory=Counter)
    filter_refusals: Counter[str] = field(default_factory=Counter)
    refit_wait_seconds: float = 0.0  # wall time waiting for a refit to install (replay)

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def total_dead_letters(self) -> int:
        return sum(self.dead_letters.values())

    def coverage(self) -> dict[int, tuple[int, int]]:
        return {h: (self.coverage_hits[h], n) for h, n in sorted(self.coverage_total.items())}


@dataclass
class SymbolRuntime:
    """One symbol: its state, its (fitted) ensemble and the history it was fitted on."""

    state: SymbolState
    ensemble: ModelEnsemble
    history: pd.DataFrame
    refit: RefitScheduler
    filters: TickFilters  # stepped by every tick
    templates: tuple[RangeTemplate, ...] | None = None
    uses_chains: bool = True
    key: bytes = b""  # the symbol as the Kafka key
    filter_counts: tuple[int, int] = (0, 0)  # the tick filters' (resets, rejected) so far
    last_tick: Tick | None = None  # the last accepted tick, to refuse its duplicate
    journal: ModelJournal = field(default_factory=ModelJournal)  # chains, refits: restores
    # (bar index, horizon, low, high) forecast at each bar close, to score coverage
    open_forecasts: list[tuple[int, int, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class EngineTopics:
    ticks: str
    vix: str
    options: str
    ranges: str
    dlq: str
    state: str

    @classmethod
    def from_config(cls, config: MarkovConfig) -> EngineTopics:
        t = config.stream.topics
        return cls(t.ticks, t.vix, t.options, t.ranges, t.dlq, t.state)

    @property
    def inputs(self) -> tuple[str, str, str]:
        # Tie order at equal event time: the recorded feeds' order (ticks, VIX, options).
        return (self.ticks, self.vix, self.options)


class Engine:
    """Runs the pipeline over ``source`` → ``sink`` until stopped (or idle, if asked)."""

    def __init__(
        self,
        config: MarkovConfig,
        source: EventSource,
        sink: EventSink,
        ensembles: Mapping[str, tuple[ModelEnsemble, pd.DataFrame]],
        *,
        clock: Clock,
        executor: Executor | None = None,
        websocket: WebSocketFeed | None = None,
        input_complete: Callable[[], bool] | None = None,
        commit_interval: float = 0.5,
        batch_size: int = 2000,
        on_range: Callable[[str, int, bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.topics = EngineTopics.from_config(config)
        self._kinds = {
            self.topics.ticks: Kind.TICK,
            self.topics.vix: Kind.VIX,
            self.topics.options: Kind.OPTIONS,
        }
        self.source, self.sink = source, sink
        self.clock = clock
        self.websocket = websocket
        self.input_complete = input_complete
        self.commit_interval = commit_interval
        self.batch_size = batch_size
        self.on_range = on_range
        self.stats = EngineStats()
        self.tracker = DeliveryTracker()
        sc = config.stream
        interval_ns = int(sc.refit_interval_seconds * NS)
        self.symbols: dict[str, SymbolRuntime] = {}
        for symbol, (ensemble, history) in ensembles.items():
            state = SymbolState(
                symbol, sc.bar_seconds, int(sc.publish_throttle_seconds * NS),
                history_end=history.index[-1] if len(history) else None,
                max_move=sc.max_tick_move,
            )  # fmt: skip
            self.symbols[symbol] = SymbolRuntime(
                state, ensemble, history, RefitScheduler(interval_ns, executor),
                _tick_filters(symbol, ensemble, history), key=symbol.encode(),
                uses_chains=any(hasattr(m, "update_chain") for m in ensemble.members.values()),
            )  # fmt: skip
        self.vix: float | None = None
        self.last_vix_ts = 0
        self._executor = executor
        self._skip: dict[TopicPartition, int] = {}
        self._next: dict[TopicPartition, int] = {}  # processed position (next offset)
        self._taken: dict[TopicPartition, int] = {}  # highest offset received, per partition
        self._last_ts: dict[TopicPartition, int] = {}
        self._aligner: EventTimeAligner[_Item] | None = None
        self._aligned: set[TopicPartition] = set()
        self._caught: dict[TopicPartition, bool] = {}
        self._batches: asyncio.Queue[tuple[list[InRecord], dict[TopicPartition, bool]]] = (
            asyncio.Queue(maxsize=8)
        )
        self._checkpoints: asyncio.Queue[_Checkpoint | None] = asyncio.Queue(maxsize=2)
        self._stop = asyncio.Event()
        self._aborted = False
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[Any] | None = None
        self._next_checkpoint = 0.0
        self.running = False
        self.error: BaseException | None = None
        self._failure: BaseException | None = None  # a consume or commit task's error

    # -- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`request_stop`, idle end of input, or a delivery failure.

        The source and sink must be started (the service owns their lifecycle). On a
        graceful stop the in-flight batches are processed, and the last checkpoint is
        acknowledged and committed before this returns.
        """
        self.running = True
        self._runner = asyncio.current_task()
        consume = asyncio.create_task(self._consume(), name="engine-consume")
        process = asyncio.create_task(self._process(), name="engine-process")
        commit = asyncio.create_task(self._commit(), name="engine-commit")
        self._tasks = [consume, process, commit]
        # A consume or commit task that fails must stop the run: unwatched, a failed
        # acknowledgement left processing blocked on a full checkpoint queue, for good.
        consume.add_done_callback(self._on_task_done)
        commit.add_done_callback(self._on_task_done)
        try:
            await process  # ends on stop or idle end of input; raises on a failure
            if self._aborted:  # the process task may end on the stop flag before its cancel
                raise asyncio.CancelledError("engine aborted")
            # Stop the consumer. asyncio.wait_for (3.11) can swallow a cancellation that
            # races with its timeout, so the loop also checks the stop flag, and the queue
            # is emptied so a pending put returns (those batches are uncommitted anyway).
            self._stop.set()
            consume.cancel()
            while not consume.done():
                while not self._batches.empty():
                    self._batches.get_nowait()
                await asyncio.sleep(0.01)
            with contextlib.suppress(asyncio.CancelledError):
                await consume
            await self._checkpoints.put(self._checkpoint())
            await self._checkpoints.put(None)
            await commit
        except BaseException as exc:
            self.error = self._failure or exc
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(BaseException):
                    await task
            if self._failure is not None:
                raise EngineFailedError(
                    f"stopped: {type(self._failure).__name__}: {self._failure}; nothing after "
                    "the last commit was committed, so a restart resumes from there"
                ) from self._failure
            raise
        finally:
            self.running = False
            for rt in self.symbols.values():
                rt.refit.cancel()

    def request_stop(self) -> None:
        """Graceful stop: finish the batches already fetched, checkpoint, commit."""
        self._stop.set()

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or self._failure is not None:
            return
        self._failure = task.exception()
        log.error("engine %s failed: %s", task.get_name().removeprefix("engine-"), self._failure)
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()

    def abort(self) -> None:
        """Abrupt stop (a crash, for tests): cancel everything, commit nothing more."""
        self._aborted = True
        # The stop flag too: aiokafka's getmany can swallow a cancellation (wait_for in
        # 3.11), and the consume loop then ends on the flag instead of fetching on.
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        # run() itself too: it may be past the process task, in the graceful tail, waiting
        # on the (now cancelled) commit task.
        runner = self._runner
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()

    # -- consume ----------------------------------------------------------------------

    async def _consume(self) -> None:
        caught: dict[TopicPartition, bool] = {}
        while not self._stop.is_set():
            # Once the input is complete and everything has been read, one more poll that
            # does not wait confirms the end (instead of a poll timeout at the end of every
            # replay).
            done = bool(caught) and all(caught.values()) and self._input_complete()
            records = await self.source.getmany(
                timeout_ms=0 if done else 100, max_records=self.batch_size
            )
            if self._stop.is_set():
                return
            caught = {tp: self.source.caught_up(tp) for tp in self.source.assignment()}
            await self._batches.put((records, caught))

    # -- process ----------------------------------------------------------------------

    async def _process(self) -> None:
        self._next_checkpoint = time.monotonic() + self.commit_interval
        while True:
            if self._stop.is_set() and self._batches.empty():
                return
            try:
                # A batch already waiting is taken at once; otherwise wait, bounded so the
                # stop flag is seen (asyncio.timeout, unlike wait_for, makes no extra task:
                # one loop iteration less per batch, which live latency pays).
                records, caught = self._batches.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(0.2):
                        records, caught = await self._batches.get()
                except TimeoutError:
                    continue
            self._caught = caught
            await self._process_batch(records)
            await self._after_batch()
            if not records and self._idle_end(caught):
                return

    def _input_complete(self) -> bool:
        return self.input_complete is not None and self.input_complete()

    def _idle_end(self, caught: Mapping[TopicPartition, bool]) -> bool:
        if not self._input_complete():
            return False
        aligner = self._aligner
        return bool(caught) and all(caught.values()) and (aligner is None or len(aligner) == 0)

    async def _process_batch(self, records: Sequence[InRecord]) -> None:
        aligner = self._aligner
        if aligner is None or self._aligned != set(self._caught) | {r.tp for r in records}:
            aligner = self._new_aligner()
        kinds, max_bytes = self._kinds, self.config.stream.max_message_bytes
        last_ts, skip, taken = self._last_ts, self._skip, self._taken
        # No event can come from the future, live or recorded (the wall clock, not the
        # engine's clock): one tick dated 2255 blocked its symbol for good, every later
        # tick being "older than the symbol's last", even across restarts.
        future = self.config.stream.max_future_seconds
        horizon = time.time_ns() + int(future * NS)
        for record in records:
            tp = record.tp
            top = taken.get(tp, -1)
            if record.offset <= top:
                # Fetched again: a rebalance that gave the partition back resumes from the
                # last commit. This engine already has the record (processed, or waiting
                # in the aligner), and its outputs are tracked under its first arrival.
                self.stats.redelivered += 1
                continue
            taken[tp] = record.offset
            if skip:
                skip_below = skip.get(tp)
                if skip_below is not None and record.offset < skip_below:
                    # Already reflected by the restored state (and its outputs acknowledged).
                    self._next[tp] = record.offset + 1
                    self.tracker.processed(tp, record.offset)
                    self.stats.skipped_restored += 1
                    continue
            item: Any
            try:
                item = parse(kinds[record.topic], record.value, max_bytes=max_bytes)
                ts = item.ts
                if ts > horizon:
                    raise BadMessageError(
                        f"ts {ts} is {(ts - horizon) / NS + future:.0f} s ahead of this "
                        f"machine's clock (allowed {future:g} s: stream.max_future_seconds)"
                    )
                aligner.push(tp, ts, record.offset, (record, item, ts))
            except BadMessageError as exc:
                # Queued at the partition's last time (keeps its order for commits); it
                # does not move the clock.
                ts = last_ts.get(tp, 0)
                aligner.push(tp, ts, record.offset, (record, exc, 0))
            last_ts[tp] = ts
        caught = self._caught
        released = aligner.release(lambda p: caught.get(p, False))
        advance, events, next_offset = self.clock.advance, self.stats.events, self._next
        for n, (tp, offset, (record, item, ts)) in enumerate(released, 1):
            if self._aborted:
                raise asyncio.CancelledError("engine aborted")
            if n % YIELD_EVERY == 0:
                # The embedded sink never suspends: yield so that WebSocket writers, the
                # commit task and timers run during a long batch.
                await asyncio.sleep(0)
                if time.monotonic() >= self._next_checkpoint:
                    # Between two records is a checkpoint too: the aligner can release a
                    # whole backlog at once (when its slowest partition catches up), and a
                    # service catching up went that long without a commit.
                    await self._put_checkpoint()
            advance(ts)
            events[record.topic] += 1
            if type(item) is Tick:  # the common case, without the dispatch below
                await self._on_tick(record, item)
            else:
                await self._apply(record, item)
            next_offset[tp] = offset + 1

    def _new_aligner(self) -> EventTimeAligner[_Item]:
        """(Re)build the aligner when the assignment changes, keeping buffered records."""
        old = self._aligner
        assigned = set(self._caught) | set(self.source.assignment())
        self._aligned = assigned
        order = input_order(assigned, self.topics.inputs)
        new: EventTimeAligner[_Item] = (
            EventTimeAligner(order) if old is None else old.with_partitions(order)
        )
        self._aligner = new
        return new

    def _filters_spoke(self, rt: SymbolRuntime, symbol: str, ts: int) -> None:
        """The tick filters reset or refused a tick: count it and log why (rare; the hot
        path only compares two counters)."""
        core = rt.filters.core
        resets, rejected = rt.filter_counts
        if core.resets > resets:
            self.stats.filter_resets[symbol] += core.resets - resets
            log.warning("%s: tick filters diverged at ts=%d and reset to their prior: %s",
                        symbol, ts, core.last_reset_reason)  # fmt: skip
        if core.rejected > rejected:
            self.stats.filter_refusals[symbol] += core.rejected - rejected
            log.warning("%s: tick filters refused the tick at ts=%d: %s", symbol, ts,
                        core.last_error)  # fmt: skip
        rt.filter_counts = (core.resets, core.rejected)

    async def _apply(self, record: InRecord, event: Any) -> None:
        """Everything but a valid tick (those go straight to :meth:`_on_tick`)."""
        if isinstance(event, BadMessageError):
            await self._dead_letter(record, event.reason)
        elif isinstance(event, VixUpdate):
            if event.ts <= self.last_vix_ts:
                # Equal: a duplicate (sent twice, every one moved the ranges a little).
                what = (
                    "a duplicate: the last has the same time"
                    if (event.ts == self.last_vix_ts)
                    else f"older than the last ({self.last_vix_ts})"
                )
                await self._dead_letter(record, f"VIX update at ts {event.ts} is {what}")
                return
            self.last_vix_ts = event.ts
            self.vix = event.value
            self.tracker.processed(record.tp, record.offset)
        else:
            await self._on_chain(record, event)

    async def _on_chain(self, record: InRecord, chain: OptionChain) -> None:
        rt = self.symbols.get(chain.symbol)
        if rt is None:
            await self._dead_letter(record, self._unknown(chain.symbol))
            return
        try:
            rt.state.check_chain(chain.ts)
        except OutOfOrderError as exc:
            await self._dead_letter(record, str(exc))
            return
        if rt.uses_chains:
            # Members without ``update_chain`` ignore chains: the forecast is unchanged.
            rt.journal.chain_applied()  # (a refused chain may still have reached another)
            try:
                rt.ensemble.update_chain(chain)
            except ValueError as exc:  # refused by a member, whose state is unchanged
                await self._dead_letter(record, str(exc))
                return
            rt.templates = None
        self.tracker.processed(record.tp, record.offset)

    async def _on_tick(self, record: InRecord, tick: Tick) -> None:
        rt = self.symbols.get(tick.symbol)
        if rt is None:
            await self._dead_letter(record, self._unknown(tick.symbol))
            return
        state = rt.state
        if tick == rt.last_tick:
            # Same time, price, size and quotes: the same event delivered twice.
            await self._dead_letter(record, f"tick for {tick.symbol} at ts {tick.ts} is a "
                                    "duplicate: the last tick is identical")  # fmt: skip
            return
        try:
            closed = state.on_tick(tick.ts, tick.price, self.vix)
        except (OutOfOrderError, ImplausibleTickError) as exc:
            await self._dead_letter(record, str(exc))
            return
        rt.last_tick = tick
        core = rt.filters.core
        tick_vol = _publishable_vol(core.update(tick.ts, tick.price))
        if (core.resets, core.rejected) != rt.filter_counts:
            self._filters_spoke(rt, tick.symbol, tick.ts)
        if closed is not None:
            await self._close_bar(rt, closed)
        if not state.should_publish(tick.ts):
            self.tracker.processed(record.tp, record.offset)
            return
        templates = rt.templates
        if templates is None:
            templates = rt.templates = self._templates(rt)
        if not templates:
            self.stats.unpublishable += 1
            self.tracker.processed(record.tp, record.offset)
            return
        ts, price, symbol = tick.ts, tick.price, tick.symbol
        state.last_publish_ts = ts
        key = rt.key
        acks = []
        ws, on_range, send, ranges_topic, vix = (
            self.websocket,
            self.on_range,
            self.sink.send,
            self.topics.ranges,
            self.vix,
        )
        for template in templates:
            seq = state.next_seq()
            message = template.encode(ts, seq, price, vix, tick_vol)
            acks.append(await send(ranges_topic, key, message))
            if ws is not None:
                ws.publish(symbol, seq, message, template.horizon)
            if on_range is not None:
                on_range(symbol, seq, message)
        self.stats.ranges += len(templates)
        self.tracker.processed(record.tp, record.offset, acks)

    def _templates(self, rt: SymbolRuntime) -> tuple[RangeTemplate, ...]:
        out = []
        for h in self.config.forecast.horizons:
            fc = rt.ensemble.forecast_detail(h)
            template = RangeTemplate.from_forecast(rt.state.symbol, fc)
            if not template.usable:
                # Once per bar (templates are cached until the next bar closes).
                log.warning("%s: no range published until the next bar: h=%d: %s",
                            rt.state.symbol, h, template.refusal)  # fmt: skip
                return ()
            out.append(template)
        return tuple(out)

    async def _close_bar(self, rt: SymbolRuntime, bar: Bar) -> None:
        """A bar closed: update the models, score coverage, install / start refits."""
        started = time.perf_counter()
        self.stats.bars += 1
        index = len(rt.state.bars) - 1
        self._score_coverage(rt, index, bar)
        rt.journal.bar_closing(index, rt.ensemble)
        rt.ensemble.update(bar)
        rt.templates = None
        refit = rt.refit
        if refit.in_flight and (self.clock.deterministic or refit.job_done):
            waiting = time.perf_counter()
            await self._install_refit(rt)
            self.stats.refit_wait_seconds += time.perf_counter() - waiting
        now = self.clock.now_ns()
        if refit.due(now):
            self._start_refit(rt, now)
        for template in self._templates_or_empty(rt):
            rt.open_forecasts.append((index, template.horizon, template.low, template.high))
        self.stats.bar_close_seconds += time.perf_counter() - started

    def _templates_or_empty(self, rt: SymbolRuntime) -> tuple[RangeTemplate, ...]:
        if rt.templates is None:
            rt.templates = self._templates(rt)
        return rt.templates

    def _score_coverage(self, rt: SymbolRuntime, index: int, bar: Bar) -> None:
        keep = []
        for origin, h, low, high in rt.open_forecasts:
            if origin + h == index:
                self.stats.coverage_total[h] += 1
                self.stats.coverage_hits[h] += int(low <= bar.close <= high)
            else:
                keep.append((origin, h, low, high))
        rt.open_forecasts = keep

    def _start_refit(self, rt: SymbolRuntime, now: int) -> None:
        members = rt.ensemble.slow_members()
        bars = rt.state.bars
        rt.refit.start(now, members, history_with(rt.history, bars), len(bars))
        if members:
            self.stats.refits_started += 1

    async def _install_refit(self, rt: SymbolRuntime) -> None:
        outcome = await rt.refit.outcome()
        if outcome.failures:
            self.stats.refit_failures += 1
            log.warning(
                "refit of %s kept the last good fit for: %s", rt.state.symbol, outcome.failures
            )
        if outcome.fitted:
            bars = rt.state.bars
            rt.ensemble.install_members(outcome.fitted, bars[outcome.start_bar :])
            rt.journal.refits.append(
                RefitRecord(outcome.start_bar, len(bars), tuple(outcome.fitted))
            )
            self.stats.refits_installed += 1
        rt.templates = None

    async def _after_batch(self) -> None:
        if not self.clock.deterministic:
            # Live: refits are timed by the wall clock and installed as soon as they finish.
            now = self.clock.now_ns()
            for rt in self.symbols.values():
                if rt.refit.job_done:
                    await self._install_refit(rt)
                if rt.refit.due(now):
                    self._start_refit(rt, now)
        if time.monotonic() >= self._next_checkpoint:
            await self._put_checkpoint()

    async def _put_checkpoint(self) -> None:
        self._next_checkpoint = time.monotonic() + self.commit_interval
        await self._checkpoints.put(self._checkpoint())

    def _unknown(self, symbol: str) -> str:
        return f"unknown symbol {symbol!r}; this service serves {', '.join(self.symbols)}"

    async def _dead_letter(self, record: InRecord, reason: str) -> None:
        raw = record.value
        letter = orjson.dumps(
            {
                "source": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": reason,
                "payload": raw[:DLQ_PAYLOAD_LIMIT].decode("utf-8", errors="replace"),
                "payload_bytes": len(raw),
            }
        )
        ack = await self.sink.send(self.topics.dlq, record.key, letter)
        self.tracker.processed(record.tp, record.offset, [ack])
        self.stats.dead_letters[_reason_kind(reason)] += 1

    # -- checkpoints and commits ------------------------------------------------------

    def _checkpoint(self) -> _Checkpoint:
        """The processed position, every symbol's state at it (a batch boundary), and the
        acknowledgements still outstanding for the outputs before it."""
        offsets = dict(self._next)
        tagged = {f"{tp.topic}/{tp.partition}": n for tp, n in sorted(offsets.items())}
        states = [
            orjson.dumps(
                {
                    "v": STATE_VERSION,
                    "symbol": symbol,
                    "offsets": tagged,
                    "vix": self.vix,
                    "last_vix_ts": self.last_vix_ts,
                    "state": rt.state.snapshot(),
                    "filters": rt.filters.snapshot(),
                    "journal": rt.journal.snapshot(len(rt.state.bars), rt.ensemble, rt.refit),
                }
            )
            for symbol, rt in self.symbols.items()
        ]
        return offsets, states, self.tracker.outstanding()

    async def _commit(self) -> None:
        committed: dict[TopicPartition, int] = {}
        while True:
            item = await self._checkpoints.get()
            if item is None:
                await self.sink.flush()
                return
            offsets, states, acks = item
            # Wait for the outputs before the checkpoint only: waiting for every output so
            # far, those produced since included, let a full-speed stream's checkpoint
            # trail its output by seconds (more to re-publish after a crash). ready()
            # raises if an output was not delivered: nothing is committed then.
            await asyncio.gather(*acks, return_exceptions=True)
            self.tracker.ready()
            changed = {tp: n for tp, n in offsets.items() if committed.get(tp) != n}
            if not changed:
                continue
            acks = [
                await self.sink.send(self.topics.state, sym.encode(), data)
                for sym, data in zip(self.symbols, states, strict=True)
            ]
            await asyncio.gather(*acks)
            done = await self.source.commit(changed)  # what this member still holds
            self.tracker.mark_committed(done)
            committed.update(done)
            self.stats.commits += 1

    async def restore(self, restore: Mapping[str, Mapping[str, Any]]) -> None:
        """Go on from the last checkpoint of each symbol: its state, its tick filters, and
        its models rebuilt from the bars and the journal (refits in it are fitted again,
        in the executor); the inputs it reflects are skipped when they come again."""
        skip: dict[TopicPartition, int] = {}
        for symbol, data in restore.items():
            rt = self.symbols.get(symbol)
            if rt is None:
                continue
            if data.get("v") not in READABLE_STATE_VERSIONS:
                # Another build's checkpoint: its snapshots may not read. The symbol starts
                # from its warm-up, but keeps counting seq from the checkpoint's (plain
                # JSON): restarted at 1, new ranges would look like repeats of old ones to
                # a reader that drops duplicates by seq.
                old = data.get("state")
                seq = old.get("seq") if isinstance(old, dict) else None
                if isinstance(seq, int) and seq > 0:
                    rt.state.seq = seq
                log.warning(
                    "%s: checkpoint of state version %s ignored (this build writes %s) "
                    "except its seq %s; bars since the warm-up are not restored",
                    symbol, data.get("v"), STATE_VERSION, seq,
                )  # fmt: skip
                continue
            rt.state.restore(dict(data["state"]))
            rt.filters = TickFilters.restore(dict(data["filters"]))
            rt.filter_counts = (rt.filters.core.resets, rt.filters.core.rejected)
            await self._rebuild_models(rt, data.get("journal", _NO_JOURNAL))
            if data["last_vix_ts"] >= self.last_vix_ts:
                self.vix, self.last_vix_ts = data["vix"], int(data["last_vix_ts"])
            for key, n in data["offsets"].items():
                topic, _, part = key.rpartition("/")
                tp = TopicPartition(topic, int(part))
                skip[tp] = min(skip.get(tp, n), n)
        self._skip = skip

    async def _rebuild_models(self, rt: SymbolRuntime, journal: dict[str, Any]) -> None:
        last = rt.history.index[-1]
        bars = rt.state.bars
        after = [bar for bar in bars if bar.ts > last]
        if len(after) < len(bars):
            # The warm-up history now reaches into the checkpoint's bars (more data than
            # at the last start): the journal's positions do not apply; the bars after
            # the history are replayed alone.
            log.warning(
                "%s: the warm-up history ends %s, after %d of the checkpoint's bars: the "
                "chain states and refits since are not replayed",
                rt.state.symbol, last.date(), len(bars) - len(after),
            )  # fmt: skip
            journal = _NO_JOURNAL
        rt.journal = await replay(rt.ensemble, rt.history, after, journal, rt.refit, self._executor)


def _tick_filters(symbol: str, ensemble: ModelEnsemble, history: pd.DataFrame) -> TickFilters:
    """The symbol's tick filters, on the ``ekpf`` member's fitted SV parameters when the
    ensemble has one (the same model on daily data), else on a prior from the history."""
    fitted = getattr(ensemble.members.get("ekpf"), "params", None) or {}
    if {"mu", "phi", "sigma"} <= set(fitted):
        params = SVParams(float(fitted["mu"]), float(fitted["phi"]), float(fitted["sigma"]))
    else:
        close = history["close"].to_numpy(float)
        params = SVParams.from_returns(100.0 * np.diff(np.log(close[-500:])))
    return TickFilters(params, seed=zlib.crc32(symbol.encode()))


def _reason_kind(reason: str) -> str:
    """A short label for the metrics (the dead letter keeps the full reason)."""
    if reason.startswith("malformed JSON") or reason.startswith("expected a JSON object"):
        return "malformed"
    if reason.startswith("empty message"):
        return "empty"
    if reason.startswith("missing field"):
        return "missing_field"
    if "exceeds the limit" in reason:
        return "oversized"
    if reason.startswith("crossed quote"):
        return "crossed_quote"
    if "is a duplicate" in reason:
        return "duplicate"
    if "warm-up history" in reason:
        return "before_history"
    if "older than" in reason:
        return "out_of_order"
    if reason.startswith("unknown symbol"):
        return "unknown_symbol"
    if "stream.max_tick_move" in reason:
        return "implausible_price"
    if "stream.max_future_seconds" in reason:
        return "future_ts"
    return "invalid_field"


def _publishable_vol(vol: tuple[float, float] | None) -> tuple[float, float] | None:
    """The tick filters' volatility as the schema takes it: both finite and > 0, else null
    (an exp that under- or overflowed in a filter about to be reset; resets are reported)."""
    if vol is None or not all(math.isfinite(v) and v > 0 for v in vol):
        return None
    return vol
