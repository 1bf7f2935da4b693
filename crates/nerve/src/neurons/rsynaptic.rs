//! Recurrent synaptic neuron (snnTorch `RSynaptic`): the previous step's spikes join the input
//! current, `syn = α·syn + x + rec(spk)`, `mem = β·mem + syn - reset·threshold`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, run_steps, Firing, FiringConfig, NeuronOutput, Recurrent, RecurrentConfig};
use crate::error::Result;

/// Options of an [`RSynaptic`] neuron.
#[derive(Debug, Clone)]
pub struct RSynapticConfig {
    /// Synaptic current decay per step, clamped to [0, 1] when used.
    pub alpha: f64,
    /// Membrane decay per step, clamped to [0, 1] when used.
    pub beta: f64,
    /// Learn α.
    pub learn_alpha: bool,
    /// Learn β.
    pub learn_beta: bool,
    /// Feedback path.
    pub recurrent: RecurrentConfig,
    /// Number of neurons with their own α, β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule.
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl RSynapticConfig {
    /// A recurrent synaptic neuron with decays `alpha`, `beta` and feedback `recurrent`.
    pub fn new(alpha: f64, beta: f64, recurrent: RecurrentConfig) -> Self {
        Self {
            alpha,
            beta,
            learn_alpha: false,
            learn_beta: false,
            recurrent,
            size: 1,
            firing: FiringConfig::default(),
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`; fails when the feedback path is empty.
    pub fn init(&self, device: &Device) -> Result<RSynaptic> {
        Ok(RSynaptic {
            alpha: scalar_param(self.alpha, self.size, self.learn_alpha, device),
            beta: scalar_param(self.beta, self.size, self.learn_beta, device),
            recurrent: self.recurrent.init(device)?,
            firing: self.firing.init(self.size, device),
            record_mem: self.record_mem,
        })
    }
}

/// State of an [`RSynaptic`] neuron.
#[derive(Debug, Clone)]
pub struct RSynapticState<const D: usize> {
    /// Spikes of the previous step, fed back.
    pub spk: Tensor<D>,
    /// Synaptic current.
    pub syn: Tensor<D>,
    /// Membrane potential.
    pub mem: Tensor<D>,
}

impl<const D: usize> RSynapticState<D> {
    /// The resting state (no spikes, zero current and membrane) for inputs shaped like `x`.
    pub fn zeros_like(x: &Tensor<D>) -> Self {
        Self {
            spk: x.zeros_like(),
            syn: x.zeros_like(),
            mem: x.zeros_like(),
        }
    }
}

/// Synaptic neuron with recurrent spike feedback.
#[derive(Module, Debug)]
pub struct RSynaptic {
    /// Synaptic current decay α, `[1]` or per neuron.
    pub alpha: Param<Tensor<1>>,
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

impl RSynaptic {
    /// One time step.
    pub fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: RSynapticState<D>,
    ) -> (Tensor<D>, RSynapticState<D>) {
        let alpha = bcast::<D>(self.alpha.val().clamp(0.0, 1.0));
        let beta = bcast::<D>(self.beta.val().clamp(0.0, 1.0));
        let reset = self.firing.reset_signal(&state.mem);
        let syn = alpha * state.syn + x + self.recurrent.forward(state.spk);
        let mem = beta * state.mem + syn.clone();
        // As in Synaptic, a zero reset clears the membrane only.
        let mem = self.firing.apply_reset(mem, &reset);
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk.clone(), RSynapticState { spk, syn, mem })
    }

    /// A whole sequence `x[T, ...]`, starting from `state` (zeros when `None`).
    pub fn run<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<RSynapticState<D>>,
    ) -> NeuronOutput<D, RSynapticState<D>> {
        let state = state.unwrap_or_else(|| RSynapticState::zeros_like(&x.clone().narrow(0, 0, 1)));
        run_steps(
            x,
            state,
            self.record_mem,
            |x, s| self.step(x, s),
            |s| s.mem.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::Reset;
    use crate::reference::to_vec;

    #[test]
    fn spikes_join_the_synaptic_current() {
        let device = Device::flex();
        let mut config = RSynapticConfig::new(0.0, 0.0, RecurrentConfig::one_to_one(0.5));
        config.firing.reset = Reset::None;
        let neuron = config.init(&device).unwrap();
        let x = Tensor::<2>::from_floats([[2.0], [0.0]], &device);
        let out = neuron.run(x, None);
        assert_eq!(to_vec(out.state.syn), vec![0.5]);
        assert_eq!(to_vec(out.state.mem), vec![0.5]);
    }
}
