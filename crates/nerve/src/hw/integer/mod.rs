//! Integer-only inference: a trained (quantization-aware or float) [`SpikingNet`] converted to
//! an [`IntProgram`] of integer weights, fixed-point membranes and thresholds, written to a
//! self-describing `.nq` file, and run by an engine whose layers fed spikes only add.
//!
//! The arithmetic, per Leaky layer and channel `c` with membrane unit `S_c`:
//! - Weights are integers on the network's grid (its quantization-aware grid, exact; or 8-bit
//!   per tensor, `max|W|/127`, for a float network). The first layer reads the 8-bit pixels
//!   (one unit = 1/255) and multiplies; every later layer reads 0/1 spikes and adds.
//! - `S_c` = weight scale × input unit, times a folded batch norm's `γ/σ`, divided by the
//!   window of a sum pooling (average pooling without the division). Bias and batch-norm shift
//!   become an integer bias `round(b/S_c)` added each step; the threshold `round(θ/S_c)`. A
//!   channel whose scale comes out negative has its weights negated.
//! - β is a fixed-point multiply, not a shift: `u ← (u·round(β·2¹⁶) + 2¹⁵) >> 16`, then the
//!   current and bias are added and the delayed reset subtracts the threshold (or zeroes the
//!   membrane) where the previous membrane was above it. Against the float network this adds
//!   at most half a membrane unit of rounding per step plus `|β − β₁₆|·|u| ≤ 2⁻¹⁷·|u|`;
//!   thresholds and biases are off by at most half a unit. Membranes saturate at 32 bits.
//! - A network trained with `state_quant` runs here on full 32-bit membranes (the level table
//!   is not applied).
//!
//! [`engine::run`] and its dense twin [`engine::run_reference`] agree bit for bit.
//!
//! [`SpikingNet`]: crate::models::SpikingNet

pub mod engine;
pub mod format;
pub mod program;
mod walks;

pub use engine::{run, run_reference, IntInput, IntOutput};
pub use format::{decode, encode, load, save};
pub use program::{IntOp, IntProgram};

use crate::train::trainer::evaluation_rng;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use crate::data::{Encoding, Samples};
use crate::error::Result;

/// An evaluation of an integer program on a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct IntEvalReport {
    /// Fraction of samples classified right.
    pub accuracy: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// Mean spikes per inference over all layers.
    pub spikes_per_sample: f64,
    /// Mean synaptic operations (additions) per inference.
    pub acs_per_sample: f64,
    /// Mean multiply-accumulates per inference (the first layer's).
    pub macs_per_sample: f64,
}

/// A batch's inputs as 8-bit values per sample: `[1 or T, B, C, H, W]` floats in [0, 1].
pub fn batch_inputs(x: Tensor<5>) -> Vec<Vec<Vec<u8>>> {
    let [t, b, c, h, w] = x.dims();
    let values: Vec<f32> = x.into_data().iter::<f32>().collect();
    let size = c * h * w;
    (0..b)
        .map(|s| {
            (0..t)
                .map(|step| {
                    let at = (step * b + s) * size;
                    values[at..at + size]
                        .iter()
                        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Runs `program` on the first `limit` samples of `data` (all when `None`), encoded as in
/// training (rate-coded inputs drawn as an evaluation of a run seeded 0 draws them), the
/// samples of each batch in parallel; `on_batch` follows progress.
pub fn evaluate_integer(
    program: &IntProgram,
    data: &dyn Samples,
    encoding: Encoding,
    batch_size: usize,
    limit: Option<usize>,
    on_batch: &mut dyn FnMut(),
) -> Result<IntEvalReport> {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    let indices: Vec<usize> = (0..n).collect();
    let device = Device::flex();
    let mut rng = evaluation_rng(0);
    let (mut right, mut spikes, mut acs, mut macs) = (0usize, 0u64, 0u64, 0u64);
    for batch in indices.chunks(batch_size.max(1)) {
        let (x, y) = data.batch(batch, program.steps, encoding, &mut rng, &device)?;
        let labels: Vec<i64> = y.into_data().iter::<i64>().collect();
        let inputs = batch_inputs(x);
        let outputs: Vec<IntOutput> = inputs
            .par_iter()
            .map(|steps| run(program, IntInput::from_steps(steps)))
            .collect::<Result<_>>()?;
        for (out, &label) in outputs.iter().zip(&labels) {
            right += usize::from(out.prediction() as i64 == label);
            spikes += out.layer_spikes.iter().sum::<u64>();
            acs += out.acs;
            macs += out.macs;
        }
        on_batch();
    }
    let per = |v: u64| v as f64 / n.max(1) as f64;
    Ok(IntEvalReport {
        accuracy: right as f64 / n.max(1) as f64,
        samples: n,
        spikes_per_sample: per(spikes),
        acs_per_sample: per(acs),
        macs_per_sample: per(macs),
    })
}
