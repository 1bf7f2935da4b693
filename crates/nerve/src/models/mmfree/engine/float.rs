//! The float engine: the same decoding on ternary weights held as `f32` and multiplied with
//! plain dot products, to check the packing and the kernels of
//! [`MmFreeEngine`](super::MmFreeEngine) against.

use super::super::weights::{MmFreeWeights, TensorSpec};
use super::params::{tensor_from, Model};
use super::{BitLinearMatrix, Engine};
use crate::error::Result;
use crate::kernels::ternary::{ternarize, weight_scale, QuantizedActivations};

/// An [`Engine`] on [`FloatTernaryMatrix`] weights. Slow and four bytes per weight: for tests.
///
/// BitLinear here is `y = (x_q · W_tᵀ) / (s · s_w)` with `x_q` and `W_t` held as `f32`: every
/// product and partial sum is an integer below 2²⁴, so the `f32` dot product is exact and the
/// float engine rounds exactly where the packed engine does. That matters: a quantised model is
/// chaotic at rounding ties, and one activation rounded the other way at one step shifts later
/// logits by up to a few percent, so engines that differ in the last bit of `y` cannot be
/// compared tightly over many tokens.
pub type FloatEngine = Engine<FloatTernaryMatrix>;

/// A ternary matrix in `f32`: the values `W_t` in {-1, 0, 1}, row-major `[rows, cols]`, and
/// the scale `s_w` (the dequantised weight is `W_t / s_w`).
#[derive(Debug, Clone)]
pub struct FloatTernaryMatrix {
    cols: usize,
    t: Vec<f32>,
    s_w: f32,
}

impl FloatTernaryMatrix {
    fn new(spec: &TensorSpec, data: &[f32]) -> Result<Self> {
        let s_w = weight_scale(data);
        Ok(Self {
            cols: spec.shape[1],
            t: data.iter().map(|&v| ternarize(v, s_w) as f32).collect(),
            s_w,
        })
    }
}

impl BitLinearMatrix for FloatTernaryMatrix {
    fn scale(&self) -> f32 {
        self.s_w
    }

    /// Each weight row's `f32` dot product with `x_q`.
    fn gemv(&self, x: &QuantizedActivations, y: &mut [i32]) {
        let xq: Vec<f32> = x.as_i8().iter().map(|&v| v as f32).collect();
        for (out, row) in y.iter_mut().zip(self.t.chunks(self.cols)) {
            let mut dot = 0.0f32;
            for c in 0..row.len() {
                dot += row[c] * xq[c];
            }
            *out = dot as i32;
        }
    }
}

impl Engine<FloatTernaryMatrix> {
    /// Ternarises `weights` into `f32` matrices; errors on a missing or misshapen tensor.
    pub fn new(weights: &MmFreeWeights) -> Result<Self> {
        Ok(Self::from_model(Model::build(
            &weights.config,
            tensor_from(weights),
            FloatTernaryMatrix::new,
        )?))
    }
}
