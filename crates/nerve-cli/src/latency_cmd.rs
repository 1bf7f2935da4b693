//! `nerve train --task latency`: BPLC + NOSO, latency-coded classification with neurons that
//! spike once at most (Jin et al., Complex & Intelligent Systems 2023).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use clap::Args;
use indicatif::ProgressBar;
use nerve::models::bplc::{BplcConfig, BplcNet};
use nerve::neurons::SrmOnceConfig;
use nerve::train::latency_trainer::{
    self, evaluate, LatencyEvalReport, LatencySession, LatencyTrainConfig,
};
use nerve::train::optimizer::OptimizerKind;
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{checkpoint_path, Event};
use nerve::viz::{spike_raster, write_history_curves, RasterLayer};
use nerve::{Error, Result};

use crate::train_cmd::TrainArgs;
use crate::train_data::{bar, load_data};

/// The classify task's default `--arch`, which the latency task does not read.
const CLASSIFY_ARCH: &str = "12C5-MP2-64C5-MP2-FC10";

/// Options of `nerve train --task latency` (BPLC + NOSO); the paper's values by default.
#[derive(Args, Debug, Clone)]
pub struct LatencyArgs {
    /// Latency task: the NOSONet, `<n>C<k>` (same padding), `MP<k>` (minimum-latency pooling),
    /// `FC<n>`; the paper's Fashion-MNIST network by default.
    #[arg(long, default_value = "32C5-MP2-64C5-MP2-FC600-FC10")]
    pub noso_arch: String,
    /// Latency task: membrane time constant τm of the SRM kernel, in steps.
    #[arg(long, default_value_t = 160.0)]
    pub noso_tau_m: f64,
    /// Latency task: synaptic time constant τs of the SRM kernel, in steps.
    #[arg(long, default_value_t = 40.0)]
    pub noso_tau_s: f64,
    /// Latency task: symmetric dual threshold θ (fire at u > θ or u < −θ).
    #[arg(long, default_value_t = 0.15)]
    pub noso_threshold: f64,
    /// Latency task: clamp of |∂t/∂u|.
    #[arg(long, default_value_t = 100.0)]
    pub noso_grad_clamp: f64,
    /// Latency task: pixel scale of the LIF input code.
    #[arg(long, default_value_t = 0.3)]
    pub noso_input_scale: f64,
    /// Latency task: standard deviation of the Gaussian noise on training pixels.
    #[arg(long, default_value_t = 0.05)]
    pub noso_noise: f64,
    /// Latency task: L2 weight decay (added to the gradient as WD·w, as torch's SGD).
    #[arg(long, default_value_t = 5e-3)]
    pub noso_weight_decay: f64,
}

fn next_run_dir(dataset: &str) -> PathBuf {
    let base = Path::new("runs").join(dataset);
    (1..)
        .map(|i| base.join(format!("latency-{i:03}")))
        .find(|p| !p.exists())
        .expect("an unused run directory")
}

/// A progress printer for the trainer's events.
fn progress() -> impl FnMut(Event) {
    let mut pb: Option<ProgressBar> = None;
    let (mut epoch, mut batches) = (0, 0);
    let mut started = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    let (mut loss_avg, mut acc_avg) = (0.0, 0.0);
    move |event| match event {
        Event::EpochStart {
            epoch: e,
            batches: n,
        } => {
            (epoch, batches, started) = (e, n, Instant::now());
            (loss_avg, acc_avg) = (0.0, 0.0);
            pb = Some(bar(n, format!("epoch {e}")));
        }
        Event::Batch {
            batch,
            loss,
            accuracy,
        } => {
            let n = batch as f64;
            loss_avg += (loss - loss_avg) / n;
            acc_avg += (accuracy - acc_avg) / n;
            let msg = format!("loss {loss_avg:.4} acc {:.2}%", 100.0 * acc_avg);
            if let Some(pb) = &pb {
                pb.set_message(msg.clone());
                pb.inc(1);
            }
            if !interactive && (batch % (batches / 20).max(1) == 0 || batch == batches) {
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
                "epoch {epoch}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.0} spikes/inference | {:.1} s",
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

/// Prints an evaluation: spikes per layer, then the two summary lines.
fn print_report(report: &LatencyEvalReport) {
    println!(
        "first output spike at step {:.1} on average; {:.2}% of samples without an output spike",
        report.mean_decision_step,
        100.0 * report.silent
    );
    for (name, neurons, spikes) in &report.layers {
        println!("  {name:<8} {neurons:>7} neurons  {spikes:>9.1} spikes/inference");
    }
    println!(
        "spikes over the whole window: {:.0} per inference",
        report.spikes_full_window
    );
    println!("spikes per inference: {:.0}", report.spikes_per_sample);
    println!("test accuracy: {:.2}%", 100.0 * report.accuracy);
}

/// The spikes of every layer for the first test image.
fn write_raster(path: &Path, net: &BplcNet, data: &dyn nerve::data::Samples) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let device = net.convs.first().map_or_else(
        || net.fcs[0].weight.val().device(),
        |c| c.weight.val().device(),
    );
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let (x, _) = data.batch(&[0], 1, nerve::data::Encoding::Direct, &mut rng, &device)?;
    let [_, b, c, h, w] = x.dims();
    let out = net.forward(x.reshape([b, c, h, w]))?;
    let steps = out.steps;
    let layers: Vec<RasterLayer> = out
        .layers
        .iter()
        .map(|l| RasterLayer {
            name: l.name.clone(),
            num_neurons: l.neurons,
            num_steps: steps,
            spikes: l
                .first_step
                .iter()
                .enumerate()
                .filter(|(_, &t)| t < steps)
                .map(|(n, &t)| (t, n))
                .collect(),
        })
        .collect();
    spike_raster(path, "NOSO spikes, first test image", &layers)
}

/// `nerve train --task latency`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let la = &args.latency;
    if args.arch != CLASSIFY_ARCH {
        return Err(Error::invalid(
            "--arch",
            "the latency task reads its network from --noso-arch",
        ));
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
    let net_config = BplcConfig {
        arch: la.noso_arch.clone(),
        input: [channels, rows, cols],
        steps: args.steps,
        neuron: SrmOnceConfig {
            tau_m: la.noso_tau_m,
            tau_s: la.noso_tau_s,
            threshold: la.noso_threshold,
            grad_clamp: la.noso_grad_clamp,
        },
        input_scale: la.noso_input_scale,
    };
    let cfg = LatencyTrainConfig {
        epochs: args.epochs,
        batch_size: args.data.batch_size,
        lr: args.lr,
        optimizer: OptimizerKind::parse(&args.optimizer)?,
        schedule: Schedule::parse(&args.schedule, batches, batches * args.epochs)?,
        grad_clip: args.grad_clip,
        weight_decay: la.noso_weight_decay,
        noise: la.noso_noise,
        seed: args.seed,
        out_dir: out_dir.clone(),
        train_limit: args.train_limit,
        test_limit: args.data.test_limit,
        dataset: dataset.clone(),
    };
    let infer_device = nerve::device::parse(&args.data.device)?;
    let device = infer_device.clone().autodiff();
    let session = if args.resume {
        let s = LatencySession::resume(&net_config, &cfg, &device)?;
        println!(
            "resuming {} after epoch {}",
            out_dir.display(),
            s.history.records.len()
        );
        s
    } else {
        LatencySession::new(&net_config, &cfg, &device)?
    };
    println!(
        "model: {} | {} epochs, batch {}, lr {:?}, {:?}, out {}",
        net_config.describe(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.optimizer,
        out_dir.display()
    );
    let started = Instant::now();
    let (session, last_report) = latency_trainer::train(
        session,
        data.train.as_ref(),
        data.test.as_ref(),
        &cfg,
        &device,
        &mut progress(),
    )?;
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());
    let net = session.net.valid();
    let curves = out_dir.join("curves.png");
    write_history_curves(
        &curves,
        &format!("BPLC+NOSO {} on {}", net_config.arch, data.name),
        &session.history,
    )?;
    let raster = out_dir.join("raster.png");
    write_raster(&raster, &net, data.test.as_ref())?;
    println!("checkpoint: {}", checkpoint_path(&out_dir).display());
    println!("history:    {}", out_dir.join("history.csv").display());
    println!("plots:      {} {}", curves.display(), raster.display());
    // The last epoch's test report is the trained network's; evaluate only when no epoch ran.
    let report = match last_report {
        Some(report) => report,
        None => evaluate(&net, data.test.as_ref(), &cfg, &infer_device, &mut |_| {})?,
    };
    print_report(&report);
    Ok(())
}
