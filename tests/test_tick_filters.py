"""The per-tick filters: Δt handling, tracking a known volatility, exact restore."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from gil import runs_other_threads

import rust_filters
from models.tick_filters import GAP_DT, NS, SESSION_SECONDS, SVParams, TickFilters

DAY_OPEN = 1_514_903_400 * NS  # 2018-01-02 09:30 EST


def session_ticks(
    daily_vol_pct: float, sessions: int, step_seconds: int, seed: int
) -> list[tuple[int, float]]:
    """Ticks of a driftless random walk with ``daily_vol_pct`` per trading day (one
    session of 6.5 h), ``step_seconds`` apart, over ``sessions`` consecutive days."""
    rng = np.random.default_rng(seed)
    per_tick = daily_vol_pct / 100.0 * math.sqrt(step_seconds / SESSION_SECONDS)
    n = int(SESSION_SECONDS // step_seconds)
    out, price = [], 100.0
    for day in range(sessions):
        start = DAY_OPEN + day * 86_400 * NS
        for k in range(n):
            price *= math.exp(per_tick * rng.standard_normal())
            out.append((start + k * step_seconds * NS, price))
    return out


def run(filters: TickFilters, ticks: list[tuple[int, float]]) -> TickFilters:
    for ts, price in ticks:
        filters.update(ts, price)
    return filters


def test_trading_time_steps() -> None:
    filters = TickFilters(SVParams(0.0, 0.97, 0.18))
    assert filters.trading_dt(60.0) == pytest.approx(60.0 / SESSION_SECONDS)
    assert filters.trading_dt(17.5 * 3600) == GAP_DT  # overnight
    assert filters.trading_dt(0.0) > 0  # two ticks in the same nanosecond


@pytest.mark.parametrize("daily_vol", [0.6, 1.2])
def test_filters_track_the_volatility_of_the_ticks(daily_vol: float) -> None:
    # The prior sits at 0.8 %/day; ten sessions of one-minute returns (3,900 of them) at
    # the true level pull both filters to it (over 8 seeds the ratio estimate / truth had
    # a standard deviation of ~4 %, so 20 % is 5 of them; a filter that stayed at its prior
    # would be off by +33 % / -33 %).
    params = SVParams(mu=math.log(0.8**2), phi=0.97, sigma=0.18)
    filters = run(TickFilters(params, seed=3), session_ticks(daily_vol, 10, 60, seed=11))
    vol = filters.volatility()
    assert vol is not None
    truth = daily_vol * math.sqrt(252)
    for estimate in vol:
        assert abs(estimate / truth - 1) < 0.2, (estimate, truth)
    assert filters.ticks == 10 * 390 - 1 and filters.rejected == 0 and filters.resets == 0


def test_sampling_frequency_does_not_bias_the_estimate() -> None:
    # The same process seen every minute and every five minutes: Δt scaling makes both
    # estimates agree (within the 20 % band of the test above).
    params = SVParams(mu=math.log(1.0), phi=0.97, sigma=0.18)
    fine = run(TickFilters(params, seed=1), session_ticks(1.5, 10, 60, seed=5)).volatility()
    coarse = run(TickFilters(params, seed=1), session_ticks(1.5, 10, 300, seed=6)).volatility()
    assert fine is not None and coarse is not None
    for a, b in zip(fine, coarse, strict=True):
        assert abs(a / b - 1) < 0.2


def test_first_tick_only_sets_the_reference() -> None:
    filters = TickFilters(SVParams(0.0, 0.97, 0.18))
    filters.update(DAY_OPEN, 100.0)
    assert filters.volatility() is None and filters.ticks == 0


def test_restore_continues_bit_identically() -> None:
    ticks = session_ticks(1.0, 3, 60, seed=2)
    params = SVParams(mu=0.0, phi=0.97, sigma=0.18)
    whole = run(TickFilters(params, seed=9), ticks)
    half = run(TickFilters(params, seed=9), ticks[:500])
    restored = run(TickFilters.restore(half.snapshot()), ticks[500:])
    assert restored.volatility() == whole.volatility()
    assert restored.snapshot() == whole.snapshot()
    assert pickle.loads(pickle.dumps(half.core)).snapshot() == half.core.snapshot()


def test_a_refused_tick_leaves_the_filters_unchanged() -> None:
    params = SVParams(0.0, 0.97, 0.18)
    filters = run(TickFilters(params, seed=4), session_ticks(1.0, 1, 60, seed=3))
    untouched = TickFilters.restore(filters.snapshot())
    for bad in (math.nan, math.inf, 0.0, -1.0):
        assert filters.update(DAY_OPEN + 86_400 * NS, bad) == untouched.volatility()
    assert filters.rejected == 4 and "price" in (filters.last_error or "")
    # The next good tick moves both exactly alike (the same reference, the same state).
    ts = DAY_OPEN + 86_401 * NS
    assert filters.update(ts, 101.0) == untouched.update(ts, 101.0)
    assert filters.ticks == untouched.ticks == 390


def test_a_tick_older_than_the_last_accepted_one_is_refused() -> None:
    # Once a 1 ms step with a stale return that moved the reference back in time.
    params = SVParams(0.0, 0.97, 0.18)
    filters = run(TickFilters(params, seed=4), session_ticks(1.0, 1, 60, seed=3))
    untouched = TickFilters.restore(filters.snapshot())
    last = filters.core.last_tick
    assert last is not None
    last_ts = last[0]
    assert filters.update(last_ts - NS, 120.0) == untouched.volatility()
    assert filters.rejected == 1
    assert "older than the last accepted tick" in (filters.last_error or "")
    assert filters.core.last_tick == untouched.core.last_tick
    ts = last_ts + 60 * NS
    assert filters.update(ts, 101.0) == untouched.update(ts, 101.0)


def test_the_last_reset_says_which_filter_reset_and_why() -> None:
    # mu = -800: exp(x) underflows to 0, so no particle explains a non-zero return and the
    # particle filter resets on every tick.
    tv = rust_filters.TickVolatility(
        -800.0, 0.5, 0.1, n_particles=64, session_seconds=SESSION_SECONDS, gap_seconds=3600.0,
        gap_dt=GAP_DT,
    )  # fmt: skip
    tv.update(DAY_OPEN, 100.0)
    assert tv.last_reset_reason is None
    tv.update(DAY_OPEN + 60 * NS, 100.1)
    assert tv.resets >= 1
    reason = tv.last_reset_reason
    assert reason is not None and reason.startswith("pf: ") and "reset" in reason
    assert rust_filters.TickVolatility.restore(tv.snapshot()).last_reset_reason == reason
    assert pickle.loads(pickle.dumps(tv)).last_reset_reason == reason


def test_a_particle_count_beyond_the_bound_is_a_value_error() -> None:
    # 10**12 particles once aborted the process on the allocation.
    for n in (10**12, rust_filters.MAX_PARTICLES + 1):
        with pytest.raises(ValueError, match="n_particles must be in"):
            rust_filters.TickVolatility(
                -0.5,
                0.97,
                0.18,
                n_particles=n,
                session_seconds=SESSION_SECONDS,
                gap_seconds=3600.0,
                gap_dt=GAP_DT,
            )


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_a_seed_out_of_range_is_a_value_error_naming_it(seed: int) -> None:
    with pytest.raises(ValueError, match="seed must be in"):  # once an OverflowError
        rust_filters.TickVolatility(
            -0.5, 0.97, 0.18, seed=seed, session_seconds=SESSION_SECONDS, gap_seconds=3600.0,
            gap_dt=GAP_DT,
        )  # fmt: skip


def test_prior_from_returns_needs_data() -> None:
    with pytest.raises(ValueError, match="at least 20 returns"):
        SVParams.from_returns(np.ones(5))
    params = SVParams.from_returns(np.random.default_rng(0).standard_normal(500) * 2.0)
    assert params.mu == pytest.approx(math.log(4.0), abs=0.15)  # var 4 ± 2·sqrt(2/500)·4


def test_a_large_cloud_releases_the_gil() -> None:
    # A million particles: each call below is milliseconds of Rust work (a tick ~13 ms).
    def make() -> rust_filters.TickVolatility:
        return rust_filters.TickVolatility(
            -0.5, 0.97, 0.18, n_particles=1_000_000, session_seconds=SESSION_SECONDS,
            gap_seconds=3600.0, gap_dt=GAP_DT,
        )  # fmt: skip

    tv = make()
    tv.update(DAY_OPEN, 100.0)
    saved = tv.snapshot()
    calls = {
        "TickVolatility()": make,
        "update": lambda: tv.update(DAY_OPEN + NS, 100.1),
        "snapshot": tv.snapshot,
        "restore": lambda: rust_filters.TickVolatility.restore(saved),
    }
    held = [name for name, call in calls.items() if not runs_other_threads(call)]
    assert held == []
