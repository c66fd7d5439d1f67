"""Refitting the slow members (TGARCH, ARIMA, VARMAX, quantile regression) off the event loop.

A refit fits *copies* of an ensemble's slow members on the history so far in an executor
(a process pool by default, so the fit does not share the event loop's GIL), then the
engine installs the fitted copies and replays the bars that closed since the refit began
(:meth:`models.ensemble.ModelEnsemble.install_members`). A member whose fit raises or does
not converge keeps its last good fit.

Timing. A refit is due when ``interval`` has passed on the engine's clock since the last
one began (event time in replay, wall time live). With a deterministic (event) clock the
result is installed at the first bar close after the refit began, waiting for it if
needed, so a replay installs the same fits at the same bars on every run. With a wall
clock it is installed as soon as it is done.

The members and history are pickled on the event loop before submission: the pool's
feeder thread would otherwise pickle them later, while the engine may already be updating
the live members.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from connectors.process_lifetime import die_with_parent
from models.base import ForecastModel

ExecutorKind = Literal["process", "thread"]


def make_executor(kind: ExecutorKind = "process", workers: int = 1) -> Executor:
    """The executor refits run in; the caller shuts it down.

    Processes use the ``spawn`` context: never ``fork`` a process that already runs
    threads (the event loop's executor threads, aiokafka's), which can deadlock the child.
    Not ``forkserver`` either: its server, a worker and the resource tracker outlived a
    ``kill -9`` of the service (84 MB a time); a spawned worker is the service's own child
    and dies with it (:func:`_init_worker`), and the tracker ends when the worker does.
    """
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="markov-refit")
    if kind != "process":
        raise ValueError(f"executor kind must be 'process' or 'thread', got {kind!r}")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(os.getpid(),),
    )  # fmt: skip


def _init_worker(service_pid: int) -> None:
    """Pool workers leave Ctrl-C to the service (the terminal sends SIGINT to the whole
    process group, and a worker would die with a KeyboardInterrupt traceback while the
    service shuts down in order), and die with the service however it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, service_pid)


def ready() -> bool:
    """A no-op task: submitting it at start-up starts the pool's worker (which blocks the
    caller while the worker process boots) before the stream runs, not during it."""
    return True


def fit_pickled(payload: bytes) -> bytes:
    """Executor entry point: unpickle (members, history), fit each, pickle the outcome.

    The outcome maps each member's name to the fitted model, or to the reason its fit
    failed (an exception or no convergence), so the caller keeps the last good fit.
    """
    members, history = pickle.loads(payload)
    out: dict[str, ForecastModel | str] = {}
    for name, model in members.items():
        try:
            result = model.fit(history)
        except Exception as exc:  # the reason travels back; the engine keeps the old fit
            out[name] = f"fit failed: {type(exc).__name__}: {exc}"
            continue
        out[name] = model if result.converged else f"did not converge: {result.message}"
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def submit_fit(
    executor: Executor | None, members: Mapping[str, ForecastModel], history: pd.DataFrame
) -> asyncio.Future[bytes]:
    """Fit copies of ``members`` on ``history`` in ``executor`` (None: a thread). They are
    pickled here, on the event loop: the pool's feeder thread would pickle them later,
    while the engine may already be updating the live members."""
    payload = pickle.dumps((dict(members), history), protocol=pickle.HIGHEST_PROTOCOL)
    return asyncio.get_running_loop().run_in_executor(executor, fit_pickled, payload)


def split_outcome(payload: bytes) -> tuple[dict[str, ForecastModel], dict[str, str]]:
    """A :func:`fit_pickled` result as (the fitted members, each failed one's reason)."""
    result: dict[str, ForecastModel | str] = pickle.loads(payload)
    fitted = {n: m for n, m in result.items() if not isinstance(m, str)}
    failures = {n: m for n, m in result.items() if isinstance(m, str)}
    return fitted, failures


@dataclass
class RefitOutcome:
    """What a finished refit gives the engine."""

    start_bar: int  # number of closed stream bars in the history it was fitted on
    fitted: dict[str, ForecastModel]
    failures: dict[str, str] = field(default_factory=dict)


class RefitScheduler:
    """When one symbol's refits are due, and the refit in flight (at most one)."""

    def __init__(self, interval_ns: int, executor: Executor | None) -> None:
        if interval_ns <= 0:
            raise ValueError(f"refit interval must be > 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns
        self._executor = executor
        self._last_start: int | None = None
        self._job: asyncio.Future[bytes] | None = None
        self._job_bar = 0
        self.started = 0
        self.installed = 0
        self.failures: dict[str, str] = {}

    @property
    def in_flight(self) -> bool:
        return self._job is not None

    @property
    def job_done(self) -> bool:
        return self._job is not None and self._job.done()

    def due(self, now_ns: int) -> bool:
        """True when a refit should begin at ``now_ns`` (the first call only starts the timer)."""
        if self._executor is None or self._job is not None:
            return False
        if self._last_start is None:
            self._last_start = now_ns
            return False
        return now_ns - self._last_start >= self.interval_ns

    def start(
        self,
        now_ns: int,
        members: Mapping[str, ForecastModel],
        history: pd.DataFrame,
        bar_count: int,
    ) -> None:
        """Submit a refit of ``members`` on ``history`` (which holds ``bar_count`` stream bars)."""
        if self._executor is None:
            raise RuntimeError("refits are disabled (no executor)")
        if not members:
            self._last_start = now_ns
            return
        self._job = submit_fit(self._executor, members, history)
        self._job_bar = bar_count
        self._last_start = now_ns
        self.started += 1

    async def outcome(self) -> RefitOutcome:
        """Wait for the refit in flight and take its outcome (a crash counts as a failure)."""
        job = self._job
        if job is None:
            raise RuntimeError("no refit in flight")
        self._job = None
        try:
            fitted, failures = split_outcome(await job)
        except Exception as exc:  # the worker died or could not unpickle: keep every fit
            self.failures = {"*": f"refit crashed: {type(exc).__name__}: {exc}"}
            return RefitOutcome(self._job_bar, {}, dict(self.failures))
        self.failures = failures
        self.installed += 1
        return RefitOutcome(self._job_bar, fitted, dict(self.failures))

    @property
    def timer_ns(self) -> int | None:
        """When the last refit began (None: the timer has not started)."""
        return self._last_start

    @property
    def in_flight_start(self) -> int | None:
        """The refit in flight's bar count (as given to :meth:`start`), or None."""
        return self._job_bar if self._job is not None else None

    def resume(self, timer_ns: int | None, start_bar: int | None, outcome: bytes | None) -> None:
        """Go on from a checkpoint: the timer as it was and, if a refit was in flight
        then, its outcome (fitted again on restore), to install as that refit."""
        self._last_start = timer_ns
        if start_bar is None or outcome is None:
            return
        job: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        job.set_result(outcome)
        self._job, self._job_bar = job, start_bar

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
