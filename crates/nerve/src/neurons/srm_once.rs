//! Spike-response-model neurons that spike once at most (NOSO), trained on their spike *times*
//! with exact gradients: BPLC + NOSO.
//!
//! Source: S. M. Jin, D. Kim, D. H. Yoo, J. Eshraghian, D. S. Jeong, "BPLC + NOSO:
//! backpropagation of errors based on latency code with neurons that only spike once at most",
//! Complex & Intelligent Systems 9 (2023), <https://doi.org/10.1007/s40747-023-00983-y>, and the
//! authors' code, <https://github.com/dooseokjeong/BPLC-NOSO> (`BPLC+NOSO/functions.py`,
//! `networks.py`, `main.py`, `utils.py`), from which the facts below were read:
//!
//! - **Kernel.** The potential is a dual exponential of the input spikes,
//!   `u(t) = Σᵢ wᵢ·K(t − tᵢ)`, `K(s) = c·(e^{−s/τm} − e^{−s/τs})`, `c = τm/(τm − τs)`, kept as two
//!   traces that decay by `e^{−1/τm}` and `e^{−1/τs}` per step and both grow by `c·x` on an
//!   input `x`; `u = um − us` (so `K(0) = 0`: an input moves `u` from the next step on). Defaults
//!   τm = 160, τs = 40 steps (the released Fashion-MNIST model used 200 / 50).
//! - **Symmetric dual threshold.** A neuron fires when `u > θ` *or* `u < −θ` (θ = 0.15): a
//!   strongly inhibited neuron fires too, which keeps neurons from going dead and confines `u`
//!   to `[−θ, θ]`.
//! - **Spike once.** A mask zeroes `u` after the first spike; the neuron never fires again.
//! - **Latency.** Steps from the neuron's first input (the first step its trace is non-zero)
//!   to its spike, counting that first step as 1; a silent neuron has latency `T`.
//! - **Exact gradient (no surrogate).** The spike time `t*` obeys `u(t*) = ±θ`, so
//!   `∂t*/∂u = −(du/dt)⁻¹ = 1/(um/τm − us/τs)`, evaluated at the spike step and clamped to
//!   `[−100, 100]` (0 where the slope is 0), as `dtdu` in the authors' code. An input spike
//!   time moves the traces by `∂v/∂tᵢ = c/τ·e^{−(t−tᵢ)/τ}` (`dvdt`), which is how the error
//!   reaches the layer below.
//!
//! Here the spike tensor a layer emits is 0/1 forward, and its gradient is `∂L/∂t*` at the
//! spike step: `spike = fired + (t − t.detach())` at that step, with
//! `t = t.detach() + (u − u.detach())·g.detach()` and `g` the clamped `−(du/dt)⁻¹` — Burn's
//! autodiff then gives exactly the gradients above, with no hand-written backward.
//! [`SrmOnce::run_times`] takes the weighted input twice: `x_w` (whose gradient reaches the
//! weights with the kernel `K`) and `x_t` (zero forward, whose gradient is the spike-time path
//! with the kernel's time derivative `c·(e^{−s/τm}/τm − e^{−s/τs}/τs)`).

use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};
use rayon::prelude::*;

use super::{run_steps, Neuron, NeuronOutput, NeuronState};
use crate::error::{Error, Result};

/// Options of an [`SrmOnce`] neuron (the paper's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct SrmOnceConfig {
    /// Membrane (slow) time constant τm, in steps.
    pub tau_m: f64,
    /// Synaptic (fast) time constant τs, in steps; below τm.
    pub tau_s: f64,
    /// Symmetric threshold θ: the neuron fires when `u > θ` or `u < −θ`.
    pub threshold: f64,
    /// Bound on `|∂t/∂u|` (the paper's 100).
    pub grad_clamp: f64,
}

impl Default for SrmOnceConfig {
    fn default() -> Self {
        Self {
            tau_m: 160.0,
            tau_s: 40.0,
            threshold: 0.15,
            grad_clamp: 100.0,
        }
    }
}

impl SrmOnceConfig {
    /// τm, τs and θ, with the paper's gradient clamp.
    pub fn new(tau_m: f64, tau_s: f64, threshold: f64) -> Self {
        Self {
            tau_m,
            tau_s,
            threshold,
            ..Self::default()
        }
    }

    /// Checks the options, naming the first one at fault.
    pub fn validate(&self) -> Result<()> {
        let positive = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    format!("{v} must be a positive finite number"),
                ))
            }
        };
        positive("tau_m", self.tau_m)?;
        positive("tau_s", self.tau_s)?;
        positive("threshold", self.threshold)?;
        positive("grad clamp", self.grad_clamp)?;
        if self.tau_s >= self.tau_m {
            return Err(Error::invalid(
                "tau_s",
                format!("{} must be below tau_m = {}", self.tau_s, self.tau_m),
            ));
        }
        Ok(())
    }

    /// The neuron.
    pub fn init(&self) -> Result<SrmOnce> {
        self.validate()?;
        Ok(SrmOnce {
            decay_m: (-1.0 / self.tau_m).exp() as f32,
            decay_s: (-1.0 / self.tau_s).exp() as f32,
            scale: (self.tau_m / (self.tau_m - self.tau_s)) as f32,
            config: self.clone(),
            record_mem: false,
        })
    }
}

/// A spike-response-model neuron that fires once at most, with exact spike-time gradients.
#[derive(Debug, Clone)]
pub struct SrmOnce {
    /// Its options.
    pub config: SrmOnceConfig,
    /// Record the potential in `run`.
    pub record_mem: bool,
    decay_m: f32,
    decay_s: f32,
    scale: f32,
}

/// The state of [`SrmOnce`] neurons: both kernel traces, the spike-once mask and the latency.
#[derive(Debug, Clone)]
pub struct SrmOnceState<const D: usize> {
    /// Potential `u = um − us`, zero once the neuron has fired.
    pub mem: Tensor<D>,
    /// Slow (membrane) trace.
    pub um: Tensor<D>,
    /// Fast (synaptic) trace.
    pub us: Tensor<D>,
    /// 1 until the neuron fires, then 0 (the spike-once mask).
    pub alive: Tensor<D>,
    /// Steps since the neuron's first input, counting that step as 1 (0 before any input).
    pub elapsed: Tensor<D>,
    /// The latency of its spike once it has fired, 0 before.
    pub latency: Tensor<D>,
}

impl<const D: usize> SrmOnceState<D> {
    /// The resting state: no input yet, free to fire.
    pub fn resting(x: &Tensor<D>) -> Self {
        Self {
            mem: x.zeros_like(),
            um: x.zeros_like(),
            us: x.zeros_like(),
            alive: x.ones_like(),
            elapsed: x.zeros_like(),
            latency: x.zeros_like(),
        }
    }
}

impl<const D: usize> NeuronState<D> for SrmOnceState<D> {
    fn membrane(&self) -> Tensor<D> {
        self.mem.clone()
    }

    fn named_tensors(&self) -> Vec<(&'static str, Tensor<D>)> {
        vec![
            ("mem", self.mem.clone()),
            ("um", self.um.clone()),
            ("us", self.us.clone()),
            ("alive", self.alive.clone()),
            ("elapsed", self.elapsed.clone()),
            ("latency", self.latency.clone()),
        ]
    }
}

/// A whole sequence of [`SrmOnce`] neurons, flattened to `M` neurons: spikes with spike-time
/// gradients, and each neuron's spike step, first-input step and potential at the spike.
#[derive(Debug, Clone)]
pub struct SrmOnceRun {
    /// Spikes `[T, M]`: 0/1 forward; the gradient at a spike is `∂L/∂t*`.
    pub spk: Tensor<2>,
    /// Spike step of each neuron `[M]` (`T` when silent), carrying the exact gradient.
    pub time: Tensor<1>,
    /// Spike step of each neuron (`T` when silent).
    pub first_step: Vec<usize>,
    /// First step with input of each neuron (`T` when it never had any).
    pub onset: Vec<usize>,
    /// Potential at the spike (0 when silent); its sign says which threshold was crossed.
    pub u_spike: Vec<f32>,
    /// Time steps simulated.
    pub steps: usize,
}

impl SrmOnceRun {
    /// Latencies `[M]` (steps from the first input to the spike, the first counting 1; `T`
    /// when silent), with the exact gradient of the spike time.
    pub fn latency(&self) -> Tensor<1> {
        let t = self.steps;
        let values: Vec<f32> = self
            .first_step
            .iter()
            .zip(&self.onset)
            .map(|(&k, &o)| {
                if k < t {
                    (k + 1 - o.min(k)) as f32
                } else {
                    t as f32
                }
            })
            .collect();
        let device = self.time.device();
        let n = values.len();
        let fixed = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
        fixed + (self.time.clone() - self.time.clone().detach())
    }

    /// Number of neurons that fired.
    pub fn spike_count(&self) -> usize {
        self.first_step.iter().filter(|&&k| k < self.steps).count()
    }
}

/// What the forward scan of one neuron leaves.
#[derive(Debug, Clone, Copy)]
struct Scan {
    first: u32,
    onset: u32,
    slope_inv: f32,
    u_spike: f32,
    um: f32,
    us: f32,
}

impl SrmOnce {
    /// `K(s)`: the potential `s` steps after a unit input spike.
    pub fn kernel(&self, s: usize) -> f64 {
        let c = &self.config;
        c.tau_m / (c.tau_m - c.tau_s)
            * ((-(s as f64) / c.tau_m).exp() - (-(s as f64) / c.tau_s).exp())
    }

    /// The clamped `−(du/dt)⁻¹ = 1/(um/τm − us/τs)` (0 where the slope is 0).
    fn slope_inverse(&self, um: f32, us: f32) -> f32 {
        let denom = um / self.config.tau_m as f32 - us / self.config.tau_s as f32;
        if denom == 0.0 {
            0.0
        } else {
            let bound = self.config.grad_clamp as f32;
            (1.0 / denom).clamp(-bound, bound)
        }
    }

    /// The forward pass over `[T, M]` inputs, in f32 exactly as [`Neuron::step`] computes it.
    fn scan(&self, x: &[f32], steps: usize, m: usize) -> Vec<Scan> {
        const CHUNK: usize = 2048;
        let theta = self.config.threshold as f32;
        let never = steps as u32;
        let mut out = vec![
            Scan {
                first: never,
                onset: never,
                slope_inv: 0.0,
                u_spike: 0.0,
                um: 0.0,
                us: 0.0,
            };
            m
        ];
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let n0 = ci * CHUNK;
                for k in 0..steps {
                    let row = &x[k * m + n0..k * m + n0 + chunk.len()];
                    for (s, &xi) in chunk.iter_mut().zip(row) {
                        s.um = s.um * self.decay_m + xi * self.scale;
                        s.us = s.us * self.decay_s + xi * self.scale;
                        if s.onset == never && s.um != 0.0 {
                            s.onset = k as u32;
                        }
                        if s.first == never {
                            let u = s.um - s.us;
                            if u > theta || u < -theta {
                                s.first = k as u32;
                                s.u_spike = u;
                                s.slope_inv = self.slope_inverse(s.um, s.us);
                            }
                        }
                    }
                }
            });
        out
    }

    /// A whole sequence of weighted inputs `x_w [T, M]` (and optionally the zero-valued
    /// spike-time path `x_t [T, M]`, see the module docs), from rest.
    pub fn run_times(&self, x_w: Tensor<2>, x_t: Option<Tensor<2>>) -> Result<SrmOnceRun> {
        let [steps, m] = x_w.dims();
        if let Some(xt) = &x_t {
            if xt.dims() != [steps, m] {
                return Err(Error::Shape {
                    what: "spike-time input x_t".into(),
                    expected: format!("{:?}", [steps, m]),
                    got: format!("{:?}", xt.dims()),
                });
            }
        }
        let (tau_m, tau_s) = (self.config.tau_m, self.config.tau_s);
        if steps as f64 / tau_s > 60.0 {
            return Err(Error::invalid(
                "steps",
                format!("{steps} steps is over 60 tau_s ({tau_s}); the spike-time gradient would overflow f32"),
            ));
        }
        let values = x_w
            .clone()
            .detach()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::invalid("neuron input", format!("{e:?}")))?;
        let scans = self.scan(&values, steps, m);
        drop(values);
        let device = x_w.device();
        let never = steps as u32;
        let fired = |s: &Scan| s.first < never;
        let idx: Vec<i64> = scans
            .iter()
            .map(|s| if fired(s) { i64::from(s.first) } else { 0 })
            .collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [1, m]), &device);
        // The time path: u at the spike step through cumulative sums of the input weighted by
        // e^{+j/τ}, then scaled back by e^{−k*/τ} (so the causal kernel never needs [T, T]).
        let coef = |decay: f32, scale: f32| -> Tensor<2> {
            let v: Vec<f32> = scans
                .iter()
                .map(|s| {
                    if fired(s) {
                        self.scale * scale * decay.powi(s.first as i32) * s.slope_inv
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [1, m]), &device)
        };
        let growth = |decay: f32| -> Tensor<2> {
            let v: Vec<f32> = (0..steps).map(|j| decay.powi(-(j as i32))).collect();
            Tensor::from_data(TensorData::new(v, [steps, 1]), &device)
        };
        let path = |tau: f64, decay: f32| -> Tensor<2> {
            let drive = match &x_t {
                Some(xt) => x_w.clone() + xt.clone().div_scalar(tau),
                None => x_w.clone(),
            };
            (drive * growth(decay))
                .cumsum(0)
                .gather(0, idx.clone())
                .mul(coef(decay, 1.0))
        };
        // dt = g·(u − u.detach()) at the spike step; zero forward, exact gradient.
        let du = path(tau_m, self.decay_m) - path(tau_s, self.decay_s);
        let dt = (du.clone() - du.detach()).reshape([m]);
        let first_step: Vec<usize> = scans.iter().map(|s| s.first as usize).collect();
        let times: Vec<f32> = first_step.iter().map(|&k| k as f32).collect();
        let time = Tensor::<1>::from_data(TensorData::new(times, [m]), &device) + dt;
        let fired_v: Vec<f32> = scans
            .iter()
            .map(|s| if fired(s) { 1.0 } else { 0.0 })
            .collect();
        let fired_t = Tensor::<1>::from_data(TensorData::new(fired_v, [m]), &device);
        let marks =
            (fired_t.clone() + (time.clone() - time.clone().detach()) * fired_t).reshape([1, m]);
        let spk =
            Tensor::<2>::zeros([steps, m], &device).scatter(0, idx, marks, IndexingUpdateOp::Add);
        Ok(SrmOnceRun {
            spk,
            time,
            first_step,
            onset: scans.iter().map(|s| s.onset as usize).collect(),
            u_spike: scans.iter().map(|s| s.u_spike).collect(),
            steps,
        })
    }

    /// The state after a fast run, `[1, rest…]` (detached).
    fn final_state<const D: usize>(
        &self,
        scans: &SrmOnceRun,
        x: &Tensor<D>,
        last: (Vec<f32>, Vec<f32>),
    ) -> SrmOnceState<D> {
        let mut shape = x.dims();
        shape[0] = 1;
        let device = x.device();
        let m = scans.first_step.len();
        let t = scans.steps;
        let make = |v: Vec<f32>| -> Tensor<D> {
            Tensor::<1>::from_data(TensorData::new(v, [m]), &device).reshape(shape)
        };
        let alive: Vec<f32> = scans
            .first_step
            .iter()
            .map(|&k| if k < t { 0.0 } else { 1.0 })
            .collect();
        let elapsed: Vec<f32> = scans
            .onset
            .iter()
            .map(|&o| if o < t { (t - o) as f32 } else { 0.0 })
            .collect();
        let latency: Vec<f32> = scans
            .first_step
            .iter()
            .zip(&scans.onset)
            .map(|(&k, &o)| {
                if k < t {
                    (k + 1 - o.min(k)) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let (um, us) = last;
        let mem: Vec<f32> = um
            .iter()
            .zip(&us)
            .zip(&alive)
            .map(|((a, b), l)| (a - b) * l)
            .collect();
        SrmOnceState {
            mem: make(mem),
            um: make(um),
            us: make(us),
            alive: make(alive),
            elapsed: make(elapsed),
            latency: make(latency),
        }
    }
}

impl Neuron for SrmOnce {
    type State<const D: usize> = SrmOnceState<D>;

    /// One step: both traces take the input, `u = (um − us)·alive` fires at `|u| > θ`, the
    /// spike carries `∂t/∂u` (see the module docs) and the mask closes.
    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: SrmOnceState<D>,
    ) -> (Tensor<D>, SrmOnceState<D>) {
        let theta = self.config.threshold;
        let um = state.um * f64::from(self.decay_m) + x.clone() * f64::from(self.scale);
        let us = state.us * f64::from(self.decay_s) + x * f64::from(self.scale);
        let u = (um.clone() - us.clone()) * state.alive.clone();
        let ud = u.clone().detach();
        let fire = ud
            .clone()
            .greater_elem(theta)
            .bool_or(ud.lower_elem(-theta))
            .float();
        let denom = um.clone().detach().div_scalar(self.config.tau_m)
            - us.clone().detach().div_scalar(self.config.tau_s);
        let flat = denom.clone().equal_elem(0.0);
        let bound = self.config.grad_clamp;
        let g = denom
            .mask_fill(flat.clone(), 1.0)
            .recip()
            .mask_fill(flat, 0.0)
            .clamp(-bound, bound);
        let spk = fire.clone() + (u.clone() - u.clone().detach()) * (fire.clone() * g);
        let has_input = um.clone().detach().not_equal_elem(0.0).float();
        let counting = (state.elapsed.clone() + has_input)
            .not_equal_elem(0.0)
            .float();
        let elapsed = state.elapsed + counting;
        let latency = state.latency + fire.clone() * elapsed.clone();
        let alive = state.alive * (fire.neg() + 1.0);
        let mem = u.clone() * alive.clone();
        (
            spk,
            SrmOnceState {
                mem,
                um,
                us,
                alive,
                elapsed,
                latency,
            },
        )
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> SrmOnceState<D> {
        SrmOnceState::resting(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    /// Nothing is learned in the neuron itself (the paper trains only the weights).
    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        Vec::new()
    }

    /// From rest and without a membrane record, the whole sequence is one scan
    /// ([`SrmOnce::run_times`]); otherwise it steps. The fast path's final state is detached.
    fn run<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<SrmOnceState<D>>,
    ) -> NeuronOutput<D, SrmOnceState<D>> {
        if state.is_some() || self.record_mem || D < 2 {
            return run_steps(self, x, state);
        }
        let dims = x.dims();
        let steps = dims[0];
        let m: usize = dims[1..].iter().product();
        let flat: Tensor<2> = x.clone().reshape([steps, m]);
        match self.run_times(flat.clone(), None) {
            Ok(run) => {
                let last = last_traces(self, &flat);
                let state = self.final_state(&run, &x, last);
                NeuronOutput {
                    spk: run.spk.reshape(dims),
                    mem: None,
                    state,
                }
            }
            // Over-long sequences (see run_times) step instead.
            Err(_) => run_steps(self, x, None),
        }
    }
}

/// Both traces after the last step, recomputed in f32 as the scan does.
fn last_traces(neuron: &SrmOnce, x: &Tensor<2>) -> (Vec<f32>, Vec<f32>) {
    let [steps, m] = x.dims();
    let values: Vec<f32> = x.clone().detach().into_data().iter::<f32>().collect();
    let (mut um, mut us) = (vec![0f32; m], vec![0f32; m]);
    for k in 0..steps {
        for n in 0..m {
            let xi = values[k * m + n];
            um[n] = um[n] * neuron.decay_m + xi * neuron.scale;
            us[n] = us[n] * neuron.decay_s + xi * neuron.scale;
        }
    }
    (um, us)
}
