//! Event-stream transforms after Tonic's `tonic.transforms`: event → event filters and
//! augmentations behind the [`Transform`] trait (chained with [`Compose`]), and event → dense
//! representations ([`ToFrame`], [`ToVoxelGrid`], [`ToTimeSurface`]).
//!
//! Each transform is a small struct named after its Tonic counterpart. Random transforms draw
//! from a caller-held [`StdRng`], so a seeded run gives the same output every time. Filters
//! that depend on history ([`Denoise`], [`RefractoryPeriod`]) read the stream in its stored
//! order, which for camera recordings is time order, as Tonic assumes.
//!
//! Polarity channel `0` is OFF (`-1`) and channel `1` is ON (`+1`), as in Tonic's frames.

use rand::rngs::StdRng;
use rand::Rng;

use super::Events;
use crate::error::{Error, Result};
use crate::rng::standard_normal;

/// Dense outputs larger than this many `f32`s (8 GiB) are refused instead of allocated, so a
/// tiny window over a long recording fails cleanly rather than aborting the process.
const MAX_DENSE_ELEMENTS: u128 = 1 << 31;

/// An event → event transform; `rng` is only drawn from by random transforms.
pub trait Transform {
    /// Transforms `events`, refusing invalid parameters with [`Error::Invalid`].
    fn apply(&self, events: Events, rng: &mut StdRng) -> Result<Events>;
}

/// Applies its transforms in order, all drawing from the same generator.
pub struct Compose(pub Vec<Box<dyn Transform>>);

impl Transform for Compose {
    fn apply(&self, mut events: Events, rng: &mut StdRng) -> Result<Events> {
        for t in &self.0 {
            events = t.apply(events, rng)?;
        }
        Ok(events)
    }
}

/// Keeps the events at the indices where `keep` is true, preserving order.
fn select(events: Events, keep: &[bool]) -> Events {
    let Events { x, y, t, p, sensor } = events;
    Events {
        x: pick(x, keep),
        y: pick(y, keep),
        t: pick(t, keep),
        p: pick(p, keep),
        sensor,
    }
}

fn pick<T>(v: Vec<T>, keep: &[bool]) -> Vec<T> {
    v.into_iter()
        .zip(keep)
        .filter_map(|(a, &k)| k.then_some(a))
        .collect()
}

fn finite_nonneg(what: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{v} must be finite and non-negative"),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Event → event
// ---------------------------------------------------------------------------------------

/// Drops noise (Tonic `Denoise`): an event is kept only if one of its 8 neighbours fired less
/// than `filter_time_us` before it (the event itself still counts as support for later ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Denoise {
    /// Support window in µs, `> 0`.
    pub filter_time_us: i64,
}

impl Transform for Denoise {
    fn apply(&self, events: Events, _rng: &mut StdRng) -> Result<Events> {
        if self.filter_time_us <= 0 {
            return Err(Error::invalid(
                "filter_time_us",
                format!("{} must be positive", self.filter_time_us),
            ));
        }
        events.validate()?;
        let (w, h) = (events.sensor.0 as usize, events.sensor.1 as usize);
        // Latest time each pixel fired; i64::MIN marks "never".
        let mut last = vec![i64::MIN; w * h];
        let mut keep = vec![false; events.len()];
        for (i, k) in keep.iter_mut().enumerate() {
            let (x, y, t) = (events.x[i] as usize, events.y[i] as usize, events.t[i]);
            'search: for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let l = last[ny * w + nx];
                    if (nx, ny) != (x, y)
                        && l != i64::MIN
                        && t.saturating_sub(l) < self.filter_time_us
                    {
                        *k = true;
                        break 'search;
                    }
                }
            }
            last[y * w + x] = t;
        }
        Ok(select(events, &keep))
    }
}

/// Scales coordinates and timestamps down (Tonic `Downsample`): `x' = ⌊x·spatial_factor⌋`,
/// `t' = ⌊t·time_factor⌋`; the sensor becomes `⌈width·spatial_factor⌉ × ⌈height·…⌉` so every
/// scaled coordinate stays inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Downsample {
    /// Spatial scale in `(0, 1]`.
    pub spatial_factor: f64,
    /// Time scale, finite and `> 0`.
    pub time_factor: f64,
}

impl Transform for Downsample {
    fn apply(&self, events: Events, _rng: &mut StdRng) -> Result<Events> {
        let s = self.spatial_factor;
        if !(s > 0.0 && s <= 1.0) {
            return Err(Error::invalid(
                "spatial_factor",
                format!("{s} must lie in (0, 1]"),
            ));
        }
        let tf = self.time_factor;
        if !(tf.is_finite() && tf > 0.0) {
            return Err(Error::invalid(
                "time_factor",
                format!("{tf} must be finite and positive"),
            ));
        }
        events.validate()?;
        let scale = |n: u16| ((n as f64 * s).ceil() as u16).max(1);
        let sensor = (scale(events.sensor.0), scale(events.sensor.1));
        let Events { x, y, t, p, .. } = events;
        let down = |v: Vec<u16>, limit: u16| -> Vec<u16> {
            v.into_iter()
                .map(|c| ((c as f64 * s).floor() as u16).min(limit - 1))
                .collect()
        };
        Ok(Events {
            x: down(x, sensor.0),
            y: down(y, sensor.1),
            t: t.into_iter()
                .map(|t| (t as f64 * tf).floor() as i64)
                .collect(),
            p,
            sensor,
        })
    }
}

/// Keeps events with `min_us <= t <= max_us` (Tonic `CropTime`, inclusive at both ends).
#[derive(Debug, Clone, PartialEq)]
pub struct CropTime {
    /// Earliest kept timestamp (µs).
    pub min_us: i64,
    /// Latest kept timestamp (µs), `>= min_us`.
    pub max_us: i64,
}

impl Transform for CropTime {
    fn apply(&self, events: Events, _rng: &mut StdRng) -> Result<Events> {
        if self.max_us < self.min_us {
            return Err(Error::invalid(
                "max_us",
                format!("{} is before min_us {}", self.max_us, self.min_us),
            ));
        }
        events.validate()?;
        let keep: Vec<bool> = events
            .t
            .iter()
            .map(|&t| t >= self.min_us && t <= self.max_us)
            .collect();
        Ok(select(events, &keep))
    }
}

/// Drops an event if the same pixel (either polarity) had a kept event less than `delta_us`
/// before it (Tonic `RefractoryPeriod`); dropped events do not restart the period.
#[derive(Debug, Clone, PartialEq)]
pub struct RefractoryPeriod {
    /// Refractory period in µs, `>= 0` (0 keeps everything).
    pub delta_us: i64,
}

impl Transform for RefractoryPeriod {
    fn apply(&self, events: Events, _rng: &mut StdRng) -> Result<Events> {
        if self.delta_us < 0 {
            return Err(Error::invalid(
                "delta_us",
                format!("{} must be non-negative", self.delta_us),
            ));
        }
        events.validate()?;
        let w = events.sensor.0 as usize;
        let mut last = vec![i64::MIN; w * events.sensor.1 as usize];
        let mut keep = vec![false; events.len()];
        for (i, k) in keep.iter_mut().enumerate() {
            let px = events.y[i] as usize * w + events.x[i] as usize;
            let t = events.t[i];
            if last[px] == i64::MIN || t.saturating_sub(last[px]) >= self.delta_us {
                *k = true;
                last[px] = t;
            }
        }
        Ok(select(events, &keep))
    }
}

/// Drops each event independently with probability `p` (Tonic `DropEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct DropEvent {
    /// Drop probability in `[0, 1]`.
    pub p: f64,
}

impl Transform for DropEvent {
    fn apply(&self, events: Events, rng: &mut StdRng) -> Result<Events> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::invalid(
                "p",
                format!("{} must lie in [0, 1]", self.p),
            ));
        }
        events.validate()?;
        let keep: Vec<bool> = (0..events.len())
            .map(|_| !rng.random_bool(self.p))
            .collect();
        Ok(select(events, &keep))
    }
}

/// Adds Gaussian noise to timestamps (Tonic `TimeJitter`), rounded to whole µs.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeJitter {
    /// Standard deviation of the noise in µs, `>= 0`.
    pub std_us: f64,
    /// Drop events whose jittered timestamp is negative.
    pub clip_negative: bool,
    /// Re-sort the stream by time afterwards (stable), since jitter can reorder events.
    pub sort: bool,
}

impl Transform for TimeJitter {
    fn apply(&self, events: Events, rng: &mut StdRng) -> Result<Events> {
        finite_nonneg("std_us", self.std_us)?;
        events.validate()?;
        let mut events = events;
        for t in events.t.iter_mut() {
            *t = (*t as f64 + self.std_us * standard_normal(rng)).round() as i64;
        }
        if self.clip_negative {
            let keep: Vec<bool> = events.t.iter().map(|&t| t >= 0).collect();
            events = select(events, &keep);
        }
        if self.sort {
            let mut order: Vec<usize> = (0..events.len()).collect();
            order.sort_by_key(|&i| events.t[i]);
            events = Events {
                x: order.iter().map(|&i| events.x[i]).collect(),
                y: order.iter().map(|&i| events.y[i]).collect(),
                t: order.iter().map(|&i| events.t[i]).collect(),
                p: order.iter().map(|&i| events.p[i]).collect(),
                sensor: events.sensor,
            };
        }
        Ok(events)
    }
}

/// Adds independent Gaussian noise to coordinates (Tonic `SpatialJitter` without
/// covariance), rounded to whole pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialJitter {
    /// Standard deviation along x in pixels, `>= 0`.
    pub sigma_x: f64,
    /// Standard deviation along y in pixels, `>= 0`.
    pub sigma_y: f64,
    /// Drop events pushed off the sensor; otherwise they are clamped to its edge.
    pub clip_outliers: bool,
}

impl Transform for SpatialJitter {
    fn apply(&self, events: Events, rng: &mut StdRng) -> Result<Events> {
        finite_nonneg("sigma_x", self.sigma_x)?;
        finite_nonneg("sigma_y", self.sigma_y)?;
        events.validate()?;
        let mut events = events;
        let (w, h) = (events.sensor.0 as f64, events.sensor.1 as f64);
        let mut keep = vec![true; events.len()];
        for (i, k) in keep.iter_mut().enumerate() {
            let nx = (events.x[i] as f64 + self.sigma_x * standard_normal(rng)).round();
            let ny = (events.y[i] as f64 + self.sigma_y * standard_normal(rng)).round();
            if nx < 0.0 || ny < 0.0 || nx >= w || ny >= h {
                *k = !self.clip_outliers;
            }
            events.x[i] = nx.clamp(0.0, w - 1.0) as u16;
            events.y[i] = ny.clamp(0.0, h - 1.0) as u16;
        }
        Ok(if self.clip_outliers {
            select(events, &keep)
        } else {
            events
        })
    }
}

// ---------------------------------------------------------------------------------------
// Event → dense
// ---------------------------------------------------------------------------------------

/// Event-count frames, row-major `[frames, 2 polarities, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frames {
    /// The counts, `shape.iter().product()` values.
    pub data: Vec<f32>,
    /// `[frames, 2, height, width]`.
    pub shape: [usize; 4],
}

/// A dense 3-D grid, row-major: `[bins, height, width]` for [`ToVoxelGrid`], `[2, height,
/// width]` for [`ToTimeSurface`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
    /// The grid's shape.
    pub shape: [usize; 3],
}

/// Bins events into count frames (Tonic `ToFrame`); set exactly one slicing option.
///
/// - `time_window_us = W`: frame `k` holds `t_min + k·W <= t < t_min + (k+1)·W`, as many
///   frames as needed to cover the last event.
/// - `event_count = N`: frames of `N` consecutive events; the last may hold fewer.
/// - `n_time_bins = B`: `[t_min, t_max]` split into `B` equal bins, event at
///   `⌊(t - t_min)·B / (t_max - t_min + 1)⌋`.
///
/// An empty stream gives zero frames, or `B` empty frames with `n_time_bins`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToFrame {
    /// Frame duration in µs, `> 0`.
    pub time_window_us: Option<i64>,
    /// Events per frame, `> 0`.
    pub event_count: Option<usize>,
    /// Number of equal-duration frames, `> 0`.
    pub n_time_bins: Option<usize>,
}

impl ToFrame {
    /// Frames of a fixed duration in µs.
    pub fn time_window(us: i64) -> Self {
        Self {
            time_window_us: Some(us),
            ..Self::default()
        }
    }

    /// Frames of a fixed number of events.
    pub fn event_count(n: usize) -> Self {
        Self {
            event_count: Some(n),
            ..Self::default()
        }
    }

    /// A fixed number of equal-duration frames.
    pub fn time_bins(n: usize) -> Self {
        Self {
            n_time_bins: Some(n),
            ..Self::default()
        }
    }

    /// Builds the frames in one pass over the events (plus a min/max scan of timestamps).
    pub fn apply(&self, events: &Events) -> Result<Frames> {
        let span = events.validate()?;
        let n = events.len();
        let set = [
            self.time_window_us.is_some(),
            self.event_count.is_some(),
            self.n_time_bins.is_some(),
        ];
        if set.iter().filter(|&&s| s).count() != 1 {
            return Err(Error::invalid(
                "ToFrame",
                "set exactly one of time_window_us, event_count, n_time_bins",
            ));
        }
        let t_min = span.map_or(0, |s| s.0);
        // Frame of event i, computed per event without allocation.
        enum Slicer {
            Window(u64),
            Count(usize),
            BinsFast(u64, u64),
            BinsWide(u128, u128),
        }
        let (n_frames, slicer) = if let Some(wnd) = self.time_window_us {
            if wnd <= 0 {
                return Err(Error::invalid(
                    "time_window_us",
                    format!("{wnd} must be positive"),
                ));
            }
            let frames = span.map_or(0, |(a, b)| (b.wrapping_sub(a) as u64 / wnd as u64) + 1);
            (frames as u128, Slicer::Window(wnd as u64))
        } else if let Some(c) = self.event_count {
            if c == 0 {
                return Err(Error::invalid("event_count", "must be positive"));
            }
            (n.div_ceil(c) as u128, Slicer::Count(c))
        } else {
            let bins = self.n_time_bins.unwrap_or(0);
            if bins == 0 {
                return Err(Error::invalid("n_time_bins", "must be positive"));
            }
            let width = span.map_or(1, |(a, b)| b.wrapping_sub(a) as u64 as u128 + 1);
            let slicer = if width * bins as u128 <= u64::MAX as u128 {
                Slicer::BinsFast(bins as u64, width as u64)
            } else {
                Slicer::BinsWide(bins as u128, width)
            };
            (bins as u128, slicer)
        };
        let (w, h) = (events.sensor.0 as usize, events.sensor.1 as usize);
        let total = n_frames * 2 * (w * h) as u128;
        if total > MAX_DENSE_ELEMENTS {
            return Err(Error::invalid(
                "ToFrame",
                format!("{n_frames} frames of {w}x{h} would exceed {MAX_DENSE_ELEMENTS} values"),
            ));
        }
        let mut data = vec![0f32; total as usize];
        let plane = w * h;
        for i in 0..n {
            let (x, y) = (events.x[i] as usize, events.y[i] as usize);
            let d = events.t[i].wrapping_sub(t_min) as u64;
            let f = match slicer {
                Slicer::Window(wnd) => (d / wnd) as usize,
                Slicer::Count(c) => i / c,
                Slicer::BinsFast(b, width) => (d * b / width) as usize,
                Slicer::BinsWide(b, width) => (d as u128 * b / width) as usize,
            };
            let c = usize::from(events.p[i] > 0);
            data[(f * 2 + c) * plane + y * w + x] += 1.0;
        }
        Ok(Frames {
            data,
            shape: [n_frames as usize, 2, h, w],
        })
    }
}

/// Voxel grid (Tonic `ToVoxelGrid`, Zhu et al. 2019): each event's polarity (`±1`) is split
/// linearly between the two time bins nearest to `(B-1)·(t - t_min)/(t_max - t_min)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToVoxelGrid {
    /// Number of time bins `B`, `> 0`.
    pub n_time_bins: usize,
}

impl ToVoxelGrid {
    /// Builds the `[B, height, width]` grid; an empty stream gives zeros.
    pub fn apply(&self, events: &Events) -> Result<Grid> {
        let bins = self.n_time_bins;
        if bins == 0 {
            return Err(Error::invalid("n_time_bins", "must be positive"));
        }
        let span = events.validate()?;
        let (w, h) = (events.sensor.0 as usize, events.sensor.1 as usize);
        if bins as u128 * (w * h) as u128 > MAX_DENSE_ELEMENTS {
            return Err(Error::invalid("n_time_bins", format!("{bins} is too many")));
        }
        let mut data = vec![0f32; bins * w * h];
        if let Some((a, b)) = span {
            // A zero span puts every event at position 0, as Tonic does.
            let span = (b as f64 - a as f64).max(1.0);
            for i in 0..events.len() {
                let pos = (bins - 1) as f64 * (events.t[i] as f64 - a as f64) / span;
                let left = (pos.floor() as usize).min(bins - 1);
                let frac = (pos - left as f64) as f32;
                let pol = f32::from(events.p[i].signum());
                let px = events.y[i] as usize * w + events.x[i] as usize;
                data[left * w * h + px] += pol * (1.0 - frac);
                if left + 1 < bins {
                    data[(left + 1) * w * h + px] += pol * frac;
                }
            }
        }
        Ok(Grid {
            data,
            shape: [bins, h, w],
        })
    }
}

/// Time surface at the end of the stream (a simplified Tonic `ToTimeSurface`): per pixel and
/// polarity, `exp(-(t_end - t_last)/tau_us)` with `t_end` the latest event, `0` where the
/// pixel never fired with that polarity.
#[derive(Debug, Clone, PartialEq)]
pub struct ToTimeSurface {
    /// Decay constant in µs, finite and `> 0`.
    pub tau_us: f64,
}

impl ToTimeSurface {
    /// Builds the `[2, height, width]` surface; an empty stream gives zeros.
    pub fn apply(&self, events: &Events) -> Result<Grid> {
        if !(self.tau_us.is_finite() && self.tau_us > 0.0) {
            return Err(Error::invalid(
                "tau_us",
                format!("{} must be finite and positive", self.tau_us),
            ));
        }
        let span = events.validate()?;
        let (w, h) = (events.sensor.0 as usize, events.sensor.1 as usize);
        let mut last = vec![i64::MIN; 2 * w * h];
        for i in 0..events.len() {
            let c = usize::from(events.p[i] > 0);
            let k = (c * h + events.y[i] as usize) * w + events.x[i] as usize;
            last[k] = last[k].max(events.t[i]);
        }
        let t_end = span.map_or(0, |s| s.1);
        let data = last
            .iter()
            .map(|&l| {
                if l == i64::MIN {
                    0.0
                } else {
                    (-((t_end as f64 - l as f64) / self.tau_us)).exp() as f32
                }
            })
            .collect();
        Ok(Grid {
            data,
            shape: [2, h, w],
        })
    }
}
