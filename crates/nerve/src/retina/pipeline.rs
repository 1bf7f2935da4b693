//! The [`Retina`]: the outer retina advanced every outer step, its signal pooled into
//! ganglion-cell input currents, and the ganglion cells integrated in parallel in between.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use super::config::{GanglionModel, RetinaConfig};
use super::ganglion::FmNeuron;
use super::lif::LifNeuron;
use super::model::SpikingModel;
use super::outer::OuterRetina;
use super::output::{RetinaOutput, Spike};
use super::stimulus::Stimulus;
use crate::error::{Error, Result};

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
