//! snnTorch's `state_quant`: a neuron state rounded to the nearest of a fixed table of levels,
//! with a straight-through gradient.
//!
//! The level table is built as `snntorch.functional.quant.state_quant` builds it: uniform levels
//! from `torch.linspace` (float32 arithmetic), or non-uniform levels whose spacing shrinks
//! geometrically towards the threshold (or towards zero) by `multiplier`, computed in float64
//! and stored as float32 as `torch.tensor` does. The nearest level is chosen by comparing
//! `|level - x|` in float32; an exact tie goes to the lower level, as `torch.min` returns the first.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};
pub use crate::kernels::levels::{nearest_level, round_to_levels};

/// The options of snnTorch's `state_quant`, by its argument names (also as JSON fields).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateQuantConfig {
    /// Bits per state: `2^num_bits` levels (1..=8).
    pub num_bits: u32,
    /// Evenly spaced levels (`thr_centered` is then ignored, as in snnTorch).
    pub uniform: bool,
    /// Non-uniform levels cluster around the threshold rather than around zero.
    pub thr_centered: bool,
    /// The neuron's threshold the table is scaled to.
    pub threshold: f64,
    /// The lowest level is `-threshold·(1 + lower_limit)`.
    pub lower_limit: f64,
    /// The highest level is `threshold·(1 + upper_limit)`.
    pub upper_limit: f64,
    /// Base of the geometric spacing of non-uniform levels; `None` takes snnTorch's default for
    /// the bit width.
    pub multiplier: Option<f64>,
}

impl Default for StateQuantConfig {
    /// `state_quant()` called without arguments: 8 bits, threshold 1.
    fn default() -> Self {
        Self::new(8, 1.0)
    }
}

impl StateQuantConfig {
    /// snnTorch's defaults (`uniform`, `thr_centered`, limits 0 and 0.2) at `num_bits` bits.
    pub fn new(num_bits: u32, threshold: f64) -> Self {
        Self {
            num_bits,
            uniform: true,
            thr_centered: true,
            threshold,
            lower_limit: 0.0,
            upper_limit: 0.2,
            multiplier: None,
        }
    }

    /// Checks the options and builds the level table.
    pub fn init(&self) -> Result<StateQuant> {
        Ok(StateQuant {
            levels: self.levels()?.into(),
            config: self.clone(),
        })
    }

    /// The level table, in snnTorch's order (ascending for sensible limits).
    pub fn levels(&self) -> Result<Vec<f32>> {
        check_bits("state bits", self.num_bits)?;
        let finite = [self.threshold, self.lower_limit, self.upper_limit]
            .into_iter()
            .chain(self.multiplier)
            .all(f64::is_finite);
        if !finite {
            return Err(Error::invalid(
                "state quantization",
                format!("{self:?} has a value that is not finite"),
            ));
        }
        let n = 1usize << self.num_bits;
        let (thr, lower, upper) = (self.threshold, self.lower_limit, self.upper_limit);
        if self.uniform {
            return Ok(linspace_f32(
                (-thr - thr * lower) as f32,
                (thr + thr * upper) as f32,
                n,
            ));
        }
        let multiplier = self
            .multiplier
            .unwrap_or_else(|| default_multiplier(self.num_bits));
        let max_val = thr + thr * upper;
        let min_val = -(thr + thr * lower);
        // The levels cluster from both sides onto this point.
        let centre = if self.thr_centered { thr } else { 0.0 };
        let overall = max_val - min_val;
        let lower_range = centre - min_val;
        let upper_range = max_val - centre;
        let lower_bits = ((n as f64) * (lower_range / overall)).floor();
        if !(0.0..=n as f64).contains(&lower_bits) {
            return Err(Error::invalid(
                "state quantization",
                format!("{self:?} puts the levels' centre outside their range"),
            ));
        }
        let lower_bits = lower_bits as usize;
        let upper_bits = n - lower_bits;
        let mut levels = Vec::with_capacity(n);
        if lower_bits != 0 {
            let room = geometric_sum(multiplier, lower_bits) / lower_range;
            let mut sum = min_val;
            for j in 0..lower_bits {
                levels.push(sum);
                sum += multiplier.powi(j as i32) / room;
            }
        }
        if upper_bits != 0 {
            let room = geometric_sum(multiplier, upper_bits) / upper_range;
            let mut sum = centre;
            for j in (0..upper_bits).rev() {
                sum += multiplier.powi(j as i32) / room;
                levels.push(sum);
            }
        }
        Ok(levels.into_iter().map(|v| v as f32).collect())
    }
}

/// Refuses a bit width outside 1..=8, naming it.
pub fn check_bits(what: &str, bits: u32) -> Result<()> {
    if (1..=8).contains(&bits) {
        Ok(())
    } else {
        Err(Error::invalid(what, format!("{bits} is outside 1..8 bits")))
    }
}

/// snnTorch's default base of the geometric spacing for a bit width.
fn default_multiplier(bits: u32) -> f64 {
    match bits {
        1 => 0.05,
        2 => 0.1,
        3 => 0.3,
        4 => 0.5,
        5 => 0.7,
        6 => 0.9,
        7 => 0.925,
        _ => 0.95,
    }
}

/// `Σ multiplier^j` for `j < terms`, summed from the largest power down as snnTorch sums it.
fn geometric_sum(multiplier: f64, terms: usize) -> f64 {
    (0..terms).rev().map(|j| multiplier.powi(j as i32)).sum()
}

/// `torch.linspace(start, end, steps)` in float32: the first half counts up from `start`, the
/// second half down from `end`, each value one multiply-add.
fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (steps - i - 1) as f32
            }
        })
        .collect()
}

/// A built state quantizer: its options and level table.
#[derive(Debug, Clone)]
pub struct StateQuant {
    /// The options it was built from.
    pub config: StateQuantConfig,
    levels: Arc<[f32]>,
}

impl PartialEq for StateQuant {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl StateQuant {
    /// The level table.
    pub fn levels(&self) -> &[f32] {
        &self.levels
    }

    /// The level table, shared (for kernels that keep it).
    pub fn shared_levels(&self) -> Arc<[f32]> {
        self.levels.clone()
    }

    /// The level nearest to `x` (`|level - x|` in float32, the lower level on a tie).
    pub fn nearest(&self, x: f32) -> f32 {
        nearest_level(&self.levels, x)
    }

    /// Rounds every element of `x` to its nearest level; the gradient passes straight through.
    ///
    /// The levels are chosen on the host, so the forward value is exactly a level, and the
    /// identity gradient is attached as `q + (x - x.detach())`, which adds an exact zero.
    pub fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let shape = x.shape();
        let mut q: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
        round_to_levels(&self.levels, &mut q);
        let q = Tensor::<D>::from_data(TensorData::new(q, shape), &x.device());
        q + (x.clone() - x.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_levels_span_the_limits() {
        let levels = StateQuantConfig::new(2, 1.0).levels().unwrap();
        assert_eq!(levels.len(), 4);
        assert_eq!(levels[0], -1.0);
        assert_eq!(levels[3], 1.2);
        assert!((levels[1] - (-1.0 + 2.2 / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn bit_widths_outside_one_to_eight_are_refused() {
        for bits in [0, 9, 32] {
            let err = StateQuantConfig::new(bits, 1.0).levels().unwrap_err();
            assert!(err.to_string().contains("outside 1..8 bits"), "{err}");
        }
    }

    #[test]
    fn non_uniform_levels_cluster_at_the_threshold() {
        let mut config = StateQuantConfig::new(4, 1.0);
        config.uniform = false;
        let levels = config.levels().unwrap();
        assert_eq!(levels.len(), 16);
        assert!(levels.windows(2).all(|w| w[0] < w[1]));
        let near = levels.iter().filter(|l| (**l - 1.0).abs() < 0.1).count();
        assert!(near >= 8, "{levels:?}");
    }
}
