//! Quantization-aware training: neuron states rounded to snnTorch's `state_quant` level tables
//! and weights fake-quantized to k-bit or ternary grids, both with straight-through gradients.
//!
//! These sit beside the surrogate gradients, below the neurons and layers that apply them;
//! turning a trained network into integer arithmetic is the hardware path's job ([`crate::hw`]).

pub mod state;
pub mod weight;

pub use state::{check_bits, nearest_level, round_to_levels, StateQuant, StateQuantConfig};
pub use weight::{
    fake_quantize, grid_integers, weight_scale, ScaleRule, WeightGrid, WeightQuantConfig,
};
