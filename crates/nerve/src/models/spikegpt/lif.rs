//! The multi-step LIF neuron of SpikeGPT and the Heaviside spike with an arctangent surrogate.
//!
//! The released code uses spikingjelly's `MultiStepLIFNode(tau=2., v_threshold=1,
//! surrogate_function=surrogate.ATan(alpha=2.0))` with everything else left at spikingjelly's
//! defaults: `decay_input=True`, `v_reset=0.0` (hard reset to zero) and `detach_reset=False`,
//! so the reset is **not** detached: the spike's surrogate gradient also flows through the
//! reset `V = H·(1 − S)`. The membrane starts at zero for every sequence (the trainer calls
//! `functional.reset_net` after each forward). The token axis is the neuron's time axis.
//!
//! spikingjelly's Heaviside fires at `u ≥ 0` (`(x >= 0)`), unlike [`Surrogate::spike`], which
//! fires at `u > 0`; this module therefore builds its own step and reuses only the arctangent
//! stand-in of [`Surrogate::ATan`], whose derivative `(α/2) / (1 + (π α u / 2)²)` is spikingjelly's.

use burn::tensor::Tensor;

use crate::surrogate::Surrogate;

use super::tokens::split_tokens;

/// `H(u)` with `H(0) = 1` forward and the arctangent surrogate slope (sharpness `alpha`) backward.
pub fn heaviside_atan<const D: usize>(u: Tensor<D>, alpha: f64) -> Tensor<D> {
    let step = u.clone().greater_equal_elem(0.0).float();
    if !u.is_tracked() {
        // No graph to feed: skip the stand-in (it would cancel to exactly zero anyway).
        return step;
    }
    let s = Surrogate::ATan { alpha }.stand_in(u, &step);
    step + (s.clone() - s.detach())
}

/// Leaky integrate-and-fire neuron with hard reset to zero, as in SpikeGPT's blocks.
///
/// Per step: `H = V + (X − V)/τ`, `S = H ≥ θ` (arctangent surrogate), `V = H·(1 − S)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lif {
    /// Membrane time constant τ (2 in SpikeGPT).
    pub tau: f64,
    /// Firing threshold θ (1 in SpikeGPT).
    pub v_threshold: f64,
    /// Sharpness α of the arctangent surrogate (2 in SpikeGPT).
    pub alpha: f64,
}

impl Default for Lif {
    /// SpikeGPT's neuron: τ = 2, θ = 1, α = 2.
    fn default() -> Self {
        Self {
            tau: 2.0,
            v_threshold: 1.0,
            alpha: 2.0,
        }
    }
}

impl Lif {
    /// One step on input `x` with membrane `v` (any shape); returns the spikes and the new membrane.
    ///
    /// Both the parallel and the recurrent forward of the model compute their spikes with this
    /// function, so the two modes fire identically whenever their inputs are identical.
    pub fn step<const D: usize>(&self, x: Tensor<D>, v: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let h = v.clone() + (x - v) / self.tau;
        let s = heaviside_atan(h.clone().sub_scalar(self.v_threshold), self.alpha);
        // Hard reset to 0, not detached (spikingjelly's detach_reset=False).
        let v = h.clone() - h * s.clone();
        (s, v)
    }

    /// A whole sequence `x[B, T, N]` over the token axis, from membrane `v0[B, N]` (zeros when
    /// `None`); returns the spikes `[B, T, N]` and the final membrane.
    pub fn run(&self, x: Tensor<3>, v0: Option<Tensor<2>>) -> (Tensor<3>, Tensor<2>) {
        let [b, t, n] = x.dims();
        let mut v = v0.unwrap_or_else(|| Tensor::zeros([b, n], &x.device()));
        if t == 0 {
            return (x, v);
        }
        let mut spikes = Vec::with_capacity(t);
        for xt in split_tokens(x) {
            let (s, next) = self.step(xt, v);
            v = next;
            spikes.push(s.unsqueeze_dim::<3>(1));
        }
        (Tensor::cat(spikes, 1), v)
    }
}
