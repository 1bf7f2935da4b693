//! Language models: the MatMul-free LM (model, Hugging Face checkpoints, packed engine,
//! cross-checks), PyTorch `.pth` state dicts and SpikeGPT (the LM trainer is tested in `training/`).

#[path = "../common/mod.rs"]
mod common;

mod mmfree_checkpoint;
mod mmfree_cross;
mod mmfree_engine;
mod mmfree_fixtures;
mod mmfree_model;
mod pth;
mod spikegpt;
mod spikegpt_released;
