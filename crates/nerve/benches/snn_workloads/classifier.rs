//! The classifier workloads W1 (`FC1000-FC10`) and W3 (the tutorial conv SNN): inference and
//! training steps timed on one batch.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use nerve::data::mnist::{load_dataset, ImageDataset};
use nerve::data::{make_batch, Encoding};
use nerve::models::{SpikingNet, SpikingNetConfig};
use nerve::neurons::Reset;
use nerve::surrogate::Surrogate;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::trainer::{loss_of, LossKind};
use rand::SeedableRng;
use serde_json::json;

use crate::opts::Opts;
use crate::report::{base_record, emit, round3, time_mode, wants};
use crate::{BATCH, LR, STEPS};

pub(crate) fn mnist(o: &Opts) -> nerve::Result<nerve::data::mnist::ImageSplits> {
    load_dataset("mnist", o.data.as_deref())
}

/// Leaky β 0.95, threshold 1, subtract reset, fast sigmoid 25: the W1 neuron.
pub(crate) fn w1_config() -> SpikingNetConfig {
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
pub(crate) fn w3_config() -> SpikingNetConfig {
    let mut c = SpikingNetConfig::tutorial_conv();
    c.firing.surrogate = Surrogate::FastSigmoid { slope: 25.0 };
    c
}

/// One optimiser step of `net` on `(x, y)`; returns the new network and the loss.
pub(crate) fn train_step(
    net: SpikingNet,
    optim: &mut ModuleOptimizer,
    x: Tensor<5>,
    y: Tensor<1, Int>,
) -> nerve::Result<(SpikingNet, f64)> {
    let out = net.forward(x, None, false)?;
    let loss = loss_of(LossKind::CeRate, None, out.spk, out.mem, y)?;
    let value = loss.clone().into_scalar::<f64>();
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    Ok((optim.step(LR, net, grads), value))
}

/// Forward on the plain device; returns the total output spike count (forces the work).
pub(crate) fn infer(net: &SpikingNet, x: Tensor<5>) -> nerve::Result<f64> {
    Ok(net.forward(x, None, false)?.spk.sum().into_scalar::<f64>())
}

/// A labelled batch `[T or 1, B, C, H, W]` built on the given device.
pub(crate) type Batch = (Tensor<5>, Tensor<1, Int>);
/// Builds the workload's batch on a device (the plain one for inference, autodiff for training).
pub(crate) type BatchFn<'a> = dyn Fn(&Device) -> nerve::Result<Batch> + 'a;

/// Times inference then training of `net_config` on the batch from `batch(device)`.
pub(crate) fn run_classifier(
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
    if wants(o, "int-infer") {
        // The same network as an 8-bit integer program on the integer engine, every sample of
        // the batch in parallel (as the float path runs the batch at once).
        use rayon::prelude::*;
        let plain = device.clone().inner();
        let valid = net.as_ref().expect("network").valid();
        let program = nerve::hw::integer::IntProgram::from_net(&valid, net_config, 8)?;
        let (x, _) = batch(&plain)?;
        let inputs = nerve::hw::integer::batch_inputs(x);
        let mut spikes = 0u64;
        time_mode(o, "int-infer", json!({}), || {
            spikes = inputs
                .par_iter()
                .map(|steps| {
                    let input = nerve::hw::integer::IntInput::from_steps(steps);
                    let out = nerve::hw::integer::run(&program, input).expect("integer run");
                    out.counts.iter().map(|&c| u64::from(c)).sum::<u64>()
                })
                .sum();
        });
        emit(
            o,
            base_record(o),
            json!({"mode": "int_output_spikes", "output_spikes": spikes}),
        );
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
pub(crate) fn w1_flops() -> (f64, f64) {
    let rows = (STEPS * BATCH) as f64;
    let fwd = 2.0 * rows * (784.0 * 1000.0 + 1000.0 * 10.0);
    let train = 2.0 * fwd + 2.0 * rows * 1000.0 * 10.0;
    (train, fwd)
}

pub(crate) fn labels(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

pub(crate) fn w1_dense(o: &Opts) -> nerve::Result<()> {
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

pub(crate) fn first_batch(
    data: &ImageDataset,
    encoding: Encoding,
    device: &Device,
) -> nerve::Result<(Tensor<5>, Tensor<1, Int>)> {
    let indices: Vec<usize> = (0..BATCH.min(data.len())).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    make_batch(data, &indices, STEPS, encoding, &mut rng, device)
}

pub(crate) fn w1_mnist(o: &Opts) -> nerve::Result<()> {
    let splits = mnist(o)?;
    let batch = |device: &Device| first_batch(&splits.train, Encoding::Rate { gain: 1.0 }, device);
    run_classifier(o, &w1_config(), &batch, Some(w1_flops()))
}

pub(crate) fn w3(o: &Opts) -> nerve::Result<()> {
    let splits = mnist(o)?;
    let batch = |device: &Device| first_batch(&splits.train, Encoding::Direct, device);
    run_classifier(o, &w3_config(), &batch, None)
}
