//! Training: the spiking-network trainer (checkpoints, exact resume, event data) and the
//! language-model trainer. Every test here trains or initialises from the process-global device
//! random generator, so each holds `common::rng_turn()` and they run one at a time.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod event_training;
mod lm_train;
mod train_resume;
