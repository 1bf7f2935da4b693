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

use std::path::PathBuf;
use std::time::Instant;

/// The allocator the `nerve` binary uses, so the timings are what users of the CLI get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use nerve::data::mnist::{load_dataset, ImageDataset};
use nerve::layers::TimeLinear;
use nerve::models::spiking_net::Stage;
use nerve::models::{SpikingNet, SpikingNetConfig};
use nerve::neurons::{Leaky, LeakyConfig, Reset};
use nerve::surrogate::Surrogate;
use nerve::train::trainer::{loss_of, make_batch, Encoding, LossKind, OptimizerKind};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

const STEPS: usize = 25;
const BATCH: usize = 128;
const LR: f64 = 1e-2;

/// Command-line options after `--`.
#[derive(Debug, Clone)]
struct Opts {
    workload: String,
    iters: usize,
    warmup: usize,
    modes: Option<Vec<String>>,
    round: usize,
    data: Option<PathBuf>,
    json_only: bool,
    epochs: usize,
    eval_every: usize,
    target: Option<f64>,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    seed: u64,
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Opts {
        workload: String::new(),
        iters: 10,
        warmup: 2,
        modes: None,
        round: 1,
        data: None,
        json_only: false,
        epochs: 3,
        eval_every: 50,
        target: None,
        train_limit: None,
        test_limit: None,
        seed: 0,
    };
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => o.iters = num("--iters", args.next())?,
            "--warmup" => o.warmup = num("--warmup", args.next())?,
            "--round" => o.round = num("--round", args.next())?,
            "--epochs" => o.epochs = num("--epochs", args.next())?,
            "--eval-every" => o.eval_every = num("--eval-every", args.next())?,
            "--target" => o.target = Some(num("--target", args.next())?),
            "--train-limit" => o.train_limit = Some(num("--train-limit", args.next())?),
            "--test-limit" => o.test_limit = Some(num("--test-limit", args.next())?),
            "--seed" => o.seed = num("--seed", args.next())?,
            "--json" => o.json_only = true,
            "--data" => o.data = Some(args.next().ok_or("--data needs a folder")?.into()),
            "--modes" => {
                let list = args.next().ok_or("--modes needs a list")?;
                o.modes = Some(list.split(',').map(str::to_string).collect());
            }
            w if !w.starts_with('-') && o.workload.is_empty() => o.workload = w.to_string(),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if o.workload.is_empty() {
        return Err(
            "name a workload: sgemm, w1-dense, w1-mnist, w2-512, w2-4096, w3, check, tta".into(),
        );
    }
    if o.iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    Ok(o)
}

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident set (`VmHWM`) in MiB.
fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM")
}

/// Current resident set (`VmRSS`) in MiB.
fn rss_mib() -> Option<f64> {
    status_mib("VmRSS")
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What every JSON line carries.
fn base_record(o: &Opts) -> Value {
    let fused = std::env::var("NERVE_FUSED").map_or(true, |v| v != "0");
    json!({
        // `NERVE_FUSED=0` times the step-by-step reference path, reported as its own column.
        "impl": if fused { "nerve" } else { "nerve-unfused" },
        "version": env!("CARGO_PKG_VERSION"),
        "workload": o.workload,
        "round": o.round,
        "threads": rayon::current_num_threads(),
        "fused": fused,
    })
}

fn emit(o: &Opts, mut record: Value, extra: Value) {
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    if !o.json_only {
        eprintln!("{}", human(&record));
    }
    println!("{record}");
}

fn human(r: &Value) -> String {
    match r.get("median_ms") {
        Some(m) => format!(
            "nerve {} {}: median {:.2} ms (min {:.2}), peak RSS {:.0} MiB",
            r["workload"].as_str().unwrap_or(""),
            r["mode"].as_str().unwrap_or(""),
            m.as_f64().unwrap_or(f64::NAN),
            r["min_ms"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
        ),
        None => {
            let skip = [
                "impl", "version", "workload", "round", "threads", "fused", "mode",
            ];
            let fields: Vec<String> = r
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "nerve {} {}: {}",
                r["workload"].as_str().unwrap_or(""),
                r["mode"].as_str().unwrap_or(""),
                fields.join(" ")
            )
        }
    }
}

/// Runs `step` `warmup` times untimed, then `iters` times timed; emits one JSON line.
fn time_mode(o: &Opts, mode: &str, extra: Value, mut step: impl FnMut()) -> f64 {
    // Resident memory with the model and input built.
    let rss_before = rss_mib();
    for _ in 0..o.warmup {
        step();
    }
    let mut times = Vec::with_capacity(o.iters);
    for _ in 0..o.iters {
        let t0 = Instant::now();
        step();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let med = median(&times);
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mut record = json!({
        "mode": mode,
        "iters": o.iters,
        "warmup": o.warmup,
        "median_ms": round3(med),
        "min_ms": round3(min),
        "times_ms": times.iter().map(|&t| round3(t)).collect::<Vec<_>>(),
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
        "rss_before_mib": rss_before.map(|m| m.round()),
    });
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    emit(o, base_record(o), record);
    med
}

fn wants(o: &Opts, mode: &str) -> bool {
    o.modes.as_ref().is_none_or(|m| m.iter().any(|x| x == mode))
}

fn mnist(o: &Opts) -> nerve::Result<nerve::data::mnist::ImageSplits> {
    load_dataset("mnist", o.data.as_deref())
}

/// Leaky β 0.95, threshold 1, subtract reset, fast sigmoid 25: the W1 neuron.
fn w1_config() -> SpikingNetConfig {
    let mut c = SpikingNetConfig {
        arch: "FC1000-FC10".into(),
        input: [1, 28, 28],
        steps: STEPS,
        beta: 0.95,
        ..SpikingNetConfig::tutorial_conv()
    };
    c.firing.threshold = 1.0;
    c.firing.reset = Reset::Subtract;
    c.firing.surrogate = Surrogate::FastSigmoid { slope: 25.0 };
    c
}

/// The tutorial conv SNN with the tutorial's surrogate (fast sigmoid 25).
fn w3_config() -> SpikingNetConfig {
    let mut c = SpikingNetConfig::tutorial_conv();
    c.firing.surrogate = Surrogate::FastSigmoid { slope: 25.0 };
    c
}

/// One optimiser step of `net` on `(x, y)`; returns the new network and the loss.
fn train_step(
    net: SpikingNet,
    optim: &mut ModuleOptimizer,
    x: Tensor<5>,
    y: Tensor<1, Int>,
) -> nerve::Result<(SpikingNet, f64)> {
    let out = net.forward(x, None, false)?;
    let loss = loss_of(LossKind::CeRate, out.spk, out.mem, y)?;
    let value = loss.clone().into_scalar::<f64>();
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    Ok((optim.step(LR, net, grads), value))
}

/// Forward on the plain device; returns the total output spike count (forces the work).
fn infer(net: &SpikingNet, x: Tensor<5>) -> nerve::Result<f64> {
    Ok(net.forward(x, None, false)?.spk.sum().into_scalar::<f64>())
}

/// A labelled batch `[T or 1, B, C, H, W]` built on the given device.
type Batch = (Tensor<5>, Tensor<1, Int>);
/// Builds the workload's batch on a device (the plain one for inference, autodiff for training).
type BatchFn<'a> = dyn Fn(&Device) -> nerve::Result<Batch> + 'a;

/// Times inference then training of `net_config` on the batch from `batch(device)`.
fn run_classifier(
    o: &Opts,
    net_config: &SpikingNetConfig,
    batch: &BatchFn<'_>,
    flops: Option<(f64, f64)>,
) -> nerve::Result<()> {
    let device = Device::flex().autodiff();
    device.seed(o.seed);
    let mut net = Some(net_config.init(&device)?);
    let gflops = |ms: f64, f: f64| round3(f / (ms * 1e-3) / 1e9);
    if wants(o, "infer") {
        let plain = device.clone().inner();
        let valid = net.as_ref().expect("network").valid();
        let (x, _) = batch(&plain)?;
        let mut spikes = 0.0;
        let med = time_mode(o, "infer", json!({}), || {
            spikes = infer(&valid, x.clone()).expect("inference");
        });
        if let Some((_, f)) = flops {
            emit(
                o,
                base_record(o),
                json!({"mode": "infer_rate", "gflops": gflops(med, f), "flop": f, "output_spikes": spikes}),
            );
        }
    }
    if wants(o, "train") {
        let mut optim = OptimizerKind::Adam.init(None);
        let (x, y) = batch(&device)?;
        let mut loss = f64::NAN;
        let med = time_mode(o, "train", json!({}), || {
            let (next, l) = train_step(
                net.take().expect("network"),
                &mut optim,
                x.clone(),
                y.clone(),
            )
            .expect("training step");
            net = Some(next);
            loss = l;
        });
        if let Some((f, _)) = flops {
            emit(
                o,
                base_record(o),
                json!({"mode": "train_rate", "gflops": gflops(med, f), "flop": f, "last_loss": loss}),
            );
        }
    }
    Ok(())
}

/// FLOPs of W1 per batch: (train step, inference). Inference is the two GEMMs; a training step
/// adds the weight gradients of both layers and the input gradient of the second (the first
/// layer's input needs none).
fn w1_flops() -> (f64, f64) {
    let rows = (STEPS * BATCH) as f64;
    let fwd = 2.0 * rows * (784.0 * 1000.0 + 1000.0 * 10.0);
    let train = 2.0 * fwd + 2.0 * rows * 1000.0 * 10.0;
    (train, fwd)
}

fn labels(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn w1_dense(o: &Opts) -> nerve::Result<()> {
    // One fixed input, generated once and copied to each device, so both modes see it.
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed ^ 0xD1);
    let n = STEPS * BATCH * 784;
    let values: Vec<f32> = (0..n).map(|_| rand::Rng::random::<f32>(&mut rng)).collect();
    let ys: Vec<i64> = (0..BATCH).map(|i| (i % 10) as i64).collect();
    let batch = |device: &Device| -> nerve::Result<Batch> {
        let x = Tensor::<5>::from_data(
            TensorData::new(values.clone(), [STEPS, BATCH, 1, 28, 28]),
            device,
        );
        Ok((x, labels(ys.clone(), device)))
    };
    run_classifier(o, &w1_config(), &batch, Some(w1_flops()))
}

fn first_batch(
    data: &ImageDataset,
    encoding: Encoding,
    device: &Device,
) -> nerve::Result<(Tensor<5>, Tensor<1, Int>)> {
    let indices: Vec<usize> = (0..BATCH.min(data.len())).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    make_batch(data, &indices, STEPS, encoding, &mut rng, device)
}

fn w1_mnist(o: &Opts) -> nerve::Result<()> {
    let splits = mnist(o)?;
    let batch = |device: &Device| first_batch(&splits.train, Encoding::Rate { gain: 1.0 }, device);
    run_classifier(o, &w1_config(), &batch, Some(w1_flops()))
}

fn w3(o: &Opts) -> nerve::Result<()> {
    let splits = mnist(o)?;
    let batch = |device: &Device| first_batch(&splits.train, Encoding::Direct, device);
    run_classifier(o, &w3_config(), &batch, None)
}

/// The Open Neuromorphic benchmark network: `Linear(n, n)` then a Leaky layer.
#[derive(Module, Debug)]
struct LinearLif {
    fc: TimeLinear,
    lif: Leaky,
}

impl LinearLif {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.lif.run(self.fc.forward(x), None).spk
    }
}

fn w2(o: &Opts, n: usize) -> nerve::Result<()> {
    const T: usize = 500;
    const B: usize = 16;
    let device = Device::flex().autodiff();
    device.seed(o.seed);
    let net = LinearLif {
        fc: TimeLinear::new(n, n, &device),
        // snnTorch's `Leaky(beta=0.95)` as published: threshold 1, subtract reset, atan.
        lif: LeakyConfig::new(0.95).init(&device),
    };
    let x = Tensor::<3>::random([T, B, n], Distribution::Normal(0.0, 1.0), &device);
    let mut spikes = 0.0;
    if wants(o, "forward") {
        // Without autograd, as every library's forward here (the peers under
        // `torch.no_grad()`): Burn keeps an autodiff graph until a backward runs through it,
        // so forward-only iterations on the autodiff device would pile up graphs.
        let valid = net.valid();
        let x = x.clone().inner();
        time_mode(o, "forward", json!({"n": n}), || {
            spikes = valid.forward(x.clone()).sum().into_scalar::<f64>();
        });
    }
    if wants(o, "fwd_bwd") {
        time_mode(o, "fwd_bwd", json!({"n": n}), || {
            let out = net.forward(x.clone()).sum();
            spikes = out.clone().into_scalar::<f64>();
            let grads = out.backward();
            let g = net.fc.linear.weight.grad(&grads).expect("weight gradient");
            std::hint::black_box(g);
        });
    }
    emit(
        o,
        base_record(o),
        json!({"mode": "spikes", "n": n, "output_spikes": spikes}),
    );
    Ok(())
}

fn sgemm(o: &Opts) -> nerve::Result<()> {
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

/// Deterministic pseudo-random value in [-1, 1) that Python computes bit for bit the same.
fn det_uniform(a: u64, b: u64, salt: u64) -> f64 {
    let v = (a * 7919 + b * 104_729 + salt * 31_337) % 65_521;
    v as f64 / 65_521.0 * 2.0 - 1.0
}

/// W1 with fixed weights (no bias) and a fixed binary input: spike counts for the peers.
fn check(o: &Opts) -> nerve::Result<()> {
    const B: usize = 8;
    let device = Device::flex();
    let mut net = w1_config().init(&device)?;
    let mut layer = 0u64;
    for stage in net.stages.iter_mut() {
        if let Stage::Linear(lin) = stage {
            let [inputs, outputs] = lin.linear.weight.dims();
            // Slightly positive on average, so that both layers fire at moderate rates.
            let bound = 1.0 / (inputs as f64).sqrt();
            let w: Vec<f32> = (0..inputs * outputs)
                .map(|k| {
                    let u = det_uniform((k / outputs) as u64, (k % outputs) as u64, layer);
                    ((u + 0.05) * bound) as f32
                })
                .collect();
            lin.linear.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [inputs, outputs]),
                &device,
            ));
            lin.linear.bias = None;
            layer += 1;
        }
    }
    let x: Vec<f32> = (0..STEPS * B * 784)
        .map(|k| {
            let h = (k as u64).wrapping_mul(2_654_435_761) & 0xFFFF_FFFF;
            if (h >> 24) < 64 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let x = Tensor::<5>::from_data(TensorData::new(x, [STEPS, B, 1, 28, 28]), &device);
    let out = net.forward(x, None, false)?;
    let hidden = out.layers[0].total.clone().into_scalar::<f64>();
    // Spikes of each output neuron, summed over time and batch.
    let counts: Vec<f64> = out
        .spk
        .sum_dim(0)
        .sum_dim(1)
        .into_data()
        .iter::<f32>()
        .map(f64::from)
        .collect();
    emit(
        o,
        base_record(o),
        json!({"mode": "spike_counts", "hidden_spikes": hidden, "output_spikes": counts.iter().sum::<f64>(),
               "output_per_neuron": counts}),
    );
    Ok(())
}

/// Test accuracy in percent of `net` (inference copy) on `data`.
fn accuracy(net: &SpikingNet, data: &ImageDataset, device: &Device) -> nerve::Result<f64> {
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut right = 0usize;
    for chunk in indices.chunks(500) {
        let (x, y) = make_batch(data, chunk, STEPS, Encoding::Direct, &mut rng, device)?;
        let spk = net.forward(x, None, false)?.spk;
        let predicted = spk
            .sum_dim(0)
            .squeeze_dim::<2>(0)
            .argmax(1)
            .squeeze_dim::<1>(1);
        right += predicted.equal(y).int().sum().into_scalar::<i64>() as usize;
    }
    Ok(100.0 * right as f64 / data.len().max(1) as f64)
}

/// Time to accuracy: the tutorial recipe, test accuracy every `--eval-every` batches (not
/// timed), stopping at `--target` percent or after `--epochs` epochs.
fn tta(o: &Opts) -> nerve::Result<()> {
    let splits = mnist(o)?;
    let train = match o.train_limit {
        Some(n) => splits.train.take(n),
        None => splits.train.clone(),
    };
    let test = match o.test_limit {
        Some(n) => splits.test.take(n),
        None => splits.test.clone(),
    };
    let device = Device::flex().autodiff();
    device.seed(o.seed);
    let plain = device.clone().inner();
    let mut net = w3_config().init(&device)?;
    let mut optim = OptimizerKind::Adam.init(None);
    let mut train_s = 0.0;
    let mut batches = 0usize;
    let mut reached = None;
    'epochs: for epoch in 1..=o.epochs {
        let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        // Whole batches only, as the tutorial's DataLoader(drop_last=True).
        let per_epoch = train.len() / BATCH;
        for (b, chunk) in order.chunks_exact(BATCH).enumerate() {
            let t0 = Instant::now();
            let (x, y) = make_batch(&train, chunk, STEPS, Encoding::Direct, &mut rng, &device)?;
            let (next, loss) = train_step(net, &mut optim, x, y)?;
            net = next;
            train_s += t0.elapsed().as_secs_f64();
            batches += 1;
            let last = b + 1 == per_epoch;
            if (o.eval_every > 0 && batches.is_multiple_of(o.eval_every)) || last {
                let acc = accuracy(&net.valid(), &test, &plain)?;
                emit(
                    o,
                    base_record(o),
                    json!({"mode": "tta_point", "epoch": epoch, "batches": batches,
                           "train_s": round3(train_s), "test_accuracy": acc, "loss": loss}),
                );
                if o.target.is_some_and(|t| acc >= t) {
                    reached = Some((acc, train_s, batches));
                    break 'epochs;
                }
            }
        }
    }
    emit(
        o,
        base_record(o),
        json!({"mode": "tta", "target": o.target, "reached": reached.is_some(),
               "test_accuracy": reached.map(|r| r.0), "train_s": round3(reached.map_or(train_s, |r| r.1)),
               "batches": reached.map_or(batches, |r| r.2), "peak_rss_mib": peak_rss_mib().map(|m| m.round())}),
    );
    Ok(())
}

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
