//! Fused multi-step Leaky kernel: one pass over time for the forward of a whole layer, one
//! reverse pass for the backward.
//!
//! The reference is [`Leaky`](crate::neurons::Leaky)'s `step` run step by step with tensor ops
//! ([`Leaky::run_reference`](crate::neurons::Leaky::run_reference), what its `run` does when
//! the kernel does not apply);
//! `tests/fused_leaky.rs` checks spikes, membranes and gradients against it. Per step the
//! reference launches about ten tensor ops, each with its own allocation and, under autodiff, its
//! own graph node, and slicing `x[t]` makes the backward write a full-size zero tensor per step;
//! the fused kernel is one op (a graph node per output) for all `T` steps.
//!
//! Semantics (snnTorch `Leaky` with its defaults: delayed, detached reset): for each neuron,
//! `r_t = H(m_{t-1} − θ)`, then `m_t = β·m_{t-1} + x_t − r_t·θ` (subtract),
//! `m_t = β·(1 − r_t)·m_{t-1} + x_t` (zero) or `m_t = β·m_{t-1} + x_t` (none), and
//! `s_t = g·H(m_t − θ)`. The backward carries
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
use rayon::prelude::*;

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
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// Neurons per parallel task in the forward: enough work per task to amortise the fork, few
/// enough tasks to balance two to sixteen threads.
const CHUNK: usize = 2048;

/// Floats of recomputed membranes one backward task keeps (512 KB): the band of neurons is as
/// wide as fits, so the reverse pass reads them from L2.
const SCRATCH: usize = 1 << 17;

/// Neurons per backward task for `steps` steps: a multiple of 16 (whole vectors) that keeps the
/// band's `steps` membranes within [`SCRATCH`], at most [`CHUNK`].
fn backward_band_width(steps: usize) -> usize {
    (SCRATCH / steps.max(1) / 16 * 16).clamp(16, CHUNK)
}

/// One step of the membrane update for a band of neurons, in place: the arithmetic is written
/// in the reference's order (`β·m + x − r·θ`, `β·(1 − r)·m + x`) so results are bit-identical,
/// and branch-free so the loops vectorise.
#[inline(always)]
fn advance(state: &mut [f32], xt: &[f32], p: &LeakyParams) {
    let (beta, theta) = (p.beta, p.threshold);
    let xt = &xt[..state.len()];
    match p.reset {
        Reset::Subtract => {
            for (m, &x) in state.iter_mut().zip(xt) {
                let r = f32::from(u8::from(*m - theta > 0.0));
                *m = beta * *m + x - r * theta;
            }
        }
        Reset::Zero => {
            for (m, &x) in state.iter_mut().zip(xt) {
                let r = f32::from(u8::from(*m - theta > 0.0));
                *m = beta * (1.0 - r) * *m + x;
            }
        }
        Reset::None => {
            for (m, &x) in state.iter_mut().zip(xt) {
                *m = beta * *m + x;
            }
        }
    }
}

/// One band of neurons through all steps: `x`, `spk` and `mem` rows are `stride` apart, the
/// band starts at column `start` and is `state.len()` wide; `state` enters as the initial
/// membrane and leaves as the final one.
///
/// # Safety
/// `spk` (and `mem` when given) point to `steps` rows of `stride` floats; no other thread
/// touches columns `start..start + state.len()` of them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band(
    x: &[f32],
    spk: SyncPtr,
    mem: Option<SyncPtr>,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    let len = state.len();
    let (theta, graded) = (p.threshold, p.graded);
    for t in 0..steps {
        let at = t * stride + start;
        advance(state, &x[at..at + len], p);
        if let Some(mem) = mem {
            // SAFETY: this band's own columns of row t (see the function's contract).
            unsafe { std::slice::from_raw_parts_mut(mem.get().add(at), len) }
                .copy_from_slice(state);
        }
        // SAFETY: as above.
        let st = unsafe { std::slice::from_raw_parts_mut(spk.get().add(at), len) };
        for (s, &m) in st.iter_mut().zip(state.iter()) {
            *s = f32::from(u8::from(m - theta > 0.0)) * graded;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band_512(
    x: &[f32],
    spk: SyncPtr,
    mem: Option<SyncPtr>,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    // SAFETY: forwarded contract.
    unsafe { forward_band(x, spk, mem, start, state, steps, stride, p) }
}

/// What [`forward_slices`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardSlices {
    /// Spikes `[steps, n]`.
    pub spk: Vec<f32>,
    /// The membrane after the last step `[n]`.
    pub last: Vec<f32>,
    /// Every step's membrane `[steps, n]`, with [`LeakyParams::membranes`].
    pub mem: Option<Vec<f32>>,
}

/// The forward pass on plain slices: `x` is `[steps, n]`, `mem0` `[n]`.
pub fn forward_slices(x: &[f32], mem0: &[f32], steps: usize, p: &LeakyParams) -> ForwardSlices {
    let n = mem0.len();
    assert_eq!(x.len(), steps * n, "x must be [steps, n]");
    let mut spk = vec![0f32; steps * n];
    let mut mem = p.membranes.then(|| vec![0f32; steps * n]);
    let mut last = mem0.to_vec();
    let spk_ptr = SyncPtr(spk.as_mut_ptr());
    let mem_ptr = mem.as_mut().map(|m| SyncPtr(m.as_mut_ptr()));
    last.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(band, state)| {
            let start = band * CHUNK;
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has the features; `spk` and `mem` hold `steps` rows of `n` and
                // this task owns columns start..start + state.len().
                unsafe { forward_band_512(x, spk_ptr, mem_ptr, start, state, steps, n, p) };
                return;
            }
            // SAFETY: as above.
            unsafe { forward_band(x, spk_ptr, mem_ptr, start, state, steps, n, p) };
        });
    ForwardSlices { spk, last, mem }
}

/// Which output's gradient a reverse pass propagates (Burn's autodiff gives each output its own
/// graph node, so each gets its own pass; the passes are linear, their sum is the gradient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// The spikes `[steps, n]`.
    Spikes,
    /// Every step's membrane `[steps, n]`.
    Membranes,
    /// The final membrane `[n]`.
    Last,
}

/// One band of neurons backwards through time. It first reruns the band's forward from `x`
/// into `mems` (`steps` rows of the band's width), then walks back: row `t` of `gx` holds the
/// incoming gradient of output row `t` (unused for [`Seed::Last`]) and is overwritten with the
/// gradient of `x[t]`; `carry` enters as the gradient of the final membrane and leaves as that
/// of `mem0`. `incoming(g, m)` turns an incoming gradient into one of the membrane, surrogate
/// chosen (monomorphised so the inner loop has no dispatch).
///
/// # Safety
/// `gx` points to `steps` rows of `stride` floats; no other thread touches columns
/// `start..start + carry.len()` of them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_band(
    x: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    start: usize,
    carry: &mut [f32],
    mems: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    incoming: impl Fn(f32, f32) -> f32,
) {
    let len = carry.len();
    let mems = &mut mems[..steps * len];
    let mut state = mem0.to_vec();
    for (t, m) in mems.chunks_exact_mut(len).enumerate() {
        let at = t * stride + start;
        advance(&mut state, &x[at..at + len], p);
        m.copy_from_slice(&state);
    }
    let (beta, theta) = (p.beta, p.threshold);
    for t in (0..steps).rev() {
        let m = &mems[t * len..(t + 1) * len];
        let prev = if t == 0 {
            mem0
        } else {
            &mems[(t - 1) * len..t * len]
        };
        // SAFETY: this band's own columns of row t (see the function's contract).
        let gxt = unsafe { std::slice::from_raw_parts_mut(gx.get().add(t * stride + start), len) };
        for i in 0..len {
            let g = carry[i] + incoming(gxt[i], m[i] - theta);
            gxt[i] = g;
            carry[i] = match p.reset {
                Reset::Zero => g * (beta * (1.0 - f32::from(u8::from(prev[i] - theta > 0.0)))),
                _ => g * beta,
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_band_512(
    x: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    start: usize,
    carry: &mut [f32],
    mems: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    incoming: impl Fn(f32, f32) -> f32,
) {
    // SAFETY: forwarded contract.
    unsafe { backward_band(x, mem0, gx, start, carry, mems, steps, stride, p, incoming) }
}

/// The reverse pass in place: `x [steps, n]` is the op's input, `mem0 [n]` its initial
/// membrane. `gx` enters holding the gradient of the output `seed` (`[steps, n]`; ignored for
/// [`Seed::Last`], whose gradient `g_last [n]` is) and leaves holding the gradient of `x`;
/// returns the gradient of `mem0`. The membranes are recomputed from `x`, a band of neurons at a
/// time, so the pass needs no stored forward state beyond its input.
pub fn backward_in_place(
    x: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
    seed: Seed,
    g_last: Option<&[f32]>,
    gx: &mut [f32],
) -> Vec<f32> {
    let n = mem0.len();
    assert_eq!(
        (x.len(), gx.len()),
        (steps * n, steps * n),
        "x, gx: [steps, n]"
    );
    let mut gm0 = match (seed, g_last) {
        (Seed::Last, Some(g)) => {
            assert_eq!(g.len(), n, "g_last: [n]");
            g.to_vec()
        }
        (Seed::Last, None) => panic!("Seed::Last needs g_last"),
        _ => vec![0f32; n],
    };
    let width = backward_band_width(steps);
    let gx_ptr = SyncPtr(gx.as_mut_ptr());
    let (graded, surrogate) = (p.graded, p.surrogate);
    gm0.par_chunks_mut(width).enumerate().for_each_init(
        || vec![0f32; steps * width],
        |mems, (band, carry)| {
            let start = band * width;
            let m0 = &mem0[start..start + carry.len()];
            macro_rules! run {
                ($f:expr) => {{
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU has the features; `gx` holds `steps` rows of `n`
                        // and this task owns columns start..start + carry.len().
                        return unsafe {
                            backward_band_512(x, m0, gx_ptr, start, carry, mems, steps, n, p, $f)
                        };
                    }
                    // SAFETY: as above.
                    unsafe { backward_band(x, m0, gx_ptr, start, carry, mems, steps, n, p, $f) }
                }};
            }
            match (seed, surrogate) {
                (Seed::Last, _) => run!(|_, _| 0.0),
                (Seed::Membranes, _) => run!(|g, _| g),
                // The two common surrogates get their own loop without a per-element match.
                (Seed::Spikes, SurrogateGrad::FastSigmoid(slope)) => {
                    run!(move |g, u| g * graded * fast_sigmoid_grad(slope, u))
                }
                (Seed::Spikes, SurrogateGrad::ATan(alpha)) => {
                    run!(move |g, u| g * graded * atan_grad(alpha, u))
                }
                (Seed::Spikes, other) => run!(move |g, u| g * graded * other.at(u)),
            }
        },
    );
    gm0
}

/// [`backward_in_place`] into new buffers: `g` is the gradient of the output `seed` (`[steps, n]`,
/// or `[n]` for [`Seed::Last`]); returns the gradients of `x [steps, n]` and `mem0 [n]`.
pub fn backward_slices(
    x: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
    seed: Seed,
    g: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let n = mem0.len();
    match seed {
        Seed::Last => {
            let mut gx = vec![0f32; steps * n];
            let gm0 = backward_in_place(x, mem0, steps, p, seed, Some(g), &mut gx);
            (gx, gm0)
        }
        _ => {
            let mut gx = g.to_vec();
            let gm0 = backward_in_place(x, mem0, steps, p, seed, None, &mut gx);
            (gx, gm0)
        }
    }
}

/// A raw pointer that tasks writing disjoint elements may share.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only for disjoint writes, see `forward_slices` and `backward_in_place`.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

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
            <Flex as LeakyKernel>::leaky_multistep(x.clone(), mem0.clone(), params);
        let mut track = |i: usize, seed: Seed, out: FlexTensor| {
            let parents = guards[i].take().expect("one node per output");
            let op = LeakyBackward { seed };
            match op.prepare::<C>(parents).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((x.clone(), mem0.clone(), params), out),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward one neuron and one step at a time, every membrane kept, and the reverse pass
    /// over them: what the banded, recomputing kernel must reproduce.
    fn scalar_reference(
        x: &[f32],
        mem0: &[f32],
        steps: usize,
        p: &LeakyParams,
        g_spk: &[f32],
        g_mem: &[f32],
        g_last: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = mem0.len();
        let (mut spk, mut mem) = (vec![0f32; steps * n], vec![0f32; steps * n]);
        let (mut gx, mut gm0) = (vec![0f32; steps * n], vec![0f32; n]);
        let h = |v: f32| f32::from(u8::from(v > 0.0));
        for i in 0..n {
            let mut m = mem0[i];
            for t in 0..steps {
                let r = h(m - p.threshold);
                m = match p.reset {
                    Reset::Subtract => p.beta * m + x[t * n + i] - r * p.threshold,
                    Reset::Zero => p.beta * (1.0 - r) * m + x[t * n + i],
                    Reset::None => p.beta * m + x[t * n + i],
                };
                mem[t * n + i] = m;
                spk[t * n + i] = h(m - p.threshold) * p.graded;
            }
            let mut carry = g_last[i];
            for t in (0..steps).rev() {
                let at = t * n + i;
                let g = g_mem[at]
                    + carry
                    + g_spk[at] * p.graded * p.surrogate.at(mem[at] - p.threshold);
                gx[at] = g;
                let prev = if t == 0 { mem0[i] } else { mem[at - n] };
                carry = match p.reset {
                    Reset::Zero => g * p.beta * (1.0 - h(prev - p.threshold)),
                    _ => g * p.beta,
                };
            }
            gm0[i] = carry;
        }
        (spk, mem, gx, gm0)
    }

    /// Deterministic values spread over about [lo, lo + 2].
    fn values(len: usize, seed: u32, lo: f32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
                lo + (h % 2000) as f32 / 1000.0
            })
            .collect()
    }

    #[test]
    fn backward_band_width_keeps_whole_vectors_within_the_scratch() {
        assert_eq!(backward_band_width(500), 256);
        assert_eq!(backward_band_width(1), CHUNK);
        assert_eq!(backward_band_width(0), CHUNK);
        assert_eq!(backward_band_width(1_000_000), 16);
    }

    #[test]
    fn slices_match_a_scalar_reference_with_partial_bands() {
        // 5000 steps make the backward bands 16 neurons wide, so 37 neurons end in a partial
        // band; 3 steps make them one partial band.
        for (steps, n) in [(5000, 37), (3, 37), (64, 1)] {
            for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
                let p = LeakyParams {
                    beta: 0.9,
                    threshold: 0.8,
                    graded: 0.7,
                    reset,
                    surrogate: SurrogateGrad::ATan(2.0),
                    membranes: true,
                };
                let x = values(steps * n, 1, -0.7);
                let mem0 = values(n, 2, -0.5);
                let (g_spk, g_mem, g_last) = (
                    values(steps * n, 3, -1.0),
                    values(steps * n, 4, -1.0),
                    values(n, 5, -1.0),
                );
                let (spk, mem, gx, gm0) =
                    scalar_reference(&x, &mem0, steps, &p, &g_spk, &g_mem, &g_last);
                assert!(spk.iter().any(|&s| s > 0.0) && spk.contains(&0.0));
                let out = forward_slices(&x, &mem0, steps, &p);
                assert_eq!(out.spk, spk, "{reset:?}: spikes");
                assert_eq!(out.mem.as_deref(), Some(&mem[..]), "{reset:?}: membranes");
                assert_eq!(
                    out.last,
                    mem[(steps - 1) * n..],
                    "{reset:?}: final membrane"
                );
                // The three reverse passes add up to the reference's single one.
                let mut fx = vec![0f32; steps * n];
                let mut fm0 = vec![0f32; n];
                for (seed, g) in [
                    (Seed::Spikes, &g_spk[..]),
                    (Seed::Membranes, &g_mem[..]),
                    (Seed::Last, &g_last[..]),
                ] {
                    let (a, b) = backward_slices(&x, &mem0, steps, &p, seed, g);
                    fx.iter_mut().zip(a).for_each(|(s, v)| *s += v);
                    fm0.iter_mut().zip(b).for_each(|(s, v)| *s += v);
                }
                let close = |a: &[f32], b: &[f32]| {
                    a.iter()
                        .zip(b)
                        .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0))
                };
                assert!(close(&fx, &gx), "{reset:?} {steps}x{n}: input gradients");
                assert!(close(&fm0, &gm0), "{reset:?} {steps}x{n}: mem0 gradients");
            }
        }
    }
}
