"""Refits off the event loop: installed at deterministic bars in replay, last good fit kept
on failure, and ticks keep flowing while a CPU-bound refit runs in the process pool."""

from __future__ import annotations

import asyncio
import time

import orjson
from test_stream_support import (
    embedded_service,
    encoded,
    feed_days,
    make_config,
    run_embedded,
    with_slow_member,
)

from connectors.embedded_bus import EmbeddedBus
from stream.clock import WallClock


async def test_replay_refits_are_deterministic_and_installed() -> None:
    records = feed_days(4)
    config = make_config("stream.refit_interval_seconds=86400")
    runs = []
    for kind in ("process", "thread"):  # the same installs whichever executor fits
        bus, service = await run_embedded(
            config, records, factory=with_slow_member(0.05), executor=kind
        )
        stats = service.engine.stats  # type: ignore[union-attr]
        runs.append(bus.topic("markov.ranges"))
    # Four sessions: bar closes on days 2, 3, 4 -> timer starts at the first close, a
    # refit starts at the second (24 h later) and is installed at the third.
    assert stats.refits_started == 2
    assert stats.refits_installed == 1
    assert stats.refit_failures == 0
    assert runs[0] == runs[1]


async def test_failed_refit_keeps_the_last_good_fit() -> None:
    records = feed_days(4)
    config = make_config("stream.refit_interval_seconds=86400")
    bus, service = await run_embedded(
        config, records, factory=with_slow_member(0.0, fail=True), executor="thread"
    )
    engine = service.engine
    assert engine is not None
    assert engine.stats.refit_failures == 1
    assert engine.stats.refits_installed == 0
    scheduler = engine.symbols["SPX"].refit
    assert "optimiser diverged" in scheduler.failures["arima"]
    # The old member still forecasts: the last ranges carry an ok arima part.
    last = orjson.loads(bus.topic("markov.ranges")[-1][1])
    assert last["models"]["arima"]["status"] == "ok"
    assert last["models"]["arima"]["weight"] > 0


async def test_ticks_keep_flowing_while_a_refit_runs() -> None:
    """Live mode (wall clock): a refit burning 1.5 s of CPU runs in the process pool while
    ticks are fed; ranges for ticks fed during the refit come out during the refit.
    The worst event-loop gap is measured and printed (speed is the benchmark's business)."""
    records = feed_days(3)
    config = make_config("stream.refit_interval_seconds=0.01")
    bus = EmbeddedBus()
    fed_all = False
    service = embedded_service(
        config, bus, clock=WallClock(), factory=with_slow_member(1.5), executor="process",
        input_complete=lambda: fed_all,
    )  # fmt: skip
    await service.start()
    runner = asyncio.create_task(service.run())
    engine = service.engine
    assert engine is not None
    rt = engine.symbols["SPX"]

    worst_gap = 0.0
    monitoring = True

    async def monitor() -> None:
        nonlocal worst_gap
        last = time.perf_counter()
        while monitoring:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            worst_gap = max(worst_gap, now - last)
            last = now

    watcher = asyncio.create_task(monitor())
    published_during_refit = 0
    for topic, key, value in encoded(config, records):
        bus.append(topic, key, value)
        if topic == "markov.ticks":
            running, before = rt.refit.in_flight, engine.stats.ranges
            await asyncio.sleep(0.001)  # ~1,000 ticks/s offered
            if running and rt.refit.in_flight:
                published_during_refit += engine.stats.ranges - before

    async def installed() -> None:
        while engine.stats.refits_installed == 0:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(installed(), 60)  # live mode: installed as soon as it is done
    fed_all = True
    await runner
    monitoring = False
    await watcher
    print(f"worst event-loop gap during the run: {worst_gap * 1000:.1f} ms")
    assert engine.stats.refits_started >= 1
    assert engine.stats.refits_installed >= 1
    assert published_during_refit > 0  # the loop kept processing ticks during a refit
