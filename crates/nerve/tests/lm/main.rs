//! Language models: the MatMul-free LM (model, Hugging Face checkpoints, packed engine,
//! cross-checks), PyTorch `.pth` state dicts, SpikeGPT, and the completions server (the LM trainer
//! is tested in `training/`).

#[path = "../common/mod.rs"]
mod common;

mod http_client;
mod mmfree_checkpoint;
mod mmfree_cross;
mod mmfree_engine;
mod mmfree_fixtures;
mod mmfree_model;
mod pth;
mod serve;
mod spikegpt;
mod spikegpt_released;
