//! Training latency-coded classifiers ([`BplcNet`], BPLC + NOSO) on images.
//!
//! As the image trainer ([`crate::train::trainer`]): progress as [`Event`]s, an atomic
//! checkpoint and history after every epoch, a non-finite loss stops the run before the
//! optimiser touches the weights, and a run resumes exactly. The loss is the cross-entropy of
//! the negated output latencies ([`crate::loss::latency`]) plus L2 weight decay (the paper's
//! SGD `weight_decay`); spikes are counted per inference up to each sample's first output
//! spike, input (encoder) spikes included.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::{Encoding, Samples};
use crate::error::{Error, Result};
use crate::loss::latency::{latency_ce_loss, latency_predictions};
use crate::models::bplc::{add_pixel_noise, BplcConfig, BplcNet, BplcOutput};
use crate::store::checkpoint::{self, CheckpointMeta};
use crate::train::history::{BatchRecord, EpochRecord, History};
use crate::train::optimizer::OptimizerKind;
use crate::train::schedule::Schedule;
use crate::train::trainer::{checkpoint_path, Event};

/// Everything a latency training run needs besides the network and the data.
#[derive(Debug, Clone)]
pub struct LatencyTrainConfig {
    /// Epochs to train (in total, counting those a resumed run already did).
    pub epochs: usize,
    /// Samples per optimiser step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule, per optimiser step.
    pub schedule: Schedule,
    /// Clip the gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// L2 weight decay coefficient (the gradient gains `weight_decay · w`).
    pub weight_decay: f64,
    /// Standard deviation of the Gaussian noise added to training pixels.
    pub noise: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where checkpoints, history and plots go.
    pub out_dir: PathBuf,
    /// Use only the first N training samples.
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    pub test_limit: Option<usize>,
    /// Name of the data set.
    pub dataset: String,
}

impl LatencyTrainConfig {
    /// Checks the options, naming the first one at fault.
    pub fn validate(&self) -> Result<()> {
        let positive = |what: &str, v: usize| {
            if v == 0 {
                Err(Error::invalid(what, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("epochs", self.epochs)?;
        positive("batch size", self.batch_size)?;
        for (what, v) in [
            ("train limit", self.train_limit),
            ("test limit", self.test_limit),
        ] {
            if let Some(n) = v {
                positive(what, n)?;
            }
        }
        let finite = |what: &str, v: f64, positive: bool| {
            if v.is_finite() && (v > 0.0 || (!positive && v == 0.0)) {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    format!(
                        "{v} must be finite and {}",
                        if positive { "> 0" } else { ">= 0" }
                    ),
                ))
            }
        };
        finite("learning rate", self.lr, true)?;
        finite("weight decay", self.weight_decay, false)?;
        finite("pixel noise", self.noise, false)?;
        if let Some(c) = self.grad_clip {
            finite("grad clip", c, true)?;
        }
        Ok(())
    }

    /// The run's settings as JSON, for the checkpoint header.
    pub fn to_json(&self, net: &BplcConfig) -> serde_json::Value {
        serde_json::json!({
            "task": "latency",
            "arch": net.arch,
            "input": net.input,
            "steps": net.steps,
            "tau_m": net.neuron.tau_m,
            "tau_s": net.neuron.tau_s,
            "threshold": net.neuron.threshold,
            "grad_clamp": net.neuron.grad_clamp,
            "input_scale": net.input_scale,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": format!("{:?}", self.optimizer),
            "schedule": self.schedule,
            "weight_decay": self.weight_decay,
            "noise": self.noise,
            "seed": self.seed,
            "dataset": self.dataset,
        })
    }
}

/// Accuracy, loss and spike counts on a data set.
#[derive(Debug, Clone)]
pub struct LatencyEvalReport {
    /// Fraction of samples whose earliest output is the label.
    pub accuracy: f64,
    /// Mean loss per batch.
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// Spikes per inference up to the first output spike, input spikes included.
    pub spikes_per_sample: f64,
    /// Spikes per inference over the whole window of `T` steps, input included.
    pub spikes_full_window: f64,
    /// Per layer, input first: name, neurons, spikes per inference up to the decision.
    pub layers: Vec<(String, usize, f64)>,
    /// Mean step of the first output spike (the decision).
    pub mean_decision_step: f64,
    /// Fraction of samples with no output spike in the window.
    pub silent: f64,
    /// Histogram of the first output spike's step, one bin per step (the last: no spike).
    pub decision_histogram: Vec<usize>,
}

/// Folds a forward pass's spike statistics into running totals.
#[derive(Debug, Default)]
struct SpikeTally {
    until_decision: Vec<f64>,
    full: f64,
    decision_sum: f64,
    silent: usize,
    histogram: Vec<usize>,
}

impl SpikeTally {
    fn add(&mut self, out: &BplcOutput) {
        let steps = out.steps;
        if self.histogram.is_empty() {
            self.histogram = vec![0; steps + 1];
        }
        for counts in out.spikes_until_decision() {
            if self.until_decision.len() < counts.len() {
                self.until_decision.resize(counts.len(), 0.0);
            }
            for (t, c) in self.until_decision.iter_mut().zip(counts) {
                *t += c as f64;
            }
        }
        self.full += out.input_spikes.iter().map(|&c| c as f64).sum::<f64>();
        for layer in &out.layers {
            self.full += layer.first_step.iter().filter(|&&t| t < steps).count() as f64;
        }
        let outputs = out.layers.last().map_or(&[][..], |l| &l.first_step[..]);
        let k = outputs.len() / out.batch.max(1);
        for b in 0..out.batch {
            let first = outputs[b * k..(b + 1) * k]
                .iter()
                .copied()
                .min()
                .unwrap_or(steps);
            if first >= steps {
                self.silent += 1;
                self.histogram[steps] += 1;
            } else {
                self.histogram[first] += 1;
            }
        }
        self.decision_sum += out.decision_steps().iter().map(|&d| d as f64).sum::<f64>();
    }
}

/// The pixels `[B, C, H, W]` and labels of `indices`, with training noise when `noise > 0`.
fn image_batch(
    data: &dyn Samples,
    indices: &[usize],
    noise: f64,
    rng: &mut rand::rngs::StdRng,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    let (x, y) = data.batch(indices, 1, Encoding::Direct, rng, device)?;
    let [_, b, c, h, w] = x.dims();
    let x: Tensor<4> = x.reshape([b, c, h, w]);
    if noise <= 0.0 {
        return Ok((x, y));
    }
    let mut values = x
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::invalid("pixels", format!("{e:?}")))?;
    add_pixel_noise(&mut values, noise, rng);
    Ok((
        Tensor::from_data(TensorData::new(values, [b, c, h, w]), device),
        y,
    ))
}

/// Number of samples whose prediction is the label.
fn correct(out: &BplcOutput, targets: &Tensor<1, Int>) -> Result<usize> {
    let lat: Vec<f32> = out
        .latency
        .clone()
        .detach()
        .into_data()
        .iter::<f32>()
        .collect();
    let k = out.latency.dims()[1];
    let predicted = latency_predictions(&lat, &out.u_spike, k)?;
    let labels: Vec<i64> = targets.clone().into_data().iter::<i64>().collect();
    Ok(predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count())
}

/// Evaluates `net` (use `net.valid()` for inference) on `data`.
pub fn evaluate(
    net: &BplcNet,
    data: &dyn Samples,
    cfg: &LatencyTrainConfig,
    device: &Device,
    on_event: &mut dyn FnMut(Event),
) -> Result<LatencyEvalReport> {
    let n = cfg.test_limit.map_or(data.len(), |l| l.min(data.len()));
    let indices: Vec<usize> = (0..n).collect();
    let batches: Vec<&[usize]> = indices.chunks(cfg.batch_size.max(1)).collect();
    on_event(Event::Evaluating {
        batches: batches.len(),
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5EED_7E57);
    let (mut right, mut loss_sum) = (0usize, 0.0f64);
    let mut tally = SpikeTally::default();
    for batch in &batches {
        let (x, y) = image_batch(data, batch, 0.0, &mut rng, device)?;
        let out = net.forward(x)?;
        right += correct(&out, &y)?;
        loss_sum += latency_ce_loss(out.latency.clone(), y)?.into_scalar::<f64>();
        tally.add(&out);
        on_event(Event::EvalBatch);
    }
    let samples = n.max(1) as f64;
    let mut names = vec![("input".to_string(), net.config.input.iter().product())];
    names.extend(net.layer_names.iter().cloned());
    Ok(LatencyEvalReport {
        accuracy: right as f64 / samples,
        loss: loss_sum / batches.len().max(1) as f64,
        samples: n,
        spikes_per_sample: tally.until_decision.iter().sum::<f64>() / samples,
        spikes_full_window: tally.full / samples,
        layers: names
            .into_iter()
            .zip(tally.until_decision.iter().chain(std::iter::repeat(&0.0)))
            .map(|((name, neurons), total)| (name, neurons, total / samples))
            .collect(),
        mean_decision_step: tally.decision_sum / samples,
        silent: tally.silent as f64 / samples,
        decision_histogram: tally.histogram,
    })
}

/// A network, its optimiser and its history, ready to train (fresh or resumed).
pub struct LatencySession {
    /// The network (on an autodiff device).
    pub net: BplcNet,
    /// The optimiser with its state.
    pub optim: ModuleOptimizer,
    /// Epochs done so far.
    pub history: History,
}

impl LatencySession {
    /// A fresh session: the network initialised from `cfg.seed`.
    pub fn new(net: &BplcConfig, cfg: &LatencyTrainConfig, device: &Device) -> Result<Self> {
        device.seed(cfg.seed);
        Ok(Self {
            net: net.init(device)?,
            optim: cfg.optimizer.init(cfg.grad_clip),
            history: History::default(),
        })
    }

    /// Resumes from the checkpoint in `cfg.out_dir`: weights, optimiser state and history.
    pub fn resume(net: &BplcConfig, cfg: &LatencyTrainConfig, device: &Device) -> Result<Self> {
        let path = checkpoint_path(&cfg.out_dir);
        let mut session = Self::new(net, cfg, device)?;
        let (loaded, meta) = checkpoint::load(&path, session.net, &net.describe())?;
        session.optim = checkpoint::load_optimizer(&path, session.optim, &loaded)?;
        session.net = loaded;
        session.history = History::load_json(cfg.out_dir.join("history.json"))?;
        session.history.truncate_to_epoch(meta.epoch);
        Ok(session)
    }
}

/// Trains until `cfg.epochs` epochs are done, checkpointing after each; returns the session
/// and the test report of the last epoch trained (none when there was nothing left to train).
pub fn train(
    mut session: LatencySession,
    train_data: &dyn Samples,
    test_data: &dyn Samples,
    cfg: &LatencyTrainConfig,
    device: &Device,
    on_event: &mut dyn FnMut(Event),
) -> Result<(LatencySession, Option<LatencyEvalReport>)> {
    cfg.validate()?;
    if train_data.num_classes() > session.net.outputs() {
        return Err(Error::invalid(
            "network",
            format!(
                "{} outputs for a data set of {} classes",
                session.net.outputs(),
                train_data.num_classes()
            ),
        ));
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| Error::io(&cfg.out_dir, e))?;
    let n = cfg
        .train_limit
        .map_or(train_data.len(), |l| l.min(train_data.len()));
    let batch_size = cfg.batch_size.max(1);
    let batches_per_epoch = n.div_ceil(batch_size);
    let first_epoch = session.history.records.len() + 1;
    let mut last_report = None;
    for epoch in first_epoch..=cfg.epochs {
        let started = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        on_event(Event::EpochStart {
            epoch,
            batches: batches_per_epoch,
        });
        let (mut loss_sum, mut right) = (0.0f64, 0usize);
        let mut tally = SpikeTally::default();
        let losses: Vec<f64> = session
            .history
            .records
            .iter()
            .map(|r| r.train_loss)
            .collect();
        for (b, batch) in order.chunks(batch_size).enumerate() {
            let global_step = (epoch - 1) * batches_per_epoch + b;
            let lr = cfg.schedule.lr_after(cfg.lr, global_step, &losses);
            let (x, y) = image_batch(train_data, batch, cfg.noise, &mut rng, device)?;
            let out = session.net.forward(x)?;
            let loss = latency_ce_loss(out.latency.clone(), y.clone())?;
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    value,
                    epoch,
                    step: b + 1,
                });
            }
            let ok = correct(&out, &y)?;
            tally.add(&out);
            let total = if cfg.weight_decay > 0.0 {
                loss + session.net.l2().mul_scalar(0.5 * cfg.weight_decay)
            } else {
                loss
            };
            let grads = GradientsParams::from_grads(total.backward(), &session.net);
            session.net = session.optim.step(lr, session.net.clone(), grads);
            loss_sum += value;
            right += ok;
            let accuracy = ok as f64 / batch.len() as f64;
            session.history.batches.push(BatchRecord {
                epoch: (epoch - 1) as f64 + (b + 1) as f64 / batches_per_epoch as f64,
                loss: value,
                accuracy,
            });
            on_event(Event::Batch {
                batch: b + 1,
                loss: value,
                accuracy,
            });
        }
        let valid = session.net.valid();
        let report = evaluate(&valid, test_data, cfg, &device.clone().inner(), on_event)?;
        let train_loss = loss_sum / batches_per_epoch.max(1) as f64;
        let mut losses = losses;
        losses.push(train_loss);
        let mut extra = std::collections::BTreeMap::new();
        for (name, _, spikes) in &report.layers {
            extra.insert(format!("spikes_{name}"), *spikes);
        }
        extra.insert("spikes_full_window".into(), report.spikes_full_window);
        extra.insert("decision_step".into(), report.mean_decision_step);
        extra.insert("silent".into(), report.silent);
        extra.insert(
            "train_spikes_per_sample".into(),
            tally.until_decision.iter().sum::<f64>() / n.max(1) as f64,
        );
        let record = EpochRecord {
            epoch,
            train_loss,
            train_accuracy: right as f64 / n.max(1) as f64,
            test_loss: report.loss,
            test_accuracy: report.accuracy,
            lr: cfg
                .schedule
                .lr_after(cfg.lr, epoch * batches_per_epoch, &losses),
            seconds: started.elapsed().as_secs_f64(),
            spikes_per_sample: report.spikes_per_sample,
            step: (epoch * batches_per_epoch) as u64,
            extra,
        };
        session.history.records.push(record.clone());
        save(&session, cfg, epoch, (epoch * batches_per_epoch) as u64)?;
        on_event(Event::EpochEnd(record));
        last_report = Some(report);
    }
    Ok((session, last_report))
}

/// Writes the checkpoint and the history (both atomically).
fn save(session: &LatencySession, cfg: &LatencyTrainConfig, epoch: usize, step: u64) -> Result<()> {
    let net = &session.net.config;
    let meta = CheckpointMeta {
        arch: net.describe(),
        epoch,
        step,
        config: cfg.to_json(net),
        seed: cfg.seed,
    };
    checkpoint::save(
        checkpoint_path(&cfg.out_dir),
        &session.net,
        &session.optim,
        &meta,
    )?;
    write_history(&session.history, &cfg.out_dir)
}

/// Writes `history.json` and `history.csv` into `dir`.
fn write_history(history: &History, dir: &Path) -> Result<()> {
    history.write_json(dir.join("history.json"))?;
    history.write_csv(dir.join("history.csv"))
}
