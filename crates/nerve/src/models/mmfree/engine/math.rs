//! The float arithmetic of a token: RMSNorm and the gate nonlinearities, written so that
//! the loops over them vectorise.

/// `1 / sqrt(mean(x²) + eps)`, summed in 16 independent lanes so that it vectorises instead
/// of waiting on one chain of additions.
#[inline]
pub(super) fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(c) {
            *s += v * v;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    let ms = (lanes.iter().sum::<f32>() + tail) / x.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// `out = x · inv · w`: RMSNorm once `inv` is known.
#[inline]
pub(super) fn scale_by(x: &[f32], inv: f32, w: &[f32], out: &mut [f32]) {
    for ((o, v), w) in out.iter_mut().zip(x).zip(w) {
        *o = v * inv * w;
    }
}

/// `out = x / sqrt(mean(x²) + eps) * w`.
#[inline]
pub(super) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    scale_by(x, inv_rms(x, eps), w, out);
}

/// `e^x` within a few ulp for `x` in [-87.3, 88.3] (inputs outside are clamped to it, so the
/// result stays finite and normal), without a libm call so that loops over it vectorise:
/// Cody–Waite reduction by ln 2 and the Cephes `expf` polynomial.
#[inline]
pub(super) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let biased = x * std::f32::consts::LOG2_E + ROUND;
    let n = biased - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from its exponent bits; n is in [-126, 127] and sits in the low mantissa bits of
    // `biased` (read there rather than with `n as i32`, whose saturating conversion compiles
    // to scalar code per lane and kept this loop from vectorising).
    let n_bits = biased.to_bits().wrapping_sub(ROUND.to_bits());
    y * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[inline]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

#[inline]
pub(super) fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.00731;
        }
        // A few ulp (f32 epsilon is 1.19e-7).
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(sigmoid(-200.0).max(0.0), sigmoid(-200.0));
        assert_eq!(sigmoid(200.0), 1.0);
    }
}
