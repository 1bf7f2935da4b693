//! Training a [`RegressionNet`] by BPTT on its output membrane (snnTorch's regression
//! tutorials): target series `[T, B, O]` under a mean-square error on the membrane (Part I),
//! or class labels recast as regression targets, spike counts (`mse-count`) or membrane levels
//! (`mse-membrane:ON:OFF`) (Part II).
//!
//! Like [`crate::train::trainer`], the trainer reports progress as [`RegressionEvent`]s, writes
//! its checkpoint and history atomically after every epoch, and stops with
//! [`Error::NonFinite`] on a NaN or infinite loss before the optimiser touches the weights.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;

use crate::error::{Error, Result};
use crate::models::regression_net::{RegressionNet, RegressionNetConfig};
use crate::store::checkpoint::{self, CheckpointMeta};
use crate::train::history::{BatchRecord, EpochRecord, History};
use crate::train::optimizer::OptimizerKind;
use crate::train::regression_loss::predicted;
pub use crate::train::regression_loss::{
    loss_of, relative_error, relative_error_sums, RegressionData, RegressionLoss, Targets,
};
use crate::train::schedule::Schedule;
use crate::train::trainer::checkpoint_path;

/// Everything a regression run needs besides the network and the data.
#[derive(Debug, Clone)]
pub struct RegressionConfig {
    /// Epochs in total; one epoch is one pass over the training samples (with the tutorial's
    /// single trajectory, one optimiser step: an "iteration").
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
    /// Seed of the shuffling (the network has its own in [`RegressionNetConfig`]).
    pub seed: u64,
    /// Loss.
    pub loss: RegressionLoss,
    /// Where checkpoint and history go.
    pub out_dir: PathBuf,
    /// Name of the data (recorded in the checkpoint).
    pub dataset: String,
}

impl RegressionConfig {
    /// Checks the options a user can get wrong, naming the first one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("batch size", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "learning rate",
                format!("{} must be a positive finite number", self.lr),
            ));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid(
                    "grad clip",
                    format!("{c} must be a positive finite number"),
                ));
            }
        }
        Ok(())
    }
}

/// Progress reports from [`train`].
#[derive(Debug, Clone)]
pub enum RegressionEvent {
    /// An epoch starts with this many batches.
    EpochStart {
        /// Epoch (1-based).
        epoch: usize,
        /// Batches in the epoch.
        batches: usize,
    },
    /// A batch finished with this loss.
    Batch {
        /// Batch index (1-based).
        batch: usize,
        /// Its loss.
        loss: f64,
    },
    /// An epoch finished, was evaluated and checkpointed; its record (relative error and L1
    /// in `extra` for target series, accuracy for labels).
    EpochEnd(EpochRecord),
}

/// The first samples' output membrane (and targets) over time, for plots.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionTrace {
    /// `[T, K, O]`: time steps, samples shown, outputs.
    pub shape: [usize; 3],
    /// Output membrane, row-major.
    pub membrane: Vec<f32>,
    /// Target membrane, row-major, when the targets are series or membrane levels.
    pub target: Option<Vec<f32>>,
    /// The samples' labels, for labelled data.
    pub labels: Vec<usize>,
}

/// Metrics of a network on a data set.
#[derive(Debug, Clone)]
pub struct RegressionReport {
    /// Mean loss per batch.
    pub loss: f64,
    /// The tutorial's relative error (see [`relative_error_sums`]) for target series.
    pub relative_error: Option<f64>,
    /// Mean absolute error of the membrane for target series.
    pub l1: Option<f64>,
    /// Accuracy for labelled data: the most-spiking output for `mse-count`, the highest mean
    /// membrane for `mse-membrane:ON:OFF`.
    pub accuracy: Option<f64>,
    /// Samples evaluated.
    pub samples: usize,
    /// Hidden spikes per sample.
    pub spikes_per_sample: f64,
    /// The first (up to 4) samples' traces.
    pub trace: Option<RegressionTrace>,
}

/// Evaluates `net` (use `net.valid()` for inference) on `data`, `steps` steps per sample.
pub fn evaluate(
    net: &RegressionNet,
    data: RegressionData<'_>,
    cfg: &RegressionConfig,
    steps: usize,
    device: &Device,
) -> Result<RegressionReport> {
    let n = data.len();
    let indices: Vec<usize> = (0..n).collect();
    let batches: Vec<&[usize]> = indices.chunks(cfg.batch_size.max(1)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5EED_7E57);
    let (mut loss_sum, mut rel_sum, mut rel_count, mut abs_sum, mut abs_count) =
        (0.0, 0.0, 0usize, 0.0, 0usize);
    let (mut right, mut spikes) = (0usize, 0.0);
    let mut trace = None;
    for batch in &batches {
        let (x, targets) = data.batch(batch, steps, &mut rng, device)?;
        let out = net.forward(x, steps)?;
        loss_sum +=
            loss_of(cfg.loss, out.spk.clone(), out.mem.clone(), &targets)?.into_scalar::<f64>();
        spikes += out.hidden_spikes.into_scalar::<f64>();
        let [t, b, o] = out.mem.dims();
        let shown = b.min(4);
        let first = |x: &Tensor<3>| -> Vec<f32> {
            x.clone()
                .narrow(1, 0, shown)
                .into_data()
                .iter::<f32>()
                .collect()
        };
        let target_trace = match &targets {
            Targets::Series(y) => {
                let (s, c) = relative_error_sums(&out.mem, y)?;
                rel_sum += s;
                rel_count += c;
                abs_sum += (out.mem.clone() - y.clone())
                    .abs()
                    .sum()
                    .into_scalar::<f64>();
                abs_count += t * b * o;
                Some(first(y))
            }
            Targets::Labels(y) => {
                let labels: Vec<i64> = y.clone().into_data().iter::<i64>().collect();
                let guess = predicted(cfg.loss, &out.spk, &out.mem);
                right += guess.iter().zip(&labels).filter(|(g, l)| g == l).count();
                match cfg.loss {
                    RegressionLoss::MseMembraneClass { on, off } => Some(
                        (0..t)
                            .flat_map(|_| {
                                labels[..shown].iter().flat_map(move |&l| {
                                    (0..o)
                                        .map(move |k| (if k as i64 == l { on } else { off }) as f32)
                                })
                            })
                            .collect(),
                    ),
                    _ => None,
                }
            }
        };
        if trace.is_none() {
            let labels = match &targets {
                Targets::Labels(y) => y
                    .clone()
                    .narrow(0, 0, shown)
                    .into_data()
                    .iter::<i64>()
                    .map(|l| l as usize)
                    .collect(),
                Targets::Series(_) => Vec::new(),
            };
            trace = Some(RegressionTrace {
                shape: [t, shown, o],
                membrane: first(&out.mem),
                target: target_trace,
                labels,
            });
        }
    }
    let series = matches!(data, RegressionData::Series(_));
    Ok(RegressionReport {
        loss: loss_sum / batches.len().max(1) as f64,
        relative_error: (series && rel_count > 0).then(|| rel_sum / rel_count as f64),
        l1: series.then(|| abs_sum / abs_count.max(1) as f64),
        accuracy: (!series).then(|| right as f64 / n.max(1) as f64),
        samples: n,
        spikes_per_sample: spikes / n.max(1) as f64,
        trace,
    })
}

/// A network, its optimiser and its history, ready to train (fresh or resumed).
pub struct RegressionSession {
    /// The network (on an autodiff device).
    pub net: RegressionNet,
    /// The optimiser with its state.
    pub optim: ModuleOptimizer,
    /// Epochs done so far.
    pub history: History,
    /// The network's configuration.
    pub net_config: RegressionNetConfig,
}

impl RegressionSession {
    /// A fresh session.
    pub fn new(
        net_config: RegressionNetConfig,
        cfg: &RegressionConfig,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            net: net_config.init(device)?,
            optim: cfg.optimizer.init(cfg.grad_clip),
            history: History::default(),
            net_config,
        })
    }

    /// Resumes from the checkpoint in `cfg.out_dir`: weights, optimiser state and history.
    pub fn resume(
        net_config: RegressionNetConfig,
        cfg: &RegressionConfig,
        device: &Device,
    ) -> Result<Self> {
        let path = checkpoint_path(&cfg.out_dir);
        let mut session = Self::new(net_config, cfg, device)?;
        let (net, meta) = checkpoint::load(&path, session.net, &session.net_config.describe())?;
        session.optim = checkpoint::load_optimizer(&path, session.optim, &net)?;
        session.net = net;
        session.history = History::load_json(cfg.out_dir.join("history.json"))?;
        session.history.truncate_to_epoch(meta.epoch);
        Ok(session)
    }
}

/// Trains until `cfg.epochs` epochs are done, evaluating on `test` and checkpointing after each.
pub fn train(
    mut session: RegressionSession,
    train_data: RegressionData<'_>,
    test_data: RegressionData<'_>,
    cfg: &RegressionConfig,
    device: &Device,
    on_event: &mut dyn FnMut(RegressionEvent),
) -> Result<RegressionSession> {
    cfg.validate()?;
    let (inputs, outputs) = session.net.sizes();
    for data in [&train_data, &test_data] {
        if data.features() != inputs || data.outputs() != outputs {
            return Err(Error::invalid(
                "network",
                format!(
                    "{inputs} inputs and {outputs} outputs for data of {} features and {} outputs",
                    data.features(),
                    data.outputs()
                ),
            ));
        }
    }
    if train_data.is_empty() {
        return Err(Error::invalid("training data", "no samples"));
    }
    let steps = session.net_config.steps;
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| Error::io(&cfg.out_dir, e))?;
    let n = train_data.len();
    let batches_per_epoch = n.div_ceil(cfg.batch_size);
    let first_epoch = session.history.records.len() + 1;
    let mut losses: Vec<f64> = session
        .history
        .records
        .iter()
        .map(|r| r.train_loss)
        .collect();
    for epoch in first_epoch..=cfg.epochs {
        let started = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        on_event(RegressionEvent::EpochStart {
            epoch,
            batches: batches_per_epoch,
        });
        let (mut loss_sum, mut right) = (0.0, 0usize);
        for (b, batch) in order.chunks(cfg.batch_size).enumerate() {
            let global_step = (epoch - 1) * batches_per_epoch + b;
            let lr = cfg.schedule.lr_after(cfg.lr, global_step, &losses);
            let (x, targets) = train_data.batch(batch, steps, &mut rng, device)?;
            let out = session.net.forward(x, steps)?;
            let loss = loss_of(cfg.loss, out.spk.clone(), out.mem.clone(), &targets)?;
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    value,
                    epoch,
                    step: b + 1,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &session.net);
            session.net = session.optim.step(lr, session.net.clone(), grads);
            let accuracy = match &targets {
                Targets::Labels(y) => {
                    let labels: Vec<i64> = y.clone().into_data().iter::<i64>().collect();
                    let ok = predicted(cfg.loss, &out.spk, &out.mem)
                        .iter()
                        .zip(&labels)
                        .filter(|(g, l)| g == l)
                        .count();
                    right += ok;
                    ok as f64 / batch.len() as f64
                }
                Targets::Series(_) => f64::NAN,
            };
            loss_sum += value;
            session.history.batches.push(BatchRecord {
                epoch: (epoch - 1) as f64 + (b + 1) as f64 / batches_per_epoch as f64,
                loss: value,
                accuracy,
            });
            on_event(RegressionEvent::Batch {
                batch: b + 1,
                loss: value,
            });
        }
        let valid = session.net.valid();
        let report = evaluate(&valid, test_data, cfg, steps, &device.clone().inner())?;
        let train_loss = loss_sum / batches_per_epoch as f64;
        losses.push(train_loss);
        let labelled = matches!(train_data, RegressionData::Labelled(_));
        let mut record = EpochRecord {
            epoch,
            step: (epoch * batches_per_epoch) as u64,
            train_loss,
            train_accuracy: if labelled {
                right as f64 / n as f64
            } else {
                f64::NAN
            },
            test_loss: report.loss,
            test_accuracy: report.accuracy.unwrap_or(f64::NAN),
            lr: cfg
                .schedule
                .lr_after(cfg.lr, epoch * batches_per_epoch, &losses),
            seconds: started.elapsed().as_secs_f64(),
            spikes_per_sample: report.spikes_per_sample,
            extra: Default::default(),
        };
        if let Some(r) = report.relative_error {
            record.extra.insert("relative_error".into(), r);
        }
        if let Some(l1) = report.l1 {
            record.extra.insert("l1".into(), l1);
        }
        session.history.records.push(record.clone());
        save(&session, cfg, epoch, record.step)?;
        on_event(RegressionEvent::EpochEnd(record));
    }
    Ok(session)
}

/// Writes the checkpoint and the history (both atomically).
fn save(
    session: &RegressionSession,
    cfg: &RegressionConfig,
    epoch: usize,
    step: u64,
) -> Result<()> {
    let net = &session.net_config;
    let meta = CheckpointMeta {
        arch: net.describe(),
        epoch,
        step,
        config: json!({
            "task": "regression",
            "model": net.kind.name(),
            "inputs": net.inputs,
            "hidden": net.hidden,
            "outputs": net.outputs,
            "steps": net.steps,
            "beta": net.beta,
            "learn_beta": net.learn_beta,
            "random_neurons": net.random_neurons,
            "threshold": net.firing.threshold,
            "reset": format!("{:?}", net.firing.reset).to_lowercase(),
            "surrogate": format!("{:?}", net.firing.surrogate),
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "optimizer": format!("{:?}", cfg.optimizer),
            "schedule": format!("{:?}", cfg.schedule),
            "grad_clip": cfg.grad_clip,
            "seed": cfg.seed,
            "loss_spec": cfg.loss.spec(),
            "dataset": cfg.dataset,
        }),
        seed: cfg.seed,
    };
    let path = checkpoint_path(&cfg.out_dir);
    checkpoint::save(&path, &session.net, &session.optim, &meta)?;
    session
        .history
        .write_json(cfg.out_dir.join("history.json"))?;
    session.history.write_csv(cfg.out_dir.join("history.csv"))?;
    Ok(())
}
