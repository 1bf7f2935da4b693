//! Spike encoders, after snnTorch 1.0's `snntorch.spikegen`: rate (Bernoulli), latency, delta,
//! and spike-coded targets. Layout is time-first: a `[B, ...]` input becomes `[T, B, ...]`.
//!
//! Random encoders draw from a seeded [`rand::rngs::StdRng`] of their own rather than the
//! backend's generator, so the same seed gives the same spikes on every backend and in every run.

mod delta;
mod latency;
mod rate;
mod targets;

pub use delta::{delta, DeltaConfig};
pub use latency::{latency, latency_times, LatencyConfig};
pub use rate::{rate, rate_conv, rate_conv_with_rng, rate_with_rng, RateConfig};
pub(crate) use targets::{class_indices, one_hot_rows};
pub use targets::{targets_rate, to_one_hot, FiringPattern, TargetsRateConfig};
