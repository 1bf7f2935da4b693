//! Event-camera data: the readers of every format, the emulator, saccades, transforms and video.

#[path = "../common/mod.rs"]
mod common;

mod aedat4;
mod emulator;
mod readers;
mod saccade;
mod stmnist_aedat;
mod transforms;
mod video;
