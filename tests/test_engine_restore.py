"""A restart rebuilds the models exactly: option chains and refits since the warm-up are
put back where they happened, so the ranges after a crash are byte for byte those of the
run that did not crash (DESIGN "State": a snapshot plus a replay from its offsets
reproduces the uninterrupted output)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from test_stream_support import (
    SlowArima,
    bus_with,
    chains_and_refits,
    embedded_service,
    encoded,
    feed_days,
    make_config,
    run_embedded,
)

from config.schema import MarkovConfig
from connectors.embedded_bus import EmbeddedBus
from models.base import ForecastModel
from models.baselines import VixImpliedNormal
from models.ensemble import ModelEnsemble
from stream.engine import STATE_VERSION

DAYS = 6
# Daily refits: with six sessions, five bar closes; the timer starts at the first, and
# from the second on every close installs the refit begun at the one before and begins
# the next, so a crash always leaves installed refits and one in flight behind it.
REFIT_DAILY = "stream.refit_interval_seconds=86400"


def by_seq(messages: list[tuple[bytes | None, bytes]]) -> dict[int, bytes]:
    """The ranges by seq; a redelivered seq must repeat its message byte for byte."""
    out: dict[int, bytes] = {}
    for _, value in messages:
        seq = orjson.loads(value)["seq"]
        assert out.setdefault(seq, value) == value, f"seq {seq} came back different"
    return out


async def crash_at(config: MarkovConfig, bus: EmbeddedBus, seq: int, **kwargs: Any) -> None:
    """Run a service on ``bus`` that stops abruptly (a crash) once it has published range
    ``seq``: what it processed since its last checkpoint is left uncommitted."""

    def crash(symbol: str, published: int, message: bytes) -> None:
        if published == seq:
            service.abort()

    service = embedded_service(
        config, bus, commit_interval=0.0, batch_size=300, on_range=crash, **kwargs
    )
    await service.start()
    with pytest.raises(asyncio.CancelledError):
        await service.run()


@pytest.mark.parametrize("at", [0.6, 0.9])
async def test_a_restart_after_chains_and_refits_repeats_the_uninterrupted_ranges(
    at: float,
) -> None:
    records = feed_days(DAYS)
    config = make_config(REFIT_DAILY)
    reference, ref_service = await run_embedded(config, records, factory=chains_and_refits)
    expected = [v for _, v in reference.topic("markov.ranges")]
    ref_stats = ref_service.engine.stats  # type: ignore[union-attr]
    assert ref_stats.refits_installed >= 3  # the run really refitted, several times
    assert sum(1 for r in records if r.topic == "markov.options") > 50

    bus = bus_with(encoded(config, records))
    await crash_at(config, bus, int(len(expected) * at), factory=chains_and_refits)
    states = [orjson.loads(v) for _, v in bus.topic("markov.state")]
    journal: dict[str, Any] = states[-1]["journal"]
    assert states[-1]["v"] == STATE_VERSION
    assert journal["chains"] and journal["refits"]  # the checkpoint had both to put back
    assert journal["refit_in_flight"] is not None

    second = embedded_service(config, bus, factory=chains_and_refits)
    await second.start()
    await second.run()

    seen = by_seq(bus.topic("markov.ranges"))
    assert len(bus.topic("markov.ranges")) > len(seen)  # the crash left work to redo
    assert [seen[i + 1] for i in range(len(expected))] == expected
    assert len(seen) == len(expected)


async def test_a_checkpoint_of_the_last_version_without_a_journal_still_restores() -> None:
    """Version 4 checkpoints (before the journal) carry everything else this build reads:
    after an upgrade the symbol goes on from one, replaying its bars alone, as then (exact
    for members that neither read chains nor refit, such as the baselines here)."""
    records = feed_days(3)
    config = make_config()
    reference, _ = await run_embedded(config, records)
    expected = [v for _, v in reference.topic("markov.ranges")]

    bus = bus_with(encoded(config, records))
    await crash_at(config, bus, len(expected) * 3 // 4)
    last = orjson.loads(bus.topic("markov.state")[-1][1])
    assert last["state"]["bars"]  # bars to replay
    del last["journal"]
    bus.append("markov.state", b"SPX", orjson.dumps({**last, "v": 4}))

    second = embedded_service(config, bus)
    await second.start()
    await second.run()
    assert second.engine.stats.skipped_restored > 0  # type: ignore[union-attr]
    seen = by_seq(bus.topic("markov.ranges"))
    assert [seen[i + 1] for i in range(len(expected))] == expected


async def test_a_restart_with_a_member_removed_from_the_config_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The journal names a member the restarted service no longer has (the config changed
    in between): its chain states are skipped with one warning, the rest is put back."""
    records = feed_days(DAYS)
    config = make_config(REFIT_DAILY)
    bus = bus_with(encoded(config, records))
    await crash_at(config, bus, 3000, factory=chains_and_refits)
    journal = orjson.loads(bus.topic("markov.state")[-1][1])["journal"]
    assert journal["chains"] and journal["refits"]

    def without_chains(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        members: dict[str, ForecastModel] = {
            "vix_normal": VixImpliedNormal(),
            "arima": SlowArima(0.0),
        }
        return ModelEnsemble(config, members, burn_in=100)

    second = embedded_service(config, bus, factory=without_chains)
    with caplog.at_level("WARNING", logger="stream.model_journal"):
        await second.start()
    assert "chain state of delta_ukf, jump_diffusion_vix not restored: no such member now" in (
        caplog.text
    )
    await second.run()
    # Other members, other numbers: only the sequence goes on, without a gap.
    seqs = sorted({orjson.loads(v)["seq"] for _, v in bus.topic("markov.ranges")})
    assert seqs == list(range(1, seqs[-1] + 1)) and seqs[-1] > 3000


async def test_a_refit_that_fails_on_restore_keeps_the_member_as_it_is() -> None:
    """The journal's refits are fitted again at a restart; one that fails now (it had
    succeeded) leaves the member with its last good fit, still forecasting."""
    records = feed_days(DAYS)
    config = make_config(REFIT_DAILY)
    bus = bus_with(encoded(config, records))
    await crash_at(config, bus, 3000, factory=chains_and_refits)
    assert orjson.loads(bus.topic("markov.state")[-1][1])["journal"]["refits"]

    def failing_refits(config: MarkovConfig, symbol: str) -> ModelEnsemble:
        members: dict[str, ForecastModel] = {
            "vix_normal": VixImpliedNormal(),
            "arima": SlowArima(0.0, fail=True),  # every fit after the warm-up's raises
        }
        return ModelEnsemble(config, members, burn_in=100)

    second = embedded_service(config, bus, factory=failing_refits)
    await second.start()
    published = len(bus.topic("markov.ranges"))
    await second.run()
    stats = second.engine.stats  # type: ignore[union-attr]
    assert stats.ranges > 0 and stats.unpublishable == 0
    ranges = [orjson.loads(v) for _, v in bus.topic("markov.ranges")[published:]]
    assert all(r["models"]["arima"]["status"] == "ok" for r in ranges)
