"""Every member under the same bad input: the contract of models/base.py, checked alike.

Each member, as the ensemble builds it, on the real bundled data: an unsorted history is
refused, a history without a ``vix`` column is taken as "no VIX", a bad bar is refused with
the state unchanged, absurd horizons are refused, forecasting before ``fit`` gives a failed
range, and the quantiles are keyed by their round levels.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import cache, lru_cache

import pandas as pd
import pytest

from config.loader import ConfigLoader
from config.schema import MODEL_NAMES
from connectors.data_sources import load_history
from models.base import Bar, ForecastModel, Status
from models.registry import build_member
from models.returns import MAX_STEPS
from models.validation import bar_at


@lru_cache(maxsize=1)
def _history() -> pd.DataFrame:
    return load_history("SPX", 700)


def _member(name: str) -> ForecastModel:
    return build_member(name, ConfigLoader.default())


@cache
def _fitted_state(name: str) -> tuple[ForecastModel, pd.DataFrame]:
    history = _history()
    model = _member(name)
    model.fit(history.iloc[:-1])
    return model, history


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_an_unsorted_or_duplicated_history_is_refused(name: str) -> None:
    history = _history()
    n, last, before = len(history), history.index[-1], history.index[-2]
    # The first offending row is named (the README's contract: "refused naming the row").
    with pytest.raises(
        ValueError, match=re.escape(f"row 1 ({before}) is not after row 0 ({last})")
    ):
        _member(name).fit(history.iloc[::-1])
    with pytest.raises(ValueError, match=re.escape(f"row {n} ({last}) is not after row {n - 1}")):
        _member(name).fit(pd.concat([history, history.iloc[-1:]]))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_bad_price_in_the_history_names_its_row(name: str) -> None:
    bad = _history().copy()
    bad.loc[bad.index[400], "close"] = math.nan
    with pytest.raises(
        ValueError, match=f"'close' must be finite and > 0; bad value at {bad.index[400]}"
    ):
        _member(name).fit(bad)
    bad = _history().copy()
    bad.loc[bad.index[400], "low"] = -1.0
    with pytest.raises(ValueError, match="'low' must be > 0 or NaN"):
        _member(name).fit(bad)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_history_without_a_vix_column_means_no_vix(name: str) -> None:
    model = _member(name)
    model.fit(_history().drop(columns="vix"))
    r = model.forecast(1)
    assert r.anchor == _history()["close"].iloc[-1]
    assert r.usable or "vix" in r.status.reason.lower() or "chain" in r.status.reason


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_bad_bar_is_refused_and_the_state_is_unchanged(name: str) -> None:
    model, history = _fitted_state(name)
    before = model.forecast(5)
    good = bar_at(history, len(history) - 1)
    old = Bar(
        history.index[-2], *(float(history[c].iloc[-2]) for c in ("open", "high", "low", "close"))
    )
    for bad in (replace(good, close=math.nan), replace(good, vix=-5.0), old):
        with pytest.raises(ValueError):
            model.update(bad)
        assert model.forecast(5) == before


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forecast_arguments_and_unfitted_members(name: str) -> None:
    model, _ = _fitted_state(name)
    for steps in (0, -1, True, 1.5, MAX_STEPS + 1):
        with pytest.raises(ValueError, match="steps must be"):
            model.forecast(steps)  # type: ignore[arg-type]
    for confidence in (0.0, 1.0, math.nan):
        with pytest.raises(ValueError, match="confidence"):
            model.forecast(1, confidence)
    unfitted = _member(name).forecast(1)
    assert unfitted.status.state is Status.FAILED and unfitted.status.reason == "not fitted"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_quantiles_are_keyed_by_their_round_levels(name: str) -> None:
    model, _ = _fitted_state(name)
    r = model.forecast(1, 0.9)
    if r.quantiles:
        assert set(r.quantiles) >= {0.05, 0.95}
        assert r.quantiles[0.05] == pytest.approx(r.low)
