//! Nerve: spiking neural networks and MatMul-free language models on Burn.

pub mod data;
pub mod error;
pub mod plot;

pub use error::{Error, Result};
