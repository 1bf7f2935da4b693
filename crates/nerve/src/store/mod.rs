//! Checkpoint I/O shared by models and trainers: Nerve's safetensors checkpoints ([`checkpoint`])
//! and PyTorch `.pth` state dicts ([`pth`]).

pub mod checkpoint;
pub mod pth;
