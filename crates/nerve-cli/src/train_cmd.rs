//! `nerve train` and `nerve eval`: image classification with a spiking network.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nerve::data::events::dataset::{load_event_folder, EventFolderOptions};
use nerve::data::mnist::{load_dataset, load_embedded_mnist};
use nerve::data::{Encoding, Samples};
use nerve::models::spiking_net::SpikingNet;
use nerve::models::SpikingNetConfig;
use nerve::neurons::{FiringConfig, Reset};
use nerve::plot::{self, Panel, RasterLayer, Series};
use nerve::store::checkpoint;
use nerve::surrogate::Surrogate;
use nerve::train::history::History;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{
    self, checkpoint_path, evaluate, EvalReport, Event, LossKind, Session, TrainConfig,
};
use nerve::{Error, Result};
use rand::SeedableRng;

/// Options shared by `train` and `eval` that pick the data.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data set: `embedded` (a 6000/1000 MNIST subset inside the binary), `mnist`, `fashion-mnist`,
    /// or `nmnist` / `events` (event recordings in N-MNIST's folder layout, --data DIR with
    /// Train/<class>/ and Test/<class>/, binned into --steps frames)
    /// [train default: embedded; eval default: the data set the checkpoint was trained on].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory holding the IDX files (otherwise $NERVE_DATA, ../shared/data, /usr/share/datasets),
    /// or the event data folder.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N test samples.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Samples per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Backend: flex (pure-Rust CPU), or wgpu / cuda in builds with those features.
    #[arg(long, default_value = "flex")]
    pub device: String,
}

/// Options of `nerve train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Architecture string (see the README): convolution `<n>C<k>`, pooling `MP<k>`/`AP<k>`, `BN`, `DO<p>`, `FC<n>`.
    #[arg(long, default_value = "12C5-MP2-64C5-MP2-FC10")]
    arch: String,
    /// Epochs (in total; a resumed run continues up to this many).
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Time steps per sample.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Membrane decay β of every Leaky layer.
    #[arg(long, default_value_t = 0.5)]
    beta: f64,
    /// Learn β.
    #[arg(long)]
    learn_beta: bool,
    /// Firing threshold.
    #[arg(long, default_value_t = 1.0)]
    threshold: f64,
    /// Reset mechanism: subtract, zero, none.
    #[arg(long, default_value = "subtract")]
    reset: String,
    /// Surrogate gradient: atan, fast_sigmoid, sigmoid, triangular, spike_rate_escape, ste, sfs, sso.
    #[arg(long, default_value = "atan")]
    surrogate: String,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Optimiser: adam, adamw[:WD], sgd[:MOMENTUM].
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// Learning-rate schedule: constant, cosine, cosine-restarts:T0[:MULT], step:SIZE:GAMMA (periods in steps, or epochs as e.g. 1e).
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Clip the gradient norm.
    #[arg(long)]
    grad_clip: Option<f64>,
    /// Loss: ce-rate, ce-count, mse-count, ce-max-membrane.
    #[arg(long, default_value = "ce-rate")]
    loss: String,
    /// Input encoding: direct (pixels as current every step) or rate (Bernoulli spikes).
    #[arg(long, default_value = "direct")]
    encoding: String,
    /// Truncated BPTT: an optimiser step every K time steps.
    #[arg(long)]
    tbptt: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (default: runs/<dataset>/run-NNN).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Use only the first N training samples.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Gradient checkpointing: recompute memory-bound intermediate results in the backward pass
    /// instead of keeping them from the forward pass (less memory, more compute).
    #[arg(long)]
    checkpointing: bool,
}

/// Options of `nerve eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint written by `nerve train`.
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Also draw the mean output spike counts per true class to this PNG.
    #[arg(long)]
    class_counts: Option<PathBuf>,
}

/// A data set's two splits, whatever their kind.
struct Data {
    train: Box<dyn Samples>,
    test: Box<dyn Samples>,
    name: String,
    source: String,
}

/// Loads `name`; event folders are binned into `steps` frames, reading at most the samples the
/// limits let through.
fn load_data(
    name: &str,
    args: &DataArgs,
    steps: usize,
    train_limit: Option<usize>,
) -> Result<Data> {
    if name == "nmnist" || name == "events" {
        let dir = args.data.as_deref().ok_or_else(|| {
            Error::invalid(
                "--data",
                format!(
                    "--dataset {name} needs --data DIR (with Train/<class>/ and Test/<class>/)"
                ),
            )
        })?;
        let pb = bar(0, "reading".into());
        let options = EventFolderOptions {
            bins: steps,
            train_limit,
            test_limit: args.test_limit,
        };
        let splits = load_event_folder(dir, &options, &|done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })?;
        pb.finish_and_clear();
        println!(
            "events: {} train / {} test recordings, {:.0} events per recording, binned into {} frames of 2x{}x{}",
            splits.train.len(),
            splits.test.len(),
            (splits.train.events + splits.test.events) as f64
                / (splits.train.len() + splits.test.len()).max(1) as f64,
            steps,
            splits.train.height,
            splits.train.width
        );
        return Ok(Data {
            train: Box::new(splits.train),
            test: Box::new(splits.test),
            name: name.to_string(),
            source: splits.source.display().to_string(),
        });
    }
    let splits = match name {
        "embedded" => load_embedded_mnist(),
        name => load_dataset(name, args.data.as_deref()),
    }?;
    Ok(Data {
        train: Box::new(splits.train),
        test: Box::new(splits.test),
        name: splits.name,
        source: splits.source.to_string(),
    })
}

fn next_run_dir(dataset: &str) -> PathBuf {
    let base = Path::new("runs").join(dataset);
    (1..)
        .map(|i| base.join(format!("run-{i:03}")))
        .find(|p| !p.exists())
        .expect("an unused run directory")
}

fn parse_surrogate(name: &str) -> Result<Surrogate> {
    Surrogate::from_name(name).ok_or_else(|| {
        Error::invalid(
            "surrogate",
            format!("'{name}': expected atan, fast_sigmoid, sigmoid, triangular, spike_rate_escape, ste, sfs or sso"),
        )
    })
}

fn bar(len: usize, prefix: String) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
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

fn print_report(report: &EvalReport) {
    println!(
        "test accuracy: {:.2}% ({} samples)",
        100.0 * report.accuracy,
        report.samples
    );
    println!("spikes per inference: {:.1}", report.spikes_per_sample);
    println!("firing rate per layer (spikes per neuron per step):");
    for (name, neurons, rate) in &report.layers {
        println!("  {name:<22} {neurons:>6} neurons  {rate:.4}");
    }
}

/// Exponential moving average, so per-batch noise does not hide the trend.
fn smooth(points: impl Iterator<Item = (f64, f64)>, alpha: f64) -> Vec<(f64, f64)> {
    let mut avg = None;
    points
        .map(|(x, y)| {
            let a = avg.map_or(y, |a: f64| a + alpha * (y - a));
            avg = Some(a);
            (x, a)
        })
        .collect()
}

/// Draws the loss/accuracy curves of a run: training per batch (smoothed), test per epoch.
fn plot_history(path: &Path, title: &str, history: &History) -> Result<()> {
    let per_epoch = |f: &dyn Fn(&nerve::train::history::EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .records
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect()
    };
    let alpha = (20.0 / history.batches.len().max(1) as f64).clamp(0.02, 0.5);
    let train_loss = smooth(history.batches.iter().map(|b| (b.epoch, b.loss)), alpha);
    let train_acc = smooth(
        history
            .batches
            .iter()
            .map(|b| (b.epoch, 100.0 * b.accuracy)),
        alpha,
    );
    let panels = [
        Panel::new(
            "Loss",
            "loss",
            vec![
                Series::new("train (per batch, smoothed)", train_loss),
                Series::new("test (per epoch)", per_epoch(&|r| r.test_loss)),
            ],
        ),
        Panel::new(
            "Accuracy",
            "accuracy (%)",
            vec![
                Series::new("train (per batch, smoothed)", train_acc),
                Series::new("test (per epoch)", per_epoch(&|r| 100.0 * r.test_accuracy)),
            ],
        ),
    ];
    plot::panels(path, title, "epoch", &panels)
}

/// Draws the spikes of every layer for the first test sample.
fn plot_raster(
    path: &Path,
    net: &SpikingNet,
    data: &Data,
    device: &burn::tensor::Device,
) -> Result<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (x, y) = data
        .test
        .batch(&[0], net.steps, Encoding::Direct, &mut rng, device)?;
    let out = net.forward(x, None, true)?;
    let label = y.into_scalar::<i64>() as usize;
    let mut layers = Vec::new();
    for layer in &out.layers {
        let spikes = layer.spikes.clone().expect("recorded");
        let [steps, _, neurons] = spikes.dims();
        let values: Vec<f32> = spikes.into_data().iter::<f32>().collect();
        let points = values
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(i, _)| (i / neurons, i % neurons))
            .collect();
        layers.push(RasterLayer {
            name: layer.name.clone(),
            num_neurons: neurons,
            num_steps: steps,
            spikes: points,
        });
    }
    plot::spike_raster(
        path,
        &format!("Spike raster, test sample 0 (label {label})"),
        &layers,
    )?;
    Ok(label)
}

/// Draws the mean output spike counts per true class of an evaluation.
fn write_class_counts(
    path: &Path,
    report: &EvalReport,
    data: &dyn Samples,
    name: &str,
) -> Result<()> {
    nerve::viz::write_class_counts_png(
        path,
        &format!(
            "Output spikes per test sample by true class ({name}, {:.2}% correct)",
            100.0 * report.accuracy
        ),
        &data.class_names(),
        &report.class_counts,
    )
}

/// `nerve train`.
pub fn train(args: TrainArgs) -> Result<()> {
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
            ..FiringConfig::default()
        },
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
    plot_history(
        &curves,
        &format!("{} on {}", session.net_config.arch, data.name),
        &session.history,
    )?;
    let raster = out_dir.join("raster.png");
    plot_raster(&raster, &net, &data, &infer_device)?;
    let class_counts = out_dir.join("class_counts.png");
    write_class_counts(&class_counts, &report, data.test.as_ref(), &data.name)?;
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

/// `nerve eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let meta = checkpoint::load_meta(&args.checkpoint)?;
    let config = &meta.config;
    let bad = |what: &str| Error::Checkpoint {
        path: args.checkpoint.clone(),
        msg: format!("run configuration lacks '{what}'"),
    };
    let input: Vec<usize> =
        serde_json::from_value(config["input"].clone()).map_err(|_| bad("input"))?;
    let net_config = SpikingNetConfig {
        arch: config["arch"]
            .as_str()
            .ok_or_else(|| bad("arch"))?
            .to_string(),
        input: input.try_into().map_err(|_| bad("input"))?,
        steps: config["steps"].as_u64().ok_or_else(|| bad("steps"))? as usize,
        beta: config["beta"].as_f64().ok_or_else(|| bad("beta"))?,
        learn_beta: config["learn_beta"].as_bool().unwrap_or(false),
        firing: FiringConfig {
            threshold: config["threshold"]
                .as_f64()
                .ok_or_else(|| bad("threshold"))?,
            reset: config["reset"]
                .as_str()
                .and_then(Reset::from_name)
                .unwrap_or_default(),
            ..FiringConfig::default()
        },
    };
    let device = nerve::device::parse(&args.data.device)?;
    let net = net_config.init(&device)?;
    let (net, meta) = checkpoint::load(&args.checkpoint, net, &net_config.describe())?;
    let dataset = match (&args.data.dataset, config["dataset"].as_str()) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => name.to_string(),
        (None, None) => "embedded".into(),
    };
    let data = load_data(&dataset, &args.data, net_config.steps, Some(0))?;
    println!(
        "model: {} (epoch {}), data: {} from {}",
        meta.arch, meta.epoch, data.name, data.source
    );
    let encoding = match config["encoding"].as_str() {
        Some(s) if s.starts_with("Rate") => Encoding::Rate { gain: 1.0 },
        _ => Encoding::Direct,
    };
    let loss = match config["loss"].as_str() {
        Some("CeCount") => LossKind::CeCount,
        Some("MseCount") => LossKind::MseCount,
        Some("CeMaxMembrane") => LossKind::CeMaxMembrane,
        _ => LossKind::CeRate,
    };
    let cfg = TrainConfig {
        epochs: 0,
        batch_size: args.data.batch_size,
        lr: 0.0,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        grad_clip: None,
        seed: meta.seed,
        loss,
        encoding,
        tbptt: None,
        out_dir: PathBuf::new(),
        train_limit: None,
        test_limit: args.data.test_limit,
        dataset: dataset.clone(),
    };
    let pb = std::cell::RefCell::new(None::<ProgressBar>);
    let report = evaluate(&net, data.test.as_ref(), &cfg, &device, &mut |e| match e {
        Event::Evaluating { batches } => *pb.borrow_mut() = Some(bar(batches, "test".into())),
        Event::EvalBatch => {
            if let Some(pb) = pb.borrow().as_ref() {
                pb.inc(1)
            }
        }
        _ => {}
    })?;
    if let Some(pb) = pb.borrow_mut().take() {
        pb.finish_and_clear();
    }
    print_report(&report);
    if let Some(path) = &args.class_counts {
        write_class_counts(path, &report, data.test.as_ref(), &data.name)?;
        println!("class counts: {}", path.display());
    }
    Ok(())
}
