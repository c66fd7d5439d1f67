"""JumpDiffusionVIX on data simulated from its own process (models/jump_diffusion_vix.py)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from simulate import merton_history, one_step_hits, vix_driven_history

from models.base import Bar, Status
from models.jump_diffusion_vix import JumpDiffusionVIX

# Large, rare jumps: a 4-s.d. threshold on the conditional s.d. (≈ 0.013) finds them all
# but ~0.7 % (|N(−0.08, 0.0117)| < 0.052), and no diffusion day passes it (8.6 s.d.).
SIGMA, LAM, MU_J, SIGMA_J = 0.006, 0.02, -0.08, 0.01
PRIOR_JUMPS, PRIOR_MU_J, PRIOR_SIGMA_J = 2.0, -0.02, 0.02  # the model's documented prior


def test_jump_estimates_recover_the_merton_parameters() -> None:
    n_days = 2500
    history, jumps = merton_history(
        n_days, sigma=SIGMA, lam=LAM, mu_j=MU_J, sigma_j=SIGMA_J, seed=3
    )
    model = JumpDiffusionVIX(n_paths=1000, horizons=(1,))
    model.fit(history)
    n = int(np.count_nonzero(jumps))
    # A jump day's return is the jump plus one day of diffusion: that is what the
    # estimator sees, so its σ_J converges to sqrt(σ_J² + σ²).
    day_sd = math.hypot(SIGMA_J, SIGMA)
    # Sampling s.d.: λ̂ a frequency, sqrt(λ/N); μ̂_J a mean of n jump days, day_sd/√n;
    # σ̂_J a normal-sample s.d., day_sd/√(2n). Bands are 4 s.d. plus the pull of the
    # prior's 2 pseudo-jumps, computed exactly. (300 replicate seeds gave s.d. 0.0027,
    # 0.0017 and 0.0010 against 0.0028, 0.0017 and 0.0012 from these formulas.)
    prior_lam = PRIOR_JUMPS / n_days
    prior_mu = PRIOR_JUMPS * abs(MU_J - PRIOR_MU_J) / (n + PRIOR_JUMPS)
    shrunk_sd = math.sqrt((n * day_sd**2 + PRIOR_JUMPS * PRIOR_SIGMA_J**2) / (n + PRIOR_JUMPS))
    assert abs(model.lam - LAM) < 4 * math.sqrt(LAM / n_days) + prior_lam
    assert abs(model.mu_j - MU_J) < 4 * day_sd / math.sqrt(n) + prior_mu
    assert abs(model.sigma_j - day_sd) < 4 * day_sd / math.sqrt(2 * n) + (shrunk_sd - day_sd)


@pytest.mark.parametrize("process", ["merton", "vix"])
def test_one_step_coverage_is_nominal(process: str) -> None:
    # 600 one-step origins after a 1400-day fit. Misses are independent given the state,
    # so the coverage s.d. is sqrt(0.09/600) = 1.2 pp; forecasts after update() share one
    # Monte Carlo seed (4000 paths), adding a common error of about 0.5 pp. ±4 pp ≈ 3 s.d.
    if process == "merton":
        # Jump variance is a third of the total here: above one half the model keeps
        # half the variance in the diffusion (documented floor) and over-covers.
        history, _ = merton_history(2000, sigma=0.01, lam=0.01, mu_j=-0.07, sigma_j=0.01, seed=4)
    else:
        history = vix_driven_history(2000, c=0.7, seed=4)
    hits = one_step_hits(JumpDiffusionVIX(n_paths=4000, horizons=(1,)), history, 1399)
    assert len(hits) == 600
    assert abs(hits.mean() - 0.90) < 0.04


def _fitted(**kwargs: float) -> tuple[JumpDiffusionVIX, pd.DataFrame]:
    history = vix_driven_history(400, c=0.7, seed=8)
    model = JumpDiffusionVIX(n_paths=2000, **kwargs)  # type: ignore[arg-type]
    model.fit(history)
    return model, history


def test_forecast_reads_state_only_and_is_seeded() -> None:
    model, _ = _fitted()
    first = model.forecast(5, 0.9)
    assert model.forecast(5, 0.9) == first
    other, _ = _fitted()
    assert other.forecast(5, 0.9) == first
    assert first.low < first.anchor < first.high
    assert first.path_low is not None and first.path_high is not None
    assert first.path_low <= first.low and first.path_high >= first.high
    assert first.status.state is Status.OK


def test_missing_vix_degrades_and_skew_widens_the_lower_tail() -> None:
    model, history = _fitted()
    base = model.forecast(1, 0.9)
    # Jumps are rare here (λ = 0.005/day), so the shift shows in the far tail: at 99.8 %
    # the lower bound is the 0.1 % quantile, inside the ~0.5 % of paths that jump.
    far = model.forecast(1, 0.998)
    model.set_skew_z(2.0)  # richer puts: μ_J moves down by 0.25·2·σ_J
    assert model.forecast(1, 0.9).low <= base.low
    assert model.forecast(1, 0.998).low < far.low
    model.set_skew_z(None)
    assert model.forecast(1, 0.9) == base
    last = history.iloc[-1]
    model.update(Bar(history.index[-1] + pd.offsets.BDay(), last.open, last.high, last.low,
                     last.close, vix=None))  # fmt: skip
    no_vix = model.forecast(1, 0.9)
    assert no_vix.status.state is Status.DEGRADED and "VIX" in no_vix.status.reason


def test_bad_input_names_the_problem() -> None:
    model, history = _fitted()
    last = history.iloc[-1]
    with pytest.raises(ValueError, match="not after the last bar"):
        model.update(Bar(history.index[-1], last.open, last.high, last.low, last.close))
    before = model.forecast(5)
    nxt = history.index[-1] + pd.Timedelta(days=1)
    with pytest.raises(ValueError, match=r"bar\.close must be finite and > 0"):
        model.update(Bar(nxt, last.open, last.high, last.low, math.nan))
    with pytest.raises(ValueError, match=r"bar\.vix must be > 0"):
        model.update(Bar(nxt, last.open, last.high, last.low, last.close, vix=-5.0))
    assert model.forecast(5) == before  # refused bars leave the state as it was
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        model.forecast(0)
    with pytest.raises(ValueError, match="at least 120 bars"):
        JumpDiffusionVIX().fit(history.iloc[:50])
    with pytest.raises(ValueError, match="strictly increasing"):
        JumpDiffusionVIX().fit(history.iloc[::-1])
    unfitted = JumpDiffusionVIX().forecast(1)
    assert unfitted.status.state is Status.FAILED and unfitted.status.reason == "not fitted"


def test_consensus_volatility_blends_into_the_simulated_variance() -> None:
    # v' = v^(1−w) · σ_c^(2w): a larger consensus widens the range, w = 0 or no consensus
    # leaves the member's own VIX variance (and the seeded simulation) untouched.
    model, _ = _fitted(consensus_weight=1.0)
    own = model.forecast(1, 0.9)
    model.set_consensus_volatility(0.02)
    wide = model.forecast(1, 0.9)
    model.set_consensus_volatility(0.005)
    narrow = model.forecast(1, 0.9)
    assert narrow.width < own.width < wide.width
    # w = 1: the daily variance is σ_c² (less the same jump variance), so a σ_c four times
    # as large gives close to four times the width (the jumps' share does not scale).
    assert wide.width / narrow.width == pytest.approx(4.0, rel=0.1)
    for value in (None, math.nan, -1.0):
        model.set_consensus_volatility(value)
        assert model.forecast(1, 0.9) == own
    quarter, _ = _fitted()  # the default weight, 0.25
    quarter.set_consensus_volatility(0.02)
    assert own.width < quarter.forecast(1, 0.9).width < wide.width
    ignoring, _ = _fitted(consensus_weight=0.0)
    ignoring.set_consensus_volatility(0.02)
    assert ignoring.forecast(1, 0.9) == own
    with pytest.raises(ValueError, match=r"consensus_weight must be in \[0, 1\]"):
        JumpDiffusionVIX(consensus_weight=1.5)


def test_within_an_origin_a_move_below_the_tolerance_reuses_the_simulation() -> None:
    # Chains between bars nudge the consensus and the skew; a move below the simulation's
    # own noise keeps this origin's simulation, a larger one, or a new bar, re-runs it.
    model, history = _fitted(consensus_weight=1.0)
    model.set_consensus_volatility(0.010)
    first = model.forecast(1, 0.9)
    model.set_consensus_volatility(0.010 * 1.004)  # volatility +0.4 %: within 0.5 %
    assert model.forecast(1, 0.9) is first
    model.set_skew_z(0.1)  # crash size moves by 0.025 σ_J: within 0.05 σ_J
    assert model.forecast(1, 0.9) is first
    model.set_skew_z(0.0)
    model.set_consensus_volatility(0.010 * 1.01)  # +1 %: simulated again
    moved = model.forecast(1, 0.9)
    assert moved is not first and moved.width > first.width
    model.set_skew_z(1.0)  # 0.25 σ_J larger crashes: simulated again
    assert model.forecast(1, 0.9).low < moved.low
    # A different horizon or path count is its own simulation.
    assert model.forecast(1, 0.9, num_simulations=5000) != model.forecast(1, 0.9)
    # Tolerance 0: every call simulates (the seeded result differs for any move).
    exact, _ = _fitted(consensus_weight=1.0, resimulate_tolerance=0.0)
    exact.set_consensus_volatility(0.010)
    a = exact.forecast(1, 0.9)
    exact.set_consensus_volatility(0.010 * 1.004)
    assert exact.forecast(1, 0.9).width > a.width
    # A new bar is a new origin: nothing is reused across it.
    row = history.iloc[-1]
    bar = Bar(history.index[-1] + pd.offsets.BDay(), row["close"], row["high"], row["low"],
              row["close"], row["vix"])  # fmt: skip
    model.set_skew_z(0.0)
    model.set_consensus_volatility(0.010)
    model.update(bar)
    assert model.forecast(1, 0.9) is not first
    with pytest.raises(ValueError, match="resimulate_tolerance must be >= 0"):
        JumpDiffusionVIX(resimulate_tolerance=-0.1)


def test_num_simulations_sets_the_paths_of_one_forecast() -> None:
    # More paths, less Monte Carlo noise: over 20 origins the 5 % quantile from 500 paths
    # scatters around the 200,000-path one several times more than the 20,000-path one
    # (√(20000/500) ≈ 6.3 for the quantiles alone, less with the reference's own noise;
    # this seeded run gives 3.8).
    model, history = _fitted()
    assert model.forecast(1, num_simulations=model.n_paths) == model.forecast(1)
    errors: dict[int, list[float]] = {500: [], 20_000: []}
    for t in range(20):
        last = history.iloc[-1]
        ts = history.index[-1] + pd.offsets.BDay(t + 1)
        model.update(Bar(ts, last.open, last.high, last.low, last.close, float(last.vix)))
        exact = math.log(model.forecast(1, num_simulations=200_000).low)
        for n in errors:
            errors[n].append(math.log(model.forecast(1, num_simulations=n).low) - exact)
    assert np.std(errors[500]) > 2.5 * np.std(errors[20_000])
    for bad in (50, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_simulations must be an integer >= 100"):
            model.forecast(1, num_simulations=bad)  # type: ignore[arg-type]


def test_a_short_vix_history_uses_the_configured_coefficient() -> None:
    # 400 days, the VIX only on the last 30: too few to fit the premium (60 rows), so the
    # daily variance is (coefficient · VIX / 100)² / 252 and the range scales with the
    # coefficient (the jump part aside), and the status says why.
    history = vix_driven_history(400, c=0.7, seed=8)
    history.loc[history.index[:-30], "vix"] = np.nan
    widths = {}
    for coefficient in (0.5, 1.0):
        model = JumpDiffusionVIX(n_paths=4000, vix_coefficient=coefficient)
        model.fit(history)
        r = model.forecast(1, 0.9)
        assert r.status.state is Status.DEGRADED and "vix.coefficient" in r.status.reason
        widths[coefficient] = math.log(r.high / r.low)
    assert widths[1.0] / widths[0.5] == pytest.approx(2.0, rel=0.15)
    with pytest.raises(ValueError, match="vix_coefficient must be > 0"):
        JumpDiffusionVIX(vix_coefficient=-1.0)


def test_a_restored_chain_state_reuses_the_same_simulation() -> None:
    """Which simulation a forecast reuses depends on the forecasts since the bar (the
    inputs of the last one run): a restart puts those inputs back, as plain data, and
    gives the range the member that never stopped gives, not a fresh one at the inputs
    of the moment."""
    live, _ = _fitted(consensus_weight=1.0)
    live.set_consensus_volatility(0.010)
    live.forecast(1, 0.9)
    live.set_consensus_volatility(0.010 * 1.004)  # a chain's nudge, within the tolerance
    reused = live.forecast(1, 0.9)
    state = orjson.loads(orjson.dumps(live.chain_state()))

    def restarted() -> JumpDiffusionVIX:
        model, _ = _fitted(consensus_weight=1.0)
        model.set_consensus_volatility(0.010 * 1.004)
        return model

    fresh = restarted().forecast(1, 0.9)
    assert fresh.low != reused.low  # without the state: simulated at today's inputs
    rebuilt = restarted()
    rebuilt.restore_chain_state(state)
    assert rebuilt.forecast(1, 0.9) == reused
    assert rebuilt.chain_state() == live.chain_state()
