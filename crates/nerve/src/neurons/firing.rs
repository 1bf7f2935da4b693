//! The firing and reset rule shared by every neuron: threshold, surrogate, graded spikes,
//! winner-take-all inhibition, and the reset mechanism.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::bcast;
use crate::firing::Reset;
use crate::quant::StateQuant;
use crate::surrogate::Surrogate;

/// Options of the firing rule, as snnTorch's neuron constructors take them.
#[derive(Debug, Clone)]
pub struct FiringConfig {
    /// Firing threshold.
    pub threshold: f64,
    /// Learn the threshold by gradient descent.
    pub learn_threshold: bool,
    /// Surrogate gradient of the spike.
    pub surrogate: Surrogate,
    /// Reset mechanism.
    pub reset: Reset,
    /// Reset at the next step (snnTorch default) rather than at once.
    pub reset_delay: bool,
    /// Spikes take this value instead of 1.
    pub graded_spikes_factor: f64,
    /// Learn the graded-spike factor.
    pub learn_graded_spikes_factor: bool,
    /// Winner-take-all: only the neuron with the highest membrane (last axis) may fire.
    pub inhibition: bool,
    /// Stop gradients through the reset term (snnTorch always does).
    pub detach_reset: bool,
    /// Round the membrane (and synaptic currents) to these levels each step, before firing, as
    /// snnTorch's `state_quant` argument does.
    pub state_quant: Option<StateQuant>,
}

impl Default for FiringConfig {
    fn default() -> Self {
        Self {
            threshold: 1.0,
            learn_threshold: false,
            surrogate: Surrogate::default(),
            reset: Reset::Subtract,
            reset_delay: true,
            graded_spikes_factor: 1.0,
            learn_graded_spikes_factor: false,
            inhibition: false,
            detach_reset: true,
            state_quant: None,
        }
    }
}

impl FiringConfig {
    /// Builds the firing module on `device` with parameters of `size` entries (1 = shared).
    pub fn init(&self, size: usize, device: &Device) -> Firing {
        Firing {
            threshold: scalar_param(self.threshold, size, self.learn_threshold, device),
            graded: scalar_param(
                self.graded_spikes_factor,
                size,
                self.learn_graded_spikes_factor,
                device,
            ),
            config: self.clone(),
        }
    }
}

/// A parameter tensor of `size` entries, all `value`, trained only if `learn`.
pub(crate) fn scalar_param(
    value: f64,
    size: usize,
    learn: bool,
    device: &Device,
) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::<1>::full([size], value, device)).set_require_grad(learn)
}

/// The firing rule with its (optionally learnable) threshold and graded-spike factor.
#[derive(Module, Debug)]
pub struct Firing {
    /// Threshold, `[1]` or per neuron.
    pub threshold: Param<Tensor<1>>,
    /// Graded-spike factor, `[1]` or per neuron.
    pub graded: Param<Tensor<1>>,
    /// Options.
    #[module(skip)]
    pub config: FiringConfig,
}

impl Firing {
    /// The threshold broadcast to rank `D`.
    pub fn threshold<const D: usize>(&self) -> Tensor<D> {
        bcast(self.threshold.val())
    }

    /// The threshold and graded-spike factor by their snnTorch names, the start of every
    /// neuron's [`Neuron::named_params`](super::Neuron::named_params).
    pub(crate) fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![
            ("threshold", self.threshold.val()),
            ("graded_spikes_factor", self.graded.val()),
        ]
    }

    /// The reset signal from the previous membrane: `H(mem - threshold)`, detached as in snnTorch.
    pub fn reset_signal<const D: usize>(&self, mem: &Tensor<D>) -> Tensor<D> {
        let shifted = mem.clone() - self.threshold::<D>();
        if self.config.detach_reset {
            shifted.greater_elem(0.0).float()
        } else {
            self.config.surrogate.spike(shifted)
        }
    }

    /// Applies a delayed reset to a freshly integrated membrane: subtract the threshold, or
    /// scale to zero, where the previous step fired (`reset` from [`Firing::reset_signal`]).
    pub fn apply_reset<const D: usize>(&self, mem: Tensor<D>, reset: &Tensor<D>) -> Tensor<D> {
        match self.config.reset {
            Reset::Subtract => mem - reset.clone() * self.threshold::<D>(),
            Reset::Zero => mem.clone() - reset.clone() * mem,
            Reset::None => mem,
        }
    }

    /// A freshly integrated state rounded to the state-quantization levels (unchanged without
    /// them); the gradient passes straight through.
    pub fn quantize<const D: usize>(&self, state: Tensor<D>) -> Tensor<D> {
        match &self.config.state_quant {
            Some(q) => q.apply(state),
            None => state,
        }
    }

    /// Spikes from the membrane: `graded · S(mem - threshold)`, winner-take-all if enabled.
    pub fn fire<const D: usize>(&self, mem: &Tensor<D>) -> Tensor<D> {
        let shifted = mem.clone() - self.threshold::<D>();
        let mut spk = self.config.surrogate.spike(shifted.clone());
        if self.config.inhibition {
            // Ties at the maximum are vanishingly rare with float membranes; all tied neurons fire.
            let shifted = shifted.detach();
            let max = shifted.clone().max_dim(D - 1);
            spk = spk * (shifted - max).greater_equal_elem(0.0).float();
        }
        spk * bcast::<D>(self.graded.val())
    }

    /// Applies an immediate reset (`reset_delay = false`) after `spk` fired from `mem`.
    ///
    /// `reset` is the delayed reset already applied this step; subtracting it avoids a double reset.
    pub fn immediate_reset<const D: usize>(
        &self,
        mem: Tensor<D>,
        spk: &Tensor<D>,
        reset: &Tensor<D>,
    ) -> Tensor<D> {
        if self.config.reset_delay {
            return mem;
        }
        let do_reset = spk.clone() / bcast::<D>(self.graded.val()) - reset.clone();
        match self.config.reset {
            Reset::Subtract => mem - do_reset * self.threshold::<D>(),
            Reset::Zero => mem.clone() - do_reset * mem,
            Reset::None => mem,
        }
    }
}
