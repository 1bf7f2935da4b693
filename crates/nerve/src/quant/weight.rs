//! Fake-quantized weights for quantization-aware training: the forward pass sees weights on a
//! k-bit symmetric grid (or ternary), the backward pass treats the rounding as the identity
//! (straight-through estimator).
//!
//! - `k` bits, `k >= 2`: integer levels `-Q..=Q` with `Q = 2^(k-1) - 1`, times a scale
//!   (`max|W| / Q`, or a learned scale).
//! - 1 bit: `sign(W)` times a scale (`mean|W|`, or a learned scale), as binary networks do.
//! - Ternary: `{-1, 0, 1}` times `mean|W|`, the absmean rule of the MatMul-free LM's BitLinear.
//!
//! The scale is per tensor, or per output channel (the axis the caller names).

use std::fmt;

use burn::tensor::Tensor;

use super::state::check_bits;
use crate::error::{Error, Result};

/// The grid a weight is rounded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightGrid {
    /// Symmetric integers on `bits` bits (1..=8; 1 bit is `±scale`).
    Bits(u32),
    /// `{-1, 0, 1} · mean|W|`.
    Ternary,
}

/// Where the scale comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleRule {
    /// From the weights themselves: `max|W| / Q` (`mean|W|` for 1 bit and ternary), not trained.
    FromWeights,
    /// A trained parameter, initialised from the weights (LSQ: the gradient reaches the scale
    /// through the rounding's straight-through estimator).
    Learned,
}

/// Options of weight fake-quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightQuantConfig {
    /// The grid.
    pub grid: WeightGrid,
    /// One scale per output channel rather than one per tensor.
    pub per_channel: bool,
    /// Where the scale comes from.
    pub scale: ScaleRule,
}

impl WeightQuantConfig {
    /// Per-tensor symmetric `bits`-bit weights with the scale from `max|W|`.
    pub fn bits(bits: u32) -> Result<Self> {
        check_bits("weight bits", bits)?;
        Ok(Self {
            grid: WeightGrid::Bits(bits),
            per_channel: false,
            scale: ScaleRule::FromWeights,
        })
    }

    /// Ternary weights with the absmean scale.
    pub fn ternary() -> Self {
        Self {
            grid: WeightGrid::Ternary,
            per_channel: false,
            scale: ScaleRule::FromWeights,
        }
    }

    /// Checks the bit width.
    pub fn validate(&self) -> Result<()> {
        if let WeightGrid::Bits(bits) = self.grid {
            check_bits("weight bits", bits)?;
        }
        if self.grid == WeightGrid::Ternary && self.scale == ScaleRule::Learned {
            return Err(Error::invalid(
                "weight quantization",
                "ternary weights take the absmean scale; a learned scale needs --weight-bits",
            ));
        }
        Ok(())
    }

    /// The largest integer level `Q` (levels are `-Q..=Q`).
    pub fn max_level(&self) -> i32 {
        match self.grid {
            WeightGrid::Bits(1) | WeightGrid::Ternary => 1,
            WeightGrid::Bits(b) => (1 << (b - 1)) - 1,
        }
    }

    /// Whether the scale is a mean rather than a maximum (1 bit and ternary).
    fn mean_scaled(&self) -> bool {
        matches!(self.grid, WeightGrid::Bits(1) | WeightGrid::Ternary)
    }

    /// Parses `4`, `4:channel`, `4:learned`, `4:channel:learned`, `ternary`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |msg: String| Error::invalid("weight quantization", format!("'{spec}': {msg}"));
        let mut parts = spec.split(':').map(str::trim);
        let grid = match parts.next().unwrap_or("") {
            "ternary" | "t" => WeightGrid::Ternary,
            b => WeightGrid::Bits(b.parse().map_err(|_| {
                bad("expected a bit width 1..8 or 'ternary', then ':channel' or ':learned'".into())
            })?),
        };
        let mut config = Self {
            grid,
            per_channel: false,
            scale: ScaleRule::FromWeights,
        };
        for option in parts {
            match option {
                "channel" => config.per_channel = true,
                "tensor" => config.per_channel = false,
                "learned" => config.scale = ScaleRule::Learned,
                other => return Err(bad(format!("unknown option '{other}' (channel, learned)"))),
            }
        }
        config.validate()?;
        Ok(config)
    }
}

impl fmt::Display for WeightQuantConfig {
    /// The form [`WeightQuantConfig::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.grid {
            WeightGrid::Bits(b) => write!(f, "{b}")?,
            WeightGrid::Ternary => write!(f, "ternary")?,
        }
        if self.per_channel {
            write!(f, ":channel")?;
        }
        if self.scale == ScaleRule::Learned {
            write!(f, ":learned")?;
        }
        Ok(())
    }
}

/// The scale the weights themselves give: `max|W| / Q`, or `mean|W|` for 1 bit and ternary;
/// per tensor, or kept along `channel_axis` (other axes reduced to 1).
pub fn weight_scale<const D: usize>(
    config: &WeightQuantConfig,
    w: Tensor<D>,
    channel_axis: usize,
) -> Tensor<D> {
    let axes: Vec<usize> = (0..D)
        .filter(|&a| !(config.per_channel && a == channel_axis))
        .collect();
    let scale = if config.mean_scaled() {
        w.abs().mean_dims(&axes)
    } else {
        w.max_abs_dims(&axes) / f64::from(config.max_level())
    };
    // An all-zero tensor (or channel) has no scale; any positive one leaves it zero.
    scale.clamp_min(1e-8)
}

/// The weights on the grid, with a straight-through gradient. `scale` broadcasts against `w`
/// (a learned scale; `None` takes [`weight_scale`], detached).
pub fn fake_quantize<const D: usize>(
    config: &WeightQuantConfig,
    w: Tensor<D>,
    channel_axis: usize,
    scale: Option<Tensor<D>>,
) -> Tensor<D> {
    let q = f64::from(config.max_level());
    match scale {
        None => {
            // The forward value is exactly integer × scale; the gradient is the identity.
            let (levels, s) = grid_integers(config, w.clone(), channel_axis, None);
            levels * s + (w.clone() - w.detach())
        }
        Some(s) => {
            // LSQ: round with a straight-through estimator, so both W and s get gradients.
            let s = s.abs().clamp_min(1e-8);
            let y = (w / s.clone()).clamp(-q, q);
            let rounded = integer_levels(config, y.clone().detach(), q);
            (y.clone() + (rounded - y).detach()) * s
        }
    }
}

/// The weights as the grid's integers and the scale they multiply (broadcast against `w`),
/// detached: `integers × scale` is the value [`fake_quantize`] computes forward, so an integer
/// program made from them computes what the quantization-aware network trained with. `scale`
/// is a learned scale, or `None` for the one the weights give ([`weight_scale`]).
pub fn grid_integers<const D: usize>(
    config: &WeightQuantConfig,
    w: Tensor<D>,
    channel_axis: usize,
    scale: Option<Tensor<D>>,
) -> (Tensor<D>, Tensor<D>) {
    let w = w.detach();
    let s = match scale {
        Some(s) => s.detach().abs().clamp_min(1e-8),
        None => weight_scale(config, w.clone(), channel_axis),
    };
    let levels = integer_levels(config, w / s.clone(), f64::from(config.max_level()));
    (levels, s)
}

/// `y` (weights over their scale) rounded to the grid's integers.
fn integer_levels<const D: usize>(config: &WeightQuantConfig, y: Tensor<D>, q: f64) -> Tensor<D> {
    match config.grid {
        // Zero maps to +1 so that every 1-bit weight is ±1.
        WeightGrid::Bits(1) => y.greater_equal_elem(0.0).float() * 2.0 - 1.0,
        _ => y.round().clamp(-q, q),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn four_bit_weights_lie_on_fifteen_levels_of_max_over_seven() {
        let device = Device::flex();
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![0.7f32, -0.35, 0.05, 0.26, -0.7, 0.0], [2, 3]),
            &device,
        );
        let config = WeightQuantConfig::bits(4).unwrap();
        let q = values(fake_quantize(&config, w, 1, None));
        let step = 0.7f32 / 7.0;
        let expected = [
            7.0f32, -4.0, /* -3.5 rounds to even */
            0.0, 3.0, -7.0, 0.0,
        ];
        for (got, levels) in q.iter().zip(expected) {
            assert!((got - levels * step).abs() < 1e-6, "{q:?}");
        }
    }

    #[test]
    fn ternary_takes_the_absmean_scale_and_per_channel_scales_each_column() {
        let device = Device::flex();
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.1, -0.2, 0.4, 0.0, -0.2], [3, 2]),
            &device,
        );
        let q = values(fake_quantize(
            &WeightQuantConfig::ternary(),
            w.clone(),
            1,
            None,
        ));
        let s = (1.0 + 0.1 + 0.2 + 0.4 + 0.0 + 0.2) / 6.0;
        // 1/s = 3.16 → 1; 0.1/s = 0.32 → 0; 0.4/s = 1.26 → 1; 0.2/s = 0.63 → 1.
        let expected = [s, 0.0, -s, s, 0.0, -s];
        for (g, e) in q.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{q:?}");
        }
        let mut per_channel = WeightQuantConfig::bits(2).unwrap();
        per_channel.per_channel = true;
        let q = values(fake_quantize(&per_channel, w, 1, None));
        // Column 0 max 1.0, column 1 max 0.4: Q = 1; -0.2/0.4 = -0.5 rounds to even (zero).
        assert_eq!(q, [1.0, 0.0, 0.0, 0.4, 0.0, 0.0]);
    }

    #[test]
    fn the_gradient_passes_straight_through() {
        let device = Device::flex().autodiff();
        let w = Tensor::<2>::from_data(
            TensorData::new(vec![0.3f32, -0.9, 0.2, 0.55], [2, 2]),
            &device,
        )
        .require_grad();
        let config = WeightQuantConfig::bits(3).unwrap();
        let grads = (fake_quantize(&config, w.clone(), 1, None) * 2.0)
            .sum()
            .backward();
        let g = values(w.grad(&grads).unwrap());
        assert_eq!(g, [2.0; 4]);
    }

    #[test]
    fn specs_parse_and_print_back() {
        for spec in [
            "4",
            "8:channel",
            "3:learned",
            "2:channel:learned",
            "ternary",
        ] {
            assert_eq!(WeightQuantConfig::parse(spec).unwrap().to_string(), spec);
        }
        for bad in ["0", "9", "x", "4:sideways", "ternary:learned"] {
            assert!(WeightQuantConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
