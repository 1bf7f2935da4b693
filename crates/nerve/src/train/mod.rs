//! Training: the BPTT trainer for spiking networks, the language-model trainer, the optimiser
//! choice, learning-rate schedules and the metrics history.

pub mod history;
pub mod latency_trainer;
pub mod lm_trainer;
pub mod optimizer;
pub mod run_config;
pub mod schedule;
pub mod trainer;
