"""Normal baselines: formulas, fit/update consistency, and the protocol's VIX numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from connectors.data_sources import load_history
from models.base import Bar, ForecastModel, Status
from models.baselines import (
    EwmaNormal,
    HistoricalVolNormal,
    VixImpliedNormal,
    brownian_barrier,
    brownian_stay_probability,
)
from models.scoring import Kind
from models.validation import walk_forward


def arch_history() -> pd.DataFrame:
    """S&P 500 OHLC 1999–2018 with the VIX close aligned (NaN before 2014-01-03)."""
    return load_history("SPX")


def synthetic_history(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.005,
            "low": close * 0.995,
            "close": close,
            "vix": rng.uniform(12, 30, n),
        },
        index=idx,
    )


def bar(history: pd.DataFrame, t: int) -> Bar:
    row = history.iloc[t]
    vix = float(row["vix"])
    return Bar(
        history.index[t], row.open, row.high, row.low, row.close, None if math.isnan(vix) else vix
    )


def test_brownian_barrier_matches_protocol() -> None:
    assert brownian_barrier(0.9) == pytest.approx(1.959964, abs=5e-7)
    for confidence in (1e-9, 1e-6, 0.999999):  # 1e-9 raised "f(a) and f(b) must have ..."
        x = brownian_barrier(confidence)
        assert brownian_stay_probability(x) == pytest.approx(confidence, rel=1e-9)
    x = brownian_barrier(0.9)
    # Reflection: P(sup|W| ≥ x) ≤ 2·P(sup W ≥ x) = 4Φ(−x), equality up to double crossings.
    exit_p = 1 - brownian_stay_probability(x)
    assert exit_p <= 4 * stats.norm.sf(x)
    assert exit_p == pytest.approx(4 * stats.norm.sf(x), abs=1e-5)
    assert brownian_barrier(0.5) < brownian_barrier(0.9) < brownian_barrier(0.99)


def test_vix_rule_formula() -> None:
    hist = synthetic_history()
    hist.loc[hist.index[-1], "vix"] = 16.0
    model = VixImpliedNormal()
    model.fit(hist)
    c = float(hist["close"].iloc[-1])
    sigma = 0.16 / math.sqrt(252)
    r = model.forecast(5, 0.9)
    assert r.status.state is Status.OK
    assert r.low == pytest.approx(c * math.exp(-1.6448536269514722 * sigma * math.sqrt(5)))
    assert r.high == pytest.approx(c * math.exp(1.6448536269514722 * sigma * math.sqrt(5)))
    assert r.path_low == pytest.approx(c * math.exp(-1.959964 * sigma * math.sqrt(5)), rel=1e-6)
    assert r.center == c and r.quantiles[0.5] == pytest.approx(c)
    assert r.quantiles[0.05] == pytest.approx(r.low)


def test_vix_missing_is_degraded_and_absent_is_failed() -> None:
    hist = synthetic_history()
    model = VixImpliedNormal()
    model.fit(hist)
    model.update(Bar(hist.index[-1] + pd.offsets.BDay(), 1, 1, 1, float(hist.close.iloc[-1])))
    r = model.forecast(1)
    assert r.status.state is Status.DEGRADED and r.usable
    no_vix = hist.assign(vix=np.nan)
    model.fit(no_vix)
    r = model.forecast(1)
    assert r.status.state is Status.FAILED and "VIX" in r.status.reason


@pytest.mark.parametrize(
    "factory", [VixImpliedNormal, HistoricalVolNormal, EwmaNormal], ids=lambda f: f.__name__
)
def test_update_equals_refit(factory: type) -> None:
    """fit(rows 0..t) then update(bar t+1..t+k) gives the same forecast as fit(rows 0..t+k)."""
    hist = synthetic_history()
    incremental: ForecastModel = factory()
    incremental.fit(hist.iloc[:250])
    for t in range(250, 260):
        incremental.update(bar(hist, t))
    refit: ForecastModel = factory()
    refit.fit(hist.iloc[:260])
    for h in (1, 5):
        a, b = incremental.forecast(h, 0.9), refit.forecast(h, 0.9)
        for field in ("low", "high", "path_low", "path_high"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-12)


def test_hv_and_ewma_sigma_by_hand() -> None:
    hist = synthetic_history()
    r = np.diff(np.log(hist["close"].to_numpy()))
    hv = HistoricalVolNormal(window=20)
    hv.fit(hist)
    sigma = np.std(r[-20:], ddof=1)
    c = float(hist["close"].iloc[-1])
    assert hv.forecast(1).high == pytest.approx(c * math.exp(1.6448536269514722 * sigma))
    ewma = EwmaNormal(lam=0.94, init=20)
    ewma.fit(hist)
    var = np.mean(r[:20] ** 2)
    for x in r:
        var = 0.94 * var + 0.06 * x * x
    assert ewma.forecast(1).high == pytest.approx(c * math.exp(1.6448536269514722 * math.sqrt(var)))


def test_bad_bar_leaves_state_unchanged() -> None:
    hist = synthetic_history()
    for model in (HistoricalVolNormal(), EwmaNormal()):
        model.fit(hist)
        before = model.forecast(1)
        with pytest.raises(ValueError, match="close"):
            model.update(Bar(hist.index[-1], 1, 1, 1, float("nan")))
        assert model.forecast(1) == before


def test_vix_baseline_reproduces_protocol_numbers() -> None:
    """QUALITY-PROTOCOL: VIX-implied normal, 2015–2018, IS % 3.531 / 4.089 / 8.183 / 9.846.

    The rule is deterministic, so the only slack is the protocol's 3-decimal rounding.
    """
    result = walk_forward({"vix": VixImpliedNormal}, arch_history())
    expected: dict[tuple[int, Kind], float] = {
        (1, "close"): 3.531,
        (1, "path"): 4.089,
        (5, "close"): 8.183,
        (5, "path"): 9.846,
    }
    for (h, kind), value in expected.items():
        row = result.scores[h][kind].row("vix")
        assert row.interval_score == pytest.approx(value, abs=0.0006), (h, kind)
        assert row.cover == pytest.approx(96.0, abs=1.0)  # "over-covers at ~96%"
        assert not row.calibrated
    assert result.scores[1]["close"].row("vix").n == 1005
    assert result.scores[5]["close"].row("vix").n == 1001
    assert result.failures == {"vix": 0}
