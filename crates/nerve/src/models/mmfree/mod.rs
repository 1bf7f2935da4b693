//! The MatMul-free language model (Zhu et al. 2024, "Scalable MatMul-free Language Modeling"),
//! following the released `HGRNBit` code: ternary BitLinear projections, the MLGRU token mixer
//! and a GLU channel mixer.
//!
//! - [`config`]: the published `config.json`;
//! - [`weights`]: host-memory weights under the published tensor names;
//! - [`model`]: the trainable Burn model ([`MmFreeLm`]), whose module paths are the published
//!   tensor names, with a parallel (training) and a recurrent (generation) forward;
//! - [`hf_checkpoint`]: reads and writes Hugging Face checkpoint directories (`config.json` plus
//!   `model.safetensors` or shards), BF16/F16/F32.

pub mod config;
pub mod engine;
pub mod hf_checkpoint;
pub mod model;
pub mod weights;

pub use config::MmFreeConfig;
pub use engine::{Decoder, FloatEngine, MmFreeEngine};
pub use hf_checkpoint::{load_dir, save_dir, SaveDtype};
pub use model::{MmFreeLm, MmFreeState};
pub use weights::{tensor_specs, HostTensor, MmFreeWeights, TensorRole, TensorSpec};
