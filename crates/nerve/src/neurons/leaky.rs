//! Leaky integrate-and-fire neuron (snnTorch `Leaky`): `mem = β·mem + x - reset·threshold`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, run_steps, Firing, FiringConfig, Neuron, NeuronOutput, Reset};
use crate::kernels::leaky::{self as kernel, LeakyParams};

/// Options of a [`Leaky`] neuron.
#[derive(Debug, Clone)]
pub struct LeakyConfig {
    /// Membrane decay per step, clamped to [0, 1] when used.
    pub beta: f64,
    /// Learn β.
    pub learn_beta: bool,
    /// Number of neurons with their own β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule.
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl LeakyConfig {
    /// A leaky neuron with decay `beta` and snnTorch's defaults for everything else.
    pub fn new(beta: f64) -> Self {
        Self {
            beta,
            learn_beta: false,
            size: 1,
            firing: FiringConfig::default(),
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`.
    pub fn init(&self, device: &Device) -> Leaky {
        Leaky {
            beta: scalar_param(self.beta, self.size, self.learn_beta, device),
            firing: self.firing.init(self.size, device),
            record_mem: self.record_mem,
        }
    }
}

neuron_state! {
    /// State of a [`Leaky`] neuron: its membrane potential.
    LeakyState {
        /// Membrane potential.
        mem,
    }
}

/// Leaky integrate-and-fire neuron, first-order.
#[derive(Module, Debug)]
pub struct Leaky {
    /// Membrane decay β, `[1]` or per neuron.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for Leaky {
    type State<const D: usize> = LeakyState<D>;

    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: LeakyState<D>,
    ) -> (Tensor<D>, LeakyState<D>) {
        let beta = bcast::<D>(self.beta.val().clamp(0.0, 1.0));
        let reset = self.firing.reset_signal(&state.mem);
        let mem = match self.firing.config.reset {
            Reset::Subtract => beta * state.mem + x - reset.clone() * self.firing.threshold::<D>(),
            Reset::Zero => beta * (reset.clone().neg() + 1.0) * state.mem + x,
            Reset::None => beta * state.mem + x,
        };
        let mem = self.firing.quantize(mem);
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk, LeakyState { mem })
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> LeakyState<D> {
        LeakyState::zeros_like(x)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        let mut params = self.firing.named_params();
        params.push(("beta", self.beta.val()));
        params
    }

    /// A whole sequence `x[T, ...]`, starting from `state` (zeros when `None`).
    ///
    /// On the Flex CPU backend, with shared constant β, threshold and spike value, a delayed
    /// detached reset, no inhibition and a closed-form surrogate (snnTorch's defaults), this runs
    /// the fused multi-step kernel ([`crate::kernels::leaky`]); otherwise, or with
    /// `NERVE_FUSED=0` in the environment, it steps with tensor ops as [`Leaky::run_reference`].
    fn run<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<LeakyState<D>>,
    ) -> NeuronOutput<D, LeakyState<D>> {
        let state = state.unwrap_or_else(|| LeakyState::zeros_like(&x.clone().narrow(0, 0, 1)));
        match self.fused_params(&x) {
            Some(params) => self.run_fused(x, state, params),
            None => self.run_reference(x, Some(state)),
        }
    }
}

impl Leaky {
    /// [`Neuron::run`] stepping with tensor ops: the reference the fused kernel is tested against.
    pub fn run_reference<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<LeakyState<D>>,
    ) -> NeuronOutput<D, LeakyState<D>> {
        run_steps(self, x, state)
    }

    /// True when [`Neuron::run`] on `x` takes the fused kernel.
    pub fn runs_fused<const D: usize>(&self, x: &Tensor<D>) -> bool {
        self.fused_params(x).is_some()
    }

    /// The kernel's constants when it computes exactly what [`Neuron::step`] would.
    fn fused_params<const D: usize>(&self, x: &Tensor<D>) -> Option<LeakyParams> {
        let cfg = &self.firing.config;
        let shared_constant = |p: &Param<Tensor<1>>| p.dims() == [1] && !p.is_require_grad();
        let usable = crate::kernels::enabled()
            && D >= 2
            && cfg.reset_delay
            && cfg.detach_reset
            && !cfg.inhibition
            && shared_constant(&self.beta)
            && shared_constant(&self.firing.threshold)
            && shared_constant(&self.firing.graded)
            && x.dtype() == burn::tensor::DType::F32
            && crate::device::is_flex(&x.device());
        if !usable {
            return None;
        }
        Some(LeakyParams {
            beta: self.beta.val().clamp(0.0, 1.0).into_scalar::<f32>(),
            threshold: self.firing.threshold.val().into_scalar::<f32>(),
            graded: self.firing.graded.val().into_scalar::<f32>(),
            reset: cfg.reset,
            surrogate: cfg.surrogate.closed_form()?,
            membranes: self.record_mem,
            levels: cfg.state_quant.as_ref().map(|q| q.shared_levels()),
        })
    }

    fn run_fused<const D: usize>(
        &self,
        x: Tensor<D>,
        state: LeakyState<D>,
        params: LeakyParams,
    ) -> NeuronOutput<D, LeakyState<D>> {
        let shape = x.dims();
        let steps = shape[0];
        let neurons: usize = shape[1..].iter().product();
        let run = kernel::leaky_multistep(
            x.reshape([steps, neurons]),
            state.mem.reshape([neurons]),
            params,
        );
        let mut last = shape;
        last[0] = 1;
        NeuronOutput {
            spk: run.spk.reshape(shape),
            // Present exactly when `record_mem` asked the kernel for it.
            mem: run.mem.map(|m| m.reshape(shape)),
            state: LeakyState {
                mem: run.last.reshape(last),
            },
        }
    }
}
