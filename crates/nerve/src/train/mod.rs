//! Training: the BPTT trainer, checkpoints, learning-rate schedules and the metrics history.

pub mod checkpoint;
pub mod history;
pub mod lm;
pub mod schedule;
pub mod trainer;
