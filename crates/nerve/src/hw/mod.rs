//! The hardware path: what turns a trained network into something a chip runs. Quantization-aware
//! training, integer-only inference, synaptic-operation and energy accounting, NIR export and
//! import, and the bit-accurate OpenSpike accelerator simulator each get a submodule here as
//! they land.
//!
//! `hw` sits above [`train`](crate::train) and below [`viz`](crate::viz): it may import models,
//! trainers, data and kernels, and nothing above it imports it except pictures and the CLI
//! (`tests/structure.rs` enforces the order).

pub mod energy;
pub mod integer;
pub mod nir;
pub mod openspike;
