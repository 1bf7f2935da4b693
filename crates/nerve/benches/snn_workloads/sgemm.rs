//! The machine's SGEMM rate through Burn, the yardstick for the other workloads' GFLOP/s.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use serde_json::json;

use crate::opts::Opts;
use crate::report::{base_record, emit, round3, time_mode};

pub(crate) fn sgemm(o: &Opts) -> nerve::Result<()> {
    const N: usize = 2048;
    let device = Device::flex();
    device.seed(o.seed);
    let a = Tensor::<2>::random([N, N], Distribution::Uniform(-1.0, 1.0), &device);
    let b = Tensor::<2>::random([N, N], Distribution::Uniform(-1.0, 1.0), &device);
    let flop = 2.0 * (N as f64).powi(3);
    let mut best = f64::INFINITY;
    let med = time_mode(o, "matmul", json!({"n": N, "flop": flop}), || {
        let t0 = Instant::now();
        let c = a.clone().matmul(b.clone());
        // Reading one element forces the product without timing a full reduction.
        std::hint::black_box(c.slice([0..1, 0..1]).into_scalar::<f32>());
        best = best.min(t0.elapsed().as_secs_f64());
    });
    emit(
        o,
        base_record(o),
        json!({"mode": "peak", "n": N, "gflops_median": round3(flop / (med * 1e-3) / 1e9),
               "gflops_best": round3(flop / best / 1e9)}),
    );
    Ok(())
}
