//! An event-camera emulator in the manner of v2e: turns a sequence of intensity frames into
//! DVS events.
//!
//! Each pixel keeps a reference log-intensity level. When a new frame arrives, the change
//! `Δ = ln(I + log_eps) − reference` is compared with the pixel's ON/OFF threshold; while
//! `|Δ|` still holds a whole threshold an event is emitted and the reference moves by one
//! threshold. The log uses a plain floor `log_eps` added to intensities in `[0, 1]` (not v2e's
//! linear-log curve), so dark pixels do not produce unbounded log changes.
//!
//! The `k`-th of `n` events in a frame interval is timestamped where the gap between the
//! reference and the new level, closed linearly over the interval, reaches `k` thresholds:
//! `t_prev + (t_cur − t_prev)·kθ/|Δ|`. Thresholds differ per pixel (normal mismatch drawn
//! once), the reference leaks downwards (slow ON events under constant light, as v2e's leak)
//! and shot noise adds random events. Everything random comes from one seeded [`StdRng`].
//!
//! Frames come from [`crate::data::frames`] (PNGs, PNG sequences, GIFs) or from
//! [`super::video::read_video`], which picks the reader for a path.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Events;
use crate::error::{Error, Result};
use crate::rng::standard_normal;

/// Emulator parameters; [`EmulatorConfig::default`] gives v2e-like values.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Nominal ON threshold in log-intensity units.
    pub pos_threshold: f64,
    /// Nominal OFF threshold in log-intensity units.
    pub neg_threshold: f64,
    /// Standard deviation of the per-pixel threshold mismatch (drawn once; thresholds are
    /// clamped to at least 0.01).
    pub threshold_sigma: f64,
    /// Events closer than this (µs) to the pixel's previous event are dropped.
    pub refractory_us: i64,
    /// Leak rate: the reference drifts down by one ON threshold every `1/leak_rate_hz`
    /// seconds, so constant light gives ON events at about this rate per pixel.
    pub leak_rate_hz: f64,
    /// Shot-noise rate: random events per pixel per second (half ON, half OFF).
    pub shot_noise_rate_hz: f64,
    /// Floor added to intensities in `[0, 1]` inside the logarithm: `ln(I + log_eps)`.
    pub log_eps: f64,
    /// Seed of the generator that draws mismatch and noise.
    pub seed: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            pos_threshold: 0.2,
            neg_threshold: 0.2,
            threshold_sigma: 0.03,
            refractory_us: 0,
            leak_rate_hz: 0.1,
            shot_noise_rate_hz: 0.0,
            log_eps: 1e-3,
            seed: 0,
        }
    }
}

/// Smallest per-pixel threshold after mismatch, so no pixel fires on every rounding error.
const MIN_THRESHOLD: f64 = 0.01;

impl EmulatorConfig {
    /// Refuses non-finite, non-positive thresholds or floor and negative rates, naming the
    /// parameter.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("pos_threshold", self.pos_threshold),
            ("neg_threshold", self.neg_threshold),
            ("log_eps", self.log_eps),
        ];
        for (name, v) in positive {
            if !v.is_finite() || v <= 0.0 {
                return Err(Error::invalid(
                    name,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        let non_negative = [
            ("threshold_sigma", self.threshold_sigma),
            ("leak_rate_hz", self.leak_rate_hz),
            ("shot_noise_rate_hz", self.shot_noise_rate_hz),
        ];
        for (name, v) in non_negative {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        if self.refractory_us < 0 {
            return Err(Error::invalid(
                "refractory_us",
                format!("must be >= 0, got {}", self.refractory_us),
            ));
        }
        Ok(())
    }
}

/// A stateful DVS emulator for one sensor; feed it frames in time order.
#[derive(Debug, Clone)]
pub struct Emulator {
    width: u16,
    height: u16,
    cfg: EmulatorConfig,
    rng: StdRng,
    pos_thr: Vec<f64>,
    neg_thr: Vec<f64>,
    /// Reference log level per pixel; empty until the first frame.
    reference: Vec<f64>,
    /// Time of each pixel's last emitted signal event, for the refractory period.
    last_event: Vec<Option<i64>>,
    last_time: Option<i64>,
}

impl Emulator {
    /// Creates an emulator for a `width`×`height` sensor, drawing the threshold mismatch.
    pub fn new(width: u16, height: u16, cfg: EmulatorConfig) -> Result<Self> {
        cfg.validate()?;
        if width == 0 || height == 0 {
            return Err(Error::invalid(
                "sensor size",
                format!("{width}x{height} has no pixels"),
            ));
        }
        let n = width as usize * height as usize;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let draw = |nominal: f64, rng: &mut StdRng| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    let jitter = if cfg.threshold_sigma > 0.0 {
                        cfg.threshold_sigma * standard_normal(rng)
                    } else {
                        0.0
                    };
                    (nominal + jitter).max(MIN_THRESHOLD)
                })
                .collect()
        };
        let pos_thr = draw(cfg.pos_threshold, &mut rng);
        let neg_thr = draw(cfg.neg_threshold, &mut rng);
        Ok(Emulator {
            width,
            height,
            cfg,
            rng,
            pos_thr,
            neg_thr,
            reference: Vec::new(),
            last_event: vec![None; n],
            last_time: None,
        })
    }

    /// Sensor size as `(width, height)`.
    pub fn sensor(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Per-pixel `(ON, OFF)` thresholds after mismatch, row-major.
    pub fn thresholds(&self) -> (&[f64], &[f64]) {
        (&self.pos_thr, &self.neg_thr)
    }

    /// Feeds one row-major `[height*width]` frame of intensities in `[0, 1]` taken at `t_us`
    /// and returns the events since the previous frame, sorted by time (none for the first).
    pub fn push_frame(&mut self, frame: &[f32], t_us: i64) -> Result<Events> {
        let n = self.pos_thr.len();
        if frame.len() != n {
            return Err(Error::Shape {
                what: "emulator frame".into(),
                expected: format!("{} ({}x{})", n, self.width, self.height),
                got: frame.len().to_string(),
            });
        }
        if let Some(i) = frame.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "emulator frame",
                format!("pixel {i} has non-finite intensity {}", frame[i]),
            ));
        }
        let eps = self.cfg.log_eps;
        // Negative intensities are clamped: light cannot be negative, and ln needs > 0.
        let level = |v: f32| ((v as f64).max(0.0) + eps).ln();
        let sensor = (self.width, self.height);
        let Some(t_prev) = self.last_time else {
            self.reference = frame.iter().map(|&v| level(v)).collect();
            self.last_time = Some(t_us);
            return Events::new(vec![], vec![], vec![], vec![], sensor);
        };
        if t_us <= t_prev {
            return Err(Error::invalid(
                "frame time",
                format!("{t_us} µs does not follow the previous frame at {t_prev} µs"),
            ));
        }
        let dt = t_us - t_prev;
        let dt_s = dt as f64 * 1e-6;
        let w = self.width as usize;
        // (t, x, y, p), sorted at the end.
        let mut out: Vec<(i64, u16, u16, i8)> = Vec::new();
        for (i, &value) in frame.iter().enumerate() {
            let pos = self.pos_thr[i];
            let neg = self.neg_thr[i];
            // Leak lowers the reference, so constant light slowly produces ON events.
            self.reference[i] -= self.cfg.leak_rate_hz * pos * dt_s;
            let delta = level(value) - self.reference[i];
            let (thr, pol) = if delta >= 0.0 {
                (pos, 1i8)
            } else {
                (neg, -1i8)
            };
            let count = (delta.abs() / thr).floor() as u64;
            for k in 1..=count {
                let frac = (k as f64 * thr / delta.abs()).min(1.0);
                let t = t_prev + ((frac * dt as f64).round() as i64).clamp(1, dt);
                if let Some(last) = self.last_event[i] {
                    // A pixel in its refractory period does not reset, so the change it
                    // missed stays in Δ and may fire later.
                    if t - last < self.cfg.refractory_us {
                        continue;
                    }
                }
                self.last_event[i] = Some(t);
                self.reference[i] += pol as f64 * thr;
                out.push((t, (i % w) as u16, (i / w) as u16, pol));
            }
        }
        self.add_shot_noise(&mut out, t_prev, dt);
        self.last_time = Some(t_us);
        out.sort_by_key(|e| e.0);
        let mut xs = Vec::with_capacity(out.len());
        let mut ys = Vec::with_capacity(out.len());
        let mut ts = Vec::with_capacity(out.len());
        let mut ps = Vec::with_capacity(out.len());
        for (t, x, y, p) in out {
            ts.push(t);
            xs.push(x);
            ys.push(y);
            ps.push(p);
        }
        Events::new(xs, ys, ts, ps, sensor)
    }

    /// Adds shot-noise events in `(t_prev, t_prev + dt]`: a Poisson process over the whole
    /// sensor (exponential gaps, cost proportional to the events drawn), each at a uniform
    /// pixel with random polarity. Noise bypasses the refractory period and leaves the
    /// reference alone, as it models spurious pixel resets, not light.
    fn add_shot_noise(&mut self, out: &mut Vec<(i64, u16, u16, i8)>, t_prev: i64, dt: i64) {
        let n = self.pos_thr.len();
        let rate_per_us = self.cfg.shot_noise_rate_hz * n as f64 * 1e-6;
        if rate_per_us <= 0.0 {
            return;
        }
        let w = self.width as usize;
        let mut s = 0.0f64;
        loop {
            let u: f64 = 1.0 - self.rng.random::<f64>();
            s += -u.ln() / rate_per_us;
            if s > dt as f64 {
                break;
            }
            let t = t_prev + (s.ceil() as i64).clamp(1, dt);
            let i = self.rng.random_range(0..n);
            let p = if self.rng.random::<bool>() { 1 } else { -1 };
            out.push((t, (i % w) as u16, (i / w) as u16, p));
        }
    }
}

/// Runs a whole sequence of `(frame, t_us)` through a fresh emulator and concatenates the
/// events (already in time order, since frame times increase).
pub fn emulate(
    frames: impl IntoIterator<Item = (Vec<f32>, i64)>,
    width: u16,
    height: u16,
    cfg: EmulatorConfig,
) -> Result<Events> {
    let mut emu = Emulator::new(width, height, cfg)?;
    let (mut x, mut y, mut t, mut p) = (vec![], vec![], vec![], vec![]);
    for (frame, t_us) in frames {
        let ev = emu.push_frame(&frame, t_us)?;
        x.extend(ev.x);
        y.extend(ev.y);
        t.extend(ev.t);
        p.extend(ev.p);
    }
    Events::new(x, y, t, p, (width, height))
}
