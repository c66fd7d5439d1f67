//! Intraday volatility from every tick: the UKF (stochastic-volatility model, drift held at
//! zero) and a bootstrap particle filter on the same model, stepped together.
//!
//! One call per tick does what the stream needs: the trading-time step since the previous
//! tick, the log return, both filter steps and the filtered volatility. Done from Python it
//! was two extension calls plus Python arithmetic, about a tenth of a tick's budget in the
//! embedded pipeline. The trading-time rules are parameters ([`TradingTime`]):
//! `models/tick_filters.py` owns and documents them.

use serde::{Deserialize, Serialize};

use crate::particle::{FilterConfig, Model, ParticleError, ParticleFilter, Proposal, SvModel};
use crate::snapshot::{self, SnapshotError};
use crate::ukf::{SigmaParams, StochVol, Ukf, UkfError};

const KIND: &str = "TickVolatility";
const NS: f64 = 1e9;

/// How wall-clock gaps between ticks map to trading days.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TradingTime {
    /// Seconds in a trading day (a gap of this length is one day).
    pub session_seconds: f64,
    /// A gap longer than this is not trading time (overnight, weekend, halt)...
    pub gap_seconds: f64,
    /// ...and counts as this many days.
    pub gap_dt: f64,
}

impl TradingTime {
    /// Trading days between two ticks `seconds` apart (at least a millisecond's worth, so
    /// two ticks in the same instant still make a valid step).
    pub fn dt(&self, seconds: f64) -> f64 {
        if seconds > self.gap_seconds {
            self.gap_dt
        } else {
            seconds.max(1e-3) / self.session_seconds
        }
    }

    fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !(ok(self.session_seconds) && ok(self.gap_seconds) && ok(self.gap_dt)) {
            return Err(format!(
                "session_seconds, gap_seconds and gap_dt must be finite and > 0, got {}, {}, {}",
                self.session_seconds, self.gap_seconds, self.gap_dt
            ));
        }
        Ok(())
    }
}

/// Why a tick filter could not be built or restored.
#[derive(Debug, Clone, PartialEq)]
pub struct TickVolError(pub String);

impl std::fmt::Display for TickVolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TickVolError {}

impl From<UkfError> for TickVolError {
    fn from(e: UkfError) -> Self {
        TickVolError(e.to_string())
    }
}

impl From<ParticleError> for TickVolError {
    fn from(e: ParticleError) -> Self {
        TickVolError(e.to_string())
    }
}

impl From<SnapshotError> for TickVolError {
    fn from(e: SnapshotError) -> Self {
        TickVolError(e.to_string())
    }
}

/// What a snapshot holds besides the two filters' own snapshots.
#[derive(Serialize, Deserialize)]
struct Saved {
    ukf: Vec<u8>,
    pf: Vec<u8>,
    time: TradingTime,
    last: Option<(i64, f64)>,
    ticks: u64,
    rejected: u64,
}

/// The snapshot: [`Saved`] then the last reset's reason, added later. Postcard writes a
/// struct as its fields in order, so this is the older layout plus a tail; a snapshot
/// without the tail (an older one) still restores, with no reason.
#[derive(Serialize, Deserialize)]
struct SavedWithReason {
    saved: Saved,
    last_reset_reason: Option<String>,
}

/// One symbol's tick filters.
#[derive(Debug, Clone)]
pub struct TickVolatility {
    ukf: Ukf<StochVol>,
    pf: ParticleFilter,
    time: TradingTime,
    last: Option<(i64, f64)>,
    ticks: u64,
    rejected: u64,
    last_error: Option<String>,
    last_reset_reason: Option<String>,
}

impl TickVolatility {
    /// Filters for the daily SV model `(mu, phi, sigma)` (returns in percent), from its
    /// stationary prior; the particle filter runs `n_particles` on the calling thread.
    pub fn new(
        mu: f64,
        phi: f64,
        sigma: f64,
        n_particles: usize,
        seed: u64,
        time: TradingTime,
    ) -> Result<Self, TickVolError> {
        time.validate().map_err(TickVolError)?;
        let model = StochVol::new(mu, phi, sigma, 0.0)?;
        let (x0, p0) = model.workload_prior();
        let ukf = Ukf::new(model, &x0, &p0, SigmaParams::standard(2))?;
        let mut config = FilterConfig::new(n_particles, seed);
        config.threads = Some(1); // a tick's few hundred particles: no pool hand-off
        let pf = ParticleFilter::new(
            Model::Sv(SvModel::new(mu, phi, sigma)?),
            Proposal::Bootstrap,
            config,
        )?;
        Ok(Self {
            ukf,
            pf,
            time,
            last: None,
            ticks: 0,
            rejected: 0,
            last_error: None,
            last_reset_reason: None,
        })
    }

    /// Fold in a tick at `ts_ns` (epoch nanoseconds) and `price`; the first one only sets
    /// the reference. A tick older than the last accepted one, or a step either filter
    /// refuses (say, a non-positive price), changes nothing and is counted in `rejected`,
    /// its reason in `last_error`. Returns [`TickVolatility::volatility`] after the tick.
    pub fn update(&mut self, ts_ns: i64, price: f64) -> Option<(f64, f64)> {
        let Some((last_ts, last_price)) = self.last else {
            if price.is_finite() && price > 0.0 {
                self.last = Some((ts_ns, price));
            } else {
                self.reject(format!("price must be finite and > 0, got {price}"));
            }
            return self.volatility();
        };
        if ts_ns < last_ts {
            // A late tick would otherwise be a 1 ms step with a stale return, and the
            // reference would move back in time.
            self.reject(format!(
                "ts_ns must not be older than the last accepted tick ({last_ts}), got {ts_ns}"
            ));
            return self.volatility();
        }
        let dt = self
            .time
            .dt((i128::from(ts_ns) - i128::from(last_ts)) as f64 / NS);
        let r = 100.0 * (price / last_price).ln();
        if !r.is_finite() {
            self.reject(format!("price must be finite and > 0, got {price}"));
            return self.volatility();
        }
        let y = r / dt.sqrt();
        // Both filters or neither: the particle filter's only refusals are a non-finite
        // return (excluded above) and an invalid step, checked before the UKF moves.
        if let Err(e) = self.pf.model().transition(dt) {
            self.reject(e.to_string());
            return self.volatility();
        }
        let resets = (self.ukf.state().n_resets, self.pf.n_resets());
        if let Err(e) = self.ukf.step(&[y, y.abs()], dt) {
            self.reject(e.to_string());
            return self.volatility();
        }
        self.pf
            .step(r, dt)
            .expect("a finite return and a valid step are accepted");
        // The particle filter steps second, so its reset is the later one of a tick.
        if self.pf.n_resets() > resets.1 {
            self.last_reset_reason = self.pf.last_reset_reason().map(|r| format!("pf: {r}"));
        } else if self.ukf.state().n_resets > resets.0 {
            let reason = self.ukf.state().last_reset_reason.as_deref();
            self.last_reset_reason = reason.map(|r| format!("ukf: {r}"));
        }
        self.last = Some((ts_ns, price));
        self.ticks += 1;
        self.volatility()
    }

    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        self.last_error = Some(reason);
    }

    /// Filtered volatility, annualised percent over 252 days: (UKF, particle filter);
    /// `None` before the second tick.
    pub fn volatility(&self) -> Option<(f64, f64)> {
        if self.ticks == 0 {
            return None;
        }
        let scale = 252f64.sqrt();
        Some((
            (self.ukf.x()[0] / 2.0).exp() * scale,
            (self.pf.mean() / 2.0).exp() * scale,
        ))
    }

    pub fn trading_time(&self) -> TradingTime {
        self.time
    }

    /// Ticks that stepped both filters.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Ticks the filters refused (the state stayed as it was).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Divergence resets of either filter (each says why in its own reason).
    pub fn resets(&self) -> u64 {
        self.ukf.state().n_resets + self.pf.n_resets()
    }

    /// Why the filter that reset last did so, prefixed `ukf: ` or `pf: `; `None` if neither
    /// has reset (or the snapshot it was restored from predates this record).
    pub fn last_reset_reason(&self) -> Option<&str> {
        self.last_reset_reason.as_deref()
    }

    /// The last accepted tick: (epoch nanoseconds, price).
    pub fn last_tick(&self) -> Option<(i64, f64)> {
        self.last
    }

    pub fn pf(&self) -> &ParticleFilter {
        &self.pf
    }

    /// Everything as bytes; [`TickVolatility::restore`] continues bit-identically.
    pub fn snapshot(&self) -> Vec<u8> {
        let saved = SavedWithReason {
            saved: Saved {
                ukf: self.ukf.snapshot(),
                pf: self.pf.snapshot(),
                time: self.time,
                last: self.last,
                ticks: self.ticks,
                rejected: self.rejected,
            },
            last_reset_reason: self.last_reset_reason.clone(),
        };
        snapshot::to_bytes(KIND, &saved)
    }

    pub fn restore(bytes: &[u8]) -> Result<Self, TickVolError> {
        let SavedWithReason {
            saved,
            last_reset_reason,
        } = match snapshot::from_bytes(KIND, bytes) {
            Ok(with_reason) => with_reason,
            Err(_) => SavedWithReason {
                saved: snapshot::from_bytes(KIND, bytes)?,
                last_reset_reason: None,
            },
        };
        saved.time.validate().map_err(TickVolError)?;
        Ok(Self {
            ukf: Ukf::restore(&saved.ukf)?,
            pf: ParticleFilter::restore(&saved.pf, Proposal::Bootstrap)?,
            time: saved.time,
            last: saved.last,
            ticks: saved.ticks,
            rejected: saved.rejected,
            last_error: None,
            last_reset_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIME: TradingTime = TradingTime {
        session_seconds: 23_400.0,
        gap_seconds: 3_600.0,
        gap_dt: 0.2,
    };

    fn filters(seed: u64) -> TickVolatility {
        TickVolatility::new(-0.5, 0.97, 0.18, 256, seed, TIME).unwrap()
    }

    /// A session of ticks a minute apart with daily volatility `daily_pct` %.
    fn ticks(n: usize, daily_pct: f64, seed: u64) -> Vec<(i64, f64)> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let per_tick = daily_pct / 100.0 * (60.0 / TIME.session_seconds).sqrt();
        let mut price = 2700.0;
        (0..n)
            .map(|i| {
                let z: f64 = StandardNormal.sample(&mut rng);
                price *= (per_tick * z).exp();
                (1_500_000_000_000_000_000 + i as i64 * 60_000_000_000, price)
            })
            .collect()
    }

    #[test]
    fn trading_time_steps() {
        assert_eq!(TIME.dt(60.0), 60.0 / 23_400.0);
        assert_eq!(TIME.dt(17.5 * 3600.0), 0.2);
        assert!(TIME.dt(0.0) > 0.0);
    }

    #[test]
    fn volatility_tracks_the_simulated_level() {
        let mut f = filters(3);
        assert_eq!(f.update(1, 2700.0), None); // the first tick only sets the reference
        let mut vol = None;
        for (ts, p) in ticks(3000, 1.0, 11) {
            vol = f.update(ts + 1_000_000_000, p);
        }
        let (ukf, pf) = vol.unwrap();
        let annual = 1.0 * 252f64.sqrt();
        // ~8 sessions of minute ticks pin the level well within a third either way.
        assert!((ukf / annual - 1.0).abs() < 0.33, "{ukf} vs {annual}");
        assert!((pf / annual - 1.0).abs() < 0.33, "{pf} vs {annual}");
        assert_eq!(f.ticks(), 3000);
    }

    #[test]
    fn a_refused_tick_changes_nothing() {
        let mut f = filters(1);
        for (ts, p) in ticks(50, 1.0, 2) {
            f.update(ts, p);
        }
        let before = f.snapshot();
        for bad in [f64::NAN, 0.0, -5.0, f64::INFINITY] {
            f.update(1_600_000_000_000_000_000, bad);
        }
        assert_eq!(f.rejected(), 4);
        assert!(f.last_error().unwrap().contains("price"));
        let mut g = TickVolatility::restore(&before).unwrap();
        g.rejected = f.rejected;
        assert_eq!(g.snapshot(), f.snapshot());
    }

    #[test]
    fn an_older_tick_is_refused_and_changes_nothing() {
        let mut f = filters(1);
        let data = ticks(50, 1.0, 2);
        for &(ts, p) in &data {
            f.update(ts, p);
        }
        let before = f.snapshot();
        let (last_ts, _) = f.last_tick().unwrap();
        f.update(last_ts - 1, 2800.0);
        f.update(i64::MIN, 2800.0);
        assert_eq!(f.rejected(), 2);
        assert!(
            f.last_error().unwrap().contains("older"),
            "{:?}",
            f.last_error()
        );
        let mut g = TickVolatility::restore(&before).unwrap();
        g.rejected = f.rejected;
        assert_eq!(g.snapshot(), f.snapshot());
        // The same instant is not older: a (1 ms) step.
        f.update(last_ts, data[49].1);
        assert_eq!(f.ticks(), 50);
    }

    #[test]
    fn the_last_reset_says_which_filter_and_why_and_survives_a_snapshot() {
        // mu = -800: exp(x) underflows to 0, so no particle can explain a non-zero return.
        let mut f = TickVolatility::new(-800.0, 0.5, 0.1, 64, 1, TIME).unwrap();
        let data = ticks(3, 1.0, 2);
        f.update(data[0].0, data[0].1);
        assert_eq!(f.last_reset_reason(), None);
        f.update(data[1].0, data[1].1);
        assert_eq!(f.resets(), 1, "{:?}", f.last_reset_reason());
        let reason = f.last_reset_reason().unwrap().to_owned();
        assert!(reason.starts_with("pf: "), "{reason}");
        let restored = TickVolatility::restore(&f.snapshot()).unwrap();
        assert_eq!(restored.last_reset_reason(), Some(reason.as_str()));
        // A snapshot written before the reason was recorded (no tail) still restores.
        let old_layout = Saved {
            ukf: f.ukf.snapshot(),
            pf: f.pf.snapshot(),
            time: f.time,
            last: f.last,
            ticks: f.ticks,
            rejected: f.rejected,
        };
        let old = TickVolatility::restore(&snapshot::to_bytes(KIND, &old_layout)).unwrap();
        assert_eq!(old.last_reset_reason(), None);
        assert_eq!(old.resets(), 1);
        // ...and code that knows only the old layout reads a new snapshot (postcard
        // ignores the tail).
        let read_by_old: Saved = snapshot::from_bytes(KIND, &f.snapshot()).unwrap();
        assert_eq!(read_by_old.ticks, f.ticks);
    }

    #[test]
    fn snapshot_restore_continues_bit_identically() {
        let data = ticks(400, 1.5, 5);
        let mut whole = filters(9);
        let mut half = filters(9);
        for &(ts, p) in &data[..200] {
            whole.update(ts, p);
            half.update(ts, p);
        }
        let mut restored = TickVolatility::restore(&half.snapshot()).unwrap();
        for &(ts, p) in &data[200..] {
            let a = whole.update(ts, p).unwrap();
            let b = restored.update(ts, p).unwrap();
            assert_eq!(
                (a.0.to_bits(), a.1.to_bits()),
                (b.0.to_bits(), b.1.to_bits())
            );
        }
        assert!(TickVolatility::restore(&half.pf().snapshot()).is_err());
    }

    #[test]
    fn a_checkpoint_with_a_corrupt_particle_count_is_refused() {
        let mut f = filters(4);
        for (ts, p) in ticks(20, 1.0, 3) {
            f.update(ts, p);
        }
        for n in [1 << 45, usize::MAX] {
            let saved = Saved {
                ukf: f.ukf.snapshot(),
                pf: f.pf.snapshot_claiming(n),
                time: f.time,
                last: f.last,
                ticks: f.ticks,
                rejected: f.rejected,
            };
            let err = TickVolatility::restore(&snapshot::to_bytes(KIND, &saved)).unwrap_err();
            assert!(err.0.contains("corrupt"), "{err}");
        }
    }

    #[test]
    fn bad_trading_time_is_refused() {
        let bad = TradingTime {
            gap_dt: 0.0,
            ..TIME
        };
        let err = TickVolatility::new(-0.5, 0.97, 0.18, 64, 0, bad).unwrap_err();
        assert!(err.0.contains("gap_dt"), "{err}");
    }
}
