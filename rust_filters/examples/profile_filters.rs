//! Rust-only timing loops of the UKF and particle-filter workloads, for profiling the
//! kernels without Python (`perf record`), not a benchmark (the benchmark is
//! `benchmarks/core.py`). Prints the fastest of several rounds (the machine is shared:
//! the minimum is the least disturbed).
//!
//! ```text
//! cargo run --release --example profile_filters [ukf|ekf|bootstrap]
//! ```

use std::path::Path;
use std::time::Instant;

use rust_filters::particle::{FilterConfig, Model, ParticleFilter, Proposal, SvModel};
use rust_filters::ukf::{SigmaParams, StochVol, StochVolPrice, Ukf, UkfModel};

/// Rows `t,h,y,r,p` of the workload data (vendored in `benchmarks/spec/data`) as `[y, r, p]`.
fn workload_data() -> Vec<[f64; 3]> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../benchmarks/spec/data/sv_T1000_seed20240601.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
            [v[2], v[3], v[4]]
        })
        .collect()
}

/// Nanoseconds per step of `Ukf::filter` over `zs` (rows of 2), best of 30 rounds.
fn ukf_ns_per_step<M: UkfModel<Design = ()> + Copy>(
    model: M,
    x0: &[f64],
    p0: &[f64],
    zs: &[f64],
) -> f64 {
    let n = model.state_dim();
    let t_len = zs.len() / 2;
    let (mut means, mut covs, mut ll) = (
        vec![0.0; t_len * n],
        vec![0.0; t_len * n * n],
        vec![0.0; t_len],
    );
    let mut best = f64::INFINITY;
    for _ in 0..30 {
        let start = Instant::now();
        for _ in 0..100 {
            let mut ukf = Ukf::new(model, x0, p0, SigmaParams::standard(n)).unwrap();
            ukf.filter(zs, None, &mut means, &mut covs, &mut ll)
                .unwrap();
            std::hint::black_box(&means);
        }
        best = best.min(start.elapsed().as_nanos() as f64 / (100 * t_len) as f64);
    }
    best
}

fn ukf(data: &[[f64; 3]]) {
    let zs3: Vec<f64> = data.iter().flat_map(|row| [row[2], row[1].abs()]).collect();
    let zs2: Vec<f64> = data.iter().flat_map(|row| [row[1], row[1].abs()]).collect();
    let m3 = StochVolPrice::workload();
    let (x0, p0) = m3.workload_prior();
    let ns3 = ukf_ns_per_step(m3, &x0, &p0, &zs3);
    let m2 = StochVol::workload();
    let (x0, p0) = m2.workload_prior();
    let ns2 = ukf_ns_per_step(m2, &x0, &p0, &zs2);
    println!("ukf3-svp {ns3:.1} ns/step, ukf2-sv {ns2:.1} ns/step");
}

/// EKPF N = 10,000 x T = 100 or bootstrap N = 10,000 x T = 1000, 1 and 2 threads.
fn particle(data: &[[f64; 3]], proposal: Proposal) {
    let ys: Vec<f64> = data.iter().map(|row| row[0]).collect();
    let (t_len, runs) = match proposal {
        Proposal::Ekf => (100, 40),
        Proposal::Bootstrap => (1000, 8),
    };
    let make = |threads| {
        let config = FilterConfig {
            threads: Some(threads),
            ..FilterConfig::new(10_000, 7)
        };
        ParticleFilter::new(Model::Sv(SvModel::PITT_SHEPHARD), proposal, config).unwrap()
    };
    for threads in [1, 2] {
        let (mut best, mut best_new) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..runs {
            let start = Instant::now();
            let mut f = make(threads);
            best_new = best_new.min(start.elapsed().as_secs_f64());
            let start = Instant::now();
            std::hint::black_box(f.filter(&ys[..t_len], None).unwrap());
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{proposal:?} threads={threads}: {:.2} ms (construction {:.0} us)",
            best * 1e3,
            best_new * 1e6
        );
    }
}

fn main() {
    let data = workload_data();
    let which = std::env::args().nth(1).unwrap_or_default();
    if which.is_empty() || which == "ukf" {
        ukf(&data);
    }
    if which.is_empty() || which == "ekf" {
        particle(&data, Proposal::Ekf);
    }
    if which.is_empty() || which == "bootstrap" {
        particle(&data, Proposal::Bootstrap);
    }
}
