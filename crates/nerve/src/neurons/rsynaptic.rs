//! Recurrent synaptic neuron (snnTorch `RSynaptic`): the previous step's spikes join the input
//! current, `syn = α·syn + x + rec(spk)`, `mem = β·mem + syn - reset·threshold`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, Firing, FiringConfig, Neuron, Recurrent, RecurrentConfig};
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

neuron_state! {
    /// State of an [`RSynaptic`] neuron.
    RSynapticState {
        /// Spikes of the previous step, fed back.
        spk,
        /// Synaptic current.
        syn,
        /// Membrane potential.
        mem,
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

impl Neuron for RSynaptic {
    type State<const D: usize> = RSynapticState<D>;

    fn step<const D: usize>(
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
        let (syn, mem) = (self.firing.quantize(syn), self.firing.quantize(mem));
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk.clone(), RSynapticState { spk, syn, mem })
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> RSynapticState<D> {
        RSynapticState::zeros_like(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut params = self.firing.named_params();
        params.push(("alpha", self.alpha.val()));
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
