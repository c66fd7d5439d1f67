"""GBM Monte Carlo in the Rust core: closed forms, determinism, the API, bad input.

Statistical checks compare a sample statistic with its closed form within ``Z = 5``
standard errors of that statistic (seeded, so each check is deterministic; a fresh seed
would fail one check with probability ~6e-7). A sample ``q``-quantile of N draws has
standard error ``sqrt(q (1 - q) / N) / f(x_q)``, ``f`` the density at the true quantile;
a sample mean ``sd / sqrt(N)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gil import runs_other_threads
from scipy import optimize, stats

import rust_filters
from rust_filters.reference import monte_carlo as ref

S0, MU, SIGMA, DT = 100.0, 0.05, 0.20, 1 / 252
LEVELS = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
Z = 5.0


def quantile_se(q: np.ndarray, density_at_quantile: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(q * (1 - q) / n) / density_at_quantile


def lognormal_terminal(mean_log: float, sd_log: float) -> stats.rv_continuous:
    return stats.lognorm(s=sd_log, scale=S0 * math.exp(mean_log))


def test_gbm_terminal_quantiles_and_mean_match_the_lognormal() -> None:
    n, t = 200_000, 20
    s = rust_filters.simulate_gbm(S0, MU, SIGMA, n, t, seed=1)
    tau = t * DT
    law = lognormal_terminal((MU - SIGMA**2 / 2) * tau, SIGMA * math.sqrt(tau))
    expected = law.ppf(LEVELS)
    tol = Z * quantile_se(LEVELS, law.pdf(expected), n)
    np.testing.assert_array_less(np.abs(s.terminal - expected), tol)
    assert abs(s.mean_terminal - law.mean()) < Z * law.std() / math.sqrt(n)
    np.testing.assert_array_equal(s.levels, LEVELS)


def test_per_step_volatility_gives_the_summed_variance() -> None:
    # Log-return over the horizon: normal, mean sum (mu - s_n^2/2) dt, variance sum s_n^2 dt.
    n, t = 200_000, 30
    path = np.linspace(0.1, 0.5, t)
    s = rust_filters.simulate_gbm(S0, MU, 99.0, n, t, sigma_path=path, seed=2)
    law = lognormal_terminal(float(np.sum(MU - path**2 / 2) * DT), math.sqrt(np.sum(path**2) * DT))
    expected = law.ppf(LEVELS)
    tol = Z * quantile_se(LEVELS, law.pdf(expected), n)
    np.testing.assert_array_less(np.abs(s.terminal - expected), tol)


def test_flat_volatility_path_equals_constant_sigma() -> None:
    a = rust_filters.simulate_gbm(S0, MU, SIGMA, 5_000, 10, seed=3)
    b = rust_filters.simulate_gbm(S0, MU, 0.0, 5_000, 10, seed=3, sigma_path=[SIGMA] * 10)
    for name in ("terminal", "path_min", "path_max"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def running_max_cdf(m: np.ndarray, drift: float, tau: float) -> np.ndarray:
    """P(max_{t<=tau} (drift t + SIGMA W_t) <= m), m >= 0 (reflection principle)."""
    sd = SIGMA * math.sqrt(tau)
    return stats.norm.cdf((m - drift * tau) / sd) - np.exp(
        2 * drift * m / SIGMA**2
    ) * stats.norm.cdf((-m - drift * tau) / sd)


@pytest.mark.parametrize("side", ["max", "min"])
def test_bridge_extremes_follow_the_continuous_path_law(side: str) -> None:
    # With bridge=True the daily skeleton is filled in by exact Brownian bridges, so the
    # path maximum is that of continuously monitored GBM whatever the step count; the
    # minimum is minus the maximum of the mirrored process (drift -> -drift).
    n, t = 200_000, 5
    tau = t * DT
    s = rust_filters.simulate_gbm(S0, MU, SIGMA, n, t, bridge=True, seed=4)
    drift = MU - SIGMA**2 / 2
    if side == "max":
        got = np.log(s.path_max / S0)
        cdf_levels = LEVELS
        mirrored_drift = drift
    else:
        got = -np.log(s.path_min / S0)  # the max of -X sits at level 1 - q
        cdf_levels = 1 - LEVELS
        mirrored_drift = -drift
    expected = np.array(
        [
            optimize.brentq(lambda m, p=p: running_max_cdf(m, mirrored_drift, tau) - p, 0, 1)
            for p in cdf_levels
        ]
    )
    h = 1e-6
    density = (
        running_max_cdf(expected + h, mirrored_drift, tau)
        - running_max_cdf(expected - h, mirrored_drift, tau)
    ) / (2 * h)
    # A log-space quantile error d maps to about S0 e^m d in price; compare in log space.
    tol = Z * quantile_se(cdf_levels, density, n)
    np.testing.assert_array_less(np.abs(got - expected), tol)


def test_daily_monitoring_understates_the_continuous_range() -> None:
    # Without the bridge only the 5 closes count: the median path maximum is lower.
    plain = rust_filters.simulate_gbm(S0, MU, SIGMA, 50_000, 5, seed=5)
    bridged = rust_filters.simulate_gbm(S0, MU, SIGMA, 50_000, 5, seed=5, bridge=True)
    assert plain.path_max[2] < bridged.path_max[2]
    assert plain.path_min[2] > bridged.path_min[2]


def test_summary_is_numpys_linear_quantile_of_the_samples() -> None:
    levels = [0.0, 0.05, 0.3333, 0.5, 0.95, 1.0]
    s = rust_filters.simulate_gbm(
        S0, MU, SIGMA, 123_457, 7, levels=levels, seed=6, keep_samples=True
    )
    assert s.samples_terminal is not None
    assert s.samples_min is not None and s.samples_max is not None
    np.testing.assert_array_equal(s.terminal, np.quantile(s.samples_terminal, levels))
    np.testing.assert_array_equal(s.path_min, np.quantile(s.samples_min, levels))
    np.testing.assert_array_equal(s.path_max, np.quantile(s.samples_max, levels))
    assert s.mean_terminal == pytest.approx(s.samples_terminal.mean(), rel=1e-12)
    # S_0 is part of every path.
    assert np.all(s.samples_min <= S0) and np.all(s.samples_max >= S0)
    assert np.all(s.samples_min <= s.samples_terminal)
    assert np.all(s.samples_terminal <= s.samples_max)


def test_path_range_is_the_narrowest_equal_tail_range_at_the_confidence() -> None:
    n = 20_000
    s = rust_filters.simulate_gbm(
        S0, MU, SIGMA, n, 21, seed=7, path_confidence=0.9, keep_samples=True
    )
    assert s.samples_min is not None and s.samples_max is not None
    assert s.path_low is not None and s.path_high is not None and s.tail_q is not None
    lo, hi = s.samples_min, s.samples_max
    share = np.mean((lo >= s.path_low) & (hi <= s.path_high))
    assert share == s.path_coverage
    assert share >= 0.9
    k = round(s.tail_q * (n - 1))
    sorted_lo, sorted_hi = np.sort(lo), np.sort(hi)
    assert (s.path_low, s.path_high) == (sorted_lo[k], sorted_hi[n - 1 - k])
    # One more path trimmed from each tail drops below the confidence.
    tighter = np.mean((lo >= sorted_lo[k + 1]) & (hi <= sorted_hi[n - 2 - k]))
    assert tighter < 0.9
    assert s.path_confidence == 0.9


def test_no_path_range_unless_asked() -> None:
    s = rust_filters.simulate_gbm(S0, MU, SIGMA, 100, 5)
    assert (s.path_low, s.path_high, s.tail_q, s.path_confidence) == (None, None, None, None)
    assert s.samples_terminal is None
    assert "SimulationSummary(n_paths=100, n_steps=5" in repr(s)


def summary_arrays(s: rust_filters.SimulationSummary) -> list[object]:
    return [
        s.terminal,
        s.path_min,
        s.path_max,
        s.mean_terminal,
        s.path_low,
        s.path_high,
        s.samples_terminal,
        s.samples_min,
        s.samples_max,
    ]


@pytest.mark.parametrize("bridge", [False, True])
def test_identical_output_with_one_and_two_threads(bridge: bool) -> None:
    def run(threads: int | None) -> list[object]:
        s = rust_filters.simulate_gbm(
            S0,
            MU,
            SIGMA,
            10_007,
            13,
            sigma_path=np.linspace(0.1, 0.3, 13),
            seed=8,
            threads=threads,
            bridge=bridge,
            path_confidence=0.8,
            keep_samples=True,
        )
        return summary_arrays(s)

    one = run(1)
    for other in (run(2), run(None)):
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_seed_selects_the_stream() -> None:
    a = rust_filters.simulate_gbm(S0, MU, SIGMA, 1_000, 5, seed=9)
    b = rust_filters.simulate_gbm(S0, MU, SIGMA, 1_000, 5, seed=9)
    c = rust_filters.simulate_gbm(S0, MU, SIGMA, 1_000, 5, seed=10)
    np.testing.assert_array_equal(a.terminal, b.terminal)
    assert not np.array_equal(a.terminal, c.terminal)


def test_the_gil_is_released_while_simulating() -> None:
    # No timing is asserted: any tick of the main thread during the call proves the release.
    assert runs_other_threads(
        lambda: rust_filters.simulate_gbm(S0, MU, SIGMA, 400_000, 50, threads=1)
    )


BAD_GBM_ARGUMENTS = [
    ({"s0": math.nan}, "s0"),
    ({"s0": -1.0}, "s0"),
    ({"mu": math.inf}, "mu"),
    ({"sigma": -0.2}, "sigma"),
    ({"sigma": math.nan}, "sigma"),
    ({"n_paths": 0}, "n_paths"),
    ({"n_paths": -5}, "n_paths"),
    ({"n_steps": 0}, "n_steps"),
    # Sizes beyond the bounds: these once aborted the process on the allocation.
    ({"n_paths": 10**12}, "n_paths"),
    ({"n_paths": rust_filters.MAX_PATHS + 1}, "n_paths"),
    ({"n_paths": 10**9, "keep_samples": True}, "n_paths"),
    ({"n_steps": 10**12, "n_paths": 1}, "n_steps"),
    ({"dt": 0.0}, "dt"),
    ({"levels": [0.5, 1.5]}, r"levels\[1\]"),
    ({"levels": [math.nan]}, r"levels\[0\]"),
    ({"levels": [-0.1]}, r"levels\[0\]"),
    ({"levels": []}, "levels"),
    ({"sigma_path": [0.2] * 4}, "sigma_path"),
    ({"sigma_path": [0.2, 0.2, -0.1, 0.2, 0.2]}, r"sigma_path\[2\]"),
    ({"sigma_path": [0.2, math.nan, 0.2, 0.2, 0.2]}, r"sigma_path\[1\]"),
    ({"threads": 0}, "threads"),
    ({"threads": 10**6}, "threads"),  # once a PanicException from the pool builder
    ({"seed": -1}, "seed"),
    ({"levels": np.full((2, 2), 0.5)}, "levels"),  # once "dimensionality mismatch"
    ({"sigma_path": np.full((5, 1), 0.2)}, "sigma_path"),
    ({"path_confidence": 0.0}, "path_confidence"),
    ({"path_confidence": 1.5}, "path_confidence"),
    ({"path_confidence": 1.0}, r"path_confidence must be in \(0, 1\)"),  # as BootstrapPF
]


@pytest.mark.parametrize(("bad", "argument"), BAD_GBM_ARGUMENTS)
def test_invalid_input_is_a_value_error_naming_the_argument(
    bad: dict[str, object], argument: str
) -> None:
    kwargs: dict[str, object] = {
        "s0": S0,
        "mu": MU,
        "sigma": SIGMA,
        "n_paths": 100,
        "n_steps": 5,
    } | bad
    with pytest.raises(ValueError, match=argument):
        rust_filters.simulate_gbm(**kwargs)  # type: ignore[arg-type]


def test_numpy_references_match_the_lognormal() -> None:
    # The benchmark's Python column: same law as the Rust core (different streams).
    n, t = 100_000, 5
    tau = t * DT
    law = lognormal_terminal((MU - SIGMA**2 / 2) * tau, SIGMA * math.sqrt(tau))
    expected = law.ppf(LEVELS)
    tol = Z * quantile_se(LEVELS, law.pdf(expected), n)
    for f in (ref.gbm_numpy, ref.gbm_numpy_naive):
        r = f(S0, MU, SIGMA, n, t)
        np.testing.assert_array_less(np.abs(r.terminal - expected), tol)
        assert np.all(r.path_min <= S0) and np.all(r.path_max >= S0)
