//! SpikeGPT (work in progress).
