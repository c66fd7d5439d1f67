"""Walk-forward engine (§2), look-ahead verification, and the report outputs (§5)."""

from __future__ import annotations

import gzip
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType

import numpy as np
import pandas as pd
import pytest

from connectors.data_sources import load_history
from models.base import Bar, FitResult, PriceRange, Status
from models.baselines import EwmaNormal, HistoricalVolNormal, VixImpliedNormal
from models.report import (
    CSV_COLUMNS,
    forecasts_to_frame,
    format_report,
    plot_forecasts,
    read_forecasts_csv,
    write_forecasts_csv,
)
from models.validation import (
    ValidationResult,
    look_ahead_check,
    origin_positions,
    perturb_after,
    realised_outcomes,
    walk_forward,
)


def arch_history() -> pd.DataFrame:
    """S&P 500 OHLC 1999–2018 with the VIX close aligned (NaN before 2014-01-03)."""
    return load_history("SPX")


# --------------------------------------------------------------------------- toy models


class Recorder:
    """Records every call; forecasts a fixed ±1% band around the last close."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, pd.Timestamp, int]] = []
        self.last_close = math.nan
        self.seen: list[pd.DataFrame] = []

    def fit(self, history: pd.DataFrame) -> FitResult:
        self.calls.append(("fit", history.index[-1], len(history)))
        self.seen.append(history)
        self.last_close = float(history["close"].iloc[-1])
        return FitResult(self.name, {})

    def update(self, bar: Bar) -> None:
        self.calls.append(("update", bar.ts, 1))
        self.last_close = bar.close

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        c = self.last_close
        return PriceRange(self.name, steps, confidence, c, 0.99 * c, 1.01 * c, c)


class Flaky(Recorder):
    """Fit raises on the 2nd block, forecast raises for h=5 every 7th call."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.fits = 0
        self.forecasts = 0

    def fit(self, history: pd.DataFrame) -> FitResult:
        self.fits += 1
        if self.fits == 2:
            raise RuntimeError("optimizer exploded")
        return super().fit(history)

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        self.forecasts += 1
        if steps == 5 and self.forecasts % 7 == 0:
            raise ValueError("no forecast today")
        return super().forecast(steps, confidence)


class NeverFits(Recorder):
    name = "never"

    def fit(self, history: pd.DataFrame) -> FitResult:
        raise RuntimeError("cannot fit")


class PeeksAtTomorrow(Recorder):
    """Leaky on purpose: finds the engine's full history up the call stack and centres its
    band on tomorrow's close. Only the look-ahead check can notice this."""

    name = "peeker"

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
                c = float(full["close"].iloc[self.rows])  # tomorrow's close
                return PriceRange(self.name, steps, confidence, c, 0.99 * c, 1.01 * c, c)
            frame = frame.f_back
        return super().forecast(steps, confidence)


class Noisy(Recorder):
    """Non-deterministic: unseeded noise in the forecast."""

    name = "noisy"

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        c = self.last_close * (1 + 1e-3 * np.random.default_rng().standard_normal())
        return PriceRange(self.name, steps, confidence, c, 0.99 * c, 1.01 * c, c)


def small_history(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.bdate_range("2017-12-01", periods=n)
    return pd.DataFrame(
        {
            "open": close,
            "high": close * (1 + rng.uniform(0, 0.01, n)),
            "low": close * (1 - rng.uniform(0, 0.01, n)),
            "close": close,
            "vix": rng.uniform(12, 30, n),
        },
        index=idx,
    )


# --------------------------------------------------------------------------- origins


def test_origins_match_protocol() -> None:
    hist = arch_history()
    h1 = origin_positions(hist, "2015-01-01", "2018-12-31", 1)
    h5 = origin_positions(hist, "2015-01-01", "2018-12-31", 5)
    assert h1.size == 1005 and h5.size == 1001
    assert hist.index[h1[0]] == pd.Timestamp("2015-01-02")
    assert hist.index[h1[-1]] == pd.Timestamp("2018-12-28")
    assert hist.index[h5[-1]] == pd.Timestamp("2018-12-21")


def test_realised_outcomes_by_hand() -> None:
    hist = small_history()
    out = realised_outcomes(hist, np.array([3, 10]), 5)
    assert out["close"].iloc[0] == hist["close"].iloc[8]
    assert out["path_min"].iloc[0] == hist["low"].iloc[4:9].min()
    assert out["path_max"].iloc[1] == hist["high"].iloc[11:16].max()
    assert list(out.index) == [hist.index[3], hist.index[10]]


# --------------------------------------------------------------------------- schedule


def test_schedule_and_information_set() -> None:
    hist = small_history()
    models: list[Recorder] = []

    def factory() -> Recorder:
        models.append(Recorder())
        return models[-1]

    result = walk_forward(
        {"rec": factory}, hist, start="2018-01-01", end="2018-12-31", horizons=(1, 5)
    )
    (model,) = models
    origins = origin_positions(hist, "2018-01-01", "2018-12-31", 1)
    assert len(model.calls) == origins.size
    for i, (verb, ts, rows) in enumerate(model.calls):
        t = origins[i]
        assert ts == hist.index[t]  # the origin's own bar, never a later one
        if i % 5 == 0:
            assert verb == "fit" and rows == t + 1  # everything up to and including t
        else:
            assert verb == "update"
    # The information set is a copy: no memory shared with the engine's history.
    for seen in model.seen:
        assert not np.shares_memory(seen["close"].to_numpy(), hist["close"].to_numpy())
    frame = result.forecasts["rec"][1]
    assert len(frame) == origins.size
    np.testing.assert_allclose(frame["close_hi"], 1.01 * frame["anchor"])
    assert len(result.forecasts["rec"][5]) == origins.size - 4
    assert frame["path_lo"].isna().all()
    assert not result.scores[1]["path"].row("rec").available


def test_failures_are_recorded_and_the_run_goes_on() -> None:
    hist = small_history()
    result = walk_forward(
        {"flaky": Flaky, "never": NeverFits, "rec": Recorder},
        hist,
        start="2018-01-01",
        end="2018-12-31",
    )
    flaky1, flaky5 = result.forecasts["flaky"][1], result.forecasts["flaky"][5]
    # The failed refit (2nd block) keeps the last good state: degraded, not failed.
    assert flaky1["status"].iloc[5] == Status.DEGRADED.value
    assert "optimizer exploded" in flaky1["reason"].iloc[5]
    assert np.isfinite(flaky1["close_lo"].iloc[5])
    failed5 = flaky5["status"] == Status.FAILED.value
    assert failed5.any() and flaky5.loc[failed5, "close_lo"].isna().all()
    assert result.failures["flaky"] == int(failed5.sum())
    never = result.forecasts["never"][1]
    assert (never["status"] == Status.FAILED.value).all()
    assert "cannot fit" in never["reason"].iloc[0]
    assert result.scores[1]["close"].row("never").n == 0
    assert result.scores[1]["close"].row("rec").n == len(never)


def test_progress_callback_counts_every_origin() -> None:
    hist = small_history()
    calls: list[tuple[str, int, int]] = []
    walk_forward(
        {"a": Recorder, "b": Recorder},
        hist,
        start="2018-01-01",
        end="2018-12-31",
        progress=lambda m, d, t: calls.append((m, d, t)),
    )
    n = origin_positions(hist, "2018-01-01", "2018-12-31", 1).size
    assert [d for _, d, _ in calls] == list(range(1, 2 * n + 1))
    assert {t for _, _, t in calls} == {2 * n}
    assert [m for m, _, _ in calls] == ["a"] * n + ["b"] * n


def test_bad_arguments_name_the_field() -> None:
    hist = small_history()
    with pytest.raises(ValueError, match=r"history: missing column\(s\) vix"):
        walk_forward({"r": Recorder}, hist.drop(columns="vix"))
    with pytest.raises(ValueError, match="confidence"):
        walk_forward({"r": Recorder}, hist, start="2018-01-01", confidence=1.5)
    with pytest.raises(ValueError, match="no origins"):
        walk_forward({"r": Recorder}, hist, start="2030-01-01", end="2030-12-31")


# --------------------------------------------------------------------------- look-ahead


def _check_positions(hist: pd.DataFrame) -> tuple[list[int], list[int]]:
    window = origin_positions(hist, "2015-01-01", "2018-12-31", 5)
    origins = np.linspace(window[0], window[-1], 12).astype(int).tolist()
    # Cuts at a fit origin (index 0 and 5 of the list: reached by fit alone), at an update
    # origin (8) and between origins, so both verbs and the engine's slicing are checked.
    cuts = [origins[0], origins[5], origins[8], origins[10] + 1]
    return origins, cuts


@pytest.mark.parametrize(
    "factory", [VixImpliedNormal, HistoricalVolNormal, EwmaNormal], ids=lambda f: f.__name__
)
def test_look_ahead_check_passes_for_baselines(factory: type) -> None:
    hist = arch_history()
    origins, cuts = _check_positions(hist)
    report = look_ahead_check(factory, hist, origins, cuts, seed=11)
    assert report.passed, report.violations
    assert report.max_diff_before <= 1e-9
    assert all(report.changed_after.values())


def test_look_ahead_check_catches_a_peeking_model() -> None:
    hist = arch_history()
    origins, cuts = _check_positions(hist)
    report = look_ahead_check(PeeksAtTomorrow, hist, origins, cuts, seed=11)
    assert not report.passed
    # The origin right at each cut saw the replaced row cut + 1.
    assert any("changed after rows" in v for v in report.violations)
    assert report.max_diff_before > 1e-9


def test_look_ahead_check_catches_non_determinism() -> None:
    hist = small_history(120)
    report = look_ahead_check(Noisy, hist, [50, 60, 70, 80], [65], seed=1)
    assert not report.passed


def test_look_ahead_check_flags_a_vacuous_run() -> None:
    hist = small_history(120)
    # Every origin is at or before the cut: nothing after it could change.
    report = look_ahead_check(Recorder, hist, [50, 60], [100], seed=1)
    assert not report.passed and "vacuous" in report.violations[0]


def test_perturb_after_keeps_prefix_and_valid_bars() -> None:
    hist = arch_history()
    cut = len(hist) - 300
    out = perturb_after(hist, cut, np.random.default_rng(0))
    pd.testing.assert_frame_equal(out.iloc[: cut + 1], hist.iloc[: cut + 1])
    tail, orig = out.iloc[cut + 1 :], hist.iloc[cut + 1 :]
    assert (tail["close"] != orig["close"]).all() and (tail["vix"] != orig["vix"]).all()
    assert (tail["low"] <= tail[["open", "close"]].min(axis=1)).all()
    assert (tail["high"] >= tail[["open", "close"]].max(axis=1)).all()


# --------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def small_result() -> ValidationResult:
    return walk_forward(
        {"vix": VixImpliedNormal, "hv20": HistoricalVolNormal, "rec": Recorder},
        arch_history(),
        start="2018-01-01",
        end="2018-12-31",
    )


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_round_trip(small_result: ValidationResult, tmp_path: Path, suffix: str) -> None:
    path = write_forecasts_csv(small_result, tmp_path / f"forecasts{suffix}")
    if suffix.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            header = fh.readline().strip()
    else:
        header = path.read_text().splitlines()[0]
    assert header == ",".join(CSV_COLUMNS)
    back = read_forecasts_csv(path)
    expected = forecasts_to_frame(small_result)
    n1 = origin_positions(arch_history(), "2018-01-01", "2018-12-31", 1).size
    assert len(back) == 3 * (n1 + n1 - 4)  # one row per method, origin and horizon
    assert list(back["origin"].dt.strftime("%Y-%m-%d")) == list(expected["origin"])
    assert back["method"].tolist() == expected["method"].tolist()
    assert back["h"].tolist() == expected["h"].tolist()
    for col in ("close_lo", "close_hi", "path_lo", "path_hi"):
        np.testing.assert_allclose(back[col], expected[col], atol=5e-7)
    # The toy has no path range: the fields are empty in the file.
    assert back.loc[back["method"] == "rec", "path_lo"].isna().all()


def test_text_report_marks_uncalibrated(small_result: ValidationResult) -> None:
    text = format_report(small_result)
    for h in (1, 5):
        assert f"h={h} close interval" in text and f"h={h} path range" in text
    rec = small_result.scores[1]["close"].row("rec")
    assert not rec.calibrated  # ±1% is too narrow for 2018
    assert f"{rec.cover:.2f}*" in text
    assert "Christ p" in text and "HAC p" in text and "n/a" in text
    assert "change of the mean IS" not in text  # no ensemble walked: no such section


def test_report_header_states_the_confidence_and_its_band(
    small_result: ValidationResult,
) -> None:
    assert (
        format_report(small_result)
        .splitlines()[0]
        .startswith(
            "Walk-forward 2018-01-01 .. 2018-12-31, confidence 90%; * = coverage outside 90 ± 2 pp;"
        )
    )
    other = replace(small_result, confidence=0.999)
    assert "confidence 99.9%; * = coverage outside 99.9 ± 2 pp;" in format_report(other)


def test_text_report_average_change_against_each_method(small_result: ValidationResult) -> None:
    text = format_report(small_result, reference="vix")
    section = text[text.index("vix: change of the mean IS") :]
    header = section.splitlines()[1].split()
    assert header[:3] == ["vix", "vs", "h=1"] and header[-4:] == ["average", "s.e.", "DM", "p"]
    rows = {line.split()[0]: line.split() for line in section.splitlines()[3:]}
    # "rec" has no path range, so it is not scored in every table and has no row.
    assert set(rows) == {"hv20"}
    close1 = small_result.scores[1]["close"]
    expected = 100 * (close1.row("vix").interval_score / close1.row("hv20").interval_score - 1)
    assert rows["hv20"][1] == f"{expected:+.2f}"


def test_plot_writes_png(small_result: ValidationResult, tmp_path: Path) -> None:
    for kind in ("close", "path"):
        path = plot_forecasts(small_result, "vix", 1, tmp_path / f"vix_{kind}.png", kind=kind)
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="method"):
        plot_forecasts(small_result, "nope", 1, tmp_path / "x.png")
