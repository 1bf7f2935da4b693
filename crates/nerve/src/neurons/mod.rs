//! Spiking neuron models, one file per model, all with explicit state.
//!
//! Every neuron offers `step(x, state) -> (spk, state)` for one time step (any tensor rank) and
//! `run(x[T, ...], state) -> NeuronOutput` for a whole sequence. The state returned by `run`
//! keeps a leading time axis of length 1 so it feeds the next `run` directly (truncated BPTT).

mod alpha;
mod firing;
mod lapicque;
mod leaky;
mod rleaky;
mod rsynaptic;
mod slstm;
mod synaptic;

pub use alpha::{Alpha, AlphaConfig, AlphaState};
pub use firing::{Firing, FiringConfig, Reset};
pub use lapicque::{Lapicque, LapicqueConfig, LapicqueState};
pub use leaky::{Leaky, LeakyConfig, LeakyState};
pub use rleaky::{RLeaky, RLeakyConfig, RLeakyState, Recurrent, RecurrentConfig};
pub use rsynaptic::{RSynaptic, RSynapticConfig, RSynapticState};
pub use slstm::{SLstm, SLstmConfig, SLstmState};
pub use synaptic::{Synaptic, SynapticConfig, SynapticState};

use burn::tensor::Tensor;

/// What a neuron's `run` returns: spikes per step, optional membrane trace, final state.
#[derive(Debug, Clone)]
pub struct NeuronOutput<const D: usize, S> {
    /// Spikes `[T, ...]`.
    pub spk: Tensor<D>,
    /// Membrane potential `[T, ...]`, when the neuron was asked to record it.
    pub mem: Option<Tensor<D>>,
    /// The state after the last step (leading axis of length 1).
    pub state: S,
}

/// Runs `step` over the leading time axis of `x`, collecting spikes and (optionally) membranes.
pub(crate) fn run_steps<const D: usize, S>(
    x: Tensor<D>,
    mut state: S,
    record_mem: bool,
    mut step: impl FnMut(Tensor<D>, S) -> (Tensor<D>, S),
    mem_of: impl Fn(&S) -> Tensor<D>,
) -> NeuronOutput<D, S> {
    let steps = x.dims()[0];
    let mut spikes = Vec::with_capacity(steps);
    let mut mems = Vec::with_capacity(if record_mem { steps } else { 0 });
    for t in 0..steps {
        let xt = x.clone().narrow(0, t, 1);
        let (spk, next) = step(xt, state);
        state = next;
        spikes.push(spk);
        if record_mem {
            mems.push(mem_of(&state));
        }
    }
    NeuronOutput {
        spk: Tensor::cat(spikes, 0),
        mem: record_mem.then(|| Tensor::cat(mems, 0)),
        state,
    }
}

/// Broadcasts a per-neuron parameter `[N]` (or a scalar `[1]`) against a rank-`D` tensor.
pub(crate) fn bcast<const D: usize>(p: Tensor<1>) -> Tensor<D> {
    p.unsqueeze::<D>()
}
