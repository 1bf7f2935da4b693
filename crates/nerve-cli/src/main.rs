//! `nerve`: train, evaluate and check spiking neural networks from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod eval_cmd;
mod events_cmd;
mod events_viz_cmd;
mod hw_cmd;
mod latency_cmd;
mod lm_cmd;
mod nir_cmd;
mod openspike_train_cmd;
mod quantize_cmd;
mod recipe_args;
mod reference_check;
mod regression_cmd;
mod retina_cmd;
mod serve_cmd;
mod train_cmd;
mod train_data;

/// Spiking neural networks in Rust.
#[derive(Parser)]
#[command(name = "nerve", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a spiking network on images (default: the tutorial conv SNN on embedded MNIST).
    Train(Box<train_cmd::TrainArgs>),
    /// Evaluate a checkpoint (or an integer program, --integer) on a test set.
    Eval(eval_cmd::EvalArgs),
    /// Convert a trained checkpoint to an integer-only program (.nq) for `eval --integer`.
    Quantize(quantize_cmd::QuantizeArgs),
    /// Event-camera and tactile event files.
    Events {
        #[command(subcommand)]
        command: events_cmd::EventsCommand,
    },
    /// Language models: train, generate, evaluate (MatMul-free LM and SpikeGPT).
    Lm {
        #[command(subcommand)]
        command: lm_cmd::LmCommand,
    },
    /// Simulate a retina (rods, cones, bipolar and ganglion cells) watching a PNG image or a
    /// directory of PNG frames; write ganglion spikes, a raster plot and region rates.
    Retina(Box<retina_cmd::RetinaArgs>),
    /// NIR graphs: run one on NumPy inputs, export a checkpoint, describe a file.
    Nir {
        #[command(subcommand)]
        command: nir_cmd::NirCommand,
    },
    /// Hardware simulators: the OpenSpike accelerator's datapath and memory images.
    Hw {
        #[command(subcommand)]
        command: hw_cmd::HwCommand,
    },
    /// Replay every case of a nerve-reference-v1 file and compare with Nerve.
    ReferenceCheck {
        /// The reference file (e.g. ../shared/reference/snntorch-reference.json).
        file: PathBuf,
    },
}

/// The command line with any `--config` recipe expanded, parsed.
fn parse_cli() -> Result<Cli, ExitCode> {
    let (args, recipe) = match recipe_args::expand(Cli::command(), std::env::args_os().collect()) {
        Ok(expanded) => expanded,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let matches = Cli::command().try_get_matches_from(args);
    match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => Ok(cli),
        Err(e) => {
            if let (Some(path), true) = (recipe, e.use_stderr()) {
                eprintln!("(options from the recipe {} included)", path.display());
            }
            e.exit()
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Train(args) => train_cmd::train(*args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => eval_cmd::eval(args).map(|()| ExitCode::SUCCESS),
        Command::Quantize(args) => quantize_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Events { command } => events_cmd::run(command).map(|()| ExitCode::SUCCESS),
        Command::Lm { command } => lm_cmd::run(command).map(|()| ExitCode::SUCCESS),
        Command::Retina(args) => retina_cmd::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Nir { command } => nir_cmd::run(command).map(|()| ExitCode::SUCCESS),
        Command::Hw { command } => hw_cmd::run(command),
        Command::ReferenceCheck { file } => reference_check::run(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
