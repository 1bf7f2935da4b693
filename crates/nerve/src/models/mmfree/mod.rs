//! The MatMul-free language model (Zhu et al. 2024, "Scalable MatMul-free Language Modeling"),
//! following the released `HGRNBit` code: ternary BitLinear projections, the MLGRU token mixer
//! and a GLU channel mixer.
//!
//! - [`config`]: the published `config.json`;
//! - [`weights`]: host-memory weights under the published tensor names.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod model;
pub mod weights;

pub use config::MmFreeConfig;
pub use weights::{tensor_specs, HostTensor, MmFreeWeights, TensorRole, TensorSpec};
