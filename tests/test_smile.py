"""The synthetic smile model: shape, Greeks, chain schema and determinism."""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.smile import (
    DEFAULT_MODEL,
    NEW_YORK,
    Rights,
    SmileModel,
    bs_greeks,
    generate_chain,
    listed_expiry,
    standardized_moneyness,
    time_to_expiry,
)

# 2018-02-02 10:00 New York, a Friday.
TS = int(pd.Timestamp("2018-02-02 10:00", tz=NEW_YORK).value)
SPOT = 2762.13
QUOTE_KEYS = {
    "expiry",
    "strike",
    "right",
    "iv",
    "delta",
    "gamma",
    "vega",
    "bid",
    "ask",
    "volume",
    "open_interest",
}
NOISELESS = SmileModel(noise_sd=0.0)


def by_expiry(chain: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for q in chain["quotes"]:
        groups.setdefault(q["expiry"], []).append(q)
    return groups


@pytest.mark.parametrize("vix", [9.15, 15.0, 19.0, 37.32])
def test_atm_30_day_vol_is_vix_over_100(vix: float) -> None:
    assert DEFAULT_MODEL.atm_vol(vix, 30 / 365) == pytest.approx(vix / 100, rel=1e-12)
    assert DEFAULT_MODEL.params(vix, 30 / 365).iv(0.0) == pytest.approx(vix / 100, rel=1e-12)


def test_term_structure_contango_when_calm_inverted_when_stressed() -> None:
    calm = [DEFAULT_MODEL.atm_vol(11.0, d / 365) for d in (7, 30, 90)]
    stressed = [DEFAULT_MODEL.atm_vol(35.0, d / 365) for d in (7, 30, 90)]
    assert calm[0] < calm[1] < calm[2]
    assert stressed[0] > stressed[1] > stressed[2]
    theta_vix = 100 * DEFAULT_MODEL.theta
    flat = [DEFAULT_MODEL.atm_vol(theta_vix, d / 365) for d in (7, 30, 90)]
    assert flat == pytest.approx([DEFAULT_MODEL.theta] * 3, rel=1e-12)


@pytest.mark.parametrize("vix", [9.15, 15.0, 25.0, 37.32])
def test_skew_puts_richer_and_smile_convex(vix: float) -> None:
    smile = DEFAULT_MODEL.params(vix, 30 / 365)
    assert smile.skew < 0 < smile.curv
    k = np.array([-0.1, 0.1])
    put_side, call_side = smile.iv(k)
    assert put_side > call_side


def test_relative_skew_steeper_when_vix_low_and_put_call_ratio_rises_with_vix() -> None:
    levels = [10.0, 15.0, 20.0, 30.0, 40.0]
    relative = [
        abs(DEFAULT_MODEL.params(v, 30 / 365).skew) / DEFAULT_MODEL.atm_vol(v, 30 / 365)
        for v in levels
    ]
    assert all(a > b for a, b in itertools.pairwise(relative))
    ratios = [DEFAULT_MODEL.put_call_ratio(v) for v in levels]
    assert all(a < b for a, b in itertools.pairwise(ratios))


def test_iv_follows_the_stated_quadratic_in_standardised_moneyness() -> None:
    tau, forward = 30 / 365, 2700.0
    strikes = np.array([2500.0, 2650.0, 2700.0, 2800.0])
    smile = DEFAULT_MODEL.params(18.0, tau)
    k = standardized_moneyness(strikes, forward, tau)
    assert k == pytest.approx(np.log(strikes / forward) / math.sqrt(tau))
    assert smile.iv(k) == pytest.approx(smile.atm + smile.skew * k + smile.curv * k**2)


def test_time_to_expiry_is_act365_to_the_new_york_close() -> None:
    ts = pd.Timestamp("2018-03-02 16:00", tz=NEW_YORK)
    assert time_to_expiry(ts, "2018-03-09") == pytest.approx(7 / 365, rel=1e-12)
    # Across the 2018-03-11 DST change the New York close is 23 h of UTC time closer.
    assert time_to_expiry(ts, "2018-03-16") == pytest.approx((14 - 1 / 24) / 365, rel=1e-12)


def test_listed_expiry_is_the_nearest_friday_after_the_trade_date() -> None:
    assert listed_expiry(date(2018, 2, 2), 7) == date(2018, 2, 9)  # Friday + 7
    assert listed_expiry(date(2018, 2, 5), 7) == date(2018, 2, 9)  # Monday: 4 days
    assert listed_expiry(date(2018, 2, 8), 7) == date(2018, 2, 16)  # Thursday: 8 days
    assert listed_expiry(date(2018, 2, 2), 30) == date(2018, 3, 2)
    for offset in range(7):
        day = date(2018, 1, 1 + offset)
        expiry = listed_expiry(day, 1)
        assert expiry.weekday() == 4 and expiry > day


def test_greeks_match_finite_differences_and_parity() -> None:
    strikes, tau, iv = np.array([2500.0, 2700.0, 2900.0]), 20 / 365, np.array([0.3, 0.2, 0.15])
    h = 0.01
    for is_call in (True, False):
        base = bs_greeks(SPOT, strikes, tau, iv, is_call, rate=0.02)
        up = bs_greeks(SPOT + h, strikes, tau, iv, is_call, rate=0.02)
        down = bs_greeks(SPOT - h, strikes, tau, iv, is_call, rate=0.02)
        # Central differences: truncation error O(h²) ≈ 1e-4·gamma' — far below 1e-5.
        assert base["delta"] == pytest.approx((up["price"] - down["price"]) / (2 * h), abs=1e-5)
        assert base["gamma"] == pytest.approx((up["delta"] - down["delta"]) / (2 * h), rel=1e-4)
        vol_up = bs_greeks(SPOT, strikes, tau, iv + 1e-5, is_call, rate=0.02)["price"]
        vol_down = bs_greeks(SPOT, strikes, tau, iv - 1e-5, is_call, rate=0.02)["price"]
        assert base["vega"] == pytest.approx((vol_up - vol_down) / 2e-5, rel=1e-5)
    calls = bs_greeks(SPOT, strikes, tau, iv, True, rate=0.02)["price"]
    puts = bs_greeks(SPOT, strikes, tau, iv, False, rate=0.02)["price"]
    assert calls - puts == pytest.approx(SPOT - strikes * math.exp(-0.02 * tau), abs=1e-8)


def test_chain_message_schema() -> None:
    chain = generate_chain("SPX", TS, SPOT, 17.31, seed=3)
    assert set(chain) == {"symbol", "ts", "underlying_price", "quotes"}
    assert chain["symbol"] == "SPX" and chain["ts"] == TS and chain["underlying_price"] == SPOT
    groups = by_expiry(chain)
    assert sorted(groups) == ["2018-02-09", "2018-03-02"]
    for expiry, quotes in groups.items():
        assert date.fromisoformat(expiry).weekday() == 4
        assert len(quotes) >= 10
        for q in quotes:
            assert set(q) == QUOTE_KEYS
            assert q["right"] in ("C", "P")
            assert q["strike"] % 5 == 0
            assert isinstance(q["volume"], int) and q["volume"] >= 0
            assert isinstance(q["open_interest"], int) and q["open_interest"] >= 0
            assert 0 <= q["bid"] < q["ask"]
            assert q["iv"] > 0 and q["gamma"] > 0 and q["vega"] > 0
            # rights="otm": puts below the forward (= spot at rate 0), calls at or above.
            assert (q["right"] == "C") == (q["strike"] >= SPOT)


@pytest.mark.parametrize("vix", [9.15, 17.31, 37.32])
@pytest.mark.parametrize("rights", ["otm", "both"])
def test_delta_signs_and_monotone_in_strike(vix: float, rights: Rights) -> None:
    chain = generate_chain("SPX", TS, SPOT, vix, rights=rights, seed=1, model=NOISELESS)
    for quotes in by_expiry(chain).values():
        for right in ("C", "P"):
            side = sorted((q for q in quotes if q["right"] == right), key=lambda q: q["strike"])
            deltas = np.array([q["delta"] for q in side])
            assert deltas.size >= 3
            if right == "C":
                assert np.all((deltas > 0) & (deltas < 1))
            else:
                assert np.all((deltas > -1) & (deltas < 0))
            assert np.all(np.diff(deltas) < 0), (right, deltas)
            mids = np.array([(q["bid"] + q["ask"]) / 2 for q in side])
            # Calls cheapen and puts get dearer with the strike.
            assert np.all(np.diff(mids) <= 0) if right == "C" else np.all(np.diff(mids) >= 0)


def test_noiseless_quotes_lie_on_the_model_smile() -> None:
    chain = generate_chain("SPX", TS, SPOT, 22.0, seed=5, model=NOISELESS)
    for expiry, quotes in by_expiry(chain).items():
        tau = time_to_expiry(TS, expiry)
        smile = NOISELESS.params(22.0, tau)
        strikes = np.array([q["strike"] for q in quotes])
        ivs = np.array([q["iv"] for q in quotes])
        # Quotes carry 6 significant digits.
        assert ivs == pytest.approx(smile.iv(standardized_moneyness(strikes, SPOT, tau)), rel=1e-5)


def test_quote_noise_is_seeded_with_the_stated_scale() -> None:
    a = generate_chain("SPX", TS, SPOT, 17.31, seed=11)
    assert a == generate_chain("SPX", TS, SPOT, 17.31, seed=11)
    assert a != generate_chain("SPX", TS, SPOT, 17.31, seed=12)
    residuals: list[float] = []
    for seed in range(40):
        chain = generate_chain("SPX", TS, SPOT, 17.31, seed=seed)
        for expiry, quotes in by_expiry(chain).items():
            tau = time_to_expiry(TS, expiry)
            strikes = np.array([q["strike"] for q in quotes])
            model_iv = DEFAULT_MODEL.params(17.31, tau).iv(
                standardized_moneyness(strikes, SPOT, tau)
            )
            residuals.extend(np.array([q["iv"] for q in quotes]) - model_iv)
    res = np.array(residuals)
    n = res.size  # ≈ 1200 quotes
    # Mean: standard error noise_sd/√n; SD: relative standard error 1/√(2n) ≈ 2 %. 4 s.e. each.
    assert abs(res.mean()) < 4 * DEFAULT_MODEL.noise_sd / math.sqrt(n)
    assert res.std() == pytest.approx(DEFAULT_MODEL.noise_sd, rel=4 / math.sqrt(2 * n))


def test_put_call_volume_ratio_tracks_the_vix() -> None:
    observed = {}
    for vix in (11.0, 35.0):
        puts = calls = 0
        for seed in range(10):
            for q in generate_chain("SPX", TS, SPOT, vix, seed=seed)["quotes"]:
                if q["right"] == "P":
                    puts += q["volume"]
                else:
                    calls += q["volume"]
        observed[vix] = puts / calls
        # Totals are Poisson with means ≈ 1.2e5 calls / 1.5e5+ puts over 10 chains: the
        # ratio's relative s.d. is ≈ √(1/1.2e5 + 1/1.5e5) ≈ 0.4 %; allow 2 % (5 s.d.).
        assert observed[vix] == pytest.approx(DEFAULT_MODEL.put_call_ratio(vix), rel=0.02)
    assert observed[35.0] > observed[11.0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"vix": 0.0}, "vix"),
        ({"vix": float("nan")}, "vix"),
        ({"underlying_price": -1.0}, "underlying_price"),
        ({"n_strikes": 0}, "n_strikes"),
        ({"moneyness_sd": (1.0, -1.0)}, "moneyness_sd"),
        ({"rights": "calls"}, "rights"),
        ({"ts": datetime(2018, 2, 2, 10, 0)}, "ts"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"symbol": "SPX", "ts": TS, "underlying_price": SPOT, "vix": 17.0}
    args |= kwargs
    with pytest.raises(ValueError, match=field):
        generate_chain(**args)


def test_model_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="theta"):
        SmileModel(theta=0.0)
    with pytest.raises(ValueError, match="noise_sd"):
        SmileModel(noise_sd=-0.1)


@pytest.mark.parametrize("vix", [8.0, 10.0, 15.0, 19.0, 25.0, 37.0, 50.0, 80.0])
def test_noiseless_smile_is_free_of_static_arbitrage_over_the_strike_range(vix: float) -> None:
    lo_sd, hi_sd = -2.5, 1.5  # generate_chain's default moneyness_sd
    for days in (1, 2, 4, 7, 10, 30, 45):
        tau = days / 365
        smile = DEFAULT_MODEL.params(vix, tau)
        sd = smile.atm * math.sqrt(tau)
        x = np.linspace(lo_sd * sd, hi_sd * sd, 801)
        strikes = 100.0 * np.exp(x)
        puts = bs_greeks(100.0, strikes, tau, smile.iv(x / math.sqrt(tau)), False)["price"]
        slope = np.diff(puts) / np.diff(strikes)
        # Put spreads: 0 <= dP/dK <= 1; butterflies: dP/dK non-decreasing (float slack).
        assert slope.min() >= 0 and slope.max() <= 1, (days, slope.min(), slope.max())
        assert np.diff(slope).min() >= -1e-9, (days, np.diff(slope).min())
