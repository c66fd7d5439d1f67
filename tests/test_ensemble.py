"""ModelEnsemble: combination, failures, pure forecasts, refit = update, determinism and the
look-ahead check on the real bundled data (models/ensemble.py)."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import replace
from functools import lru_cache
from types import FrameType

import numpy as np
import pandas as pd
import pytest
from look_ahead import assert_no_look_ahead

from config.loader import ConfigLoader
from config.schema import MarkovConfig
from connectors.data_sources import load_history
from models.base import Bar, FitResult, ForecastModel, PriceRange, Status
from models.delta_ukf import DeltaUKF
from models.ensemble import ModelEnsemble
from models.har_quantile import HARQuantileModel
from models.history import HistoryError
from models.jump_diffusion_vix import JumpDiffusionVIX
from models.quantile_regression import QuantileRegressionModel
from models.smile import SmileModel, generate_chain
from models.tgarch_model import TGARCHModel
from models.validation import bar_at, look_ahead_check


class Band:
    """A toy member: a ±``pct`` band around the last close, path range 1.5 times wider."""

    def __init__(self, name: str, pct: float) -> None:
        self.name = name
        self.pct = pct
        self.last = math.nan

    def fit(self, history: pd.DataFrame) -> FitResult:
        self.last = float(history["close"].iloc[-1])
        return FitResult(self.name, {"pct": self.pct})

    def update(self, bar: Bar) -> None:
        self.last = bar.close

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        c, d = self.last, self.pct * math.sqrt(steps)
        return PriceRange(
            self.name, steps, confidence, c, c * math.exp(-d), c * math.exp(d), c,
            path_low=c * math.exp(-1.5 * d), path_high=c * math.exp(1.5 * d),
        )  # fmt: skip


class Broken(Band):
    def fit(self, history: pd.DataFrame) -> FitResult:
        raise RuntimeError("optimizer exploded")


class PeeksAtTomorrow(Band):
    """Leaky on purpose: reads the engine's full history up the call stack and centres its
    band on the next close. Only the look-ahead check can notice it."""

    def fit(self, history: pd.DataFrame) -> FitResult:
        self.rows = len(history)
        return super().fit(history)

    def update(self, bar: Bar) -> None:
        self.rows += 1
        super().update(bar)

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            full = frame.f_locals.get("history")
            if isinstance(full, pd.DataFrame) and len(full) > self.rows:
                self.last = float(full["close"].iloc[self.rows])
                break
            frame = frame.f_back
        return super().forecast(steps, confidence)


def _config(**overrides: object) -> MarkovConfig:
    return ConfigLoader.from_dict({"weighting": {"skill_strength": 0.0}, **overrides})


def _toy_history(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {"open": close, "high": close * 1.004, "low": close * 0.996, "close": close,
         "vix": rng.uniform(10, 25, n)},
        index=pd.bdate_range("2017-01-02", periods=n),
    )  # fmt: skip


def test_combination_is_the_weighted_log_quantile_average() -> None:
    config = _config(calibration={"enabled": False})
    members: dict[str, ForecastModel] = {"a": Band("a", 0.01), "b": Band("b", 0.03)}
    ens = ModelEnsemble(config, members, horizons=(1,), burn_in=0,
                        base_weights={"a": 1.0, "b": 3.0})  # fmt: skip
    history = _toy_history()
    ens.fit(history)
    fc = ens.forecast_detail(1)
    c = float(history["close"].iloc[-1])
    assert fc.parts["a"].weight == pytest.approx(0.25) and fc.parts["b"].weight == 0.75
    assert fc.range.low == pytest.approx(c * math.exp(-(0.25 * 0.01 + 0.75 * 0.03)))
    assert fc.range.high == pytest.approx(c * math.exp(0.25 * 0.01 + 0.75 * 0.03))
    assert fc.range.path_low == pytest.approx(c * math.exp(-1.5 * (0.25 * 0.01 + 0.75 * 0.03)))
    assert fc.range.status.state is Status.OK


def test_a_failed_member_gets_weight_zero_and_the_output_says_so() -> None:
    config = _config(calibration={"enabled": False})
    members: dict[str, ForecastModel] = {"a": Band("a", 0.01), "bad": Broken("bad", 0.05)}
    ens = ModelEnsemble(config, members, horizons=(1,), burn_in=0,
                        base_weights={"a": 1.0, "bad": 1.0})  # fmt: skip
    fit = ens.fit(_toy_history())
    assert not fit.converged and "bad: fit failed: optimizer exploded" in fit.message
    fc = ens.forecast_detail(1)
    bad = fc.parts["bad"]
    assert bad.weight == 0.0 and bad.status.state is Status.FAILED
    assert "optimizer exploded" in bad.status.reason
    assert fc.parts["a"].weight == 1.0
    assert fc.range.width == pytest.approx(ens.members["a"].forecast(1).width)
    assert fc.range.status.state is Status.DEGRADED and "bad" in fc.range.status.reason


class Absurd(Band):
    """A member gone wild with a finite, ordered range (a collapsed particle filter once
    gave 1e-52 .. 1e58) or one with a zero low, which log-averaging cannot take. The bounds
    are factors of the last close."""

    def __init__(self, name: str, low: float, high: float) -> None:
        super().__init__(name, 0.0)
        self.bounds = (low, high)

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        low, high = (self.last * f for f in self.bounds)
        return PriceRange(self.name, steps, confidence, self.last, low, high, self.last,
                          path_low=low, path_high=high)  # fmt: skip


@pytest.mark.parametrize(
    ("bounds", "excluded"),
    [((1e-52, 1e58), "times as wide as the members' median"),  # screened
     ((0.99999, 1.00001), "times as wide as the members' median"),  # screened: too narrow
     ((0.0, 2.0), None)],  # not usable: its low is not positive
)  # fmt: skip
def test_an_absurd_member_range_is_excluded_not_averaged(
    bounds: tuple[float, float], excluded: str | None
) -> None:
    config = _config(calibration={"enabled": False})
    sane = {"a": 0.01, "b": 0.015, "c": 0.02}
    members: dict[str, ForecastModel] = {n: Band(n, p) for n, p in sane.items()}
    weights = dict.fromkeys([*sane, "wild"], 1.0)
    with_wild = ModelEnsemble(config, {**members, "wild": Absurd("wild", *bounds)},
                              horizons=(1,), burn_in=0, base_weights=weights)  # fmt: skip
    without = ModelEnsemble(config, {n: Band(n, p) for n, p in sane.items()}, horizons=(1,),
                            burn_in=0, base_weights=weights)  # fmt: skip
    history = _toy_history()
    with_wild.fit(history)
    without.fit(history)
    fc = with_wild.forecast_detail(1)
    wild = fc.parts["wild"]
    assert wild.weight == 0.0
    if excluded is not None:
        assert wild.status.state is Status.FAILED and excluded in wild.status.reason
    assert (fc.range.low, fc.range.high) == pytest.approx(
        (without.forecast(1).low, without.forecast(1).high)
    )
    # Two members are no majority: nothing is screened, the wide one is averaged in.
    pair = ModelEnsemble(config, {"a": Band("a", 0.01), "wild": Absurd("wild", 0.5, 2.0)},
                         horizons=(1,), burn_in=0, base_weights=weights)  # fmt: skip
    pair.fit(history)
    assert pair.forecast_detail(1).parts["wild"].weight == 0.5


def test_fit_then_forecast_chains_as_in_the_design() -> None:
    # The example: ModelEnsemble(config).fit(data).forecast(steps=5) returning
    # .low_estimate, .high_estimate and the per-model parts.
    members: dict[str, ForecastModel] = {"a": Band("a", 0.01), "b": Band("b", 0.03)}
    ens = ModelEnsemble(_config(), members, horizons=(1, 5), burn_in=0,
                        base_weights={"a": 1.0, "b": 3.0})  # fmt: skip
    history = _toy_history()
    fit = ens.fit(history)
    assert isinstance(fit, FitResult) and fit.converged and fit.nobs == len(history)
    fc = fit.forecast(steps=5)
    assert fc == ens.forecast_detail(5)
    c = float(history["close"].iloc[-1])
    assert fc.low_estimate == fc.range.low < c < fc.high_estimate == fc.range.high
    assert fc.range.horizon == 5 and fc.range.confidence == 0.9
    assert set(fc.parts) == {"a", "b"} and fc.parts["b"].weight == pytest.approx(0.75)
    assert fc.parts["a"].range == members["a"].forecast(5)
    assert fit.forecast(5, confidence=0.8).range.confidence == 0.8


def test_a_fit_result_refuses_to_forecast_once_the_ensemble_moved_on() -> None:
    members: dict[str, ForecastModel] = {"a": Band("a", 0.01)}
    ens = ModelEnsemble(_config(), members, horizons=(1,), burn_in=0, base_weights={"a": 1.0})
    history = _toy_history(121)
    old = ens.fit(history.iloc[:120])
    ens.update_chain(None)  # no chain reader among the members: same origin, still valid
    assert old.forecast(1) == ens.forecast_detail(1) and old.forecast(1).range.usable
    ens.update(bar_at(history, 120))
    with pytest.raises(RuntimeError, match=r"ensemble has since moved on to 2017-06-1\d"):
        old.forecast(1)
    new = ens.fit(history)
    assert new.forecast(1) == ens.forecast_detail(1)
    with pytest.raises(RuntimeError, match="moved on"):
        old.forecast(1)


def test_fit_checks_the_history_and_takes_it_without_a_vix_column() -> None:
    members: dict[str, ForecastModel] = {"a": Band("a", 0.01)}
    ens = ModelEnsemble(_config(), members, horizons=(1,), burn_in=0, base_weights={"a": 1.0})
    history = _toy_history()
    bad = history.copy()
    bad.loc[bad.index[50], "close"] = math.nan
    with pytest.raises(HistoryError) as exc_info:
        ens.fit(bad)
    assert str(exc_info.value) == "history: row 2017-03-13: close is missing (NaN)"
    shuffled = history.sample(frac=1.0, random_state=1).drop(columns="vix")
    fc = ens.fit(shuffled).forecast(1)  # sorted by date; the VIX unknown throughout
    assert fc.range.anchor == history["close"].iloc[-1] and fc.vix is None


def test_a_bad_bar_is_refused_before_any_member_sees_it() -> None:
    ens, history = _walked()
    before = (ens.calibration_state(), ens.forecast_detail(1), ens.origin)
    good = bar_at(history, 120)
    for bad, problem in [
        (replace(good, close=math.nan), "close is missing (NaN)"),
        (replace(good, low=good.close * 1.01), "low above min(open, close)"),
        (replace(good, vix=-1.0), "vix must be > 0"),
    ]:
        with pytest.raises(HistoryError, match=re.escape(problem)):
            ens.update(bad)
        assert (ens.calibration_state(), ens.forecast_detail(1), ens.origin) == before
    ens.update(good)  # every member still takes the next good bar
    assert ens.origin[0] == before[2][0] + 1 and ens.forecast_detail(1).range.usable


def _walked(calibrate: bool = True) -> tuple[ModelEnsemble, pd.DataFrame]:
    config = _config(calibration={"enabled": calibrate})
    members: dict[str, ForecastModel] = {"a": Band("a", 0.004), "b": Band("b", 0.02)}
    ens = ModelEnsemble(config, members, horizons=(1, 5), burn_in=40,
                        base_weights={"a": 1.0, "b": 1.0})  # fmt: skip
    history = _toy_history(160)
    ens.fit(history.iloc[:120])  # warm start: walks the last 40 bars with update
    return ens, history


def test_forecast_reads_state_and_never_changes_it() -> None:
    ens, _ = _walked()
    state = ens.calibration_state()
    first = {h: ens.forecast_detail(h) for h in (1, 5)}
    ens.forecast(5, 0.8)  # another confidence, computed on the fly
    ens.forecast(3)  # an untracked horizon
    assert ens.calibration_state() == state
    assert {h: ens.forecast_detail(h) for h in (1, 5)} == first
    # The walk calibrated something: the calibrated range differs from the raw one.
    raw = _walked(calibrate=False)[0].forecast(1)
    assert first[1].range != raw


def test_refit_on_a_longer_history_resolves_like_an_update() -> None:
    # Documented: "a refit on a longer history resolves like an update". With members
    # whose forecasts depend only on the data, update(bar) and fit(history + bar) leave
    # identical calibration state and forecasts.
    by_update, history = _walked()
    by_refit, _ = _walked()
    for t in range(120, 130):
        by_update.update(bar_at(history, t))
        by_refit.fit(history.iloc[: t + 1])
        assert by_refit.calibration_state() == by_update.calibration_state()
        for h in (1, 5):
            assert by_refit.forecast_detail(h) == by_update.forecast_detail(h)


def test_warm_up_reports_progress_and_a_cancelled_fit_leaves_it_unfitted() -> None:
    # The streaming service cancels a warm-up from the progress callback (a Ctrl-C during
    # start-up). The ensemble must then say "not fitted", and a fit after it must equal a
    # first fit: no calibration or skill state left over from the cancelled walk.
    fresh, history = _walked()
    seen: list[tuple[int, int]] = []
    ens = ModelEnsemble(
        _config(), {"a": Band("a", 0.004), "b": Band("b", 0.02)}, horizons=(1, 5), burn_in=40,
        base_weights={"a": 1.0, "b": 1.0},
    )  # fmt: skip

    def cancel_at_25(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ens.fit(history.iloc[:120], progress=cancel_at_25)
    assert seen == [(i, 40) for i in range(1, 26)]
    assert ens.origin == (0, None)
    assert ens.forecast_detail(1).range.status.reason.endswith("not fitted")
    ens.fit(history.iloc[:120])
    assert ens.calibration_state() == fresh.calibration_state()
    for h in (1, 5):
        assert ens.forecast_detail(h) == fresh.forecast_detail(h)


@pytest.mark.parametrize("source", ["shortest", "own"])
def test_skill_of_every_horizon_comes_from_the_configured_horizon(source: str) -> None:
    config = _config(
        weighting={"skill_strength": 1.0, "skill_horizon": source},
        calibration={"enabled": False},
    )
    pct = {"sharp": 0.01645, "wide": 0.04, "narrow": 0.004}
    members: dict[str, ForecastModel] = {n: Band(n, p) for n, p in pct.items()}
    ens = ModelEnsemble(config, members, horizons=(1, 5), burn_in=0,
                        base_weights=dict.fromkeys(pct, 1.0))  # fmt: skip
    history = _toy_history(220, seed=4)
    ens.fit(history.iloc[:120])
    for t in range(120, 220):
        ens.update(bar_at(history, t))
    skill = {h: ens.forecast_detail(h).weights.skill_factor for h in (1, 5)}
    if source == "shortest":
        assert skill[5] == skill[1]
        assert ens.forecast_detail(3).weights.skill_factor == skill[1]  # untracked horizon
    else:
        # The h=5 outcomes score the members differently, so the setting is visible.
        assert skill[5] != pytest.approx(skill[1], rel=1e-3)
        assert ens.forecast_detail(3).weights.skill_factor == dict.fromkeys(pct, 1.0)


def test_scored_outcomes_move_weight_to_the_sharp_calibrated_member() -> None:
    # Daily returns N(0, 1 %). A ±1.645 % band is the calibrated 90 % interval (expected
    # interval score 4.13 σ), ±4 % over-covers (8.0 σ), ±0.4 % under-covers (10.0 σ). Before
    # any outcome the equal base weights stand. After 100 outcomes each skill factor is
    # (IS_best / IS_i)^4 of the interval scores of exactly the origins 119..218, scored
    # against the next close; at the expected scores the sharp member's weight is 0.91
    # (0.80–0.94 over seeds 0–19).
    config = _config(weighting={"skill_strength": 1.0}, calibration={"enabled": False})
    pct = {"sharp": 0.01645, "wide": 0.04, "narrow": 0.004}
    members: dict[str, ForecastModel] = {n: Band(n, p) for n, p in pct.items()}
    ens = ModelEnsemble(config, members, horizons=(1,), burn_in=0,
                        base_weights=dict.fromkeys(pct, 1.0))  # fmt: skip
    history = _toy_history(220, seed=4)
    ens.fit(history.iloc[:120])
    before = ens.forecast_detail(1).weights
    assert before.weights == pytest.approx(dict.fromkeys(pct, 1 / 3))
    for t in range(120, 220):
        ens.update(bar_at(history, t))
    after = ens.forecast_detail(1).weights
    close = history["close"].to_numpy()
    mean_is = {}
    for n, p in pct.items():
        lo, hi, nxt = close[119:219] * math.exp(-p), close[119:219] * math.exp(p), close[120:220]
        score = (hi - lo) + 20 * np.maximum(lo - nxt, 0) + 20 * np.maximum(nxt - hi, 0)
        mean_is[n] = float(np.mean(100 * score / close[119:219]))
    best = min(mean_is.values())
    assert after.skill_factor == pytest.approx({n: (best / m) ** 4 for n, m in mean_is.items()})
    assert after.weights["sharp"] > 0.75


def test_the_bar_vix_sets_the_regime_and_its_multipliers() -> None:
    # Shipped multipliers: jump_diffusion_vix low 0.7 / high 1.5, arima low 1.2 / high 0.6;
    # with equal base weights and no skill the jump model's share is 0.7/1.9 in a calm
    # market and 1.5/2.1 in a stressed one.
    members: dict[str, ForecastModel] = {
        "jump_diffusion_vix": Band("jump_diffusion_vix", 0.01),
        "arima": Band("arima", 0.01),
    }
    ens = ModelEnsemble(_config(), members, horizons=(1,), burn_in=0,
                        base_weights={"jump_diffusion_vix": 1.0, "arima": 1.0})  # fmt: skip
    history = _toy_history(121)
    history.loc[history.index[119], "vix"] = 10.0
    ens.fit(history.iloc[:120])
    assert ens.forecast_detail(1).regime == "low"  # the last fitted bar's VIX: 10
    assert ens.forecast_detail(1).parts["jump_diffusion_vix"].weight == pytest.approx(0.7 / 1.9)
    bar = bar_at(history, 120)
    ens.update(Bar(bar.ts, bar.open, bar.high, bar.low, bar.close, 30.0))
    fc = ens.forecast_detail(1)
    assert fc.regime == "high" and fc.vix == 30.0
    assert fc.parts["jump_diffusion_vix"].weight == pytest.approx(1.5 / 2.1)


def _misses_through_a_volatility_doubling(calibrate: bool, seed: int) -> np.ndarray:
    """One member that always assumes 1 % daily volatility, 90 % band; the data's doubles
    to 2 % after 1000 days. Walks the ensemble (shipped calibration settings) through 4000
    days of the new regime; returns the one-step close misses from day 250 on."""
    rng = np.random.default_rng(seed)
    sigma = np.r_[np.full(1000, 0.01), np.full(4000, 0.02)]
    close = 100 * np.exp(np.cumsum(sigma * rng.standard_normal(sigma.size)))
    history = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "vix": 15.0},
        index=pd.bdate_range("2000-01-03", periods=close.size),
    )
    config = ConfigLoader.from_dict({"calibration": {"enabled": calibrate}})
    ens = ModelEnsemble(config, {"a": Band("a", 1.6448536 * 0.01)}, horizons=(1,),
                        burn_in=0, base_weights={"a": 1.0})  # fmt: skip
    ens.fit(history.iloc[:250])
    misses = []
    for t in range(250, close.size):
        r = ens.forecast_detail(1).range
        misses.append(not r.low <= close[t] <= r.high)
        ens.update(bar_at(history, t))
    return np.array(misses)


def test_calibration_recovers_coverage_after_volatility_doubles() -> None:
    # Uncalibrated, the new regime's miss rate is P(|Z| > 1.645/2) = 41 %. With the shipped
    # step (0.01 per update) the calibrator needs about 1000 days to re-converge (500-day
    # miss rates over seeds 0–5: 26–30 %, 13–19 %, 11–14 %, then 8–13 %); over the last 2000
    # days it is 10.05–10.85 %. Band: the s.d. of a mean of 2000 indicators is 0.67 pp,
    # plus the tracker's own wander: ±2.5 pp.
    raw = _misses_through_a_volatility_doubling(False, seed=2)
    assert raw[750:].mean() > 0.35
    calibrated = _misses_through_a_volatility_doubling(True, seed=2)
    assert abs(calibrated[:750].mean() - 0.10) < 0.035  # 750 days before the shift
    assert calibrated[750:1250].mean() > 0.2  # the shift is felt...
    assert abs(calibrated[-2000:].mean() - 0.10) < 0.025  # ...and calibrated away


class ConsensusSpy(Band):
    """A Monte Carlo stand-in: records the consensus the ensemble hands it."""

    def __init__(self, name: str, pct: float) -> None:
        super().__init__(name, pct)
        self.seen: list[float | None] = []

    def set_consensus_volatility(self, sigma_daily: float | None) -> None:
        self.seen.append(sigma_daily)


def test_the_monte_carlo_member_runs_last_on_the_others_consensus_volatility() -> None:
    # Bands of ±1 % and ±3 % √h at 90 %: normal-equivalent daily volatilities 1 % / 1.645
    # and 3 % / 1.645; base weights 1 and 3 (no skill yet): consensus = their weighted
    # geometric mean, at every horizon; the spy's own range takes no part in it.
    spy = ConsensusSpy("mc", 0.5)
    members: dict[str, ForecastModel] = {"mc": spy, "a": Band("a", 0.01), "b": Band("b", 0.03)}
    ens = ModelEnsemble(_config(), members, horizons=(1, 5), burn_in=0,
                        base_weights={"mc": 1.0, "a": 1.0, "b": 3.0})  # fmt: skip
    ens.fit(_toy_history())
    z = 1.6448536269514722
    expected = math.exp(0.25 * math.log(0.01 / z) + 0.75 * math.log(0.03 / z))
    assert spy.seen == [pytest.approx(expected), pytest.approx(expected)]  # h = 1 and 5
    ens.forecast(3)  # an untracked horizon: the same consensus, per day
    assert spy.seen[-1] == pytest.approx(expected)
    assert list(ens.forecast_parts(1)) == ["mc", "a", "b"]  # reported in configured order
    lonely = ModelEnsemble(_config(), {"mc": ConsensusSpy("mc", 0.5)}, horizons=(1,),
                           burn_in=0, base_weights={"mc": 1.0})  # fmt: skip
    lonely.fit(_toy_history())
    assert lonely.members["mc"].seen == [None]  # type: ignore[attr-defined]


# ----------------------------------------------------------------------- real members


@lru_cache(maxsize=1)
def spx() -> pd.DataFrame:
    """The bundled S&P 500 from mid-2016: the VIX on every row, about 650 rows."""
    return load_history("SPX").loc["2016-06-01":]


def _fast_members(config: MarkovConfig) -> dict[str, ForecastModel]:
    return {
        "tgarch": TGARCHModel(n_paths=500, seed=config.seed),
        "jump_diffusion_vix": JumpDiffusionVIX(n_paths=500, seed=config.seed + 3, horizons=(1, 5)),
        "delta_ukf": DeltaUKF(seed=config.seed + 5, vrp_window=60),
        "har_quantile": HARQuantileModel(horizons=(1, 5), window=300),
        "quantile_regression": QuantileRegressionModel(horizons=(1, 5)),
    }


def _small_ensemble(leaky: bool = False) -> ModelEnsemble:
    config = ConfigLoader.from_dict(
        {"ensemble": {"models": [{"name": "tgarch", "weight": 0.3},
                                 {"name": "jump_diffusion_vix", "weight": 0.3},
                                 {"name": "delta_ukf", "weight": 0.4},
                                 {"name": "har_quantile", "weight": 0.3},
                                 {"name": "quantile_regression", "weight": 0.45}]}}
    )  # fmt: skip
    members = _fast_members(config)
    weights = None
    if leaky:
        members["peeker"] = PeeksAtTomorrow("peeker", 0.01)
        weights = {"tgarch": 0.3, "jump_diffusion_vix": 0.3, "delta_ukf": 0.4,
                   "har_quantile": 0.3, "quantile_regression": 0.45,
                   "peeker": 1.0}  # fmt: skip
    return ModelEnsemble(config, members, horizons=(1, 5), burn_in=15, base_weights=weights)


def test_two_ensembles_fed_the_same_data_agree_exactly() -> None:
    history = spx().iloc[:400]
    a, b = _small_ensemble(), _small_ensemble()
    a.fit(history.iloc[:380])
    b.fit(history.iloc[:380])
    for t in range(380, 385):
        a.update(bar_at(history, t))
        b.update(bar_at(history, t))
    for h in (1, 5):
        fa, fb = a.forecast_detail(h), b.forecast_detail(h)
        assert fa == fb
        assert all(p.weight > 0 for p in fa.parts.values())
        assert fa.range.usable
    assert a.calibration_state() == b.calibration_state()


def test_look_ahead_check_passes_on_the_bundled_data() -> None:
    report = assert_no_look_ahead(_small_ensemble, spx())
    assert report.max_diff_before <= 1e-9


def test_look_ahead_check_catches_a_leaky_member_inside_the_ensemble() -> None:
    history = spx()
    report = look_ahead_check(
        lambda: _small_ensemble(leaky=True), history, [300, 321], [300], seed=7
    )
    assert not report.passed
    assert any("changed after rows" in v for v in report.violations)


def test_a_chain_update_refreshes_the_jump_members_range() -> None:
    # The chain moves the Delta UKF's skew z-score, which the jump member turns into a
    # larger crash size: its cached range at this origin must be recomputed, not reused.
    history = spx().iloc[:300]
    config = ConfigLoader.from_dict(
        {"ensemble": {"models": [{"name": "delta_ukf", "weight": 0.5},
                                 {"name": "jump_diffusion_vix", "weight": 0.5}]}}
    )  # fmt: skip
    members: dict[str, ForecastModel] = {
        "delta_ukf": DeltaUKF(seed=5),
        "jump_diffusion_vix": JumpDiffusionVIX(n_paths=4000, seed=3, horizons=(1,)),
    }
    ens = ModelEnsemble(config, members, horizons=(1,), burn_in=0)
    ens.fit(history)
    before = ens.forecast_parts(1, 0.998)["jump_diffusion_vix"]
    date = history.index[-1] + pd.offsets.BDay()
    ts = int((date + pd.Timedelta(hours=16)).tz_localize("America/New_York").value)
    close, vix = float(history["close"].iloc[-1]), float(history["vix"].iloc[-1])
    chain = generate_chain("SPX", ts, close, vix, expiries_days=(30,), seed=3,
                           model=SmileModel(skew_bar=0.40))  # fmt: skip
    ens.update_chain(chain)
    skew_z = ens.members["delta_ukf"].option_signals().skew_z  # type: ignore[attr-defined]
    assert skew_z is not None and skew_z > 1
    after = ens.forecast_parts(1, 0.998)["jump_diffusion_vix"]
    assert after.low < before.low


def test_a_refused_chain_is_raised_and_the_member_takes_the_next_one() -> None:
    # IVs in percent (25 for 0.25) used to reach the filter as a crash: a range from 0 to
    # inf marked ok, and the ensemble's low at a sixth of the price. A NaN IV disabled the
    # Delta UKF until the next fit although its state was unchanged.
    history = spx().iloc[:300]
    config = ConfigLoader.from_dict(
        {"ensemble": {"models": [{"name": "delta_ukf", "weight": 1.0}]}}
    )
    ens = ModelEnsemble(config, {"delta_ukf": DeltaUKF(seed=5)}, horizons=(1,), burn_in=0)
    ens.fit(history)
    date = history.index[-1] + pd.offsets.BDay()
    ts = int((date + pd.Timedelta(hours=16)).tz_localize("America/New_York").value)
    close, vix = float(history["close"].iloc[-1]), float(history["vix"].iloc[-1])
    chain = generate_chain("SPX", ts, close, vix, expiries_days=(30,), seed=3)
    before = ens.forecast_detail(1)
    for bad_iv, problem in [
        (lambda iv: 100 * iv, "annualised fraction"),
        (lambda iv: math.nan, "iv"),
    ]:
        bad = {**chain, "quotes": [{**q, "iv": bad_iv(q["iv"])} for q in chain["quotes"]]}
        with pytest.raises(ValueError, match=f"chain refused by delta_ukf: .*{problem}"):
            ens.update_chain(bad)
        assert ens.forecast_detail(1) == before
    ens.update_chain(chain)
    after = ens.forecast_detail(1)
    assert after.parts["delta_ukf"].weight == 1.0 and after.range.usable
    assert after.range != before.range  # the good chain was filtered


def test_bad_calls_get_clear_answers() -> None:
    ens, history = _walked()
    for steps, confidence in [(0, 0.9), (1.5, 0.9), (1, 1.0), (1, math.nan)]:
        with pytest.raises(ValueError, match=r"steps|confidence"):
            ens.forecast_detail(steps, confidence)  # type: ignore[arg-type]
    unfitted = ModelEnsemble(_config(), {"a": Band("a", 0.01)}, horizons=(1,), burn_in=0)
    r = unfitted.forecast(5)
    assert r.status.state is Status.FAILED and r.status.reason == "not fitted"
    before = (ens.calibration_state(), ens.forecast_detail(1), ens.origin)
    with pytest.raises(HistoryError, match="out of order"):
        ens.update(bar_at(history, 119))
    assert (ens.calibration_state(), ens.forecast_detail(1), ens.origin) == before
    # A NaN VIX on a bar is "no VIX", as in a frame, not a bad value for the members.
    ens.update(replace(bar_at(history, 120), vix=math.nan))
    assert ens.origin[0] == before[2][0] + 1 and ens.forecast_detail(1).range.usable
