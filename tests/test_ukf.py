"""The Rust UKF against its oracles: the exact Kalman filter, the workload check values,
the NumPy reference and filterpy; snapshots; invalid input; divergence; the Python model."""

from __future__ import annotations

import math
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter

from rust_filters._core import (
    UKF,
    LinearGaussianModel,
    PythonModel,
    SmileModel,
    StochVolModel,
    StochVolPriceModel,
)
from rust_filters.reference import ukf as ref
from rust_filters.reference.kalman import kalman_filter

DATA = Path(__file__).parents[1] / "benchmarks" / "spec" / "data" / "sv_T1000_seed20240601.csv"

# Check values of benchmarks/spec/WORKLOADS.md section 1.
CHECK = {
    "ukf2-sv": ([-1.744815017260, 0.009094679658], 0.27309285471, -876.35778530791),
    "ukf3-svp": (
        [508.032815548564, 0.011095476404, -1.744357525648],
        0.27564673312,
        -876.45836750589,
    ),
}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return ref.load_workload(DATA)


def sv_filter() -> UKF:
    model = StochVolModel()
    x0, P0 = model.workload_prior()
    return UKF(model, x0, P0)


def svp_filter() -> UKF:
    model = StochVolPriceModel()
    x0, P0 = model.workload_prior()
    return UKF(model, x0, P0)


def sv_obs(d: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([d["r"], np.abs(d["r"])])


def svp_obs(d: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([d["p"], np.abs(d["r"])])


def assert_check_values(name: str, x_T: np.ndarray, P_T: np.ndarray, sum_h: float) -> None:
    x_ref, trace_ref, sum_ref = CHECK[name]
    np.testing.assert_allclose(x_T, x_ref, rtol=1e-9, atol=1e-12)
    assert np.trace(P_T) == pytest.approx(trace_ref, rel=1e-9)
    assert sum_h == pytest.approx(sum_ref, rel=1e-9)


# ---- exactness on a linear-Gaussian model -------------------------------------------------


@pytest.mark.parametrize(("n", "m", "seed"), [(1, 1, 0), (2, 1, 1), (3, 2, 2), (4, 3, 3)])
def test_linear_gaussian_equals_exact_kalman(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    F = 0.5 * rng.standard_normal((n, n)) + 0.5 * np.eye(n)
    H = rng.standard_normal((m, n))
    A = rng.standard_normal((n, n))
    Q = A @ A.T / n + 0.1 * np.eye(n)
    B = rng.standard_normal((m, m))
    R = B @ B.T / m + 0.2 * np.eye(m)
    c, d = rng.standard_normal(n), rng.standard_normal(m)
    x0, P0 = rng.standard_normal(n), np.eye(n) * 2.0
    zs = rng.standard_normal((200, m)) * 3.0
    exact = kalman_filter(zs, F, H, Q, R, x0, P0, c, d)
    ukf = UKF(LinearGaussianModel(F, H, Q, R, c, d), x0, P0)
    means, covs, ll = ukf.filter(zs)
    np.testing.assert_allclose(means, exact.means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covs, exact.covariances, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ll, exact.loglik, rtol=1e-9, atol=1e-9)
    # The streaming call gives the same numbers as the batch.
    stream = UKF(LinearGaussianModel(F, H, Q, R, c, d), x0, P0)
    ll_stream = [stream.step(z) for z in zs]
    np.testing.assert_array_equal(ll_stream, ll)
    np.testing.assert_array_equal(stream.x, means[-1])


# ---- the workloads ------------------------------------------------------------------------


def test_ukf2_sv_check_values(data: dict[str, np.ndarray]) -> None:
    ukf = sv_filter()
    means, covs, _ = ukf.filter(sv_obs(data))
    assert_check_values("ukf2-sv", ukf.x, ukf.P, means[:, 0].sum())
    np.testing.assert_array_equal(covs[-1], ukf.P)


def test_ukf3_svp_check_values(data: dict[str, np.ndarray]) -> None:
    ukf = svp_filter()
    means, _, _ = ukf.filter(svp_obs(data))
    assert_check_values("ukf3-svp", ukf.x, ukf.P, means[:, 2].sum())


def test_per_step_calls_reproduce_the_check_values(data: dict[str, np.ndarray]) -> None:
    ukf = sv_filter()
    sum_h = 0.0
    for z in sv_obs(data).tolist():  # plain float lists: the cheapest streaming input
        ukf.step(z)
        sum_h += float(ukf.x[0])
    assert_check_values("ukf2-sv", ukf.x, ukf.P, sum_h)


def test_numpy_reference_reproduces_the_check_values(data: dict[str, np.ndarray]) -> None:
    r2 = ref.ukf2_sv(data["r"])
    assert_check_values("ukf2-sv", r2.means[-1], r2.covariances[-1], r2.means[:, 0].sum())
    r3 = ref.ukf3_svp(data["r"], data["p"])
    assert_check_values("ukf3-svp", r3.means[-1], r3.covariances[-1], r3.means[:, 2].sum())


def test_rust_matches_numpy_reference_at_every_step(data: dict[str, np.ndarray]) -> None:
    r3 = ref.ukf3_svp(data["r"], data["p"])
    means, covs, ll = svp_filter().filter(svp_obs(data))
    np.testing.assert_allclose(means, r3.means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covs, r3.covariances, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ll, r3.loglik, rtol=1e-9, atol=1e-9)


def test_rust_matches_filterpy(data: dict[str, np.ndarray]) -> None:
    mu, phi, sigma = ref.MU, ref.PHI, ref.SIGMA
    points = MerweScaledSigmaPoints(2, alpha=0.1, beta=2.0, kappa=1.0)
    fp = UnscentedKalmanFilter(
        2,
        2,
        1.0,
        lambda x: np.array([x[1], ref.C_ABS * np.exp(x[0] / 2)]),
        lambda x, dt: np.array([mu + phi * (x[0] - mu), x[1]]),
        points,
    )
    fp.x, fp.P = np.array([mu, 0.0]), np.diag([ref.V0, 0.01])
    fp.Q = np.diag([sigma**2, 0.01**2])
    fp.R = np.diag([np.exp(mu), (1 - 2 / np.pi) * np.exp(mu)])
    ukf = sv_filter()
    for z in sv_obs(data)[:200]:
        fp.predict()
        fp.update(z)
        ll = ukf.step(z)
        np.testing.assert_allclose(ukf.x, fp.x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ukf.P, fp.P, rtol=1e-10, atol=1e-14)
        assert ll == pytest.approx(fp.log_likelihood, rel=1e-10)


def test_time_step_two_equals_two_unit_steps() -> None:
    # OU log-variance and random-walk drift compose exactly; the UKF is exact for the
    # linear transition, so one predict of dt=2 equals two of dt=1 up to rounding.
    a, b = sv_filter(), sv_filter()
    a.predict(2.0)
    b.predict(1.0)
    b.predict(1.0)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12)
    np.testing.assert_allclose(a.P, b.P, rtol=1e-12)


def test_irregular_steps_in_batch_equal_streaming(data: dict[str, np.ndarray]) -> None:
    zs = svp_obs(data)[:300]
    dts = np.random.default_rng(5).uniform(0.2, 3.0, len(zs))
    means, _, ll = svp_filter().filter(zs, dts)
    stream = svp_filter()
    ll_stream = [stream.step(z, dt) for z, dt in zip(zs, dts, strict=True)]
    np.testing.assert_array_equal(ll, ll_stream)
    np.testing.assert_array_equal(means[-1], stream.x)


def test_batch_input_layout_does_not_matter(data: dict[str, np.ndarray]) -> None:
    zs = sv_obs(data)[:100]
    expected = sv_filter().filter(zs)
    for variant in (np.asfortranarray(zs), zs.tolist(), np.hstack([zs, zs])[:, :2]):
        got = sv_filter().filter(variant)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


# ---- state --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [sv_filter, svp_filter])
def test_snapshot_restore_continues_bit_identically(
    make: Callable[[], UKF], data: dict[str, np.ndarray]
) -> None:
    zs = (sv_obs if make is sv_filter else svp_obs)(data)
    a = make()
    a.filter(zs[:400])
    b = UKF.restore(a.snapshot())
    c = pickle.loads(pickle.dumps(a))
    outs = [u.filter(zs[400:], np.full(600, 0.7)) for u in (a, b, c)]
    for other in outs[1:]:
        for x, y in zip(outs[0], other, strict=True):
            np.testing.assert_array_equal(x, y)
    assert a.snapshot() == b.snapshot() == c.snapshot()


def test_snapshot_of_linear_and_smile_filters_round_trips() -> None:
    lin = UKF(LinearGaussianModel([[0.9]], [[1.0]], [[0.1]], [[0.2]]), [0.0], [[1.0]])
    lin.step([0.5])
    lin2 = pickle.loads(pickle.dumps(lin))
    assert lin2.step([0.1]) == lin.step([0.1])
    smile = UKF(SmileModel(), [0.2, 0.0, 0.0], np.eye(3) * 0.01)
    smile.step_quotes([-1.0, 0.0, 1.0], 0.25, [0.25, 0.2, 0.19], 1 / 252)
    smile2 = UKF.restore(smile.snapshot())
    args = ([-0.5, 0.5], [0.1, 0.5], [0.22, 0.18], 1 / 252)
    assert smile.step_quotes(*args) == smile2.step_quotes(*args)
    np.testing.assert_array_equal(smile.P, smile2.P)
    assert isinstance(smile2.model, SmileModel) and smile2.model.noise_sd == 0.01


def test_restore_rejects_bad_bytes() -> None:
    data = sv_filter().snapshot()
    with pytest.raises(ValueError, match="snapshot"):
        UKF.restore(b"garbage!")
    with pytest.raises(ValueError):
        UKF.restore(data[:-3])


def test_restore_refuses_a_snapshot_with_corrupt_values() -> None:
    # Each f64 is stored as its 8 IEEE bytes: overwrite one value in place. Restored
    # before, these gave a filter running on NaN, alpha = 0 or an indefinite P.
    model = StochVolModel()
    ukf = UKF(model, *model.workload_prior())
    ukf.step([0.3, 0.3])
    data = ukf.snapshot()

    def patched(old: float, new: float) -> bytes:
        packed = struct.pack("<d", old)
        assert data.count(packed) >= 1
        return data.replace(packed, struct.pack("<d", new), 1)

    for old, new, argument in [
        (ukf.x[0], math.nan, "x must be finite"),
        (ukf.alpha, math.nan, "alpha"),
        (ukf.alpha, 0.0, "alpha"),
        (ukf.P[0, 0], -5.0, "P must be"),
        (model.phi, 7.0, "phi"),
        (model.sigma, -1.0, "sigma"),
    ]:
        with pytest.raises(ValueError, match=f"corrupt UKF snapshot: {argument}"):
            UKF.restore(patched(old, new))


def test_models_pickle() -> None:
    for model in (
        StochVolModel(phi=0.95),
        StochVolPriceModel(price_sd=0.1),
        SmileModel([0.3, -0.1, 0.02], 1.0, 0.2, measurement="delta", noise_sd=0.02),
    ):
        back = pickle.loads(pickle.dumps(model))
        assert type(back) is type(model)
        assert repr(back) == repr(model) or back.__reduce__()[1] == model.__reduce__()[1]
    lin = pickle.loads(pickle.dumps(LinearGaussianModel([[1.0]], [[2.0]], [[0.1]], [[0.3]])))
    assert UKF(lin, [0.0], [[1.0]]).update([2.0]) == pytest.approx(
        kalman_filter([[2.0]], [[1.0]], [[2.0]], [[0.0]], [[0.3]], [0.0], [[1.0]]).loglik[0]
    )


# ---- invalid input ------------------------------------------------------------------------


def test_invalid_observations_are_rejected_and_state_unchanged(
    data: dict[str, np.ndarray],
) -> None:
    ukf = sv_filter()
    ukf.filter(sv_obs(data)[:10])
    before = ukf.snapshot()
    bad_calls = [
        (lambda: ukf.step([np.nan, 0.1]), "z must be finite"),
        (lambda: ukf.step(np.array([0.1, np.inf])), "z must be finite"),
        (lambda: ukf.step([0.1]), "z must have length 2"),
        (lambda: ukf.step([0.1, 0.1], dt=-1.0), "dt must be finite and >= 0"),
        (lambda: ukf.step([0.1, 0.1], dt=float("nan")), "dt"),
        (lambda: ukf.update([0.1, 0.1, 0.1]), "length 2"),
        (lambda: ukf.predict(float("inf")), "dt"),
        (lambda: ukf.filter([[0.1, 0.1], [np.nan, 0.1]]), "row 1"),
        (lambda: ukf.filter([[0.1, 0.1]], dts=[1.0, 1.0]), "dts must have length 1"),
        (lambda: ukf.filter([[0.1, 0.1]], dts=[-1.0]), "dts must be finite"),
        (lambda: ukf.filter([[0.1, 0.1]], dts=[[1.0]]), "dts must be a 1-D sequence"),
        (lambda: ukf.filter(np.zeros((3, 3))), r"zs must have shape \(T, 2\)"),
        (lambda: ukf.reset(P0=[[1.0, 0.0], [0.0, -1.0]]), "P0 must be positive definite"),
        (lambda: ukf.reset(x0=[np.nan, 0.0]), "x0 must be finite"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            call()
        assert ukf.snapshot() == before
    with pytest.raises(TypeError, match="SmileModel"):
        ukf.update_quotes([0.0], 0.1, [0.2])


def test_invalid_construction_names_the_argument() -> None:
    with pytest.raises(ValueError, match="phi must be in"):
        StochVolModel(phi=1.5)
    with pytest.raises(ValueError, match="sigma"):
        StochVolPriceModel(sigma=-0.1)
    with pytest.raises(ValueError, match="P0 must have shape"):
        UKF(StochVolModel(), [0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="x0 must have length 2"):
        UKF(StochVolModel(), [0.0], np.eye(2))
    with pytest.raises(ValueError, match="alpha"):
        UKF(StochVolModel(), [0.0, 0.0], np.eye(2), alpha=0.0)
    with pytest.raises(ValueError, match="kappa"):
        UKF(StochVolModel(), [0.0, 0.0], np.eye(2), kappa=-5.0)
    with pytest.raises(ValueError, match="measurement must be 'iv' or 'delta'"):
        SmileModel(measurement="price")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must be"):
        UKF(object(), [0.0], [[1.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("q", "r", "message"),
    [
        (np.eye(2), -np.eye(2), "R must be positive definite"),
        (np.eye(2), -0.5 * np.eye(2), "R must be positive definite"),
        (-np.eye(2), np.eye(2), "Q must be positive semi-definite"),
        ([[1.0, 2.0], [2.0, 1.0]], np.eye(2), "Q must be positive semi-definite"),
    ],
)
def test_noise_covariances_that_are_not_definite_are_refused(
    q: npt.ArrayLike, r: npt.ArrayLike, message: str
) -> None:
    # Accepted before, they made P indefinite with no reset and no jitter warning.
    with pytest.raises(ValueError, match=message):
        LinearGaussianModel(np.eye(2), np.eye(2), q, r)
    with pytest.raises(ValueError, match=message):
        PythonModel(lambda x, dt: x, lambda x: x, q, r)


# ---- divergence ---------------------------------------------------------------------------


def test_divergence_resets_and_says_so() -> None:
    # F = 1e200: the predicted variance F^2 P overflows to inf.
    ukf = UKF(LinearGaussianModel([[1e200]], [[1.0]], [[1.0]], [[1.0]]), [0.0], [[1.0]])
    assert not ukf.diverged and ukf.n_resets == 0 and ukf.last_reset_reason is None
    ll = ukf.step([0.0])
    assert ukf.diverged and ukf.n_resets == 1
    assert "non-finite" in (ukf.last_reset_reason or "")
    # After the reset the update ran on the prior, so its likelihood is a number.
    assert np.isfinite(ll)
    ukf.reset(x0=[0.0], P0=[[2.0]])
    assert not ukf.diverged and ukf.n_resets == 1
    np.testing.assert_array_equal(ukf.x, [0.0])
    np.testing.assert_array_equal(ukf.P, [[2.0]])


def test_non_positive_definite_covariance_gets_jitter_not_a_crash() -> None:
    # H = [1, 1] with exact measurements collapses P onto a line: P loses rank and the
    # next sigma points need jitter.
    model = LinearGaussianModel(np.eye(2), [[1.0, 1.0]], np.zeros((2, 2)), [[1e-300]])
    ukf = UKF(model, [0.0, 0.0], np.eye(2))
    for _ in range(5):
        ukf.step([1.0])
    assert ukf.n_jitter > 0 and ukf.n_resets == 0
    assert np.all(np.isfinite(ukf.x)) and np.all(np.isfinite(ukf.P))
    np.testing.assert_array_equal(ukf.P, ukf.P.T)


# ---- the Python-callable model (slow path) -------------------------------------------------


def test_python_model_equals_builtin_model(data: dict[str, np.ndarray]) -> None:
    mu, phi, sigma = ref.MU, ref.PHI, ref.SIGMA
    model = PythonModel(
        lambda x, dt: np.array([mu + phi * (x[0] - mu), x[1]]),
        lambda x: [x[1], ref.C_ABS * np.exp(x[0] / 2)],
        np.diag([sigma**2, 0.01**2]),
        np.diag([np.exp(mu), (1 - 2 / np.pi) * np.exp(mu)]),
    )
    x0, P0 = StochVolModel().workload_prior()
    slow, fast = UKF(model, x0, P0), sv_filter()
    zs = sv_obs(data)[:100]
    means, _, ll = slow.filter(zs)
    means_fast, _, ll_fast = fast.filter(zs)
    np.testing.assert_allclose(means, means_fast, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ll, ll_fast, rtol=1e-12)
    restored = UKF.restore(slow.snapshot(), model)
    assert restored.step(zs[0]) == slow.step(zs[0])


def _failing_hx(x: np.ndarray) -> list[float]:
    raise RuntimeError("broken measurement")


def test_python_model_error_propagates_and_state_unchanged() -> None:
    model = PythonModel(lambda x, dt: x, _failing_hx, [[0.1]], [[0.1]])
    ukf = UKF(model, [0.0], [[1.0]])
    before = ukf.snapshot()
    with pytest.raises(RuntimeError, match="broken measurement"):
        ukf.step([0.0])
    assert ukf.snapshot() == before and ukf.n_resets == 0
    with pytest.raises(ValueError, match="pass model="):
        UKF.restore(before)
