//! Packed ternary matrix-vector kernels (work in progress).
