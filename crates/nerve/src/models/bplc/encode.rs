//! The input code of BPLC + NOSO: each pixel drives a leaky integrate-and-fire neuron.
//!
//! As `encoding_neuron` in the authors' code: `u ← u·(1 − s)·e^{−1/τ} + scale·x`, a spike
//! when `u > 1` (reset to zero at the next step), τ = τm and scale 0.3 by default. A bright
//! pixel fires first (step 3 for x = 1) and then every few steps; a dark one late or never.
//! During training the authors add Gaussian noise (σ = 0.05) to the pixels, clamped to [0, 1].

use rand::Rng;

/// LIF spike trains `[T, N]` (row-major, 0/1) of pixel intensities `x [N]`.
pub fn lif_encode(x: &[f32], steps: usize, scale: f64, tau: f64) -> Vec<f32> {
    let n = x.len();
    let decay = (-1.0 / tau).exp() as f32;
    let scale = scale as f32;
    let mut u = vec![0f32; n];
    let mut s = vec![0f32; n];
    let mut out = vec![0f32; steps * n];
    for k in 0..steps {
        let row = &mut out[k * n..(k + 1) * n];
        for i in 0..n {
            u[i] = u[i] * (1.0 - s[i]) * decay + scale * x[i];
            s[i] = if u[i] > 1.0 { 1.0 } else { 0.0 };
            row[i] = s[i];
        }
    }
    out
}

/// Adds Gaussian noise of standard deviation `sigma` to each pixel and clamps to [0, 1].
pub fn add_pixel_noise(x: &mut [f32], sigma: f64, rng: &mut impl Rng) {
    if sigma <= 0.0 {
        return;
    }
    for v in x.iter_mut() {
        let z = crate::rng::standard_normal(rng);
        *v = (f64::from(*v) + sigma * z).clamp(0.0, 1.0) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bright_pixels_fire_first_and_dark_never() {
        let spikes = lif_encode(&[1.0, 0.5, 0.0], 12, 0.3, 160.0);
        let first = |i: usize| (0..12).find(|&k| spikes[k * 3 + i] > 0.0);
        assert_eq!(first(0), Some(3));
        assert!(first(1).unwrap() > 3);
        assert_eq!(first(2), None);
    }
}
