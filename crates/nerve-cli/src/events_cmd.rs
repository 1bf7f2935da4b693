//! `nerve events`: event-camera and tactile event files.

use std::path::PathBuf;

use clap::Subcommand;
use nerve::data::events::read_events;
use nerve::Result;

/// The `nerve events` subcommands.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print the format, event count, sensor size, time span and polarity counts of a file.
    Info {
        /// An event file: N-MNIST `.bin`, Prophesee `.dat`, ST-MNIST `.mat`, AEDAT 2.0 or 3.1.
        file: PathBuf,
    },
}

/// Runs a `nerve events` subcommand.
pub fn run(cmd: EventsCommand) -> Result<()> {
    match cmd {
        EventsCommand::Info { file } => info(&file),
    }
}

fn info(file: &std::path::Path) -> Result<()> {
    let (format, events) = read_events(file)?;
    let (on, off) = events.polarity_counts();
    println!("file: {}", file.display());
    println!("format: {format:?}");
    println!("events: {}", events.len());
    println!(
        "sensor: {} x {} (width x height)",
        events.sensor.0, events.sensor.1
    );
    match events.time_span() {
        Some((first, last)) => println!(
            "time span: {first} .. {last} us ({:.6} s)",
            (last - first) as f64 * 1e-6
        ),
        None => println!("time span: none (no events)"),
    }
    println!("polarity: {on} on, {off} off");
    Ok(())
}
