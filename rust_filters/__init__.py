"""markov's Rust core: UKF, particle filters and parallel Monte Carlo.

The compiled classes live in :mod:`rust_filters._core`; NumPy reference
implementations of the same algorithms (the test oracle and the benchmark's
Python column) live in :mod:`rust_filters.reference`.
"""

from rust_filters._core import SimulationSummary, simulate_gbm, simulate_merton  # monte_carlo  # noqa: F401, I001
from rust_filters._core import __version__

__all__ = ["__version__"]
