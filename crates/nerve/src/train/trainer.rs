//! Backpropagation through time for image classification with a [`SpikingNet`].
//!
//! The trainer knows nothing about the command line: it reports progress as [`Event`]s, writes a
//! checkpoint after every epoch (atomically), and stops with an error on a non-finite loss
//! before the optimiser touches the weights, so the last good checkpoint stays intact.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::{Encoding, Samples};
use crate::error::{Error, Result};
use crate::models::{SpikingNet, SpikingNetConfig};
use crate::store::checkpoint::{self, CheckpointMeta};
use crate::train::history::{BatchRecord, EpochRecord, History};
pub use crate::train::loss_kind::LossKind;
use crate::train::optimizer::OptimizerKind;
use crate::train::run_config::run_config_json;
use crate::train::schedule::Schedule;

/// Everything a training run needs besides the network and the data.
#[derive(Debug, Clone)]
pub struct TrainConfig {
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
    /// Seed of every random choice (initialisation, shuffling, rate coding, dropout).
    pub seed: u64,
    /// Loss.
    pub loss: LossKind,
    /// Input encoding.
    pub encoding: Encoding,
    /// Truncated BPTT: update every this many steps, carrying the (detached) state forward.
    pub tbptt: Option<usize>,
    /// Where checkpoints, history and plots go.
    pub out_dir: PathBuf,
    /// Use only the first N training samples.
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    pub test_limit: Option<usize>,
    /// Name of the data set (recorded in the checkpoint so `eval` picks the same one).
    pub dataset: String,
    /// Population code: this many output neurons vote for each class, in contiguous groups
    /// (snnTorch's `population_code`); `None` is one neuron per class.
    pub population: Option<usize>,
}

impl TrainConfig {
    /// Checks the options a user can get wrong, naming the first one at fault.
    pub fn validate(&self, net: &SpikingNetConfig) -> Result<()> {
        net.validate()?;
        let positive = |what: &str, v: usize| {
            if v == 0 {
                Err(Error::invalid(what, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("epochs", self.epochs)?;
        positive("batch size", self.batch_size)?;
        if let Some(k) = self.tbptt {
            positive("tbptt", k)?;
            if k < net.steps && net.arch.to_ascii_uppercase().split('-').any(|t| t == "BN") {
                return Err(Error::invalid(
                    "tbptt",
                    "batch-norm through time (BN) keeps statistics per step and needs whole sequences; drop --tbptt or BN",
                ));
            }
        }
        if let Some(n) = self.train_limit {
            positive("train limit", n)?;
        }
        if let Some(n) = self.test_limit {
            positive("test limit", n)?;
        }
        if let Some(p) = self.population {
            positive("population", p)?;
            if self.loss == LossKind::CeMaxMembrane {
                return Err(Error::invalid(
                    "population",
                    "ce-max-membrane has no population code; use ce-rate, ce-count or mse-count",
                ));
            }
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
        if let Encoding::Rate { gain } = self.encoding {
            if !(gain.is_finite() && gain >= 0.0) {
                return Err(Error::invalid(
                    "rate gain",
                    format!("{gain} must be a non-negative finite number"),
                ));
            }
        }
        Ok(())
    }
}

/// Progress reports from [`train`].
#[derive(Debug, Clone)]
pub enum Event {
    /// An epoch starts with this many batches.
    EpochStart {
        /// Epoch (1-based).
        epoch: usize,
        /// Batches in the epoch.
        batches: usize,
    },
    /// A batch finished.
    Batch {
        /// Batch index (1-based).
        batch: usize,
        /// Its loss.
        loss: f64,
        /// Its accuracy.
        accuracy: f64,
    },
    /// Evaluation on the test set starts.
    Evaluating {
        /// Batches to evaluate.
        batches: usize,
    },
    /// An evaluation batch finished.
    EvalBatch,
    /// An epoch finished, was evaluated and checkpointed.
    EpochEnd(EpochRecord),
}

/// Accuracy, loss and spike statistics on a data set.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Fraction of samples whose most-spiking output is the label.
    pub accuracy: f64,
    /// Mean loss per batch.
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// Spikes per inference, summed over every spiking layer.
    pub spikes_per_sample: f64,
    /// Per spiking layer: name, neurons, firing rate (spikes per neuron per step).
    pub layers: Vec<(String, usize, f64)>,
    /// `class_counts[c][k]`: mean spike count of output neuron `k` (of population `k` when
    /// [`EvalReport::population`] is set) over samples of class `c` (NaN for a class with no
    /// samples).
    pub class_counts: Vec<Vec<f64>>,
    /// Output neurons per class when the network was scored with a population code.
    pub population: Option<usize>,
}

impl TrainConfig {
    /// The class count the losses group outputs into (`population_code`), for `outputs`
    /// output neurons; `None` without a population code.
    pub fn population_code(&self, outputs: usize) -> Option<usize> {
        self.population.map(|p| outputs / p.max(1))
    }

    /// Checks that `outputs` output neurons code `classes` classes: one neuron each, or
    /// [`TrainConfig::population`] each.
    pub fn check_outputs(&self, outputs: usize, classes: usize) -> Result<()> {
        match self.population {
            Some(p) if outputs != p * classes => Err(Error::invalid(
                "population",
                format!(
                    "{outputs} output neurons cannot hold {classes} classes of {p} neurons; \
                     the last layer needs {}",
                    p * classes
                ),
            )),
            None if classes > outputs => Err(Error::invalid(
                "network",
                format!("{outputs} outputs for a data set of {classes} classes"),
            )),
            _ => Ok(()),
        }
    }
}

/// Spike counts per class `[B, C]` from output spikes `[T, B, N]`: each neuron's count, or each
/// population's summed count with a population code of `C` classes.
fn class_votes(spk: &Tensor<3>, population_code: Option<usize>) -> Result<Tensor<2>> {
    let spk = spk.clone().detach();
    let spk = match population_code {
        Some(classes) => crate::loss::population_sum(spk, classes)?,
        None => spk,
    };
    Ok(spk.sum_dim(0).squeeze_dim::<2>(0))
}

/// The loss of a forward pass.
/// The loss of a forward pass; `population_code` is the class count when several output neurons
/// vote for each class.
pub fn loss_of(
    kind: LossKind,
    population_code: Option<usize>,
    spk: Tensor<3>,
    mem: Tensor<3>,
    targets: Tensor<1, Int>,
) -> Result<Tensor<1>> {
    use crate::loss;
    match kind {
        LossKind::CeRate => loss::CeRateLoss { population_code }.forward(spk, targets),
        LossKind::CeCount => loss::CeCountLoss { population_code }.forward(spk, targets),
        LossKind::MseCount {
            correct_rate,
            incorrect_rate,
        } => loss::MseCountLoss {
            correct_rate,
            incorrect_rate,
            population_code,
        }
        .forward(spk, targets),
        LossKind::CeMaxMembrane => loss::CeMaxMembraneLoss::new().forward(mem, targets),
    }
}

/// Number of samples whose class with the most output spikes is the label.
fn correct(
    spk: &Tensor<3>,
    targets: &Tensor<1, Int>,
    population_code: Option<usize>,
) -> Result<usize> {
    let predicted = class_votes(spk, population_code)?
        .argmax(1)
        .squeeze_dim::<1>(1);
    Ok(predicted
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar::<i64>() as usize)
}

/// The generator that rate-codes test inputs in an evaluation of a run seeded `seed`: every
/// pass over the test set that uses it (scoring, energy counting) sees the same spikes.
pub fn evaluation_rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_7E57)
}

/// Evaluates `net` (use `net.valid()` for inference) on `data`.
pub fn evaluate(
    net: &SpikingNet,
    data: &dyn Samples,
    cfg: &TrainConfig,
    device: &Device,
    on_event: &mut dyn FnMut(Event),
) -> Result<EvalReport> {
    let n = cfg.test_limit.map_or(data.len(), |l| l.min(data.len()));
    let indices: Vec<usize> = (0..n).collect();
    let batches: Vec<&[usize]> = indices.chunks(cfg.batch_size.max(1)).collect();
    on_event(Event::Evaluating {
        batches: batches.len(),
    });
    let mut rng = evaluation_rng(cfg.seed);
    let (mut right, mut loss_sum, mut spikes) = (0usize, 0.0f64, 0.0f64);
    let mut layer_totals = vec![0.0f64; net.layer_names.len()];
    let population_code = cfg.population_code(net.outputs());
    let outputs = population_code.unwrap_or(net.outputs());
    let mut class_sums = vec![vec![0.0f64; outputs]; data.num_classes()];
    let mut class_samples = vec![0usize; data.num_classes()];
    for batch in &batches {
        let (x, y) = data.batch(batch, net.steps, cfg.encoding, &mut rng, device)?;
        let out = net.forward(x, None, false)?;
        right += correct(&out.spk, &y, population_code)?;
        let counts: Vec<f32> = class_votes(&out.spk, population_code)?
            .into_data()
            .iter::<f32>()
            .collect();
        let labels: Vec<i64> = y.clone().into_data().iter::<i64>().collect();
        for (row, &label) in counts.chunks(outputs.max(1)).zip(&labels) {
            if let Some(sums) = class_sums.get_mut(label as usize) {
                sums.iter_mut()
                    .zip(row)
                    .for_each(|(s, &c)| *s += f64::from(c));
                class_samples[label as usize] += 1;
            }
        }
        loss_sum += loss_of(cfg.loss, population_code, out.spk, out.mem, y)?.into_scalar::<f64>();
        for (total, layer) in layer_totals.iter_mut().zip(&out.layers) {
            *total += layer.total.clone().into_scalar::<f64>();
        }
        on_event(Event::EvalBatch);
    }
    spikes += layer_totals.iter().sum::<f64>();
    let samples = n.max(1) as f64;
    Ok(EvalReport {
        accuracy: right as f64 / samples,
        loss: loss_sum / batches.len().max(1) as f64,
        samples: n,
        spikes_per_sample: spikes / samples,
        layers: net
            .layer_names
            .iter()
            .zip(&layer_totals)
            .map(|((name, neurons), total)| {
                (
                    name.clone(),
                    *neurons,
                    total / (samples * *neurons as f64 * net.steps as f64),
                )
            })
            .collect(),
        class_counts: class_sums
            .into_iter()
            .zip(class_samples)
            .map(|(sums, n)| sums.into_iter().map(|s| s / n as f64).collect())
            .collect(),
        population: cfg.population,
    })
}

/// Where the run's checkpoint lives inside `out_dir`.
pub fn checkpoint_path(out_dir: &Path) -> PathBuf {
    out_dir.join("checkpoint.safetensors")
}

/// A model, its optimiser and its history, ready to train (fresh or resumed).
pub struct Session {
    /// The network (on an autodiff device).
    pub net: SpikingNet,
    /// The optimiser with its state.
    pub optim: ModuleOptimizer,
    /// Epochs done so far.
    pub history: History,
    /// The network's configuration.
    pub net_config: SpikingNetConfig,
}

impl Session {
    /// A fresh session: the network initialised from `cfg.seed`.
    pub fn new(net_config: SpikingNetConfig, cfg: &TrainConfig, device: &Device) -> Result<Self> {
        device.seed(cfg.seed);
        Ok(Self {
            net: net_config.init(device)?,
            optim: cfg.optimizer.init(cfg.grad_clip),
            history: History::default(),
            net_config,
        })
    }

    /// Resumes from the checkpoint in `cfg.out_dir`: weights, optimiser state and history.
    pub fn resume(
        net_config: SpikingNetConfig,
        cfg: &TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        let path = checkpoint_path(&cfg.out_dir);
        let mut session = Self::new(net_config, cfg, device)?;
        let (net, meta) = checkpoint::load(&path, session.net, &session.net_config.describe())?;
        session.optim = checkpoint::load_optimizer(&path, session.optim, &net)?;
        session.net = net;
        session.history = History::load_json(cfg.out_dir.join("history.json"))?;
        // A crash after the history was written but before the checkpoint must not skip an epoch.
        session.history.truncate_to_epoch(meta.epoch);
        Ok(session)
    }
}

/// Trains until `cfg.epochs` epochs are done, checkpointing after each.
pub fn train(
    mut session: Session,
    train_data: &dyn Samples,
    test_data: &dyn Samples,
    cfg: &TrainConfig,
    device: &Device,
    on_event: &mut dyn FnMut(Event),
) -> Result<Session> {
    cfg.validate(&session.net_config)?;
    cfg.check_outputs(session.net.outputs(), train_data.num_classes())?;
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| Error::io(&cfg.out_dir, e))?;
    let n = cfg
        .train_limit
        .map_or(train_data.len(), |l| l.min(train_data.len()));
    let batch_size = cfg.batch_size.max(1);
    let batches_per_epoch = n.div_ceil(batch_size);
    let first_epoch = session.history.records.len() + 1;
    for epoch in first_epoch..=cfg.epochs {
        let started = Instant::now();
        // Seeding per epoch makes a resumed run draw exactly what an uninterrupted one would.
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64));
        device.seed(cfg.seed.wrapping_mul(31).wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        on_event(Event::EpochStart {
            epoch,
            batches: batches_per_epoch,
        });
        let (mut loss_sum, mut right) = (0.0f64, 0usize);
        let mut losses: Vec<f64> = session
            .history
            .records
            .iter()
            .map(|r| r.train_loss)
            .collect();
        for (b, batch) in order.chunks(batch_size).enumerate() {
            let global_step = (epoch - 1) * batches_per_epoch + b;
            let lr = cfg.schedule.lr_after(cfg.lr, global_step, &losses);
            let (x, y) =
                train_data.batch(batch, session.net.steps, cfg.encoding, &mut rng, device)?;
            let (loss, ok) = train_step(&mut session, x, y, cfg, lr, epoch, b + 1)?;
            loss_sum += loss;
            right += ok;
            session.history.batches.push(BatchRecord {
                epoch: (epoch - 1) as f64 + (b + 1) as f64 / batches_per_epoch as f64,
                loss,
                accuracy: ok as f64 / batch.len() as f64,
            });
            on_event(Event::Batch {
                batch: b + 1,
                loss,
                accuracy: ok as f64 / batch.len() as f64,
            });
        }
        let valid = session.net.valid();
        let report = evaluate(&valid, test_data, cfg, &device.clone().inner(), on_event)?;
        let train_loss = loss_sum / batches_per_epoch.max(1) as f64;
        losses.push(train_loss);
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
            extra: Default::default(),
        };
        session.history.records.push(record.clone());
        save(&session, cfg, epoch, (epoch * batches_per_epoch) as u64)?;
        on_event(Event::EpochEnd(record));
    }
    Ok(session)
}

/// One optimiser step (or several, with truncated BPTT); returns the loss and correct count.
fn train_step(
    session: &mut Session,
    x: Tensor<5>,
    y: Tensor<1, Int>,
    cfg: &TrainConfig,
    lr: f64,
    epoch: usize,
    step: usize,
) -> Result<(f64, usize)> {
    let steps = session.net.steps;
    let chunk = cfg.tbptt.unwrap_or(steps).clamp(1, steps);
    let static_input = x.dims()[0] == 1;
    let mut state = None;
    let (mut loss_total, mut spk_chunks) = (0.0, Vec::new());
    let mut start = 0;
    while start < steps {
        let len = chunk.min(steps - start);
        let out = if chunk == steps {
            // One chunk: the network may apply its static-input shortcut.
            session.net.forward(x.clone(), None, false)?
        } else {
            let xs = if static_input {
                let [_, b, c, h, w] = x.dims();
                x.clone().expand([len, b, c, h, w])
            } else {
                x.clone().narrow(0, start, len)
            };
            // An explicit (empty) state lets the chunk be shorter than the full sequence.
            session
                .net
                .forward(xs, Some(state.take().unwrap_or_default()), false)?
        };
        let population_code = cfg.population_code(session.net.outputs());
        let loss = loss_of(
            cfg.loss,
            population_code,
            out.spk.clone(),
            out.mem,
            y.clone(),
        )?;
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(Error::NonFinite { value, epoch, step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &session.net);
        session.net = session.optim.step(lr, session.net.clone(), grads);
        loss_total += value * len as f64 / steps as f64;
        spk_chunks.push(out.spk.detach());
        state = Some(out.state.detach());
        start += len;
    }
    let spk = Tensor::cat(spk_chunks, 0);
    let population_code = cfg.population_code(session.net.outputs());
    Ok((loss_total, correct(&spk, &y, population_code)?))
}

/// Writes the checkpoint and the history (both atomically).
fn save(session: &Session, cfg: &TrainConfig, epoch: usize, step: u64) -> Result<()> {
    let meta = CheckpointMeta {
        arch: session.net_config.describe(),
        epoch,
        step,
        config: run_config_json(&session.net_config, cfg),
        seed: cfg.seed,
    };
    checkpoint::save(
        checkpoint_path(&cfg.out_dir),
        &session.net,
        &session.optim,
        &meta,
    )?;
    session
        .history
        .write_json(cfg.out_dir.join("history.json"))?;
    session.history.write_csv(cfg.out_dir.join("history.csv"))?;
    Ok(())
}
