"""Particle filters (``rust_filters.BootstrapPF`` / ``EKPF``) against their oracles.

Statistical checks run replicate seeds and set tolerances from the replicates' own
spread (or from a spread measured once and quoted beside the check).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gil import runs_other_threads

import rust_filters
from rust_filters import EKPF, BootstrapPF
from rust_filters.reference.kalman import kalman_filter
from rust_filters.reference.particle import ParticleResult, bootstrap_pf, ekpf

DATA = Path(__file__).parents[1] / "benchmarks" / "spec" / "data"
FilterClass = type[BootstrapPF] | type[EKPF]
FILTERS: list[FilterClass] = [BootstrapPF, EKPF]


@pytest.fixture(scope="module")
def sv_y() -> np.ndarray:
    table = np.genfromtxt(DATA / "sv_T1000_seed20240601.csv", delimiter=",", names=True)
    return np.asarray(table["y"], dtype=float)


# ---- the linear-Gaussian model against the exact Kalman filter -------------------------

C, PHI, SIGMA, TAU = 0.5, 0.8, 0.5, 0.7


def linear_data(T: int, dt: float = 1.0, seed: int = 5) -> np.ndarray:
    """A series from x_t = c + phi x_{t-1} + sigma eta (sampled every dt), y = x + tau eps."""
    rng = np.random.default_rng(seed)
    m, v = C / (1 - PHI), SIGMA**2 / (1 - PHI**2)
    a, q = PHI**dt, v * (1 - PHI ** (2 * dt))
    x = m + np.sqrt(v) * rng.standard_normal()
    ys = np.empty(T)
    for t in range(T):
        if t > 0:
            x = m + a * (x - m) + np.sqrt(q) * rng.standard_normal()
        ys[t] = x + TAU * rng.standard_normal()
    return ys


def kalman_loglik(ys: np.ndarray, dt: float = 1.0) -> float:
    """The exact log-likelihood; the stationary x0, P0 make the first predict a no-op."""
    m, v = C / (1 - PHI), SIGMA**2 / (1 - PHI**2)
    a = PHI**dt
    result = kalman_filter(ys, F=a, H=1.0, Q=v * (1 - a * a), R=TAU**2, x0=m, P0=v, c=m * (1 - a))
    return float(result.loglik.sum())


@pytest.mark.parametrize("cls", FILTERS)
@pytest.mark.parametrize("dt", [1.0, 2.5])
def test_linear_gaussian_loglik_matches_kalman(cls: FilterClass, dt: float) -> None:
    ys = linear_data(200, dt)
    exact = kalman_loglik(ys, dt)
    lls = []
    for seed in range(8):
        f = cls.linear_gaussian(2000, c=C, phi=PHI, sigma=SIGMA, tau=TAU, seed=seed)
        f.filter(ys, np.full(ys.size, dt))
        lls.append(f.loglik)
    mean, sd = float(np.mean(lls)), float(np.std(lls, ddof=1))
    # The log of an unbiased likelihood estimate is biased by about -var/2; the mean of 8
    # replicates is then within 5 standard errors of that.
    assert abs(mean - (exact - sd**2 / 2)) < 5 * sd / np.sqrt(8) + 1e-9, (mean, sd, exact)
    # A broken filter must not hide behind a wide spread (measured: ~0.1 bootstrap,
    # ~0.01 EKPF, whose proposal is exact for this model).
    assert sd < 0.5


def test_ekpf_first_increment_is_exact_on_the_linear_model() -> None:
    # At t = 0 the EKF proposal is the exact posterior, so every particle's weight is p(y_0).
    ys = linear_data(1)
    f = EKPF.linear_gaussian(50, c=C, phi=PHI, sigma=SIGMA, tau=TAU, seed=1)
    assert f.step(float(ys[0])) == pytest.approx(kalman_loglik(ys), abs=1e-12)


# ---- the workload's SV data -------------------------------------------------------------


def test_bootstrap_loglik_matches_the_workload(sv_y: np.ndarray) -> None:
    # Replicate s.d. of the total at N = 10,000, T = 1000: 0.09 over 16 seeds of the Rust
    # filter (mean -1054.92), 0.12 over 8 seeds of the NumPy reference (mean -1054.96);
    # WORKLOADS.md: about -1055. 0.6 = 5 s.d. around -1054.94.
    f = BootstrapPF(10_000, seed=7)
    increments = f.filter(sv_y)
    assert f.loglik == pytest.approx(-1054.94, abs=0.6)
    assert increments.sum() == pytest.approx(f.loglik, abs=1e-9)
    assert f.n_observations == 1000
    assert 20 < f.n_resamples < 200


def test_ekpf_loglik_matches_the_workload(sv_y: np.ndarray) -> None:
    # Replicate s.d. at N = 10,000, T = 100: 0.12 over 60 seeds of the Rust filter (mean
    # -119.69), 0.14 over 60 seeds of the NumPy reference (mean -119.65); WORKLOADS.md's
    # single run: about -119.3. 0.65 = 5 s.d. around -119.66.
    f = EKPF(10_000, seed=7)
    f.filter(sv_y[:100])
    assert f.loglik == pytest.approx(-119.66, abs=0.65)


@pytest.mark.parametrize(("cls", "reference"), [(BootstrapPF, bootstrap_pf), (EKPF, ekpf)])
def test_rust_and_numpy_reference_agree(
    sv_y: np.ndarray, cls: FilterClass, reference: Callable[..., ParticleResult]
) -> None:
    # Independent random streams, so compare replicate means: two-sample, 5 standard errors.
    y = sv_y[:150]
    rust = [cls(1000, seed=s).filter(y).sum() for s in range(6)]
    ref = [reference(y, 1000, seed=s).total_loglik for s in range(6)]
    se = np.sqrt(np.var(rust, ddof=1) / 6 + np.var(ref, ddof=1) / 6)
    assert abs(np.mean(rust) - np.mean(ref)) < 5 * se, (np.mean(rust), np.mean(ref), se)
    # Filtered means at the last step agree too (their spread over seeds sets the scale).
    rust_means = []
    for s in range(6):
        f = cls(1000, seed=s)
        f.filter(y)
        rust_means.append(f.mean())
    ref_means = [reference(y, 1000, seed=s).means[-1] for s in range(6)]
    se_m = np.sqrt(np.var(rust_means, ddof=1) / 6 + np.var(ref_means, ddof=1) / 6)
    assert abs(np.mean(rust_means) - np.mean(ref_means)) < 5 * se_m + 1e-3


# ---- determinism and state ---------------------------------------------------------------


def outputs(f: BootstrapPF | EKPF, y: np.ndarray) -> list[bytes]:
    inc = f.filter(y)
    x, w = f.particles()
    fc = f.forecast(5, price=100.0, path_confidence=0.9)
    return [
        inc.tobytes(),
        x.tobytes(),
        w.tobytes(),
        np.float64(f.mean()).tobytes(),
        f.quantiles([0.05, 0.5, 0.95]).tobytes(),
        *(fc[k].tobytes() for k in ("price", "path_min", "path_max", "path_range")),
    ]


@pytest.mark.parametrize("cls", FILTERS)
def test_identical_output_with_one_and_two_threads(sv_y: np.ndarray, cls: FilterClass) -> None:
    # 5000 particles = four full chunks of 1024 and a partial one.
    one = cls(5000, seed=3, threads=1)
    two = cls(5000, seed=3, threads=2)
    assert outputs(one, sv_y[:200]) == outputs(two, sv_y[:200])
    assert one.n_resamples == two.n_resamples > 5


@pytest.mark.parametrize("cls", FILTERS)
def test_snapshot_restore_continues_bit_identically(sv_y: np.ndarray, cls: FilterClass) -> None:
    f = cls(3000, seed=9, threads=2)
    f.filter(sv_y[:80])
    data = f.snapshot()
    g = cls.restore(data)
    h = pickle.loads(pickle.dumps(f))
    assert type(h) is cls
    expected = outputs(f, sv_y[80:160])
    assert outputs(g, sv_y[80:160]) == expected
    assert outputs(h, sv_y[80:160]) == expected
    assert g.loglik == f.loglik and g.n_resamples == f.n_resamples


def test_snapshot_of_one_kind_does_not_restore_as_another() -> None:
    data = BootstrapPF(100, seed=1).snapshot()
    with pytest.raises(ValueError, match="BootstrapPF"):
        EKPF.restore(data)
    with pytest.raises(ValueError):
        BootstrapPF.restore(data[:-3])


# ---- invalid input and degeneracy ---------------------------------------------------------


@pytest.mark.parametrize("cls", FILTERS)
def test_invalid_input_raises_and_leaves_the_state_unchanged(
    sv_y: np.ndarray, cls: FilterClass
) -> None:
    f = cls(500, seed=2, threads=1)
    f.filter(sv_y[:20])
    before = f.snapshot()
    calls = [
        lambda: f.step(float("nan")),
        lambda: f.step(float("inf")),
        lambda: f.step(0.1, dt=0.0),
        lambda: f.step(0.1, dt=-1.0),
        lambda: f.filter(np.array([0.1, np.nan, 0.2])),
        lambda: f.filter(np.array([0.1, 0.2]), np.array([1.0, 0.0])),
        lambda: f.filter(np.array([0.1, 0.2]), np.array([1.0])),
        lambda: f.set_params(phi=1.0),
        lambda: f.set_params(phi=-1.2),
        lambda: f.set_params(sigma=0.0),
        lambda: f.set_params(sigma=-0.1),
        lambda: f.set_params(tau=1.0),  # not a parameter of the SV model
        lambda: f.quantiles([0.5, 1.5]),
        lambda: f.quantiles([]),  # once an empty array, as Monte Carlo refuses it
        lambda: f.forecast(3, price=100.0, levels=[]),
        lambda: f.forecast(0, price=100.0),
        lambda: f.forecast(3, price=-1.0),
        lambda: f.forecast(3, price=100.0, path_confidence=1.0),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()
    assert f.snapshot() == before


@pytest.mark.parametrize("cls", FILTERS)
@pytest.mark.parametrize("n_particles", [0, -5])
def test_too_few_particles_raise_value_error(cls: FilterClass, n_particles: int) -> None:
    with pytest.raises(ValueError, match="n_particles"):
        cls(n_particles)


HUGE = 10**12  # terabytes of particles or paths: refused by the bound, never allocated


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: BootstrapPF(HUGE), "n_particles"),
        (lambda: EKPF(HUGE), "n_particles"),
        (lambda: BootstrapPF(rust_filters.MAX_PARTICLES + 1), "n_particles"),
        (
            lambda: EKPF.linear_gaussian(HUGE, c=0.0, phi=0.5, sigma=1.0, tau=1.0),
            "n_particles",
        ),
        (lambda: BootstrapPF(100).forecast(1, price=100.0, n_paths=HUGE), "n_paths"),
        (
            lambda: BootstrapPF(100).forecast(
                1, price=100.0, n_paths=rust_filters.MAX_FORECAST_PATHS + 1
            ),
            "n_paths",
        ),
        # Not an allocation: a forecast that would run for days, uninterruptibly.
        (lambda: BootstrapPF(100).forecast(rust_filters.MAX_STEPS + 1, price=100.0), "steps"),
        (lambda: EKPF(100).forecast(HUGE, price=100.0), "steps"),
    ],
)
def test_sizes_beyond_the_bound_raise_value_error_naming_the_argument(
    make: Callable[[], object], argument: str
) -> None:
    # These once aborted the process on the allocation (a crash, not an exception).
    with pytest.raises(ValueError, match=f"{argument} must be in \\[1, "):
        make()


@pytest.mark.parametrize("cls", FILTERS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"phi": 1.0},
        {"phi": -1.0},
        {"sigma": 0.0},
        {"mu": float("nan")},
        {"ess_threshold": 1.5},
        {"threads": 0},
        {"threads": 10**6},  # once seconds of thread spawning before the error
    ],
)
def test_bad_construction_raises_value_error(cls: FilterClass, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(100, **kwargs)


@pytest.mark.parametrize("cls", FILTERS)
def test_argument_errors_name_the_argument(cls: FilterClass) -> None:
    # Once OverflowError ("can't convert negative int to unsigned") or TypeError
    # ("dimensionality mismatch") without the argument's name.
    f = cls(100, seed=1)
    f.step(0.1)
    grid = np.full((2, 2), 0.5)
    calls = [
        (lambda: cls(100, seed=-1), "seed"),
        (lambda: cls(100, seed=2**64), "seed"),
        (lambda: cls.linear_gaussian(100, c=C, phi=PHI, sigma=SIGMA, tau=TAU, seed=-1), "seed"),
        (lambda: f.forecast(2, price=100.0, seed=-1), "seed"),
        (lambda: f.quantiles(grid), "levels"),
        (lambda: f.forecast(2, price=100.0, levels=grid), "levels"),
        (lambda: f.forecast(2, price=100.0, levels=[[0.5]]), "levels"),
        (lambda: f.filter(grid), "ys"),
        (lambda: f.filter([0.1, 0.2], grid), "dts"),
    ]
    before = f.snapshot()
    for call, argument in calls:
        with pytest.raises(ValueError, match=argument):
            call()
    assert f.snapshot() == before


def test_a_crash_return_keeps_the_ekpf_range_sane_and_is_counted() -> None:
    # The audit's case: a year of ~1 %/day returns, then a 23-sigma drop. The EKF
    # proposal overshot by tens of log-variance units (5-day range 330..70,230 on 4500,
    # the bootstrap filter 4042..5026); the degenerate step is redone with the Laplace
    # proposal and counted in n_degenerate.
    base = np.random.default_rng(0).standard_normal(250)
    ranges = {}
    for cls in FILTERS:
        f = cls(2000, mu=0.0, phi=0.98, sigma=0.15, seed=1)
        f.filter(base)
        assert f.n_degenerate == 0
        f.step(-22.9)
        fc = f.forecast(5, price=4500.0, path_confidence=0.9)
        ranges[cls] = (fc["price"][0], fc["price"][-1])
        # A handful of effective particles after such a return, whatever the proposal.
        assert f.n_degenerate == 1 and f.ess < 0.01 * 2000
        assert cls.restore(f.snapshot()).n_degenerate == 1
    # Both proposals target the same posterior: the 5 % and 95 % price quantiles agree
    # within a few percent (Monte Carlo error of a degenerate cloud), not orders of
    # magnitude.
    for ekpf_q, bootstrap_q in zip(ranges[EKPF], ranges[BootstrapPF], strict=True):
        assert ekpf_q == pytest.approx(bootstrap_q, rel=0.05)


@pytest.mark.parametrize("cls", FILTERS)
def test_degenerate_weights_reset_and_say_so(sv_y: np.ndarray, cls: FilterClass) -> None:
    f = cls(2000, seed=4, threads=2)
    f.filter(sv_y[:5])
    assert f.n_resets == 0 and f.last_reset_reason is None
    # y^2 overflows to inf: the observation is impossible under every particle.
    assert f.step(1e200) == -np.inf
    assert f.n_resets == 1
    assert f.n_degenerate == 1
    assert "t=5" in (f.last_reset_reason or "")
    assert f.ess == 2000
    assert np.isfinite(f.step(float(sv_y[5])))
    assert np.isfinite(f.mean())


# ---- summaries, parameters, forecasts --------------------------------------------------


@pytest.mark.parametrize("cls", FILTERS)
def test_mean_and_quantiles_are_the_weighted_ones(sv_y: np.ndarray, cls: FilterClass) -> None:
    f = cls(3000, seed=6)
    f.filter(sv_y[:50])
    x, w = f.particles()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert f.mean() == pytest.approx(np.average(x, weights=w), abs=1e-12)
    levels = [0.0, 0.05, 0.5, 0.95, 1.0]
    expected = np.quantile(x, levels, weights=w, method="inverted_cdf")
    np.testing.assert_array_equal(f.quantiles(levels), expected)
    assert 1.0 <= f.ess <= 3000


def test_set_params_and_the_linear_model_parameters() -> None:
    f = BootstrapPF(100, seed=1)
    f.set_params(sigma=0.3)
    assert f.params == {"mu": -1.02, "phi": 0.9702, "sigma": 0.3}
    assert f.model == "sv"
    g = EKPF.linear_gaussian(100, c=C, phi=PHI, sigma=SIGMA, tau=TAU)
    g.set_params(tau=1.5)
    assert g.params == {"c": C, "phi": PHI, "sigma": SIGMA, "tau": 1.5}
    assert g.model == "linear-gaussian"
    with pytest.raises(ValueError, match="mu"):
        g.set_params(mu=0.0)


def test_forecast_quantiles_and_path_range(sv_y: np.ndarray) -> None:
    f = BootstrapPF(4000, seed=8, threads=2)
    f.filter(sv_y[:300])
    before = f.snapshot()
    levels = [0.05, 0.1, 0.5, 0.9, 0.95]
    fc = f.forecast(10, price=50.0, levels=levels, path_confidence=0.9, seed=1)
    assert f.snapshot() == before  # a forecast never changes the filter
    assert set(fc) == {"levels", "price", "path_min", "path_max", "path_range"}
    for key in ("price", "path_min", "path_max"):
        assert fc[key].shape == (5,)
        assert np.all(np.diff(fc[key]) >= 0)
    assert fc["path_min"][-1] <= 50.0 <= fc["path_max"][0]
    lo, hi = fc["path_range"]
    # 90 % joint coverage needs a per-side tail q between 5 % (disjoint tails) and 10 %
    # (nested tails): lo between the 5 % and 10 % quantiles of the minimum, hi likewise.
    assert fc["path_min"][0] <= lo <= fc["path_min"][1]
    assert fc["path_max"][3] <= hi <= fc["path_max"][4]
    again = f.forecast(10, price=50.0, levels=levels, path_confidence=0.9, seed=1)
    np.testing.assert_array_equal(fc["price"], again["price"])
    # Within-step extremes widen the path range beyond the closes.
    closes = f.forecast(10, price=50.0, levels=levels, bridge=False, seed=1)
    assert closes["path_max"][-1] < fc["path_max"][-1]
    assert closes["path_min"][0] > fc["path_min"][0]


def test_forecast_spread_matches_the_filtered_volatility(sv_y: np.ndarray) -> None:
    # One step, no bridge: ln(S1/S0) = 0.01 sqrt(e^{h_1}) eps. With h_1 = mean + var/2
    # lognormal moments over the cloud, Var = 1e-4 E[e^{h_1}]; the 16-84 % half-width of a
    # mildly mixed normal is within 15 % of its s.d.
    f = BootstrapPF(20_000, seed=12)
    f.filter(sv_y[:100])
    x, w = f.particles()
    mu, phi, sigma = -1.02, 0.9702, 0.178
    mean_h1 = mu + phi * (x - mu)
    sd = np.sqrt(1e-4 * np.sum(w * np.exp(mean_h1 + sigma**2 / 2)))
    fc = f.forecast(1, price=1.0, levels=[0.1587, 0.8413], n_paths=200_000, bridge=False)
    half = 0.5 * np.diff(np.log(fc["price"]))[0]
    assert half / sd == pytest.approx(1.0, abs=0.15)


def test_uniform_dt_equals_default_dt(sv_y: np.ndarray) -> None:
    a = EKPF(1000, seed=3)
    b = EKPF(1000, seed=3)
    np.testing.assert_array_equal(a.filter(sv_y[:40]), b.filter(sv_y[:40], np.ones(40)))


def test_the_gil_is_released_for_work_proportional_to_the_particles() -> None:
    # A million particles: each call below is tens of milliseconds of Rust work.
    n = 1_000_000
    pf = BootstrapPF(n, seed=1)
    pf.step(0.3)
    saved = pf.snapshot()
    fresh = BootstrapPF(n, seed=2)  # before its first observation: set_params redraws
    calls: dict[str, Callable[[], object]] = {
        "BootstrapPF()": lambda: BootstrapPF(n, seed=3),
        "EKPF()": lambda: EKPF(n, seed=3),
        "linear_gaussian()": lambda: EKPF.linear_gaussian(n, c=C, phi=PHI, sigma=SIGMA, tau=TAU),
        "snapshot": pf.snapshot,
        "restore": lambda: BootstrapPF.restore(saved),
        "pickle": lambda: pickle.dumps(pf),
        "particles": pf.particles,
        "set_params": lambda: fresh.set_params(mu=-0.5),
    }
    held = [name for name, call in calls.items() if not runs_other_threads(call)]
    assert held == []
