"""Type stubs for the compiled extension :mod:`rust_filters._core`."""

from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeAlias, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "EKPF",
    "MAX_FORECAST_PATHS",
    "MAX_PARTICLES",
    "MAX_PATHS",
    "MAX_STEPS",
    "MAX_THREADS",
    "UKF",
    "BootstrapPF",
    "LinearGaussianModel",
    "PythonModel",
    "RangeEncoder",
    "SimulationSummary",
    "SmileModel",
    "StochVolModel",
    "StochVolPriceModel",
    "TickVolatility",
    "__version__",
    "parse_chain_fast",
    "parse_tick_fast",
    "simulate_gbm",
    "simulate_merton",
]

_FloatArray: TypeAlias = npt.NDArray[np.float64]

# Upper bounds of the size arguments (a clear ValueError instead of an allocation that
# aborts the process): particles per filter, paths per particle-filter forecast, paths
# and time steps per Monte Carlo simulation, worker threads (``threads=``).
MAX_PARTICLES: Final[int]
MAX_FORECAST_PATHS: Final[int]
MAX_PATHS: Final[int]
MAX_STEPS: Final[int]
MAX_THREADS: Final[int]

# ---- ukf ------------------------------------------------------------------------------

_Vector = _FloatArray | Sequence[float] | float
_Matrix = npt.ArrayLike
_Flags = bool | Sequence[bool] | npt.NDArray[np.bool_]

@final
class StochVolModel:
    """ukf2-sv: state [h, m]; z = [r, |r|]; OU log-variance with time step dt (days)."""

    def __new__(
        cls, mu: float = -1.02, phi: float = 0.9702, sigma: float = 0.178, drift_sd: float = 0.01
    ) -> StochVolModel: ...
    @property
    def mu(self) -> float: ...
    @property
    def phi(self) -> float: ...
    @property
    def sigma(self) -> float: ...
    @property
    def drift_sd(self) -> float: ...
    def workload_prior(self) -> tuple[_FloatArray, _FloatArray]: ...
    def __reduce__(self) -> tuple[Any, tuple[float, float, float, float]]: ...

@final
class StochVolPriceModel:
    """ukf3-svp: state [p, m, h]; z = [p, |r|]."""

    def __new__(
        cls,
        mu: float = -1.02,
        phi: float = 0.9702,
        sigma: float = 0.178,
        drift_sd: float = 0.01,
        price_sd: float = 0.05,
    ) -> StochVolPriceModel: ...
    @property
    def mu(self) -> float: ...
    @property
    def phi(self) -> float: ...
    @property
    def sigma(self) -> float: ...
    @property
    def drift_sd(self) -> float: ...
    @property
    def price_sd(self) -> float: ...
    def workload_prior(self) -> tuple[_FloatArray, _FloatArray]: ...
    def __reduce__(self) -> tuple[Any, tuple[float, float, float, float, float]]: ...

@final
class LinearGaussianModel:
    """x_t = c + F x_{t-1} + w, z_t = d + H x_t + v (discrete time: dt is ignored)."""

    def __new__(
        cls,
        F: _Matrix,
        H: _Matrix,
        Q: _Matrix,
        R: _Matrix,
        c: _Matrix | None = None,
        d: _Matrix | None = None,
    ) -> LinearGaussianModel: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

@final
class SmileModel:
    """Smile state [level, skew, curvature]; iv(k) = level + skew k + curvature k^2."""

    def __new__(
        cls,
        mean: _Vector | None = None,
        reversion: _Vector | None = None,
        vol: _Vector | None = None,
        *,
        measurement: Literal["iv", "delta"] = "iv",
        noise_sd: float = 0.01,
        min_iv: float = 1e-4,
    ) -> SmileModel: ...
    @property
    def mean(self) -> list[float]: ...
    @property
    def reversion(self) -> list[float]: ...
    @property
    def vol(self) -> list[float]: ...
    @property
    def measurement(self) -> str: ...
    @property
    def noise_sd(self) -> float: ...
    @property
    def min_iv(self) -> float: ...
    @staticmethod
    def moneyness(strike: npt.ArrayLike, forward: float, tau: npt.ArrayLike) -> _FloatArray: ...
    def implied_vol(self, x: _Vector, moneyness: npt.ArrayLike) -> _FloatArray: ...
    def delta(
        self, x: _Vector, moneyness: _Vector, tau: _Vector, is_call: _Flags
    ) -> _FloatArray: ...
    def __reduce__(self) -> tuple[Any, Any, Any]: ...

@final
class PythonModel:
    """Slow path: fx(x, dt) -> x', hx(x) -> z in Python; Q is per unit dt, R fixed."""

    def __new__(
        cls,
        fx: Callable[[_FloatArray, float], npt.ArrayLike],
        hx: Callable[[_FloatArray], npt.ArrayLike],
        Q: _Matrix,
        R: _Matrix,
    ) -> PythonModel: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

_Model = StochVolModel | StochVolPriceModel | LinearGaussianModel | SmileModel | PythonModel

@final
class UKF:
    """Additive-noise Unscented Kalman Filter with scaled sigma points."""

    def __new__(
        cls,
        model: _Model,
        x0: _Vector,
        P0: _Matrix,
        *,
        alpha: float = 0.1,
        beta: float = 2.0,
        kappa: float | None = None,
    ) -> UKF: ...
    def predict(self, dt: float = 1.0) -> None: ...
    def update(self, z: _Vector) -> float: ...
    def step(self, z: _Vector, dt: float = 1.0) -> float: ...
    def update_quotes(
        self,
        moneyness: _Vector,
        tau: _Vector,
        values: _Vector,
        *,
        is_call: _Flags | None = None,
        noise_sd: _Vector | None = None,
    ) -> float: ...
    def step_quotes(
        self,
        moneyness: _Vector,
        tau: _Vector,
        values: _Vector,
        dt: float,
        *,
        is_call: _Flags | None = None,
        noise_sd: _Vector | None = None,
    ) -> float: ...
    def filter(
        self, zs: npt.ArrayLike, dts: npt.ArrayLike | None = None
    ) -> tuple[_FloatArray, _FloatArray, _FloatArray]: ...
    @property
    def x(self) -> _FloatArray: ...
    @property
    def P(self) -> _FloatArray: ...  # noqa: N802
    @property
    def dim_x(self) -> int: ...
    @property
    def dim_z(self) -> int | None: ...
    @property
    def alpha(self) -> float: ...
    @property
    def beta(self) -> float: ...
    @property
    def kappa(self) -> float: ...
    @property
    def n_resets(self) -> int: ...
    @property
    def diverged(self) -> bool: ...
    @property
    def last_reset_reason(self) -> str | None: ...
    @property
    def n_jitter(self) -> int: ...
    @property
    def model(self) -> _Model: ...
    def reset(self, x0: _Vector | None = None, P0: _Matrix | None = None) -> None: ...
    def snapshot(self) -> bytes: ...
    @staticmethod
    def restore(data: bytes, model: PythonModel | None = None) -> UKF: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

# ---- end ukf --------------------------------------------------------------------------

# ---- particle -------------------------------------------------------------------------

@final
class BootstrapPF:
    """Bootstrap particle filter (SV model, or ``linear_gaussian``); Δt-aware."""

    def __new__(
        cls,
        n_particles: int,
        *,
        mu: float = ...,  # -1.02 (PyO3 shows negative defaults as ...)
        phi: float = 0.9702,
        sigma: float = 0.178,
        seed: int = 0,
        ess_threshold: float = 0.5,
        threads: int | None = None,
    ) -> BootstrapPF: ...
    @classmethod
    def linear_gaussian(
        cls,
        n_particles: int,
        *,
        c: float,
        phi: float,
        sigma: float,
        tau: float,
        seed: int = 0,
        ess_threshold: float = 0.5,
        threads: int | None = None,
    ) -> BootstrapPF: ...
    def step(self, y: float, dt: float = 1.0) -> float: ...
    def filter(self, ys: npt.ArrayLike, dts: npt.ArrayLike | None = None) -> _FloatArray: ...
    @property
    def loglik(self) -> float: ...
    def mean(self) -> float: ...
    def quantiles(self, levels: npt.ArrayLike) -> _FloatArray: ...
    def particles(self) -> tuple[_FloatArray, _FloatArray]: ...
    @property
    def ess(self) -> float: ...
    @property
    def n_resamples(self) -> int: ...
    @property
    def n_resets(self) -> int: ...
    @property
    def n_degenerate(self) -> int:
        """Steps whose ESS after reweighting stayed below 1 % of the particles."""
    @property
    def last_reset_reason(self) -> str | None: ...
    @property
    def n_observations(self) -> int: ...
    @property
    def n_particles(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def threads(self) -> int | None: ...
    @property
    def ess_threshold(self) -> float: ...
    @property
    def model(self) -> str: ...
    @property
    def params(self) -> dict[str, float]: ...
    def set_params(
        self,
        mu: float | None = None,
        phi: float | None = None,
        sigma: float | None = None,
        *,
        c: float | None = None,
        tau: float | None = None,
    ) -> None: ...
    def forecast(
        self,
        steps: int,
        *,
        price: float,
        levels: npt.ArrayLike | None = None,
        n_paths: int | None = None,
        drift: float = 0.0,
        return_scale: float = 0.01,
        dt: float = 1.0,
        bridge: bool = True,
        seed: int | None = None,
        path_confidence: float | None = None,
    ) -> dict[str, _FloatArray]: ...
    def snapshot(self) -> bytes: ...
    @classmethod
    def restore(cls, data: bytes) -> BootstrapPF: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

@final
class EKPF:
    """Extended-Kalman particle filter (an EKF proposal per particle); Δt-aware."""

    def __new__(
        cls,
        n_particles: int,
        *,
        mu: float = ...,  # -1.02 (PyO3 shows negative defaults as ...)
        phi: float = 0.9702,
        sigma: float = 0.178,
        seed: int = 0,
        ess_threshold: float = 0.5,
        threads: int | None = None,
    ) -> EKPF: ...
    @classmethod
    def linear_gaussian(
        cls,
        n_particles: int,
        *,
        c: float,
        phi: float,
        sigma: float,
        tau: float,
        seed: int = 0,
        ess_threshold: float = 0.5,
        threads: int | None = None,
    ) -> EKPF: ...
    def step(self, y: float, dt: float = 1.0) -> float: ...
    def filter(self, ys: npt.ArrayLike, dts: npt.ArrayLike | None = None) -> _FloatArray: ...
    @property
    def loglik(self) -> float: ...
    def mean(self) -> float: ...
    def quantiles(self, levels: npt.ArrayLike) -> _FloatArray: ...
    def particles(self) -> tuple[_FloatArray, _FloatArray]: ...
    @property
    def ess(self) -> float: ...
    @property
    def n_resamples(self) -> int: ...
    @property
    def n_resets(self) -> int: ...
    @property
    def n_degenerate(self) -> int:
        """Steps whose ESS after reweighting stayed below 1 % of the particles."""
    @property
    def last_reset_reason(self) -> str | None: ...
    @property
    def n_observations(self) -> int: ...
    @property
    def n_particles(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def threads(self) -> int | None: ...
    @property
    def ess_threshold(self) -> float: ...
    @property
    def model(self) -> str: ...
    @property
    def params(self) -> dict[str, float]: ...
    def set_params(
        self,
        mu: float | None = None,
        phi: float | None = None,
        sigma: float | None = None,
        *,
        c: float | None = None,
        tau: float | None = None,
    ) -> None: ...
    def forecast(
        self,
        steps: int,
        *,
        price: float,
        levels: npt.ArrayLike | None = None,
        n_paths: int | None = None,
        drift: float = 0.0,
        return_scale: float = 0.01,
        dt: float = 1.0,
        bridge: bool = True,
        seed: int | None = None,
        path_confidence: float | None = None,
    ) -> dict[str, _FloatArray]: ...
    def snapshot(self) -> bytes: ...
    @classmethod
    def restore(cls, data: bytes) -> EKPF: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

# ---- end particle ---------------------------------------------------------------------

# ---- monte_carlo ----------------------------------------------------------------------

@final
class SimulationSummary:
    """Quantiles of a Monte Carlo simulation (``simulate_gbm`` / ``simulate_merton``)."""

    @property
    def levels(self) -> _FloatArray: ...
    @property
    def terminal(self) -> _FloatArray: ...
    @property
    def path_min(self) -> _FloatArray: ...
    @property
    def path_max(self) -> _FloatArray: ...
    @property
    def mean_terminal(self) -> float: ...
    @property
    def n_paths(self) -> int: ...
    @property
    def n_steps(self) -> int: ...
    @property
    def path_confidence(self) -> float | None: ...
    @property
    def path_low(self) -> float | None: ...
    @property
    def path_high(self) -> float | None: ...
    @property
    def tail_q(self) -> float | None: ...
    @property
    def path_coverage(self) -> float | None: ...
    @property
    def samples_terminal(self) -> _FloatArray | None: ...
    @property
    def samples_min(self) -> _FloatArray | None: ...
    @property
    def samples_max(self) -> _FloatArray | None: ...

def simulate_gbm(
    s0: float,
    mu: float,
    sigma: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = ...,
    levels: npt.ArrayLike | None = None,
    sigma_path: npt.ArrayLike | None = None,
    seed: int = 0,
    threads: int | None = None,
    bridge: bool = False,
    path_confidence: float | None = None,
    keep_samples: bool = False,
) -> SimulationSummary:
    """Geometric Brownian motion; ``dt`` defaults to 1/252."""

def simulate_merton(
    s0: float,
    mu: float,
    sigma: float,
    lam: float,
    mu_j: float,
    sigma_j: float,
    n_paths: int,
    n_steps: int,
    *,
    dt: float = ...,
    levels: npt.ArrayLike | None = None,
    sigma_path: npt.ArrayLike | None = None,
    seed: int = 0,
    threads: int | None = None,
    bridge: bool = False,
    path_confidence: float | None = None,
    keep_samples: bool = False,
) -> SimulationSummary:
    """Merton jump diffusion (compensated drift); ``dt`` defaults to 1/252."""

# ---- end monte_carlo ------------------------------------------------------------------

# ---- wire -----------------------------------------------------------------------------

def parse_tick_fast(
    raw: bytes,
) -> tuple[str, int, float, float | None, float | None, float | None] | None:
    """The tick in ``raw`` as ``(symbol, ts, price, size, bid, ask)`` if it is a well-formed
    tick message, else ``None`` (the Python parser then decides and says why)."""

_QuoteFields = tuple[
    str,
    float,
    str,
    float,
    float,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
]

def parse_chain_fast(raw: bytes) -> tuple[str, int, float, list[_QuoteFields]] | None:
    """The chain in ``raw`` as ``(symbol, ts, underlying_price, quotes)`` with each quote
    ``(expiry, strike, right, iv, delta, gamma, vega, bid, ask, volume, open_interest)``, if
    it is a well-formed option-chain message, else ``None``."""

@final
class RangeEncoder:
    """A range made at a bar close, encoded as schema-v1 JSON re-anchored at each tick's price.

    Every message it writes follows schema v1 (``stream.ranges.validate_range``): a range
    (at construction) or a tick (at ``encode``) that would break it is a ValueError naming
    the field."""

    def __new__(
        cls,
        symbol: str,
        horizon: int,
        confidence: float,
        anchor: float,
        low: float,
        high: float,
        path_low: float | None,
        path_high: float | None,
        center: float,
        models: Sequence[tuple[str, float | None, float | None, float, str]],
        regime: str,
    ) -> RangeEncoder: ...
    def encode(
        self,
        ts: int,
        seq: int,
        price: float,
        vix: float | None = None,
        tick_vol: tuple[float, float] | None = None,
    ) -> bytes:
        """The message for a tick at ``price`` (finite, > 0), as JSON bytes; ``ts`` and
        ``seq`` >= 1, ``vix`` and both ``tick_vol`` values finite and > 0 (or None)."""

@final
class TickVolatility:
    """One symbol's tick filters: the UKF and a bootstrap particle filter on the daily SV
    model, stepped together in trading time by ``update(ts_ns, price)``."""

    def __new__(
        cls,
        mu: float,
        phi: float,
        sigma: float,
        *,
        n_particles: int = 256,
        seed: int = 0,
        session_seconds: float,
        gap_seconds: float,
        gap_dt: float,
    ) -> TickVolatility: ...
    def update(self, ts_ns: int, price: float) -> tuple[float, float] | None:
        """Fold in one tick; the filtered volatility (annualised %, (ukf, pf)) after it.

        A tick the filters refuse, or one older than the last accepted tick, changes
        nothing: ``rejected`` counts it, ``last_error`` says why."""
    def volatility(self) -> tuple[float, float] | None: ...
    def trading_dt(self, seconds: float) -> float: ...
    @property
    def ticks(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def resets(self) -> int: ...
    @property
    def last_reset_reason(self) -> str | None:
        """Why the filter that reset last did so (``ukf: ...`` or ``pf: ...``), or None."""
    @property
    def last_tick(self) -> tuple[int, float] | None: ...
    def snapshot(self) -> bytes: ...
    @classmethod
    def restore(cls, data: bytes) -> TickVolatility: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...
