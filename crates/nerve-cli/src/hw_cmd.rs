//! `nerve hw ...`: the OpenSpike accelerator simulator (reference cases and memory images).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use nerve::hw::openspike::{self, CLOCKS_PER_STEP, CLOCK_PERIOD_NS, START_CLOCKS};
use nerve::Result;

/// Subcommands of `nerve hw`.
#[derive(Subcommand, Debug)]
pub enum HwCommand {
    /// Replay every case of an openspike-case-v1 file through the simulated OpenSpike datapath
    /// and compare every value; prints one line per case and exits with 1 on any mismatch.
    OpenspikeCheck {
        /// The case file (e.g. ../shared/reference/openspike/cases-public.json).
        file: PathBuf,
    },
    /// Run the network held in a directory of OpenSpike memory images ($readmemh text) and
    /// print the output layer's spikes per step.
    OpenspikeRun {
        /// Directory of weights.hex, potentials.hex, betas.hex, spikeability.hex, spikes.hex,
        /// inputs.hex (and openspike.json).
        #[arg(long)]
        images: PathBuf,
        /// Time steps to run (default: every step the input image holds).
        #[arg(long)]
        steps: Option<usize>,
    },
}

/// Runs a `nerve hw` subcommand.
pub fn run(command: HwCommand) -> Result<ExitCode> {
    match command {
        HwCommand::OpenspikeCheck { file } => check(&file),
        HwCommand::OpenspikeRun { images, steps } => run_images(&images, steps),
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
    println!(
        "clocks: {} ({START_CLOCKS} + {CLOCKS_PER_STEP} x {}), {:.2} us at {CLOCK_PERIOD_NS} ns",
        run.clocks,
        run.trace.len(),
        run.time_ns as f64 / 1000.0
    );
    Ok(ExitCode::SUCCESS)
}
