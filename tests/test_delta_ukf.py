"""DeltaUKF: the smile filter over option chains, its range and its signals."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from simulate import one_step_hits, vix_driven_history

from models.base import Bar, Status
from models.delta_ukf import TARGET_TAU, TRADING_DAYS, DeltaUKF
from models.smile import DEFAULT_MODEL, SmileModel, generate_chain, time_to_expiry
from stream.messages import Kind, parse

N_FIT = 40


def _close_ns(date: pd.Timestamp) -> int:
    return int((date + pd.Timedelta(hours=16)).tz_localize("America/New_York").value)


def _history(vix: np.ndarray, closes: np.ndarray | float = 100.0) -> pd.DataFrame:
    dates = pd.bdate_range("2018-01-02", periods=len(vix))
    c = np.broadcast_to(np.asarray(closes, dtype=float), vix.shape)
    return pd.DataFrame(
        {"open": c, "high": c * 1.005, "low": c * 0.995, "close": c, "vix": vix}, index=dates
    )


def _nearest_30d_params(chain: dict, vix: float) -> np.ndarray:
    taus = {time_to_expiry(chain["ts"], q["expiry"]) for q in chain["quotes"]}
    tau = min(taus, key=lambda t: abs(t - TARGET_TAU))
    p = DEFAULT_MODEL.params(vix, tau)
    return np.array([p.atm, p.skew, p.curv])


def test_filtered_smile_tracks_the_true_parameters() -> None:
    # VIX random walk from 15 (5 % log steps), one chain a day with 7/30/60-day expiries
    # (the filter takes the one nearest 30 days), quote noise 0.002. Tolerances: the
    # posterior s.d. of the filter is about 0.002 / 0.005 / 0.009 for level / skew /
    # curvature; the filter's dynamics (mean reversion) are not the truth's random walk,
    # so it lags: RMS error in posterior s.d. units below 2 (level, skew) and 3
    # (curvature), and in absolute terms within 0.5 vol point on the level.
    rng = np.random.default_rng(0)
    n = 80
    vix = 15 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    history = _history(vix)
    model = DeltaUKF()
    model.fit(history.iloc[:N_FIT])
    z, err, level, truth_level = [], [], [], []
    for i in range(N_FIT, n):
        chain = generate_chain("SPX", _close_ns(history.index[i]), 100.0, float(vix[i]),
                               expiries_days=(7, 30, 60), seed=i)  # fmt: skip
        model.update_chain(chain)
        truth = _nearest_30d_params(chain, float(vix[i]))
        ukf = model._ukf
        assert ukf is not None
        x = np.asarray(ukf.x)
        err.append(x - truth)
        z.append((x - truth) / np.sqrt(np.diag(ukf.P)))
        level.append(x[0])
        truth_level.append(truth[0])
        model.update(Bar(history.index[i], 100.0, 100.5, 99.5, 100.0, float(vix[i])))
    rms_z = np.sqrt(np.mean(np.square(z), axis=0))
    assert rms_z[0] < 2 and rms_z[1] < 2 and rms_z[2] < 3, rms_z
    assert np.max(np.abs(np.asarray(err)[:, 0])) < 0.005
    assert np.corrcoef(level, truth_level)[0, 1] > 0.99


def test_update_chain_takes_wire_messages_and_parsed_chains() -> None:
    vix = np.full(N_FIT, 19.0)
    history = _history(vix)
    date = history.index[-1] + pd.offsets.BDay()
    chain = generate_chain("SPX", _close_ns(date), 100.0, 25.0, expiries_days=(30,), seed=1)
    iso = pd.Timestamp(chain["ts"], tz="UTC").tz_convert("America/New_York").isoformat()
    wire = orjson.loads(orjson.dumps({**chain, "ts": iso}))  # as a JSON message decodes
    results = []
    for message in (chain, wire, parse(Kind.OPTIONS, orjson.dumps(chain))):
        model = DeltaUKF()
        model.fit(history)
        before = float(model.forecast(1).width)
        model.update_chain(message)
        after = model.forecast(1)
        assert after.width > before  # VIX 19 -> 25: the range widens
        assert model.option_signals().fresh_chain
        results.append(after)
    assert results[0] == results[1] == results[2]


def test_range_is_wider_below_and_path_contains_close() -> None:
    model = DeltaUKF()
    model.fit(_history(np.full(60, 20.0)))
    for steps in (1, 5):
        r = model.forecast(steps, 0.9)
        assert r.path_low is not None and r.path_high is not None
        assert math.log(r.anchor / r.low) > math.log(r.high / r.anchor)  # put skew
        assert math.log(r.anchor / r.path_low) > math.log(r.path_high / r.anchor)
        assert r.path_low < r.low < r.center < r.high < r.path_high
    flat = DeltaUKF(skew_weight=0.0)
    flat.fit(_history(np.full(60, 20.0)))
    r = flat.forecast(1, 0.9)
    assert math.log(r.anchor / r.low) == pytest.approx(math.log(r.high / r.anchor), rel=1e-12)


def test_vrp_ratio_is_realised_over_implied() -> None:
    # VIX at θ = 19 makes the ATM vol 0.19 at every expiry, so implied daily variance is
    # 0.19²/252; returns of ±r every day have realised variance r². With r = 0.8·0.19/√252
    # the ratio is 0.64. The filtered level errs by about 0.0005 (quote noise 0.002 over
    # ~15 quotes): 0.5 % on the variance per day, less in the 252-day mean: rtol 1 %.
    n = 300
    r = 0.8 * 0.19 / math.sqrt(TRADING_DAYS)
    closes = 100 * np.exp(np.cumsum(np.where(np.arange(n) % 2 == 0, r, -r)))
    model = DeltaUKF()
    model.fit(_history(np.full(n, 19.0), closes))
    assert model.vrp_ratio == pytest.approx(0.64, rel=0.01)
    wide = model.forecast(1, 0.9)
    # The range is the implied one scaled by sqrt(ratio): 0.8 of the unscaled width.
    unscaled = DeltaUKF(vix_coefficient=1.0)
    # < 60 closes: the prior vix_coefficient² (here 1)
    unscaled.fit(_history(np.full(n, 19.0), closes).iloc[-59:])
    assert unscaled.vrp_ratio == 1.0
    shipped = DeltaUKF()  # vix.coefficient 0.8
    shipped.fit(_history(np.full(n, 19.0), closes).iloc[-59:])
    assert shipped.vrp_ratio == pytest.approx(0.64)
    with pytest.raises(ValueError, match="vix_coefficient must be > 0"):
        DeltaUKF(vix_coefficient=0.0)
    assert math.log(wide.high / wide.anchor) == pytest.approx(
        0.8 * math.log(unscaled.forecast(1, 0.9).high / wide.anchor), rel=0.02
    )


def test_one_step_coverage_is_nominal_on_its_own_process() -> None:
    # The member's own process without skew: day t+1 is normal with variance
    # c·(VIX_t/100)²/252, c = 0.7 (implied over-predicts realised), and the synthetic
    # chains price the 30-day ATM volatility at VIX/100, so the range is right only if the
    # trailing VRP ratio (≈ 0.7, from 252 squared returns) scales it. Without the ratio
    # the coverage would be 95 %, with the ratio applied to the s.d. instead of the
    # variance 83 %. Tolerance: binomial s.d. 0.95 pp over 1000 origins, plus about
    # 0.75 pp from the ratio's own error (relative s.d. √(2/252) over ~4 independent
    # windows); 3.6 pp is three of their combined s.d. Seeds 0–7 gave 89.5–91.4 %.
    history = vix_driven_history(1300, c=0.7, seed=3)
    model = DeltaUKF(skew_weight=0.0)
    hits = one_step_hits(model, history, 299)
    assert len(hits) == 1000
    assert hits.mean() == pytest.approx(0.90, abs=0.036)
    assert model.vrp_ratio == pytest.approx(0.7, abs=0.2)


def test_status_says_synthetic_and_signals_follow_the_skew() -> None:
    history = _history(np.full(60, 19.0))
    model = DeltaUKF()
    model.fit(history)
    r = model.forecast(1)
    assert r.status.state is Status.DEGRADED and "synthetic" in r.status.reason
    quiet = model.option_signals()
    assert quiet.skew_z is not None and not quiet.fresh_chain
    date = history.index[-1] + pd.offsets.BDay()
    z = {}
    for name, skew_bar in (("steeper", 0.30), ("flatter", 0.12)):
        m = DeltaUKF()
        m.fit(history)
        smile = SmileModel(skew_bar=skew_bar)
        chain = generate_chain("SPX", _close_ns(date), 100.0, 19.0, expiries_days=(30,),
                               seed=3, model=smile)  # fmt: skip
        m.update_chain(chain)
        signals = m.option_signals()
        assert signals.fresh_chain and signals.skew_z is not None
        z[name] = signals.skew_z
        assert m.forecast(1).status.state is Status.OK  # a real chain: no longer synthetic
    # Richer puts (more negative skew) give a positive z-score, flatter a negative one.
    assert z["steeper"] > 3 and z["flatter"] < -3
    assert abs(quiet.skew_z) < z["steeper"]


def test_no_chain_and_bad_input() -> None:
    model = DeltaUKF()
    model.fit(_history(np.full(40, np.nan)))  # no VIX: no synthetic chain
    r = model.forecast(1)
    assert r.status.state is Status.FAILED and "no chain" in r.status.reason
    with pytest.raises(ValueError, match="measurement must be 'iv' or 'delta'"):
        DeltaUKF(measurement="price")
    with pytest.raises(ValueError, match="at least 30 bars"):
        DeltaUKF().fit(_history(np.full(10, 19.0)))


@pytest.mark.parametrize("hostile", ["every IV at 500 %", "puts near 0, calls at 500 %"])
def test_a_smile_without_a_fixed_point_fails_the_range_instead_of_overflowing(
    hostile: str,
) -> None:
    # In-range but hostile quotes filtered to a smile where k = z·iv(k) runs away:
    # forecast raised OverflowError ("math range error").
    model = DeltaUKF()
    history = _history(np.full(N_FIT, 18.0))
    model.fit(history)
    spot = float(history["close"].iloc[-1])
    when = history.index[-1] + pd.Timedelta(hours=20)
    chain = generate_chain("SPX", when.tz_localize("America/New_York"), spot, 18.0,
                           expiries_days=(30,), seed=0)  # fmt: skip
    for quote in chain["quotes"]:
        calls_high = hostile.startswith("puts") and quote["strike"] <= spot
        quote["iv"] = 1e-6 if calls_high else 5.0
    model.update_chain(chain)
    r = model.forecast(5)
    assert r.status.state is Status.FAILED and not r.usable
    assert r.status.reason.startswith("the filtered smile gives no finite range (level ")


def test_chain_state_put_back_continues_as_the_chains_would() -> None:
    """A restart rebuilds the member from the bars, which alone give synthetic chains:
    the chain state taken after real chains, put back into a member fitted on the same
    history, continues exactly as the member that saw the chains (as plain JSON)."""
    history = _history(np.full(60, 19.0))
    live, rebuilt = DeltaUKF(), DeltaUKF()
    live.fit(history)
    rebuilt.fit(history)
    date = history.index[-1] + pd.offsets.BDay()
    for hour, skew_bar in ((11, 0.30), (14, 0.25)):
        ts = int((date + pd.Timedelta(hours=hour)).tz_localize("America/New_York").value)
        smile = SmileModel(skew_bar=skew_bar)
        live.update_chain(generate_chain("SPX", ts, 100.0, 22.0, seed=hour, model=smile))
    state = orjson.loads(orjson.dumps(live.chain_state()))
    assert state["fresh_chain"] and state["ukf"] is not None
    assert rebuilt.forecast(5) != live.forecast(5)  # the chains moved the range
    rebuilt.restore_chain_state(state)
    assert rebuilt.forecast(5) == live.forecast(5)
    assert rebuilt.option_signals() == live.option_signals()
    bar = Bar(date, 100.0, 101.0, 99.0, 100.5, 22.0)
    live.update(bar)
    rebuilt.update(bar)
    assert rebuilt.forecast(5) == live.forecast(5)
    assert rebuilt.chain_state() == live.chain_state()
