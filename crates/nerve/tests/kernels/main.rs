//! The hand-written kernels against their plain twins: the fused Leaky neuron, the event-driven
//! spiking convolution and linear layers, and max pooling.

#[path = "../common/mod.rs"]
mod common;

mod fused_leaky;
mod max_pool;
mod spike_conv;
mod spike_linear;
