"""``markov run`` / ``replay`` / ``record`` through their handlers."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.errors import KafkaTimeoutError
from test_stream_support import (
    expected_publications,
    feed_days,
    read_topic,
    topic_overrides,
    write_feed,
)

from connectors.data_sources import DataSourceError, load_history
from connectors.feed_file import read_feed
from connectors.kafka_broker import LocalKafka
from connectors.kafka_transport import BrokerUnavailableError
from stream import cli_stream
from stream.cli import UserError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="markov")
    cli_stream.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def call(argv: list[str]) -> int:
    args = parse(argv)
    return int(args.handler(args))


FAST = ["--quiet", "--set", "websocket.port=0", "--set", "data.default_days_back=300"]


def test_run_embedded_feed_prints_a_final_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = write_feed(tmp_path / "three.jsonl.gz", feed_days(3))
    assert call(["run", "--feed", str(feed), *FAST]) == 0
    out = capsys.readouterr().out
    events = len(feed_days(3))
    assert f"events     {events:,}" in out
    assert "ranges" in out and "dead       0" in out and "coverage" in out


def test_run_says_where_its_websocket_feed_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The address was only in the config; now one line as soon as the port is bound.
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    assert call(["run", "--feed", str(feed), *FAST]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^websocket feed on ws://127\.0\.0\.1:\d+ \(send ", err, re.M), err


def test_run_history_end_sets_where_the_warm_up_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A warm-up that ends after the feed starts: every tick is before it, said as such
    # (the report called them "out_of_order"), and the hint names the option.
    records = feed_days(1)
    feed = write_feed(tmp_path / "one.jsonl", records)
    ticks = sum(r.topic == "markov.ticks" for r in records)
    assert call(["run", "--feed", str(feed), "--history-end", "2018-12-31", *FAST]) == 0
    out = capsys.readouterr().out
    assert f"dead       {ticks:,} {{'before_history': {ticks}}}" in out
    # The default for an embedded feed: the day before it starts.
    assert call(["run", "--feed", str(feed), *FAST]) == 0
    assert "dead       0" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse(["run", "--history-end", "2018-13-01"])


def test_run_warms_up_on_a_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `run` had no --data: on Kafka the production config's tickers had no history offline.
    history = load_history("SPX", 400, end="2017-12-29")
    data = tmp_path / "spx.csv"
    history.to_csv(data)
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    assert call(["run", "--feed", str(feed), "--data", str(data), *FAST]) == 0
    out = capsys.readouterr().out
    assert "dead       0" in out and "ranges     0" not in out
    with pytest.raises(DataSourceError, match="file not found"):
        call(["run", "--feed", str(feed), "--data", str(tmp_path / "missing.csv"), *FAST])


def test_paced_replay_gives_the_same_report_as_full_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    assert call(["replay", str(feed), "--to", "embedded", "--speed", "max", *FAST]) == 0
    full = capsys.readouterr().out
    assert call(["replay", str(feed), "--to", "embedded", "--speed", "20000", *FAST]) == 0
    paced = capsys.readouterr().out

    def counts(report: str) -> list[str]:
        return [s for s in report.splitlines() if not s.startswith(("events", "time"))]

    assert counts(full) == counts(paced)


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1)[:10])
    with pytest.raises(UserError, match="--speed must be 'max' or a number > 0, got 'fast'"):
        call(["replay", str(feed), "--speed", "fast"])
    with pytest.raises(UserError, match="feed file not found"):
        call(["replay", str(tmp_path / "missing.jsonl")])
    with pytest.raises(SystemExit):
        parse(["replay", str(feed), "--to", "nowhere"])
    with pytest.raises(UserError, match="is a directory; give a feed file"):
        call(["replay", str(tmp_path)])  # IsADirectoryError traceback before
    # Checked before connecting to a broker (there is none here): tracebacks before.
    with pytest.raises(UserError, match=r"--out .*: is a directory; give a file name"):
        call(["record", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="no such directory"):
        call(["record", "--out", str(tmp_path / "missing" / "x.jsonl")])


def test_a_bad_first_line_is_dead_lettered_like_any_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It refused the whole feed ("line 1: invalid JSON") while line 101 was dead-lettered.
    good = write_feed(tmp_path / "good.jsonl", feed_days(1)[:200])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{not json\n" + good.read_bytes())
    assert call(["replay", str(bad), "--to", "embedded", "--speed", "max", *FAST]) == 0
    # The replay dead-letters it before the engine: the report says so (it said nothing).
    out = capsys.readouterr().out
    assert "feed       1 malformed or unreadable line(s) dead-lettered, first line 1:" in out


def test_unreachable_broker_is_one_error() -> None:
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:1"):
        call(["run", "--quiet", "--set", "stream.mode=kafka",
              "--set", "stream.kafka.bootstrap_servers=127.0.0.1:1"])  # fmt: skip


def _kafka_sets(kafka_broker: LocalKafka, prefix: str) -> list[str]:
    """--set options that point the CLI at the test broker and this test's topics."""
    items = [f"stream.kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
             *topic_overrides(prefix)]  # fmt: skip
    return [arg for item in items for arg in ("--set", item)]


def _fresh_topics(kafka_broker: LocalKafka, letter: str) -> tuple[str, list[str]]:
    """This test's own topic prefix, its input topics created, and the --set options of
    :func:`_kafka_sets` for it."""
    prefix = f"{letter}{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([f"{prefix}.ticks", f"{prefix}.vix", f"{prefix}.options"])
    return prefix, _kafka_sets(kafka_broker, prefix)


@pytest.mark.kafka
def test_replay_to_kafka_then_record_round_trips(
    kafka_broker: LocalKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = feed_days(1)
    feed = write_feed(tmp_path / "in.jsonl.gz", records)
    _, sets = _fresh_topics(kafka_broker, "r")
    assert call(["replay", str(feed), "--to", "kafka", *sets]) == 0
    assert f"replayed {len(records):,} events" in capsys.readouterr().out
    out = tmp_path / "recorded.jsonl"
    assert call(["record", "--out", str(out), "--idle-seconds", "2", *sets]) == 0
    got = list(read_feed(out))
    # The same events in the same event-time order as the feed: the recorder merges the
    # topics as the engine does (it wrote them fetch batch by fetch batch, topic by topic).
    assert [(r.topic, r.key, r.ts, r.payload) for r in got] == [
        (r.topic, r.key, r.ts, r.payload) for r in records
    ]


@pytest.mark.kafka
def test_run_on_kafka_by_the_readme_with_the_production_config_and_a_history_end(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    # The README's Kafka walk-through: a recording replayed onto the topics, then the
    # service with the shipped production config by name, from a directory that has no
    # config/ folder, its warm-up ending before the recording. Without --history-end the
    # warm-up ran to the end of the data and every tick of the 2018 feed was refused.
    records = feed_days(1)
    feed = write_feed(tmp_path / "in.jsonl", records)
    prefix, sets = _fresh_topics(kafka_broker, "k")
    assert call(["replay", str(feed), "--to", "kafka", "--config", "production", *sets]) == 0
    light = [  # one quick member and a short history: the CLI is under test, not the models
        "--set", "ensemble.models=[{name: jump_diffusion_vix, weight: 1.0}]",
        "--set", "data.default_days_back=300", "--set", "websocket.port=0",
        "--set", "stream.tickers=[SPX]",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "run", "--config", "production", *sets, *light,
         "--history-end", "2017-12-29", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    expected = 2 * len(expected_publications(records, 1.0))  # two horizons
    try:
        deadline = time.monotonic() + 180
        ranges: list[tuple[bytes | None, bytes]] = []
        while len(ranges) < expected and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1.0)
            ranges = asyncio.run(read_topic(kafka_broker, f"{prefix}.ranges"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(ranges) == expected
    assert "dead       0" in out and f"ranges     {expected:,}" in out


@pytest.mark.kafka
def test_sigterm_stops_record_with_a_whole_file_and_its_report(
    kafka_broker: LocalKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # SIGTERM used to kill the recorder mid-write: exit 143, no report, a truncated gzip.
    records = feed_days(1)
    _, sets = _fresh_topics(kafka_broker, "t")
    assert (
        call(["replay", str(write_feed(tmp_path / "in.jsonl", records)), "--to", "kafka", *sets])
        == 0
    )
    out = tmp_path / "recorded.jsonl.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "record", "--out", str(out),
         "--idle-seconds", "600", *sets],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(10)  # start-up and the first fetches (the file shows nothing: buffered)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    written = int(stdout.split("recorded ", 1)[1].split(" events", 1)[0].replace(",", ""))
    assert 0 < written <= len(records)
    assert len(list(read_feed(out))) == written  # a whole gzip, read to its end


def test_ctrl_c_stops_a_paced_replay_with_its_report(tmp_path: Path) -> None:
    # At --speed 100 the overnight gap is a 10-minute sleep: Ctrl-C stopped the engine but
    # the replay slept on, and the refit worker died with a KeyboardInterrupt traceback.
    feed = write_feed(tmp_path / "two.jsonl", feed_days(2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "replay", str(feed), "--speed", "100", *FAST,
         "--set", "ensemble.models=[{name: ekpf, weight: 1}]"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(15)  # start-up, then the first session's ticks
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout.startswith("events ") and "Traceback" not in stderr


def test_ctrl_c_during_the_warm_up_stops_at_once_with_one_line(tmp_path: Path) -> None:
    # The warm-up (about 15 s for the default ensemble) blocked the event loop: Ctrl-C
    # waited for all of it. It now stops at the next warm-up bar and says so.
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "run", "--feed", str(feed), "--quiet",
         "--set", "websocket.port=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(8)  # imports, the feed, then the warm-up's member fits and first bars
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout.startswith("stopped during the warm-up (SPX: "), stdout
    assert stdout.rstrip().endswith("no event was consumed") and "Traceback" not in stderr


@pytest.mark.kafka
def test_ctrl_c_stops_a_paced_replay_to_kafka_with_its_report(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    # Ctrl-C ended a paced replay to Kafka with "interrupted" and exit 130, no report of
    # what had been sent; the signal now cancels the replay and the report says so.
    feed = write_feed(tmp_path / "two.jsonl", feed_days(2))
    _, sets = _fresh_topics(kafka_broker, "c")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "replay", str(feed), "--to", "kafka",
         "--speed", "100", *sets],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(8)  # start-up, then into the first session (about 4 minutes at --speed 100)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    sent = int(stdout.split("replayed ", 1)[1].split(" events", 1)[0].replace(",", ""))
    assert 0 < sent < len(feed_days(2)) and stdout.rstrip().endswith("before it was interrupted")


class _BrokerGoneAfter100:
    """Stands in for the Kafka producer of a broker that goes away mid-replay: after 100
    events every send fails as aiokafka's does once its request timeout has passed."""

    def __init__(self, bootstrap: str) -> None:
        self.sent = 0

    async def start(self) -> None:
        return None

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        self.sent += 1
        if self.sent > 100:
            raise KafkaTimeoutError("request timed out (test)")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        raise KafkaTimeoutError("cannot flush (test)")


def test_a_broker_lost_mid_replay_is_one_line_with_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was a 30-line KafkaTimeoutError traceback with no word of what had been sent.
    monkeypatch.setattr(cli_stream, "KafkaSink", _BrokerGoneAfter100)
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    with pytest.raises(BrokerUnavailableError) as err:
        call(["replay", str(feed), "--to", "kafka"])
    assert str(err.value).startswith(
        "Kafka at localhost:9092 stopped taking events at the feed's event 101 "
    )
    assert str(err.value).endswith("KafkaTimeoutError: request timed out (test)")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_kill_9_of_the_service_takes_its_refit_worker_with_it(tmp_path: Path) -> None:
    # With the forkserver context, its server, the refit worker and the resource tracker
    # outlived a kill -9 of `markov run` (84 MB a time, for good).
    feed = write_feed(tmp_path / "one.jsonl", feed_days(1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "run", "--feed", str(feed), "--quiet",
         "--set", "websocket.port=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)  # the pool starts its worker at start-up, beside the warm-up
        children = _children(proc.pid)
        assert children, "no refit worker started"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for c in children if _alive(c)]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
