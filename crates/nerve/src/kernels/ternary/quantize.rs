//! BitLinear quantisation: ternary weights with their scale, and int8 activations with the
//! lookup tables the kernels read.

use std::borrow::Cow;

use super::pack::digit;
use super::two_bit::BLOCK_COLS;
use super::{Kernel, Layout, Line, WORD_COLS};

/// BitLinear's per-tensor weight scale `s_w = 1 / max(mean|W|, 1e-5)`.
pub fn weight_scale(w: &[f32]) -> f32 {
    // Summed in f64 so that the mean of millions of weights does not drift.
    let sum: f64 = w.iter().map(|v| v.abs() as f64).sum();
    let mean = if w.is_empty() {
        0.0
    } else {
        sum / w.len() as f64
    };
    1.0 / (mean as f32).max(1e-5)
}

/// BitLinear's ternary weight `clamp(round_half_to_even(w · s_w), -1, 1)`.
pub fn ternarize(w: f32, scale: f32) -> i8 {
    (w * scale).round_ties_even().clamp(-1.0, 1.0) as i8
}

/// Quantises activations per token to int8 as BitLinear does: `s = 127 / max(max|x|, 1e-5)`,
/// `q = clamp(round_half_away_from_zero(x · s), -128, 127)`; writes `q` and returns `s`.
///
/// # Panics
/// If `q` is shorter than `x`.
#[inline(always)]
pub fn quantize_i8(x: &[f32], q: &mut [i8]) -> f32 {
    assert!(q.len() >= x.len(), "quantize_i8: output shorter than input");
    let s = 127.0 / max_abs(x).max(1e-5);
    for (o, v) in q.iter_mut().zip(x) {
        *o = round_to_i8(v * s);
    }
    s
}

/// `max |x|` (0 for an empty slice, NaN ignored), with independent lanes so it vectorises;
/// the maximum does not depend on the order.
#[inline]
pub(super) fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.iter().fold(tail, |m, v| m.max(*v))
}

/// 1.5 · 2²³: adding it to a float of magnitude below 2²² rounds it to an integer, which then
/// sits in the low mantissa bits.
const ROUND_BIAS: f32 = 12_582_912.0;

/// `clamp(round_half_away(v), -128, 127)` as i8 for `|v| < 2²²`, NaN giving 0 (as
/// `round_half_away` then a cast would), with float and integer lane operations only: a
/// float-to-int `as` cast saturates and checks for NaN lane by lane, which kept
/// [`quantize_i8`] from vectorising.
#[inline(always)]
pub(super) fn round_to_i8(v: f32) -> i8 {
    let a = v.abs();
    let nearest = (a + ROUND_BIAS) - ROUND_BIAS;
    let floor = if nearest > a { nearest - 1.0 } else { nearest };
    let up = if a - floor >= 0.5 { 1.0 } else { 0.0 };
    let r = (floor + up).copysign(v).clamp(-128.0, 127.0);
    let r = if r.is_nan() { 0.0 } else { r };
    ((r + ROUND_BIAS)
        .to_bits()
        .wrapping_sub(ROUND_BIAS.to_bits())) as i8
}

/// `f32::round` (half away from zero) for `|v| < 2³¹`, without the libm call `round`
/// compiles to on baseline x86-64: the truncation and the fraction are exact in f32. The
/// scalar form [`round_to_i8`] is tested against.
#[cfg(test)]
pub(super) fn round_half_away(v: f32) -> i32 {
    let t = v as i32;
    let frac = v - t as f32;
    t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)
}

/// One activation vector quantised to int8, with the per-group lookup tables the base-3
/// kernels read (built only where [`Kernel::detect`] reads base 3). Allocate once and reuse it
/// for every token.
#[derive(Debug, Clone)]
pub struct QuantizedActivations {
    len: usize,
    /// The values, then zeros up to a whole number of two-bit blocks and of base-3 words.
    pub(super) q8: Vec<i8>,
    /// One table per group of 3 columns: entry `code` is `Σ_k digit(code, k) · x[3g + k]`.
    pub(super) tables: Vec<Line>,
    /// Whether `tables` holds the current values' tables.
    tables_ready: bool,
    scale: f32,
}

impl QuantizedActivations {
    /// Buffers for vectors of `len` values (all zero, scale 1).
    pub fn new(len: usize) -> Self {
        Self {
            len,
            // Whole two-bit blocks and whole base-3 words, so both kernels read zeros past
            // the end.
            q8: vec![
                0;
                (len.div_ceil(BLOCK_COLS) * BLOCK_COLS)
                    .max(len.div_ceil(WORD_COLS) * WORD_COLS)
            ],
            tables: vec![Line::default(); len.div_ceil(WORD_COLS) * 3],
            tables_ready: true,
            scale: 1.0,
        }
    }

    /// Number of activations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Quantises `x` with [`quantize_i8`], builds the tables and returns the scale `s`.
    ///
    /// # Panics
    /// If `x.len()` differs from [`len`](Self::len).
    #[inline(always)]
    pub fn quantize(&mut self, x: &[f32]) -> f32 {
        assert_eq!(x.len(), self.len, "activation length");
        self.scale = quantize_i8(x, &mut self.q8);
        self.prepare();
        self.scale
    }

    /// Sets the int8 values directly (scale 1), e.g. to test extreme inputs.
    ///
    /// # Panics
    /// If `q.len()` differs from [`len`](Self::len).
    pub fn set_i8(&mut self, q: &[i8]) {
        assert_eq!(q.len(), self.len, "activation length");
        self.q8[..self.len].copy_from_slice(q);
        self.scale = 1.0;
        self.prepare();
    }

    /// Builds the tables if the chosen kernel reads them (else they are built on demand by
    /// [`tables_for`](Self::tables_for)).
    #[inline(always)]
    fn prepare(&mut self) {
        let kernel = Kernel::detect();
        self.tables_ready = kernel.layout() == Layout::Base3;
        if self.tables_ready {
            self.build_tables(kernel);
        }
    }

    /// The int8 activations.
    pub fn as_i8(&self) -> &[i8] {
        &self.q8[..self.len]
    }

    /// The int8 activations followed by zeros up to a whole number of two-bit blocks.
    pub(super) fn padded_i8(&self) -> &[i8] {
        &self.q8
    }

    /// `Σ x` of the int8 activations (what the two-bit kernels subtract; one pass over the
    /// values per GEMV, next to the GEMV's pass over the weights).
    pub(super) fn sum(&self) -> i32 {
        self.as_i8().iter().map(|&v| v as i32).sum()
    }

    /// The group tables for `kernel`: these, or built now if the chosen kernel did not need
    /// them.
    pub(super) fn tables_for(&self, kernel: Kernel) -> Cow<'_, [Line]> {
        if self.tables_ready {
            return Cow::Borrowed(&self.tables);
        }
        let mut copy = self.clone();
        copy.build_tables(kernel);
        Cow::Owned(copy.tables)
    }

    /// The scale `s` of the last [`quantize`](Self::quantize) (`x ≈ q / s`).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The three activations of group `g` (zero past the end).
    pub(super) fn group(&self, g: usize) -> [i16; 3] {
        let x = &self.q8[3 * g..3 * g + 3];
        [x[0] as i16, x[1] as i16, x[2] as i16]
    }

    pub(super) fn build_tables(&mut self, kernel: Kernel) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only chosen when `is_supported`.
            Kernel::Avx512 if kernel.is_supported() => unsafe { super::x86::build_tables(self) },
            _ => {
                for g in 0..self.tables.len() {
                    let x = self.group(g);
                    let t = &mut self.tables[g].0;
                    for (code, e) in t.iter_mut().enumerate().take(27) {
                        // Adds and subtracts only: each weight is -1, 0 or +1.
                        let mut sum = 0i16;
                        for (k, &v) in x.iter().enumerate() {
                            match digit(code, k) {
                                1 => sum += v,
                                -1 => sum -= v,
                                _ => {}
                            }
                        }
                        *e = sum;
                    }
                }
            }
        }
    }
}
