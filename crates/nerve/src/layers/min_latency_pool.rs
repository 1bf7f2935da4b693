//! Minimum-latency pooling (BPLC + NOSO, Jin et al. 2023): each patch passes the spike of
//! the neuron that fired first, and only that neuron receives the patch's gradient.
//!
//! The authors' `MinPool` picks, at each step, the index of the smallest latency known so far
//! in the patch (`max_pool2d` of the negated latencies) and gathers the current spikes there.
//! Neighbouring neurons of a patch receive their first input at the same step, so the smallest
//! latency is the earliest spike; here the selection is made once on the absolute spike steps,
//! so a pooled neuron fires at most once, like the neurons it pools. Ties go to the first
//! neuron of the patch in row-major order; a patch with no spike passes nothing.

use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};

/// Minimum-latency pooling over non-overlapping `size × size` patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinLatencyPool2d {
    /// Patch side (and stride).
    pub size: usize,
}

/// Pooled spikes and their spike steps.
#[derive(Debug, Clone)]
pub struct PooledSpikes {
    /// Spikes `[T, B, C, H/size, W/size]`.
    pub spk: Tensor<5>,
    /// Spike step of each pooled neuron, `B·C·(H/size)·(W/size)` in row-major order (`T` when
    /// the patch is silent).
    pub first_step: Vec<usize>,
}

impl MinLatencyPool2d {
    /// Patches of `size × size`, stride `size`.
    pub fn new(size: usize) -> Self {
        Self { size }
    }

    /// Pools spikes `[T, B, C, H, W]` given each neuron's spike step (`T` when silent), in the
    /// row-major order of `[B, C, H, W]`.
    pub fn forward(&self, spk: Tensor<5>, first_step: &[usize]) -> Result<PooledSpikes> {
        let [steps, b, c, h, w] = spk.dims();
        let k = self.size;
        if k == 0 || h < k || w < k {
            return Err(Error::invalid(
                "min-latency pooling",
                format!("patch {k} does not fit a {h}x{w} map"),
            ));
        }
        if first_step.len() != b * c * h * w {
            return Err(Error::Shape {
                what: "min-latency pooling spike steps".into(),
                expected: format!("{}", b * c * h * w),
                got: format!("{}", first_step.len()),
            });
        }
        let (ho, wo) = (h / k, w / k);
        let mut select = vec![0f32; b * c * h * w];
        let mut pooled = vec![steps; b * c * ho * wo];
        for map in 0..b * c {
            let base = map * h * w;
            for py in 0..ho {
                for px in 0..wo {
                    let mut best: Option<(usize, usize)> = None;
                    for dy in 0..k {
                        for dx in 0..k {
                            let i = base + (py * k + dy) * w + px * k + dx;
                            let t = first_step[i];
                            if t < steps && best.is_none_or(|(bt, _)| t < bt) {
                                best = Some((t, i));
                            }
                        }
                    }
                    if let Some((t, i)) = best {
                        select[i] = 1.0;
                        pooled[(map * ho + py) * wo + px] = t;
                    }
                }
            }
        }
        let device = spk.device();
        let mask = Tensor::<4>::from_data(TensorData::new(select, [b, c, h, w]), &device)
            .unsqueeze_dim::<5>(0);
        let chosen = (spk * mask).reshape([steps * b, c, h, w]);
        let options = AvgPoolOptions::new([k, k]);
        let summed = avg_pool2d(chosen, options).mul_scalar((k * k) as f64);
        Ok(PooledSpikes {
            spk: summed.reshape([steps, b, c, ho, wo]),
            first_step: pooled,
        })
    }
}
