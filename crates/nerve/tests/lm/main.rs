//! Language models: the MatMul-free LM (model, Hugging Face checkpoints, packed engine,
//! cross-checks), SpikeGPT, and the LM trainer.

#[path = "../common/mod.rs"]
mod common;

mod lm_train;
mod mmfree_checkpoint;
mod mmfree_cross;
mod mmfree_engine;
mod mmfree_fixtures;
mod mmfree_model;
mod spikegpt;
