//! Branch-free `exp` and `ln` for the per-particle loops.
//!
//! Why hand-written: `f64::exp` / `f64::ln` call the C library's scalar routines, so a
//! loop that uses them cannot be vectorised, and they are most of a particle step's cost.
//! These are plain arithmetic and bit operations (fdlibm's range reductions; for `exp` a
//! division-free polynomial, for `ln` fdlibm's; within 1 to 2 ulp of the C library in
//! their range), so LLVM vectorises the loops that call them. A SIMD math crate would do
//! the same; none is among this crate's dependencies.

use std::f64::consts::LOG2_E;

const LN2_HI: f64 = 0.6931471803691238;
const LN2_LO: f64 = 1.9082149292705877e-10;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// `e^x`, within 2 ulp where the result is normal; it underflows gradually to 0 and
/// overflows to `+inf` like `f64::exp`; NaN stays NaN.
///
/// `x = k ln2 + r` (`|r| <= ln2 / 2`), `e^r` by its Taylor polynomial of degree 13 (the
/// remainder is below 4e-18 relative) in Estrin's scheme, `2^k` by exponent bits. No
/// division and a short dependency chain: the per-particle loops are bound by the
/// latency of their `exp`s (an earlier fdlibm-style version, with a division, was
/// twice as deep).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
    ];
    // Past +-1380 the result is 0 or inf anyway; clamping keeps k within two scale factors.
    let xc = x.clamp(-1380.0, 1380.0);
    // x = k ln2 + r, |r| <= ln2 / 2, k rounded to nearest.
    let t = xc * LOG2_E + SHIFT;
    let kf = t - SHIFT;
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    // e^r = 1 + (r + r^2 s), s = sum_{i>=2} r^(i-2) / i!: the 1 is added last, so its
    // rounding is the only one at the result's scale.
    let s = (C[2] + C[3] * r)
        + r2 * (C[4] + C[5] * r)
        + r4 * ((C[6] + C[7] * r) + r2 * (C[8] + C[9] * r))
        + r8 * ((C[10] + C[11] * r) + r2 * (C[12] + C[13] * r));
    let y = 1.0 + (r + r2 * s);
    // 2^k as 2^(h - 1024) 2^(g - 1024) with h + g = k + 2048, both factors normal, so
    // the products under- and overflow exactly where e^x does, with no branch.
    let u = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(2048);
    let h = u >> 1;
    let g = u - h;
    y * f64::from_bits((h - 1) << 52) * f64::from_bits((g - 1) << 52)
}

/// `ln x` for positive normal `x` (within 1 ulp); not meant for zero, subnormal,
/// negative, infinite or NaN arguments (the particle loops never pass them).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    const LG1: f64 = 0.6666666666666735;
    const LG2: f64 = 0.3999999999940942;
    const LG3: f64 = 0.2857142874366239;
    const LG4: f64 = 0.22222198432149784;
    const LG5: f64 = 0.1818357216161805;
    const LG6: f64 = 0.15313837699209373;
    const LG7: f64 = 0.14798198605116586;
    const SQRT2_BITS_MANTISSA: u64 = 0x0006_a09e_667f_3bcd; // mantissa bits of sqrt(2)
    let bits = x.to_bits();
    let mantissa = bits & 0x000f_ffff_ffff_ffff;
    // x = 2^k m with m in [sqrt(2)/2, sqrt(2)).
    let big = mantissa >= SQRT2_BITS_MANTISSA;
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023 + i64::from(big);
    let m_bits = mantissa
        | if big {
            0x3fe0_0000_0000_0000
        } else {
            0x3ff0_0000_0000_0000
        };
    let f = f64::from_bits(m_bits) - 1.0;
    let kf = exponent as f64;
    // fdlibm: ln(1 + f) = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f).
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    kf * LN2_HI - ((hfsq - (s * (hfsq + r) + kf * LN2_LO)) - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs() / f64::EPSILON
    }

    #[test]
    fn exp_is_within_an_ulp_or_two_of_std() {
        let mut worst: f64 = 0.0;
        for i in 0..200_001 {
            let x = -708.0 + 1417.5 * i as f64 / 200_000.0;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        for i in 0..100_001 {
            let x = -2.0 + 4.0 * i as f64 / 100_000.0;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        println!("exp: worst {worst} ulp");
        assert!(worst <= 2.0, "worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert!((exp(709.5) / 709.5_f64.exp() - 1.0).abs() < 1e-15);
        // Subnormal results: gradual underflow, to within a subnormal's precision.
        assert!((exp(-740.0) - (-740.0_f64).exp()).abs() < 1e-322);
    }

    #[test]
    fn ln_is_within_an_ulp_or_two_of_std() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            worst = worst.max(ulps(ln(x), x.ln()));
            x *= 1.000_37;
        }
        for i in 1..100_000 {
            let x = 0.5 + i as f64 / 100_000.0;
            let (a, b) = (ln(x), x.ln());
            // Near x = 1 the result is tiny: compare absolutely there.
            let err = if b.abs() < 1e-3 {
                (a - b).abs() / f64::EPSILON
            } else {
                ulps(a, b)
            };
            worst = worst.max(err);
        }
        assert!(worst <= 2.0, "worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }
}
