//! Standard normal CDF for Black–Scholes deltas.
//!
//! Hand-written because `f64::erf` is not stable Rust and the crate's dependencies have
//! no normal CDF; this is Hart's (1968) algorithm 5666 as given by G. West, "Better
//! approximations to cumulative normal functions" (Wilmott, 2005): double-precision
//! accuracy (about 1e-14 absolute), including the tails.

/// `Phi(x) = P(N(0,1) <= x)`.
pub fn normal_cdf(x: f64) -> f64 {
    let xa = x.abs();
    let c = if xa > 37.0 {
        0.0
    } else {
        let e = (-0.5 * xa * xa).exp();
        if xa < 7.071_067_811_865_47 {
            let mut b = 3.526_249_659_989_11e-2 * xa + 0.700_383_064_443_688;
            b = b * xa + 6.373_962_203_531_65;
            b = b * xa + 33.912_866_078_383;
            b = b * xa + 112.079_291_497_871;
            b = b * xa + 221.213_596_169_931;
            b = b * xa + 220.206_867_912_376;
            let num = e * b;
            let mut d = 8.838_834_764_831_84e-2 * xa + 1.755_667_163_182_64;
            d = d * xa + 16.064_177_579_207;
            d = d * xa + 86.780_732_202_946_1;
            d = d * xa + 296.564_248_779_674;
            d = d * xa + 637.333_633_378_831;
            d = d * xa + 793.826_512_519_948;
            d = d * xa + 440.413_735_824_752;
            num / d
        } else {
            let mut b = xa + 0.65;
            b = xa + 4.0 / b;
            b = xa + 3.0 / b;
            b = xa + 2.0 / b;
            b = xa + 1.0 / b;
            e / b / 2.506_628_274_631
        }
    };
    if x > 0.0 {
        1.0 - c
    } else {
        c
    }
}
