//! Time to accuracy: W3 trained on full MNIST with the tutorial recipe.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use nerve::data::mnist::ImageDataset;
use nerve::data::{make_batch, Encoding};
use nerve::models::SpikingNet;
use nerve::train::optimizer::OptimizerKind;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;

use crate::classifier::{mnist, train_step, w3_config};
use crate::opts::Opts;
use crate::report::{base_record, emit, peak_rss_mib, round3};
use crate::{BATCH, STEPS};

/// Test accuracy in percent of `net` (inference copy) on `data`.
pub(crate) fn accuracy(
    net: &SpikingNet,
    data: &ImageDataset,
    device: &Device,
) -> nerve::Result<f64> {
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
pub(crate) fn tta(o: &Opts) -> nerve::Result<()> {
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
