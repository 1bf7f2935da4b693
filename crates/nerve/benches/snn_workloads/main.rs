//! Nerve's side of the peer benchmark (`bench/run.sh`, issue 5): the spiking-network workloads
//! that `bench/peers/peer_bench.py` runs with snnTorch, SpikingJelly and Norse, timed the same
//! way and printed as the same JSON lines.
//!
//! ```text
//! cargo bench -p nerve --bench snn_workloads -- <workload> [--iters N] [--warmup N] [--json]
//! ```
//!
//! Workloads (all through the public library API, so fused kernels are picked up as they land):
//!
//! - `sgemm`: a 2048×2048×2048 Burn matmul, the machine's SGEMM rate on this backend;
//! - `w1-dense`, `w1-mnist`: [`SpikingNet`] `FC1000-FC10` on 784 inputs, Leaky β 0.95,
//!   threshold 1, subtract reset, fast-sigmoid slope 25, T = 25, B = 128; dense uniform random
//!   input current, or rate-coded (Bernoulli) MNIST training digits; modes `train` (forward,
//!   `ce_rate_loss`, backward, Adam) and `infer` (`model.valid()` on the plain device);
//! - `w2-512`, `w2-4096`: the Open Neuromorphic library benchmark: `TimeLinear(n, n)` then
//!   Leaky (β 0.95, snnTorch's defaults otherwise: atan surrogate) on `randn[500, 16, n]`;
//!   modes `forward` (without autograd in every library: Nerve's `valid()` model on the plain
//!   device, the peers under `torch.no_grad()`) and `fwd_bwd` (`out.sum()` backward);
//! - `w3`: snnTorch's tutorial conv SNN `12C5-MP2-64C5-MP2-FC10` (β 0.5, fast sigmoid 25),
//!   T = 25, B = 128, MNIST pixels as input current at every step; modes `train`, `infer`;
//! - `check`: spike counts of W1 with deterministic weights and input, to compare with snnTorch;
//! - `tta`: time to accuracy, W3 trained on full MNIST with the tutorial recipe
//!   (`--epochs`, `--eval-every` batches, `--target` test accuracy in percent to stop at;
//!   `--train-limit` / `--test-limit` shrink the data for a smoke test).
//!
//! Options: `--iters` timed iterations (default 10), `--warmup` untimed ones before them
//! (default 2), `--modes a,b` a subset of the modes, `--round R` a label for the JSON,
//! `--data DIR` the MNIST folder (default: found as `nerve train` finds it), `--json` prints
//! only the JSON lines. Threads: rayon's global pool (`RAYON_NUM_THREADS`, 2 in `run.sh`).
//! Peak RSS is `VmHWM` after each mode; inference modes run first, so the first mode's peak is
//! its own and a later one's is the maximum so far.

mod check;
mod classifier;
mod opts;
mod report;
mod sgemm;
mod tta;
mod w2;

use crate::check::check;
use crate::classifier::{w1_dense, w1_mnist, w3};
use crate::opts::parse_opts;
use crate::sgemm::sgemm;
use crate::tta::tta;
use crate::w2::w2;

/// The allocator the `nerve` binary uses, so the timings are what users of the CLI get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STEPS: usize = 25;
const BATCH: usize = 128;
const LR: f64 = 1e-2;

fn main() {
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("snn_workloads: {e}");
            std::process::exit(2);
        }
    };
    let result = match o.workload.as_str() {
        "sgemm" => sgemm(&o),
        "w1-dense" => w1_dense(&o),
        "w1-mnist" => w1_mnist(&o),
        "w2-512" => w2(&o, 512),
        "w2-4096" => w2(&o, 4096),
        "w3" => w3(&o),
        "check" => check(&o),
        "tta" => tta(&o),
        other => {
            eprintln!("snn_workloads: unknown workload '{other}'");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("snn_workloads: {e}");
        std::process::exit(1);
    }
}
