//! Nerve: spiking neural networks and MatMul-free language models on Burn.

pub mod data;
pub mod device;
pub mod encode;
pub mod error;
pub mod fsutil;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod neurons;
pub mod plot;
pub mod reference;
pub mod surrogate;
pub mod train;

pub use error::{Error, Result};
