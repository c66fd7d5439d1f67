"""User errors of ``markov forecast`` / ``ensemble`` / ``validate``: one line on stderr
(``markov <command>: ...``) and a non-zero exit code, never a traceback, and the
validation's arguments all checked before the (minutes long) walk starts.

The tests go through :func:`stream.cli.main`, as the ``markov`` command does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.data_sources import load_history
from models.report import percent
from models.returns import MAX_STEPS
from stream import cli_models
from stream.cli import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def no_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every error here must come before the walk-forward (which takes minutes)."""

    def walk_forward(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the walk started before the arguments were checked")

    monkeypatch.setattr("models.validation.walk_forward", walk_forward)


@pytest.fixture(scope="module")
def short_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 SPX bars: too few for any member."""
    path = tmp_path_factory.mktemp("data") / "short.csv"
    load_history("SPX", 20).rename_axis("date").to_csv(path)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``markov ARGV``."""
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse: usage errors and --help
        code = exit_info.code if isinstance(exit_info.code, int) else EXIT_FAILURE
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Bug 1: an impossible window was a ValueError traceback from walk_forward.
        (["validate", "--start", "2018-06-01", "--end", "2018-01-01"],
         "markov validate: --start 2018-06-01 is after --end 2018-01-01"),
        (["validate", "--start", "2030-01-01", "--end", "2031-01-01"],
         "markov validate: no trading days with data in 2030-01-01 .. 2031-01-01: "
         "the history covers 1999-01-04 .. 2018-12-31"),
        (["validate", "--start", "2018-12-31"],
         "markov validate: no origin in 2018-12-31 .. 2018-12-31 has a close 1 trading day(s) "
         "later: the history covers 1999-01-04 .. 2018-12-31"),
        (["validate", "--backtest-days", "5", "--horizons", "5"],
         "markov validate: --backtest-days 5: must be more than the shortest horizon (5): "
         "the last 5 day(s) have no outcome yet"),
        # Bug 7: --start was silently ignored beside --backtest-days.
        (["validate", "--backtest-days", "5", "--start", "2018-01-01"],
         "markov validate: --backtest-days counts back from the end of the history: "
         "give either it or --start/--end, not both"),
        (["validate", "--backtest-days", "5", "--end", "2018-01-01"],
         "markov validate: --backtest-days counts back from the end of the history: "
         "give either it or --start/--end, not both"),
    ],
)  # fmt: skip
def test_impossible_windows_are_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == EXIT_FAILURE and out == ""
    assert one_line(err) == expected


def test_history_too_short_for_any_backtest(
    short_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bug 6: it said "at most -280 with this history".
    code, _, err = run(["validate", "--data", str(short_csv), "--backtest-days", "5"], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err) == (
        "markov validate: --backtest-days 5: the history has 20 bars, too short for a "
        "backtest: the models need about 300 bars before the first origin and 1 after it "
        "(302 in all)"
    )


@pytest.mark.parametrize("flag", ["--csv", "--plot"])
def test_output_paths_are_checked_before_the_walk(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bug 2: FileNotFoundError / IsADirectoryError tracebacks after the whole walk.
    base = ["validate", "--backtest-days", "5", flag]
    missing = tmp_path / "nonexistent_dir" / "x.png"
    code, _, err = run([*base, str(missing)], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err) == (
        f"markov validate: {flag} {missing}: {missing.parent}: no such directory"
    )
    code, _, err = run([*base, str(tmp_path)], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err) == f"markov validate: {flag} {tmp_path}: is a directory; give a file name"


def test_unwritable_output_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # os.access stands in for a read-only directory (the tests may run as root).
    monkeypatch.setattr("stream.cli.os.access", lambda *args, **kwargs: False)
    out = tmp_path / "f.csv"
    code, _, err = run(["validate", "--backtest-days", "5", "--csv", str(out)], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err) == f"markov validate: --csv {out}: not writable"


def test_a_write_failing_after_the_walk_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device", str(tmp_path / "f.csv"))

    fake = argparse.Namespace(elapsed={"ensemble": 1.0})
    monkeypatch.setattr("models.validation.walk_forward", lambda *a, **k: fake)
    monkeypatch.setattr("models.report.format_report", lambda result: "report")
    monkeypatch.setattr("models.report.write_forecasts_csv", full_disk)
    argv = ["validate", "--backtest-days", "5", "--csv", str(tmp_path / "f.csv")]
    code, _, err = run(argv, capsys)
    assert code == EXIT_FAILURE
    assert err.splitlines()[-1] == (
        f"markov validate: cannot write {tmp_path / 'f.csv'}: No space left on device"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Bug 3: argparse printed its usage block before the error.
        (["forecast", "--days", "0"],
         "markov forecast: error: argument --days: expected a positive integer, got '0' "
         "(see markov forecast --help)"),
        (["validate", "--horizons", "0"],
         "markov validate: error: argument --horizons: expected ascending positive integers, "
         "got '0' (see markov validate --help)"),
        ([], "markov: error: the following arguments are required: COMMAND (see markov --help)"),
        # Bug 9: --days 100000 was OOM-killed; the models refuse more than MAX_STEPS.
        (["forecast", "--days", str(MAX_STEPS + 1)],
         f"markov forecast: error: argument --days: expected at most {MAX_STEPS} trading days, "
         f"got '{MAX_STEPS + 1}' (see markov forecast --help)"),
        (["forecast", "--days", "100000"],
         f"markov forecast: error: argument --days: expected at most {MAX_STEPS} trading days, "
         "got '100000' (see markov forecast --help)"),
        (["validate", "--horizons", f"1,{MAX_STEPS + 1}"],
         f"markov validate: error: argument --horizons: expected horizons of at most "
         f"{MAX_STEPS}, got '1,{MAX_STEPS + 1}' (see markov validate --help)"),
    ],
)  # fmt: skip
def test_argument_errors_are_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == EXIT_USAGE and out == ""
    assert one_line(err) == expected


def test_days_up_to_max_steps_parse() -> None:
    assert cli_models._days(str(MAX_STEPS)) == MAX_STEPS
    assert cli_models._horizons(f"1,{MAX_STEPS}") == (1, MAX_STEPS)


def test_help_is_still_the_full_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["forecast", "--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: markov forecast") and "--days" in out and "--json" in out


def test_data_directory_is_not_file_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bug 8: "file not found" for a directory.
    code, _, err = run(["forecast", "--data", str(tmp_path)], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err) == (
        f"markov forecast: data error: {tmp_path}: is a directory "
        "(--data expects a CSV or Parquet file)"
    )


# Bug 4: a failed ensemble printed "ensemble range nan .. nan" and exited 0.
FAILED = (
    "SPX: forecast failed: no member produced a usable range; the history has 20 bars, "
    "the members need at least "
)


def test_failed_forecast_is_one_line_and_exit_1(
    short_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["forecast", "--data", str(short_csv)], capsys)
    assert code == EXIT_FAILURE and out == ""
    assert one_line(err).startswith(f"markov forecast: {FAILED}")


def test_failed_forecast_json_still_printed(
    short_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["forecast", "--json", "--data", str(short_csv)], capsys)
    assert code == EXIT_FAILURE
    assert one_line(err).startswith(f"markov forecast: {FAILED}")
    result = orjson.loads(out)
    assert result["status"].startswith("failed") and result["low"] is None
    assert all(m["status"].startswith("failed") for m in result["models"].values())


@pytest.mark.parametrize("json", [False, True])
def test_ensemble_exits_1_when_a_ticker_failed(
    json: bool, short_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ensemble", "--data", str(short_csv), *(["--json"] if json else [])]
    code, out, err = run(argv, capsys)
    assert code == EXIT_FAILURE
    assert one_line(err).startswith(f"markov ensemble: {FAILED}")  # the ticker once
    if json:
        assert [r["ticker"] for r in orjson.loads(out)] == ["SPX"]
    else:
        assert out == ""


def test_failure_message_reads_what_the_members_need() -> None:
    reasons = [
        "failed: fit failed: history has 20 rows; this model needs at least 101",
        "failed: fit failed: need at least 30 bars of history, got 20",
        "failed: fit failed: need at least 300 bars of history, got 20",
        "failed: usable rows per horizon [3]; need at least 50 per horizon",  # not bars
    ]
    assert cli_models._failure_message("SPX", "no member produced a usable range", 20, reasons) == (
        FAILED + "30 (300 for all of them)"
    )
    assert cli_models._failure_message("SPX", "why", 20, ["failed: NaN"]) == (
        "SPX: forecast failed: why; the history has 20 bars"
    )


@pytest.mark.parametrize(
    ("confidence", "shown"),
    [(0.9, "90"), (0.95, "95"), (0.925, "92.5"), (0.999, "99.9"), (0.9995, "99.95"),
     (0.99999, "99.999"), (0.001, "0.1")],
)  # fmt: skip
def test_confidence_is_never_rounded_to_100(confidence: float, shown: str) -> None:
    # Bug 5: --confidence 0.999 showed "confidence 100%".
    assert percent(confidence) == shown
    result = {
        "ticker": "SPX", "close": 100.0, "as_of": "2018-12-31", "horizon": 5,
        "confidence": confidence, "vix": None, "regime": "low", "low": 90.0, "high": 110.0,
        "center": 100.0, "path_low": None, "path_high": None, "status": "ok", "models": {},
    }  # fmt: skip
    header = cli_models.format_forecast(result).splitlines()[0]
    assert f"confidence {shown}%  " in header


def test_a_reader_that_went_away_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # `markov ensemble --json | head`: the write fails with EPIPE once head has exited.
    def write_to_a_closed_pipe(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli_models, "cmd_ensemble", write_to_a_closed_pipe)
    assert main(["ensemble"]) == EXIT_BROKEN_PIPE
    assert capfd.readouterr().err == ""
