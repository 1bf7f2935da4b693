//! Second-order leaky integrate-and-fire neuron (snnTorch `Synaptic`): a decaying synaptic
//! current `syn = α·syn + x` feeds the membrane `mem = β·mem + syn`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, Firing, FiringConfig, Neuron};

/// Options of a [`Synaptic`] neuron.
#[derive(Debug, Clone)]
pub struct SynapticConfig {
    /// Synaptic current decay per step, clamped to [0, 1] when used.
    pub alpha: f64,
    /// Membrane decay per step, clamped to [0, 1] when used.
    pub beta: f64,
    /// Learn α.
    pub learn_alpha: bool,
    /// Learn β.
    pub learn_beta: bool,
    /// Number of neurons with their own α, β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule.
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl SynapticConfig {
    /// A synaptic neuron with decays `alpha` (current) and `beta` (membrane), snnTorch defaults.
    pub fn new(alpha: f64, beta: f64) -> Self {
        Self {
            alpha,
            beta,
            learn_alpha: false,
            learn_beta: false,
            size: 1,
            firing: FiringConfig::default(),
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`.
    pub fn init(&self, device: &Device) -> Synaptic {
        Synaptic {
            alpha: scalar_param(self.alpha, self.size, self.learn_alpha, device),
            beta: scalar_param(self.beta, self.size, self.learn_beta, device),
            firing: self.firing.init(self.size, device),
            record_mem: self.record_mem,
        }
    }
}

neuron_state! {
    /// State of a [`Synaptic`] neuron.
    SynapticState {
        /// Synaptic current.
        syn,
        /// Membrane potential.
        mem,
    }
}

/// Synaptic-conductance leaky integrate-and-fire neuron.
#[derive(Module, Debug)]
pub struct Synaptic {
    /// Synaptic current decay α, `[1]` or per neuron.
    pub alpha: Param<Tensor<1>>,
    /// Membrane decay β, `[1]` or per neuron.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for Synaptic {
    type State<const D: usize> = SynapticState<D>;

    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: SynapticState<D>,
    ) -> (Tensor<D>, SynapticState<D>) {
        let alpha = bcast::<D>(self.alpha.val().clamp(0.0, 1.0));
        let beta = bcast::<D>(self.beta.val().clamp(0.0, 1.0));
        let reset = self.firing.reset_signal(&state.mem);
        let syn = alpha * state.syn + x;
        let mem = beta * state.mem + syn.clone();
        // snnTorch's reset-to-zero clears only the membrane; the synaptic current keeps flowing.
        let mem = self.firing.apply_reset(mem, &reset);
        let (syn, mem) = (self.firing.quantize(syn), self.firing.quantize(mem));
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk, SynapticState { syn, mem })
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> SynapticState<D> {
        SynapticState::zeros_like(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut params = self.firing.named_params();
        params.push(("alpha", self.alpha.val()));
        params.push(("beta", self.beta.val()));
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::to_vec;
    use crate::neurons::Reset;

    #[test]
    fn current_builds_up_before_the_membrane_fires() {
        let device = Device::flex();
        let x = Tensor::<2>::from_floats([[1.0], [0.0], [0.0]], &device);
        let mut config = SynapticConfig::new(0.5, 0.5);
        config.record_mem = true;
        let out = config.init(&device).run(x, None);
        // syn: 1, 0.5, 0.25; mem: 1, 1.0, 0.75 -> no spike at threshold 1 (strictly greater).
        assert_eq!(to_vec(out.mem.unwrap()), vec![1.0, 1.0, 0.75]);
        assert_eq!(to_vec(out.spk), vec![0.0, 0.0, 0.0]);
        assert_eq!(to_vec(out.state.syn), vec![0.25]);
    }

    #[test]
    fn zero_reset_keeps_the_current() {
        let device = Device::flex();
        let mut config = SynapticConfig::new(0.5, 0.5);
        config.firing.reset = Reset::Zero;
        let x = Tensor::<2>::from_floats([[2.0], [0.0]], &device);
        let out = config.init(&device).run(x, None);
        // Step 1 spikes at mem 2; step 2 zeroes the whole new membrane, but syn = 1 survives.
        assert_eq!(to_vec(out.spk), vec![1.0, 0.0]);
        assert_eq!(to_vec(out.state.mem), vec![0.0]);
        assert_eq!(to_vec(out.state.syn), vec![1.0]);
    }
}
