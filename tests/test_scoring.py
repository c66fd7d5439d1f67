"""Metrics of QUALITY-PROTOCOL §4 against hand-computed examples and known p-values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from models.scoring import (
    ScoreTable,
    christoffersen_p,
    coverage_by_year,
    diebold_mariano_p,
    dm_lags,
    hac_coverage_p,
    interval_score,
    is_calibrated,
    kupiec_p,
    misses,
    relative_gains,
    score_table,
)


def test_interval_score_close_and_path_by_hand() -> None:
    # [90, 110], α = 0.1 → penalty factor 2/α = 20.
    # inside: width 20; below by 5: 20 + 20·5 = 120; above by 2: 20 + 20·2 = 60.
    got = interval_score([90, 90, 90], [110, 110, 110], [100, 85, 112], [100, 85, 112])
    np.testing.assert_allclose(got, [20.0, 120.0, 60.0])
    # Path: m = 88 (2 below), M = 115 (5 above) → 20 + 20·2 + 20·5 = 160.
    assert interval_score([90], [110], [88], [115])[0] == pytest.approx(160.0)
    lo_miss, hi_miss = misses([90, 90], [110, 110], [88, 95], [115, 105])
    assert lo_miss.tolist() == [True, False]
    assert hi_miss.tolist() == [True, False]


def test_interval_score_is_proper_pinball_identity() -> None:
    # IS = (2/α)[pinball_{α/2}(L; m) + pinball_{1−α/2}(H; M)] + (M − m) (protocol §4).
    rng = np.random.default_rng(1)
    lo, hi = rng.uniform(90, 100, 50), rng.uniform(100, 110, 50)
    m, big_m = rng.uniform(85, 100, 50), rng.uniform(100, 115, 50)
    big_m = np.maximum(big_m, m)

    def pinball(q: np.ndarray, y: np.ndarray, tau: float) -> np.ndarray:
        return (np.where(y < q, 1.0, 0.0) - tau) * (q - y)

    rhs = 20.0 * (pinball(lo, m, 0.05) + pinball(hi, big_m, 0.95)) + (big_m - m)
    np.testing.assert_allclose(interval_score(lo, hi, m, big_m), rhs, rtol=1e-12)


def test_kupiec_known_values() -> None:
    # x = n·α exactly → LR = 0 → p = 1.
    assert kupiec_p([1] * 10 + [0] * 90) == pytest.approx(1.0)
    # x = 0 of 10: LR = −2·10·ln 0.9 = 2.107210, p = 0.146606.
    assert kupiec_p([0] * 10) == pytest.approx(0.14660636611882227, rel=1e-10)
    # x = 120 of 1000: LR = −2[880 ln .9 + 120 ln .1 − 880 ln .88 − 120 ln .12] = 4.204947.
    assert kupiec_p([1] * 120 + [0] * 880) == pytest.approx(0.04030622602053986, rel=1e-10)
    # Order does not matter for unconditional coverage.
    assert kupiec_p([0] * 880 + [1] * 120) == pytest.approx(0.04030622602053986, rel=1e-10)


def test_christoffersen_by_hand() -> None:
    seq = [0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    # Transitions: n00 = 12, n01 = 2, n10 = 2, n11 = 3 (19 pairs).
    # π01 = 2/14, π11 = 3/5, π = 5/19;
    # LR = −2[(14 ln(14/19) + 5 ln(5/19)) − (12 ln(12/14) + 2 ln(2/14) + 2 ln(2/5) + 3 ln(3/5))]
    lr = -2 * (
        (14 * math.log(14 / 19) + 5 * math.log(5 / 19))
        - (
            12 * math.log(12 / 14)
            + 2 * math.log(2 / 14)
            + 2 * math.log(2 / 5)
            + 3 * math.log(3 / 5)
        )
    )
    assert lr == pytest.approx(3.6873232725884755, rel=1e-12)
    assert christoffersen_p(seq) == pytest.approx(0.054827538149653146, rel=1e-10)
    # No misses at all: no evidence against independence.
    assert christoffersen_p([0] * 50) == pytest.approx(1.0)
    # Alternating misses are strongly dependent.
    assert christoffersen_p([0, 1] * 50) < 1e-6


def test_hac_without_lags_is_the_binomial_z_test() -> None:
    # h = 1 → no lags → var(mean) = p̂(1 − p̂)/n.
    x = np.array([1] * 15 + [0] * 85)
    z = (0.15 - 0.10) / math.sqrt(0.15 * 0.85 / 100)
    expected = 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))
    assert hac_coverage_p(x, horizon=1) == pytest.approx(expected, rel=1e-10)


def test_hac_uniform_kernel_by_hand() -> None:
    x = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=float)
    n, lags = x.size, 4
    u = x - x.mean()
    # Hansen–Hodrick: γ0 + 2 Σ_{j=1..4} γj, γj = Σ u_t u_{t−j} (sums; var(mean) = S/n²).
    s = np.dot(u, u) + 2 * sum(np.dot(u[j:], u[:-j]) for j in range(1, lags + 1))
    z = (x.mean() - 0.10) / math.sqrt(s / n**2)
    expected = math.erfc(abs(z) / math.sqrt(2))
    assert hac_coverage_p(x, horizon=5) == pytest.approx(expected, rel=1e-10)


def test_hac_size_on_overlapping_misses() -> None:
    """Under H0 (5-day sums of iid normals beyond their 90% band) the 5% test rejects ≈ 6%.

    400 replications: the s.e. of a 6% rejection rate is √(.06·.94/400) ≈ 1.2 pp, so the
    band 2% .. 11% is > 3 s.e. wide on either side of the protocol's ~6%.
    """
    rng = np.random.default_rng(20240501)
    n, h, reps = 1000, 5, 400
    threshold = 1.6448536269514722 * math.sqrt(h)
    rejections = 0
    for _ in range(reps):
        shocks = rng.standard_normal(n + h - 1)
        sums = np.convolve(shocks, np.ones(h), mode="valid")
        rejections += hac_coverage_p(np.abs(sums) > threshold, horizon=h) < 0.05
    rate = rejections / reps
    assert 0.02 <= rate <= 0.11


def _bartlett_se(d: np.ndarray, lags: int) -> float:
    u = d - d.mean()
    s = np.dot(u, u) + 2 * sum(
        (1 - j / (lags + 1)) * np.dot(u[j:], u[:-j]) for j in range(1, lags + 1)
    )
    return math.sqrt(s) / d.size


def test_diebold_mariano() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert diebold_mariano_p(a, a, horizon=1) == pytest.approx(1.0)
    # Bartlett by hand with n = 200, h = 1: lags = ⌊4·2^{2/9}⌋ = 4.
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 1.0, 200)
    assert dm_lags(200, 1) == 4
    z = d.mean() / _bartlett_se(d, 4)
    assert diebold_mariano_p(d, np.zeros(200), horizon=1) == pytest.approx(
        math.erfc(abs(z) / math.sqrt(2)), rel=1e-10
    )


def test_dm_lags_match_protocol() -> None:
    # "= 6 + h−1 here" for the 1005 / 1001 origins of the main window.
    assert dm_lags(1005, 1) == 6
    assert dm_lags(1001, 5) == 10


def test_calibration_band() -> None:
    assert is_calibrated(88.0) and is_calibrated(92.0) and is_calibrated(90.5)
    assert not is_calibrated(87.9) and not is_calibrated(92.1)
    assert not is_calibrated(float("nan"))


def _frame(n: int, cover_every: int, width: float, seed: int) -> pd.DataFrame:
    """Synthetic forecast frame: close 100, outcome drawn, every k-th origin a miss."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2016-01-01", periods=n, name="origin")
    y = 100 + rng.uniform(-width / 2 + 0.01, width / 2 - 0.01, n)
    miss = np.arange(n) % cover_every == 0
    y[miss] = 100 + width  # above the band by width / 2
    return pd.DataFrame(
        {
            "anchor": 100.0,
            "close_lo": 100 - width / 2,
            "close_hi": 100 + width / 2,
            "path_lo": np.nan,
            "path_hi": np.nan,
            "close": y,
            "path_min": y,
            "path_max": y,
        },
        index=idx,
    )


def test_score_table_ranking_and_marks() -> None:
    n = 500
    frames = {
        "sharp_calibrated": _frame(n, 10, 4.0, 1),  # 90% cover
        "wide_calibrated": _frame(n, 10, 6.0, 2),  # 90% cover, wider → larger IS
        "overconfident": _frame(n, 4, 2.0, 3),  # 75% cover
    }
    table = score_table(frames, "close", horizon=1)
    assert table.best == "sharp_calibrated"
    best = table.row("sharp_calibrated")
    assert best.cover == pytest.approx(90.0)
    assert best.miss_hi == pytest.approx(10.0) and best.miss_lo == 0.0
    assert best.width == pytest.approx(4.0)
    # IS %: width 4 plus 10% of origins at 2 above → 4 + 0.1·20·2 = 8.
    assert best.interval_score == pytest.approx(8.0)
    assert math.isnan(best.dm_p) and math.isnan(best.hac_p)
    assert best.kupiec_p == pytest.approx(1.0)
    assert table.row("wide_calibrated").dm_p < 0.001
    over = table.row("overconfident")
    assert not over.calibrated and over.cover == pytest.approx(75.0)
    # No method has a path range: the path table reports them all as unavailable.
    path = score_table(frames, "path", horizon=1)
    assert path.best is None and all(not r.available for r in path.rows)
    assert all(r.n_missing == n for r in path.rows)


def test_failed_origins_are_left_out_and_counted() -> None:
    frame = _frame(100, 10, 4.0, 5)
    frame.loc[frame.index[:5], "close_lo"] = np.nan
    row = score_table({"m": frame}, "close", horizon=1).row("m")
    assert row.n == 95 and row.n_missing == 5


def test_coverage_by_year() -> None:
    frame = _frame(520, 10, 4.0, 7)
    table = coverage_by_year({"m": frame})
    years = pd.DatetimeIndex(frame.index).year
    assert list(table.index) == sorted(set(years))
    miss = np.arange(520) % 10 == 0
    expected = pd.Series(100 * (1 - miss), index=years).groupby(level=0).mean()
    np.testing.assert_allclose(table["m"].to_numpy(), expected.to_numpy())


def test_relative_gains_by_hand() -> None:
    rng = np.random.default_rng(11)
    idx1 = pd.bdate_range("2016-01-01", periods=300)
    idx5 = idx1[:296]  # the longer horizon has fewer origins

    def series(idx: pd.DatetimeIndex, level: float) -> pd.Series:
        return pd.Series(level * rng.gamma(4.0, 0.25, idx.size), index=idx)

    ref1, other1, ref5, other5 = (
        series(idx1, 3.0),
        series(idx1, 3.3),
        series(idx5, 7.0),
        series(idx5, 7.1),
    )
    lone = series(idx1, 3.0)  # scored in one table only: left out
    tables = [
        ScoreTable(1, "close", (), None, {"ens": ref1, "m": other1, "lone": lone}),
        ScoreTable(5, "close", (), None, {"ens": ref5, "m": other5}),
    ]
    (gain,) = relative_gains(tables, "ens")
    assert gain.method == "m" and gain.tables == ((1, "close"), (5, "close"))
    per_table = [100 * (ref1.mean() / other1.mean() - 1), 100 * (ref5.mean() / other5.mean() - 1)]
    np.testing.assert_allclose(gain.change_pct, per_table, rtol=1e-12)
    assert gain.average_pct == pytest.approx(np.mean(per_table), rel=1e-12)
    # The average's uncertainty: one series over the shared origins, Bartlett lags for h=5.
    d = (
        100 * (ref1[idx5] - other1[idx5]) / other1.mean() + 100 * (ref5 - other5) / other5.mean()
    ).to_numpy() / 2
    se = _bartlett_se(d, dm_lags(d.size, 5))
    assert gain.se_pct == pytest.approx(se, rel=1e-10)
    assert gain.dm_p == pytest.approx(math.erfc(abs(d.mean() / se) / math.sqrt(2)), rel=1e-10)
    # Against itself in reverse the changes flip sign (not exactly: ratios, not differences).
    (back,) = relative_gains(tables, "m")
    assert all(
        np.sign(b) == -np.sign(g) for b, g in zip(back.change_pct, gain.change_pct, strict=True)
    )


# -- behaviours pinned by mutation testing ---------------------------------------------


def test_an_outcome_on_a_bound_is_not_a_miss() -> None:
    """Miss lo is ``lower < L`` and miss hi ``upper > U``, strictly: touching covers."""
    lo_miss, hi_miss = misses([90.0], [110.0], [90.0], [110.0])
    assert not lo_miss[0] and not hi_miss[0]
    assert interval_score([90.0], [110.0], [90.0], [110.0])[0] == pytest.approx(20.0)


def test_misses_must_be_one_dimensional() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        kupiec_p(np.zeros((3, 3)))


def test_coverage_tests_on_too_short_sequences_are_nan() -> None:
    """No origin: nothing to test (Kupiec). One origin: no transition (Christoffersen), no
    variance (HAC, DM). Two are enough for each to give a number."""
    assert math.isnan(kupiec_p([]))
    assert math.isnan(christoffersen_p([1]))
    assert math.isnan(hac_coverage_p([1], horizon=5))
    assert math.isnan(diebold_mariano_p([1.0], [2.0], horizon=1))
    # One origin, one miss: Kupiec LR = −2[ln 0.1 − ln 1] (π̂ = 1).
    assert kupiec_p([1]) == pytest.approx(math.erfc(math.sqrt(-2 * math.log(0.1) / 2)))
    assert math.isfinite(christoffersen_p([0, 1]))
    assert math.isfinite(hac_coverage_p([0, 1], horizon=1))
    assert math.isfinite(diebold_mariano_p([1.0, 3.0], [2.0, 2.5], horizon=1))


def _christoffersen_reference(seq: list[int]) -> float:
    """The LR test from the transition counts (math.log, with 0·ln 0 = 0)."""
    pairs = list(itertools.pairwise(seq))
    n = {(a, b): sum(1 for p in pairs if p == (a, b)) for a in (0, 1) for b in (0, 1)}

    def ll(k0: int, k1: int) -> float:  # binomial log likelihood at the MLE k1 / (k0 + k1)
        tot = k0 + k1
        return sum(k * math.log(k / tot) for k in (k0, k1) if k > 0)

    indep = ll(n[0, 0] + n[1, 0], n[0, 1] + n[1, 1])
    markov = ll(n[0, 0], n[0, 1]) + ll(n[1, 0], n[1, 1])
    lr = max(-2 * (indep - markov), 0.0)
    return math.erfc(math.sqrt(lr / 2))  # χ²(1) survival function


@pytest.mark.parametrize(
    "seq",
    [
        [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0],  # n00 = n01 = n10 = n11 = 3
        [0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0],  # n10 = n11 = 4, n00 = 3, n01 = 4
        [1, 1, 1, 1, 0],  # never in state 0 before the end: no 0 → · transition
        [0, 0, 0, 0, 1],  # never in state 1 before the end: no 1 → · transition
        [0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0],
    ],
)
def test_christoffersen_matches_the_count_formula_on_edge_transition_counts(
    seq: list[int],
) -> None:
    """Equal transition counts and rows with no transitions at all are handled as the
    formula says (an empty row contributes nothing to either likelihood)."""
    assert christoffersen_p(seq) == pytest.approx(_christoffersen_reference(seq), rel=1e-10)


def test_hac_of_a_constant_miss_sequence() -> None:
    """No variance to estimate: p = 1 if the miss rate is exactly α, else 0."""
    assert hac_coverage_p([0] * 30, horizon=5) == 0.0
    assert hac_coverage_p([1] * 30, horizon=5) == 0.0
    assert hac_coverage_p([0] * 30, horizon=5, alpha=0.0) == 1.0


def test_hac_falls_back_to_bartlett_when_the_uniform_kernel_goes_negative() -> None:
    """Alternating misses with h = 2: the uniform sum γ0 + 2γ1 < 0, so the Bartlett one
    γ0 + γ1 (weight 1/2 at lag 1) is used. Tested at α one Bartlett s.e. below the miss
    rate, where z = 1 and p = erfc(1/√2) = 0.3173 (not the 0 of 'no variance')."""
    x = np.array([0.0, 1.0] * 20)
    u = x - x.mean()
    g0, g1 = float(np.dot(u, u)), float(np.dot(u[1:], u[:-1]))
    assert g0 + 2 * g1 < 0
    se = math.sqrt(g0 + g1) / x.size
    p = hac_coverage_p(x, horizon=2, alpha=float(x.mean()) - se)
    assert p == pytest.approx(math.erfc(1 / math.sqrt(2)), rel=1e-9)


def test_dm_lags_at_the_boundaries_of_the_floor() -> None:
    """⌊4 (n/100)^{2/9}⌋: exactly 4 at n = 100; it reaches 5 where n/100 > 1.25^{4.5} =
    2.72958, i.e. between n = 272 and n = 273."""
    assert dm_lags(100, 1) == 4
    assert 272 / 100 < 1.25**4.5 < 273 / 100
    assert dm_lags(272, 1) == 4 and dm_lags(273, 1) == 5
    assert dm_lags(273, 3) == 7  # plus h − 1


def test_a_constant_loss_difference_is_decisive() -> None:
    """A difference with no variance: p = 0 unless it is exactly zero (then p = 1), and
    its standard error is 0."""
    a = np.arange(10.0)
    assert diebold_mariano_p(a + 1.0, a, horizon=1) == 0.0
    assert diebold_mariano_p(a, a, horizon=1) == 1.0
    idx = pd.bdate_range("2016-01-01", periods=50)
    base = pd.Series(np.linspace(1.0, 2.0, 50), index=idx)
    table = ScoreTable(1, "close", (), None, {"ens": base * 0.9, "m": base})
    (gain,) = relative_gains([table], "ens")
    # D_t = 100 (0.9 b_t − b_t) / mean(b) varies with b_t; with b constant, it does not.
    flat = pd.Series(2.0, index=idx)
    flat_table = ScoreTable(1, "close", (), None, {"ens": flat - 0.2, "m": flat})
    (flat_gain,) = relative_gains([flat_table], "ens")
    assert flat_gain.average_pct == pytest.approx(-10.0)
    assert flat_gain.se_pct == 0.0 and flat_gain.dm_p == 0.0
    assert gain.se_pct > 0.0


def _hand_frame(closes: list[float]) -> pd.DataFrame:
    """Close interval [95, 105] around 100 at every origin; the given outcomes."""
    n = len(closes)
    return pd.DataFrame(
        {"anchor": 100.0, "close_lo": 95.0, "close_hi": 105.0, "path_lo": np.nan,
         "path_hi": np.nan, "close": closes, "path_min": closes, "path_max": closes},
        index=pd.bdate_range("2016-01-01", periods=n),
    )  # fmt: skip


def test_score_row_by_hand_with_misses_on_both_sides() -> None:
    """Outcomes 100, 94, 106, 100 against [95, 105]: one miss each side → cover 50 %,
    miss lo 25 %, miss hi 25 %; IS % = 10 + 20·(1 + 1)/4 = 20 (width 10)."""
    closes = [100.0, 94.0, 106.0, 100.0]
    one = score_table({"m": _hand_frame(closes)}, "close", horizon=1).row("m")
    assert one.cover == pytest.approx(50.0)
    assert one.miss_lo == pytest.approx(25.0) and one.miss_hi == pytest.approx(25.0)
    assert one.width == pytest.approx(10.0) and one.interval_score == pytest.approx(20.0)
    miss = [False, True, True, False]
    # h = 1: Christoffersen's test, no HAC; h > 1: the HAC test, no Christoffersen.
    assert one.christoffersen_p == pytest.approx(christoffersen_p(miss))
    assert math.isnan(one.hac_p)
    five = score_table({"m": _hand_frame(closes)}, "close", horizon=5).row("m")
    assert five.hac_p == pytest.approx(hac_coverage_p(miss, horizon=5))
    assert math.isnan(five.christoffersen_p)


def test_a_single_scored_origin_is_available() -> None:
    row = score_table({"m": _hand_frame([100.0])}, "close", horizon=1).row("m")
    assert row.available and row.n == 1 and row.cover == 100.0


def test_calibration_mark_uses_the_coverage_in_percent() -> None:
    """87.5 % cover (one miss in eight) is outside 90 ± 2 pp: not calibrated."""
    closes = [110.0] + [100.0] * 7
    row = score_table({"m": _hand_frame(closes * 10)}, "close", horizon=1).row("m")
    assert row.cover == pytest.approx(87.5)
    assert not row.calibrated


def test_a_method_without_any_usable_range_is_unavailable_quietly() -> None:
    """All ranges missing: an unavailable, uncalibrated row and no 'mean of empty slice'
    warnings from averaging nothing."""
    import warnings

    frame = _hand_frame([100.0] * 5)
    frame["close_lo"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = score_table({"m": frame}, "close", horizon=1)
    row = table.row("m")
    assert not row.available and not row.calibrated and row.n_missing == 5
    assert table.is_pct["m"].empty


def test_table_lookup_and_frame() -> None:
    """``row`` names the methods it has when asked for another; ``to_frame`` has one
    column per field and one row per method, in order."""
    frames = {"a": _hand_frame([100.0] * 3), "b": _hand_frame([94.0] * 3)}
    table = score_table(frames, "close", horizon=1)
    with pytest.raises(KeyError, match="'c' not in table"):
        table.row("c")
    df = table.to_frame()
    assert list(df["method"]) == ["a", "b"]
    assert list(df["cover"]) == [100.0, 0.0]
    assert "interval_score" in df.columns and "calibrated" in df.columns


def test_coverage_by_year_leaves_out_origins_missing_either_bound() -> None:
    """An origin counts only if both bounds are finite (a NaN bound would otherwise
    'cover' everything); the index is named ``year``."""
    frame = _hand_frame([94.0] * 4 + [100.0] * 4)
    frame.loc[frame.index[:2], "close_lo"] = np.nan  # two misses without a low bound
    frame.loc[frame.index[2:4], "close_hi"] = np.nan  # two without a high bound
    table = coverage_by_year({"m": frame})
    assert table.index.name == "year"
    assert table["m"].tolist() == [100.0]  # only the four complete origins, all covered


def test_order_by_rank_puts_calibrated_first_then_the_rest_then_unavailable() -> None:
    """The ranking rule: calibrated by mean IS %, then uncalibrated by IS %, then methods
    with nothing scored, whatever their (NaN) scores."""
    from dataclasses import replace

    from models.scoring import order_by_rank

    base = score_table({"x": _hand_frame([100.0] * 3)}, "close", horizon=1).row("x")
    rows = [
        replace(base, method="unavailable", n=0, interval_score=math.nan),
        replace(base, method="uncal_good", calibrated=False, interval_score=1.0),
        replace(base, method="cal_worse", calibrated=True, interval_score=3.0),
        replace(base, method="uncal_bad", calibrated=False, interval_score=5.0),
        replace(base, method="cal_best", calibrated=True, interval_score=2.0),
    ]
    ranked = [r.method for r in order_by_rank(rows)]
    assert ranked == ["cal_best", "cal_worse", "uncal_good", "uncal_bad", "unavailable"]


def test_relative_gains_of_no_tables_is_empty() -> None:
    assert relative_gains([], "ens") == []
