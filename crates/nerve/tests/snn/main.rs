//! Neurons, encoders, losses and metrics: finite-difference gradients, hand-checked values and
//! the recorded snnTorch cases.

#[path = "../common/mod.rs"]
mod common;

mod encode;
mod fixtures;
mod gradcheck;
mod loss;
mod snntorch_check;
