//! Training: the BPTT trainer for spiking networks, the language-model trainer, recipes, the
//! optimiser choice, learning-rate schedules and the metrics history.

pub mod history;
pub mod latency_trainer;
pub mod lm_trainer;
pub mod loss_kind;
pub mod optimizer;
pub mod recipe;
pub mod regression;
pub mod regression_loss;
pub mod run_config;
pub mod schedule;
pub mod trainer;
