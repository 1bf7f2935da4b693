//! `nerve train --task regression`: snnTorch's regression tutorials. A network whose output
//! membrane follows target series over time (Part I: generated trajectories, or inputs and
//! targets from CSV / NPY files), or class labels recast as regression targets on spike counts
//! or membrane levels (Part II, RLeaky neurons on MNIST).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use clap::Args;
use nerve::data::series_files::load_series_pair;
use nerve::data::trajectories::{TrajectoryConfig, TrajectoryKind};
use nerve::data::{Encoding, Samples};
use nerve::models::regression_net::{RegressionModelKind, RegressionNetConfig};
use nerve::neurons::{FiringConfig, Reset};
use nerve::surrogate::Surrogate;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::regression::{
    self, evaluate, RegressionConfig, RegressionData, RegressionEvent, RegressionLoss,
    RegressionSession,
};
use nerve::train::schedule::Schedule;
use nerve::train::trainer::checkpoint_path;
use nerve::viz::regression::{write_regression_curves, write_regression_png};
use nerve::{Error, Result};

use crate::train_cmd::TrainArgs;
use crate::train_data::load_data;

/// Options of `nerve train --task regression` (with the shared ones: `--steps` is the number of
/// time steps of generated trajectories and of labelled images, ignored for files, which set
/// their own; `--epochs` counts passes over the training samples, so with the tutorial's one
/// trajectory an epoch is one optimiser step, an "iteration"; `--beta`, `--threshold`,
/// `--learn-beta`, `--reset` and `--surrogate` set the hidden layers; `--loss` is
/// `mse-membrane` (the default for series; the classifier's default `ce-rate` reads as it),
/// `mse-count[:C:I]` or `mse-membrane:ON:OFF` for labels; `--dataset` picks labelled data).
#[derive(Args, Debug)]
pub struct RegressionArgs {
    /// Regression network: `leaky` (Part I: FC-LIF-FC-LIF-FC and a leaky integrator output
    /// with no reset), `leaky-published` (the same with layer 2 run through the output neuron,
    /// as the code that printed the tutorial's figure did) or `rleaky` (Part II:
    /// FC-RLIF-FC-RLIF, all-to-all feedback).
    #[arg(long, default_value = "leaky")]
    pub(crate) model: String,
    /// Hidden neurons per layer of the regression network.
    #[arg(long, default_value_t = 128)]
    pub(crate) hidden: usize,
    /// Generated target of Part I: `sqrt` (sqrt(slope·ramp)) or `linear` (the ramp itself).
    #[arg(long, default_value = "sqrt")]
    pub(crate) trajectory: String,
    /// Number of generated trajectories.
    #[arg(long, default_value_t = 1)]
    pub(crate) trajectories: usize,
    /// End point of every generated ramp instead of a draw from U(0, 1) (the tutorial's sample
    /// under torch.manual_seed(0) has 0.4963).
    #[arg(long)]
    pub(crate) trajectory_end: Option<f64>,
    /// Slope of the sqrt target instead of a draw from U(0, 1) (0.7682 under torch.manual_seed(0)).
    #[arg(long)]
    pub(crate) trajectory_slope: Option<f64>,
    /// Regression inputs `[T, N, F]` from a .npy or .csv file (rows step,sample,values...).
    #[arg(long, requires = "targets")]
    pub(crate) inputs: Option<PathBuf>,
    /// Regression targets `[T, N, O]` for the output membrane, .npy or .csv (with --inputs).
    #[arg(long, requires = "inputs")]
    pub(crate) targets: Option<PathBuf>,
    /// Draw each hidden neuron's β and threshold, and the output's β, from U(0, 1) (Part I)
    /// instead of --beta and --threshold.
    #[arg(long)]
    pub(crate) random_neurons: bool,
}

/// `nerve train --task regression`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let reg = &args.regression;
    if args.tbptt.is_some() || args.weight_bits.is_some() {
        return Err(Error::invalid(
            "task",
            "regression supports neither --tbptt nor --weight-bits",
        ));
    }
    if args.encoding != "direct" {
        return Err(Error::invalid(
            "encoding",
            format!("'{}': regression feeds its inputs directly", args.encoding),
        ));
    }
    let kind = RegressionModelKind::parse(&reg.model)?;
    // The data: files, a labelled data set, or the tutorial's generated trajectories.
    let series;
    let labelled;
    let (train_limited, test_limited);
    let (train_data, test_data, name) = if let (Some(x), Some(y)) = (&reg.inputs, &reg.targets) {
        series = load_series_pair(x, y)?;
        println!(
            "data: {} -> {} ({} series of {} steps, {} inputs, {} targets)",
            x.display(),
            y.display(),
            series.len(),
            series.steps(),
            series.features(),
            series.outputs()
        );
        let d = RegressionData::Series(&series);
        (d, d, "files".to_string())
    } else if let Some(dataset) = &args.data.dataset {
        labelled = load_data(dataset, &args.data, args.steps, args.train_limit)?;
        train_limited = Limited(labelled.train.as_ref(), args.train_limit);
        test_limited = Limited(labelled.test.as_ref(), args.data.test_limit);
        println!(
            "data: {} from {} ({} train, {} test)",
            labelled.name,
            labelled.source,
            train_limited.len(),
            test_limited.len()
        );
        (
            RegressionData::Labelled(&train_limited),
            RegressionData::Labelled(&test_limited),
            labelled.name.clone(),
        )
    } else {
        let config = TrajectoryConfig {
            kind: TrajectoryKind::parse(&reg.trajectory)?,
            steps: args.steps,
            samples: reg.trajectories,
            seed: args.seed,
            end: reg.trajectory_end,
            slope: reg.trajectory_slope,
        };
        series = config.generate()?;
        println!(
            "data: {} {} trajectory(ies) of {} steps (evaluated on themselves, as the tutorial)",
            series.len(),
            config.kind.name(),
            series.steps()
        );
        let d = RegressionData::Series(&series);
        (d, d, format!("{}-trajectory", config.kind.name()))
    };
    let steps = match train_data {
        RegressionData::Series(s) => s.steps(),
        RegressionData::Labelled(_) => args.steps,
    };
    let loss = match (args.loss.as_str(), train_data) {
        ("ce-rate", RegressionData::Series(_)) => RegressionLoss::MseMembrane,
        ("ce-rate", RegressionData::Labelled(_)) => RegressionLoss::parse("mse-count:0.8:0.2")?,
        (spec, _) => RegressionLoss::parse(spec)?,
    };
    let reset = Reset::from_name(&args.reset).ok_or_else(|| {
        Error::invalid(
            "reset",
            format!("'{}': expected subtract, zero or none", args.reset),
        )
    })?;
    let surrogate = Surrogate::parse(&args.surrogate).ok_or_else(|| {
        Error::invalid(
            "surrogate",
            format!("'{}': expected atan, fast_sigmoid, sigmoid, triangular, spike_rate_escape, ste, sfs or sso, optionally NAME:K", args.surrogate),
        )
    })?;
    let net_config = RegressionNetConfig {
        kind,
        inputs: train_data.features(),
        hidden: reg.hidden,
        outputs: train_data.outputs(),
        steps,
        beta: args.beta,
        learn_beta: args.learn_beta,
        random_neurons: reg.random_neurons,
        firing: FiringConfig {
            threshold: args.threshold,
            surrogate,
            reset,
            ..FiringConfig::default()
        },
        seed: args.seed,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| {
        let base = PathBuf::from("runs").join(format!("regression-{name}"));
        (1..)
            .map(|i| base.join(format!("run-{i:03}")))
            .find(|p| !p.exists())
            .unwrap_or(base)
    });
    if !args.resume && checkpoint_path(&out_dir).exists() {
        return Err(Error::invalid(
            "--out",
            format!("{} already holds a checkpoint; pass --resume to continue it or choose another --out", out_dir.display()),
        ));
    }
    let batch_size = args.data.batch_size.max(1);
    let batches = train_data.len().div_ceil(batch_size);
    let cfg = RegressionConfig {
        epochs: args.epochs,
        batch_size,
        lr: args.lr,
        optimizer: OptimizerKind::parse(&args.optimizer)?,
        schedule: Schedule::parse(&args.schedule, batches, batches * args.epochs)?,
        grad_clip: args.grad_clip,
        seed: args.seed,
        loss,
        out_dir: out_dir.clone(),
        dataset: name.clone(),
    };
    let infer_device = nerve::device::parse(&args.data.device)?;
    let device = if args.checkpointing {
        infer_device.clone().autodiff().gradient_checkpointing()
    } else {
        infer_device.clone().autodiff()
    };
    let session = if args.resume {
        let s = RegressionSession::resume(net_config, &cfg, &device)?;
        println!(
            "resuming {} after epoch {}",
            out_dir.display(),
            s.history.records.len()
        );
        s
    } else {
        RegressionSession::new(net_config, &cfg, &device)?
    };
    println!(
        "model: {} | loss {} | {} epochs, batch {}, lr {:?}, out {}",
        session.net_config.describe(),
        cfg.loss.spec(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        out_dir.display()
    );
    let started = Instant::now();
    let session = regression::train(
        session,
        train_data,
        test_data,
        &cfg,
        &device,
        &mut progress(cfg.epochs),
    )?;
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let net = session.net.valid();
    let report = evaluate(&net, test_data, &cfg, steps, &infer_device)?;
    let plot = out_dir.join("regression.png");
    if let Some(trace) = &report.trace {
        let title = format!("{}: output membrane vs target", kind.name());
        write_regression_png(&plot, &title, trace)?;
    }
    let curves = out_dir.join("curves.png");
    write_regression_curves(
        &curves,
        &format!("regression {} on {name}", kind.name()),
        &session.history,
    )?;
    println!("checkpoint: {}", checkpoint_path(&out_dir).display());
    println!("history:    {}", out_dir.join("history.csv").display());
    println!("plots:      {} {}", plot.display(), curves.display());
    println!("hidden spikes per sample: {:.1}", report.spikes_per_sample);
    println!("evaluation loss: {:.4e}", report.loss);
    if let Some(acc) = report.accuracy {
        println!("test accuracy: {:.2}%", 100.0 * acc);
    }
    if let Some(l1) = report.l1 {
        println!("mean L1: {l1:.2e}");
    }
    if let Some(rel) = report.relative_error {
        println!("relative error: {rel:.2e}");
    }
    Ok(())
}

/// The first `limit` samples of a data set (`--train-limit`, `--test-limit`).
struct Limited<'a>(&'a dyn Samples, Option<usize>);

impl Samples for Limited<'_> {
    fn len(&self) -> usize {
        self.1.map_or(self.0.len(), |n| n.min(self.0.len()))
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn input_shape(&self) -> [usize; 3] {
        self.0.input_shape()
    }
    fn class_names(&self) -> Vec<String> {
        self.0.class_names()
    }
    fn batch(
        &self,
        indices: &[usize],
        steps: usize,
        encoding: Encoding,
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> Result<(Tensor<5>, Tensor<1, Int>)> {
        self.0.batch(indices, steps, encoding, rng, device)
    }
}

/// A progress printer: about ten lines per run (or per epoch, for long epochs).
fn progress(epochs: usize) -> impl FnMut(RegressionEvent) {
    let every = epochs.div_ceil(10).max(1);
    let mut batches = 0;
    let mut epoch = 0;
    let mut loss_avg = 0.0;
    let mut started = Instant::now();
    move |event| match event {
        RegressionEvent::EpochStart {
            epoch: e,
            batches: n,
        } => {
            (epoch, batches, loss_avg) = (e, n, 0.0);
            started = Instant::now();
        }
        RegressionEvent::Batch { batch, loss } => {
            loss_avg += (loss - loss_avg) / batch as f64;
            if batches >= 20 && (batch % (batches / 10) == 0 || batch == batches) {
                println!(
                    "epoch {epoch} batch {batch}/{batches}: loss {loss_avg:.4e} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        RegressionEvent::EpochEnd(r) => {
            if r.epoch % every == 0 || r.epoch == epochs || r.epoch == 1 {
                let metric = match r.extra.get("relative_error") {
                    Some(e) => format!("relative error {e:.3e}"),
                    None => format!("test acc {:.2}%", 100.0 * r.test_accuracy),
                };
                println!(
                    "epoch {}: train loss {:.4e} | eval loss {:.4e} {metric} | {:.2} s",
                    r.epoch, r.train_loss, r.test_loss, r.seconds
                );
            }
        }
    }
}
