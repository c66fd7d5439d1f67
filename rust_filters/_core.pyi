"""Type stubs for the compiled extension :mod:`rust_filters._core`."""

import numpy as np
import numpy.typing as npt

__version__: str

FloatArray = npt.NDArray[np.float64]

# ---- ukf ------------------------------------------------------------------------------

# ---- end ukf --------------------------------------------------------------------------

# ---- particle -------------------------------------------------------------------------

# ---- end particle ---------------------------------------------------------------------

# ---- monte_carlo ----------------------------------------------------------------------

from typing import final  # noqa: E402  (imports stay inside this section)

@final
class SimulationSummary:
    """Quantiles of a Monte Carlo simulation (``simulate_gbm`` / ``simulate_merton``)."""

    @property
    def levels(self) -> FloatArray: ...
    @property
    def terminal(self) -> FloatArray: ...
    @property
    def path_min(self) -> FloatArray: ...
    @property
    def path_max(self) -> FloatArray: ...
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
    def samples_terminal(self) -> FloatArray | None: ...
    @property
    def samples_min(self) -> FloatArray | None: ...
    @property
    def samples_max(self) -> FloatArray | None: ...

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
