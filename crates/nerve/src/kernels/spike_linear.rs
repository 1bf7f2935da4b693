//! Event-driven fully connected layer for spike inputs: `y = x·W + b` where most of `x` is zero.
//!
//! The sparse path adds the weight row of each active input to its output row (`y[m] += x[m,k] ·
//! W[k]`), skipping the zeros a dense GEMM multiplies; the weight gradient sums `x[m,k]·g[m]`
//! over active inputs only (`gW[k] = Σ_m x[m,k]·g[m]`, one task per band of `k`). The input
//! gradient `g·Wᵀ` is dense either way and is computed only when the input needs it (a data
//! layer's input does not). Which path runs is chosen per call from the measured density of
//! `x`; [`SpikeLinearMode`] forces one for tests and benchmarks. The dense path is Burn's own
//! matmul, so both are checked against each other (`tests/spike_linear.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{f32_values, flex_tensor};

/// Which algorithm [`spike_linear`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeLinearMode {
    /// Sparse below [`SPARSE_BELOW`] density of nonzero inputs, dense above.
    Auto,
    /// Always the dense GEMM.
    Dense,
    /// Always the event-driven accumulation.
    Sparse,
}

/// Input density under which the event-driven path wins on this class of CPU: a row
/// accumulation streams a weight row per active input, about a third as fast per FLOP as a
/// blocked GEMM, so it pays off below roughly one input in four or five.
pub const SPARSE_BELOW: f64 = 0.2;

/// The op as a Burn backend extension: Flex on raw slices, Autodiff over Flex with its reverse
/// pass.
#[backend_extension(Flex, Autodiff)]
pub trait SpikeLinearKernel: Backend {
    /// `x [M, K]`, `w [K, N]`, `b [N]` → `x·w + b`, `[M, N]`.
    fn spike_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mode: SpikeLinearMode,
    ) -> FloatTensor<Self>;
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let s = t.layout().shape();
    (s[0], s[1])
}

/// Fraction of nonzero entries.
pub fn density(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64
}

/// Outputs below which the dense GEMM wins whatever the density: a row accumulation of so few
/// floats is mostly loop overhead.
const MIN_SPARSE_OUTPUTS: usize = 64;

fn use_sparse(mode: SpikeLinearMode, x: &[f32], outputs: usize) -> bool {
    match mode {
        SpikeLinearMode::Sparse => true,
        SpikeLinearMode::Dense => false,
        SpikeLinearMode::Auto => outputs >= MIN_SPARSE_OUTPUTS && density(x) < SPARSE_BELOW,
    }
}

/// `y += a·x`, written so LLVM vectorises it for whatever target features the caller has.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Output columns handled together: a `[k, COLS]` slab of the weights (or of their gradient)
/// is a few hundred KB, so it stays in L2 while a task walks its rows, instead of streaming the
/// whole matrix from L3 once per row.
const COLS: usize = 256;

/// The active inputs of each of `rows` rows of `x` (starting at `first`), as `(k, value)`.
fn active_inputs(x: &[f32], k: usize, first: usize, rows: usize) -> Vec<Vec<(u32, f32)>> {
    (first..first + rows)
        .map(|r| {
            x[r * k..(r + 1) * k]
                .iter()
                .enumerate()
                .filter(|(_, &v)| v != 0.0)
                .map(|(kk, &v)| (kk as u32, v))
                .collect()
        })
        .collect()
}

/// Output rows `first..` of `x·w + b` by accumulating the weight rows of active inputs, one
/// column slab at a time.
#[inline(always)]
fn forward_rows(active: &[Vec<(u32, f32)>], w: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    for c0 in (0..n).step_by(COLS) {
        let c1 = (c0 + COLS).min(n);
        for (y, row) in out.chunks_mut(n).zip(active) {
            let y = &mut y[c0..c1];
            y.copy_from_slice(&b[c0..c1]);
            for &(kk, v) in row {
                let kk = kk as usize;
                axpy(y, v, &w[kk * n + c0..kk * n + c1]);
            }
        }
    }
}

/// Adds `x[r]ᵀ·g[r]` for the rows whose active inputs are `active` (row `first + i` is
/// `active[i]`) into `gw`, one column slab at a time, touching only the rows of `gw` whose
/// input is active.
#[inline(always)]
fn weight_grad_partial(
    active: &[Vec<(u32, f32)>],
    g: &[f32],
    n: usize,
    first: usize,
    gw: &mut [f32],
) {
    for c0 in (0..n).step_by(COLS) {
        let c1 = (c0 + COLS).min(n);
        for (i, row) in active.iter().enumerate() {
            let r = first + i;
            let grow = &g[r * n + c0..r * n + c1];
            for &(kk, v) in row {
                let kk = kk as usize;
                axpy(&mut gw[kk * n + c0..kk * n + c1], v, grow);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    //! The same loops compiled for AVX-512 and AVX2, chosen at run time.
    type Active = [Vec<(u32, f32)>];
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn forward_rows_512(a: &Active, w: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
        super::forward_rows(a, w, b, n, out)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_rows_256(a: &Active, w: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
        super::forward_rows(a, w, b, n, out)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn weight_grad_partial_512(
        a: &Active,
        g: &[f32],
        n: usize,
        first: usize,
        gw: &mut [f32],
    ) {
        super::weight_grad_partial(a, g, n, first, gw)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_partial_256(
        a: &Active,
        g: &[f32],
        n: usize,
        first: usize,
        gw: &mut [f32],
    ) {
        super::weight_grad_partial(a, g, n, first, gw)
    }
}

/// Rows per parallel task.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(4 * rayon::current_num_threads().max(1))
        .clamp(1, 256)
}

/// The event-driven forward on plain slices: `x [m, k]`, `w [k, n]`, `b [n]` → `[m, n]`.
pub fn sparse_forward(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!((x.len(), w.len(), b.len()), (m * k, k * n, n), "shapes");
    let mut out = vec![0f32; m * n];
    let per = rows_per_task(m);
    out.par_chunks_mut((per * n).max(1))
        .enumerate()
        .for_each(|(task, chunk)| {
            let active = active_inputs(x, k, task * per, chunk.len() / n.max(1));
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { wide::forward_rows_512(&active, w, b, n, chunk) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { wide::forward_rows_256(&active, w, b, n, chunk) };
                }
            }
            forward_rows(&active, w, b, n, chunk)
        });
    out
}

/// The event-driven weight gradient on plain slices: `Σ_m x[m]ᵀ·g[m]` over nonzero `x`, `[k, n]`.
///
/// Each thread accumulates its share of the rows of `x` into its own partial gradient (so `g` is
/// streamed once, in order), then the partials are summed.
pub fn sparse_weight_grad(x: &[f32], g: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!((x.len(), g.len()), (m * k, m * n), "shapes");
    let parts = rayon::current_num_threads().clamp(1, m.max(1));
    let per = m.div_ceil(parts);
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|p| {
            let first = (p * per).min(m);
            let active = active_inputs(x, k, first, ((p + 1) * per).min(m) - first);
            let mut gw = vec![0f32; k * n];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    unsafe { wide::weight_grad_partial_512(&active, g, n, first, &mut gw) };
                    return gw;
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    unsafe { wide::weight_grad_partial_256(&active, g, n, first, &mut gw) };
                    return gw;
                }
            }
            weight_grad_partial(&active, g, n, first, &mut gw);
            gw
        })
        .collect();
    let mut iter = partials.into_iter();
    let mut total = iter.next().unwrap_or_else(|| vec![0f32; k * n]);
    for part in iter {
        total
            .par_chunks_mut(4096)
            .zip(part.par_chunks(4096))
            .for_each(|(t, p)| t.iter_mut().zip(p).for_each(|(t, p)| *t += p));
    }
    total
}

fn dense_forward(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
    let n = b.layout().shape()[0];
    let y = Flex::float_matmul(x, w);
    Flex::float_add(y, Flex::float_reshape(b, [1, n].into()))
}

impl SpikeLinearKernel for Flex {
    fn spike_linear(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        mode: SpikeLinearMode,
    ) -> FlexTensor {
        let (m, k) = dims2(&x);
        let n = dims2(&w).1;
        let sparse = use_sparse(mode, &f32_values(&x), n);
        if !sparse {
            return dense_forward(x, w, b);
        }
        let y = sparse_forward(&f32_values(&x), &f32_values(&w), &f32_values(&b), m, k, n);
        flex_tensor(y, [m, n])
    }
}

#[derive(Debug)]
struct SpikeLinearBackward;

impl Backward<Flex, 3> for SpikeLinearBackward {
    /// Input, weights, whether the forward took the sparse path.
    type State = (FlexTensor, FlexTensor, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (x, w, sparse) = ops.state;
        let (m, k) = dims2(&x);
        let n = dims2(&w).1;
        if let Some(node) = node_b {
            let gb = Flex::float_sum_dim(g.clone(), 0);
            grads.register::<Flex>(node.id, Flex::float_reshape(gb, [n].into()));
        }
        if let Some(node) = node_w {
            let gw = if sparse {
                let values = sparse_weight_grad(&f32_values(&x), &f32_values(&g), m, k, n);
                flex_tensor(values, [k, n])
            } else {
                Flex::float_matmul(Flex::float_transpose(x.clone()), g.clone())
            };
            grads.register::<Flex>(node.id, gw);
        }
        if let Some(node) = node_x {
            let gx = Flex::float_matmul(g, Flex::float_transpose(w));
            grads.register::<Flex>(node.id, gx);
        }
    }
}

impl<C: CheckpointStrategy> SpikeLinearKernel for Autodiff<Flex, C> {
    fn spike_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mode: SpikeLinearMode,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), w.node(), b.node()];
        let (x, w) = (x.into_primitive(), w.into_primitive());
        // Decide once, so the backward uses the path the forward took.
        let sparse = use_sparse(mode, &f32_values(&x), dims2(&w).1);
        let forced = if sparse {
            SpikeLinearMode::Sparse
        } else {
            SpikeLinearMode::Dense
        };
        let y = <Flex as SpikeLinearKernel>::spike_linear(
            x.clone(),
            w.clone(),
            b.into_primitive(),
            forced,
        );
        match SpikeLinearBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, w, sparse), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// `x [M, K] · w [K, N] + b [N]` with the event-driven path where `x` is sparse. Runs on the
/// Flex backend (check [`crate::device::is_flex`]).
pub fn spike_linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, mode: SpikeLinearMode) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SpikeLinearKernel>::spike_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        mode,
    ))
}
