"""The batch commands ``forecast``, ``ensemble``, ``validate`` (stream/cli_models.py).

The dispatcher ``stream/cli.py`` is not in this branch yet, so the tests build the parser
from ``cli_models.register`` and call the handlers directly; the errors they raise are
what the dispatcher prints as one line.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from config.loader import ConfigLoader
from connectors.data_sources import DataSourceError, load_history
from stream import cli_models

SMALL = """\
ensemble:
  models:
    - {name: tgarch, weight: 0.3}
    - {name: jump_diffusion_vix, weight: 0.3}
    - {name: delta_ukf, weight: 0.4}
data:
  default_days_back: 300
"""


@pytest.fixture(autouse=True)
def user_error(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Exception]]:
    """``stream.cli.UserError``; a stand-in with the same name until stream/cli.py lands."""
    try:
        module = importlib.import_module("stream.cli")
    except ModuleNotFoundError:
        module = types.ModuleType("stream.cli")

        class UserError(Exception):
            pass

        module.UserError = UserError  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "stream.cli", module)
    yield module.UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="markov")
    cli_models.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_warm_up_walk_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first fit walks its last 250 bars (most of `markov forecast`'s 20 s), silently.
    member = {"name": "har_quantile", "weight": 1}
    config = ConfigLoader.from_dict(
        {"ensemble": {"models": [member]}, "data": {"default_days_back": 510}}
    )
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    cli_models.forecast_ticker(config, "SPX", 1, 0.9, data=None)
    last = terminal.getvalue().rsplit("\r", 1)[-1]
    assert last.startswith("[" + "#" * 30 + "] 100.0%  SPX warm-up 250/250")
    # No walk (too short a history for one), no bar, not even its closing newline.
    terminal.seek(0)
    terminal.truncate()
    short = ConfigLoader.with_overrides(config, ["data.default_days_back=300"])
    cli_models.forecast_ticker(short, "SPX", 1, 0.9, data=None)
    assert terminal.getvalue() == ""


def test_forecast_ticker_and_its_table(small_config: Path) -> None:
    config = ConfigLoader.load(small_config)
    result = cli_models.forecast_ticker(config, "SPX", 5, 0.9, data=None)
    assert result["ticker"] == "SPX" and result["horizon"] == 5
    assert result["as_of"] == "2018-12-31"
    assert result["low"] < result["close"] < result["high"]
    assert result["path_low"] <= result["low"] and result["path_high"] >= result["high"]
    assert set(result["models"]) == {"tgarch", "jump_diffusion_vix", "delta_ukf"}
    assert sum(m["weight"] for m in result["models"].values()) == pytest.approx(1.0)
    assert "synthetic" in result["models"]["delta_ukf"]["status"]
    assert result["regime"] == "high"  # VIX 25.42 on 2018-12-31, above 18.5
    text = cli_models.format_forecast(result)
    lines = text.splitlines()
    assert lines[0].startswith("SPX  close 2506.85 on 2018-12-31  horizon 5 trading days")
    assert "VIX 25.42 (high regime)" in lines[0]
    assert lines[1].startswith("ensemble range  ")
    assert any(line.startswith("delta_ukf ") for line in lines)
    assert lines[-1] == cli_models.SYNTHETIC_NOTE
    no_chains = ConfigLoader.from_dict({"ensemble": {"models": [{"name": "tgarch", "weight": 1}]},
                                        "data": {"default_days_back": 300}})  # fmt: skip
    assert cli_models.forecast_ticker(no_chains, "SPX", 5, 0.9, data=None)["notes"] == []


def test_forecast_command_prints_json(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        ["forecast", "--days", "1", "--confidence", "0.8", "--json", "--config", str(small_config)]
    )
    assert args.handler(args) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["horizon"] == 1 and out["confidence"] == 0.8
    assert out["low"] < out["high"]
    assert out["notes"] == [cli_models.SYNTHETIC_NOTE.removeprefix("note: ")]


def test_unknown_ticker_is_one_line(small_config: Path) -> None:
    args = _parser().parse_args(["forecast", "--ticker", "NOPE", "--config", str(small_config)])
    with pytest.raises(DataSourceError) as err:
        args.handler(args)
    message = str(err.value)
    assert "NOPE" in message and "\n" not in message


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["validate", "--horizons", "5,1"], "argument --horizons: expected ascending positive"),
        (["validate", "--horizons", "1,x"], "argument --horizons: expected e.g. 1,5"),
        (["validate", "--backtest-days", "0"], "argument --backtest-days: expected a positive"),
        (["forecast", "--days", "-3"], "argument --days: expected a positive integer"),
        (["forecast", "--confidence", "1.5"], "argument --confidence: expected a number in"),
    ],
)
def test_bad_arguments_are_one_error_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0]


def test_too_many_backtest_days_is_one_line(user_error: type[Exception]) -> None:
    args = _parser().parse_args(["validate", "--backtest-days", "99999"])
    with pytest.raises(user_error) as err:
        args.handler(args)
    message = str(err.value)
    # 5031 bundled rows up to 2018-12-31, 300 kept for fitting.
    assert message.startswith("--backtest-days 99999: at most 4731 ") and "\n" not in message


def test_unknown_member_is_one_line(user_error: type[Exception]) -> None:
    args = _parser().parse_args(["validate", "--backtest-days", "3", "--models", "tgarch,nope"])
    with pytest.raises(user_error, match=r"--models: unknown \['nope'\]"):
        args.handler(args)


def _short_validate(tmp_path: Path, member: str, *extra: str) -> argparse.Namespace:
    """``markov validate`` on the last 320 SPX days, a one-member config, 4 origins at h=1."""
    data = tmp_path / "spx.csv"
    load_history("SPX", 320).rename_axis("date").to_csv(data)
    config = tmp_path / "one.yaml"
    config.write_text(f"ensemble:\n  models:\n    - {{name: {member}, weight: 1.0}}\n")
    return _parser().parse_args(
        ["validate", "--data", str(data), "--config", str(config), "--backtest-days", "4",
         "--horizons", "1", *extra]
    )  # fmt: skip


def test_validate_runs_on_a_short_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _short_validate(tmp_path, "tgarch", "--models", "tgarch")
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith("SPX: ")
    assert "ensemble" in out and "tgarch" in out
    assert cli_models.SYNTHETIC_NOTE in out
    assert "walk-forward took" in out
    # Progress on stderr (not a tty: one line per update) ends at 100 %; the members are
    # scored from the ensemble's own run, so the ensemble is the only method walked.
    progress = captured.err.splitlines()
    assert "100.0%" in progress[-1] and "ensemble 3/3" in progress[-1]


def test_validate_with_baselines_walks_them_beside_the_ensemble(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _short_validate(tmp_path, "har_quantile", "--baselines")
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    rows = {line.split()[0] for line in captured.out.splitlines() if line.strip()}
    assert {"ensemble", "har_quantile", "baseline_gjr_vix", "baseline_tarch_t",
            "baseline_vix_normal", "baseline_ewma"} <= rows  # fmt: skip
    # Each baseline is walked on its own: 3 origins (the last day has no next close) for
    # each of the five methods.
    assert "baseline_ewma 15/15" in captured.err.splitlines()[-1]
