"""Merton jump diffusion in the Rust core against its closed forms.

The log-return over the horizon tau = T dt is exactly (whatever the step count)

    X = (mu - sigma^2/2 - lam kappa) tau + sigma W_tau + sum_{i <= N} Y_i,
    N ~ Poisson(lam tau),  Y_i ~ N(mu_j, sigma_j^2),

so E X = (mu - sigma^2/2 - lam kappa) tau + lam tau mu_j,
Var X = sigma^2 tau + lam tau (mu_j^2 + sigma_j^2), and its CDF is the Poisson mixture
sum_k P(N = k) Phi((x - m - k mu_j) / sqrt(sigma^2 tau + k sigma_j^2)).

Tolerances: the sample mean within 5 s.e. ``sqrt(Var / N)``; the sample variance within
5 s.e. ``sqrt((mu_4 - Var^2) / N)`` with mu_4 = kappa_4 + 3 Var^2 and the compound-Poisson
fourth cumulant kappa_4 = lam tau E[Y^4]; the KS test at level 1e-3 (its p-value is
uniform under the model). Seeds are fixed, so every check is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import rust_filters
from rust_filters.reference import monte_carlo as ref

S0, MU, SIGMA, DT = 100.0, 0.05, 0.20, 1 / 252
Z = 5.0
KS_ALPHA = 1e-3

# (lam, mu_j, sigma_j, n_steps): the workload's parameters over a year; frequent jumps
# over a quarter; and lam dt > 1, where the zero-truncated Poisson count is drawn by
# rejection rather than by inversion.
CASES = [
    (1.0, -0.05, 0.10, 252),
    (20.0, -0.05, 0.10, 63),
    (400.0, 0.0, 0.01, 21),
]


class MertonLaw:
    """Closed forms of the log-return over ``tau``."""

    def __init__(self, lam: float, mu_j: float, sigma_j: float, tau: float) -> None:
        self.lt = lam * tau
        self.mu_j, self.s2j = mu_j, sigma_j**2
        self.tau = tau
        self.m = (MU - SIGMA**2 / 2 - lam * ref.kappa(mu_j, sigma_j)) * tau
        self.mean = self.m + self.lt * mu_j
        self.var = SIGMA**2 * tau + self.lt * (mu_j**2 + self.s2j)
        ey4 = mu_j**4 + 6 * mu_j**2 * self.s2j + 3 * self.s2j**2
        self.mu4 = self.lt * ey4 + 3 * self.var**2

    def cdf(self, x: np.ndarray) -> np.ndarray:
        k_max = int(stats.poisson.ppf(1 - 1e-15, self.lt)) + 1
        out = np.zeros_like(x)
        for k in range(k_max + 1):
            sd = math.sqrt(SIGMA**2 * self.tau + k * self.s2j)
            out += stats.poisson.pmf(k, self.lt) * stats.norm.cdf((x - self.m - k * self.mu_j) / sd)
        return out


def log_returns(lam: float, mu_j: float, sigma_j: float, n: int, t: int, seed: int) -> np.ndarray:
    s = rust_filters.simulate_merton(
        S0, MU, SIGMA, lam, mu_j, sigma_j, n, t, seed=seed, keep_samples=True
    )
    assert s.samples_terminal is not None
    return np.log(s.samples_terminal / S0)


@pytest.mark.parametrize(("lam", "mu_j", "sigma_j", "n_steps"), CASES)
def test_log_return_mean_and_variance(
    lam: float, mu_j: float, sigma_j: float, n_steps: int
) -> None:
    n = 200_000
    x = log_returns(lam, mu_j, sigma_j, n, n_steps, seed=21)
    law = MertonLaw(lam, mu_j, sigma_j, n_steps * DT)
    assert abs(x.mean() - law.mean) < Z * math.sqrt(law.var / n)
    assert abs(x.var(ddof=1) - law.var) < Z * math.sqrt((law.mu4 - law.var**2) / n)


@pytest.mark.parametrize(("lam", "mu_j", "sigma_j", "n_steps"), CASES)
def test_log_returns_pass_ks_against_the_poisson_mixture(
    lam: float, mu_j: float, sigma_j: float, n_steps: int
) -> None:
    x = log_returns(lam, mu_j, sigma_j, 100_000, n_steps, seed=22)
    law = MertonLaw(lam, mu_j, sigma_j, n_steps * DT)
    assert stats.kstest(x, law.cdf).pvalue > KS_ALPHA


def test_ks_detects_a_missing_jump_component() -> None:
    # The same samples against the diffusion-only normal must fail: the test has power.
    lam, mu_j, sigma_j, t = CASES[1]
    x = log_returns(lam, mu_j, sigma_j, 100_000, t, seed=22)
    law = MertonLaw(lam, mu_j, sigma_j, t * DT)
    diffusion_only = stats.norm(law.mean, math.sqrt(law.var)).cdf  # right mean and variance
    assert stats.kstest(x, diffusion_only).pvalue < KS_ALPHA


def test_no_jumps_is_gbm_exactly() -> None:
    a = rust_filters.simulate_gbm(S0, MU, SIGMA, 5_000, 20, seed=23, keep_samples=True)
    b = rust_filters.simulate_merton(
        S0, MU, SIGMA, 0.0, -0.05, 0.1, 5_000, 20, seed=23, keep_samples=True
    )
    np.testing.assert_array_equal(a.samples_terminal, b.samples_terminal)
    np.testing.assert_array_equal(a.samples_min, b.samples_min)


def test_identical_output_with_one_and_two_threads() -> None:
    def run(threads: int | None) -> list[object]:
        s = rust_filters.simulate_merton(
            S0,
            MU,
            SIGMA,
            5.0,
            -0.05,
            0.10,
            9_999,
            40,
            seed=24,
            threads=threads,
            bridge=True,
            path_confidence=0.95,
            keep_samples=True,
        )
        return [s.terminal, s.path_min, s.path_max, s.path_low, s.samples_terminal]

    one = run(1)
    for other in (run(2), run(None)):
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("bad", "argument"),
    [
        ({"lam": -1.0}, "lam"),
        ({"lam": math.nan}, "lam"),
        ({"lam": 1e22}, "lam"),  # once a PanicException from rand_distr's Poisson
        ({"mu_j": math.inf}, "mu_j"),
        ({"sigma_j": -0.1}, "sigma_j"),
        ({"sigma": -0.2}, "sigma"),
        ({"n_paths": 0}, "n_paths"),
        ({"n_paths": 10**12}, "n_paths"),  # once an abort on the allocation
        ({"levels": [2.0]}, "levels"),
        ({"sigma_path": [0.2, 0.2]}, "sigma_path"),
    ],
)
def test_invalid_input_is_a_value_error(bad: dict[str, object], argument: str) -> None:
    kwargs: dict[str, object] = {
        "s0": S0,
        "mu": MU,
        "sigma": SIGMA,
        "lam": 1.0,
        "mu_j": -0.05,
        "sigma_j": 0.1,
        "n_paths": 100,
        "n_steps": 5,
    } | bad
    with pytest.raises(ValueError, match=argument):
        rust_filters.simulate_merton(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "simulate", [ref.merton_numpy, ref.merton_numpy_sparse, ref.merton_numpy_naive]
)
def test_numpy_references_have_the_closed_form_moments(simulate) -> None:  # type: ignore[no-untyped-def]
    # Median terminal price against the mixture's median, within 5 quantile s.e.
    lam, mu_j, sigma_j, t = CASES[1]
    n = 100_000
    r = simulate(S0, MU, SIGMA, lam, mu_j, sigma_j, n, t)
    law = MertonLaw(lam, mu_j, sigma_j, t * DT)
    grid = np.linspace(law.mean - 6 * math.sqrt(law.var), law.mean + 6 * math.sqrt(law.var), 4001)
    cdf = law.cdf(grid)
    median = float(np.interp(0.5, cdf, grid))
    density = float(np.interp(median, grid[1:], np.diff(cdf) / np.diff(grid)))
    se = math.sqrt(0.25 / n) / density
    assert abs(math.log(r.terminal[2] / S0) - median) < Z * se
