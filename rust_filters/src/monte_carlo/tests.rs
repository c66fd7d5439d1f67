//! Tests of the whole simulation (the pieces are tested in their modules).
//!
//! Statistical checks compare a sample mean or variance with its closed form, within 5
//! standard errors of that estimator: sd(mean) = sqrt(var / N) and
//! sd(sample variance) ≈ sqrt((m4 - var^2) / N), m4 the fourth central moment. Seeds are
//! fixed, so each check is deterministic; 5 s.e. would fail by chance with p ≈ 6e-7.

use super::*;

fn gbm(n_paths: usize, n_steps: usize) -> Simulation {
    Simulation {
        s0: 100.0,
        mu: 0.05,
        volatility: Volatility::Constant(0.2),
        jumps: None,
        n_paths,
        n_steps,
        dt: 1.0 / 252.0,
        seed: 11,
        bridge: false,
    }
}

const MERTON: Jumps = Jumps {
    lam: 1.0,
    mu_j: -0.05,
    sigma_j: 0.10,
};

fn log_returns(samples: &PathSamples, s0: f64) -> Vec<f64> {
    samples.terminal.iter().map(|s| (s / s0).ln()).collect()
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

/// Checks sample mean and variance against (mean, var, m4) within 5 standard errors.
fn assert_moments(x: &[f64], mean: f64, var: f64, m4: f64) {
    let n = x.len() as f64;
    let (m, v) = mean_var(x);
    let se_mean = (var / n).sqrt();
    let se_var = ((m4 - var * var) / n).sqrt();
    assert!((m - mean).abs() < 5.0 * se_mean, "mean {m} vs {mean}");
    assert!((v - var).abs() < 5.0 * se_var, "variance {v} vs {var}");
}

#[test]
fn gbm_log_returns_are_normal_with_the_right_moments() {
    let sim = gbm(100_000, 20);
    let samples = simulate_paths(&sim, Some(2)).unwrap();
    let tau = 20.0 / 252.0;
    let var = 0.04 * tau;
    assert_moments(
        &log_returns(&samples, 100.0),
        (0.05 - 0.02) * tau,
        var,
        3.0 * var * var,
    );
}

#[test]
fn merton_log_returns_match_closed_form_moments() {
    // Many jumps (lam tau = 5) so that the jump part is well exercised.
    let jumps = Jumps {
        lam: 20.0,
        ..MERTON
    };
    let sim = Simulation {
        jumps: Some(jumps),
        n_paths: 200_000,
        n_steps: 63,
        ..gbm(0, 0)
    };
    let samples = simulate_paths(&sim, None).unwrap();
    let tau = 63.0 / 252.0;
    let lt = jumps.lam * tau;
    let mean = (0.05 - 0.02 - jumps.lam * jumps.kappa()) * tau + lt * jumps.mu_j;
    let (mj, sj2) = (jumps.mu_j, jumps.sigma_j * jumps.sigma_j);
    let var = 0.04 * tau + lt * (mj * mj + sj2);
    // Fourth cumulant of a compound Poisson sum: lam tau E[Y^4].
    let k4 = lt * (mj.powi(4) + 6.0 * mj * mj * sj2 + 3.0 * sj2 * sj2);
    assert_moments(
        &log_returns(&samples, 100.0),
        mean,
        var,
        k4 + 3.0 * var * var,
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let request = Request {
        keep_samples: true,
        path_confidence: Some(0.9),
        ..Request::default()
    };
    for sim in [
        gbm(5_000, 30),
        Simulation {
            jumps: Some(MERTON),
            bridge: true,
            ..gbm(5_000, 30)
        },
    ] {
        let one = simulate(&sim, &request, Some(1)).unwrap();
        assert_eq!(one, simulate(&sim, &request, Some(2)).unwrap());
        assert_eq!(one, simulate(&sim, &request, Some(3)).unwrap());
        assert_eq!(one, simulate(&sim, &request, None).unwrap());
    }
}

#[test]
fn constant_and_flat_per_step_volatility_agree_exactly() {
    let flat = Simulation {
        volatility: Volatility::PerStep(vec![0.2; 30]),
        ..gbm(3_000, 30)
    };
    assert_eq!(
        simulate_paths(&gbm(3_000, 30), Some(2)).unwrap(),
        simulate_paths(&flat, Some(2)).unwrap()
    );
}

#[test]
fn merton_without_jumps_is_gbm() {
    let no_jumps = Simulation {
        jumps: Some(Jumps { lam: 0.0, ..MERTON }),
        ..gbm(3_000, 30)
    };
    assert_eq!(
        simulate_paths(&gbm(3_000, 30), None).unwrap(),
        simulate_paths(&no_jumps, None).unwrap()
    );
}

#[test]
fn bridge_gives_the_exact_maximum_of_a_driftless_step() {
    // One step, log drift 0 (mu = sigma^2 / 2): the running maximum M of sigma W over
    // [0, dt] has E[M] = sigma sqrt(dt) sqrt(2/pi) and Var[M] = sigma^2 dt (1 - 2/pi)
    // (reflection principle); its fourth central moment is bounded by E[M^4] = 3 s^4.
    let sim = Simulation {
        mu: 0.02,
        bridge: true,
        ..gbm(200_000, 1)
    };
    let samples = simulate_paths(&sim, None).unwrap();
    let s2 = 0.04 / 252.0;
    let m: Vec<f64> = samples.high.iter().map(|h| (h / 100.0).ln()).collect();
    let mean = (s2 * 2.0 / std::f64::consts::PI).sqrt();
    let var = s2 * (1.0 - 2.0 / std::f64::consts::PI);
    assert_moments(&m, mean, var, 3.0 * s2 * s2);
}

#[test]
fn summary_quantiles_are_those_of_the_samples() {
    let request = Request {
        keep_samples: true,
        ..Request::default()
    };
    let s = simulate(&gbm(50_001, 10), &request, Some(2)).unwrap();
    let kept = s.samples.clone().unwrap();
    let q = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        DEFAULT_LEVELS
            .iter()
            .map(|q| {
                // numpy's linear rule, including its t >= 0.5 branch.
                let pos = (v.len() - 1) as f64 * q;
                let lo = pos.floor() as usize;
                let (a, b, t) = (v[lo], v[(lo + 1).min(v.len() - 1)], pos - lo as f64);
                if t >= 0.5 {
                    b - (b - a) * (1.0 - t)
                } else {
                    a + (b - a) * t
                }
            })
            .collect::<Vec<f64>>()
    };
    assert_eq!(s.terminal, q(&kept.terminal));
    assert_eq!(s.path_min, q(&kept.low));
    assert_eq!(s.path_max, q(&kept.high));
    let mean = kept.terminal.iter().sum::<f64>() / 50_001.0;
    assert!((s.mean_terminal - mean).abs() < 1e-9);
    assert!(s.path_min[4] <= 100.0 && s.path_max[0] >= 100.0);
}

#[test]
fn path_range_covers_the_confidence() {
    let request = Request {
        keep_samples: true,
        path_confidence: Some(0.9),
        ..Request::default()
    };
    let s = simulate(&gbm(10_000, 20), &request, None).unwrap();
    let r = s.path_range.unwrap();
    let kept = s.samples.unwrap();
    let inside = kept
        .low
        .iter()
        .zip(&kept.high)
        .filter(|(&l, &h)| l >= r.low && h <= r.high)
        .count();
    assert_eq!(inside as f64 / 10_000.0, r.coverage);
    // Narrowest: the coverage just reaches 0.9 (one more path per tail would not).
    assert!(r.coverage >= 0.9 && r.coverage < 0.9 + 2.0 / 10_000.0 + 1e-12);
    assert!(r.tail_q > 0.05 / 2.0 && r.tail_q < 0.1);
}

#[test]
fn bad_arguments_are_rejected_with_their_name() {
    // 0, and counts beyond the bound (a million panicked when the pool could not start).
    for threads in [0, crate::threads::MAX_THREADS + 1, 1_000_000] {
        let err = simulate(&gbm(10, 5), &Request::default(), Some(threads)).unwrap_err();
        assert_eq!(err.argument, "threads");
        assert!(
            err.to_string().starts_with("threads must be in [1, "),
            "{err}"
        );
        let err = simulate_paths(&gbm(10, 5), Some(threads)).unwrap_err();
        assert_eq!(err.argument, "threads");
    }
    let err = simulate(
        &Simulation {
            n_paths: 0,
            ..gbm(10, 5)
        },
        &Request::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(err.argument, "n_paths");
    let bad_levels = Request {
        levels: vec![0.5, 2.0],
        ..Request::default()
    };
    assert_eq!(
        simulate(&gbm(10, 5), &bad_levels, None)
            .unwrap_err()
            .argument,
        "levels[1]"
    );
}
