//! SpikeGPT (Zhu et al. 2023, "SpikeGPT: Generative Pre-trained Language Model with Spiking
//! Neural Networks"), a spiking RWKV-4 language model, following the released
//! `ridgerchu/SpikeGPT` `src/model.py`.
//!
//! The network: the Heaviside of the token embedding (arctangent surrogate, α = 2) is the
//! binary input; LN₀; per block `x += LIF(TimeMix(LN₁ x))`, `x += LIF(ChannelMix(LN₂ x))`
//! (dropout 0.03 after each block while training); `head(ln_out(x))`. The LIF neurons run over
//! the token axis (τ = 2, threshold 1, hard reset to 0, reset not detached; see [`lif`]).
//!
//! - [`config`]: `config.json` (`"model_type": "spikegpt"`);
//! - [`model`]: the network, with a parallel forward for training and a recurrent one for
//!   generation;
//! - [`wkv`]: RWKV-4's WKV in both forms;
//! - [`lif`]: the neuron and the spike function;
//! - [`released`]: the authors' released `.pth` checkpoints, their `config.json` and shapes;
//! - [`layers`]: bias-free linear (`[out, in]`), LayerNorm and orthogonal initialisation.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use nerve::models::spikegpt::{SpikeGpt, SpikeGptConfig};
//!
//! let device = Device::flex();
//! let config = SpikeGptConfig::new(20, 16, 2);
//! config.validate().unwrap();
//! let model = SpikeGpt::init(&config, &device);
//! let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [1, 4]), &device);
//! assert_eq!(model.forward(tokens.clone()).dims(), [1, 4, 20]);
//!
//! // Generation: one token at a time with carried state.
//! let (logits, state) = model.forward_with_state(tokens, None);
//! assert_eq!(logits.dims(), [1, 4, 20]);
//! let next = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64], [1, 1]), &device);
//! let (logits, _state) = model.forward_with_state(next, Some(state));
//! assert_eq!(logits.dims(), [1, 1, 20]);
//! ```

pub mod config;
pub mod layers;
pub mod lif;
pub mod model;
pub mod released;
mod tokens;
pub mod wkv;

pub use config::{SpikeGptConfig, MODEL_TYPE};
pub use lif::{heaviside_atan, Lif};
pub use model::{lm_loss, BlockState, SpikeGpt, SpikeGptState, SpikeGptTrace};
pub use wkv::{wkv_parallel, wkv_recurrent, wkv_step, WkvState};
