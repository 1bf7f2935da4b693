//! Data sets and the files users hand to Nerve: IDX and the embedded MNIST subset, the plots
//! drawn from them, and the seeded no-panic loop over every reader that is not an event format.

#[path = "../common/mod.rs"]
mod common;

mod loaders_no_panic;
mod mnist_and_plots;
