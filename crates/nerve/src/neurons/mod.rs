//! Spiking neuron models, one file per model, all with explicit state behind one [`Neuron`] trait.
//!
//! Every neuron offers `step(x, state) -> (spk, state)` for one time step (any tensor rank) and
//! `run(x[T, ...], state) -> NeuronOutput` for a whole sequence. The state returned by `run`
//! keeps a leading time axis of length 1 so it feeds the next `run` directly (truncated BPTT).
//! A neuron implements `step` and a few accessors; the time loop of `run` is written once, here.

mod alpha;
mod firing;
mod lapicque;
mod leaky;
mod rleaky;
mod rsynaptic;
mod slstm;
mod srm_once;
mod synaptic;

pub use crate::firing::Reset;
pub use alpha::{Alpha, AlphaConfig, AlphaState};
pub use firing::{Firing, FiringConfig};
pub use lapicque::{Lapicque, LapicqueConfig, LapicqueState};
pub use leaky::{Leaky, LeakyConfig, LeakyState};
pub use rleaky::{RLeaky, RLeakyConfig, RLeakyState, Recurrent, RecurrentConfig};
pub use rsynaptic::{RSynaptic, RSynapticConfig, RSynapticState};
pub use slstm::{SLstm, SLstmConfig, SLstmState};
pub use srm_once::{SrmOnce, SrmOnceConfig, SrmOnceRun, SrmOnceState};
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

/// A neuron's state for inputs of rank `D`: tensors named as snnTorch names them.
pub trait NeuronState<const D: usize>: Clone {
    /// The membrane potential, what `run` records.
    fn membrane(&self) -> Tensor<D>;

    /// Every tensor of the state by its snnTorch name (`mem`, `syn`, `syn_exc`, `spk`, ...).
    fn named_tensors(&self) -> Vec<(&'static str, Tensor<D>)>;
}

/// A spiking neuron with explicit state: one time step, and a whole sequence built from it.
///
/// A neuron implements [`Neuron::step`] and the small accessors; [`Neuron::run`] is provided
/// (a neuron with a faster path for whole sequences, such as [`Leaky`], overrides it).
pub trait Neuron {
    /// The state carried from one step to the next, for inputs of rank `D`.
    type State<const D: usize>: NeuronState<D>;

    /// One time step: spikes and the next state from the input `x` and the current `state`.
    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Self::State<D>,
    ) -> (Tensor<D>, Self::State<D>);

    /// The resting state for one step of input shaped like `x`.
    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> Self::State<D>;

    /// Whether `run` records the membrane trace.
    fn records_mem(&self) -> bool;

    /// The parameters snnTorch may learn for this neuron, by its names (`beta`, `alpha`,
    /// `threshold`, `graded_spikes_factor`, `V`), whether or not this neuron learns them.
    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)>;

    /// A whole sequence `x[T, ...]`, starting from `state` (the resting state when `None`).
    fn run<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> NeuronOutput<D, Self::State<D>> {
        run_steps(self, x, state)
    }
}

/// [`Neuron::run`] as a loop of [`Neuron::step`] over the leading time axis of `x`.
pub(crate) fn run_steps<N: Neuron + ?Sized, const D: usize>(
    neuron: &N,
    x: Tensor<D>,
    state: Option<N::State<D>>,
) -> NeuronOutput<D, N::State<D>> {
    let mut state = state.unwrap_or_else(|| neuron.zero_state(&x.clone().narrow(0, 0, 1)));
    let record_mem = neuron.records_mem();
    let steps = x.dims()[0];
    let mut spikes = Vec::with_capacity(steps);
    let mut mems = Vec::with_capacity(if record_mem { steps } else { 0 });
    for t in 0..steps {
        let xt = x.clone().narrow(0, t, 1);
        let (spk, next) = neuron.step(xt, state);
        state = next;
        spikes.push(spk);
        if record_mem {
            mems.push(state.membrane());
        }
    }
    NeuronOutput {
        spk: Tensor::cat(spikes, 0),
        mem: record_mem.then(|| Tensor::cat(mems, 0)),
        state,
    }
}

/// Defines a neuron state: a struct of same-shaped tensors (one named `mem`), its all-zero
/// resting state `zeros_like`, and its [`NeuronState`] by field name, the names snnTorch uses.
macro_rules! neuron_state {
    (
        $(#[$doc:meta])*
        $name:ident { $($(#[$field_doc:meta])* $field:ident),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<const D: usize> {
            $($(#[$field_doc])* pub $field: burn::tensor::Tensor<D>,)+
        }

        impl<const D: usize> $name<D> {
            /// The resting state (every tensor zero) for inputs shaped like `x`.
            pub fn zeros_like(x: &burn::tensor::Tensor<D>) -> Self {
                Self {
                    $($field: x.zeros_like(),)+
                }
            }
        }

        impl<const D: usize> $crate::neurons::NeuronState<D> for $name<D> {
            fn membrane(&self) -> burn::tensor::Tensor<D> {
                self.mem.clone()
            }

            fn named_tensors(&self) -> Vec<(&'static str, burn::tensor::Tensor<D>)> {
                vec![$((stringify!($field), self.$field.clone()),)+]
            }
        }
    };
}
pub(crate) use neuron_state;

/// Broadcasts a per-neuron parameter `[N]` (or a scalar `[1]`) against a rank-`D` tensor.
pub(crate) fn bcast<const D: usize>(p: Tensor<1>) -> Tensor<D> {
    p.unsqueeze::<D>()
}

/// A tensor's values as f64, for the neurons' unit tests.
#[cfg(test)]
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}
