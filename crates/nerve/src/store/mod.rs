//! Checkpoint I/O shared by models and trainers.

pub mod checkpoint;
