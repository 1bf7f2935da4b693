//! Lapicque's RC-circuit neuron (snnTorch `Lapicque`):
//! `mem = x·Δt/C + (1 - Δt/(R·C))·mem`, a forward-Euler step of `C·dU/dt = I - U/R`.
//!
//! snnTorch derives the missing one of β, R and C from `β = exp(-Δt/(R·C))`, so
//! `Δt/(R·C) = ln(1/β)` and `Δt/C = R·ln(1/β)`. Nerve keeps β as the parameter and R fixed,
//! which makes a learnable β actually change the dynamics (see [`LapicqueConfig::learn_beta`]).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, Firing, FiringConfig, Neuron};
use crate::error::{Error, Result};

/// Options of a [`Lapicque`] neuron: give β, or R and C, or β with one of R and C.
#[derive(Debug, Clone)]
pub struct LapicqueConfig {
    /// Membrane decay per step `exp(-Δt/(R·C))`; derived from R and C when `None`.
    pub beta: Option<f64>,
    /// Resistance R; 1 when only β is given, derived from β and C when only C is.
    pub r: Option<f64>,
    /// Capacitance C; derived from β and R when `None`.
    pub c: Option<f64>,
    /// Simulation time step Δt (snnTorch default 1).
    pub time_step: f64,
    /// Learn β with R held fixed (C follows); snnTorch registers β but never reads it here.
    pub learn_beta: bool,
    /// Number of neurons with their own β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule.
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl LapicqueConfig {
    /// A Lapicque neuron from its decay β (R = 1, C = Δt/ln(1/β)) and snnTorch's defaults.
    pub fn new(beta: f64) -> Self {
        Self {
            beta: Some(beta),
            r: None,
            c: None,
            time_step: 1.0,
            learn_beta: false,
            size: 1,
            firing: FiringConfig::default(),
            record_mem: false,
        }
    }

    /// A Lapicque neuron from its resistance and capacitance.
    pub fn from_rc(r: f64, c: f64) -> Self {
        Self {
            beta: None,
            r: Some(r),
            c: Some(c),
            ..Self::new(0.0)
        }
    }

    /// β and R as the neuron uses them, after checking that the options determine them.
    pub fn resolve(&self) -> Result<(f64, f64)> {
        let positive = |what: &str, v: f64| -> Result<f64> {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::invalid(
                    format!("Lapicque {what}"),
                    format!("must be positive and finite, got {v}"),
                ))
            }
        };
        let dt = positive("time_step", self.time_step)?;
        let beta_ok = |b: f64| -> Result<f64> {
            if b > 0.0 && b < 1.0 {
                Ok(b)
            } else {
                Err(Error::invalid(
                    "Lapicque beta",
                    format!("must lie in (0, 1), got {b}"),
                ))
            }
        };
        match (self.beta, self.r, self.c) {
            (Some(b), None, None) => Ok((beta_ok(b)?, 1.0)),
            (Some(b), Some(r), None) => Ok((beta_ok(b)?, positive("R", r)?)),
            (Some(b), None, Some(c)) => {
                let b = beta_ok(b)?;
                Ok((b, dt / (positive("C", c)? * (1.0 / b).ln())))
            }
            (None, Some(r), Some(c)) => {
                let (r, c) = (positive("R", r)?, positive("C", c)?);
                Ok(((-dt / (r * c)).exp(), r))
            }
            _ => Err(Error::invalid(
                "Lapicque options",
                "give beta, or R and C, or beta with exactly one of R and C",
            )),
        }
    }

    /// Builds the neuron on `device`; fails when β, R and C are missing or contradictory.
    pub fn init(&self, device: &Device) -> Result<Lapicque> {
        let (beta, resistance) = self.resolve()?;
        Ok(Lapicque {
            beta: scalar_param(beta, self.size, self.learn_beta, device),
            firing: self.firing.init(self.size, device),
            resistance,
            record_mem: self.record_mem,
        })
    }
}

neuron_state! {
    /// State of a [`Lapicque`] neuron: its membrane potential.
    LapicqueState {
        /// Membrane potential.
        mem,
    }
}

/// Lapicque's integrate-and-fire neuron, an RC circuit with a threshold.
#[derive(Module, Debug)]
pub struct Lapicque {
    /// Membrane decay β = exp(-Δt/(R·C)), `[1]` or per neuron.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Resistance R, fixed.
    #[module(skip)]
    pub resistance: f64,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for Lapicque {
    type State<const D: usize> = LapicqueState<D>;

    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: LapicqueState<D>,
    ) -> (Tensor<D>, LapicqueState<D>) {
        // Δt/(R·C) = ln(1/β); the clamp keeps a learnt β from leaving the domain of the log.
        let rate = bcast::<D>(
            self.beta
                .val()
                .clamp(f64::from(f32::MIN_POSITIVE), 1.0)
                .log()
                .neg(),
        );
        let reset = self.firing.reset_signal(&state.mem);
        let mem = x * rate.clone() * self.resistance + (rate.neg() + 1.0) * state.mem;
        let mem = self.firing.apply_reset(mem, &reset);
        let mem = self.firing.quantize(mem);
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk, LapicqueState { mem })
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> LapicqueState<D> {
        LapicqueState::zeros_like(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut params = self.firing.named_params();
        params.push(("beta", self.beta.val()));
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::to_vec;

    #[test]
    fn every_way_of_giving_the_circuit_agrees() {
        let dt = 0.5f64;
        let (r, c) = (2.0f64, 3.0f64);
        let beta = (-dt / (r * c)).exp();
        let configs = [
            LapicqueConfig {
                time_step: dt,
                ..LapicqueConfig::from_rc(r, c)
            },
            LapicqueConfig {
                r: Some(r),
                time_step: dt,
                ..LapicqueConfig::new(beta)
            },
            LapicqueConfig {
                c: Some(c),
                time_step: dt,
                ..LapicqueConfig::new(beta)
            },
        ];
        for config in configs {
            let (b, rr) = config.resolve().unwrap();
            assert!(
                (b - beta).abs() < 1e-12 && (rr - r).abs() < 1e-9,
                "{config:?}"
            );
        }
    }

    #[test]
    fn missing_or_contradictory_options_are_errors() {
        let none = LapicqueConfig {
            beta: None,
            ..LapicqueConfig::new(0.9)
        };
        assert!(none.init(&Device::flex()).is_err());
        let all = LapicqueConfig {
            r: Some(1.0),
            c: Some(1.0),
            ..LapicqueConfig::new(0.9)
        };
        assert!(all.resolve().is_err());
        assert!(LapicqueConfig::new(1.0).resolve().is_err());
        assert!(LapicqueConfig::from_rc(-1.0, 1.0).resolve().is_err());
    }

    #[test]
    fn integrates_like_an_rc_circuit() {
        let device = Device::flex();
        let neuron = LapicqueConfig::from_rc(1.0, 2.0).init(&device).unwrap();
        let x = Tensor::<2>::from_floats([[1.0], [1.0]], &device);
        let out = neuron.run(x, None);
        // mem1 = 1·1/2 = 0.5; mem2 = 0.5 + (1 - 0.5)·0.5 = 0.75.
        let mem = to_vec(out.state.mem)[0];
        assert!((mem - 0.75).abs() < 1e-6, "{mem}");
    }
}
