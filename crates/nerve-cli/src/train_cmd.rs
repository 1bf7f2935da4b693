//! `nerve train`: image classification with a spiking network.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use clap::Args;
use indicatif::ProgressBar;
use nerve::data::Encoding;
use nerve::models::SpikingNetConfig;
use nerve::neurons::{FiringConfig, Reset};
use nerve::quant::{StateQuant, StateQuantConfig, WeightQuantConfig};
use nerve::surrogate::Surrogate;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{
    self, checkpoint_path, evaluate, Event, LossKind, Session, TrainConfig,
};
use nerve::viz::{write_eval_class_counts, write_history_curves, write_sample_raster};
use nerve::{Error, Result};

use crate::eval_cmd::print_report;
use crate::train_data::{bar, load_data, DataArgs};

/// Options of `nerve train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// What the network learns: `classify` (class labels from spike counts, the default),
    /// `regression` (membrane trajectories against targets) or `latency` (first-spike times).
    #[arg(long, default_value = "classify")]
    pub(crate) task: String,
    #[arg(long, help = crate::recipe_args::CONFIG_HELP)]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Architecture string (see the README): convolution `<n>C<k>`, pooling `MP<k>`/`AP<k>`, `BN`, `DO<p>`, `FC<n>`.
    #[arg(long, default_value = "12C5-MP2-64C5-MP2-FC10")]
    pub(crate) arch: String,
    /// Epochs (in total; a resumed run continues up to this many).
    #[arg(long, default_value_t = 1)]
    pub(crate) epochs: usize,
    /// Time steps per sample.
    #[arg(long, default_value_t = 25)]
    pub(crate) steps: usize,
    /// Membrane decay β of every Leaky layer.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) beta: f64,
    /// Learn β.
    #[arg(long)]
    pub(crate) learn_beta: bool,
    /// Firing threshold.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) threshold: f64,
    /// Reset mechanism: subtract, zero, none.
    #[arg(long, default_value = "subtract")]
    pub(crate) reset: String,
    /// Surrogate gradient: atan, fast_sigmoid, sigmoid, triangular, spike_rate_escape, ste, sfs, sso; `NAME:K` sets its constant (e.g. fast_sigmoid:13.84).
    #[arg(long, default_value = "atan")]
    pub(crate) surrogate: String,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-2)]
    pub(crate) lr: f64,
    /// Optimiser: adam, adamw[:WD], sgd[:MOMENTUM].
    #[arg(long, default_value = "adam")]
    pub(crate) optimizer: String,
    /// Learning-rate schedule: constant, cosine, cosine-restarts:T0[:MULT], step:SIZE:GAMMA, periodic-cosine:T_MAX (QSNN's periodic boosting), loss-dependent[:SCHEDULE] (halved after an epoch whose loss rose); periods in steps, or epochs as e.g. 10e.
    #[arg(long, default_value = "constant")]
    pub(crate) schedule: String,
    /// Clip the gradient norm.
    #[arg(long)]
    pub(crate) grad_clip: Option<f64>,
    /// Loss: ce-rate, ce-count, mse-count[:CORRECT:INCORRECT] (e.g. mse-count:0.8:0.2), ce-max-membrane.
    #[arg(long, default_value = "ce-rate")]
    pub(crate) loss: String,
    /// Population code: N output neurons vote for each class, in contiguous groups (the last
    /// layer needs N × classes neurons, e.g. FC500 for 10 classes of 50); for ce-rate, ce-count
    /// and mse-count, the accuracy and the class-count plot.
    #[arg(long)]
    pub(crate) population: Option<usize>,
    /// Input encoding: direct (pixels as current every step) or rate (Bernoulli spikes).
    #[arg(long, default_value = "direct")]
    pub(crate) encoding: String,
    /// Truncated BPTT: an optimiser step every K time steps.
    #[arg(long)]
    pub(crate) tbptt: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output directory (default: runs/<dataset>/run-NNN).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint.
    #[arg(long, requires = "out")]
    pub(crate) resume: bool,
    /// Use only the first N training samples.
    #[arg(long)]
    pub(crate) train_limit: Option<usize>,
    /// Quantization-aware training of the weights: a bit width 1..8 (symmetric, scale max|W|),
    /// or `ternary` (absmean); add `:channel` for a scale per output channel and `:learned` to
    /// learn the scale, e.g. `4`, `4:channel:learned`.
    #[arg(long)]
    pub(crate) weight_bits: Option<String>,
    /// Quantize every membrane to 2^N levels each step (snnTorch's `state_quant`), N in 1..8.
    #[arg(long)]
    pub(crate) state_bits: Option<u32>,
    /// Where the state levels lie: uniform, threshold (non-uniform, dense near the threshold) or
    /// zero (non-uniform, dense near zero).
    #[arg(long, default_value = "uniform")]
    pub(crate) state_levels: String,
    /// Gradient checkpointing: recompute memory-bound intermediate results in the backward pass
    /// instead of keeping them from the forward pass (less memory, more compute).
    #[arg(long)]
    pub(crate) checkpointing: bool,
    #[command(flatten)]
    pub(crate) regression: crate::regression_cmd::RegressionArgs,
    #[command(flatten)]
    pub(crate) latency: crate::latency_cmd::LatencyArgs,
}

fn next_run_dir(dataset: &str) -> PathBuf {
    let base = Path::new("runs").join(dataset);
    (1..)
        .map(|i| base.join(format!("run-{i:03}")))
        .find(|p| !p.exists())
        .expect("an unused run directory")
}

fn parse_surrogate(name: &str) -> Result<Surrogate> {
    Surrogate::parse(name).ok_or_else(|| {
        Error::invalid(
            "surrogate",
            format!("'{name}': expected atan, fast_sigmoid, sigmoid, triangular, spike_rate_escape, ste, sfs or sso, optionally with its constant, e.g. fast_sigmoid:13.84"),
        )
    })
}

/// The state quantizer `--state-bits` and `--state-levels` ask for.
fn state_quant(bits: Option<u32>, levels: &str, threshold: f64) -> Result<Option<StateQuant>> {
    let Some(bits) = bits else {
        return Ok(None);
    };
    let mut config = StateQuantConfig::new(bits, threshold);
    (config.uniform, config.thr_centered) = match levels {
        "uniform" => (true, true),
        "threshold" => (false, true),
        "zero" => (false, false),
        other => {
            return Err(Error::invalid(
                "state levels",
                format!("'{other}': expected uniform, threshold or zero"),
            ))
        }
    };
    config.init().map(Some)
}

/// A progress printer for the trainer's events.
fn progress() -> impl FnMut(Event) {
    let mut pb: Option<ProgressBar> = None;
    let mut epoch = 0;
    let mut batches = 0;
    let mut started = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    let (mut loss_avg, mut acc_avg) = (0.0, 0.0);
    move |event| match event {
        Event::EpochStart {
            epoch: e,
            batches: n,
        } => {
            epoch = e;
            batches = n;
            started = Instant::now();
            (loss_avg, acc_avg) = (0.0, 0.0);
            pb = Some(bar(n, format!("epoch {e}")));
        }
        Event::Batch {
            batch,
            loss,
            accuracy,
        } => {
            // Running averages over the epoch read better than one noisy batch.
            let n = batch as f64;
            loss_avg += (loss - loss_avg) / n;
            acc_avg += (accuracy - acc_avg) / n;
            let msg = format!("loss {loss_avg:.4} acc {:.2}%", 100.0 * acc_avg);
            if let Some(pb) = &pb {
                pb.set_message(msg.clone());
                pb.inc(1);
            }
            // A bar is invisible in a log file; print a plain line every tenth of the epoch there.
            if !interactive && (batch % (batches / 10).max(1) == 0 || batch == batches) {
                println!(
                    "epoch {epoch} batch {batch}/{batches}: {msg} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Event::Evaluating { batches } => {
            if let Some(pb) = pb.take() {
                pb.finish();
            }
            pb = Some(bar(batches, "test".into()));
        }
        Event::EvalBatch => {
            if let Some(pb) = &pb {
                pb.inc(1);
            }
        }
        Event::EpochEnd(r) => {
            if let Some(pb) = pb.take() {
                pb.finish_and_clear();
            }
            println!(
                "epoch {epoch}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.0} spikes/sample | {:.1} s",
                r.train_loss,
                100.0 * r.train_accuracy,
                r.test_loss,
                100.0 * r.test_accuracy,
                r.spikes_per_sample,
                r.seconds
            );
        }
    }
}

/// `nerve train`.
pub fn train(args: TrainArgs) -> Result<()> {
    crate::recipe_args::announce(args.config.as_deref());
    match args.task.as_str() {
        "classify" => {}
        "regression" => return crate::regression_cmd::train(&args),
        "latency" => return crate::latency_cmd::train(&args),
        other => {
            return Err(Error::invalid(
                "task",
                format!("'{other}': expected classify, regression or latency"),
            ))
        }
    }
    let dataset = args
        .data
        .dataset
        .clone()
        .unwrap_or_else(|| "embedded".into());
    let data = load_data(&dataset, &args.data, args.steps, args.train_limit)?;
    let [channels, rows, cols] = data.train.input_shape();
    println!(
        "data: {} from {} ({} train, {} test, {channels}x{rows}x{cols})",
        data.name,
        data.source,
        data.train.len(),
        data.test.len(),
    );
    let out_dir = args.out.clone().unwrap_or_else(|| next_run_dir(&dataset));
    if !args.resume && checkpoint_path(&out_dir).exists() {
        return Err(Error::invalid(
            "--out",
            format!("{} already holds a checkpoint; pass --resume to continue it or choose another --out", out_dir.display()),
        ));
    }
    let train_n = args
        .train_limit
        .map_or(data.train.len(), |l| l.min(data.train.len()));
    let batches = train_n.div_ceil(args.data.batch_size.max(1));
    let reset = Reset::from_name(&args.reset).ok_or_else(|| {
        Error::invalid(
            "reset",
            format!("'{}': expected subtract, zero or none", args.reset),
        )
    })?;
    let net_config = SpikingNetConfig {
        arch: args.arch.clone(),
        input: [channels, rows, cols],
        steps: args.steps,
        beta: args.beta,
        learn_beta: args.learn_beta,
        firing: FiringConfig {
            threshold: args.threshold,
            surrogate: parse_surrogate(&args.surrogate)?,
            reset,
            state_quant: state_quant(args.state_bits, &args.state_levels, args.threshold)?,
            ..FiringConfig::default()
        },
        weight_quant: args
            .weight_bits
            .as_deref()
            .map(WeightQuantConfig::parse)
            .transpose()?,
    };
    let encoding = match args.encoding.as_str() {
        "direct" => Encoding::Direct,
        "rate" => Encoding::Rate { gain: 1.0 },
        other => {
            return Err(Error::invalid(
                "encoding",
                format!("'{other}': expected direct or rate"),
            ))
        }
    };
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch_size: args.data.batch_size,
        lr: args.lr,
        optimizer: OptimizerKind::parse(&args.optimizer)?,
        schedule: Schedule::parse(&args.schedule, batches, batches * args.epochs)?,
        grad_clip: args.grad_clip,
        seed: args.seed,
        loss: LossKind::parse(&args.loss)?,
        encoding,
        tbptt: args.tbptt,
        out_dir: out_dir.clone(),
        train_limit: args.train_limit,
        test_limit: args.data.test_limit,
        dataset: dataset.clone(),
        population: args.population,
    };
    let infer_device = nerve::device::parse(&args.data.device)?;
    let device = if args.checkpointing {
        infer_device.clone().autodiff().gradient_checkpointing()
    } else {
        infer_device.clone().autodiff()
    };
    let session = if args.resume {
        let s = Session::resume(net_config, &cfg, &device)?;
        println!(
            "resuming {} after epoch {}",
            out_dir.display(),
            s.history.records.len()
        );
        s
    } else {
        Session::new(net_config, &cfg, &device)?
    };
    println!(
        "model: {} | {} epochs, batch {}, lr {:?}, out {}",
        session.net_config.describe(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        out_dir.display()
    );
    let started = Instant::now();
    let session = trainer::train(
        session,
        data.train.as_ref(),
        data.test.as_ref(),
        &cfg,
        &device,
        &mut progress(),
    )?;
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let net = session.net.valid();
    let report = evaluate(&net, data.test.as_ref(), &cfg, &infer_device, &mut |_| {})?;
    print_report(&report);
    let curves = out_dir.join("curves.png");
    write_history_curves(
        &curves,
        &format!("{} on {}", session.net_config.arch, data.name),
        &session.history,
    )?;
    let raster = out_dir.join("raster.png");
    write_sample_raster(&raster, &net, data.test.as_ref(), 0, &infer_device)?;
    let class_counts = out_dir.join("class_counts.png");
    write_eval_class_counts(&class_counts, &report, &data.test.class_names(), &data.name)?;
    println!("checkpoint: {}", checkpoint_path(&out_dir).display());
    println!("history:    {}", out_dir.join("history.csv").display());
    println!(
        "plots:      {} {} {}",
        curves.display(),
        raster.display(),
        class_counts.display()
    );
    Ok(())
}
