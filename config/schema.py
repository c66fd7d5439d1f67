"""The typed, frozen configuration the inside of markov receives.

Every field has a default, so a YAML file only needs the keys it changes; the shipped
``default.yaml`` spells every key out. Rules that involve several fields live in each
section's ``check(path)`` and raise :class:`~config.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from config.errors import ConfigError

ModelName = Literal[
    "tgarch",
    "delta_ukf",
    "jump_diffusion_vix",
    "ekpf",
    "arima",
    "varmax",
    "har_quantile",
    "quantile_regression",
]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
Regime = Literal["low", "normal", "high"]
REGIMES: tuple[str, ...] = get_args(Regime)
DataSourceName = Literal["bundled", "file", "yfinance", "auto"]
StreamMode = Literal["embedded", "kafka"]
SkillHorizon = Literal["shortest", "own"]

# Kafka's own rule for topic names (legal characters, at most 249 of them).
_TOPIC = {"pattern": r"[A-Za-z0-9._-]{1,249}", "pattern_hint": "must use only A-Z a-z 0-9 . _ -"}
_TICKER = {"pattern": r"[A-Za-z0-9^.=_-]{1,32}", "pattern_hint": "not a ticker symbol"}


def _meta(**kwargs: Any) -> dict[str, Any]:
    return kwargs


@dataclass(frozen=True)
class ModelSpec:
    """One ensemble member: its base weight before regime, option and skill factors."""

    name: ModelName = field(metadata=_meta(what="model"))
    weight: float = field(metadata=_meta(ge=0.0))
    enabled: bool = True


_DEFAULT_MODELS = (
    ModelSpec("tgarch", 0.06),
    ModelSpec("delta_ukf", 0.30),
    ModelSpec("jump_diffusion_vix", 0.10),
    ModelSpec("ekpf", 0.10),
    ModelSpec("arima", 0.02),
    ModelSpec("varmax", 0.06),
    # Not in the original design: added with base 0.3, chosen on 2010–2014 walk-forwards
    # (against 0.1, 0.6, 1.0), before the 2015–2018 test window.
    ModelSpec("har_quantile", 0.30),
    # Not in the original design: base 0.45 chosen on 2010–2013 and 2014 walk-forwards
    # (against 0.3, 0.6, 1.0), before the test window; see models/quantile_regression.py.
    ModelSpec("quantile_regression", 0.45),
)


@dataclass(frozen=True)
class EnsembleConfig:
    """Base weights need not sum to 1: the ensemble normalises after applying its factors."""

    models: tuple[ModelSpec, ...] = field(default=_DEFAULT_MODELS, metadata=_meta(min_items=1))

    def check(self, path: str) -> None:
        seen: dict[str, int] = {}
        for i, spec in enumerate(self.models):
            if spec.name in seen:
                raise ConfigError(
                    f"{path}.models[{i}].name",
                    f"duplicate model {spec.name!r} (also at models[{seen[spec.name]}])",
                )
            seen[spec.name] = i
        if sum(m.weight for m in self.models if m.enabled) <= 0:
            raise ConfigError(
                f"{path}.models", "the enabled models' weights sum to 0; at least one must be > 0"
            )

    def weight(self, name: str) -> float:
        """Base weight of ``name``; 0 if it is absent or disabled."""
        return next((m.weight for m in self.models if m.name == name and m.enabled), 0.0)

    @property
    def enabled_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models if m.enabled)


@dataclass(frozen=True)
class DataConfig:
    """Where history comes from (see ``connectors.data_sources``)."""

    source: DataSourceName = "bundled"
    default_ticker: str = field(default="SPX", metadata=_TICKER)
    default_days_back: int = field(default=1250, metadata=_meta(ge=1))  # ~5 years of sessions
    path: str | None = None  # the CSV/Parquet file when source is "file"

    def check(self, path: str) -> None:
        if self.source == "file" and self.path is None:
            raise ConfigError(f"{path}.path", "required when data.source is 'file'")


@dataclass(frozen=True)
class RustConfig:
    """``enable_acceleration`` is the original design's switch; only ``true`` is allowed:
    the filters and simulations exist only in Rust (``rust_filters``), and the NumPy
    references beside them are for tests and benchmarks, too slow to serve."""

    enable_acceleration: bool = True
    num_threads: int = field(default=0, metadata=_meta(ge=0, le=1024))  # 0 = one per core

    def check(self, path: str) -> None:
        if not self.enable_acceleration:
            raise ConfigError(
                f"{path}.enable_acceleration",
                "false is not supported: the filters and simulations run only in Rust; "
                "allowed: true",
            )


@dataclass(frozen=True)
class VixConfig:
    """VIX regimes (low < low_threshold <= normal <= high_threshold < high) and scale.

    ``coefficient`` maps the VIX to the volatility the VIX-driven models expect,
    sigma_annual = coefficient * VIX / 100: implied volatility overstates realised by the
    variance risk premium; on the bundled 2014-2018 data the next-21-day realised over
    VIX ratio averages 0.80. It is the prior: the Delta UKF and the jump diffusion use it
    until they have 60 days of VIX history to estimate the premium from.
    """

    low_threshold: float = field(default=12.5, metadata=_meta(gt=0.0))
    high_threshold: float = field(default=18.5, metadata=_meta(gt=0.0))
    coefficient: float = field(default=0.8, metadata=_meta(gt=0.0))

    def check(self, path: str) -> None:
        if self.low_threshold >= self.high_threshold:
            raise ConfigError(
                f"{path}.low_threshold",
                f"must be < high_threshold ({self.high_threshold}), got {self.low_threshold}",
            )

    def regime(self, vix: float) -> Regime:
        if vix < self.low_threshold:
            return "low"
        return "high" if vix > self.high_threshold else "normal"


@dataclass(frozen=True)
class ForecastConfig:
    """``horizon``: default horizon (trading days) for one-off forecasts; ``horizons``: the
    horizons the stream publishes."""

    horizon: int = field(default=5, metadata=_meta(ge=1, le=252))
    confidence: float = field(default=0.9, metadata=_meta(gt=0.0, lt=1.0))
    horizons: tuple[int, ...] = field(default=(1, 5), metadata=_meta(min_items=1, ge=1, le=252))

    def check(self, path: str) -> None:
        for i in range(1, len(self.horizons)):
            if self.horizons[i] <= self.horizons[i - 1]:
                raise ConfigError(
                    f"{path}.horizons[{i}]",
                    f"must be > horizons[{i - 1}] ({self.horizons[i - 1]}): list each horizon "
                    f"once, ascending; got {self.horizons[i]}",
                )


@dataclass(frozen=True)
class CalibrationConfig:
    """Online calibration of each tail (:mod:`models.calibration`): a tail's log scale
    factor moves by ``gamma/√h · (1{breach} − tail)`` per resolved forecast at horizon h.
    ``gamma`` was chosen on pre-2015 walk-forwards: 0.02 on 2010–2013 data (against
    0.0001 / 0.05 / 0.1) in session 1, then 0.01 (against 0.005 / 0.02 / 0.04, on 2010–2013
    and 2014) once the ensemble had the ``har_quantile`` member and a one-year skill window;
    0.005 scored about the same but let coverage drift further from nominal (94.0 % on
    2014 h=1 paths, against 93.3 % with 0.01 and 0.02)."""

    enabled: bool = True
    gamma: float = field(default=0.01, metadata=_meta(gt=0.0, lt=1.0))  # the learning rate


@dataclass(frozen=True)
class RegimeMultipliers:
    low: float = field(default=1.0, metadata=_meta(ge=0.0))
    normal: float = field(default=1.0, metadata=_meta(ge=0.0))
    high: float = field(default=1.0, metadata=_meta(ge=0.0))

    def for_regime(self, regime: Regime) -> float:
        return float(getattr(self, regime))


@dataclass(frozen=True)
class RegimeMultiplierTable:
    """Per model, per VIX regime: how much its base weight is scaled.

    The defaults lean on the VIX-aware and jump models when the VIX is high, on the
    linear-Gaussian ones (ARIMA, VARMAX) when it is low.
    """

    tgarch: RegimeMultipliers = RegimeMultipliers(0.9, 1.0, 1.2)
    delta_ukf: RegimeMultipliers = RegimeMultipliers(1.0, 1.0, 1.0)
    jump_diffusion_vix: RegimeMultipliers = RegimeMultipliers(0.7, 1.0, 1.5)
    ekpf: RegimeMultipliers = RegimeMultipliers(1.0, 1.0, 1.2)
    arima: RegimeMultipliers = RegimeMultipliers(1.2, 1.0, 0.6)
    varmax: RegimeMultipliers = RegimeMultipliers(1.1, 1.0, 0.7)
    har_quantile: RegimeMultipliers = RegimeMultipliers(1.0, 1.0, 1.0)
    quantile_regression: RegimeMultipliers = RegimeMultipliers(1.0, 1.0, 1.0)

    def for_model(self, name: str) -> RegimeMultipliers:
        if name not in MODEL_NAMES:
            raise KeyError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)}")
        multipliers: RegimeMultipliers = getattr(self, name)
        return multipliers


@dataclass(frozen=True)
class OptionFactors:
    """Strength (0 = off) with which the option chain moves weights: ``implied_range`` favours
    models whose range agrees with the chain's implied range, ``skew`` shifts weight toward
    the jump model as put skew steepens."""

    implied_range: float = field(default=0.5, metadata=_meta(ge=0.0))
    skew: float = field(default=0.25, metadata=_meta(ge=0.0))


@dataclass(frozen=True)
class WeightingConfig:
    """Weights = base x regime multiplier x option factors x skill, then normalised.
    Skill is the interval score over the last ``skill_window`` resolved forecasts;
    ``skill_strength`` 0 turns it off. The window, 250 (about a year), was chosen on
    2010–2014 walk-forwards against 60 / 125 / 500; the strength 1 against 0 / 0.5 / 2.
    ``skill_horizon``: whose close intervals score the members for every horizon's
    weights: the ``shortest`` horizon's (non-overlapping outcomes, h times as many
    independent ones as at horizon h) or each horizon's ``own``. On the pre-2015 replays
    its gain is small: the four tables' mean −0.02 % on 2010–2013 and −0.07 % on 2014's
    second half, when every member has a year of scores (the h=5 tables −0.05 and
    −0.13 %); on the whole of 2014, when the VIX members enter, −0.29 % without the
    minimum count of scores (``models.weighting.MIN_SKILL_SCORES``) and +0.10 % with it.
    Stronger weighting (strength 2 to 12) looked better on the whole of 2014 (−1.2 % at
    6) but was worse on its second half (+0.6 % at 6): that gain came from the months
    when new members have few scores, not from the steady state, so 1 stays."""

    skill_window: int = field(default=250, metadata=_meta(ge=1))
    skill_strength: float = field(default=1.0, metadata=_meta(ge=0.0))
    skill_horizon: SkillHorizon = "shortest"
    regime_multipliers: RegimeMultiplierTable = RegimeMultiplierTable()
    option_factors: OptionFactors = OptionFactors()


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = field(
        default="localhost:9092",
        metadata=_meta(
            pattern=r"[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*",
            pattern_hint="must be host:port[,host:port...]",
        ),
    )
    group_id: str = "markov"
    client_id: str = "markov"
    # How long the broker may hold a fetch that finds no new input (aiokafka's default).
    # The broker answers as soon as input arrives: 20 ms and 500 ms gave the same
    # tick-to-range latency here (benchmarks/stream.py, interleaved runs).
    fetch_max_wait_ms: int = field(default=500, metadata=_meta(ge=1, le=60_000))
    # How long the range producer waits to fill a batch after its first record.
    linger_ms: int = field(default=5, metadata=_meta(ge=0, le=60_000))


@dataclass(frozen=True)
class TopicsConfig:
    ticks: str = field(default="markov.ticks", metadata=_TOPIC)
    vix: str = field(default="markov.vix", metadata=_TOPIC)
    options: str = field(default="markov.options", metadata=_TOPIC)
    ranges: str = field(default="markov.ranges", metadata=_TOPIC)
    dlq: str = field(default="markov.dlq", metadata=_TOPIC)
    state: str = field(default="markov.state", metadata=_TOPIC)  # compacted, keyed by symbol

    def check(self, path: str) -> None:
        seen: dict[str, str] = {}
        for f in fields(self):
            topic = getattr(self, f.name)
            if topic in seen:
                raise ConfigError(
                    f"{path}.{f.name}", f"same topic as {path}.{seen[topic]} ({topic!r})"
                )
            seen[topic] = f.name


@dataclass(frozen=True)
class StreamConfig:
    """The streaming service. Times are event time (the timestamps in the feed)."""

    mode: StreamMode = "embedded"
    kafka: KafkaConfig = KafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    tickers: tuple[str, ...] = field(default=("SPX",), metadata=_meta(min_items=1, **_TICKER))
    publish_throttle_seconds: float = field(default=1.0, metadata=_meta(ge=0.0))  # 0: every event
    # Weekly in event time: the slow models are re-estimated about every 5 sessions, as in
    # the validation protocol; between refits they are updated bar by bar.
    refit_interval_seconds: float = field(default=604800.0, metadata=_meta(gt=0.0))
    bar_seconds: int = field(default=86400, metadata=_meta(gt=0))  # 86400 = daily bars
    # At most 100 MiB: the fetch sizes derived from it must fit Kafka's 32-bit limits (a
    # larger value started a service that silently consumed nothing).
    max_message_bytes: int = field(default=1_048_576, metadata=_meta(ge=1024, le=104_857_600))
    # A tick that moves the price by more than this (in log terms, from the last accepted
    # tick of the same session) is a bad print, not a market: 0.25 is +28 % / -22 %, past
    # the S&P 500's 20 % limit-down halt. 0 turns the check off (for single stocks, raise it).
    max_tick_move: float = field(default=0.25, metadata=_meta(ge=0.0))
    # An event dated further ahead of the machine's clock than this is refused (clock
    # skew between the feed and this machine is allowed for up to this much).
    max_future_seconds: float = field(default=300.0, metadata=_meta(ge=0.0))

    def check(self, path: str) -> None:
        for i, ticker in enumerate(self.tickers):
            if ticker in self.tickers[:i]:
                raise ConfigError(f"{path}.tickers[{i}]", f"duplicate ticker {ticker!r}")


@dataclass(frozen=True)
class WebsocketConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=8765, metadata=_meta(ge=0, le=65535))  # 0: any free port
    client_queue_size: int = field(default=256, metadata=_meta(ge=1))
    heartbeat_seconds: float = field(default=15.0, metadata=_meta(gt=0.0))


@dataclass(frozen=True)
class ReplayConfig:
    feed: str | None = None  # null: the feed bundled with markov
    speed: float = field(default=0.0, metadata=_meta(ge=0.0))  # x event time; 0: full speed


@dataclass(frozen=True)
class MarkovConfig:
    ensemble: EnsembleConfig = EnsembleConfig()
    data: DataConfig = DataConfig()
    rust: RustConfig = RustConfig()
    vix: VixConfig = VixConfig()
    forecast: ForecastConfig = ForecastConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    weighting: WeightingConfig = WeightingConfig()
    stream: StreamConfig = StreamConfig()
    websocket: WebsocketConfig = WebsocketConfig()
    replay: ReplayConfig = ReplayConfig()
    seed: int = field(default=42, metadata=_meta(ge=0, le=2**64 - 1))
