//! Fused multi-step Leaky kernel: one pass over time for the forward of a whole layer, one
//! reverse pass for the backward.
//!
//! The reference is [`Leaky::step`](crate::neurons::Leaky::step) run step by step with tensor
//! ops (what [`Leaky::run`](crate::neurons::Leaky::run) does when the kernel does not apply);
//! `tests/fused_leaky.rs` checks spikes, membranes and gradients against it. Per step the
//! reference launches about ten tensor ops, each with its own allocation and, under autodiff, its
//! own graph node, and slicing `x[t]` makes the backward write a full-size zero tensor per step;
//! the fused kernel is one op and one graph node for all `T` steps.
//!
//! Semantics (snnTorch `Leaky` with its defaults: delayed, detached reset): for each neuron,
//! `r_t = H(m_{t-1} − θ)`, then `m_t = β·m_{t-1} + x_t − r_t·θ` (subtract),
//! `m_t = β·(1 − r_t)·m_{t-1} + x_t` (zero) or `m_t = β·m_{t-1} + x_t` (none), and
//! `s_t = g·H(m_t − θ)`. The backward carries
//! `∂L/∂m_t = ∂L/∂s_t·g·S'(m_t − θ) + ∂L/∂m_t|direct + ∂L/∂m_{t+1}·∂m_{t+1}/∂m_t`, where the
//! reset is a constant (as snnTorch detaches it), so `∂m_{t+1}/∂m_t` is `β`, or `β·(1 − r_{t+1})`
//! for the zero reset.
//!
//! The op takes `x [T, N]` and the initial membrane `m_0 [N]` and returns `[2T, N]`: spikes in
//! rows `0..T`, membranes in rows `T..2T` (Burn's autodiff records one output per op, so both
//! travel in one tensor). The backward keeps only that output and `m_0`; it never stores `x`.

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
use crate::neurons::Reset;
use crate::surrogate::Surrogate;

/// The surrogate derivatives the kernel evaluates in closed form.
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
    /// The closed form of `surrogate`, or `None` for the stochastic and user-defined ones.
    pub fn of(surrogate: &Surrogate) -> Option<Self> {
        Some(match *surrogate {
            Surrogate::ATan { alpha } => Self::ATan(alpha as f32),
            Surrogate::FastSigmoid { slope } => Self::FastSigmoid(slope as f32),
            Surrogate::Sigmoid { slope } => Self::Sigmoid(slope as f32),
            Surrogate::Triangular { threshold } => Self::Triangular(threshold as f32),
            Surrogate::SpikeRateEscape { beta, slope } => Self::SpikeRateEscape {
                beta: beta as f32,
                slope: slope as f32,
            },
            Surrogate::StraightThrough => Self::StraightThrough,
            Surrogate::SparseFastSigmoid { slope, b } => Self::SparseFastSigmoid {
                slope: slope as f32,
                b: b as f32,
            },
            _ => return None,
        })
    }

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
    /// Return every step's membrane (`[2T, N]`); otherwise only the final one (`[T + 1, N]`),
    /// which saves writing half the output in inference. Training always keeps them: the
    /// backward needs them.
    pub membranes: bool,
}

/// The fused Leaky op as a Burn backend extension: Flex runs it on raw slices, Autodiff over
/// Flex adds the reverse pass.
#[backend_extension(Flex, Autodiff)]
pub trait LeakyKernel: Backend {
    /// `x [T, N]`, `mem0 [N]` → `[2T, N]` (spikes, then membranes).
    fn leaky_multistep(
        x: FloatTensor<Self>,
        mem0: FloatTensor<Self>,
        params: LeakyParams,
    ) -> FloatTensor<Self>;
}

/// Neurons per parallel task: enough work per task to amortise the fork, few enough tasks to
/// balance two to sixteen threads.
const CHUNK: usize = 2048;

/// One band of neurons through all steps: `x`, `spk` and `mem` rows are `stride` apart, the band
/// is `state.len()` wide. Branch-free so the inner loop vectorises; the arithmetic is written in
/// the reference's order (`β·m + x − r·θ`, `β·(1 − r)·m + x`) so results are bit-identical.
///
/// # Safety
/// `spk` and `mem` point to `steps` rows of `stride` floats; no other thread touches columns
/// `start..start + state.len()` of them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band(
    x: &[f32],
    spk: SyncPtr,
    mem: SyncPtr,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    let len = state.len();
    let (beta, theta, graded) = (p.beta, p.threshold, p.graded);
    for t in 0..steps {
        let at = t * stride + start;
        let xt = &x[at..at + len];
        // SAFETY: this band's own columns of row t (see the function's contract); without
        // membranes the second slice is empty.
        let (st, mt) = unsafe {
            (
                std::slice::from_raw_parts_mut(spk.get().add(at), len),
                std::slice::from_raw_parts_mut(
                    mem.get().add(if p.membranes { at } else { 0 }),
                    if p.membranes { len } else { 0 },
                ),
            )
        };
        match p.reset {
            Reset::Subtract => {
                for i in 0..len {
                    let r = f32::from(u8::from(state[i] - theta > 0.0));
                    state[i] = beta * state[i] + xt[i] - r * theta;
                }
            }
            Reset::Zero => {
                for i in 0..len {
                    let r = f32::from(u8::from(state[i] - theta > 0.0));
                    state[i] = beta * (1.0 - r) * state[i] + xt[i];
                }
            }
            Reset::None => {
                for i in 0..len {
                    state[i] = beta * state[i] + xt[i];
                }
            }
        }
        if p.membranes {
            mt.copy_from_slice(state);
        }
        for i in 0..len {
            st[i] = f32::from(u8::from(state[i] - theta > 0.0)) * graded;
        }
    }
    if !p.membranes {
        // SAFETY: row 0 of the membrane part holds the final state; this band's columns.
        unsafe { std::slice::from_raw_parts_mut(mem.get().add(start), len) }.copy_from_slice(state);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band_512(
    x: &[f32],
    spk: SyncPtr,
    mem: SyncPtr,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    // SAFETY: forwarded contract.
    unsafe { forward_band(x, spk, mem, start, state, steps, stride, p) }
}

/// The forward pass on plain slices: `x` is `[steps, n]`, the result `[2·steps, n]`, or
/// `[steps + 1, n]` without membranes (see [`LeakyParams::membranes`]).
pub fn forward_slices(x: &[f32], mem0: &[f32], steps: usize, p: &LeakyParams) -> Vec<f32> {
    let n = mem0.len();
    assert_eq!(x.len(), steps * n, "x must be [steps, n]");
    let rows = if p.membranes { 2 * steps } else { steps + 1 };
    let mut out = vec![0f32; rows * n];
    let out_ptr = SyncPtr(out.as_mut_ptr());
    (0..n.div_ceil(CHUNK)).into_par_iter().for_each(|band| {
        let start = band * CHUNK;
        let len = CHUNK.min(n - start);
        let mut state = mem0[start..start + len].to_vec();
        let (spk, mem) = (out_ptr, SyncPtr(out_ptr.get().wrapping_add(steps * n)));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features; `out` holds the rows written and this task
            // owns columns start..start + len.
            unsafe { forward_band_512(x, spk, mem, start, &mut state, steps, n, p) };
            return;
        }
        // SAFETY: as above.
        unsafe { forward_band(x, spk, mem, start, &mut state, steps, n, p) };
    });
    out
}

/// One band of neurons backwards through time, `surrogate` already chosen (monomorphised so
/// the inner loop has no dispatch). `gx` points at the band's first column of a `[steps,
/// stride]` buffer whose columns `0..carry.len()` (from there) only this call writes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_band(
    g_spk: &[f32],
    g_mem: &[f32],
    mems: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    carry: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    surrogate: impl Fn(f32) -> f32,
) {
    let len = carry.len();
    for t in (0..steps).rev() {
        let row = t * stride;
        let m = &mems[row..row + len];
        let prev = if t == 0 {
            mem0
        } else {
            &mems[row - stride..row - stride + len]
        };
        let (gs, gm) = (&g_spk[row..row + len], &g_mem[row..row + len]);
        // SAFETY: this band's own columns of row t of gx, which has `steps` rows of `stride`.
        let gxt = unsafe { std::slice::from_raw_parts_mut(gx.get().add(row), len) };
        for i in 0..len {
            let g = gm[i] + carry[i] + gs[i] * p.graded * surrogate(m[i] - p.threshold);
            gxt[i] = g;
            carry[i] = match p.reset {
                Reset::Zero => {
                    g * (p.beta * (1.0 - f32::from(u8::from(prev[i] - p.threshold > 0.0))))
                }
                _ => g * p.beta,
            };
        }
    }
}

/// The reverse pass on plain slices: `grad` and `out` are `[2·steps, n]`; returns the gradients
/// of `x [steps, n]` and `mem0 [n]`.
pub fn backward_slices(
    grad: &[f32],
    out: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
) -> (Vec<f32>, Vec<f32>) {
    let n = mem0.len();
    let mut gx = vec![0f32; steps * n];
    let mut gm0 = vec![0f32; n];
    if steps == 0 {
        return (gx, gm0);
    }
    let mems = &out[steps * n..];
    let (g_spk, g_mem) = grad.split_at(steps * n);
    let gx_ptr = SyncPtr(gx.as_mut_ptr());
    let gx_len = gx.len();
    gm0.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(band, carry)| {
            let start = band * CHUNK;
            let len = carry.len();
            let span = (steps - 1) * n + len;
            let (gs, gm, ms) = (
                &g_spk[start..start + span],
                &g_mem[start..start + span],
                &mems[start..start + span],
            );
            let m0 = &mem0[start..start + len];
            assert!(start + span <= gx_len);
            let gx = SyncPtr(gx_ptr.get().wrapping_add(start));
            macro_rules! run {
                ($f:expr) => {
                    backward_band(gs, gm, ms, m0, gx, carry, steps, n, p, $f)
                };
            }
            match p.surrogate {
                // The two common surrogates get their own loop without a per-element match.
                SurrogateGrad::FastSigmoid(slope) => run!(move |u| fast_sigmoid_grad(slope, u)),
                SurrogateGrad::ATan(alpha) => run!(move |u| atan_grad(alpha, u)),
                other => run!(move |u: f32| other.at(u)),
            }
        });
    (gx, gm0)
}

/// A raw pointer that tasks writing disjoint elements may share.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only for disjoint writes, see `backward_slices`.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl LeakyKernel for Flex {
    fn leaky_multistep(x: FlexTensor, mem0: FlexTensor, params: LeakyParams) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let (steps, n) = (shape[0], shape[1]);
        let out = forward_slices(&f32_values(&x), &f32_values(&mem0), steps, &params);
        let rows = out.len() / n.max(1);
        flex_tensor(out, vec![rows, n])
    }
}

#[derive(Debug)]
struct LeakyBackward;

impl Backward<Flex, 2> for LeakyBackward {
    type State = (FlexTensor, FlexTensor, LeakyParams);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_mem0] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (out, mem0, params) = ops.state;
        let n = mem0.layout().shape().num_elements();
        let steps = out.layout().shape()[0] / 2;
        let (gx, gm0) = backward_slices(
            &f32_values(&grad),
            &f32_values(&out),
            &f32_values(&mem0),
            steps,
            &params,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(gx, vec![steps, n]));
        }
        if let Some(node) = node_mem0 {
            grads.register::<Flex>(node.id, flex_tensor(gm0, vec![n]));
        }
    }
}

impl<C: CheckpointStrategy> LeakyKernel for Autodiff<Flex, C> {
    fn leaky_multistep(
        x: FloatTensor<Self>,
        mem0: FloatTensor<Self>,
        params: LeakyParams,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), mem0.node()];
        let (x, mem0) = (x.into_primitive(), mem0.into_primitive());
        match LeakyBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                // The reverse pass reads every membrane.
                let params = LeakyParams {
                    membranes: true,
                    ..params
                };
                let out = <Flex as LeakyKernel>::leaky_multistep(x, mem0.clone(), params);
                prep.finish((out.clone(), mem0, params), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as LeakyKernel>::leaky_multistep(x, mem0, params))
            }
        }
    }
}

/// What [`leaky_multistep`] returns.
#[derive(Debug, Clone)]
pub struct LeakyRun {
    /// Spikes `[T, N]`.
    pub spk: Tensor<2>,
    /// Every step's membrane `[T, N]`, when asked for (always present while training).
    pub mem: Option<Tensor<2>>,
    /// The membrane after the last step `[1, N]`.
    pub last: Tensor<2>,
}

/// Runs the fused kernel on `x [T, N]` from `mem0 [N]`; `x` must be f32 on the Flex backend.
pub fn leaky_multistep(x: Tensor<2>, mem0: Tensor<1>, params: LeakyParams) -> LeakyRun {
    let [steps, _] = x.dims();
    let out = Tensor::<2>::from_dispatch(<Dispatch as LeakyKernel>::leaky_multistep(
        x.into_dispatch(),
        mem0.into_dispatch(),
        params,
    ));
    let rows = out.dims()[0];
    LeakyRun {
        spk: out.clone().narrow(0, 0, steps),
        mem: (rows == 2 * steps).then(|| out.clone().narrow(0, steps, steps)),
        last: out.narrow(0, rows - 1, 1),
    }
}
