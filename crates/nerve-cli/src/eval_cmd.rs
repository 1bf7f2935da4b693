//! `nerve eval`: a spiking-network checkpoint scored on a test set.

use std::path::PathBuf;

use clap::Args;
use indicatif::ProgressBar;
use nerve::hw::energy::{measure_dataset, EnergyCosts, Precision};
use nerve::hw::integer::{self, evaluate_integer};
use nerve::store::checkpoint;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::run_config::{
    encoding_from_run, loss_from_run, net_config_from_run, population_from_run,
};
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{evaluate, EvalReport, Event, TrainConfig};
use nerve::viz::{write_energy_png, write_eval_class_counts};
use nerve::{Error, Result};

use crate::train_data::{bar, load_data, DataArgs};

/// Options of `nerve eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long, help = crate::recipe_args::CONFIG_HELP)]
    config: Option<PathBuf>,
    /// Checkpoint written by `nerve train`.
    #[arg(long, required_unless_present = "integer", conflicts_with = "integer")]
    checkpoint: Option<PathBuf>,
    /// An integer program written by `nerve quantize`: run it with the integer engine instead.
    #[arg(long)]
    integer: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Also draw the mean output spike counts per true class to this PNG.
    #[arg(long)]
    class_counts: Option<PathBuf>,
    /// Also count spikes, synaptic operations and memory traffic per layer, estimate the energy
    /// per inference against the ANN twin, and draw it (see --energy-plot).
    #[arg(long)]
    energy: bool,
    /// A TOML table of per-operation costs in pJ replacing the 45 nm defaults (keys
    /// float_mac_pj, float_add_pj, int_add_pj, int_mult_pj, sram_read_pj_per_byte,
    /// sram_write_pj_per_byte).
    #[arg(long, requires = "energy")]
    energy_costs: Option<PathBuf>,
    /// Where --energy draws its bar chart (default: energy.png beside the checkpoint).
    #[arg(long, requires = "energy")]
    energy_plot: Option<PathBuf>,
}

/// Prints an evaluation: accuracy, spikes per inference and each layer's firing rate.
pub(crate) fn print_report(report: &EvalReport) {
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

/// `nerve eval --integer`: the integer engine on the program's data set.
fn eval_integer(args: &EvalArgs, path: &std::path::Path) -> Result<()> {
    let program = integer::load(path)?;
    let dataset = match (&args.data.dataset, program.dataset.as_str()) {
        (Some(name), _) => name.clone(),
        (None, "") => "embedded".into(),
        (None, name) => name.to_string(),
    };
    let data = load_data(&dataset, &args.data, program.steps, Some(0))?;
    println!(
        "integer program: {} ({} steps), data: {} from {}",
        program.source, program.steps, data.name, data.source
    );
    let encoding = program.input_encoding();
    let n = args
        .data
        .test_limit
        .map_or(data.test.len(), |l| l.min(data.test.len()));
    let pb = bar(n.div_ceil(args.data.batch_size.max(1)), "test".into());
    let started = std::time::Instant::now();
    let report = evaluate_integer(
        &program,
        data.test.as_ref(),
        encoding,
        args.data.batch_size,
        args.data.test_limit,
        &mut || pb.inc(1),
    )?;
    pb.finish_and_clear();
    println!(
        "test accuracy: {:.2}% ({} samples, integer engine, {:.2} s)",
        100.0 * report.accuracy,
        report.samples,
        started.elapsed().as_secs_f64()
    );
    println!("spikes per inference: {:.1}", report.spikes_per_sample);
    println!(
        "synaptic additions per inference: {:.4e}; multiply-accumulates: {:.4e}",
        report.acs_per_sample, report.macs_per_sample
    );
    Ok(())
}

/// `nerve eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    crate::recipe_args::announce(args.config.as_deref());
    if let Some(path) = &args.integer {
        return eval_integer(&args, path);
    }
    let checkpoint_path = args.checkpoint.clone().expect("clap requires --checkpoint");
    let meta = checkpoint::load_meta(&checkpoint_path)?;
    let config = &meta.config;
    let net_config = net_config_from_run(config).map_err(|e| Error::Checkpoint {
        path: checkpoint_path.clone(),
        msg: e.to_string(),
    })?;
    let device = nerve::device::parse(&args.data.device)?;
    let net = net_config.init(&device)?;
    let (net, meta) = checkpoint::load(&checkpoint_path, net, &net_config.describe())?;
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
    let encoding = encoding_from_run(config);
    let loss = loss_from_run(config);
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
        population: population_from_run(config),
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
        write_eval_class_counts(path, &report, &data.test.class_names(), &data.name)?;
        println!("class counts: {}", path.display());
    }
    if args.energy {
        let costs = match &args.energy_costs {
            Some(path) => EnergyCosts::load(path)?,
            None => EnergyCosts::default(),
        };
        let precision = Precision::of(
            net_config.weight_quant.map(|w| w.grid),
            net_config
                .firing
                .state_quant
                .as_ref()
                .map(|q| q.config.num_bits),
        );
        let batches = cfg
            .test_limit
            .map_or(data.test.len(), |l| l.min(data.test.len()));
        let pb = bar(batches.div_ceil(cfg.batch_size.max(1)), "energy".into());
        let energy = measure_dataset(
            &net,
            data.test.as_ref(),
            &cfg,
            precision,
            &device,
            &mut || pb.inc(1),
        )?;
        pb.finish_and_clear();
        print!("{}", energy.table(&costs));
        let plot = args.energy_plot.clone().unwrap_or_else(|| {
            checkpoint_path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("energy.png")
        });
        write_energy_png(
            &plot,
            &format!(
                "Energy per inference by layer: {} on {}",
                net_config.arch, data.name
            ),
            &energy,
            &costs,
        )?;
        println!("energy plot: {}", plot.display());
    }
    Ok(())
}
