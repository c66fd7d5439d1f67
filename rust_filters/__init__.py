"""markov's Rust core: UKF, particle filters and parallel Monte Carlo.

The compiled classes live in :mod:`rust_filters._core`; NumPy reference
implementations of the same algorithms (the test oracle and the benchmark's
Python column) live in :mod:`rust_filters.reference`.
"""

from rust_filters._core import (
    EKPF,
    UKF,
    BootstrapPF,
    LinearGaussianModel,
    PythonModel,
    SimulationSummary,
    SmileModel,
    StochVolModel,
    StochVolPriceModel,
    __version__,
    simulate_gbm,
    simulate_merton,
)

__all__ = [
    "EKPF",
    "UKF",
    "BootstrapPF",
    "LinearGaussianModel",
    "PythonModel",
    "SimulationSummary",
    "SmileModel",
    "StochVolModel",
    "StochVolPriceModel",
    "__version__",
    "simulate_gbm",
    "simulate_merton",
]
