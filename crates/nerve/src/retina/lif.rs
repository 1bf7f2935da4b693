//! A leaky integrate-and-fire ganglion cell, the cheap alternative to Fohlmeister–Miller for
//! large images: one exponential update per step instead of six gates and calcium.
//!
//! ```text
//! τ_m dV/dt = −(V − V_rest) + R·I        spike when V reaches V_θ, then V = V_reset for t_ref
//! ```
//!
//! With `R` in kΩ·cm² the input is the same current density (µA/cm²) that drives the
//! Fohlmeister–Miller cell. Between spikes the update is the exact solution for a constant
//! input, threshold crossings are located exactly inside the step and the refractory period is
//! honoured to within rounding, so for a constant current the rate is the analytic
//! `1/(t_ref + τ_m ln(RI/(RI − θ)))` (θ = V_θ − V_reset, reset at rest) at any step.

use super::model::SpikingModel;

/// Parameters of the LIF ganglion cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifParams {
    /// Membrane time constant τ_m, ms (200).
    pub tau_m: f64,
    /// Input resistance R, kΩ·cm², so that R·I is in mV for I in µA/cm² (170).
    pub r_m: f64,
    /// Resting potential, mV (−65).
    pub v_rest: f64,
    /// Reset potential after a spike, mV (−65).
    pub v_reset: f64,
    /// Firing threshold, mV (−50).
    pub v_threshold: f64,
    /// Absolute refractory period, ms (3).
    pub t_ref: f64,
}

impl Default for LifParams {
    /// Fitted (least squares on log rates) to the f–I curve of the default Fohlmeister–Miller
    /// cell between 0.2 and 20 µA/cm², so that the same bias and gain drive either model
    /// alike: both fire from about 0.13 µA/cm², about 25 Hz at 0.5, 80 Hz at 2 and 210 Hz at
    /// 10 µA/cm². The long τ_m and high R (C = τ/R ≈ 1.2 µF/cm²) mimic how slowly the
    /// Fohlmeister–Miller cell charges near its threshold.
    fn default() -> Self {
        Self {
            tau_m: 200.0,
            r_m: 170.0,
            v_rest: -65.0,
            v_reset: -65.0,
            v_threshold: -50.0,
            t_ref: 3.0,
        }
    }
}

impl LifParams {
    /// The analytic steady rate (Hz) for a constant current `i` (µA/cm²) when the reset equals
    /// rest: `1/(t_ref + τ ln(RI/(RI − θ)))`, or 0 below rheobase.
    pub fn analytic_rate(&self, i: f64) -> f64 {
        let ri = self.r_m * i;
        let theta = self.v_threshold - self.v_rest;
        if ri <= theta {
            return 0.0;
        }
        1000.0 / (self.t_ref + self.tau_m * (ri / (ri - theta)).ln())
    }
}

/// The state of one LIF cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifState {
    /// Membrane potential, mV.
    pub v: f64,
    /// Refractory time still to serve, ms.
    pub refractory: f64,
}

/// A LIF model for one time step `dt`.
#[derive(Debug, Clone)]
pub struct LifNeuron {
    params: LifParams,
    dt: f64,
    /// e^{−dt/τ_m}, the decay over a whole step (the common case, computed once).
    decay: f64,
}

impl LifNeuron {
    /// A model with `params` integrated at step `dt` ms.
    pub fn new(params: LifParams, dt: f64) -> Self {
        Self {
            params,
            dt,
            decay: (-dt / params.tau_m).exp(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &LifParams {
        &self.params
    }
}

impl SpikingModel for LifNeuron {
    type State = LifState;

    fn dt(&self) -> f64 {
        self.dt
    }

    fn rest_state(&self) -> LifState {
        LifState {
            v: self.params.v_rest,
            refractory: 0.0,
        }
    }

    fn step(&self, s: &mut LifState, current: f64) -> Option<f64> {
        let p = &self.params;
        let v_inf = p.v_rest + p.r_m * current;
        // Time of this step not yet simulated, and where in the step we are.
        let mut left = self.dt;
        if s.refractory >= left {
            s.refractory -= left;
            return None;
        }
        left -= s.refractory;
        s.refractory = 0.0;
        let mut spike = None;
        // A strong input can fire more than once per step; only the first is reported, and the
        // loop ends because every spike consumes at least the (positive) refractory period.
        while left > 0.0 {
            let decay = if left == self.dt {
                self.decay
            } else {
                (-left / p.tau_m).exp()
            };
            let v_end = v_inf + (s.v - v_inf) * decay;
            if v_end < p.v_threshold || v_inf <= p.v_threshold {
                s.v = v_end;
                break;
            }
            // Exact crossing: V(t) = V∞ + (V0 − V∞) e^{−t/τ} = V_θ.
            let t_cross = p.tau_m * ((s.v - v_inf) / (p.v_threshold - v_inf)).ln();
            let t_cross = t_cross.clamp(0.0, left);
            if spike.is_none() {
                spike = Some((self.dt - left + t_cross) / self.dt);
            }
            s.v = p.v_reset;
            left -= t_cross;
            if p.t_ref >= left {
                s.refractory = p.t_ref - left;
                break;
            }
            left -= p.t_ref;
            if p.t_ref <= 0.0 && t_cross <= 0.0 {
                // Zero refractory period and an input that re-crosses at once: stop here
                // instead of spinning.
                break;
            }
        }
        spike
    }
}
