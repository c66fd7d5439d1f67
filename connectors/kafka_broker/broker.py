"""A single-node Apache Kafka broker (KRaft, combined mode) on loopback, run from cached jars."""

from __future__ import annotations

import asyncio
import atexit
import base64
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from connectors.kafka_broker.jars import (
    KAFKA_VERSION,
    fetch_jars,
    java_executable,
    kafka_home,
    log4j2_config_text,
)
from connectors.process_lifetime import die_with_parent

T = TypeVar("T")

# JVM flags of Kafka's own kafka-run-class.sh / kafka-server-start.sh. A 1 GB heap at least:
# small heaps have crashed the log cleaner, which compacted topics (e.g. offsets) need.
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
_STACK_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")
_TOPIC_ALREADY_EXISTS = 36  # Kafka error code: create_topics leaves existing topics alone


class BrokerStartError(RuntimeError):
    """The broker could not be formatted or started, or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_cluster_id() -> str:
    """A Kafka cluster id, as `kafka-storage.sh random-uuid` makes it, without starting a JVM.

    Kafka's Uuid prints as URL-safe base64 of 16 bytes without padding, and never starts
    with '-' (it would read as a command-line flag).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def render_server_properties(
    port: int,
    controller_port: int,
    log_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> str:
    """server.properties of a single-node combined broker+controller on loopback.

    Internal topics get one partition and replication factor 1 so that a test's first
    consumer group does not wait for 50 offsets partitions; `extra` overrides any key.
    """
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    props.update(extra or {})
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh event loop in a worker thread.

    A thread, so that the sync API also works when called from inside a running loop
    (e.g. an async test or an asyncio service).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _cluster_brokers(bootstrap: str, timeout_ms: int) -> int:
    """Number of brokers the cluster's metadata lists (0 while it is not ready)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster["brokers"])
    finally:
        await admin.close()


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()
    # Each entry is (topic, error_code[, error_message]).
    failed = [e for e in response.topic_errors if e[1] not in (0, _TOPIC_ALREADY_EXISTS)]
    if failed:
        raise RuntimeError(f"create_topics failed: {failed}")


class LocalKafka:
    """A throwaway single-node Kafka broker on 127.0.0.1 (KRaft, broker+controller in one JVM).

    Use as a context manager, or call `start()` / `stop()`. Data lives in a temporary
    directory that `stop()` removes. Ports are picked free at start unless given.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "1G",
        startup_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        extra_properties: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> None:
        if startup_timeout <= 0 or stop_timeout <= 0:
            raise ValueError(
                f"startup_timeout and stop_timeout must be > 0 seconds, got "
                f"{startup_timeout} and {stop_timeout}"
            )
        self._fixed_port = port
        self._fixed_controller_port = controller_port
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._extra = dict(extra_properties or {})
        self._home = home or kafka_home()
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._work_dir: Path | None = None

    # -- state -----------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The Apache Kafka version this broker runs."""
        return KAFKA_VERSION

    @property
    def bootstrap_servers(self) -> str:
        """`127.0.0.1:<port>` of the running broker (for aiokafka's bootstrap_servers)."""
        if self._port is None or not self.is_running:
            raise RuntimeError("the broker is not running: call start() first")
        return f"127.0.0.1:{self._port}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def work_dir(self) -> Path:
        """The temporary directory holding server.properties, the data and broker.log."""
        if self._work_dir is None:
            raise RuntimeError("the broker has no work dir: call start() first")
        return self._work_dir

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the broker's console output (WARN and above).

        Java stack frames are left out so that the lines that say what went wrong fit.
        """
        if self._work_dir is None:
            return ""
        path = self._work_dir / "broker.log"
        if not path.is_file():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace")
        kept = [line for line in text.splitlines() if not _STACK_FRAME.match(line)]
        return "\n".join(kept[-lines:])

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalKafka:
        """Fetch the jars if needed, format storage, start the broker and wait until ready.

        Raises BrokerStartError (with the tail of the broker's log) if the JVM exits early
        or the broker does not answer a metadata request within `startup_timeout` seconds.
        """
        if self._proc is not None:
            raise RuntimeError("the broker is already started")
        libs = fetch_jars(self._home)
        java = java_executable()
        # A port picked free can be taken before the JVM binds it: retry with new ones.
        attempts = 1 if self._fixed_port and self._fixed_controller_port else 3
        for attempt in range(attempts):
            try:
                self._launch(java, libs)
                self._wait_ready()
                atexit.register(self.stop)
                return self
            except BrokerStartError as err:
                tail = self.log_tail()
                self.stop()
                if "Address already in use" in tail and attempt + 1 < attempts:
                    continue
                raise BrokerStartError(f"{err}\n--- broker log (last lines) ---\n{tail}") from None
        raise AssertionError("unreachable")

    def _launch(self, java: str, libs: Path) -> None:
        self._work_dir = Path(tempfile.mkdtemp(prefix="markov-kafka-"))
        self._port = self._fixed_port or free_port()
        controller_port = self._fixed_controller_port or free_port()
        config = self._work_dir / "server.properties"
        config.write_text(
            render_server_properties(
                self._port, controller_port, self._work_dir / "data", self._extra
            ),
            encoding="utf-8",
        )
        log4j_config = self._work_dir / "log4j2.properties"
        log4j_config.write_text(log4j2_config_text(), encoding="utf-8")
        # Java expands the classpath wildcard itself: no shell involved.
        classpath = ["-cp", str(libs / "*"), f"-Dlog4j2.configurationFile={log4j_config}"]
        cluster_id, cfg = random_cluster_id(), str(config)
        fmt = subprocess.run(
            [java, *classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", cfg],
            capture_output=True,
            text=True,
            timeout=self._startup_timeout,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerStartError(
                f"kafka.tools.StorageTool format failed (exit {fmt.returncode}):\n"
                + (fmt.stdout + fmt.stderr).strip()
            )
        self._log = open(self._work_dir / "broker.log", "wb")  # noqa: SIM115 (closed in stop)
        heap = [f"-Xms{self._heap}", f"-Xmx{self._heap}"]
        self._proc = subprocess.Popen(
            [java, *heap, *_JVM_FLAGS, *classpath, "kafka.Kafka", cfg],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C reaches Python, which stops the broker cleanly.
            start_new_session=True,
            preexec_fn=die_with_parent,  # the broker stops if Python is killed
        )

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._port is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error = "the port never accepted a connection"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise BrokerStartError(f"the Kafka broker exited early with code {code}")
            try:
                with socket.create_connection(("127.0.0.1", self._port), timeout=1.0):
                    pass
                brokers = _run_coroutine(
                    _cluster_brokers(f"127.0.0.1:{self._port}", timeout_ms=5000)
                )
                if brokers >= 1:
                    return
                last_error = "metadata lists no broker yet"
            except Exception as err:  # not up yet: refused, timed out, not a controller...
                last_error = f"{type(err).__name__}: {err}"
            time.sleep(0.2)
        raise BrokerStartError(
            f"the Kafka broker was not ready within {self._startup_timeout:.0f} s "
            f"(last check: {last_error})"
        )

    def stop(self) -> None:
        """SIGTERM the broker (controlled shutdown), SIGKILL after `stop_timeout`; clean up.

        Idempotent; removes the temporary directory with the broker's data and log.
        """
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None
        self._port = None

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin -----------------------------------------------------------------------------
    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        """Create topics (replication factor 1); topics that already exist are left alone."""
        _run_coroutine(self.create_topics_async(names, partitions))

    async def create_topics_async(self, names: Iterable[str], partitions: int = 1) -> None:
        """`create_topics` for code already running in an event loop."""
        topics = list(names)
        if not topics:
            raise ValueError("names must list at least one topic")
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        await _create_topics(self.bootstrap_servers, topics, partitions)
