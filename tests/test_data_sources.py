"""Historical data sources: the canonical frame from each source, and one clear line for
every way data can be missing or wrong."""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from connectors.data_sources import (
    DataSourceError,
    FileSource,
    YFinanceSource,
    available_data,
    get_source,
    load_history,
    validate_history,
)
from models.base import HISTORY_COLUMNS


def one_line(exc_info: pytest.ExceptionInfo[DataSourceError]) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    assert message.startswith("data error: ")
    return message


def assert_canonical(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == HISTORY_COLUMNS
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "date"
    assert frame.index.tz is None
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert (frame.index == frame.index.normalize()).all()
    assert (frame.dtypes == np.float64).all()
    ohlc = frame[["open", "high", "low", "close"]]
    assert ohlc.notna().all().all() and (ohlc > 0).all().all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return load_history("SPX")


# --- bundled -----------------------------------------------------------------------------


def test_bundled_spx_is_the_arch_sp500(spx: pd.DataFrame) -> None:
    assert_canonical(spx)
    assert len(spx) == 5031
    assert spx.index[0] == pd.Timestamp("1999-01-04")
    assert spx.index[-1] == pd.Timestamp("2018-12-31")


def test_bundled_matches_archs_own_loaders(spx: pd.DataFrame) -> None:
    """The bundled source reads arch's files without importing arch; same data as load()."""
    from arch.data import sp500, vix

    prices = sp500.load()
    for ours, theirs in (("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close")):
        np.testing.assert_array_equal(spx[ours].to_numpy(), prices[theirs].to_numpy())
    np.testing.assert_array_equal(
        spx.index.to_numpy(), pd.DatetimeIndex(prices.index).as_unit("ns").to_numpy()
    )
    expected_vix = vix.load()["vix"].reindex(prices.index).to_numpy()
    np.testing.assert_array_equal(spx["vix"].to_numpy(), expected_vix)


def test_bundled_vix_is_aligned_by_date(spx: pd.DataFrame) -> None:
    before = spx.loc[:"2014-01-02", "vix"]
    during = spx.loc["2014-01-03":, "vix"]
    assert before.isna().all()
    # The VIX file's 46 NaN rows are exchange holidays, none of them S&P sessions, so every
    # S&P session from the VIX's first date on has a VIX close.
    assert during.notna().all()
    assert len(during) == 1257
    assert spx.loc["2018-12-31", "vix"] == 25.42
    assert spx.loc["2014-01-03", "vix"] == 13.76


@pytest.mark.parametrize("ticker", ["SPX", "spx", "^GSPC", "^spx", "SP500"])
def test_bundled_aliases(ticker: str) -> None:
    assert len(load_history(ticker, 3)) == 3


def test_days_back_and_end_select_the_last_sessions() -> None:
    frame = load_history("SPX", 10, end="2016-07-04")  # a holiday: the last session is 07-01
    assert_canonical(frame)
    assert len(frame) == 10
    assert frame.index[-1] == pd.Timestamp("2016-07-01")
    assert frame.index[0] == pd.Timestamp("2016-06-20")  # 10 sessions: 06-20..07-01
    same = load_history("SPX", 10, end=pd.Timestamp("2016-07-04 15:30", tz="US/Eastern"))
    pd.testing.assert_frame_equal(frame, same)


def test_days_back_beyond_the_data_returns_all_of_it() -> None:
    assert len(load_history("SPX", 100_000)) == 5031
    assert len(load_history("SPX", 100_000, end="1999-01-08")) == 5


def test_frames_are_copies() -> None:
    first = load_history("SPX", 5)
    first.iloc[0, 0] = -1.0
    assert (load_history("SPX", 5)["open"] > 0).all()


def test_unknown_ticker_says_what_is_available_and_how_to_add() -> None:
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPY")
    message = one_line(exc_info)
    assert "'SPY'" in message
    assert "SPX (S&P 500 daily OHLC 1999-01-04..2018-12-31" in message
    assert "--data FILE" in message and "date, open, high, low, close" in message
    assert "pip install yfinance" in message
    assert "SPX" in available_data() and "--data FILE" in available_data()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"ticker": "SPX", "days_back": 0}, "days_back: must be an integer >= 1, got 0"),
        ({"ticker": "SPX", "days_back": -5}, "days_back: must be an integer >= 1, got -5"),
        ({"ticker": "SPX", "days_back": 2.5}, "days_back: must be an integer >= 1, got 2.5"),
        ({"ticker": "SPX", "days_back": True}, "days_back: must be an integer >= 1, got True"),
        ({"ticker": ""}, "ticker: expected a symbol such as SPX, got ''"),
        (
            {"ticker": "SPX", "source": "web"},
            "source: must be one of bundled, file, yfinance, auto, got 'web'",
        ),
        (
            {"ticker": "SPX", "end": "someday"},
            "end: not a date: 'someday' (expected e.g. 2018-06-29)",
        ),
        (
            {"ticker": "SPX", "end": "1998-12-31"},
            "no SPX data on or before 1998-12-31 in the bundled source",
        ),
        (
            {"ticker": "SPX", "source": "file"},
            "source 'file' needs a path: --data FILE (CSV or Parquet with columns date, open, "
            "high, low, close (optional: vix))",
        ),
        (
            {"ticker": "SPX", "source": "bundled", "path": "x.csv"},
            "path 'x.csv' given, but source is 'bundled' (use 'file')",
        ),
    ],
)
def test_bad_arguments_are_one_line(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(DataSourceError) as exc_info:
        load_history(**kwargs)
    assert one_line(exc_info) == f"data error: {expected}"


# --- file --------------------------------------------------------------------------------


def test_csv_round_trip_of_the_canonical_frame(tmp_path: Path) -> None:
    frame = load_history("SPX", 300, end="2014-03-31")  # spans the VIX start: some NaN
    path = tmp_path / "spx.csv"
    frame.to_csv(path)
    back = load_history("SPX", path=path)
    assert_canonical(back)
    pd.testing.assert_frame_equal(back, frame)
    assert back["vix"].isna().sum() == frame["vix"].isna().sum() > 0


def test_csv_with_yahoo_spellings_unsorted_and_no_vix(tmp_path: Path) -> None:
    frame = load_history("SPX", 50)
    yahoo = frame.drop(columns="vix").rename(columns=str.capitalize).rename_axis("Date")
    yahoo["Adj Close"] = yahoo["Close"] * 0.9  # ignored while Close is present
    yahoo["Volume"] = 1_000
    path = tmp_path / "yahoo.csv"
    yahoo.iloc[::-1].to_csv(path)  # newest first, as some exports are
    back = FileSource(path).load("ANYTHING")
    assert_canonical(back)
    pd.testing.assert_frame_equal(back[["open", "high", "low", "close"]], frame.drop(columns="vix"))
    assert back["vix"].isna().all()


def test_csv_with_an_unnamed_date_index(tmp_path: Path) -> None:
    frame = load_history("SPX", 5)
    path = tmp_path / "unnamed.csv"
    frame.rename_axis(None).to_csv(path)
    pd.testing.assert_frame_equal(load_history("SPX", path=path), frame)


def test_adj_close_stands_in_when_there_is_no_close(tmp_path: Path) -> None:
    path = tmp_path / "adj.csv"
    path.write_text(
        "DATE,OPEN,HIGH,LOW,Adj_Close\n2020-01-02,10,12,9,11\n2020-01-03,11,11.5,10,10.5\n"
    )
    back = load_history("X", source="file", path=path)
    assert back["close"].tolist() == [11.0, 10.5]


def test_ticker_column_selects_rows(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text(
        "symbol,date,open,high,low,close,VIX\n"
        "AAA,2020-01-02,10,12,9,11,13.5\n"
        "BBB,2020-01-02,20,22,19,21,13.5\n"
        "AAA,2020-01-03,11,11.5,10,10.5,14\n"
    )
    aaa = load_history("aaa", path=path)
    assert aaa["close"].tolist() == [11.0, 10.5]
    assert aaa["vix"].tolist() == [13.5, 14.0]
    with pytest.raises(DataSourceError) as exc_info:
        load_history("CCC", path=path)
    assert one_line(exc_info) == f"data error: {path}: no rows for ticker 'CCC'; file has: AAA, BBB"


HEADER = "date,open,high,low,close\n"
GOOD = "2020-01-02,10,12,9,11\n"
BAD_ROWS = [
    (GOOD + "2020-01-03,11,,10,10.5\n", "line 3 (2020-01-03): high is missing (NaN)"),
    (
        GOOD + "2020-01-03,11,12,11.2,10.5\n",
        "line 3 (2020-01-03): low above min(open, close) (open 11, high 12, low 11.2, close 10.5)",
    ),
    (
        GOOD + "2020-01-03,11,10.9,10,10.5\n",
        "line 3 (2020-01-03): high below max(open, close) (open 11, high 10.9, low 10, close 10.5)",
    ),
    (GOOD + "2020-01-03,-11,12,-12,10.5\n", "line 3 (2020-01-03): open must be > 0 (open = -11)"),
    (GOOD + "2020-01-03,11,12,abc,10.5\n", "line 3: low is not a number: 'abc'"),
    (GOOD + "03/13/2020x,11,12,10,10.5\n", "line 3: not a date: '03/13/2020x'"),
    (GOOD + GOOD, "date 2020-01-02 appears more than once (daily bars expected: one row per date)"),
    (GOOD + "2020-01-03,11,12,10,inf\n", "line 3 (2020-01-03): close is infinite"),
]


@pytest.mark.parametrize(("rows", "expected"), BAD_ROWS, ids=[e for _, e in BAD_ROWS])
def test_bad_rows_are_named(tmp_path: Path, rows: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(DataSourceError) as exc_info:
        load_history("X", path=path)
    assert one_line(exc_info) == f"data error: {path}: {expected}"


def test_bad_vix_is_named(tmp_path: Path) -> None:
    path = tmp_path / "vix.csv"
    path.write_text(
        "date,open,high,low,close,vix\n2020-01-02,10,12,9,11,\n2020-01-03,11,12,10,11,-3\n"
    )
    with pytest.raises(DataSourceError) as exc_info:
        load_history("X", path=path)
    assert (
        one_line(exc_info) == f"data error: {path}: line 3 (2020-01-03): vix must be > 0 (vix = -3)"
    )


def test_bad_columns_say_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("when,price\n2020-01-02,10\n")
    with pytest.raises(DataSourceError) as exc_info:
        load_history("X", path=path)
    assert one_line(exc_info) == (
        f"data error: {path}: missing column(s) date, open, high, low, close; expected date, "
        "open, high, low, close (optional: vix) (any case; Adj Close accepted for close); the "
        "file has: when, price"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as exc_info:
        load_history("X", path=tmp_path / "nope.csv")
    expected = "file not found (--data expects a CSV or Parquet file)"
    assert one_line(exc_info) == f"data error: {tmp_path / 'nope.csv'}: {expected}"


def test_empty_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataSourceError) as exc_info:
        load_history("X", path=path)
    assert one_line(exc_info) == f"data error: {path}: cannot read: No columns to parse from file"


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip_of_the_canonical_frame(tmp_path: Path, suffix: str) -> None:
    frame = load_history("SPX", 300, end="2014-03-31")  # spans the VIX start: some NaN
    path = tmp_path / f"spx{suffix}"
    frame.to_parquet(path)  # the date index is stored as a column by pyarrow
    back = load_history("SPX", path=path)
    assert_canonical(back)
    pd.testing.assert_frame_equal(back, frame)


def test_parquet_with_a_date_column_and_yahoo_spellings(tmp_path: Path) -> None:
    frame = load_history("SPX", 50)
    yahoo = frame.drop(columns="vix").rename(columns=str.capitalize).rename_axis("Date")
    path = tmp_path / "yahoo.parquet"
    yahoo.reset_index().iloc[::-1].to_parquet(path)  # default RangeIndex, newest first
    back = FileSource(path).load("ANYTHING")
    assert_canonical(back)
    pd.testing.assert_frame_equal(back[["open", "high", "low", "close"]], frame.drop(columns="vix"))


def test_corrupt_parquet_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPX", path=path)
    assert one_line(exc_info).startswith(f"data error: {path}: cannot read: ")


def test_parquet_without_pyarrow_says_pip_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_pyarrow(name: str, *args: Any) -> Any:
        return None if name == "pyarrow" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_pyarrow)
    path = tmp_path / "spx.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPX", path=path)
    assert one_line(exc_info) == (
        f"data error: {path}: reading Parquet needs pyarrow: pip install pyarrow "
        "(or save the data as CSV)"
    )


# --- yfinance (optional extra; faked here: not installed, and no network) -----------------


def test_yfinance_absent_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    assert not YFinanceSource().available()
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPY", 30, source="yfinance")
    assert one_line(exc_info) == (
        "data error: yfinance is not installed: pip install yfinance (or use --data "
        "FILE with columns date, open, high, low, close (optional: vix))"
    )


def test_auto_falls_back_to_bundled_error_without_yfinance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)
    assert len(load_history("SPX", 5, source="auto")) == 5
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPY", source="auto")
    assert "no bundled data for ticker 'SPY'" in one_line(exc_info)


def fake_yfinance(download: Any) -> types.ModuleType:
    module = types.ModuleType("yfinance")
    module.download = download  # type: ignore[attr-defined]
    return module


def test_yfinance_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise ConnectionError("Failed to resolve 'query2.finance.yahoo.com'\nmore detail")

    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance(offline))
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPY", 30, source="yfinance")
    assert one_line(exc_info) == (
        "data error: yfinance could not download 'SPY': Failed to resolve "
        "'query2.finance.yahoo.com' (offline? use --data FILE (CSV/Parquet with columns date, "
        "open, high, low, close (optional: vix)))"
    )


def test_yfinance_empty_answer_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance(lambda *a, **k: pd.DataFrame()))
    with pytest.raises(DataSourceError) as exc_info:
        load_history("NOPE", source="yfinance")
    assert "yfinance returned no data for 'NOPE': unknown ticker, or offline?" in one_line(exc_info)


def test_yfinance_offline_noise_stays_off_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # yfinance 1.7 offline: a dozen lines of its own logging, prints and pandas warnings
    # before markov's line. Now only markov's line, with yfinance's reason in it.
    def offline(*args: Any, **kwargs: Any) -> pd.DataFrame:
        log = logging.getLogger("yfinance")
        log.error("Cookie/crumb fetch failed (DNSError), continuing without crumb")
        print("some progress", file=sys.stderr)
        warnings.warn("The inplace keyword is deprecated", DeprecationWarning, stacklevel=1)
        log.error("\n1 Failed download:\n['SPY']: DNSError('Could not resolve host')")
        return pd.DataFrame()

    handlers = logging.getLogger("yfinance").handlers[:]
    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance(offline))
    with pytest.raises(DataSourceError) as exc_info:
        load_history("SPY", 30, source="yfinance")
    assert one_line(exc_info).startswith(
        "data error: yfinance returned no data for 'SPY': ['SPY']: DNSError('Could not resolve "
        "host') (offline? use --data FILE"
    )
    assert capsys.readouterr() == ("", "")
    assert logging.getLogger("yfinance").handlers == handlers  # put back as it was


def test_yfinance_multiindex_answer_becomes_canonical(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recent yfinance returns (field, ticker) columns and a Date index; VIX from ^VIX."""
    spx = load_history("SPX", 40, end="2018-06-29")
    calls: list[dict[str, Any]] = []

    def download(ticker: str, **kwargs: Any) -> pd.DataFrame:
        calls.append({"ticker": ticker, **kwargs})
        if ticker == "^VIX":
            fields = {"Close": spx["vix"], "Open": spx["vix"]}
        else:
            fields = {name.capitalize(): spx[name] for name in ("open", "high", "low", "close")}
            fields["Adj Close"] = spx["close"]
        data = pd.DataFrame({(name, ticker): col for name, col in fields.items()})
        data.columns = pd.MultiIndex.from_tuples(
            [(name, ticker) for name in fields], names=["Price", "Ticker"]
        )
        return data.rename_axis("Date")

    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance(download))
    got = load_history("SPY", 20, source="yfinance", end="2018-06-29")
    assert_canonical(got)
    pd.testing.assert_frame_equal(got, spx.iloc[-20:])
    assert [c["ticker"] for c in calls] == ["SPY", "^VIX"]
    assert calls[0]["end"] == "2018-06-30"  # yfinance's end is exclusive
    assert calls[0]["auto_adjust"] is False
    assert pd.Timestamp(calls[0]["start"]) <= spx.index[-20]


def test_get_source_picks_by_arguments(tmp_path: Path) -> None:
    assert get_source("SPX").name == "bundled"
    assert get_source("SPX", path=tmp_path / "x.csv").name == "file"
    assert get_source("SPX", "auto", tmp_path / "x.csv").name == "file"
    assert get_source("SPY", "yfinance").name == "yfinance"


# --- the canonical check on its own ------------------------------------------------------


def test_validate_history_makes_tz_aware_dates_naive() -> None:
    index = pd.DatetimeIndex(["2020-01-03 16:00", "2020-01-02 16:00"], tz="America/New_York")
    frame = pd.DataFrame(
        {
            "open": [11.0, 10.0],
            "high": [12.0, 12.0],
            "low": [10.0, 9.0],
            "close": [10.5, 11.0],
            "vix": [np.nan, 14.0],
        },
        index=index,
    )
    out = validate_history(frame, "test")
    assert_canonical(out)
    assert list(out.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    assert out["close"].tolist() == [11.0, 10.5]


def test_validate_history_names_a_missing_column() -> None:
    frame = pd.DataFrame(
        {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0]},
        index=pd.DatetimeIndex(["2020-01-02"]),
    )
    with pytest.raises(DataSourceError) as exc_info:
        validate_history(frame, "X (test)")
    assert one_line(exc_info) == "data error: X (test): missing column(s) vix"
