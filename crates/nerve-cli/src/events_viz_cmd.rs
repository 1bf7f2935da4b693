//! `nerve events gif` and `nerve events raster`: pictures of an event file.

use std::path::PathBuf;

use clap::Args;
use nerve::data::events::read_events;
use nerve::viz::{gif_frame_count, write_event_raster_png, write_events_gif};
use nerve::{Error, Result};

/// Options of `nerve events gif`.
#[derive(Args, Debug)]
pub struct GifArgs {
    /// An event file (any format `nerve events info` reads).
    input: PathBuf,
    /// The GIF to write.
    output: PathBuf,
    /// Duration of the window each frame accumulates, in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    frame_ms: f64,
    /// Each sensor pixel becomes a SCALE × SCALE block.
    #[arg(long, default_value_t = 4)]
    scale: u32,
    /// Frames per second of playback (at most 100: GIF delays are whole centiseconds).
    #[arg(long, default_value_t = 20.0)]
    fps: f64,
}

/// Options of `nerve events raster`.
#[derive(Args, Debug)]
pub struct RasterArgs {
    /// An event file (any format `nerve events info` reads).
    input: PathBuf,
    /// The PNG to write.
    output: PathBuf,
    /// Figure title [default: the input's file name].
    #[arg(long)]
    title: Option<String>,
}

/// Writes the animated GIF of an event file and prints what it drew.
pub fn gif(args: GifArgs) -> Result<()> {
    let frame_us = (args.frame_ms * 1000.0).round();
    // Checked before reading the file, so a typo fails fast on a big recording.
    if !(frame_us.is_finite() && frame_us >= 1.0 && frame_us <= i64::MAX as f64) {
        return Err(Error::invalid(
            "--frame-ms",
            format!("{} must be at least 0.001 (1 us)", args.frame_ms),
        ));
    }
    let frame_us = frame_us as i64;
    let (_, events) = read_events(&args.input)?;
    write_events_gif(&args.output, &events, frame_us, args.scale, args.fps)?;
    let frames = gif_frame_count(&events, frame_us)?;
    println!(
        "{} events -> {frames} frames of {} x {} ({} ms each, {} fps) in {}",
        events.len(),
        u32::from(events.sensor.0) * args.scale,
        u32::from(events.sensor.1) * args.scale,
        args.frame_ms,
        args.fps,
        args.output.display()
    );
    Ok(())
}

/// Writes the spike raster of an event file and prints what it drew.
pub fn raster(args: RasterArgs) -> Result<()> {
    let (_, events) = read_events(&args.input)?;
    let title = args.title.unwrap_or_else(|| {
        args.input
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    });
    write_event_raster_png(&args.output, &title, &events)?;
    let (on, off) = events.polarity_counts();
    println!(
        "{} events ({on} on, {off} off) -> {}",
        events.len(),
        args.output.display()
    );
    Ok(())
}
