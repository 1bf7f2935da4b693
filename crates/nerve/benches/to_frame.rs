//! Throughput of Nerve's event → dense transforms (ToFrame in its three slicing modes,
//! ToVoxelGrid, ToTimeSurface) and of Denoise, on synthetic events that Tonic can read too;
//! `bench/events/run.sh` runs it against Tonic in the same session.
//!
//! Run alone with `cargo bench -p nerve --bench to_frame`. Options (after `--`):
//!
//! - `--write-npy PATH`: write the events as a NumPy structured array (`x`, `y`, `t`, `p` as
//!   little-endian int64, `p` 0 = OFF / 1 = ON as Tonic expects) and exit without timing;
//! - `--check-dir DIR` (with `--write-npy`): also write Nerve's outputs on the first
//!   [`CHECK_EVENTS`] events to `DIR/*.npy`, for `bench/events/tonic_bench.py` to compare;
//! - `--round N`: a label copied into the JSON lines.
//!
//! Environment: `NERVE_BENCH_EVENTS` (default 10,000,000), `NERVE_BENCH_REPS` timed
//! repetitions per transform (default 10; one untimed warm-up before them),
//! `NERVE_BENCH_DENOISE_EVENTS` events given to Denoise (default 1,000,000, since Tonic's
//! Denoise is a Python loop). Prints one JSON line per transform.
//!
//! The events: a 346×260 sensor (DAVIS346), pixels and polarities from a fixed-seed xorshift,
//! timestamps `t_i = i - ⌊i / 10⁶⌋` µs, sorted, spanning just under 10 s; the span
//! (9,999,990 µs for 10 M events) is not a multiple of the 50 ms window, so the last frame is
//! partial.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nerve::data::events::transforms::{Denoise, ToFrame, ToTimeSurface, ToVoxelGrid, Transform};
use nerve::data::events::Events;
use rand::rngs::StdRng;
use rand::SeedableRng;

const SENSOR: (u16, u16) = (346, 260);
/// Events in the slice whose outputs are written for the agreement check.
const CHECK_EVENTS: usize = 200_000;
const WINDOW_US: i64 = 50_000;
const EVENT_COUNT: usize = 500_000;
const TIME_BINS: usize = 20;
const VOXEL_BINS: usize = 10;
const TAU_US: f64 = 50_000.0;
const DENOISE_US: i64 = 10_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The benchmark's events (see the module docs).
fn synthetic_events(n: usize) -> Events {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut x, mut y, mut p) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..n {
        let r = next();
        x.push((r % u64::from(SENSOR.0)) as u16);
        y.push(((r >> 20) % u64::from(SENSOR.1)) as u16);
        p.push(if (r >> 40) & 1 == 1 { 1 } else { -1 });
    }
    let t = (0..n as i64).map(|i| i - i / 1_000_000).collect();
    Events::new(x, y, t, p, SENSOR).expect("synthetic events are valid")
}

fn slice(e: &Events, n: usize) -> Events {
    let n = n.min(e.len());
    Events {
        x: e.x[..n].to_vec(),
        y: e.y[..n].to_vec(),
        t: e.t[..n].to_vec(),
        p: e.p[..n].to_vec(),
        sensor: e.sensor,
    }
}

/// Writes a `.npy` (format 1.0) with the given header description and raw little-endian body.
fn write_npy(path: &Path, descr: &str, shape: &[usize], body: &[u8]) -> std::io::Result<()> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(body)?;
    f.flush()
}

fn write_events_npy(path: &Path, e: &Events) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(e.len() * 32);
    for i in 0..e.len() {
        body.extend_from_slice(&i64::from(e.x[i]).to_le_bytes());
        body.extend_from_slice(&i64::from(e.y[i]).to_le_bytes());
        body.extend_from_slice(&e.t[i].to_le_bytes());
        body.extend_from_slice(&i64::from(e.p[i] > 0).to_le_bytes());
    }
    write_npy(
        path,
        "[('x', '<i8'), ('y', '<i8'), ('t', '<i8'), ('p', '<i8')]",
        &[e.len()],
        &body,
    )
}

fn write_f32_npy(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let body: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "'<f4'", shape, &body)
}

/// Writes Nerve's outputs on the check slice, named after the transform.
fn write_check(dir: &Path, e: &Events) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let e = slice(e, CHECK_EVENTS);
    let (t0, t1) = e.time_span().expect("non-empty slice");
    let span = t1 - t0;
    let frames = |tf: ToFrame| tf.apply(&e).expect("to_frame");
    let f = frames(ToFrame::time_window(WINDOW_US));
    write_f32_npy(&dir.join("to_frame_time_window.npy"), &f.shape, &f.data)?;
    let f = frames(ToFrame::event_count(CHECK_EVENTS / 10));
    write_f32_npy(&dir.join("to_frame_event_count.npy"), &f.shape, &f.data)?;
    let f = frames(ToFrame::time_bins(TIME_BINS));
    write_f32_npy(&dir.join("to_frame_n_time_bins.npy"), &f.shape, &f.data)?;
    // Tonic's time bins are windows of ⌊span/B⌋ from t_min: the same as these time windows.
    let f = frames(ToFrame::time_window(span / TIME_BINS as i64));
    write_f32_npy(&dir.join("to_frame_tonic_time_bins.npy"), &f.shape, &f.data)?;
    let g = ToVoxelGrid {
        n_time_bins: VOXEL_BINS,
    }
    .apply(&e)
    .expect("voxel grid");
    write_f32_npy(&dir.join("to_voxel_grid.npy"), &g.shape, &g.data)?;
    // Tonic places events at B·(t - t0)/span, Nerve at (B-1)·(t - t0)/span: B + 1 Nerve bins
    // put every event where Tonic's B bins do.
    let g = ToVoxelGrid {
        n_time_bins: VOXEL_BINS + 1,
    }
    .apply(&e)
    .expect("voxel grid");
    write_f32_npy(&dir.join("to_voxel_grid_plus_one.npy"), &g.shape, &g.data)?;
    let g = ToTimeSurface { tau_us: TAU_US }
        .apply(&e)
        .expect("time surface");
    write_f32_npy(&dir.join("to_time_surface.npy"), &g.shape, &g.data)?;
    let kept = Denoise {
        filter_time_us: DENOISE_US,
    }
    .apply(e.clone(), &mut StdRng::seed_from_u64(0))
    .expect("denoise");
    std::fs::write(dir.join("denoise_kept.txt"), format!("{}\n", kept.len()))?;
    Ok(())
}

/// Times `f` once untimed, then `reps` times; returns the times in ms and the last output's
/// checksum.
fn time<R>(reps: usize, mut f: impl FnMut() -> R, sum: impl Fn(&R) -> f64) -> (Vec<f64>, f64) {
    black_box(f());
    let mut times = Vec::with_capacity(reps);
    let mut checksum = 0.0;
    for _ in 0..reps {
        let start = Instant::now();
        let out = black_box(f());
        times.push(start.elapsed().as_secs_f64() * 1e3);
        checksum = sum(&out);
    }
    (times, checksum)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn report(
    round: &str,
    transform: &str,
    params: &str,
    events: usize,
    shape: &[usize],
    (times, checksum): (Vec<f64>, f64),
) {
    let med = median(&times);
    let line = serde_json::json!({
        "impl": "nerve",
        "version": env!("CARGO_PKG_VERSION"),
        "round": round,
        "transform": transform,
        "params": params,
        "events": events,
        "reps": times.len(),
        "times_ms": times,
        "median_ms": med,
        "events_per_s": events as f64 / (med / 1e3),
        "output_shape": shape,
        "output_sum": checksum,
    });
    println!("{line}");
}

fn sum_f32(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n = env_usize("NERVE_BENCH_EVENTS", 10_000_000);
    let reps = env_usize("NERVE_BENCH_REPS", 10).max(1);
    let n_denoise = env_usize("NERVE_BENCH_DENOISE_EVENTS", 1_000_000).min(n);
    let round = arg("--round").unwrap_or_else(|| "0".into());
    let events = synthetic_events(n);

    if let Some(path) = arg("--write-npy") {
        let path = PathBuf::from(path);
        write_events_npy(&path, &events).expect("write the events .npy");
        if let Some(dir) = arg("--check-dir") {
            write_check(Path::new(&dir), &events).expect("write the check outputs");
        }
        eprintln!("wrote {n} events to {}", path.display());
        return;
    }

    let frame = |tf: ToFrame| {
        let shape = tf.apply(&events).expect("to_frame").shape;
        let timed = time(
            reps,
            || tf.apply(&events).expect("to_frame"),
            |f| sum_f32(&f.data),
        );
        (shape, timed)
    };
    let (shape, timed) = frame(ToFrame::time_window(WINDOW_US));
    report(&round, "to_frame", "time_window=50ms", n, &shape, timed);
    let (shape, timed) = frame(ToFrame::event_count(EVENT_COUNT));
    report(&round, "to_frame", "event_count=500000", n, &shape, timed);
    let (shape, timed) = frame(ToFrame::time_bins(TIME_BINS));
    report(&round, "to_frame", "n_time_bins=20", n, &shape, timed);

    let voxel = ToVoxelGrid {
        n_time_bins: VOXEL_BINS,
    };
    let timed = time(
        reps,
        || voxel.apply(&events).expect("voxel"),
        |g| sum_f32(&g.data),
    );
    let shape = [VOXEL_BINS, SENSOR.1 as usize, SENSOR.0 as usize];
    report(&round, "to_voxel_grid", "n_time_bins=10", n, &shape, timed);

    let surface = ToTimeSurface { tau_us: TAU_US };
    let timed = time(
        reps,
        || surface.apply(&events).expect("surface"),
        |g| sum_f32(&g.data),
    );
    let shape = [2, SENSOR.1 as usize, SENSOR.0 as usize];
    report(
        &round,
        "to_time_surface",
        "tau=50ms, one surface at the end",
        n,
        &shape,
        timed,
    );

    // Denoise consumes its input, so each repetition gets a copy made outside the timing.
    let part = slice(&events, n_denoise);
    let denoise = Denoise {
        filter_time_us: DENOISE_US,
    };
    let mut rng = StdRng::seed_from_u64(0);
    let dn_reps = reps.min(3);
    let mut times = Vec::new();
    let mut kept = 0;
    for i in 0..=dn_reps {
        let input = part.clone();
        let start = Instant::now();
        let out = black_box(denoise.apply(input, &mut rng).expect("denoise"));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        kept = out.len();
        if i > 0 {
            times.push(ms);
        }
    }
    report(
        &round,
        "denoise",
        "filter_time=10ms",
        n_denoise,
        &[kept],
        (times, kept as f64),
    );
}
