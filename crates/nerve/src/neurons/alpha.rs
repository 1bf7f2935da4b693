//! Alpha neuron (snnTorch `Alpha`): the membrane follows a difference of two exponentials, an
//! excitatory current decaying with α and an inhibitory one decaying with β.
//!
//! `syn_exc = α·syn_exc + x`, `syn_inh = β·syn_inh - x`,
//! `mem = τ_α·(syn_exc + syn_inh)` with `τ_α = ln α / (ln β - ln α) + 1` (snnTorch's formula).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::firing::scalar_param;
use super::{bcast, neuron_state, Firing, FiringConfig, Neuron, Reset};
use crate::error::{Error, Result};

/// Options of an [`Alpha`] neuron.
#[derive(Debug, Clone)]
pub struct AlphaConfig {
    /// Excitatory current decay per step; must exceed β.
    pub alpha: f64,
    /// Inhibitory current decay per step; must be below α and 1.
    pub beta: f64,
    /// Learn α.
    pub learn_alpha: bool,
    /// Learn β.
    pub learn_beta: bool,
    /// Number of neurons with their own α, β and threshold; 1 shares them across the layer.
    pub size: usize,
    /// Firing rule (snnTorch's Alpha resets to zero by default).
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl AlphaConfig {
    /// An alpha neuron with decays `alpha > beta`, resetting to zero as snnTorch's does.
    pub fn new(alpha: f64, beta: f64) -> Self {
        Self {
            alpha,
            beta,
            learn_alpha: false,
            learn_beta: false,
            size: 1,
            firing: FiringConfig {
                reset: Reset::Zero,
                ..FiringConfig::default()
            },
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`; fails unless `0 < β < α ≤ 1` (τ_α is undefined otherwise).
    pub fn init(&self, device: &Device) -> Result<Alpha> {
        let (a, b) = (self.alpha, self.beta);
        // NaN fails every comparison, so it is rejected here too.
        if !(b > 0.0 && b < a && a <= 1.0) {
            return Err(Error::invalid(
                "Alpha decays",
                format!("need 0 < beta < alpha <= 1, got alpha = {a}, beta = {b}"),
            ));
        }
        Ok(Alpha {
            alpha: scalar_param(a, self.size, self.learn_alpha, device),
            beta: scalar_param(b, self.size, self.learn_beta, device),
            firing: self.firing.init(self.size, device),
            record_mem: self.record_mem,
        })
    }
}

neuron_state! {
    /// State of an [`Alpha`] neuron.
    AlphaState {
        /// Excitatory synaptic current.
        syn_exc,
        /// Inhibitory synaptic current.
        syn_inh,
        /// Membrane potential.
        mem,
    }
}

/// Alpha-function neuron: a delayed, smoothed response to each input.
#[derive(Module, Debug)]
pub struct Alpha {
    /// Excitatory decay α, `[1]` or per neuron.
    pub alpha: Param<Tensor<1>>,
    /// Inhibitory decay β, `[1]` or per neuron.
    pub beta: Param<Tensor<1>>,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for Alpha {
    type State<const D: usize> = AlphaState<D>;

    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: AlphaState<D>,
    ) -> (Tensor<D>, AlphaState<D>) {
        let alpha = self.alpha.val().clamp(0.0, 1.0);
        let beta = self.beta.val().clamp(0.0, 1.0);
        let log_alpha = alpha.clone().log();
        let tau_alpha = bcast::<D>(log_alpha.clone() / (beta.clone().log() - log_alpha) + 1.0);
        let (alpha, beta) = (bcast::<D>(alpha), bcast::<D>(beta));

        let reset = self.firing.reset_signal(&state.mem);
        let mut exc = alpha * state.syn_exc + x.clone();
        let mut inh = beta * state.syn_inh.clone() - x;
        let mut mem = tau_alpha * (exc.clone() + inh.clone());
        match self.firing.config.reset {
            // snnTorch's subtraction: the excitatory current loses the threshold, the inhibitory
            // one is cleared, and the membrane gets the previous inhibitory current back.
            Reset::Subtract => {
                exc = exc - reset.clone() * self.firing.threshold::<D>();
                inh = inh.clone() - reset.clone() * inh;
                mem = mem + reset.clone() * state.syn_inh;
            }
            Reset::Zero => {
                let keep = reset.clone().neg() + 1.0;
                exc = exc * keep.clone();
                inh = inh * keep.clone();
                mem = mem * keep;
            }
            Reset::None => {}
        }
        let (mut exc, mut inh) = (self.firing.quantize(exc), self.firing.quantize(inh));
        let mut mem = self.firing.quantize(mem);
        let spk = self.firing.fire(&mem);
        if !self.firing.config.reset_delay {
            // snnTorch's Alpha has no immediate reset; this applies the membrane's own rule to the
            // membrane and clears the currents with it, so a zero reset really silences the neuron.
            let do_reset = spk.clone() / bcast::<D>(self.firing.graded.val()) - reset.clone();
            match self.firing.config.reset {
                Reset::Subtract => {
                    exc = exc - do_reset.clone() * self.firing.threshold::<D>();
                    inh = inh.clone() - do_reset.clone() * inh;
                }
                Reset::Zero => {
                    let keep = do_reset.neg() + 1.0;
                    exc = exc * keep.clone();
                    inh = inh * keep;
                }
                Reset::None => {}
            }
            mem = self.firing.immediate_reset(mem, &spk, &reset);
        }
        (
            spk,
            AlphaState {
                syn_exc: exc,
                syn_inh: inh,
                mem,
            },
        )
    }

    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> AlphaState<D> {
        AlphaState::zeros_like(x)
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

    #[test]
    fn decays_must_be_ordered() {
        let device = Device::flex();
        assert!(AlphaConfig::new(0.8, 0.9).init(&device).is_err());
        assert!(AlphaConfig::new(0.9, 0.0).init(&device).is_err());
        assert!(AlphaConfig::new(f64::NAN, 0.5).init(&device).is_err());
        assert!(AlphaConfig::new(0.9, 0.8).init(&device).is_ok());
    }

    #[test]
    fn response_rises_then_falls() {
        let device = Device::flex();
        let mut config = AlphaConfig::new(0.9, 0.5);
        config.record_mem = true;
        config.firing.threshold = 100.0;
        let neuron = config.init(&device).unwrap();
        let mut pulse = vec![0.0f32; 12];
        pulse[0] = 1.0;
        let x = Tensor::<1>::from_floats(pulse.as_slice(), &device).reshape([12, 1]);
        let mem = to_vec(neuron.run(x, None).mem.unwrap());
        // The input cancels on the first step; the difference of exponentials then peaks later.
        assert!(mem[0].abs() < 1e-6);
        let peak = (0..mem.len())
            .max_by(|&a, &b| mem[a].total_cmp(&mem[b]))
            .unwrap();
        assert!(peak > 1 && peak < mem.len() - 1, "{mem:?}");
    }

    #[test]
    fn subtract_reset_follows_snntorch() {
        let device = Device::flex();
        let (a, b) = (0.9f64, 0.5f64);
        let mut config = AlphaConfig::new(a, b);
        config.firing.reset = Reset::Subtract;
        config.firing.threshold = 0.1;
        let neuron = config.init(&device).unwrap();
        let x = Tensor::<2>::from_floats([[0.0], [0.0]], &device);
        let state = AlphaState {
            syn_exc: Tensor::from_floats([[2.0]], &device),
            syn_inh: Tensor::from_floats([[-0.5]], &device),
            mem: Tensor::from_floats([[1.0]], &device),
        };
        let out = neuron.run(x, Some(state));
        // The previous membrane 1 > 0.1 resets step 1: exc = 0.9·2 - 0.1, inh = 0,
        // mem = τ·(0.9·2 + 0.5·(-0.5)) + (-0.5).
        let tau = a.ln() / (b.ln() - a.ln()) + 1.0;
        let mem1 = tau * (1.8 - 0.25) - 0.5;
        let (exc1, inh1) = (1.7, 0.0);
        // Step 2 resets again (mem1 > 0.1): exc = 0.9·1.7 - 0.1, inh = 0, mem gets inh1 back.
        let exc2 = 0.9 * exc1 - 0.1;
        let mem2 = tau * (0.9 * exc1 + 0.5 * inh1) + inh1;
        assert!(mem1 > 0.1);
        let got = |t: Tensor<2>| to_vec(t)[0];
        assert!((got(out.state.syn_exc) - exc2).abs() < 1e-6);
        assert!(got(out.state.syn_inh).abs() < 1e-6);
        assert!((got(out.state.mem) - mem2).abs() < 1e-6);
    }
}
