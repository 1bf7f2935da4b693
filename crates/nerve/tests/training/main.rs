//! The spiking-network trainer: checkpoints, exact resume, and training on event data.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod event_training;
mod train_resume;
