"""Configuration: shipped files load, every invalid input is one line naming the field,
overrides re-validate, and the result is typed and frozen."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.errors import ConfigError
from config.loader import ConfigLoader, set_path
from config.schema import MODEL_NAMES, MarkovConfig, RegimeMultiplierTable
from config.validation import to_plain

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def one_line_error(exc_info: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    assert message.startswith("config error: ")
    return message


# --- shipped configs ---------------------------------------------------------------------


def test_default_yaml_spells_out_the_schema_defaults() -> None:
    assert ConfigLoader.default() == MarkovConfig()
    assert ConfigLoader.load(CONFIG_DIR / "default.yaml") == MarkovConfig()


def test_default_has_the_original_design_values() -> None:
    cfg = ConfigLoader.default()
    weights = {m.name: m.weight for m in cfg.ensemble.models}
    assert weights == {
        "tgarch": 0.06,
        "delta_ukf": 0.30,
        "jump_diffusion_vix": 0.10,
        "ekpf": 0.10,
        "arima": 0.02,
        "varmax": 0.06,
        "har_quantile": 0.30,  # added after the design (base chosen on 2010-2014 data)
        "quantile_regression": 0.45,  # likewise
    }
    assert (cfg.vix.low_threshold, cfg.vix.high_threshold) == (12.5, 18.5)
    assert cfg.stream.mode == "embedded"
    topics = cfg.stream.topics
    assert (topics.ticks, topics.vix, topics.options, topics.ranges, topics.dlq) == (
        "markov.ticks",
        "markov.vix",
        "markov.options",
        "markov.ranges",
        "markov.dlq",
    )
    assert cfg.stream.max_message_bytes == 1_048_576
    assert cfg.websocket.host == "127.0.0.1"
    assert cfg.replay.feed is None  # the bundled feed


def test_production_is_kafka_on_localhost() -> None:
    cfg = ConfigLoader.production()
    assert cfg == ConfigLoader.load(CONFIG_DIR / "production.yaml")
    assert cfg.stream.mode == "kafka"
    assert cfg.stream.kafka.bootstrap_servers == "localhost:9092"
    assert cfg.stream.tickers and "SPY" in cfg.stream.tickers
    assert cfg.stream.topics.ranges == "markov.ranges"
    assert cfg.ensemble == MarkovConfig().ensemble  # only the edges differ


def test_regime_table_covers_exactly_the_model_names() -> None:
    names = tuple(f.name for f in dataclasses.fields(RegimeMultiplierTable))
    assert names == MODEL_NAMES
    table = ConfigLoader.default().weighting.regime_multipliers
    assert table.for_model("jump_diffusion_vix").for_regime("high") == 1.5
    with pytest.raises(KeyError, match="allowed: tgarch"):
        table.for_model("garch")


def test_config_is_frozen() -> None:
    cfg = ConfigLoader.default()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vix.low_threshold = 1.0  # type: ignore[misc]


def test_partial_file_takes_defaults_for_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("forecast:\n  horizon: 10\nvix:\n  high_threshold: 25\n")
    cfg = ConfigLoader.load(path)
    assert cfg.forecast.horizon == 10
    assert cfg.vix.high_threshold == 25.0 and isinstance(cfg.vix.high_threshold, float)
    assert dataclasses.replace(cfg, forecast=MarkovConfig().forecast, vix=MarkovConfig().vix) == (
        MarkovConfig()
    )


def test_yaml_dump_round_trips() -> None:
    cfg = ConfigLoader.production()
    assert ConfigLoader.from_dict(yaml.safe_load(ConfigLoader.to_yaml(cfg))) == cfg


def test_helpers() -> None:
    cfg = ConfigLoader.with_overrides(ConfigLoader.default(), ["ensemble.models[4].enabled=false"])
    assert cfg.ensemble.weight("arima") == 0.0
    assert cfg.ensemble.weight("delta_ukf") == 0.30
    assert "arima" not in cfg.ensemble.enabled_names
    vix = cfg.vix
    assert [vix.regime(v) for v in (12.0, 12.5, 18.5, 19.0)] == ["low", "normal", "normal", "high"]


# --- every validation path: one line naming the field --------------------------------------

INVALID: list[tuple[dict[str, Any], str]] = [
    (
        {"ensemble.models[2].weight": -0.1},
        "ensemble.models[2].weight: must be >= 0, got -0.1",
    ),
    (
        {"ensemble.models[1].name": "garch"},
        "ensemble.models[1].name: unknown model 'garch'; allowed: tgarch, delta_ukf, "
        "jump_diffusion_vix, ekpf, arima, varmax, har_quantile, quantile_regression",
    ),
    (
        {"ensemble.models[4].name": "tgarch"},
        "ensemble.models[4].name: duplicate model 'tgarch' (also at models[0])",
    ),
    ({"ensemble.models": []}, "ensemble.models: must have at least 1 item(s), got 0"),
    (
        {"ensemble.models": [{"name": "arima", "weight": 0.0}]},
        "ensemble.models: the enabled models' weights sum to 0; at least one must be > 0",
    ),
    ({"ensemble.models": [{"name": "arima"}]}, "ensemble.models[0].weight: required"),
    (
        {"ensemble.models[0].weight": "0.1"},
        "ensemble.models[0].weight: expected a number, got '0.1'",
    ),
    ({"ensemble.models": {"name": "arima"}}, "ensemble.models: expected a list, got a mapping"),
    ({"ensemble": [1]}, "ensemble: expected a mapping, got a list"),
    (
        {"data.source": "web"},
        "data.source: must be one of bundled, file, yfinance, auto, got 'web'",
    ),
    ({"data.source": "file"}, "data.path: required when data.source is 'file'"),
    ({"data.default_days_back": 0}, "data.default_days_back: must be >= 1, got 0"),
    ({"data.default_days_back": 10.5}, "data.default_days_back: expected an integer, got 10.5"),
    ({"data.default_ticker": "S P Y"}, "data.default_ticker: not a ticker symbol, got 'S P Y'"),
    ({"data.default_ticker": ""}, "data.default_ticker: must not be empty"),
    (
        {"rust.enable_acceleration": "yes"},
        "rust.enable_acceleration: expected true or false, got 'yes'",
    ),
    ({"rust.num_threads": -2}, "rust.num_threads: must be >= 0, got -2"),
    (
        {"rust.enable_acceleration": False},
        "rust.enable_acceleration: false is not supported: the filters and simulations run "
        "only in Rust; allowed: true",
    ),
    ({"vix.low_threshold": 20}, "vix.low_threshold: must be < high_threshold (18.5), got 20.0"),
    ({"vix.high_threshold": 12.5}, "vix.low_threshold: must be < high_threshold (12.5), got 12.5"),
    ({"vix.coefficient": 0}, "vix.coefficient: must be > 0, got 0"),
    ({"vix.coefficient": float("nan")}, "vix.coefficient: must be finite, got nan"),
    (
        {"vix.lowthreshold": 1},
        "vix.lowthreshold: unknown key (did you mean 'low_threshold'?); "
        "allowed: low_threshold, high_threshold, coefficient",
    ),
    ({"forecast.horizon": 0}, "forecast.horizon: must be >= 1, got 0"),
    ({"forecast.confidence": 1.0}, "forecast.confidence: must be < 1, got 1.0"),
    ({"forecast.confidence": True}, "forecast.confidence: expected a number, got true"),
    (
        {"forecast.horizons": [1, 5, 5]},
        "forecast.horizons[2]: must be > horizons[1] (5): list each horizon once, ascending; got 5",
    ),
    ({"forecast.horizons": [1, -5]}, "forecast.horizons[1]: must be >= 1, got -5"),
    ({"calibration.gamma": 0}, "calibration.gamma: must be > 0, got 0"),
    ({"weighting.skill_window": 0}, "weighting.skill_window: must be >= 1, got 0"),
    (
        {"weighting.skill_horizon": "longest"},
        "weighting.skill_horizon: must be one of shortest, own, got 'longest'",
    ),
    (
        {"weighting.regime_multipliers.tgarch.high": -1},
        "weighting.regime_multipliers.tgarch.high: must be >= 0, got -1",
    ),
    (
        {"weighting.regime_multipliers.garch": {"low": 1}},
        "weighting.regime_multipliers.garch: unknown key (did you mean 'tgarch'?); allowed: "
        "tgarch, delta_ukf, jump_diffusion_vix, ekpf, arima, varmax, har_quantile, "
        "quantile_regression",
    ),
    (
        {"weighting.option_factors.skew": -0.5},
        "weighting.option_factors.skew: must be >= 0, got -0.5",
    ),
    ({"stream.mode": "kafak"}, "stream.mode: must be one of embedded, kafka, got 'kafak'"),
    (
        {"stream.kafka.bootstrap_servers": "localhost"},
        "stream.kafka.bootstrap_servers: must be host:port[,host:port...], got 'localhost'",
    ),
    (
        {"stream.topics.ranges": "markov.ticks"},
        "stream.topics.ranges: same topic as stream.topics.ticks ('markov.ticks')",
    ),
    (
        {"stream.topics.dlq": "dead letters"},
        "stream.topics.dlq: must use only A-Z a-z 0-9 . _ -, got 'dead letters'",
    ),
    ({"stream.tickers": []}, "stream.tickers: must have at least 1 item(s), got 0"),
    ({"stream.tickers": ["SPY", "SPY"]}, "stream.tickers[1]: duplicate ticker 'SPY'"),
    ({"stream.tickers": "SPY"}, "stream.tickers: expected a list, got 'SPY'"),
    (
        {"stream.publish_throttle_seconds": -1},
        "stream.publish_throttle_seconds: must be >= 0, got -1",
    ),
    ({"stream.refit_interval_seconds": 0}, "stream.refit_interval_seconds: must be > 0, got 0"),
    ({"stream.bar_seconds": 0}, "stream.bar_seconds: must be > 0, got 0"),
    ({"stream.max_message_bytes": 10}, "stream.max_message_bytes: must be >= 1024, got 10"),
    (
        {"stream.max_message_bytes": 99_999_999_999},
        "stream.max_message_bytes: must be <= 104857600, got 99999999999",
    ),
    ({"stream.max_future_seconds": -1}, "stream.max_future_seconds: must be >= 0, got -1"),
    ({"websocket.port": 70000}, "websocket.port: must be <= 65535, got 70000"),
    ({"websocket.client_queue_size": 0}, "websocket.client_queue_size: must be >= 1, got 0"),
    ({"websocket.heartbeat_seconds": 0}, "websocket.heartbeat_seconds: must be > 0, got 0"),
    ({"websocket.host": None}, "websocket.host: expected a string, got null"),
    ({"replay.speed": -1}, "replay.speed: must be >= 0, got -1"),
    ({"replay.feed": 3}, "replay.feed: expected a string, got 3"),
    ({"seed": -1}, "seed: must be >= 0, got -1"),
    ({"seed": "abc"}, "seed: expected an integer, got 'abc'"),
    (
        {"sede": 1},
        "sede: unknown key (did you mean 'seed'?); allowed: ensemble, data, rust, vix, "
        "forecast, calibration, weighting, stream, websocket, replay, seed",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_value_is_one_line_naming_the_field(
    overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.with_overrides(ConfigLoader.default(), overrides)
    assert one_line_error(exc_info) == f"config error: {expected}"


@pytest.mark.parametrize(("overrides", "expected"), INVALID[:6], ids=[m for _, m in INVALID[:6]])
def test_the_same_errors_come_from_a_file(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    """Same checks when the bad value is in a YAML file rather than an override."""
    data = to_plain(ConfigLoader.default())
    for key, value in overrides.items():
        set_path(data, key, value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.load(path)
    assert one_line_error(exc_info) == f"config error: {expected}"


BAD_FILES = [
    ("forecast:\n  horizon: 5\n  horizon: 6\n", "bad.yaml line 3: duplicate key 'horizon'"),
    (
        "forecast: [1, 2\n",
        "bad.yaml line 2 column 1: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    ("- 1\n- 2\n", "bad.yaml: expected a mapping at the top level, got a list"),
    (
        "forecast:\n\thorizon: 5\n",
        "bad.yaml line 2 column 1: invalid YAML: found character '\\t' that cannot start any token",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_bad_file_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.load(path)
    assert one_line_error(exc_info) == f"config error: {path.parent}/{expected}"


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.load(tmp_path / "nope.yaml")
    assert one_line_error(exc_info) == f"config error: {tmp_path / 'nope.yaml'}: file not found"


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert ConfigLoader.load(path) == MarkovConfig()


# --- overrides ---------------------------------------------------------------------------


def test_overrides_from_cli_strings_are_read_as_yaml() -> None:
    base = ConfigLoader.default()
    cfg = ConfigLoader.with_overrides(
        base,
        [
            "forecast.horizon=10",
            "forecast.horizons=[1, 10]",
            "stream.mode=kafka",
            "ensemble.models[0].weight=0.2",
            "websocket.enabled=false",
            "replay.feed=/tmp/feed.jsonl",
        ],
    )
    assert cfg.forecast.horizon == 10
    assert cfg.forecast.horizons == (1, 10)
    assert cfg.stream.mode == "kafka"
    assert cfg.ensemble.models[0].weight == 0.2
    assert cfg.websocket.enabled is False
    assert cfg.replay.feed == "/tmp/feed.jsonl"
    assert base == MarkovConfig()  # the original is untouched


def test_mapping_override_updates_a_section_key_by_key() -> None:
    cfg = ConfigLoader.with_overrides(
        ConfigLoader.production(), {"stream": {"kafka": {"group_id": "markov-2"}}}
    )
    assert cfg.stream.kafka.group_id == "markov-2"
    assert cfg.stream.kafka.bootstrap_servers == "localhost:9092"
    assert cfg.stream.tickers == ConfigLoader.production().stream.tickers
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.with_overrides(cfg, ["stream={kafka: {groupid: x}}"])
    assert one_line_error(exc_info).startswith("config error: stream.kafka.groupid: unknown key")


def test_override_that_breaks_a_cross_field_rule_is_rejected() -> None:
    """Each override may be valid alone; the whole result is validated again."""
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.with_overrides(ConfigLoader.default(), {"vix.high_threshold": 10})
    assert "vix.low_threshold: must be < high_threshold (10.0)" in one_line_error(exc_info)
    fine = ConfigLoader.with_overrides(
        ConfigLoader.default(), {"vix.high_threshold": 10, "vix.low_threshold": 5}
    )
    assert (fine.vix.low_threshold, fine.vix.high_threshold) == (5.0, 10.0)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("forecast.horizon", "override: expected key=value, got 'forecast.horizon'"),
        ("=5", "override: expected key=value, got '=5'"),
        (
            "forecast..horizon=5",
            "forecast..horizon: not a config field path (expected e.g. ensemble.models[2].weight)",
        ),
        (
            "ensemble.models[8].weight=1",
            "ensemble.models[8]: index out of range (ensemble.models has 8 items)",
        ),
        ("seed.value=1", "seed: is 42, not a section; cannot set 'value'"),
        ("forecast[0]=1", "forecast: is not a list, cannot index [0]"),
        (
            "forecast.horizon=[1",
            "override forecast.horizon line 1 column 3: invalid YAML: "
            "expected ',' or ']', but got '<stream end>'",
        ),
        ("forecast.horizon=five", "forecast.horizon: expected an integer, got 'five'"),
        (
            "stream.kafka.servers=x:1",
            "stream.kafka.servers: unknown key; allowed: bootstrap_servers, group_id, client_id, "
            "fetch_max_wait_ms, linger_ms",
        ),
    ],
)
def test_bad_override_is_one_line(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.with_overrides(ConfigLoader.default(), [override])
    assert one_line_error(exc_info) == f"config error: {expected}"


def test_shipped_rejects_unknown_name() -> None:
    with pytest.raises(ConfigError, match=re.escape("shipped: default.yaml, production.yaml")):
        ConfigLoader.shipped("staging.yaml")


@pytest.mark.parametrize(
    "arg", ["production", "production.yaml", "config/production.yaml", "./config/production.yaml"]
)
def test_config_arg_names_a_shipped_config_from_any_directory(
    arg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a wheel install, `--config config/production.yaml` (as the README has it) said
    # "file not found" outside the repo: the file ships inside the package.
    monkeypatch.chdir(tmp_path)
    assert ConfigLoader.load_arg(arg) == ConfigLoader.production()
    assert ConfigLoader.load_arg("default") == ConfigLoader.default()


def test_config_arg_prefers_a_file_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "production.yaml").write_text("stream:\n  mode: embedded\n")
    assert ConfigLoader.load_arg("production.yaml").stream.mode == "embedded"
    assert ConfigLoader.load_arg("production").stream.mode == "kafka"  # no file by that name


@pytest.mark.parametrize("arg", ["staging", "mine/production.yaml", "config/prod.yaml"])
def test_config_arg_that_is_neither_is_one_line_naming_the_shipped_ones(
    arg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc_info:
        ConfigLoader.load_arg(arg)
    assert one_line_error(exc_info) == (
        f"config error: {arg}: file not found (shipped configs by name: default, production)"
    )
