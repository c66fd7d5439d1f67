"""The local Kafka broker: a real round trip with aiokafka, plus its lifecycle and fetch logic."""

from __future__ import annotations

import base64
import socket
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from connectors.kafka_broker import KAFKA_VERSION, BrokerStartError, LocalKafka, fetch_jars
from connectors.kafka_broker.__main__ import main
from connectors.kafka_broker.broker import random_cluster_id, render_server_properties
from connectors.kafka_broker.jars import is_fetched, pom_digest, pom_text

# Bounds on polling loops (a loop that never sees its messages fails, it does not hang).
POLLS = 30
POLL_MS = 1000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[tuple[int, bytes]]:
    """(offset, value) of the next `count` records, polling at most POLLS times."""
    records: list[tuple[int, bytes]] = []
    for _ in range(POLLS):
        batches = await consumer.getmany(timeout_ms=POLL_MS)
        for batch in batches.values():
            records.extend((r.offset, r.value) for r in batch)
        if len(records) >= count:
            break
    return records


def group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


@pytest.mark.kafka
async def test_round_trip_commit_resumes_group_at_committed_offset(
    kafka_broker: LocalKafka,
) -> None:
    topic, group = unique("round-trip"), unique("group")
    await kafka_broker.create_topics_async([topic])
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"bar-{i}".encode(), key=b"SPX")

        consumer = group_consumer(kafka_broker.bootstrap_servers, topic, group)
        await consumer.start()
        try:
            records = await consume(consumer, 5)
            assert records == [(i, f"bar-{i}".encode()) for i in range(5)]
            # The committed offset is the next one to read.
            await consumer.commit({tp: records[-1][0] + 1})
            assert await consumer.committed(tp) == 5
        finally:
            await consumer.stop()

        for i in range(5, 7):
            await producer.send_and_wait(topic, f"bar-{i}".encode(), key=b"SPX")
    finally:
        await producer.stop()

    # A new member of the same group resumes after the commit: it sees only the new records.
    consumer = group_consumer(kafka_broker.bootstrap_servers, topic, group)
    await consumer.start()
    try:
        assert await consume(consumer, 2) == [(5, b"bar-5"), (6, b"bar-6")]
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_create_topics_makes_partitions_and_tolerates_existing(
    kafka_broker: LocalKafka,
) -> None:
    topic = unique("partitioned")
    kafka_broker.create_topics([topic], partitions=3)
    kafka_broker.create_topics([topic], partitions=3)  # already exists: left alone
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert description["error_code"] == 0
    assert sorted(p["partition"] for p in description["partitions"]) == [0, 1, 2]


@pytest.mark.kafka
def test_create_topics_rejects_bad_arguments(kafka_broker: LocalKafka) -> None:
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        kafka_broker.create_topics(["x"], partitions=0)
    with pytest.raises(ValueError, match="at least one topic"):
        kafka_broker.create_topics([])


@pytest.mark.kafka
def test_stop_ends_the_broker_and_removes_its_data() -> None:
    with LocalKafka() as broker:
        host, port = broker.bootstrap_servers.split(":")
        work_dir = broker.work_dir
        assert (work_dir / "data" / "meta.properties").is_file()  # formatted by StorageTool
        assert broker.version == KAFKA_VERSION
    assert not broker.is_running
    assert not work_dir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = broker.bootstrap_servers


@pytest.mark.kafka
def test_broker_that_exits_early_raises_with_its_log() -> None:
    # Hold the controller port, so that the broker's bind fails after a successful format.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        broker = LocalKafka(port=_free_port(), controller_port=taken.getsockname()[1])
        with pytest.raises(BrokerStartError, match="exited early") as info:
            broker.start()
    assert "Address already in use" in str(info.value)  # the broker log's tail is included
    assert not broker.is_running
    with pytest.raises(RuntimeError, match="no work dir"):
        _ = broker.work_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_properties_are_single_node_combined_mode(tmp_path: Path) -> None:
    text = render_server_properties(9092, 9093, tmp_path, {"num.partitions": "4"})
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["log.dirs"] == str(tmp_path)
    assert props["auto.create.topics.enable"] == "true"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["num.partitions"] == "4"  # extra overrides the defaults


def test_cluster_id_is_kafka_uuid_text() -> None:
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        assert len(text) == 22 and not text.startswith("-")
        assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_fetch_is_a_no_op_when_the_marker_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / ".fetched").write_text(pom_digest(pom_text()) + "\n")
    monkeypatch.setenv("PATH", "")  # Maven unreachable: a cached fetch must not need it
    assert fetch_jars(tmp_path) == tmp_path / "libs"


def test_fetch_refetches_on_a_stale_marker_and_names_missing_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / ".fetched").write_text("digest-of-an-older-pom\n")
    assert not is_fetched(tmp_path)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"Maven \(mvn\) is not on PATH"):
        fetch_jars(tmp_path)


@pytest.mark.kafka
def test_cli_fetch_reports_the_pinned_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Kafka {KAFKA_VERSION}: ") and "jars" in out


def test_local_kafka_rejects_bad_timeouts() -> None:
    with pytest.raises(ValueError, match="startup_timeout and stop_timeout"):
        LocalKafka(startup_timeout=0)
