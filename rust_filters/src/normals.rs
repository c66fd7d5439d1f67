//! Standard normals in blocks, fast enough that the simulations are not bound by them.
//!
//! Why hand-written: `rand_distr::StandardNormal` draws one normal per call from one
//! scalar generator, so its ziggurat cannot be vectorised and costs several ns a draw,
//! most of the Monte Carlo path loop and a fifth of a particle step. Here
//!
//! * the bits come from [`LANES`] Xoshiro256++ generators stepped side by side (plain
//!   array arithmetic that LLVM turns into SIMD), seeded from one `rng.rs` stream, so a
//!   block is a function of that stream alone (never of the thread count);
//! * the ziggurat's fast path (Marsaglia & Tsang 2000, the 256 layers and the bit layout
//!   of `rand_distr`: 8 bits for the layer, 52 for a uniform on [-1, 1)) runs on 8 draws
//!   at a time without branches (a layer's two table entries in one 16-byte load);
//! * the ~1.2 % of draws it rejects take the exact slow path: the wedge test, the
//!   Marsaglia tail for the base layer, and on a failed wedge test a fresh draw from
//!   `rand_distr::StandardNormal` (each ziggurat attempt is independent, so restarting
//!   from another generator leaves the law unchanged), all from the seeding stream.
//!
//! The law is exactly the ziggurat's, that is N(0, 1) up to the 2^-52 resolution of the
//! uniform. The loops are compiled for AVX2 too (chosen at run time): integer operations
//! and IEEE arithmetic without FMA, so both builds give the same bits.

use std::sync::OnceLock;

use rand::distr::Open01;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use crate::rng::StreamRng;

/// Generators stepped together (two AVX2 registers per state word).
const LANES: usize = 8;
/// Layers of the ziggurat.
const LAYERS: usize = 256;
/// Start of the tail and area of each layer, Marsaglia & Tsang's 256-layer values (also
/// `rand_distr`'s).
const TAIL_R: f64 = 3.654_152_885_361_009;
const LAYER_AREA: f64 = 0.004_928_673_233_99;

/// `x[i]`: right edge of layer `i` (`x[0]` the width of the base layer's rectangle of
/// equal area, `x[1] = R`, decreasing to `x[256] = 0`); `f[i] = exp(-x[i]^2 / 2)`.
struct Tables {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

fn density(x: f64) -> f64 {
    (-x * x / 2.0).exp()
}

/// Built once, by the recurrence of `rand_distr`'s `ziggurat_tables.py`:
/// `x[i] = f^-1(V / x[i-1] + f(x[i-1]))`.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; LAYERS + 1];
        x[0] = LAYER_AREA / density(TAIL_R);
        x[1] = TAIL_R;
        for i in 2..LAYERS {
            x[i] = (-2.0 * (LAYER_AREA / x[i - 1] + density(x[i - 1])).ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        let f = x.map(density);
        Tables { x, f }
    })
}

/// A source of standard normals drawn in blocks; see the module docs.
pub struct BlockNormals {
    /// Xoshiro256++ states, word-major: `s[w][lane]`.
    s: [[u64; LANES]; 4],
    /// The seeding stream, then the source of the slow path's draws; callers may draw
    /// other variates from it too (see [`BlockNormals::rng`]).
    rng: StreamRng,
}

impl BlockNormals {
    /// Seeds the lanes from `rng` (`4 LANES` draws) and keeps it for the slow path.
    pub fn new(mut rng: StreamRng) -> Self {
        let mut s = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            for word in s.iter_mut() {
                word[lane] = rng.next_u64();
            }
            // An all-zero state would stay zero (probability 2^-256, but cheap to rule out).
            if s.iter().all(|w| w[lane] == 0) {
                s[0][lane] = 1;
            }
        }
        Self { s, rng }
    }

    /// The scalar stream behind the blocks, for other variates (uniforms, jumps).
    pub fn rng(&mut self) -> &mut StreamRng {
        &mut self.rng
    }

    /// Fill `out` with independent standard normals.
    ///
    /// Draws go by groups of [`LANES`] (one step of every lane, lane `l` giving element
    /// `l` of the group); a short last group drops its spare lanes. The rejected
    /// candidates of a group take the slow path in element order before the next group.
    pub fn fill(&mut self, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.fill_avx2(out) };
        }
        self.fill_scalar(out)
    }

    /// The portable build of [`BlockNormals::fill`]: the same operations one lane at a time.
    fn fill_scalar(&mut self, out: &mut [f64]) {
        let t = tables();
        for group in out.chunks_mut(LANES) {
            let bits = self.next_lanes();
            for (o, &b) in group.iter_mut().zip(&bits) {
                let (i, x) = candidate(t, b);
                *o = if x.abs() < t.x[i + 1] {
                    x
                } else {
                    self.slow_path(t, i, x)
                };
            }
        }
    }

    /// The AVX2 build: the lanes live in two registers per state word, and a group's
    /// rejections are found from one comparison mask.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fill_avx2(&mut self, out: &mut [f64]) {
        use std::arch::x86_64::*;
        #[inline]
        #[target_feature(enable = "avx2")]
        fn rotl<const L: i32, const R: i32>(v: __m256i) -> __m256i {
            _mm256_or_si256(_mm256_slli_epi64::<L>(v), _mm256_srli_epi64::<R>(v))
        }
        let t = tables();
        let load = |w: &[u64; LANES], h: usize| {
            // SAFETY: 4 u64s from index 4h < LANES, in bounds; unaligned load.
            unsafe { _mm256_loadu_si256(w.as_ptr().add(4 * h).cast()) }
        };
        let mut s: [[__m256i; 2]; 4] = [[_mm256_setzero_si256(); 2]; 4];
        for (v, w) in s.iter_mut().zip(&self.s) {
            *v = [load(w, 0), load(w, 1)];
        }
        let exponent = _mm256_set1_epi64x(0x4000_0000_0000_0000);
        let three = _mm256_set1_pd(3.0);
        let layer = _mm256_set1_epi64x(0xff);
        let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fff_ffff_ffff_ffff));
        let x_tab = t.x.as_ptr();
        for group in out.chunks_mut(LANES) {
            let mut bits = [_mm256_setzero_si256(); 2];
            let mut cand = [_mm256_setzero_pd(); 2];
            let mut rejected = 0i32;
            for h in 0..2 {
                let [s0, s1, s2, s3] = [s[0][h], s[1][h], s[2][h], s[3][h]];
                let b = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s0, s3)), s0);
                let tt = _mm256_slli_epi64::<17>(s1);
                let s2 = _mm256_xor_si256(s2, s0);
                let s3 = _mm256_xor_si256(s3, s1);
                let s1 = _mm256_xor_si256(s1, s2);
                let s0 = _mm256_xor_si256(s0, s3);
                let s2 = _mm256_xor_si256(s2, tt);
                let s3 = rotl::<45, 19>(s3);
                [s[0][h], s[1][h], s[2][h], s[3][h]] = [s0, s1, s2, s3];
                let i = _mm256_and_si256(b, layer);
                let u = _mm256_sub_pd(
                    _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<12>(b), exponent)),
                    three,
                );
                // x[i] and x[i + 1] are neighbours: one 16-byte load per lane fetches
                // both (cheaper than two gathers), then two unpacks sort them into the
                // two vectors (lanes 0 and 2 in one register, 1 and 3 in the other, so
                // the per-half unpacks leave them in lane order).
                let mut idx = [0u64; 4];
                // SAFETY: one store of 4 u64s into the 4-element array.
                unsafe { _mm256_storeu_si256(idx.as_mut_ptr().cast(), i) };
                // SAFETY: each index is <= 255 (masked above), so the 2 f64s at `i` and
                // `i + 1` lie inside the 257-entry table.
                let (xi, xn) = unsafe {
                    let pair = |k: usize| _mm_loadu_pd(x_tab.add(idx[k] as usize));
                    let even = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(0)), pair(2));
                    let odd = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(1)), pair(3));
                    (_mm256_unpacklo_pd(even, odd), _mm256_unpackhi_pd(even, odd))
                };
                let x = _mm256_mul_pd(u, xi);
                let reject = _mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_and_pd(x, abs_mask), xn);
                rejected |= _mm256_movemask_pd(reject) << (4 * h);
                bits[h] = b;
                cand[h] = x;
            }
            let kept = group.len();
            if rejected & ((1 << kept) - 1) == 0 && kept == LANES {
                // The common case: a full group with no rejection, stored directly.
                // SAFETY: two stores of 4 f64s into the group of 8.
                unsafe {
                    _mm256_storeu_pd(group.as_mut_ptr(), cand[0]);
                    _mm256_storeu_pd(group.as_mut_ptr().add(4), cand[1]);
                }
                continue;
            }
            let mut xs = [0.0f64; LANES];
            let mut bs = [0u64; LANES];
            // SAFETY: stores of 4 lanes each into the 8-element arrays.
            unsafe {
                _mm256_storeu_pd(xs.as_mut_ptr(), cand[0]);
                _mm256_storeu_pd(xs.as_mut_ptr().add(4), cand[1]);
                _mm256_storeu_si256(bs.as_mut_ptr().cast(), bits[0]);
                _mm256_storeu_si256(bs.as_mut_ptr().add(4).cast(), bits[1]);
            }
            for l in 0..kept {
                group[l] = if rejected & (1 << l) != 0 {
                    let (i, x) = candidate(t, bs[l]);
                    self.slow_path(t, i, x)
                } else {
                    xs[l]
                };
            }
        }
        for (v, w) in s.iter().zip(self.s.iter_mut()) {
            // SAFETY: two stores of 4 u64s into the 8-element array.
            unsafe {
                _mm256_storeu_si256(w.as_mut_ptr().cast(), v[0]);
                _mm256_storeu_si256(w.as_mut_ptr().add(4).cast(), v[1]);
            }
        }
    }

    /// One Xoshiro256++ step of every lane.
    #[inline(always)]
    fn next_lanes(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; LANES];
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }

    /// A rejected fast-path candidate `x` of layer `i`: the rest of one ziggurat attempt.
    #[cold]
    #[inline(never)]
    fn slow_path(&mut self, t: &Tables, i: usize, x: f64) -> f64 {
        if i == 0 {
            return tail(&mut self.rng, x < 0.0);
        }
        let u: f64 = self.rng.random();
        if t.f[i + 1] + (t.f[i] - t.f[i + 1]) * u < density(x) {
            x
        } else {
            StandardNormal.sample(&mut self.rng)
        }
    }
}

/// The layer and fast-path candidate of 64 random bits (`rand_distr`'s layout).
#[inline(always)]
fn candidate(t: &Tables, b: u64) -> (usize, f64) {
    let i = (b & 0xff) as usize;
    // Exponent of 2: a value in [2, 4); minus 3 gives a uniform on [-1, 1).
    let u = f64::from_bits((b >> 12) | 0x4000_0000_0000_0000) - 3.0;
    (i, u * t.x[i])
}

/// Marsaglia's tail beyond `R` (as `rand_distr`), on the side given by `negative`.
fn tail(rng: &mut StreamRng, negative: bool) -> f64 {
    loop {
        let a: f64 = rng.sample(Open01);
        let b: f64 = rng.sample(Open01);
        let x = a.ln() / TAIL_R;
        let y = b.ln();
        if -2.0 * y >= x * x {
            return if negative { x - TAIL_R } else { TAIL_R - x };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn tables_match_rand_distr() {
        // Entries of rand_distr 0.6's ZIG_NORM_X / ZIG_NORM_F.
        let t = tables();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1.0);
        assert!(close(t.x[0], 3.910_757_959_537_09));
        assert!(close(t.x[2], 3.449_278_298_560_964));
        assert!(close(t.x[255], 0.215_241_895_913_273_8));
        assert!(close(t.f[0], 0.000_477_467_764_586_655));
        assert!(close(t.f[255], 0.977_101_701_282_731_3));
        assert_eq!((t.x[256], t.f[256]), (0.0, 1.0));
    }

    #[test]
    fn reproducible_and_independent_of_block_boundaries() {
        let mut a = vec![0.0; 1000];
        BlockNormals::new(stream(4, 2)).fill(&mut a);
        let mut b = vec![0.0; 1000];
        BlockNormals::new(stream(4, 2)).fill(&mut b);
        assert_eq!(a, b);
        // Calls that split at a group boundary equal one call over both.
        let mut c = vec![0.0; 256 + 8];
        let mut gen = BlockNormals::new(stream(4, 2));
        gen.fill(&mut c[..256]);
        gen.fill(&mut c[256..]);
        assert_eq!(&c[..], &a[..256 + 8]);
    }

    #[test]
    fn avx2_and_baseline_builds_agree() {
        let mut wide = vec![0.0; 5000];
        BlockNormals::new(stream(6, 1)).fill(&mut wide);
        let mut base = vec![0.0; 5000];
        BlockNormals::new(stream(6, 1)).fill_scalar(&mut base);
        assert_eq!(wide, base);
    }

    /// Moments and tail frequencies of 4 million draws against N(0, 1), each within 5
    /// standard errors: mean sd 1/sqrt(n), variance sqrt(2/n), E z^4 sqrt(96/n), and a
    /// tail share p with sqrt(p (1 - p) / n). The tail beyond R = 3.65 (the base layer's
    /// slow path) and a layer boundary's wedge region are both exercised.
    #[test]
    fn moments_and_tails_are_standard_normal() {
        let n = 4_000_000usize;
        let mut z = vec![0.0; n];
        BlockNormals::new(stream(8, 0)).fill(&mut z);
        let nf = n as f64;
        let mean = z.iter().sum::<f64>() / nf;
        let var = z.iter().map(|v| v * v).sum::<f64>() / nf;
        let k4 = z.iter().map(|v| v.powi(4)).sum::<f64>() / nf;
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "var {var}");
        assert!((k4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "E z^4 {k4}");
        // Two-sided normal tail probabilities P(|Z| > c).
        for (c, p) in [
            (1.0, 0.317_310_507_862_914),
            (2.5, 0.012_419_330_651_552),
            (3.7, 2.156_109_728_22e-4),
        ] {
            let got = z.iter().filter(|v| v.abs() > c).count() as f64 / nf;
            let se = (p * (1.0 - p) / nf).sqrt();
            assert!(
                (got - p).abs() < 5.0 * se,
                "P(|Z| > {c}) = {got}, expected {p}"
            );
        }
        // Both signs of the tail occur.
        assert!(z.iter().any(|&v| v > TAIL_R) && z.iter().any(|&v| v < -TAIL_R));
    }
}
