//! A retina model that turns images or video into ganglion-cell spikes: the pipeline behind
//! retina-driven prostheses such as the retina-controlled upper-limb prosthesis of Arrow et al.
//! (ICECS 2020), where spike rates per region of the visual field drove the hand.
//!
//! ```text
//! pixel value ─▶ photoisomerisations ─▶ rods + cones ─▶ bipolar cells ─▶ ganglion cells ─▶ spikes
//!   [0, 1]        Φ = v·scale (R*/s)    adaptation     centre–surround,    Fohlmeister–Miller
//!                                       (Clark 2013)   ON / OFF, filtered  or LIF, per grid cell
//! ```
//!
//! - [`photoreceptor`]: rods and cones with their own sensitivity, kinetics and divisive
//!   adaptation (Clark et al. 2013);
//! - [`bipolar`]: horizontal-cell surround (difference of Gaussians), a partly transient
//!   temporal filter, rectified ON and OFF outputs;
//! - [`ganglion`]: the Fohlmeister–Miller (1997) conductance model, the default, and [`lif`],
//!   a leaky integrate-and-fire cell for large images, both behind [`SpikingModel`];
//! - [`readout`]: spike rates per region of a grid (ON and OFF apart);
//! - [`output`]: spikes as events or CSV (drawn by [`crate::viz::write_retina_raster`]).
//!
//! Each ganglion cell pools the rectified bipolar output of a `grid_step`×`grid_step` block of
//! pixels and receives `I = bias + gain·pool` (µA/cm²), plus optional white noise. The outer
//! retina (photoreceptors, horizontal and bipolar cells, all with time constants of several
//! milliseconds) advances every `outer_dt_ms` (1 ms); the ganglion cells advance every `dt_ms`
//! (0.025 ms for Fohlmeister–Miller, 0.1 ms for LIF) with their input held in between, in
//! parallel over cells. Every stage uses exact exponential updates for piecewise-constant
//! inputs, so the whole pipeline is stable at any step; the step only sets the accuracy.
//!
//! ```
//! use nerve::retina::{region_rates, Retina, RetinaConfig, Stimulus};
//!
//! # fn main() -> nerve::Result<()> {
//! // A bright 4x4 patch in the top-left corner of an 8x8 dark image, flashed for 100 ms.
//! let mut image = vec![0.0f32; 64];
//! for y in 0..4 {
//!     for x in 0..4 {
//!         image[y * 8 + x] = 1.0;
//!     }
//! }
//! let stim = Stimulus::flash(8, 8, image, 0.0, 20.0, 100.0, 80.0)?;
//! let retina = Retina::new(RetinaConfig::lif(), 8, 8)?;
//! let out = retina.run(&stim)?;
//! let rates = region_rates(&out, 2, 2, 0.0, out.duration_ms)?;
//! // ON cells under the patch (region 0, top left) fire most.
//! assert!(rates.on_hz[0] > rates.on_hz[3]);
//! # Ok(())
//! # }
//! ```

pub mod bipolar;
pub mod ganglion;
pub mod lif;
pub mod model;
pub mod output;
pub mod photoreceptor;
pub mod readout;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::error::{Error, Result};

pub use bipolar::{BipolarLayer, BipolarParams};
pub use ganglion::{FmNeuron, FmParams, FmRates, FmState};
pub use lif::{LifNeuron, LifParams, LifState};
pub use model::SpikingModel;
pub use output::{CellType, RetinaOutput, Spike};
pub use photoreceptor::{PhotoreceptorLayer, PhotoreceptorParams};
pub use readout::{region_rates, RegionRates};

/// Which spiking model the ganglion cells use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GanglionModel {
    /// The Fohlmeister–Miller conductance model (default).
    Fm(FmParams),
    /// Leaky integrate-and-fire, much cheaper.
    Lif(LifParams),
}

/// Everything that defines a retina except the image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetinaConfig {
    /// Photoisomerisation rate (R*/s per photoreceptor) at pixel value 1; a pixel value `v`
    /// gives `Φ = v·intensity_scale` in rods and cones alike.
    pub intensity_scale: f64,
    /// Cone parameters.
    pub cone: PhotoreceptorParams,
    /// Rod parameters.
    pub rod: PhotoreceptorParams,
    /// Share of rods in the signal passed to bipolar cells (cones get `1 − rod_weight`).
    pub rod_weight: f64,
    /// Bipolar and horizontal cells.
    pub bipolar: BipolarParams,
    /// The ganglion cell model.
    pub ganglion: GanglionModel,
    /// One ganglion cell of each type per `grid_step`×`grid_step` block of pixels.
    pub grid_step: usize,
    /// Ganglion integration step, ms.
    pub dt_ms: f64,
    /// Step of the photoreceptor and bipolar layers, ms (a whole multiple of `dt_ms`).
    pub outer_dt_ms: f64,
    /// Constant input current of every ganglion cell, µA/cm².
    pub bias: f64,
    /// Input current per unit of pooled, rectified bipolar signal, µA/cm².
    pub gain: f64,
    /// Standard deviation of a white-noise input current redrawn every outer step, µA/cm².
    pub noise_sd: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Time simulated before `t = 0` under the first frame, with spikes discarded, so cells
    /// start from their steady state under the background, ms.
    pub warmup_ms: f64,
}

impl Default for RetinaConfig {
    fn default() -> Self {
        Self::fm()
    }
}

impl RetinaConfig {
    /// Fohlmeister–Miller ganglion cells at 0.025 ms.
    pub fn fm() -> Self {
        Self {
            intensity_scale: 4000.0,
            cone: PhotoreceptorParams::cone(),
            rod: PhotoreceptorParams::rod(),
            rod_weight: 0.2,
            bipolar: BipolarParams::default(),
            ganglion: GanglionModel::Fm(FmParams::default()),
            grid_step: 1,
            dt_ms: 0.025,
            outer_dt_ms: 1.0,
            bias: 0.0,
            gain: 30.0,
            noise_sd: 0.0,
            seed: 0,
            warmup_ms: 50.0,
        }
    }

    /// LIF ganglion cells at 0.1 ms, with the same input scaling as [`RetinaConfig::fm`].
    pub fn lif() -> Self {
        Self {
            ganglion: GanglionModel::Lif(LifParams::default()),
            dt_ms: 0.1,
            ..Self::fm()
        }
    }

    /// Number of ganglion steps per outer step.
    fn substeps(&self) -> usize {
        (self.outer_dt_ms / self.dt_ms).round() as usize
    }

    /// Checks every value, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let finite_positive = [
            ("intensity scale", self.intensity_scale),
            ("dt_ms", self.dt_ms),
            ("outer_dt_ms", self.outer_dt_ms),
        ];
        for (what, v) in finite_positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(
                    what,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if self.dt_ms > 1.0 {
            return Err(Error::invalid(
                "dt_ms",
                format!(
                    "{} ms is too coarse for spiking cells (at most 1 ms)",
                    self.dt_ms
                ),
            ));
        }
        let n = self.outer_dt_ms / self.dt_ms;
        if n < 0.999 || (n - n.round()).abs() > 1e-6 * n {
            return Err(Error::invalid(
                "outer_dt_ms",
                format!(
                    "{} ms must be a whole multiple of dt_ms = {} ms",
                    self.outer_dt_ms, self.dt_ms
                ),
            ));
        }
        for (what, v) in [
            ("bias", self.bias),
            ("gain", self.gain),
            ("noise_sd", self.noise_sd),
            ("warmup_ms", self.warmup_ms),
        ] {
            if !v.is_finite() || (what != "bias" && v < 0.0) {
                return Err(Error::invalid(
                    what,
                    format!(
                        "must be finite{}, got {v}",
                        if what == "bias" { "" } else { " and >= 0" }
                    ),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.rod_weight) {
            return Err(Error::invalid(
                "rod_weight",
                format!("must be in [0, 1], got {}", self.rod_weight),
            ));
        }
        if self.grid_step == 0 {
            return Err(Error::invalid("grid step", "must be at least 1 pixel"));
        }
        self.cone.validate("cone")?;
        self.rod.validate("rod")?;
        self.bipolar.validate()?;
        match &self.ganglion {
            GanglionModel::Fm(p) => {
                let values = [
                    p.g_na,
                    p.g_ca,
                    p.g_k,
                    p.g_a,
                    p.g_kca,
                    p.g_l,
                    p.c_m,
                    p.ca_out,
                    p.ca_res,
                    p.tau_ca,
                    p.shell_depth_um,
                    p.ca_diss,
                ];
                if values.iter().any(|v| !v.is_finite() || *v < 0.0)
                    || p.c_m <= 0.0
                    || p.ca_res <= 0.0
                    || p.tau_ca <= 0.0
                    || p.shell_depth_um <= 0.0
                    || p.ca_diss <= 0.0
                    || p.g_l <= 0.0
                {
                    return Err(Error::invalid(
                        "Fohlmeister-Miller parameters",
                        "conductances must be >= 0 (leak > 0); capacitance, calcium levels, \
                         tau_Ca and shell depth > 0",
                    ));
                }
            }
            GanglionModel::Lif(p) => {
                let ok = p.tau_m > 0.0
                    && p.r_m > 0.0
                    && p.t_ref >= 0.0
                    && p.v_reset < p.v_threshold
                    && [p.tau_m, p.r_m, p.t_ref, p.v_rest, p.v_reset, p.v_threshold]
                        .iter()
                        .all(|v| v.is_finite());
                if !ok {
                    return Err(Error::invalid(
                        "LIF parameters",
                        "need tau_m > 0, r_m > 0, t_ref >= 0 and reset below threshold",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the retina watches: frames of luminance (row-major, nominally in `[0, 1]`), each shown
/// from its start time until the next frame's.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimulus {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The frames, `width·height` values each.
    pub frames: Vec<Vec<f32>>,
    /// Start time of each frame, ms, increasing from 0.
    pub starts_ms: Vec<f64>,
    /// Total duration, ms; the last frame lasts until then.
    pub duration_ms: f64,
}

impl Stimulus {
    /// Frames shown from the given start times (the first must be 0) until `duration_ms`.
    pub fn new(
        width: usize,
        height: usize,
        frames: Vec<(Vec<f32>, f64)>,
        duration_ms: f64,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(
                "stimulus",
                format!("the image is {width}x{height}; it needs at least one pixel"),
            ));
        }
        if frames.is_empty() {
            return Err(Error::invalid("stimulus", "no frames"));
        }
        if !(duration_ms.is_finite() && duration_ms > 0.0) {
            return Err(Error::invalid(
                "stimulus duration",
                format!("must be finite and > 0 ms, got {duration_ms}"),
            ));
        }
        let mut starts = Vec::with_capacity(frames.len());
        let mut pixels = Vec::with_capacity(frames.len());
        for (i, (frame, start)) in frames.into_iter().enumerate() {
            if frame.len() != width * height {
                return Err(Error::Shape {
                    what: format!("stimulus frame {i}"),
                    expected: format!("{width}x{height} = {} values", width * height),
                    got: format!("{} values", frame.len()),
                });
            }
            if let Some(v) = frame.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(Error::invalid(
                    format!("stimulus frame {i}"),
                    format!("luminance must be finite and >= 0, found {v}"),
                ));
            }
            let prev = starts.last().copied();
            let ordered = match prev {
                None => start == 0.0,
                Some(p) => start.is_finite() && start > p && start < duration_ms,
            };
            if !ordered {
                return Err(Error::invalid(
                    format!("stimulus frame {i}"),
                    format!(
                        "start {start} ms: the first frame starts at 0 and the others at \
                         increasing times before the end ({duration_ms} ms)"
                    ),
                ));
            }
            starts.push(start);
            pixels.push(frame);
        }
        Ok(Self {
            width,
            height,
            frames: pixels,
            starts_ms: starts,
            duration_ms,
        })
    }

    /// A flash: `background` everywhere for `pre_ms`, then `image` for `on_ms`, then the
    /// background again for `post_ms`, so both ON (onset) and OFF (offset) responses show.
    pub fn flash(
        width: usize,
        height: usize,
        image: Vec<f32>,
        background: f32,
        pre_ms: f64,
        on_ms: f64,
        post_ms: f64,
    ) -> Result<Self> {
        for (what, v) in [("pre_ms", pre_ms), ("post_ms", post_ms)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    what,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        if !(on_ms.is_finite() && on_ms > 0.0) {
            return Err(Error::invalid(
                "flash duration",
                format!("must be finite and > 0 ms, got {on_ms}"),
            ));
        }
        let bg = vec![background; width * height];
        let mut frames = Vec::new();
        if pre_ms > 0.0 {
            frames.push((bg.clone(), 0.0));
        }
        frames.push((image, pre_ms));
        if post_ms > 0.0 {
            frames.push((bg, pre_ms + on_ms));
        }
        Self::new(width, height, frames, pre_ms + on_ms + post_ms)
    }

    /// A video: `frames` at `fps` frames per second, the last shown for one frame period.
    pub fn video(width: usize, height: usize, frames: Vec<Vec<f32>>, fps: f64) -> Result<Self> {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::invalid(
                "fps",
                format!("must be finite and > 0, got {fps}"),
            ));
        }
        let period = 1000.0 / fps;
        let n = frames.len();
        let timed = frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| (f, i as f64 * period))
            .collect();
        Self::new(width, height, timed, n as f64 * period)
    }

    /// Index of the frame shown at `t_ms`.
    fn frame_index(&self, t_ms: f64) -> usize {
        self.starts_ms
            .partition_point(|&s| s <= t_ms)
            .saturating_sub(1)
    }
}

/// A retina for images of one size.
#[derive(Debug, Clone)]
pub struct Retina {
    config: RetinaConfig,
    width: usize,
    height: usize,
}

impl Retina {
    /// A retina with `config` for `width`×`height` images.
    pub fn new(config: RetinaConfig, width: usize, height: usize) -> Result<Self> {
        config.validate()?;
        if width == 0 || height == 0 || width > u16::MAX as usize || height > u16::MAX as usize {
            return Err(Error::invalid(
                "retina size",
                format!("{width}x{height}: each side must be 1..=65535 pixels"),
            ));
        }
        Ok(Self {
            config,
            width,
            height,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RetinaConfig {
        &self.config
    }

    /// The ganglion grid: `(columns, rows)` of cells of each type.
    pub fn grid(&self) -> (usize, usize) {
        let s = self.config.grid_step;
        (self.width.div_ceil(s), self.height.div_ceil(s))
    }

    /// Simulates the retina watching `stim`; see [`Retina::run_with_progress`].
    pub fn run(&self, stim: &Stimulus) -> Result<RetinaOutput> {
        self.run_with_progress(stim, |_, _| {})
    }

    /// Simulates the retina watching `stim`, calling `progress(simulated_ms, total_ms)` after
    /// every outer step. The retina starts adapted to the first frame.
    pub fn run_with_progress(
        &self,
        stim: &Stimulus,
        progress: impl FnMut(f64, f64),
    ) -> Result<RetinaOutput> {
        if (stim.width, stim.height) != (self.width, self.height) {
            return Err(Error::Shape {
                what: "stimulus".into(),
                expected: format!("{}x{}", self.width, self.height),
                got: format!("{}x{}", stim.width, stim.height),
            });
        }
        let dt = self.config.dt_ms;
        match self.config.ganglion {
            GanglionModel::Fm(p) => self.simulate(&FmNeuron::new(p, dt), stim, progress),
            GanglionModel::Lif(p) => self.simulate(&LifNeuron::new(p, dt), stim, progress),
        }
    }

    fn simulate<M: SpikingModel>(
        &self,
        model: &M,
        stim: &Stimulus,
        mut progress: impl FnMut(f64, f64),
    ) -> Result<RetinaOutput> {
        let cfg = &self.config;
        let outer = cfg.outer_dt_ms;
        let mut outer_retina = OuterRetina::adapted(cfg, self.width, self.height, &stim.frames[0]);
        let (gw, gh) = self.grid();
        let n_gc = gw * gh;
        let mut currents = vec![0.0; 2 * n_gc];
        let mut states = vec![model.rest_state(); 2 * n_gc];
        let mut spikes: Vec<Vec<f64>> = vec![Vec::new(); 2 * n_gc];
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let substeps = cfg.substeps();

        // Warm-up under the first frame: the outer retina is already adapted to it.
        let warm_steps = (cfg.warmup_ms / outer).round() as usize;
        for _ in 0..warm_steps {
            self.ganglion_input(outer_retina.signal(), &mut currents, &mut rng);
            integrate(model, &mut states, &currents, substeps, None);
        }

        let steps = (stim.duration_ms / outer).ceil() as usize;
        for k in 0..steps {
            let t0 = k as f64 * outer;
            outer_retina.step(cfg, &stim.frames[stim.frame_index(t0)]);
            self.ganglion_input(outer_retina.signal(), &mut currents, &mut rng);
            integrate(
                model,
                &mut states,
                &currents,
                substeps,
                Some((&mut spikes, t0)),
            );
            progress(
                ((k + 1) as f64 * outer).min(stim.duration_ms),
                stim.duration_ms,
            );
        }

        let mut all: Vec<Spike> = spikes
            .into_iter()
            .enumerate()
            .flat_map(|(cell, times)| {
                times
                    .into_iter()
                    .filter(|&t| t < stim.duration_ms)
                    .map(move |t| Spike {
                        t_ms: t,
                        cell: cell as u32,
                    })
            })
            .collect();
        all.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms).then(a.cell.cmp(&b.cell)));
        Ok(RetinaOutput {
            width: self.width,
            height: self.height,
            grid_width: gw,
            grid_height: gh,
            grid_step: cfg.grid_step,
            duration_ms: stim.duration_ms,
            spikes: all,
        })
    }

    /// Pools the rectified bipolar signal over each ganglion cell's block of pixels and turns
    /// it into input currents: ON cells first (`0..n`), then OFF cells (`n..2n`).
    fn ganglion_input(&self, signal: &[f64], currents: &mut [f64], rng: &mut StdRng) {
        let cfg = &self.config;
        let s = cfg.grid_step;
        let (gw, gh) = self.grid();
        let n = gw * gh;
        for gy in 0..gh {
            for gx in 0..gw {
                let (mut on, mut off, mut count) = (0.0, 0.0, 0usize);
                for y in gy * s..((gy + 1) * s).min(self.height) {
                    for x in gx * s..((gx + 1) * s).min(self.width) {
                        let b = signal[y * self.width + x];
                        on += b.max(0.0);
                        off += (-b).max(0.0);
                        count += 1;
                    }
                }
                let i = gy * gw + gx;
                currents[i] = cfg.bias + cfg.gain * on / count as f64;
                currents[n + i] = cfg.bias + cfg.gain * off / count as f64;
            }
        }
        if cfg.noise_sd > 0.0 {
            for c in currents.iter_mut() {
                *c += cfg.noise_sd * crate::rng::standard_normal(rng);
            }
        }
    }
}

/// Cells per rayon task: enough work per task (each cell runs a whole outer step) to amortise
/// the scheduling, few enough that small images still use every core.
const CELLS_PER_TASK: usize = 32;

/// Advances every ganglion cell by `substeps` steps under its held input; records spike times
/// (ms) when `record` gives the spike lists and the outer step's start time.
///
/// Within a task the loop runs over steps outside and cells inside: one cell's steps form a
/// chain of dependent, latency-bound arithmetic, while consecutive cells are independent, so
/// interleaving them lets the processor overlap their work.
fn integrate<M: SpikingModel>(
    model: &M,
    states: &mut [M::State],
    currents: &[f64],
    substeps: usize,
    record: Option<(&mut Vec<Vec<f64>>, f64)>,
) {
    let dt = model.dt();
    match record {
        Some((spikes, t0)) => states
            .par_chunks_mut(CELLS_PER_TASK)
            .zip(currents.par_chunks(CELLS_PER_TASK))
            .zip(spikes.par_chunks_mut(CELLS_PER_TASK))
            .for_each(|((states, currents), out)| {
                for sub in 0..substeps {
                    for ((s, &i), out) in states.iter_mut().zip(currents).zip(out.iter_mut()) {
                        if let Some(frac) = model.step(s, i) {
                            out.push(t0 + (sub as f64 + frac) * dt);
                        }
                    }
                }
            }),
        None => states
            .par_chunks_mut(CELLS_PER_TASK)
            .zip(currents.par_chunks(CELLS_PER_TASK))
            .for_each(|(states, currents)| {
                for _ in 0..substeps {
                    for (s, &i) in states.iter_mut().zip(currents) {
                        model.step(s, i);
                    }
                }
            }),
    }
}

/// Photoreceptors, horizontal and bipolar cells, advanced together every outer step.
struct OuterRetina {
    cones: PhotoreceptorLayer,
    rods: PhotoreceptorLayer,
    bipolar: BipolarLayer,
    phi: Vec<f64>,
    p: Vec<f64>,
}

impl OuterRetina {
    /// Every layer at its steady state for `frame`.
    fn adapted(cfg: &RetinaConfig, width: usize, height: usize, frame: &[f32]) -> Self {
        let phi: Vec<f64> = frame
            .iter()
            .map(|&v| f64::from(v) * cfg.intensity_scale)
            .collect();
        let cones = PhotoreceptorLayer::adapted(cfg.cone, &phi, cfg.outer_dt_ms);
        let rods = PhotoreceptorLayer::adapted(cfg.rod, &phi, cfg.outer_dt_ms);
        let mut me = Self {
            cones,
            rods,
            bipolar: BipolarLayer::new(&cfg.bipolar, width, height, cfg.outer_dt_ms),
            p: vec![0.0; phi.len()],
            phi,
        };
        me.mix(cfg.rod_weight);
        me.bipolar.adapt(&me.p);
        me
    }

    /// Rod and cone responses weighted into the signal that bipolar cells see.
    fn mix(&mut self, rod_weight: f64) {
        let (c, r) = (self.cones.response(), self.rods.response());
        for i in 0..self.p.len() {
            self.p[i] = (1.0 - rod_weight) * c[i] + rod_weight * r[i];
        }
    }

    fn step(&mut self, cfg: &RetinaConfig, frame: &[f32]) {
        for (phi, &v) in self.phi.iter_mut().zip(frame) {
            *phi = f64::from(v) * cfg.intensity_scale;
        }
        self.cones.step(&self.phi);
        self.rods.step(&self.phi);
        self.mix(cfg.rod_weight);
        self.bipolar.step(&self.p);
    }

    fn signal(&self) -> &[f64] {
        self.bipolar.signal()
    }
}
