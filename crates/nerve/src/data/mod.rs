//! Data sets in their standard formats.

pub mod events;
pub mod frames;
pub mod idx;
pub mod mnist;
pub mod samples;
pub mod series_files;
pub mod trajectories;

pub use idx::{encode_idx, parse_idx, read_idx, write_idx, IdxArray};
pub use mnist::{
    class_names, load_dataset, load_dataset_dir, load_embedded_mnist, locate_dataset, ImageDataset,
    ImageSplits,
};
pub use samples::{make_batch, Encoding, Samples};
