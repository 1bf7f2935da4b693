//! Assembled networks.

pub mod bplc;
pub mod spiking_net;

pub use spiking_net::{parse_arch, SpikingNet, SpikingNetConfig};
pub mod batch_decode;
pub mod generate;
pub mod language_model;
pub mod mmfree;
pub mod regression_net;
pub mod spikegpt;
