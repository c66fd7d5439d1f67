"""``markov run``, ``markov replay`` and ``markov record`` (registered by :mod:`stream.cli`).

markov run                               the bundled feed through the embedded bus at
                                         full speed, WebSocket feed on localhost, a
                                         live summary, then a final report
markov run --config config/production.yaml   the Kafka service, until SIGINT/SIGTERM
markov replay FILE --to embedded|kafka [--speed max|1|N]
markov record --out FILE [--max-events N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from aiokafka.errors import KafkaError

from config import ConfigLoader
from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus
from connectors.kafka_transport import BrokerUnavailableError, KafkaSink
from stream.clock import EventClock, WallClock
from stream.feeds import BUNDLED_FEED
from stream.record import RecordStats, record_kafka
from stream.replay import (
    BusTarget,
    ReplayStats,
    SinkTarget,
    load_into_bus,
    parse_speed,
    replay,
)
from stream.service import StreamService, run_until_signal
from stream.symbol_state import EXCHANGE_TZ


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the streaming service")
    _common(run)
    run.add_argument("--feed", help="recorded feed for embedded mode (default: the bundled one)")
    run.add_argument(
        "--data", default=None, metavar="FILE",
        help="warm-up history from a CSV/Parquet file of daily OHLC (data.source=file)",
    )  # fmt: skip
    run.add_argument(
        "--history-end", default=None, type=_date, metavar="YYYY-MM-DD",
        help="last day of the warm-up history; the feed must start after it (default: the "
        "day before an embedded feed starts; on Kafka, the end of the data)",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)

    rep = sub.add_parser("replay", help="play a recorded feed into the pipeline or onto Kafka")
    _common(rep)
    rep.add_argument("file", help="recorded feed (JSON Lines, .gz optional)")
    rep.add_argument("--to", choices=("embedded", "kafka"), default="embedded")
    rep.add_argument("--speed", default="max", help="max (default), 1 = as recorded, N = N x")
    rep.set_defaults(handler=cmd_replay)

    rec = sub.add_parser("record", help="record the Kafka input topics to a feed file")
    _common(rec)
    rec.add_argument("--out", required=True, help="output file (.jsonl, or .jsonl.gz)")
    rec.add_argument("--max-events", type=int, default=None)
    rec.add_argument("--idle-seconds", type=float, default=5.0)
    rec.set_defaults(handler=cmd_record)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="YAML file, or a shipped config: default (the default), production"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    parser.add_argument("--quiet", action="store_true", help="no live summary")


def _config(args: argparse.Namespace) -> MarkovConfig:
    # aiokafka logs each failed connection attempt; the command says it once, in one line.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    config = ConfigLoader.load_arg(args.config) if args.config else ConfigLoader.default()
    overrides = list(args.set)
    if getattr(args, "data", None) is not None:
        overrides += ["data.source=file", f"data.path={args.data}"]
    return ConfigLoader.with_overrides(config, overrides) if overrides else config


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _user_error(message: str) -> Exception:
    from stream.cli import UserError

    return UserError(message)


# -- run ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.stream.mode == "kafka" and args.feed is None:
        service = StreamService(config, clock=WallClock(), history_end=args.history_end)
        asyncio.run(_serve(service, args.quiet))
        _report(service, sys.stdout)
        return 0
    feed = Path(args.feed or config.replay.feed or BUNDLED_FEED)
    return _embedded(config, feed, 0.0, args.quiet, args.history_end)


async def _serve(service: StreamService, quiet: bool) -> None:
    tasks = [asyncio.create_task(_say_where(service))]
    if not quiet:
        tasks.append(asyncio.create_task(_summary(service)))
    try:
        await run_until_signal(service)
    except BrokerUnavailableError:
        raise
    except OSError as exc:  # e.g. the WebSocket port is taken
        raise _user_error(f"cannot start: {exc}") from None
    finally:
        for task in tasks:
            task.cancel()


async def _say_where(service: StreamService) -> None:
    """One line with the WebSocket feed's address, as soon as it is bound (before the
    warm-up): the port is otherwise only in the config."""
    while service.websocket is None or not service.websocket.listening:
        if not service.websocket_enabled or service.engine is not None:
            return
        await asyncio.sleep(0.05)
    print(
        f"websocket feed on {service.websocket.url} "
        '(send {"type": "subscribe", "symbols": [...]})',
        file=sys.stderr, flush=True,
    )  # fmt: skip


def _embedded(
    config: MarkovConfig,
    feed: Path,
    speed: float,
    quiet: bool,
    history_end: dt.date | None = None,
) -> int:
    if not feed.exists():
        raise _user_error(f"feed file not found: {feed}")
    config = ConfigLoader.with_overrides(config, ["stream.mode=embedded"])
    if history_end is None:
        first = _first_ts(feed)
        history_end = dt.datetime.fromtimestamp(first / 1e9, EXCHANGE_TZ).date()
        history_end -= dt.timedelta(days=1)
    bus = EmbeddedBus()
    done = asyncio.Event()
    service = StreamService(
        config, bus=bus, clock=EventClock(), history_end=history_end,
        input_complete=done.is_set,
    )  # fmt: skip

    async def main() -> ReplayStats:
        if speed == 0:
            stats = load_into_bus(bus, feed, config)
            done.set()
            await _serve(service, quiet)
            return stats
        serving = asyncio.create_task(_serve(service, quiet))
        while service.engine is None and not serving.done():
            await asyncio.sleep(0.05)
        stats = ReplayStats()
        feeding = asyncio.create_task(
            replay(feed, BusTarget(bus), config, speed=speed, stats=stats)
        )
        await asyncio.wait({serving, feeding}, return_when=asyncio.FIRST_COMPLETED)
        if not feeding.done():
            # A signal stopped the service: the paced replay (which can sleep through an
            # overnight gap for minutes) must not go on feeding a stopped engine.
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
        else:
            feeding.result()  # its error, if any
        done.set()
        await serving
        return stats

    started = time.perf_counter()
    stats = asyncio.run(main())
    _report(service, sys.stdout, time.perf_counter() - started)
    if stats.malformed:
        # The engine never sees these lines (the replay dead-letters them), so its own
        # count above leaves them out: say so, or a truncated feed looks complete.
        print(
            f"feed       {stats.malformed} malformed or unreadable line(s) dead-lettered, "
            f"first {stats.first_error}",
            file=sys.stdout,
        )
    return 0


def _first_ts(feed: Path) -> int:
    from connectors.feed_file import FeedError, read_feed

    # The first readable event: a malformed line is dead-lettered by the replay, wherever
    # it is, so it must not refuse the feed when it happens to come first.
    for item in read_feed(feed, on_error="yield"):
        if not isinstance(item, FeedError):
            return item.ts
    raise _user_error(f"feed {feed} has no readable events")


async def _summary(service: StreamService, out: TextIO = sys.stderr) -> None:
    tty = out.isatty()
    while True:
        await asyncio.sleep(0.5 if tty else 5.0)
        engine = service.engine
        if engine is None:
            if service.warm_up_progress is not None:
                symbol, done, total = service.warm_up_progress
                line = f"warming up {symbol}: {done}/{total} bars"
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=out, flush=True)
            continue
        s = engine.stats
        ws = service.websocket
        line = (
            f"events {s.total_events:,}  ranges {s.ranges:,}  dead letters "
            f"{s.total_dead_letters:,}  bars {s.bars}  refits {s.refits_installed}"
            + (f"  ws clients {ws.client_count}" if ws is not None else "")
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=out, flush=True)


def _report(service: StreamService, out: TextIO, seconds: float | None = None) -> None:
    engine = service.engine
    if service.stopped_during_warm_up and service.warm_up_progress is not None:
        symbol, done, total = service.warm_up_progress
        print(file=sys.stderr)
        print(
            f"stopped during the warm-up ({symbol}: {done}/{total} bars, "
            f"{service.warm_up_seconds:.1f} s): no event was consumed",
            file=out,
        )
        return
    if engine is None:
        return
    s = engine.stats
    rate = f" in {seconds:.1f} s (start-up included)" if seconds else ""
    print(file=sys.stderr)
    print(f"events     {s.total_events:,}{rate}", file=out)
    for topic, n in sorted(s.events.items()):
        print(f"  {topic:<24} {n:,}", file=out)
    print(f"ranges     {s.ranges:,} (one per horizon per publication)", file=out)
    print(f"dead       {s.total_dead_letters:,} {dict(s.dead_letters) or ''}", file=out)
    print(
        f"bars       {s.bars}   refits {s.refits_installed} (failed {s.refit_failures})", file=out
    )
    models = s.bar_close_seconds - s.refit_wait_seconds
    rest = ""
    if seconds:
        other = seconds - service.warm_up_seconds - s.bar_close_seconds
        rest = f", the rest (feed, ticks, I/O) {other:.1f} s"
    print(
        f"time       warm-up {service.warm_up_seconds:.1f} s, bar closes (models) "
        f"{models:.1f} s, waiting for refits {s.refit_wait_seconds:.1f} s{rest}",
        file=out,
    )
    if s.filter_resets or s.filter_refusals:
        said = ", ".join(
            f"{sym} {s.filter_resets[sym]} resets, {s.filter_refusals[sym]} ticks refused"
            for sym in sorted(set(s.filter_resets) | set(s.filter_refusals))
        )
        print(f"filters    {said} (the log says when and why)", file=out)
    cov = engine.stats.coverage()
    if cov:
        conf = service.config.forecast.confidence
        parts = "  ".join(f"h={h}: {hit}/{n} = {hit / n:.0%}" for h, (hit, n) in cov.items())
        print(f"coverage   {parts}  (nominal {conf:.0%}; so far, few bars)", file=out)


# -- replay and record -------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise _user_error(str(exc)) from None
    feed = Path(args.file)
    if feed.is_dir():
        raise _user_error(f"{feed}: is a directory; give a feed file (.jsonl or .jsonl.gz)")
    if not feed.exists():
        raise _user_error(f"feed file not found: {feed}")
    if args.to == "embedded":
        return _embedded(config, feed, speed, args.quiet)

    async def to_kafka() -> None:
        sink = KafkaSink(config.stream.kafka.bootstrap_servers)
        await sink.start()
        stats = ReplayStats()
        feeding = asyncio.ensure_future(
            replay(feed, SinkTarget(sink), config, speed=speed, stats=stats)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a paced replay sleeps for minutes
            loop.add_signal_handler(sig, feeding.cancel)
        interrupted = False
        failed: KafkaError | None = None
        try:
            await feeding
        except asyncio.CancelledError:
            interrupted = True
        except KafkaError as exc:  # the broker went away mid-replay (it was a traceback)
            failed = exc
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            with contextlib.suppress(KafkaError) if failed else contextlib.nullcontext():
                await sink.stop()
        if failed is not None:
            why = str(failed)  # aiokafka's messages start with their class name, or not
            if not why.startswith(type(failed).__name__):
                why = f"{type(failed).__name__}: {why}"
            raise BrokerUnavailableError(
                f"Kafka at {config.stream.kafka.bootstrap_servers} stopped taking events at "
                f"the feed's event {stats.events:,} (the ones before it may not all be "
                f"stored): {why}"
            )
        print(
            f"replayed {stats.events:,} events ({stats.malformed} malformed lines "
            f"dead-lettered){' before it was interrupted' if interrupted else ''}"
        )

    asyncio.run(to_kafka())
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.max_events is not None and args.max_events < 1:
        raise _user_error(f"--max-events must be >= 1, got {args.max_events}")
    from stream.cli import check_output_path

    check_output_path("--out", Path(args.out))

    async def until_signal() -> RecordStats:
        # SIGTERM killed the process mid-write (a truncated gzip, events lost); both
        # signals now end the loop at the next poll, and the file is closed whole.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await record_kafka(
                config, args.out, max_events=args.max_events,
                idle_seconds=args.idle_seconds, stop=stop,
            )  # fmt: skip
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    stats = asyncio.run(until_signal())
    print(f"recorded {stats.written:,} events to {args.out} ({stats.skipped} unreadable skipped)")
    return 0
