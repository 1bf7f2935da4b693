//! `nerve hw ...`: the OpenSpike accelerator simulator (reference cases and memory images).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use nerve::data::Encoding;
use nerve::hw::openspike::{self, compile, CompileOptions, Images, CLOCKS_PER_STEP};
use nerve::hw::openspike::{CLOCK_PERIOD_NS, MAX_IMAGE_STEPS, START_CLOCKS};
use nerve::{Error, Result};

use crate::train_data::{load_data, DataArgs};

/// Subcommands of `nerve hw`.
#[derive(Subcommand, Debug)]
pub enum HwCommand {
    /// Replay every case of an openspike-case-v1 file through the simulated OpenSpike datapath
    /// and compare every value; prints one line per case and exits with 1 on any mismatch.
    #[command(name = "openspike-check")]
    Check {
        /// The case file (e.g. ../shared/reference/openspike/cases-public.json).
        file: PathBuf,
    },
    /// Run the network held in a directory of OpenSpike memory images ($readmemh text) and
    /// print the output layer's spikes per step.
    #[command(name = "openspike-run")]
    Run {
        /// Directory of weights.hex, potentials.hex, betas.hex, spikeability.hex, spikes.hex,
        /// inputs.hex (and openspike.json).
        #[arg(long)]
        images: PathBuf,
        /// Time steps to run (default: every step the input image holds).
        #[arg(long)]
        steps: Option<usize>,
    },
    /// Map a checkpoint of two fully connected layers onto the accelerator (1-bit non-negative
    /// weights, β in eighths) and write its memory images.
    #[command(name = "openspike-compile")]
    Compile(Box<CompileArgs>),
    /// Train a network for the chip's own arithmetic (1-bit weights, initial potentials as
    /// biases, a binarised image at the first step), report its accuracy in float and on the
    /// simulated chip, and write its memory images.
    #[command(name = "openspike-train")]
    Train(Box<crate::openspike_train_cmd::TrainArgs>),
}

/// Options of `nerve hw openspike-compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Checkpoint written by `nerve train` (e.g. --arch FC128-FC10 on MNIST).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Directory to write the memory images into.
    #[arg(long)]
    out: PathBuf,
    /// Time steps of input to write (default: the checkpoint's, at most 64).
    #[arg(long)]
    steps: Option<usize>,
    /// Write test sample N of the data set, rate-coded, as the input (default: no input spikes).
    #[arg(long)]
    sample: Option<usize>,
    /// Also classify the first N test samples on the simulated chip and print the accuracy.
    #[arg(long)]
    evaluate: Option<usize>,
    /// A weight becomes 1 where it exceeds this fraction of its layer's largest weight.
    #[arg(long, default_value_t = 0.0)]
    weight_threshold: f64,
    /// Initial potential of the input neurons (230: each relays its input's first spike).
    #[arg(long, default_value_t = 230)]
    input_potential: u8,
    #[command(flatten)]
    data: DataArgs,
}

/// Runs a `nerve hw` subcommand.
pub fn run(command: HwCommand) -> Result<ExitCode> {
    match command {
        HwCommand::Check { file } => check(&file),
        HwCommand::Run { images, steps } => run_images(&images, steps),
        HwCommand::Compile(args) => compile_checkpoint(&args),
        HwCommand::Train(args) => crate::openspike_train_cmd::run(&args),
    }
}

fn check(file: &std::path::Path) -> Result<ExitCode> {
    let reports = openspike::check_file(file)?;
    let mut failed = 0;
    for r in &reports {
        let sizes: Vec<String> = r.sizes.iter().map(usize::to_string).collect();
        let shape = format!("({}, {} steps)", sizes.join("-"), r.steps);
        match &r.mismatch {
            None => println!("pass  {}  {shape}", r.name),
            Some(m) => {
                failed += 1;
                println!("FAIL  {}  {shape}  first mismatch: {m}", r.name);
            }
        }
    }
    println!("{} passed, {} failed", reports.len() - failed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_images(dir: &std::path::Path, steps: Option<usize>) -> Result<ExitCode> {
    let run = openspike::run_images(dir, steps)?;
    let l = run.layout;
    println!(
        "layout: {} input, {} hidden, {} output neurons; {} steps",
        l.inputs,
        l.hidden,
        l.outputs,
        run.trace.len()
    );
    let mut counts = vec![0usize; l.outputs];
    for (t, step) in run.trace.iter().enumerate() {
        let fired = |k: usize| step[k].spikes.iter().filter(|&&s| s).count();
        let bits: String = step[2]
            .spikes
            .iter()
            .map(|&s| if s { '1' } else { '0' })
            .collect();
        step[2]
            .spikes
            .iter()
            .zip(counts.iter_mut())
            .for_each(|(&s, c)| *c += usize::from(s));
        println!(
            "step {t:>3}: output {bits}  (input layer {} spikes, hidden {})",
            fired(0),
            fired(1)
        );
    }
    let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
    println!("output spike counts: {}", counts.join(" "));
    if let Some(first) = run.trace.first() {
        // A network from `openspike-train` is read out by its output potentials at step 0.
        let v = &first[2].potentials;
        let shown: Vec<String> = v.iter().map(u8::to_string).collect();
        println!(
            "output potentials at step 0: {} (largest: output {})",
            shown.join(" "),
            nerve::hw::openspike::train::predict(v)
        );
    }
    println!(
        "clocks: {} ({START_CLOCKS} + {CLOCKS_PER_STEP} x {}), {:.2} us at {CLOCK_PERIOD_NS} ns",
        run.clocks,
        run.trace.len(),
        run.time_ns as f64 / 1000.0
    );
    Ok(ExitCode::SUCCESS)
}

/// Input spikes `[sample][step][input]` and the samples' labels.
type Encoded = (Vec<Vec<Vec<bool>>>, Vec<i64>);

/// Rate-coded test samples as input spikes, with their labels.
fn encoded_samples(args: &CompileArgs, indices: &[usize], steps: usize) -> Result<Encoded> {
    let meta = nerve::store::checkpoint::load_meta(&args.checkpoint)?;
    let dataset = match (&args.data.dataset, meta.config["dataset"].as_str()) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) if !name.is_empty() => name.to_string(),
        _ => "embedded".into(),
    };
    let data = load_data(&dataset, &args.data, steps, Some(0))?;
    if let Some(&k) = indices.iter().find(|&&k| k >= data.test.len()) {
        return Err(Error::invalid(
            "--sample",
            format!(
                "{k}; the test set of {} has {} samples",
                data.name,
                data.test.len()
            ),
        ));
    }
    let device = burn::tensor::Device::flex();
    let mut rng = nerve::train::trainer::evaluation_rng(0);
    let mut samples = Vec::with_capacity(indices.len());
    let mut labels = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(args.data.batch_size.max(1)) {
        let encoding = Encoding::Rate { gain: 1.0 };
        let (x, y) = data.test.batch(chunk, steps, encoding, &mut rng, &device)?;
        let [t, b, c, h, w] = x.dims();
        let size = c * h * w;
        let values: Vec<f32> = x.into_data().iter::<f32>().collect();
        for s in 0..b {
            samples.push(
                (0..t)
                    .map(|step| {
                        let at = (step * b + s) * size;
                        values[at..at + size].iter().map(|&v| v > 0.5).collect()
                    })
                    .collect(),
            );
        }
        labels.extend(y.into_data().iter::<i64>());
    }
    Ok((samples, labels))
}

fn compile_checkpoint(args: &CompileArgs) -> Result<ExitCode> {
    let options = CompileOptions {
        weight_threshold: args.weight_threshold,
        input_potential: args.input_potential,
    };
    let c = compile::from_checkpoint(&args.checkpoint, &options)?;
    let steps = args.steps.unwrap_or(c.steps.min(MAX_IMAGE_STEPS));
    let layers = c.network.layers();
    println!(
        "OpenSpike: {} input, {} hidden, {} output neurons; 1-bit weights {:.1}% / {:.1}% ones",
        layers[0].neurons(),
        layers[1].neurons(),
        layers[2].neurons(),
        100.0 * c.density[0],
        100.0 * c.density[1]
    );
    for note in &c.notes {
        println!("note: {note}");
    }
    let inputs = match args.sample {
        Some(k) => encoded_samples(args, &[k], steps)?.0.remove(0),
        None => vec![vec![false; layers[0].inputs()]; steps],
    };
    let images = Images::encode(&c.network, &c.init, &inputs)?;
    openspike::write_images(&args.out, &images)?;
    println!(
        "wrote {} ({} steps of input{}; {} clocks, {:.2} us per inference at {CLOCK_PERIOD_NS} ns)",
        args.out.display(),
        steps,
        args.sample
            .map(|k| format!(" from test sample {k}"))
            .unwrap_or_default(),
        openspike::run_clocks(steps),
        openspike::run_time_ns(steps) as f64 / 1000.0
    );
    if let Some(n) = args.evaluate {
        let indices: Vec<usize> = (0..n).collect();
        let (samples, labels) = encoded_samples(args, &indices, steps)?;
        let mut right = 0;
        let mut spikes = 0;
        for (x, &label) in samples.iter().zip(&labels) {
            let (best, counts) = compile::classify(&c.network, &c.init, x)?;
            right += usize::from(best as i64 == label);
            spikes += counts.iter().sum::<usize>();
        }
        let n = samples.len().max(1) as f64;
        println!(
            "simulated chip: {:.2}% of {} test samples, {:.2} output spikes per inference",
            100.0 * right as f64 / n,
            samples.len(),
            spikes as f64 / n
        );
    }
    Ok(ExitCode::SUCCESS)
}
