"""markov's Rust core: UKF, particle filters, parallel Monte Carlo and the stream's
hot path (tick parsing, the per-tick volatility filters, range encoding).

The compiled classes live in :mod:`rust_filters._core`; NumPy reference
implementations of the same algorithms (the test oracle and the benchmark's
Python column) live in :mod:`rust_filters.reference`.
"""

from rust_filters._core import (
    EKPF,
    MAX_FORECAST_PATHS,
    MAX_PARTICLES,
    MAX_PATHS,
    MAX_STEPS,
    MAX_THREADS,
    UKF,
    BootstrapPF,
    LinearGaussianModel,
    PythonModel,
    RangeEncoder,
    SimulationSummary,
    SmileModel,
    StochVolModel,
    StochVolPriceModel,
    TickVolatility,
    __version__,
    parse_chain_fast,
    parse_tick_fast,
    simulate_gbm,
    simulate_merton,
)

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
