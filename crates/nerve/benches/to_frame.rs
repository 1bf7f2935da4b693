//! Placeholder replaced by the ToFrame throughput benchmark.
fn main() {}
