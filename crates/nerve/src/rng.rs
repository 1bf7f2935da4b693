//! Random draws shared by weight initialisers, the event-camera emulator and event transforms.

use rand::Rng;

/// One standard-normal draw (Box–Muller), since `rand` 0.9 alone has no normal distribution.
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
