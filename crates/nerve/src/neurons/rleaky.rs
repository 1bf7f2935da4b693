//! Recurrent leaky integrate-and-fire neuron (snnTorch `RLeaky`): the previous step's spikes
//! are fed back, `mem = β·mem + x + rec(spk) - reset·threshold`, where `rec` is a learnable
//! one-to-one weight `V` or an all-to-all `N×N` linear layer.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, Firing, FiringConfig, Neuron};
use crate::error::{Error, Result};

/// How spikes are fed back into a recurrent neuron (snnTorch's `all_to_all`, `V`, ...).
#[derive(Debug, Clone)]
pub struct RecurrentConfig {
    /// A dense `N×N` layer (true) or one weight per neuron (false).
    pub all_to_all: bool,
    /// Initial one-to-one weight `V` (snnTorch default 1), used when not all-to-all.
    pub v: f64,
    /// Size of `V`: 1 shares it across the layer, or one entry per neuron.
    pub v_size: usize,
    /// Number of neurons N of the all-to-all layer (snnTorch's `linear_features`).
    pub linear_features: usize,
    /// Give the all-to-all layer a bias (snnTorch's `nn.Linear` always has one).
    pub bias: bool,
    /// Learn the recurrent weights (snnTorch default true).
    pub learn_recurrent: bool,
}

impl RecurrentConfig {
    /// One-to-one feedback with a shared weight `v`.
    pub fn one_to_one(v: f64) -> Self {
        Self {
            all_to_all: false,
            v,
            v_size: 1,
            linear_features: 0,
            bias: true,
            learn_recurrent: true,
        }
    }

    /// All-to-all feedback through an `n×n` linear layer with bias, as snnTorch builds it.
    pub fn all_to_all(n: usize) -> Self {
        Self {
            all_to_all: true,
            linear_features: n,
            ..Self::one_to_one(1.0)
        }
    }

    /// Builds the feedback path on `device`; fails for an all-to-all layer of no neurons.
    pub fn init(&self, device: &Device) -> Result<Recurrent> {
        if self.all_to_all {
            let n = self.linear_features;
            if n == 0 {
                return Err(Error::invalid(
                    "recurrent linear_features",
                    "all-to-all feedback needs at least one neuron",
                ));
            }
            // PyTorch's nn.Linear initialisation, U(-1/sqrt(n), 1/sqrt(n)) for weight and bias.
            let k = 1.0 / (n as f64).sqrt();
            let linear = LinearConfig::new(n, n)
                .with_bias(self.bias)
                .with_initializer(Initializer::Uniform { min: -k, max: k })
                .init(device);
            let linear = if self.learn_recurrent {
                linear
            } else {
                linear.no_grad()
            };
            Ok(Recurrent {
                v: None,
                linear: Some(linear),
            })
        } else {
            if self.v_size == 0 {
                return Err(Error::invalid(
                    "recurrent v_size",
                    "V needs at least one entry",
                ));
            }
            Ok(Recurrent {
                v: Some(scalar_param(
                    self.v,
                    self.v_size,
                    self.learn_recurrent,
                    device,
                )),
                linear: None,
            })
        }
    }
}

/// The feedback path of a recurrent neuron: exactly one of `v` and `linear` is set.
#[derive(Module, Debug)]
pub struct Recurrent {
    /// One-to-one weight `V`, `[1]` or per neuron.
    pub v: Option<Param<Tensor<1>>>,
    /// All-to-all layer over the last axis.
    pub linear: Option<Linear>,
}

impl Recurrent {
    /// The recurrent input produced by the previous spikes `spk[..., N]`.
    pub fn forward<const D: usize>(&self, spk: Tensor<D>) -> Tensor<D> {
        match (&self.v, &self.linear) {
            (_, Some(linear)) => linear.forward(spk),
            (Some(v), None) => spk * bcast::<D>(v.val()),
            // Only reachable for a hand-built module; no feedback is the honest reading of it.
            (None, None) => spk.zeros_like(),
        }
    }

    /// The one-to-one weight as snnTorch names it, `V`; nothing for an all-to-all layer.
    pub(crate) fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        self.v.iter().map(|v| ("V", v.val())).collect()
    }
}

/// Options of an [`RLeaky`] neuron.
#[derive(Debug, Clone)]
pub struct RLeakyConfig {
    /// Membrane decay per step, clamped to [0, 1] when used.
    pub beta: f64,
    /// Learn β.
    pub learn_beta: bool,
    /// Feedback path.
    pub recurrent: RecurrentConfig,
    /// Number of neurons with their own β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule.
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl RLeakyConfig {
    /// A recurrent leaky neuron with decay `beta` and feedback `recurrent`, snnTorch defaults.
    pub fn new(beta: f64, recurrent: RecurrentConfig) -> Self {
        Self {
            beta,
            learn_beta: false,
            recurrent,
            size: 1,
            firing: FiringConfig::default(),
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`; fails when the feedback path is empty.
    pub fn init(&self, device: &Device) -> Result<RLeaky> {
        Ok(RLeaky {
            beta: scalar_param(self.beta, self.size, self.learn_beta, device),
            recurrent: self.recurrent.init(device)?,
            firing: self.firing.init(self.size, device),
            record_mem: self.record_mem,
        })
    }
}

neuron_state! {
    /// State of an [`RLeaky`] neuron.
    RLeakyState {
        /// Spikes of the previous step, fed back.
        spk,
        /// Membrane potential.
        mem,
    }
}

/// Leaky integrate-and-fire neuron with recurrent spike feedback.
#[derive(Module, Debug)]
pub struct RLeaky {
    /// Membrane decay β, `[1]` or per neuron.
    pub beta: Param<Tensor<1>>,
    /// Feedback path.
    pub recurrent: Recurrent,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for RLeaky {
    type State<const D: usize> = RLeakyState<D>;

    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: RLeakyState<D>,
    ) -> (Tensor<D>, RLeakyState<D>) {
        let beta = bcast::<D>(self.beta.val().clamp(0.0, 1.0));
        let reset = self.firing.reset_signal(&state.mem);
        let mem = beta * state.mem + x + self.recurrent.forward(state.spk);
        // Unlike Leaky, snnTorch's RLeaky zero reset also discards this step's input.
        let mem = self.firing.apply_reset(mem, &reset);
        let mem = self.firing.quantize(mem);
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk.clone(), RLeakyState { spk, mem })
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> RLeakyState<D> {
        RLeakyState::zeros_like(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut params = self.firing.named_params();
        params.push(("beta", self.beta.val()));
        params.extend(self.recurrent.named_params());
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::to_vec;
    use crate::neurons::Reset;

    #[test]
    fn spikes_feed_back_through_v() {
        let device = Device::flex();
        let mut config = RLeakyConfig::new(0.0, RecurrentConfig::one_to_one(0.5));
        config.firing.reset = Reset::None;
        let neuron = config.init(&device).unwrap();
        let x = Tensor::<2>::from_floats([[2.0], [0.0]], &device);
        let out = neuron.run(x, None);
        // Step 2 sees only the fed-back spike: 0.5·1.
        assert_eq!(to_vec(out.state.mem), vec![0.5]);
    }

    #[test]
    fn all_to_all_mixes_neurons() {
        let device = Device::flex();
        let mut config = RLeakyConfig::new(0.0, RecurrentConfig::all_to_all(2));
        config.recurrent.bias = false;
        config.firing.reset = Reset::None;
        let mut neuron = config.init(&device).unwrap();
        // Neuron 0's spike drives neuron 1 with weight 3 and itself with 0.
        let w = Tensor::<2>::from_floats([[0.0, 3.0], [0.0, 0.0]], &device);
        neuron.recurrent.linear.as_mut().unwrap().weight = Param::from_tensor(w);
        let x = Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 0.0]], &device);
        let out = neuron.run(x, None);
        assert_eq!(to_vec(out.state.mem), vec![0.0, 3.0]);
    }

    #[test]
    fn empty_all_to_all_is_an_error() {
        let config = RLeakyConfig::new(0.9, RecurrentConfig::all_to_all(0));
        assert!(config.init(&Device::flex()).is_err());
    }
}
