"""Type stubs for the compiled extension :mod:`rust_filters._core`."""

import numpy as np
import numpy.typing as npt

__version__: str

FloatArray = npt.NDArray[np.float64]

# ---- ukf ------------------------------------------------------------------------------

# ---- end ukf --------------------------------------------------------------------------

# ---- particle -------------------------------------------------------------------------

from typing import final  # noqa: E402  (the header is shared: the lead may hoist this)

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
    def filter(self, ys: npt.ArrayLike, dts: npt.ArrayLike | None = None) -> FloatArray: ...
    @property
    def loglik(self) -> float: ...
    def mean(self) -> float: ...
    def quantiles(self, levels: npt.ArrayLike) -> FloatArray: ...
    def particles(self) -> tuple[FloatArray, FloatArray]: ...
    @property
    def ess(self) -> float: ...
    @property
    def n_resamples(self) -> int: ...
    @property
    def n_resets(self) -> int: ...
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
        levels: list[float] | tuple[float, ...] = ...,
        n_paths: int | None = None,
        drift: float = 0.0,
        return_scale: float = 0.01,
        dt: float = 1.0,
        bridge: bool = True,
        seed: int | None = None,
        path_confidence: float | None = None,
    ) -> dict[str, FloatArray]: ...
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
    def filter(self, ys: npt.ArrayLike, dts: npt.ArrayLike | None = None) -> FloatArray: ...
    @property
    def loglik(self) -> float: ...
    def mean(self) -> float: ...
    def quantiles(self, levels: npt.ArrayLike) -> FloatArray: ...
    def particles(self) -> tuple[FloatArray, FloatArray]: ...
    @property
    def ess(self) -> float: ...
    @property
    def n_resamples(self) -> int: ...
    @property
    def n_resets(self) -> int: ...
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
        levels: list[float] | tuple[float, ...] = ...,
        n_paths: int | None = None,
        drift: float = 0.0,
        return_scale: float = 0.01,
        dt: float = 1.0,
        bridge: bool = True,
        seed: int | None = None,
        path_confidence: float | None = None,
    ) -> dict[str, FloatArray]: ...
    def snapshot(self) -> bytes: ...
    @classmethod
    def restore(cls, data: bytes) -> EKPF: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

# ---- end particle ---------------------------------------------------------------------

# ---- monte_carlo ----------------------------------------------------------------------

# ---- end monte_carlo ------------------------------------------------------------------
