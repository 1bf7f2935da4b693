//! Outer plexiform layer and bipolar cells: a centre–surround receptive field (the surround
//! from horizontal cells) followed by a partly transient temporal filter, split into ON and
//! OFF pathways.
//!
//! ```text
//! centre        c = G_σc ∗ p
//! horizontal    τ_H dH/dt = G_σs ∗ p − H
//! drive         x = c − w_s H
//! bipolar       b = LP_fast(x) − (1 − s) LP_slow(x)
//! ON release    max(0, b)      OFF release    max(0, −b)
//! ```
//!
//! `p` is the photoreceptor response (which grows with light), `G_σ` a normalised Gaussian
//! (a difference of Gaussians overall, the classic centre–surround model of Rodieck 1965), and
//! `LP_τ` a first-order low-pass. Horizontal cells integrate slowly, so the surround lags the
//! centre and responses to a change start stronger than they settle. The temporal filter passes
//! a fraction `s` of a sustained input (`s` = 0: purely transient bipolar cells, `s` = 1:
//! purely sustained), which gives the fast ON burst at light onset and the OFF burst at
//! offset. ON bipolar cells depolarise to light (sign-inverting mGluR6 synapse) and OFF cells
//! to darkness; each releases transmitter only when depolarised, hence the rectification.
//!
//! Gaussians are applied separably and renormalised at the image border (the weights falling
//! inside sum to one), so a uniform field gives a uniform response up to the edge instead of a
//! spurious border.

use rayon::prelude::*;

/// Parameters of the bipolar layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BipolarParams {
    /// Standard deviation of the centre Gaussian, pixels (0 = a single pixel).
    pub center_sigma: f64,
    /// Standard deviation of the horizontal-cell surround Gaussian, pixels.
    pub surround_sigma: f64,
    /// Weight of the surround w_s (0 = no surround, 1 = a uniform field cancels).
    pub surround_weight: f64,
    /// Time constant of the horizontal cells τ_H, ms.
    pub tau_horizontal: f64,
    /// Fast low-pass of the bipolar filter, ms.
    pub tau_fast: f64,
    /// Slow low-pass of the bipolar filter, ms.
    pub tau_slow: f64,
    /// Sustained fraction s of the bipolar filter, in [0, 1].
    pub sustained: f64,
}

impl Default for BipolarParams {
    fn default() -> Self {
        Self {
            center_sigma: 0.7,
            surround_sigma: 3.0,
            surround_weight: 1.0,
            tau_horizontal: 20.0,
            tau_fast: 10.0,
            tau_slow: 60.0,
            sustained: 0.3,
        }
    }
}

impl BipolarParams {
    /// Checks the ranges of every field.
    pub fn validate(&self) -> crate::Result<()> {
        let checks = [
            ("center_sigma", self.center_sigma, 0.0, 1e3),
            ("surround_sigma", self.surround_sigma, 0.0, 1e3),
            ("surround_weight", self.surround_weight, 0.0, 1.0),
            ("sustained", self.sustained, 0.0, 1.0),
        ];
        for (name, v, lo, hi) in checks {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return Err(crate::Error::invalid(
                    format!("bipolar {name}"),
                    format!("must be in [{lo}, {hi}], got {v}"),
                ));
            }
        }
        for (name, v) in [
            ("tau_horizontal", self.tau_horizontal),
            ("tau_fast", self.tau_fast),
            ("tau_slow", self.tau_slow),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(crate::Error::invalid(
                    format!("bipolar {name}"),
                    format!("must be finite and > 0 ms, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// The bipolar layer of a `width`×`height` image, one bipolar cell per pixel.
#[derive(Debug, Clone)]
pub struct BipolarLayer {
    width: usize,
    height: usize,
    center: Vec<f64>,
    surround: Vec<f64>,
    surround_weight: f64,
    sustained: f64,
    horizontal: Vec<f64>,
    fast: Vec<f64>,
    slow: Vec<f64>,
    decay_h: f64,
    decay_fast: f64,
    decay_slow: f64,
    /// Scratch buffers for the separable convolutions.
    tmp: Vec<f64>,
    c: Vec<f64>,
    s: Vec<f64>,
    /// The latest bipolar signal b per pixel.
    out: Vec<f64>,
}

impl BipolarLayer {
    /// A layer at rest (all signals 0) for an image, stepped every `dt` ms.
    pub fn new(params: &BipolarParams, width: usize, height: usize, dt: f64) -> Self {
        let n = width * height;
        Self {
            width,
            height,
            center: gaussian_kernel(params.center_sigma),
            surround: gaussian_kernel(params.surround_sigma),
            surround_weight: params.surround_weight,
            sustained: params.sustained,
            horizontal: vec![0.0; n],
            fast: vec![0.0; n],
            slow: vec![0.0; n],
            decay_h: (-dt / params.tau_horizontal).exp(),
            decay_fast: (-dt / params.tau_fast).exp(),
            decay_slow: (-dt / params.tau_slow).exp(),
            tmp: vec![0.0; n],
            c: vec![0.0; n],
            s: vec![0.0; n],
            out: vec![0.0; n],
        }
    }

    /// Sets every filter to its steady state for a constant photoreceptor response `p`, so a
    /// run that starts adapted to a background starts without a transient.
    pub fn adapt(&mut self, p: &[f64]) {
        self.blur_inputs(p);
        self.horizontal.copy_from_slice(&self.s);
        for i in 0..self.out.len() {
            let x = self.c[i] - self.surround_weight * self.horizontal[i];
            self.fast[i] = x;
            self.slow[i] = x;
            self.out[i] = self.sustained * x;
        }
    }

    /// Centre and surround blurs of the photoreceptor responses `p` into `c` and `s`.
    fn blur_inputs(&mut self, p: &[f64]) {
        blur(
            &self.center,
            p,
            &mut self.c,
            &mut self.tmp,
            self.width,
            self.height,
        );
        blur(
            &self.surround,
            p,
            &mut self.s,
            &mut self.tmp,
            self.width,
            self.height,
        );
    }

    /// The bipolar signal `b` per pixel (positive: ON cells release, negative: OFF cells).
    pub fn signal(&self) -> &[f64] {
        &self.out
    }

    /// Advances the layer by one step under photoreceptor responses `p`.
    pub fn step(&mut self, p: &[f64]) {
        self.blur_inputs(p);
        let lag = 1.0 - self.sustained;
        for i in 0..self.out.len() {
            let h = &mut self.horizontal[i];
            *h = self.s[i] + (*h - self.s[i]) * self.decay_h;
            let x = self.c[i] - self.surround_weight * *h;
            self.fast[i] = x + (self.fast[i] - x) * self.decay_fast;
            self.slow[i] = x + (self.slow[i] - x) * self.decay_slow;
            self.out[i] = self.fast[i] - lag * self.slow[i];
        }
    }
}

/// A normalised, truncated (±3σ) Gaussian; `[1]` for σ below a tenth of a pixel.
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    if sigma < 0.1 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|w| w / sum).collect()
}

/// Separable convolution of a row-major `w`×`h` image with `kernel` along rows then columns;
/// at the border the weights inside the image are renormalised to sum to one. Both passes run
/// in parallel over output rows, and the column pass adds whole source rows (contiguous,
/// vectorisable) instead of striding down columns.
pub fn blur(kernel: &[f64], input: &[f64], out: &mut [f64], tmp: &mut [f64], w: usize, h: usize) {
    if kernel.len() == 1 {
        out.copy_from_slice(input);
        return;
    }
    let r = kernel.len() / 2;
    // Sum of the kernel weights that fall inside `0..len` around position `pos`.
    let norms = |len: usize| -> Vec<f64> {
        (0..len)
            .map(|pos| {
                kernel
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| (pos + k).checked_sub(r).is_some_and(|q| q < len))
                    .map(|(_, &wk)| wk)
                    .sum()
            })
            .collect()
    };
    let (norm_x, norm_y) = (norms(w), norms(h));
    tmp.par_chunks_mut(w)
        .zip(input.par_chunks(w))
        .for_each(|(dst, src)| {
            for (x, d) in dst.iter_mut().enumerate() {
                let k0 = r.saturating_sub(x);
                let k1 = kernel.len().min(w + r - x);
                let acc: f64 = (k0..k1).map(|k| kernel[k] * src[x + k - r]).sum();
                *d = acc / norm_x[x];
            }
        });
    let tmp = &*tmp;
    out.par_chunks_mut(w).enumerate().for_each(|(y, dst)| {
        dst.fill(0.0);
        let k0 = r.saturating_sub(y);
        let k1 = kernel.len().min(h + r - y);
        for k in k0..k1 {
            let src = &tmp[(y + k - r) * w..(y + k - r + 1) * w];
            let wk = kernel[k];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += wk * v;
            }
        }
        let inv = 1.0 / norm_y[y];
        for d in dst.iter_mut() {
            *d *= inv;
        }
    });
}
