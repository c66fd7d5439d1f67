"""Command line: `python -m connectors.kafka_broker {fetch,start}`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from connectors.kafka_broker.broker import BrokerStartError, LocalKafka
from connectors.kafka_broker.jars import KAFKA_VERSION, fetch_jars, kafka_home, libs_size_bytes


def _fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    libs = fetch_jars(quiet=not args.verbose)
    jars = sorted(libs.glob("*.jar"))
    print(
        f"Kafka {KAFKA_VERSION}: {len(jars)} jars, {libs_size_bytes(libs) / 1e6:.1f} MB "
        f"in {libs} ({time.monotonic() - started:.1f} s)"
    )
    return 0


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start(args: argparse.Namespace) -> int:
    broker = LocalKafka(
        port=args.port,
        controller_port=args.controller_port,
        heap=args.heap,
        startup_timeout=args.timeout,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    try:
        broker.start()
    except (BrokerStartError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f} s; "
        f"bootstrap servers: {broker.bootstrap_servers}\n"
        f"(work dir {broker.work_dir}, removed on exit; Ctrl-C stops the broker)",
        flush=True,
    )
    try:
        while broker.is_running:
            time.sleep(0.5)
        print(f"error: the broker exited by itself:\n{broker.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping the broker...", flush=True)
        return 0
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.kafka_broker",
        description=f"A local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft, no Docker).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser(
        "fetch", help=f"download the broker's jars with Maven into {kafka_home()}/libs (once)"
    )
    fetch.add_argument("-v", "--verbose", action="store_true", help="show Maven's output")
    fetch.set_defaults(run=_fetch)
    start = sub.add_parser("start", help="run a broker on 127.0.0.1 in the foreground")
    start.add_argument("--port", type=int, help="client port (default: a free one)")
    start.add_argument("--controller-port", type=int, help="KRaft controller port (default: free)")
    start.add_argument("--heap", default="1G", help="JVM heap, -Xms and -Xmx (default: 1G)")
    start.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for readiness (default: 60)"
    )
    start.set_defaults(run=_start)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
