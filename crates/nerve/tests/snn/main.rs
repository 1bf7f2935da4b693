//! Neurons, encoders, losses and metrics: hand-checked values and the recorded snnTorch cases.
//! (The float64 gradient checks are their own test binary, `gradcheck.rs`: they set the flex
//! device's default dtype, which a process can do only before its first tensor.)

#[path = "../common/mod.rs"]
mod common;

mod encode;
mod fixtures;
mod loss;
mod quant;
mod snntorch_check;
