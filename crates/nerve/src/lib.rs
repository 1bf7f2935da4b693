//! Nerve: spiking neural networks and MatMul-free language models on Burn.

pub mod data;
pub mod error;
pub mod layers;
pub mod models;
pub mod neurons;
pub mod plot;
pub mod reference;
pub mod surrogate;

pub use error::{Error, Result};
