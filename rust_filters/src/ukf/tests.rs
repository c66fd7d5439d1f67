//! Pure-Rust tests of the UKF and its models (no Python).

use super::*;
use std::path::PathBuf;

/// The workload data: `t,h,y,r,p` rows (vendored in `benchmarks/spec/data`).
fn workload_data() -> Vec<[f64; 4]> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../benchmarks/spec/data/sv_T1000_seed20240601.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
            [v[1], v[2], v[3], v[4]]
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn run_workload<M: UkfModel<Design = ()>>(ukf: &mut Ukf<M>, zs: &[f64], h_index: usize) -> f64 {
    let n = ukf.dim();
    let t_len = zs.len() / 2;
    let (mut means, mut covs, mut ll) = (
        vec![0.0; t_len * n],
        vec![0.0; t_len * n * n],
        vec![0.0; t_len],
    );
    ukf.filter(zs, None, &mut means, &mut covs, &mut ll)
        .unwrap();
    (0..t_len).map(|t| means[t * n + h_index]).sum()
}

fn trace(p: &[f64], n: usize) -> f64 {
    (0..n).map(|i| p[i * n + i]).sum()
}

#[test]
fn ukf2_sv_reproduces_workload_check_values() {
    let data = workload_data();
    let zs: Vec<f64> = data.iter().flat_map(|row| [row[2], row[2].abs()]).collect();
    let model = StochVol::workload();
    let (x0, p0) = model.workload_prior();
    let mut ukf = Ukf::new(model, &x0, &p0, SigmaParams::standard(2)).unwrap();
    let sum_h = run_workload(&mut ukf, &zs, 0);
    let x = ukf.x();
    assert!(close(x[0], -1.744815017260, 1e-9), "{x:?}");
    assert!(close(x[1], 0.009094679658, 1e-9), "{x:?}");
    assert!(close(trace(ukf.p(), 2), 0.27309285471, 1e-9));
    assert!(close(sum_h, -876.35778530791, 1e-9), "{sum_h}");
    assert_eq!(ukf.state().n_resets, 0);
}

#[test]
fn ukf3_svp_reproduces_workload_check_values() {
    let data = workload_data();
    let zs: Vec<f64> = data.iter().flat_map(|row| [row[3], row[2].abs()]).collect();
    let model = StochVolPrice::workload();
    let (x0, p0) = model.workload_prior();
    let mut ukf = Ukf::new(model, &x0, &p0, SigmaParams::standard(3)).unwrap();
    let sum_h = run_workload(&mut ukf, &zs, 2);
    let x = ukf.x();
    assert!(close(x[0], 508.032815548564, 1e-9), "{x:?}");
    assert!(close(x[1], 0.011095476404, 1e-9), "{x:?}");
    assert!(close(x[2], -1.744357525648, 1e-9), "{x:?}");
    assert!(close(trace(ukf.p(), 3), 0.27564673312, 1e-9));
    assert!(close(sum_h, -876.45836750589, 1e-9), "{sum_h}");
}

/// The batch (AVX2 build where the CPU has it) and the streaming steps (baseline build)
/// give the same bits, for both SV models.
#[test]
fn streaming_steps_equal_the_batch() {
    fn check<M: UkfModel<Design = ()> + Clone + std::fmt::Debug>(
        model: M,
        x0: &[f64],
        p0: &[f64],
        zs: &[f64],
    ) {
        let n = model.state_dim();
        let t_len = zs.len() / 2;
        let mut batch = Ukf::new(model, x0, p0, SigmaParams::standard(n)).unwrap();
        let mut stream = batch.clone();
        let (mut means, mut covs, mut ll) = (
            vec![0.0; t_len * n],
            vec![0.0; t_len * n * n],
            vec![0.0; t_len],
        );
        batch
            .filter(zs, None, &mut means, &mut covs, &mut ll)
            .unwrap();
        for t in 0..t_len {
            let l = stream.step(&zs[2 * t..2 * t + 2], 1.0).unwrap();
            assert_eq!(l.to_bits(), ll[t].to_bits());
        }
        assert_eq!(stream.state(), batch.state());
    }
    let data = workload_data();
    let model = StochVol::workload();
    let (x0, p0) = model.workload_prior();
    let zs: Vec<f64> = data[..50]
        .iter()
        .flat_map(|row| [row[2], row[2].abs()])
        .collect();
    check(model, &x0, &p0, &zs);
    let model = StochVolPrice::workload();
    let (x0, p0) = model.workload_prior();
    let zs: Vec<f64> = data[..50]
        .iter()
        .flat_map(|row| [row[3], row[2].abs()])
        .collect();
    check(model, &x0, &p0, &zs);
}

/// Scalar local level model: the UKF is exact for linear models, so it must equal the
/// Kalman recursion written out by hand.
#[test]
fn linear_model_equals_scalar_kalman() {
    let (f, h, q, r) = (0.9, 2.0, 0.3, 0.5);
    let model = LinearGaussian::new(
        1,
        1,
        vec![f],
        vec![h],
        vec![q],
        vec![r],
        Some(vec![0.1]),
        None,
    )
    .unwrap();
    let mut ukf = Ukf::new(model, &[1.0], &[2.0], SigmaParams::standard(1)).unwrap();
    let (mut x, mut p) = (1.0, 2.0);
    for (t, z) in [0.3, -1.2, 2.5, 0.0, 1.1].iter().enumerate() {
        let ll = ukf.step(&[*z], 1.0).unwrap();
        x = 0.1 + f * x;
        p = f * p * f + q;
        let s = h * p * h + r;
        let k = p * h / s;
        let nu = z - h * x;
        x += k * nu;
        p -= k * s * k;
        let ll_exact = -0.5 * ((2.0 * std::f64::consts::PI).ln() + s.ln() + nu * nu / s);
        assert!(close(ukf.x()[0], x, 1e-12), "t={t}");
        assert!(close(ukf.p()[0], p, 1e-12), "t={t}");
        assert!(close(ll, ll_exact, 1e-12), "t={t}");
    }
}

#[test]
fn invalid_input_is_rejected_and_state_unchanged() {
    let model = StochVol::workload();
    let (x0, p0) = model.workload_prior();
    let mut ukf = Ukf::new(model, &x0, &p0, SigmaParams::standard(2)).unwrap();
    ukf.step(&[0.2, 0.2], 1.0).unwrap();
    let before = ukf.state().clone();
    for (z, dt) in [
        (vec![f64::NAN, 0.2], 1.0),
        (vec![0.2, f64::INFINITY], 1.0),
        (vec![0.2], 1.0),
        (vec![0.2, 0.2], -1.0),
        (vec![0.2, 0.2], f64::NAN),
    ] {
        let err = ukf.step(&z, dt).unwrap_err();
        assert!(matches!(err, UkfError::InvalidInput(_)));
        assert_eq!(ukf.state(), &before);
    }
    assert!(ukf.predict(f64::INFINITY).is_err());
    assert!(ukf.update(&[f64::NAN, 1.0]).is_err());
    let zs = [0.1, 0.1, f64::NAN, 0.1];
    let err = ukf
        .filter(&zs, None, &mut [0.0; 4], &mut [0.0; 8], &mut [0.0; 2])
        .unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    assert_eq!(ukf.state(), &before);
    // Bad construction arguments name the argument.
    let e = Ukf::new(
        StochVol::workload(),
        &x0,
        &[1.0, 0.0, 0.0, -1.0],
        SigmaParams::standard(2),
    )
    .unwrap_err();
    assert!(e.to_string().contains("P0"), "{e}");
    assert!(StochVol::new(-1.0, 1.5, 0.1, 0.01)
        .unwrap_err()
        .to_string()
        .contains("phi"));
}

#[test]
fn snapshot_restore_continues_bit_identically() {
    let data = workload_data();
    let model = StochVolPrice::workload();
    let (x0, p0) = model.workload_prior();
    let mut a = Ukf::new(model, &x0, &p0, SigmaParams::standard(3)).unwrap();
    for row in &data[..100] {
        a.step(&[row[3], row[2].abs()], 1.0).unwrap();
    }
    let bytes = a.snapshot();
    let mut b = Ukf::<StochVolPrice>::restore(&bytes).unwrap();
    for (i, row) in data[100..200].iter().enumerate() {
        let dt = 0.5 + (i % 3) as f64; // irregular steps exercise the Q(dt) cache
        let la = a.step(&[row[3], row[2].abs()], dt).unwrap();
        let lb = b.step(&[row[3], row[2].abs()], dt).unwrap();
        assert_eq!(la.to_bits(), lb.to_bits());
    }
    assert_eq!(a.state(), b.state());
    assert!(
        Ukf::<StochVol>::restore(&bytes).is_err(),
        "a snapshot must not restore as another model"
    );
}

#[test]
fn divergence_resets_to_prior_and_says_so() {
    let model = LinearGaussian::new(
        1,
        1,
        vec![1e200],
        vec![1.0],
        vec![1.0],
        vec![1.0],
        None,
        None,
    )
    .unwrap();
    let mut ukf = Ukf::new(model, &[1e200], &[1.0], SigmaParams::standard(1)).unwrap();
    ukf.predict(1.0).unwrap(); // 1e400 overflows
    let st = ukf.state();
    assert_eq!(st.n_resets, 1);
    assert!(st.diverged);
    assert!(st
        .last_reset_reason
        .as_deref()
        .unwrap()
        .contains("non-finite"));
    assert_eq!(ukf.x(), &[1e200]);
    ukf.reset(Some(&[0.0]), None).unwrap();
    assert!(!ukf.state().diverged);
    assert_eq!(ukf.state().n_resets, 1);
    assert_eq!(ukf.x(), &[0.0]);
}

#[test]
fn sv_predict_over_two_days_equals_two_daily_predicts() {
    let model = StochVol::workload();
    let x0 = [-0.5, 0.02];
    let p0 = [0.3, 0.01, 0.01, 0.02];
    let mut one = Ukf::new(model, &x0, &p0, SigmaParams::standard(2)).unwrap();
    let mut two = one.clone();
    one.predict(2.0).unwrap();
    two.predict(1.0).unwrap();
    two.predict(1.0).unwrap();
    for (a, b) in one
        .x()
        .iter()
        .zip(two.x())
        .chain(one.p().iter().zip(two.p()))
    {
        assert!(close(*a, *b, 1e-12), "{a} vs {b}");
    }
}

#[test]
fn normal_cdf_matches_known_values() {
    // Reference values from scipy.special.ndtr.
    for (x, p) in [
        (0.0, 0.5),
        (1.0, 0.841_344_746_068_542_9),
        (-1.96, 0.024_997_895_148_220_435),
        (-3.0, 0.001_349_898_031_630_094_6),
        (8.0, 0.999_999_999_999_999_3),
        (-8.0, 6.220_960_574_271_784e-16),
    ] {
        let got = normal_cdf(x);
        assert!(
            (got - p).abs() <= 1e-14 + 1e-12 * p,
            "Phi({x}) = {got}, want {p}"
        );
    }
}

/// Chains of varying size generated from a fixed smile without noise: the filter must
/// converge to the true smile (noise-free data, so the tolerance is the filter's own
/// shrinking uncertainty, checked against its posterior standard deviation).
#[test]
fn smile_filter_recovers_the_smile_from_chains_of_varying_size() {
    let truth = [0.2, -0.05, 0.01];
    for measurement in [SmileMeasurement::ImpliedVol, SmileMeasurement::Delta] {
        let model = Smile::new(
            [0.2, 0.0, 0.0],
            [0.0; 3],
            [0.01, 0.01, 0.005],
            measurement,
            1e-3,
            1e-4,
        )
        .unwrap();
        let p0 = [0.01, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.01];
        let mut ukf = Ukf::new(
            model.clone(),
            &[0.15, 0.0, 0.0],
            &p0,
            SigmaParams::standard(3),
        )
        .unwrap();
        for chain in 0..40 {
            let size = 3 + chain % 9;
            let quotes: Vec<SmileQuote> = (0..size)
                .map(|i| SmileQuote {
                    moneyness: -1.5 + 3.0 * i as f64 / (size - 1) as f64,
                    tau: 0.1 + 0.05 * (chain % 4) as f64,
                    is_call: i % 2 == 0,
                    noise_sd: 1e-3,
                })
                .collect();
            let z: Vec<f64> = quotes
                .iter()
                .map(|q| match measurement {
                    SmileMeasurement::ImpliedVol => model.implied_vol(&truth, q.moneyness),
                    SmileMeasurement::Delta => model.delta(&truth, q),
                })
                .collect();
            let ll = ukf.step_with(&z, 1.0 / 252.0, &quotes).unwrap();
            assert!(ll.is_finite());
        }
        for i in 0..3 {
            let sd = ukf.p()[i * 4].sqrt();
            assert!(
                (ukf.x()[i] - truth[i]).abs() < 1e-3,
                "{measurement:?} {i}: {:?} sd {sd}",
                ukf.x()
            );
        }
        assert_eq!(ukf.state().n_resets, 0);
        let bad = [SmileQuote {
            moneyness: 0.0,
            tau: 0.0,
            is_call: true,
            noise_sd: 0.01,
        }];
        let e = ukf.update_with(&[0.5], &bad).unwrap_err();
        assert!(e.to_string().contains("tau[0]"), "{e}");
        assert!(ukf.update_with(&[], &[]).is_err());
    }
}

/// Exact measurements of x1 + x2 with no process noise collapse P onto a line; the next
/// sigma points need jitter, and the filter goes on (symmetric, finite, no reset).
#[test]
fn singular_covariance_is_factorised_with_jitter() {
    let model = LinearGaussian::new(
        2,
        1,
        vec![1.0, 0.0, 0.0, 1.0],
        vec![1.0, 1.0],
        vec![0.0; 4],
        vec![1e-300],
        None,
        None,
    )
    .unwrap();
    let mut ukf = Ukf::new(
        model,
        &[0.0, 0.0],
        &[1.0, 0.0, 0.0, 1.0],
        SigmaParams::standard(2),
    )
    .unwrap();
    for _ in 0..5 {
        assert!(ukf.step(&[1.0], 1.0).unwrap().is_finite());
    }
    let st = ukf.state();
    assert!(st.n_jitter > 0 && st.n_resets == 0);
    assert_eq!(st.p[1].to_bits(), st.p[2].to_bits());
    assert!(st.p.iter().chain(&st.x).all(|v| v.is_finite()));
}

#[test]
fn noise_covariances_must_be_semi_definite_and_definite() {
    let lg = |q: Vec<f64>, r: Vec<f64>| {
        LinearGaussian::new(
            2,
            2,
            vec![1.0, 0.0, 0.0, 1.0],
            vec![1.0, 0.0, 0.0, 1.0],
            q,
            r,
            None,
            None,
        )
    };
    let eye = vec![1.0, 0.0, 0.0, 1.0];
    let neg = vec![-1.0, 0.0, 0.0, -1.0];
    // An indefinite Q (eigenvalues 3 and -1) with a positive diagonal.
    let indefinite = vec![1.0, 2.0, 2.0, 1.0];
    for (q, r, name) in [
        (eye.clone(), neg.clone(), "R"),
        (eye.clone(), vec![-0.5, 0.0, 0.0, -0.5], "R"),
        (eye.clone(), vec![1.0, 0.0, 0.0, 0.0], "R"), // singular: S could not be inverted
        (neg.clone(), eye.clone(), "Q"),
        (indefinite, eye.clone(), "Q"),
    ] {
        let UkfError::InvalidInput(msg) = lg(q, r).unwrap_err();
        assert!(msg.starts_with(name), "{msg}");
        assert!(msg.contains("definite"), "{msg}");
    }
    // A singular Q is fine (noise-free components), rounding below the tolerance too.
    assert!(lg(vec![1.0, 0.0, 0.0, 0.0], eye.clone()).is_ok());
    assert!(lg(vec![1.0, 0.0, 0.0, -1e-14], eye.clone()).is_ok());
    assert!(lg(vec![0.0; 4], eye).is_ok());
}

/// The Cholesky factor of `P` with the filter's jitter fallback exists.
fn factorisable(p: &[f64], n: usize) -> bool {
    let mut l = vec![0.0; n * n];
    crate::linalg::cholesky_jitter(p, n, 1.0, &mut l).is_ok()
}

#[test]
fn a_covariance_that_loses_definiteness_is_a_divergence() {
    // A case of the audit's stress run (ukf3-svp, extreme parameters and inputs): at the
    // fourth step `P - K S K'` came out with eigenvalues -1.4e5 and 1.4e5, committed
    // without a reset (the next step then diverged on it).
    let model = StochVolPrice::new(
        -0.7538230506536658,
        0.25978005678116833,
        1.9699509886954694,
        0.1663422570548824,
        0.0011511458427151294,
    )
    .unwrap();
    let x0 = [
        -0.09067313510678131,
        -0.004996130276595701,
        -0.7058554945166199,
    ];
    let p0 = [
        0.7653777030159175,
        0.3411636637437859,
        -0.13039186463554828,
        0.3411636637437859,
        3.607924278747732,
        -1.2807973979837055,
        -0.13039186463554828,
        -1.2807973979837055,
        0.9119310474311682,
    ];
    let params = SigmaParams {
        alpha: 0.003748006166621305,
        ..SigmaParams::standard(3)
    };
    let mut ukf = Ukf::new(model, &x0, &p0, params).unwrap();
    let steps = [
        (
            [0.34677189032497796, 2.3487941791226623],
            0.0002224672340353685,
        ),
        ([-64.2329879513364, 38.280892471384824], 18.19664770397433),
        (
            [-0.17078967986462373, 0.40585224030578504],
            1.3774864596073728,
        ),
        (
            [0.0008779169785880294, 0.0009046471228407405],
            0.11401492122051414,
        ),
    ];
    for (z, dt) in steps {
        let ll = ukf.step(&z, dt).unwrap();
        // Every committed P has a factor, or the filter reset and said so.
        assert!(factorisable(ukf.p(), 3), "P = {:?}", ukf.p());
        if ukf.state().n_resets > 0 {
            assert!(ll.is_nan());
        }
    }
    let st = ukf.state();
    assert_eq!(st.n_resets, 1);
    assert!(st.diverged);
    let reason = st.last_reset_reason.as_deref().unwrap();
    assert!(reason.starts_with("update: P"), "{reason}");
    assert_eq!(ukf.x(), &x0);
}

#[test]
fn restore_runs_the_constructor_checks() {
    let model = StochVol::workload();
    let (x0, p0) = model.workload_prior();
    let mut ukf = Ukf::new(model, &x0, &p0, SigmaParams::standard(2)).unwrap();
    ukf.step(&[0.3, 0.3], 1.0).unwrap();
    let kind = Ukf::<StochVol>::kind();
    let bytes = |m: &StochVol, s: &UkfState| crate::snapshot::to_bytes(&kind, &(m, s));
    assert!(Ukf::<StochVol>::restore(&bytes(&model, ukf.state())).is_ok());
    type Corruption = fn(&mut StochVol, &mut UkfState);
    let corruptions: [(&str, Corruption); 10] = [
        ("x must be finite", |_, s| s.x[0] = f64::NAN),
        ("x0 must be finite", |_, s| s.x0[0] = f64::INFINITY),
        ("alpha", |_, s| s.params.alpha = f64::NAN),
        ("alpha", |_, s| s.params.alpha = 0.0),
        ("kappa", |_, s| s.params.kappa = -10.0),
        ("P must be symmetric and positive definite", |_, s| {
            s.p[0] = -5.0
        }),
        ("P must be symmetric and positive definite", |_, s| {
            s.p[1] += 1e-3
        }),
        ("P0 must be positive definite", |_, s| s.p0[3] = -1.0),
        ("phi", |m, _| m.phi = 7.0),
        ("sigma", |m, _| m.sigma = -1.0),
    ];
    for (expected, corrupt) in corruptions {
        let (mut m, mut s) = (model, ukf.state().clone());
        corrupt(&mut m, &mut s);
        let err = Ukf::<StochVol>::restore(&bytes(&m, &s)).unwrap_err();
        assert!(err.0.starts_with("corrupt UKF snapshot"), "{err}");
        assert!(err.0.contains(expected), "{expected}: {err}");
    }
}
