#![warn(missing_docs)]
//! Nerve: spiking neural networks on [Burn](https://burn.dev), after snnTorch, and two
//! language models that run on a CPU: the MatMul-free LM and SpikeGPT.
//!
//! Tensors are time-first, `[T, B, ...]`, as in snnTorch. The building blocks:
//!
//! - [`neurons`]: Leaky, Synaptic, Alpha, Lapicque, RLeaky, RSynaptic and SLSTM neurons with
//!   explicit state behind one [`neurons::Neuron`] trait: `step` for one time step and `run`
//!   for a whole sequence ([`firing`] holds the reset mode they share with the kernels);
//! - [`surrogate`]: surrogate gradients (the spike is a Heaviside step forward and a smooth
//!   slope backward);
//! - [`encode`]: rate, latency and delta spike encoders and spike-train targets;
//! - [`quant`]: quantization-aware training: snnTorch's `state_quant` for neuron states and
//!   k-bit or ternary fake-quantized weights, with straight-through gradients;
//! - [`loss`] and [`metrics`]: snnTorch's spike losses (rate, count, membrane, temporal) and
//!   accuracies, with population coding;
//! - [`layers`] and [`models`]: layers that fold time into the batch, and [`models::SpikingNet`],
//!   a convolutional or fully connected network built from a string such as
//!   `12C5-MP2-64C5-MP2-FC10`;
//! - [`train`]: a BPTT/TBPTT trainer with exact resume from the atomic safetensors checkpoints
//!   of [`store`];
//! - [`data`]: MNIST-style IDX data sets (an MNIST subset is embedded), event formats, frames and
//!   batching;
//! - [`viz`]: every picture: training curves, spike rasters, per-class spike-count heat maps
//!   and event streams as GIFs;
//! - [`models::mmfree`], [`models::spikegpt`], [`models::language_model`]: the MatMul-free LM
//!   (ternary BitLinear, MLGRU, GLU; Hugging Face checkpoints; a packed ternary engine that
//!   generates with additions only) and SpikeGPT (spiking RWKV), trained by
//!   [`train::lm_trainer`] on text from [`text`] (tokenizers, corpora, sampling);
//! - [`kernels`]: the hand-written CPU kernels, each beside the plain reference twin it is tested
//!   against: the fused multi-step Leaky neuron, event-driven spiking convolution and linear
//!   layers, max pooling, and the packed ternary GEMV (portable and AVX-512);
//! - [`hw`]: the hardware path (quantization, integer-only inference, NIR, accelerator
//!   simulation), the layer above training that imports only from below;
//! - [`snntorch_check`]: replays vectors recorded from snnTorch and compares Nerve with them;
//! - [`retina`]: a retina model (rods and cones with adaptation, ON/OFF bipolar cells,
//!   Fohlmeister–Miller or LIF ganglion cells) turning images into spikes and region rates;
//! - [`device`]: picks the backend by name: Burn's pure-Rust `flex` CPU backend (the default),
//!   or `wgpu` / `cuda` in builds with those cargo features.
//!
//! Every fallible function returns [`Result`] with an [`Error`] that names the file, tensor or
//! argument at fault.
//!
//! # A leaky integrate-and-fire neuron
//!
//! A constant input current of 0.5 charges a Leaky neuron with decay β = 0.9 and threshold 1;
//! after each spike the threshold is subtracted from the membrane at the next step (snnTorch's
//! defaults).
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use nerve::neurons::{LeakyConfig, Neuron};
//!
//! let device = Device::flex();
//! let lif = LeakyConfig::new(0.9).init(&device);
//!
//! // Input current [T = 6 steps, B = 1 sample, N = 1 neuron].
//! let x = Tensor::<3>::full([6, 1, 1], 0.5, &device);
//! let out = lif.run(x, None);
//! assert_eq!(out.spk.dims(), [6, 1, 1]);
//!
//! // Membrane: 0.5, 0.95, 1.355 (spike), 0.7195, 1.1476 (spike), 0.5328.
//! let spikes: Vec<f32> = out.spk.into_data().iter::<f32>().collect();
//! assert_eq!(spikes, [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
//!
//! // A layer of 10 neurons over a batch of 4, driven by ones, for 25 steps.
//! let x = Tensor::<3>::ones([25, 4, 10], &device);
//! let spk = lif.run(x, None).spk;
//! assert_eq!(spk.dims(), [25, 4, 10]);
//! assert!(spk.sum().into_scalar::<f32>() > 0.0);
//! ```
//!
//! # Gradients through spikes
//!
//! On an autodiff device the spikes carry the surrogate gradient, so a loss on the output spikes
//! trains the weights in front of them: here a fully connected layer feeding ten Leaky neurons,
//! scored with snnTorch's `ce_rate_loss`.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use nerve::layers::TimeLinear;
//! use nerve::loss::CeRateLoss;
//! use nerve::neurons::{LeakyConfig, Neuron};
//!
//! # fn main() -> nerve::Result<()> {
//! let device = Device::flex().autodiff();
//! let fc = TimeLinear::new(784, 10, &device);
//! let lif = LeakyConfig::new(0.5).init(&device);
//!
//! // Two flattened images, presented as the same input current at each of 25 steps.
//! let x = Tensor::<3>::ones([25, 2, 784], &device) * 0.1;
//! let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 7], [2]), &device);
//!
//! let spk = lif.run(fc.forward(x), None).spk; // [25, 2, 10]
//! let loss = CeRateLoss::new().forward(spk, labels)?;
//! assert!(loss.clone().into_scalar::<f32>().is_finite());
//!
//! let grads = loss.backward();
//! let weight_grad = fc.linear.weight.grad(&grads).expect("the weights get a gradient");
//! assert_eq!(weight_grad.dims(), [784, 10]);
//! # Ok(())
//! # }
//! ```
//!
//! # A MatMul-free language model, three ways
//!
//! The trainable Burn model, the packed ternary engine (additions only) and the same engine on
//! float weights compute the same logits from the same weights:
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use nerve::models::mmfree::{MmFreeConfig, MmFreeEngine, MmFreeLm, MmFreeWeights};
//!
//! # fn main() -> nerve::Result<()> {
//! // Vocabulary 40, width 32, 2 blocks, initialised as the released code does.
//! let weights = MmFreeWeights::random(MmFreeConfig::new(40, 32, 2), 7)?;
//!
//! // Parallel mode (training): logits [B = 1, T = 3, V = 40].
//! let device = Device::flex();
//! let model = MmFreeLm::from_weights(&weights, &device)?;
//! let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 9, 2], [1, 3]), &device);
//! let parallel: Vec<f32> = model.forward(tokens).into_data().iter::<f32>().collect();
//!
//! // Recurrent mode on packed ternary weights: one token at a time, constant memory.
//! let mut engine = MmFreeEngine::new(&weights)?;
//! for (t, token) in [5u32, 9, 2].into_iter().enumerate() {
//!     let logits = engine.step(token)?;
//!     let burn = &parallel[t * 40..(t + 1) * 40];
//!     let scale = burn.iter().fold(0f32, |m, v| m.max(v.abs()));
//!     let worst = logits.iter().zip(burn).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
//!     assert!(worst <= 1e-3 * scale);
//! }
//! # Ok(())
//! # }
//! ```

pub mod data;
pub mod device;
pub mod encode;
pub mod error;
pub mod firing;
pub mod fsutil;
pub mod hw;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod neurons;
pub mod quant;
pub mod retina;
pub mod rng;
pub mod serve;
pub mod snntorch_check;
pub mod store;
pub mod surrogate;
pub mod text;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
