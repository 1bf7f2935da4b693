//! `nerve retina IN OUT`: a retina model watching an image (as a flash) or a video (a
//! directory of PNG frames), writing ganglion-cell spikes, a raster plot and region rates.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nerve::data::events::write_prophesee;
use nerve::data::frames::{read_png_frame, read_png_sequence};
use nerve::retina::{region_rates, RegionRates, Retina, RetinaConfig, RetinaOutput, Stimulus};
use nerve::viz::write_retina_raster;
use nerve::{Error, Result};

/// The ganglion cell model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ganglion {
    /// Fohlmeister–Miller conductance model (0.025 ms steps).
    Fm,
    /// Leaky integrate-and-fire, fitted to the FM rate curve (0.1 ms steps; for big images).
    Lif,
}

/// Options of `nerve retina`.
#[derive(Args, Debug)]
pub struct RetinaArgs {
    /// A PNG image (shown as a flash) or a directory of PNG frames (a video at --fps).
    input: PathBuf,
    /// Spike file: `.dat` (Prophesee events on the ganglion grid, ON = +1, OFF = -1) or `.csv`
    /// (`t_us,cell,type,x,y`). `<stem>.raster.png` and `<stem>.regions.json` go beside it.
    output: PathBuf,
    /// Ganglion cell model.
    #[arg(long, value_enum, default_value_t = Ganglion::Fm)]
    ganglion: Ganglion,
    /// One ganglion cell of each type (ON, OFF) per N×N pixels.
    #[arg(long, default_value_t = 1)]
    grid_step: usize,
    /// Read-out regions as ROWSxCOLS.
    #[arg(long, default_value = "3x3")]
    regions: String,
    /// Ganglion integration step in ms (default: 0.025 for fm, 0.1 for lif).
    #[arg(long)]
    dt_ms: Option<f64>,
    /// Photoisomerisations per second (R*/s) at pixel value 1.
    #[arg(long, default_value_t = 4000.0)]
    intensity_scale: f64,
    /// Luminance (0..1) shown before and after a single image.
    #[arg(long, default_value_t = 0.0)]
    background: f32,
    /// Background time before a single image, ms.
    #[arg(long, default_value_t = 200.0)]
    pre_ms: f64,
    /// How long a single image is shown, ms.
    #[arg(long, default_value_t = 500.0)]
    duration_ms: f64,
    /// Background time after a single image, ms.
    #[arg(long, default_value_t = 300.0)]
    post_ms: f64,
    /// Frames per second of a directory of frames.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Ganglion input current per unit of bipolar signal, µA/cm².
    #[arg(long)]
    gain: Option<f64>,
    /// Constant ganglion input current, µA/cm² (negative raises the threshold).
    #[arg(long, allow_negative_numbers = true)]
    bias: Option<f64>,
    /// Standard deviation of white-noise input current, µA/cm² (0: deterministic).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Spike file formats by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpikeFormat {
    Dat,
    Csv,
}

/// Runs `nerve retina`.
pub fn run(args: RetinaArgs) -> Result<()> {
    // Everything that can be refused is checked before the (possibly long) simulation.
    let format = match args.output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("dat") => SpikeFormat::Dat,
        Some(e) if e.eq_ignore_ascii_case("csv") => SpikeFormat::Csv,
        _ => {
            return Err(Error::invalid(
                "output",
                format!(
                    "{}: expected a .dat or .csv file name",
                    args.output.display()
                ),
            ))
        }
    };
    let (rows, cols) = parse_regions(&args.regions)?;
    let config = config(&args)?;
    let stim = read_stimulus(&args)?;
    let retina = Retina::new(config, stim.width, stim.height)?;
    let (gw, gh) = retina.grid();
    if rows > gh || cols > gw {
        return Err(Error::invalid(
            "--regions",
            format!(
                "{rows}x{cols} regions do not fit the {gh}x{gw} ganglion grid (rows x columns)"
            ),
        ));
    }
    let stem = args.output.with_extension("");
    let raster_path = sibling(&stem, "raster.png");
    let regions_path = sibling(&stem, "regions.json");

    let model = match args.ganglion {
        Ganglion::Fm => "Fohlmeister-Miller",
        Ganglion::Lif => "LIF",
    };
    println!(
        "{}: {} x {} pixels, {} frame(s), {:.0} ms; {model} ganglion cells on a {gw} x {gh} grid \
         ({} ON + {} OFF), dt {} ms",
        args.input.display(),
        stim.width,
        stim.height,
        stim.frames.len(),
        stim.duration_ms,
        gw * gh,
        gw * gh,
        config.dt_ms
    );
    let started = Instant::now();
    let out = simulate(&retina, &stim, args.ganglion)?;
    let seconds = started.elapsed().as_secs_f64();

    match format {
        SpikeFormat::Dat => write_prophesee(&args.output, &out.to_events()?)?,
        SpikeFormat::Csv => out.write_csv(&args.output)?,
    }
    let title = format!(
        "{} ({model}, {gw}x{gh} grid)",
        args.input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    write_retina_raster(&raster_path, &title, &out)?;
    let rates = region_rates(&out, rows, cols, 0.0, out.duration_ms)?;
    write_regions_json(&regions_path, &args, &out, &rates, model)?;

    let (on, off) = out.counts();
    println!(
        "simulated {:.0} ms in {seconds:.2} s: {} spikes ({on} ON, {off} OFF), mean {:.1} Hz ON, {:.1} Hz OFF",
        out.duration_ms,
        on + off,
        mean_rate(on, gw * gh, out.duration_ms),
        mean_rate(off, gw * gh, out.duration_ms)
    );
    println!("region rates, Hz (ON/OFF), {rows} x {cols}:");
    print!("{}", rates.table());
    println!(
        "wrote {}, {}, {}",
        args.output.display(),
        raster_path.display(),
        regions_path.display()
    );
    Ok(())
}

/// Mean rate in Hz of `spikes` spread over `cells` cells and `ms` milliseconds.
fn mean_rate(spikes: usize, cells: usize, ms: f64) -> f64 {
    spikes as f64 / (cells.max(1) as f64 * ms / 1000.0)
}

/// `dir/stem.suffix` for an output path without its extension.
fn sibling(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    stem.with_file_name(name)
}

/// Parses `RxC` (also `R*C` or `RXC`), both at least 1.
fn parse_regions(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::invalid(
            "--regions",
            format!("{s:?}: expected ROWSxCOLS with both at least 1, e.g. 3x3"),
        )
    };
    let (r, c) = s.split_once(['x', 'X', '*']).ok_or_else(bad)?;
    let r: usize = r.trim().parse().map_err(|_| bad())?;
    let c: usize = c.trim().parse().map_err(|_| bad())?;
    if r == 0 || c == 0 {
        return Err(bad());
    }
    Ok((r, c))
}

/// The retina configuration from the options.
fn config(args: &RetinaArgs) -> Result<RetinaConfig> {
    let mut cfg = match args.ganglion {
        Ganglion::Fm => RetinaConfig::fm(),
        Ganglion::Lif => RetinaConfig::lif(),
    };
    if let Some(dt) = args.dt_ms {
        if !(dt.is_finite() && dt > 0.0 && dt <= cfg.outer_dt_ms) {
            return Err(Error::invalid(
                "--dt-ms",
                format!("must be > 0 and at most {} ms, got {dt}", cfg.outer_dt_ms),
            ));
        }
        // The outer retina steps in a whole number of ganglion steps, about 1 ms.
        cfg.dt_ms = dt;
        cfg.outer_dt_ms = dt * (cfg.outer_dt_ms / dt).round().max(1.0);
    }
    check("--background", f64::from(args.background), 0.0, false)?;
    check("--intensity-scale", args.intensity_scale, 0.0, true)?;
    check("--noise", args.noise, 0.0, false)?;
    if let Some(gain) = args.gain {
        check("--gain", gain, 0.0, false)?;
    }
    if let Some(bias) = args.bias {
        check("--bias", bias, f64::NEG_INFINITY, false)?;
    }
    if args.grid_step == 0 {
        return Err(Error::invalid("--grid-step", "must be at least 1 pixel"));
    }
    cfg.intensity_scale = args.intensity_scale;
    cfg.grid_step = args.grid_step;
    cfg.gain = args.gain.unwrap_or(cfg.gain);
    cfg.bias = args.bias.unwrap_or(cfg.bias);
    cfg.noise_sd = args.noise;
    cfg.seed = args.seed;
    cfg.validate()?;
    Ok(cfg)
}

/// Refuses a value that is not finite, below `min`, or equal to `min` when `strict`.
fn check(option: &str, v: f64, min: f64, strict: bool) -> Result<()> {
    if v.is_finite() && (v > min || (!strict && v == min)) {
        return Ok(());
    }
    let bound = if min == f64::NEG_INFINITY {
        String::new()
    } else {
        format!(" and {} {min}", if strict { ">" } else { ">=" })
    };
    Err(Error::invalid(
        option,
        format!("must be finite{bound}, got {v}"),
    ))
}

/// A single PNG as a flash on the background, or a directory of PNGs as a video.
fn read_stimulus(args: &RetinaArgs) -> Result<Stimulus> {
    let input = &args.input;
    let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    if meta.is_dir() {
        check("--fps", args.fps, 0.0, true)?;
        let seq = read_png_sequence(input, args.fps)?;
        let frames = seq.frames.into_iter().map(|(f, _)| f).collect();
        Stimulus::video(seq.width.into(), seq.height.into(), frames, args.fps)
    } else {
        check("--pre-ms", args.pre_ms, 0.0, false)?;
        check("--duration-ms", args.duration_ms, 0.0, true)?;
        check("--post-ms", args.post_ms, 0.0, false)?;
        let (w, h, image) = read_png_frame(input)?;
        Stimulus::flash(
            w.into(),
            h.into(),
            image,
            args.background,
            args.pre_ms,
            args.duration_ms,
            args.post_ms,
        )
    }
}

/// Runs the retina, with a progress bar (or progress lines in a log) when the run is long.
fn simulate(retina: &Retina, stim: &Stimulus, ganglion: Ganglion) -> Result<RetinaOutput> {
    let (gw, gh) = retina.grid();
    // Cell-steps, weighted by the cost of one step (an FM step costs ~10 LIF steps).
    let steps = stim.duration_ms / retina.config().dt_ms;
    let weight = if ganglion == Ganglion::Fm { 10.0 } else { 1.0 };
    let work = 2.0 * (gw * gh) as f64 * steps * weight;
    if work < 2e9 {
        return retina.run(stim);
    }
    let interactive = std::io::stderr().is_terminal();
    let total = stim.duration_ms.ceil() as u64;
    let bar = interactive.then(|| {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "retina [{bar:30}] {pos}/{len} ms {elapsed_precise}<{eta_precise}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb
    });
    let mut next_tenth = 1;
    let out = retina.run_with_progress(stim, |done, total_ms| match &bar {
        Some(pb) => pb.set_position(done as u64),
        None => {
            while next_tenth <= 10 && done >= total_ms * next_tenth as f64 / 10.0 {
                eprintln!(
                    "retina: {}% ({done:.0} of {total_ms:.0} ms)",
                    next_tenth * 10
                );
                next_tenth += 1;
            }
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    out
}

/// The region rates and run summary as JSON.
fn write_regions_json(
    path: &Path,
    args: &RetinaArgs,
    out: &RetinaOutput,
    rates: &RegionRates,
    model: &str,
) -> Result<()> {
    let (on, off) = out.counts();
    let value = serde_json::json!({
        "input": args.input.display().to_string(),
        "ganglion": model,
        "image": [out.width, out.height],
        "grid": [out.grid_width, out.grid_height],
        "grid_step": out.grid_step,
        "duration_ms": out.duration_ms,
        "spikes": { "on": on, "off": off },
        "regions": rates,
    });
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| Error::invalid("regions JSON", e.to_string()))?;
    nerve::fsutil::write_atomic(path, format!("{text}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse() {
        assert_eq!(parse_regions("3x3").unwrap(), (3, 3));
        assert_eq!(parse_regions("2X5").unwrap(), (2, 5));
        for bad in ["3", "0x3", "3x", "ax2", "3x3x3"] {
            assert!(parse_regions(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn siblings_replace_the_extension() {
        let stem = Path::new("out/spikes.dat").with_extension("");
        assert_eq!(
            sibling(&stem, "raster.png"),
            Path::new("out/spikes.raster.png")
        );
    }
}
