//! Hot loops that are the product, each beside a plain reference implementation that tests
//! compare it with.

pub mod leaky;
pub mod spike_linear;
pub mod ternary;
