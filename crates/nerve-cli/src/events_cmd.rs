//! `nerve events`: event-camera and tactile event files.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use nerve::data::events::emulator::{Emulator, EmulatorConfig};
use nerve::data::events::saccade::{write_emulated_nmnist, SaccadeConfig};
use nerve::data::events::video::read_video;
use nerve::data::events::{
    aedat, parse_aedat4_header, parse_events, prophesee, write_nmnist, write_prophesee,
    EventFormat, Events,
};
use nerve::data::mnist::{load_dataset, load_embedded_mnist};
use nerve::{Error, Result};

/// The `nerve events` subcommands.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print the format, event count, sensor size, time span and polarity counts of a file.
    Info {
        /// An event file: N-MNIST `.bin`, Prophesee `.dat`, ST-MNIST `.mat`, AEDAT 2.0, 3.1 or
        /// 4.0 (`.aedat4`; uncompressed or LZ4, not ZSTD).
        file: PathBuf,
    },
    /// Emulate an event camera watching a video given as a directory of PNG frames (sorted by
    /// name) or an animated GIF: log-intensity change detection with per-pixel threshold
    /// mismatch, refractory period, leak and shot noise, timestamps interpolated between frames
    /// (as v2e).
    FromVideo {
        /// Directory of PNG frames, or a `.gif` (MP4 and other videos: extract PNG frames with
        /// ffmpeg first).
        input: PathBuf,
        /// Output event file: `.dat` (Prophesee, any sensor) or `.bin` (N-MNIST, 34×34 only).
        output: PathBuf,
        /// Frames per second of the input [default: 30 for a PNG directory; a GIF uses its own
        /// frame delays unless this is given].
        #[arg(long)]
        fps: Option<f64>,
        #[command(flatten)]
        emulator: EmulatorArgs,
    },
    /// Emulate N-MNIST: move each MNIST digit in three saccades (~300 ms) in front of the
    /// event-camera emulator and write `OUT/Train|Test/<label>/<index>.bin` like N-MNIST.
    Nmnist {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Source digits: `embedded` (the built-in MNIST subset) or `mnist` (full IDX files).
        #[arg(long, default_value = "embedded")]
        dataset: String,
        /// Directory of the MNIST IDX files (for `--dataset mnist`; searched for if absent).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Convert at most this many digits per split.
        #[arg(long)]
        limit: Option<usize>,
        /// Seed of the emulator's mismatch and noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Animate an event file as a looping GIF: one frame per time window, ON events amber,
    /// OFF blue (white where both), on a dark background.
    Gif(crate::events_viz_cmd::GifArgs),
    /// Draw an event file as a spike raster PNG: time on x, neuron `y·width + x` on y, ON red,
    /// OFF blue.
    Raster(crate::events_viz_cmd::RasterArgs),
}

/// Options of the event-camera emulator.
#[derive(Args, Debug)]
pub struct EmulatorArgs {
    /// ON threshold (change of log intensity per event).
    #[arg(long, default_value_t = 0.2)]
    pos_threshold: f64,
    /// OFF threshold.
    #[arg(long, default_value_t = 0.2)]
    neg_threshold: f64,
    /// Standard deviation of the per-pixel threshold mismatch.
    #[arg(long, default_value_t = 0.03)]
    threshold_sigma: f64,
    /// Refractory period in microseconds.
    #[arg(long, default_value_t = 0)]
    refractory_us: i64,
    /// Leak events per pixel per second.
    #[arg(long, default_value_t = 0.1)]
    leak_rate_hz: f64,
    /// Shot-noise events per pixel per second.
    #[arg(long, default_value_t = 0.0)]
    shot_noise_rate_hz: f64,
    /// Seed of the mismatch and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl EmulatorArgs {
    fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            pos_threshold: self.pos_threshold,
            neg_threshold: self.neg_threshold,
            threshold_sigma: self.threshold_sigma,
            refractory_us: self.refractory_us,
            leak_rate_hz: self.leak_rate_hz,
            shot_noise_rate_hz: self.shot_noise_rate_hz,
            seed: self.seed,
            ..EmulatorConfig::default()
        }
    }
}

/// Runs a `nerve events` subcommand.
pub fn run(cmd: EventsCommand) -> Result<()> {
    match cmd {
        EventsCommand::Info { file } => info(&file),
        EventsCommand::Gif(args) => crate::events_viz_cmd::gif(args),
        EventsCommand::Raster(args) => crate::events_viz_cmd::raster(args),
        EventsCommand::FromVideo {
            input,
            output,
            fps,
            emulator,
        } => from_video(&input, &output, fps, emulator.config()),
        EventsCommand::Nmnist {
            out,
            dataset,
            data,
            limit,
            seed,
        } => nmnist(&out, &dataset, data.as_deref(), limit, seed),
    }
}

fn info(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let (format, events) = parse_events(&bytes, file)?;
    let (on, off) = events.polarity_counts();
    println!("file: {}", file.display());
    println!("format: {format:?}");
    println!("events: {}", events.len());
    println!("sensor: {}", describe_sensor(format, &bytes, &events));
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

/// The sensor size of `events` and, where the file does not state it, where it came from:
/// a size the reader had to infer from the events' span, a chip's or an assumed one is said
/// to be so, and a size nobody knows is called unknown.
fn describe_sensor(format: EventFormat, bytes: &[u8], events: &Events) -> String {
    let (w, h) = events.sensor;
    let size = format!("{w} x {h} (width x height)");
    let inferred = |missing: &str| {
        if events.is_empty() {
            format!("unknown (the header gives no {missing}, and there are no events)")
        } else {
            format!("unknown (the header gives no {missing}); the events span {size}")
        }
    };
    match format {
        EventFormat::PropheseeDat if prophesee::header_sensor(bytes).is_none() => {
            inferred("Width/Height")
        }
        EventFormat::Aedat3 if aedat::aedat3_header_sensor(bytes).is_none() => {
            inferred("sizeX/sizeY")
        }
        EventFormat::Aedat4 => {
            let declared = parse_aedat4_header(bytes, Path::new(""))
                .ok()
                .and_then(|h| h.streams.into_iter().find(|s| s.type_id == "EVTS"))
                .and_then(|s| s.size);
            match declared {
                Some(_) => size,
                None => inferred("sizeX/sizeY for the event stream"),
            }
        }
        EventFormat::Aedat2 => match aedat::aedat2_chip(bytes) {
            Some(chip) if aedat::chip_sensor(&chip).is_some() => {
                format!("{size}, from the header's AEChip {chip}")
            }
            Some(chip) => format!("unknown (AEChip {chip} is not a chip this reader knows)"),
            None => format!("{size}, assumed: no AEChip header line, read as a DVS128"),
        },
        _ => size,
    }
}

fn from_video(input: &Path, output: &Path, fps: Option<f64>, cfg: EmulatorConfig) -> Result<()> {
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "dat" | "bin") {
        return Err(Error::invalid(
            "output",
            format!("{}: expected a .dat or .bin file name", output.display()),
        ));
    }
    let fps = fps.or(input.is_dir().then_some(30.0));
    let seq = read_video(input, fps)?;
    let mut emulator = Emulator::new(seq.width, seq.height, cfg)?;
    let frames = seq.frames.len();
    let mut parts = Vec::with_capacity(frames);
    for (frame, t) in &seq.frames {
        parts.push(emulator.push_frame(frame, *t)?);
    }
    let events = concat(parts, (seq.width, seq.height))?;
    match ext {
        "dat" => write_prophesee(output, &events)?,
        _ => write_nmnist(output, &events)?,
    }
    let (on, off) = events.polarity_counts();
    println!(
        "{frames} frames of {} x {} -> {} events ({on} on, {off} off) in {}",
        seq.width,
        seq.height,
        events.len(),
        output.display()
    );
    Ok(())
}

fn nmnist(
    out: &Path,
    dataset: &str,
    data: Option<&Path>,
    limit: Option<usize>,
    seed: u64,
) -> Result<()> {
    let splits = match dataset {
        "embedded" => load_embedded_mnist()?,
        "mnist" => load_dataset("mnist", data)?,
        other => {
            return Err(Error::invalid(
                "dataset",
                format!("{other:?}: expected `embedded` or `mnist`"),
            ))
        }
    };
    if (splits.train.rows, splits.train.cols) != (28, 28) {
        return Err(Error::invalid(
            "dataset",
            format!(
                "images are {}x{}, expected 28x28",
                splits.train.rows, splits.train.cols
            ),
        ));
    }
    let cfg = SaccadeConfig::default();
    for (name, ds) in [("Train", &splits.train), ("Test", &splits.test)] {
        // Slicing, not `take`, so the full set is never copied.
        let n = limit.unwrap_or(ds.len()).min(ds.len());
        let events = write_emulated_nmnist(
            &ds.images[..n * ds.image_len()],
            &ds.labels[..n],
            out,
            name,
            &cfg,
            seed,
            |done, total| eprint!("\r{name}: {done}/{total}"),
        )?;
        eprintln!();
        println!(
            "{name}: {n} digits -> {events} events in {}",
            out.join(name).display()
        );
    }
    Ok(())
}

/// Joins per-frame event batches, which are time-ordered one after another.
fn concat(parts: Vec<Events>, sensor: (u16, u16)) -> Result<Events> {
    let (mut x, mut y, mut t, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in parts {
        x.extend(e.x);
        y.extend(e.y);
        t.extend(e.t);
        p.extend(e.p);
    }
    Events::new(x, y, t, p, sensor)
}
