//! Fused multi-step Leaky kernel: one pass over time for the forward of a whole layer, one
//! reverse pass for the backward.
//!
//! The reference is [`Leaky`](crate::neurons::Leaky)'s `step` run step by step with tensor ops
//! ([`Leaky::run_reference`](crate::neurons::Leaky::run_reference), what its `run` does when
//! the kernel does not apply);
//! `tests/kernels/fused_leaky.rs` checks spikes, membranes and gradients against it. Per step the
//! reference launches about ten tensor ops, each with its own allocation and, under autodiff, its
//! own graph node, and slicing `x[t]` makes the backward write a full-size zero tensor per step;
//! the fused kernel is one op (a graph node per output) for all `T` steps.
//!
//! Semantics (snnTorch `Leaky` with its defaults: delayed, detached reset): for each neuron,
//! `r_t = H(m_{t-1} − θ)`, then `m_t = β·m_{t-1} + x_t − r_t·θ` (subtract),
//! `m_t = β·(1 − r_t)·m_{t-1} + x_t` (zero) or `m_t = β·m_{t-1} + x_t` (none), and
//! `s_t = g·H(m_t − θ)`; with a level table (state quantization), `m_t` is rounded to its
//! nearest level before it fires, and the backward passes straight through the rounding. The backward carries
//! `∂L/∂m_t = ∂L/∂s_t·g·S'(m_t − θ) + ∂L/∂m_t|direct + ∂L/∂m_{t+1}·∂m_{t+1}/∂m_t`, where the
//! reset is a constant (as snnTorch detaches it), so `∂m_{t+1}/∂m_t` is `β`, or `β·(1 − r_{t+1})`
//! for the zero reset.
//!
//! The op takes `x [T, N]` and the initial membrane `m_0 [N]` and returns the spikes `[T, N]`,
//! the final membrane `[1, N]` and, only when asked for ([`LeakyParams::membranes`], a recorded
//! trace), every step's membrane `[T, N]`; training does not produce the trace otherwise. Each
//! output is its own autodiff node (Burn records one output per op) whose backward state is just
//! `x`, `m_0` and the constants, shared by the three: the reverse pass recomputes the membranes
//! from `x`, a band of neurons at a time into a cache-sized scratch, instead of keeping them (the
//! kernel is a small cost next to the GEMM that feeds it). It writes the input gradient over the
//! incoming `[T, N]` gradient when it owns that buffer. Each node's pass propagates its own
//! output's gradient and Burn sums them, which equals one joint pass up to rounding since the
//! backward is linear in them. So the backward keeps one `[T, N]` tensor alive (the input),
//! not the spikes and membranes (`[2T, N]`), and the spikes are freed as soon as the caller is
//! done with them.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::Tensor;

use super::{f32_values, flex_tensor};
use crate::firing::Reset;

/// The surrogate derivatives the kernel evaluates in closed form
/// ([`Surrogate::closed_form`](crate::surrogate::Surrogate::closed_form) picks one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SurrogateGrad {
    /// `(α/2) / (1 + (π α u / 2)²)`.
    ATan(f32),
    /// `1 / (slope·|u| + 1)²`.
    FastSigmoid(f32),
    /// `slope·σ(slope·u)·(1 − σ(slope·u))`.
    Sigmoid(f32),
    /// `−threshold·sign(u)` (the derivative of snnTorch's triangular stand-in).
    Triangular(f32),
    /// `slope·exp(−β|u − 1|)`.
    SpikeRateEscape {
        /// Escape rate β.
        beta: f32,
        /// Slope.
        slope: f32,
    },
    /// 1.
    StraightThrough,
    /// Fast sigmoid where `u > b`, else 0.
    SparseFastSigmoid {
        /// Slope.
        slope: f32,
        /// Offset below which the gradient is zero.
        b: f32,
    },
}

impl SurrogateGrad {
    /// `dS/du` at `u`.
    #[inline]
    pub fn at(self, u: f32) -> f32 {
        match self {
            Self::ATan(alpha) => atan_grad(alpha, u),
            Self::FastSigmoid(slope) => fast_sigmoid_grad(slope, u),
            Self::Sigmoid(slope) => {
                let s = 1.0 / (1.0 + (-slope * u).exp());
                slope * s * (1.0 - s)
            }
            Self::Triangular(threshold) => {
                if u > 0.0 {
                    -threshold
                } else if u < 0.0 {
                    threshold
                } else {
                    0.0
                }
            }
            Self::SpikeRateEscape { beta, slope } => slope * (-beta * (u - 1.0).abs()).exp(),
            Self::StraightThrough => 1.0,
            Self::SparseFastSigmoid { slope, b } => {
                if u > b {
                    fast_sigmoid_grad(slope, u)
                } else {
                    0.0
                }
            }
        }
    }
}

#[inline(always)]
fn atan_grad(alpha: f32, u: f32) -> f32 {
    let a = std::f32::consts::PI * alpha * u / 2.0;
    alpha / 2.0 / (1.0 + a * a)
}

#[inline(always)]
fn fast_sigmoid_grad(slope: f32, u: f32) -> f32 {
    let d = slope * u.abs() + 1.0;
    1.0 / (d * d)
}

/// Constants of one fused Leaky layer (shared by all its neurons).
#[derive(Debug, Clone, PartialEq)]
pub struct LeakyParams {
    /// Membrane decay β (already clamped to [0, 1]).
    pub beta: f32,
    /// Threshold θ.
    pub threshold: f32,
    /// Spike value g.
    pub graded: f32,
    /// Reset mechanism.
    pub reset: Reset,
    /// Surrogate derivative.
    pub surrogate: SurrogateGrad,
    /// Also return every step's membrane (`[T, N]`). Without it the op writes only the spikes
    /// and the final membrane, in training too: the backward recomputes the membranes it needs.
    pub membranes: bool,
    /// Round each freshly integrated membrane to the nearest of these levels before it fires
    /// (state quantization; the backward treats the rounding as the identity).
    pub levels: Option<std::sync::Arc<[f32]>>,
}

/// The fused Leaky op as a Burn backend extension: Flex runs it on raw slices, Autodiff over
/// Flex adds the reverse pass.
#[backend_extension(Flex, Autodiff)]
pub trait LeakyKernel: Backend {
    /// `x [T, N]`, `mem0 [N]` → spikes `[T, N]`, the final membrane `[1, N]` and, with
    /// [`LeakyParams::membranes`], every step's membrane `[T, N]`.
    #[allow(clippy::type_complexity)]
    fn leaky_multistep(
        x: FloatTensor<Self>,
        mem0: FloatTensor<Self>,
        params: LeakyParams,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        Option<FloatTensor<Self>>,
    );
}

mod slices;
#[cfg(test)]
mod tests;

pub use slices::{backward_in_place, backward_slices, forward_slices, ForwardSlices, Seed};

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let s = t.layout().shape();
    (s[0], s[1])
}

impl LeakyKernel for Flex {
    fn leaky_multistep(
        x: FlexTensor,
        mem0: FlexTensor,
        params: LeakyParams,
    ) -> (FlexTensor, FlexTensor, Option<FlexTensor>) {
        let (steps, n) = dims2(&x);
        let out = forward_slices(&f32_values(&x), &f32_values(&mem0), steps, &params);
        (
            flex_tensor(out.spk, [steps, n]),
            flex_tensor(out.last, [1, n]),
            out.mem.map(|m| flex_tensor(m, [steps, n])),
        )
    }
}

/// `t` as a `[steps, n]` tensor that owns its buffer, contiguous and exactly its elements (so
/// the backward may overwrite it): `t` itself when it already is, else a copy.
fn writable(t: FlexTensor, steps: usize, n: usize) -> FlexTensor {
    let owned = t.is_unique()
        && t.is_contiguous()
        && t.layout().start_offset() == 0
        && t.bytes().len() == steps * n * std::mem::size_of::<f32>();
    if owned {
        // A view of the same buffer; `t` is dropped on return, so the result is its only owner.
        t.reshape([steps, n].into())
    } else {
        flex_tensor(f32_values(&t).into_owned(), [steps, n])
    }
}

/// The reverse pass of one of the op's outputs.
#[derive(Debug)]
struct LeakyBackward {
    seed: Seed,
}

impl Backward<Flex, 2> for LeakyBackward {
    /// The op's input, initial membrane and constants: all the pass needs, the membranes are
    /// recomputed.
    type State = (FlexTensor, FlexTensor, LeakyParams);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_mem0] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, mem0, params) = ops.state;
        let (steps, n) = dims2(&x);
        let (gx, gm0) = {
            let (xs, m0) = (f32_values(&x), f32_values(&mem0));
            if self.seed == Seed::Last {
                let (gx, gm0) =
                    backward_slices(&xs, &m0, steps, &params, Seed::Last, &f32_values(&grad));
                (flex_tensor(gx, [steps, n]), gm0)
            } else {
                // The incoming `[T, N]` gradient becomes the input's: no second buffer.
                let mut gx = writable(grad, steps, n);
                let values = gx.try_storage_mut::<f32>().expect("an owned buffer");
                let gm0 = backward_in_place(&xs, &m0, steps, &params, self.seed, None, values);
                (gx, gm0)
            }
        };
        // Free the input before the gradients are summed into the graph.
        drop(x);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, gx);
        }
        if let Some(node) = node_mem0 {
            grads.register::<Flex>(node.id, flex_tensor(gm0, [n]));
        }
    }
}

impl<C: CheckpointStrategy> LeakyKernel for Autodiff<Flex, C> {
    fn leaky_multistep(
        x: FloatTensor<Self>,
        mem0: FloatTensor<Self>,
        params: LeakyParams,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        Option<FloatTensor<Self>>,
    ) {
        // Each output is its own graph node (Burn records one output per op), all three
        // children of `x` and `mem0`, sharing the forward computed once here.
        let mut guards = [0, 1, 2].map(|_| Some([x.node(), mem0.node()]));
        let (x, mem0) = (x.into_primitive(), mem0.into_primitive());
        let (spk, last, mem) =
            <Flex as LeakyKernel>::leaky_multistep(x.clone(), mem0.clone(), params.clone());
        let mut track = |i: usize, seed: Seed, out: FlexTensor| {
            let parents = guards[i].take().expect("one node per output");
            let op = LeakyBackward { seed };
            match op.prepare::<C>(parents).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    prep.finish((x.clone(), mem0.clone(), params.clone()), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(out),
            }
        };
        let spk = track(0, Seed::Spikes, spk);
        let last = track(1, Seed::Last, last);
        let mem = mem.map(|m| track(2, Seed::Membranes, m));
        (spk, last, mem)
    }
}

/// What [`leaky_multistep`] returns.
#[derive(Debug, Clone)]
pub struct LeakyRun {
    /// Spikes `[T, N]`.
    pub spk: Tensor<2>,
    /// Every step's membrane `[T, N]`, with [`LeakyParams::membranes`].
    pub mem: Option<Tensor<2>>,
    /// The membrane after the last step `[1, N]`.
    pub last: Tensor<2>,
}

/// Runs the fused kernel on `x [T, N]` from `mem0 [N]`; `x` must be f32 on the Flex backend.
pub fn leaky_multistep(x: Tensor<2>, mem0: Tensor<1>, params: LeakyParams) -> LeakyRun {
    let (spk, last, mem) =
        <Dispatch as LeakyKernel>::leaky_multistep(x.into_dispatch(), mem0.into_dispatch(), params);
    LeakyRun {
        spk: Tensor::from_dispatch(spk),
        mem: mem.map(Tensor::from_dispatch),
        last: Tensor::from_dispatch(last),
    }
}
